//! User-pool federation, as Cognito does it: external OIDC providers (config or admin API) whose
//! users sign in through the pool. `/oauth2/authorize` with `identity_provider=` (or a hosted-UI
//! button) sends the browser to the provider with `state`, PKCE (S256) and a `nonce` bound to the
//! browser by a cookie; `/oauth2/idpresponse` exchanges the code, checks the ID token and userinfo
//! with the load balancer's relying party (`portcullis_auth::oidc`), keeps the user
//! `<ProviderName>_<sub>` (status `EXTERNAL_PROVIDER`, an `identities` attribute, mapped attributes
//! updated at each sign-in) and continues the client's authorization as a password sign-in would.

use crate::domain::pool::{
    AuthorizeProblem, AuthorizeRequest, Pool, constant_time_eq, random_token,
};
use crate::store::{Put, Store, StoreError, UserRecord};
use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_auth::oidc::{self, ProviderConfig};
use portcullis_auth::{AuthError, Provider};
use portcullis_config::{ClientAuthMethod, IdentityProvider};
use portcullis_verify::client::{HttpClient, http_client};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Store kind of identity providers.
pub const IDENTITY_PROVIDER: &str = "identity_provider";
/// Ticket purpose of a login in progress at a provider.
pub const LOGIN_TICKET: &str = "idp-login";
/// How long a login at a provider may take (seconds).
pub const LOGIN_LIFETIME: i64 = 600;
/// `UserStatus` of federated users.
pub const EXTERNAL_PROVIDER: &str = "EXTERNAL_PROVIDER";
/// Longest attribute value taken from a provider (Cognito's limit).
pub const MAX_ATTRIBUTE_VALUE: usize = 2048;
/// Longest user id (`sub`, or the claim `username` maps to) taken from a provider (OIDC Core).
pub const MAX_SUBJECT: usize = 255;
/// Longest federated user name `<ProviderName>_<id>`: Cognito's limit on user names, which every
/// admin operation enforces, so an admin can always reach (disable, delete) a federated user.
pub const MAX_USER_NAME: usize = 128;

/// An identity provider as stored (its secret resolved).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredProvider {
    /// Settings in the config's shape.
    pub provider: IdentityProvider,
    /// Epoch seconds.
    pub created_at: i64,
    /// Epoch seconds.
    pub updated_at: i64,
}

/// Reads a pool's providers; an unreadable document is skipped and logged.
pub async fn load_providers(
    store: &dyn Store,
    pool: &str,
) -> Result<HashMap<String, Arc<StoredProvider>>, StoreError> {
    let mut out = HashMap::new();
    for (id, body) in store.objects(pool, IDENTITY_PROVIDER).await? {
        match serde_json::from_str::<StoredProvider>(&body) {
            Ok(p) => {
                out.insert(id, Arc::new(p));
            }
            Err(e) => {
                tracing::error!(pool, provider = %id, error = %e, "stored identity provider is unreadable; skipped")
            }
        }
    }
    Ok(out)
}

/// Writes a provider document.
pub async fn put_provider(
    store: &dyn Store,
    pool: &str,
    p: &StoredProvider,
    mode: Put,
) -> Result<bool, StoreError> {
    let body = serde_json::to_string(p).unwrap_or_default();
    store
        .put_object(pool, IDENTITY_PROVIDER, &p.provider.name, body, mode)
        .await
}

/// Writes the config's providers to the store (their secrets resolved), keeping the creation date
/// of those stored before; providers created through the API are left as they are.
pub async fn seed_providers(
    cfg: &portcullis_config::UserPool,
    store: &dyn Store,
    pool: &str,
) -> Result<(), String> {
    for (i, ip) in cfg.identity_providers.iter().enumerate() {
        let at = format!("user_pools[{}].identity_providers[{i}]", cfg.name);
        let mut provider = ip.clone();
        if let Some(var) = provider.client_secret_env.take() {
            provider.client_secret = Some(std::env::var(&var).map_err(|_| {
                format!("{at}.client_secret_env: environment variable {var} is not set")
            })?);
        }
        let err = |e: StoreError| format!("{at}: {e}");
        let existing = store
            .object(pool, IDENTITY_PROVIDER, &provider.name)
            .await
            .map_err(err)?
            .and_then(|b| serde_json::from_str::<StoredProvider>(&b).ok());
        let now = crate::now() as i64;
        if existing.as_ref().is_some_and(|e| e.provider == provider) {
            continue;
        }
        let stored = StoredProvider {
            provider,
            created_at: existing.as_ref().map_or(now, |e| e.created_at),
            updated_at: now,
        };
        put_provider(store, pool, &stored, Put::Upsert)
            .await
            .map_err(err)?;
    }
    Ok(())
}

/// Why a login at a provider could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    /// The provider is not (or no longer) configured.
    #[error("the identity provider is not configured")]
    UnknownProvider,
    /// Discovery failed, or it named no JWKS.
    #[error("the identity provider cannot be reached: {0}")]
    Unreachable(String),
    /// The relying party refused the provider's answer.
    #[error("the identity provider's answer was refused ({0:?})")]
    Refused(AuthError),
    /// The user id is empty, too long (alone, or in the user name) or has control or space
    /// characters.
    #[error("the identity provider sent an unusable user id")]
    BadSubject,
    /// A user of that name exists and is not this provider's.
    #[error("the user name is taken by another account")]
    Collision,
    /// The federated user was disabled by an admin.
    #[error("the user is disabled")]
    Disabled,
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The system random source failed.
    #[error("the system random source failed")]
    Random,
}

/// The pool's relying parties, one per provider, made on first use (discovery) and again when the
/// provider changes; a failed discovery is retried at the next login.
pub struct Federation {
    http: HttpClient,
    /// By name: the settings it was made from, and the relying party.
    resolved: Mutex<HashMap<String, (IdentityProvider, Arc<Provider>)>>,
}

impl Default for Federation {
    fn default() -> Self {
        Federation {
            http: http_client(),
            resolved: Mutex::new(HashMap::new()),
        }
    }
}

impl Federation {
    /// The relying party of `p`.
    pub async fn relying_party(
        &self,
        p: &StoredProvider,
    ) -> Result<Arc<Provider>, FederationError> {
        let name = &p.provider.name;
        if let Some((made_from, rp)) = self
            .resolved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            && *made_from == p.provider
        {
            return Ok(rp.clone());
        }
        let c = &p.provider;
        let (authorize, token, userinfo, jwks) = match (
            &c.authorize_url,
            &c.token_url,
            &c.attributes_url,
            &c.jwks_uri,
        ) {
            (Some(a), Some(t), Some(u), Some(j)) => (a.clone(), t.clone(), u.clone(), j.clone()),
            _ => {
                let d = oidc::discover(&self.http, &c.oidc_issuer)
                    .await
                    .map_err(|e| FederationError::Unreachable(e.to_string()))?;
                let jwks = d.jwks_uri.ok_or_else(|| {
                    FederationError::Unreachable("the discovery document names no jwks_uri".into())
                })?;
                (
                    c.authorize_url.clone().unwrap_or(d.authorization_endpoint),
                    c.token_url.clone().unwrap_or(d.token_endpoint),
                    c.attributes_url.clone().unwrap_or(d.userinfo_endpoint),
                    c.jwks_uri.clone().unwrap_or(jwks),
                )
            }
        };
        // Discovered endpoints obey the config's rule: the secret and codes never cross a
        // network in clear text; and a provider off this machine cannot aim the pool's calls
        // (its secret, codes, bearer tokens) at a service of this machine.
        for u in [&authorize, &token, &userinfo, &jwks] {
            if !is_safe_url(u) || !is_endpoint_of(&c.oidc_issuer, u) {
                return Err(FederationError::Unreachable(format!(
                    "the discovery document names `{}`: an https URL (http only for loopback) is required",
                    u.chars().take(200).collect::<String>()
                )));
            }
        }
        let config = ProviderConfig {
            issuer: c.oidc_issuer.clone(),
            authorization_endpoint: authorize,
            token_endpoint: token,
            user_info_endpoint: userinfo,
            jwks_uri: Some(jwks),
            client_id: c.client_id.clone(),
            client_secret: c.client_secret.clone().unwrap_or_default(),
            // Cognito sends its credentials in the body to OIDC providers.
            auth_method: ClientAuthMethod::ClientSecretPost,
            revocation_endpoint: None,
            end_session: None,
        };
        let rp = Arc::new(Provider::new(config, self.http.clone()));
        self.resolved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.clone(), (p.provider.clone(), rp.clone()));
        Ok(rp)
    }

    /// The endpoints a provider was resolved to, for `DescribeIdentityProvider`.
    pub fn resolved_endpoints(&self, name: &str) -> Option<ProviderConfig> {
        self.resolved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .map(|(_, rp)| rp.config.clone())
    }
}

/// The login kept server side while the browser is at the provider (a ticket keyed by `state`).
#[derive(Debug, Serialize, Deserialize)]
struct PendingLogin {
    /// SHA-256 of the browser's binding cookie.
    binding: String,
    provider: String,
    verifier: String,
    nonce: String,
    /// The client's authorization request, checked again on return.
    query: Vec<(String, String)>,
}

/// Where to send the browser to sign in at a provider, and the binding cookie to set.
#[derive(Debug)]
pub struct Begun {
    /// The provider's authorization URL.
    pub location: String,
    /// The binding cookie's value.
    pub binding: String,
}

/// How a finished external login went.
#[derive(Debug)]
pub enum Finished {
    /// Signed in: continue the client's authorization for this user.
    SignedIn(Box<AuthorizeRequest>, Box<UserRecord>),
    /// Tell the client through its redirect URI (Cognito's `error`, `error_description`).
    Redirect {
        /// The client's redirect URI.
        redirect_uri: String,
        /// OAuth error code.
        error: String,
        /// Detail for people.
        description: String,
        /// The client's `state`.
        state: Option<String>,
    },
    /// No safe redirect: show a page with this code and message.
    Page(u16, &'static str, String),
}

fn sha256_b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, s.as_bytes()).as_ref())
}

/// Whether `u` is `https`, or `http` to this machine.
fn is_safe_url(u: &str) -> bool {
    portcullis_config::parse_url(u).is_some_and(|(scheme, host, _)| {
        scheme == "https" || (scheme == "http" && portcullis_config::is_loopback_host(&host))
    })
}

/// Whether `u` may be an endpoint of a provider whose issuer is `issuer`: on this machine (a
/// loopback host) only when the issuer is too.
fn is_endpoint_of(issuer: &str, u: &str) -> bool {
    !is_on_this_machine(u) || is_on_this_machine(issuer)
}

/// Whether a URL's host is this machine: a loopback or unspecified address (`0.0.0.0` reaches
/// local services on Linux), or a `localhost` name (with or without a trailing dot).
fn is_on_this_machine(url: &str) -> bool {
    let Some((_, host, _)) = portcullis_config::parse_url(url) else {
        return false;
    };
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => ip.is_loopback() || ip.is_unspecified(),
        Ok(std::net::IpAddr::V6(ip)) => {
            ip.is_loopback()
                || ip.is_unspecified()
                || ip
                    .to_ipv4_mapped()
                    .is_some_and(|v4| v4.is_loopback() || v4.is_unspecified())
        }
        Err(_) => false,
    }
}

/// Whether a binding cookie value is one this pool could have made (43 base64url characters).
fn is_binding(v: &str) -> bool {
    v.len() == 43
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether a provider's user id may become part of a user name: 1–255 characters, none a control
/// or white-space character.
pub fn is_subject(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SUBJECT
        && !s.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// A claim as a Cognito attribute value (strings as they are, others as JSON), when short enough.
fn attribute_value(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Null => return None,
        other => other.to_string(),
    };
    (s.len() <= MAX_ATTRIBUTE_VALUE && !s.chars().any(|c| c.is_control() && c != '\n')).then_some(s)
}

impl Pool {
    /// The provider an `identity_provider=` or `idp_identifier=` names, when `client` supports it.
    pub(crate) fn federated_provider(
        &self,
        client: &portcullis_config::Client,
        identity_provider: Option<&str>,
        idp_identifier: Option<&str>,
    ) -> Result<Option<String>, ()> {
        let supported = client.identity_providers();
        let catalog = self.catalog();
        let name = match (identity_provider, idp_identifier) {
            (None, None) => return Ok(None),
            (Some(p), _) => p.to_string(),
            (None, Some(id)) => catalog
                .identity_providers
                .values()
                .find(|p| {
                    p.provider
                        .idp_identifiers
                        .iter()
                        .any(|i| i.eq_ignore_ascii_case(id))
                })
                .map(|p| p.provider.name.clone())
                .ok_or(())?,
        };
        if !supported.contains(&name) {
            return Err(());
        }
        if name == portcullis_config::COGNITO_PROVIDER {
            return Ok(None);
        }
        if catalog.identity_providers.contains_key(&name) {
            Ok(Some(name))
        } else {
            Err(())
        }
    }

    /// Where the provider sends the browser back.
    pub fn idp_response_url(&self) -> String {
        format!("{}/oauth2/idpresponse", self.base_url)
    }

    /// Starts a login at `provider` for the authorization request `query` (already checked):
    /// a fresh `state`, PKCE verifier and nonce kept in the store for [`LOGIN_LIFETIME`], bound to
    /// the browser's binding cookie (`binding`, reused when the browser has one, so two tabs can
    /// sign in at once).
    pub async fn begin_federation(
        &self,
        provider: &str,
        query: &[(String, String)],
        binding: Option<&str>,
    ) -> Result<Begun, FederationError> {
        let stored = self
            .catalog()
            .identity_providers
            .get(provider)
            .cloned()
            .ok_or(FederationError::UnknownProvider)?;
        let rp = self.federation.relying_party(&stored).await?;
        let random = || random_token(32).map_err(|_| FederationError::Random);
        let binding = match binding.filter(|b| is_binding(b)) {
            Some(b) => b.to_string(),
            None => random()?,
        };
        let state = random()?;
        let verifier = random()?;
        let nonce = random()?;
        let pending = PendingLogin {
            binding: sha256_b64(&binding),
            provider: provider.to_string(),
            verifier: verifier.clone(),
            nonce: nonce.clone(),
            query: query
                .iter()
                .filter(|(k, _)| k != "identity_provider" && k != "idp_identifier")
                .cloned()
                .collect(),
        };
        self.store
            .put_ticket(
                &self.id,
                LOGIN_TICKET,
                &sha256_b64(&state),
                serde_json::to_string(&pending).unwrap_or_default(),
                crate::now() as i64 + LOGIN_LIFETIME,
            )
            .await?;
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("response_type", "code")
            .append_pair("client_id", &rp.config.client_id)
            .append_pair("redirect_uri", &self.idp_response_url())
            .append_pair("scope", &stored.provider.authorize_scopes)
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &sha256_b64(&verifier))
            .append_pair("code_challenge_method", "S256");
        let endpoint = &rp.config.authorization_endpoint;
        let sep = if endpoint.contains('?') { '&' } else { '?' };
        Ok(Begun {
            location: format!("{endpoint}{sep}{}", q.finish()),
            binding,
        })
    }

    /// Completes a login at a provider (`/oauth2/idpresponse`): the `state` must be live, unused
    /// and bound to this browser's `binding` cookie; then the code is exchanged, the ID token and
    /// userinfo checked, and the user created or updated.
    pub async fn finish_federation(
        &self,
        q: &[(String, String)],
        binding: Option<&str>,
    ) -> Finished {
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let expired = || {
            Finished::Page(
                400,
                "invalid_state",
                "This sign-in expired, was already used, or was started in another browser. Go back to the app and sign in again.".into(),
            )
        };
        let Some(state) = get("state").filter(|s| s.len() <= 128) else {
            return expired();
        };
        let key = sha256_b64(state);
        let pending = match self.store.ticket(&self.id, LOGIN_TICKET, &key).await {
            Ok(Some((v, _))) => serde_json::from_str::<PendingLogin>(&v).ok(),
            Ok(None) => None,
            Err(e) => return server_page(e.into()),
        };
        let Some(pending) = pending else {
            return expired();
        };
        // Login CSRF: the state must come back to the browser that started the login.
        let bound = binding
            .filter(|b| is_binding(b))
            .is_some_and(|b| constant_time_eq(&sha256_b64(b), &pending.binding));
        if !bound {
            tracing::info!(pool = %self.name, "external sign-in refused: state not bound to this browser");
            return expired();
        }
        // Single use, atomically (a replay, even concurrent, finds nothing).
        match self.store.take_ticket(&self.id, LOGIN_TICKET, &key).await {
            Ok(Some(_)) => {}
            Ok(None) => return expired(),
            Err(e) => return server_page(e.into()),
        }
        let req = match self.check_authorize(&pending.query) {
            Ok(r) => r,
            Err(AuthorizeProblem::Page(code, message)) => {
                return Finished::Page(400, code, message);
            }
            Err(AuthorizeProblem::Redirect {
                redirect_uri,
                error,
                state,
            }) => {
                return Finished::Redirect {
                    redirect_uri,
                    error: error.into(),
                    description: String::new(),
                    state,
                };
            }
        };
        let back = |error: &str, description: String| Finished::Redirect {
            redirect_uri: req.redirect_uri.clone(),
            error: error.into(),
            description,
            state: req.state.clone(),
        };
        // Mix-up defence (RFC 9207): a provider that names itself must be the one this login
        // went to, so another provider's answer is never taken for this one's.
        if let Some(iss) = get("iss") {
            let expected = self
                .catalog()
                .identity_providers
                .get(&pending.provider)
                .map(|p| p.provider.oidc_issuer.clone());
            if expected.as_deref() != Some(iss) {
                tracing::info!(pool = %self.name, provider = %pending.provider, "external sign-in refused: the answer names another issuer");
                return back(
                    "invalid_request",
                    "the answer came from another identity provider".into(),
                );
            }
        }
        if let Some(error) = get("error") {
            // The provider's refusal goes to the app, as Cognito forwards it.
            let error = if !error.is_empty()
                && error.len() <= 64
                && error.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            {
                error
            } else {
                "server_error"
            };
            let description: String = get("error_description")
                .unwrap_or("")
                .chars()
                .filter(|c| !c.is_control())
                .take(256)
                .collect();
            return back(error, description);
        }
        let Some(code) = get("code").filter(|c| !c.is_empty() && c.len() <= 2048) else {
            return back(
                "invalid_request",
                "the identity provider sent no code".into(),
            );
        };
        match self.external_user(&pending, code).await {
            Ok(user) => Finished::SignedIn(Box::new(req), Box::new(user)),
            Err(FederationError::Store(e)) => server_page(e.into()),
            Err(e) => {
                tracing::info!(pool = %self.name, provider = %pending.provider, error = %e, "external sign-in refused");
                let error = match e {
                    FederationError::Disabled => "access_denied",
                    _ => "invalid_request",
                };
                back(error, e.to_string())
            }
        }
    }

    /// Exchanges the code and returns the federated user, created or updated.
    async fn external_user(
        &self,
        pending: &PendingLogin,
        code: &str,
    ) -> Result<UserRecord, FederationError> {
        let stored = self
            .catalog()
            .identity_providers
            .get(&pending.provider)
            .cloned()
            .ok_or(FederationError::UnknownProvider)?;
        let rp = self.federation.relying_party(&stored).await?;
        if !rp.checks_signatures() {
            return Err(FederationError::Unreachable(
                "no JWKS to check ID tokens".into(),
            ));
        }
        let tokens = rp
            .exchange_code(code, &self.idp_response_url(), Some(&pending.verifier))
            .await
            .map_err(FederationError::Refused)?;
        let id_token = tokens
            .id_token
            .as_deref()
            .ok_or(FederationError::Refused(AuthError::InvalidTokenResponse))?;
        let (sub, mut claims) = rp
            .verified_id_claims(id_token, Some(&pending.nonce))
            .await
            .map_err(FederationError::Refused)?;
        let method = if stored.provider.attributes_request_method == "POST" {
            http::Method::POST
        } else {
            http::Method::GET
        };
        let info = rp
            .userinfo_by(&tokens.access_token, method)
            .await
            .map_err(FederationError::Refused)?;
        oidc::same_subject(&info, &sub).map_err(FederationError::Refused)?;
        claims.extend(info);
        self.upsert_external_user(&stored.provider, &sub, &claims)
            .await
    }

    /// Creates or updates `<ProviderName>_<user id>` from the provider's claims.
    pub(crate) async fn upsert_external_user(
        &self,
        p: &IdentityProvider,
        sub: &str,
        claims: &Map<String, Value>,
    ) -> Result<UserRecord, FederationError> {
        let user_id = match p.attribute_mapping.get("username") {
            Some(claim) => claims
                .get(claim)
                .and_then(Value::as_str)
                .ok_or(FederationError::BadSubject)?,
            None => sub,
        };
        if !is_subject(user_id) {
            return Err(FederationError::BadSubject);
        }
        let username = format!("{}_{user_id}", p.name);
        if username.len() > MAX_USER_NAME {
            return Err(FederationError::BadSubject);
        }
        let existing = self.store.user_by_username(&self.id, &username).await?;
        let now_ms = crate::now() as i64 * 1000;
        let date_created = match &existing {
            Some(u) => {
                // A local user (or another provider's) of that name is never taken over.
                let theirs = u.status == EXTERNAL_PROVIDER
                    && identities_provider(u).as_deref() == Some(p.name.as_str());
                if !theirs {
                    return Err(FederationError::Collision);
                }
                if !u.enabled {
                    return Err(FederationError::Disabled);
                }
                identities_date(u).unwrap_or(now_ms.to_string())
            }
            None => now_ms.to_string(),
        };
        let mut attrs = existing
            .as_ref()
            .map(|u| u.attributes.clone())
            .unwrap_or_default();
        for (attr, claim) in &p.attribute_mapping {
            if attr == "username" {
                continue;
            }
            // Only what the pool's admin mapped; a custom attribute must still exist.
            if attr.starts_with("custom:") && !self.custom_attributes.contains_key(attr) {
                continue;
            }
            let Some(v) = claims.get(claim).and_then(attribute_value) else {
                continue;
            };
            let v = match attr.as_str() {
                "email_verified" | "phone_number_verified" => (v == "true").to_string(),
                _ => v,
            };
            let changed = attrs.get(attr).and_then(Value::as_str) != Some(v.as_str());
            // A changed address is unverified unless the provider vouches for it in this very
            // answer (the admin mapped the flag, and the provider sent it).
            for (a, verified) in [
                ("email", "email_verified"),
                ("phone_number", "phone_number_verified"),
            ] {
                let vouched = p
                    .attribute_mapping
                    .get(verified)
                    .is_some_and(|c| claims.get(c).and_then(attribute_value).is_some());
                if attr == a && changed && !vouched {
                    attrs.insert(verified.into(), "false".into());
                }
            }
            attrs.insert(attr.clone(), v.into());
        }
        let identities = json!([{
            "userId": user_id,
            "providerName": p.name,
            "providerType": p.provider_type,
            "issuer": null,
            "primary": "true",
            "dateCreated": date_created,
        }]);
        attrs.insert("identities".into(), identities.to_string().into());
        match existing {
            Some(mut u) => {
                u.attributes = attrs;
                self.store.save_user(&self.id, u.clone()).await?;
                Ok(u)
            }
            None => {
                let rec = UserRecord {
                    sub: uuid::Uuid::new_v4().to_string(),
                    username: username.clone(),
                    // Never matches a password: the status refuses password sign-in anyway.
                    password_hash: self.dummy_hash.clone(),
                    status: EXTERNAL_PROVIDER.into(),
                    enabled: true,
                    attributes: attrs,
                    created_at: 0,
                    updated_at: 0,
                };
                if !self.store.insert_user(&self.id, rec.clone()).await? {
                    // A concurrent first sign-in of the same user won; use theirs.
                    return self
                        .store
                        .user_by_username(&self.id, &username)
                        .await?
                        .ok_or(FederationError::Collision);
                }
                Ok(self
                    .store
                    .user_by_username(&self.id, &username)
                    .await?
                    .unwrap_or(rec))
            }
        }
    }
}

// ---- HTTP: the redirect to a provider and `/oauth2/idpresponse` ----

/// The binding cookie's name: `__Host-` over HTTPS (no sibling host or plain page can plant it).
pub(crate) fn binding_cookie(pool: &Pool) -> &'static str {
    if pool.base_url.starts_with("https://") {
        "__Host-idp-login"
    } else {
        "idp-login"
    }
}

fn set_binding(pool: &Pool, value: &str) -> Option<axum::http::HeaderValue> {
    let secure = if pool.base_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    axum::http::HeaderValue::from_str(&format!(
        "{}={value}; Path=/; Max-Age={LOGIN_LIFETIME}; HttpOnly; SameSite=Lax{secure}",
        binding_cookie(pool)
    ))
    .ok()
}

/// `/oauth2/authorize` with a provider chosen: send the browser there (rate limited per client
/// address, as each start stores a pending login).
pub(crate) async fn redirect_to_provider(
    pool: &Pool,
    ip: std::net::IpAddr,
    provider: &str,
    query: &[(String, String)],
    headers: &axum::http::HeaderMap,
) -> axum::response::Response {
    use crate::http::{cookie, error_page, redirect};
    use axum::http::{StatusCode, header};
    if pool.admit(Some(ip), None).await.is_err() {
        return error_page(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Too many attempts. Wait a minute, then try again.",
        );
    }
    match pool
        .begin_federation(provider, query, cookie(headers, binding_cookie(pool)))
        .await
    {
        Ok(b) => {
            let mut r = redirect(&b.location);
            if let Some(v) = set_binding(pool, &b.binding) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => {
            tracing::warn!(pool = %pool.name, provider, error = %e, "cannot start an external sign-in");
            error_page(
                StatusCode::BAD_GATEWAY,
                "idp_unavailable",
                "The sign-in provider cannot be reached right now. Try again shortly.",
            )
        }
    }
}

/// `GET /oauth2/idpresponse`: the provider sends the browser back here.
pub(crate) async fn idp_response(
    axum::extract::State(pool): axum::extract::State<Arc<Pool>>,
    crate::domain::rate_limit::ClientIp(ip): crate::domain::rate_limit::ClientIp,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use crate::http::{HostedCookie, cookie, error_page, parse_query, redirect, session_cookie};
    use axum::http::{StatusCode, header};
    if pool.admit(Some(ip), None).await.is_err() {
        return error_page(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Too many attempts. Wait a minute, then try again.",
        );
    }
    let q = match parse_query(raw.as_deref()) {
        Ok(q) => q,
        Err(r) => return *r,
    };
    match pool
        .finish_federation(&q, cookie(&headers, binding_cookie(&pool)))
        .await
    {
        Finished::SignedIn(req, user) => {
            let now = crate::now() as i64;
            let session = match pool.start_session(&user, now).await {
                Ok(s) => s,
                Err(e) => {
                    return error_page(StatusCode::INTERNAL_SERVER_ERROR, e.error, &e.description);
                }
            };
            // The browser session's `sid`, so that signing out of it ends this sign-in too.
            let sid = pool.browser_sid(&session);
            let location = match pool.complete_authorization_in(&req, &user, now, &sid).await {
                Ok(l) => l,
                Err(e) => {
                    return error_page(StatusCode::INTERNAL_SERVER_ERROR, e.error, &e.description);
                }
            };
            let mut r = redirect(&location);
            if let Some(v) = session_cookie(&pool, &session, crate::domain::pool::SESSION_LIFETIME)
            {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            if let Some(v) = HostedCookie::Csrf.set(&pool, "", Some(0)) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
            r
        }
        Finished::Redirect {
            redirect_uri,
            error,
            description,
            state,
        } => {
            let mut ser = form_urlencoded::Serializer::new(String::new());
            ser.append_pair("error", &error);
            if !description.is_empty() {
                ser.append_pair("error_description", &description);
            }
            if let Some(s) = state {
                ser.append_pair("state", &s);
            }
            let sep = if redirect_uri.contains('?') { '&' } else { '?' };
            redirect(&format!("{redirect_uri}{sep}{}", ser.finish()))
        }
        Finished::Page(status, code, message) => error_page(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            code,
            &message,
        ),
    }
}

fn identities_entry(u: &UserRecord) -> Option<Map<String, Value>> {
    let s = u.attributes.get("identities")?.as_str()?;
    let v: Value = serde_json::from_str(s).ok()?;
    v.as_array()?.first()?.as_object().cloned()
}

fn identities_provider(u: &UserRecord) -> Option<String> {
    identities_entry(u)?
        .get("providerName")?
        .as_str()
        .map(str::to_string)
}

fn identities_date(u: &UserRecord) -> Option<String> {
    identities_entry(u)?
        .get("dateCreated")?
        .as_str()
        .map(str::to_string)
}

fn server_page(e: crate::error::IdpError) -> Finished {
    tracing::error!(error = %e, "external sign-in failed");
    Finished::Page(
        500,
        "server_error",
        "This is unavailable right now. Try again shortly.".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_bounded_and_printable() {
        assert!(is_subject("248289761001"));
        assert!(is_subject("a|b@c.example"));
        for bad in ["", "a b", "a\nb", "a\u{0}b", "\u{2028}"] {
            assert!(!is_subject(bad), "{bad:?}");
        }
        assert!(is_subject(&"x".repeat(255)));
        assert!(!is_subject(&"x".repeat(256)));
        assert!(!is_subject(&"x".repeat(10 * 1024)));
    }

    #[test]
    fn discovered_endpoints_must_be_https_or_loopback() {
        assert!(is_safe_url("https://idp.example/token"));
        assert!(is_safe_url("http://127.0.0.1:8080/token"));
        assert!(is_safe_url("http://localhost/token"));
        assert!(!is_safe_url("http://idp.example/token"));
        assert!(!is_safe_url("ftp://idp.example/token"));
        assert!(!is_safe_url("/token"));
    }

    #[test]
    fn a_remote_provider_cannot_name_endpoints_on_this_machine() {
        let remote = "https://idp.example";
        assert!(is_endpoint_of(remote, "https://keys.idp.example/jwks"));
        for local in [
            "http://127.0.0.1:9100/metrics",
            "http://localhost:5432/",
            "https://localhost/token",
            "http://[::1]:8080/userinfo",
            "https://0.0.0.0:9100/",
            "https://localhost./jwks",
            "https://[::ffff:127.0.0.1]/token",
        ] {
            assert!(!is_endpoint_of(remote, local), "{local}");
            assert!(
                is_endpoint_of("http://127.0.0.1:9001/pool", local),
                "{local}"
            );
        }
    }

    /// The check is applied where relying parties are made, to configured endpoints too.
    #[tokio::test]
    async fn a_relying_party_for_a_remote_issuer_never_calls_this_machine() {
        let provider = |token: &str| StoredProvider {
            provider: IdentityProvider {
                name: "Remote".into(),
                provider_type: "OIDC".into(),
                client_id: "pool".into(),
                client_secret: Some("s".into()),
                client_secret_env: None,
                authorize_scopes: "openid".into(),
                oidc_issuer: "https://idp.example".into(),
                authorize_url: Some("https://idp.example/authorize".into()),
                token_url: Some(token.into()),
                attributes_url: Some("https://idp.example/userinfo".into()),
                jwks_uri: Some("https://idp.example/jwks".into()),
                attributes_request_method: "GET".into(),
                attribute_mapping: Default::default(),
                idp_identifiers: Vec::new(),
            },
            created_at: 0,
            updated_at: 0,
        };
        let f = Federation::default();
        assert!(
            f.relying_party(&provider("https://idp.example/token"))
                .await
                .is_ok()
        );
        let local = f
            .relying_party(&provider("http://127.0.0.1:9100/token"))
            .await;
        assert!(matches!(local, Err(FederationError::Unreachable(_))));
    }

    #[test]
    fn attribute_values_are_strings_and_bounded() {
        assert_eq!(attribute_value(&json!("a")), Some("a".into()));
        assert_eq!(attribute_value(&json!(true)), Some("true".into()));
        assert_eq!(attribute_value(&json!(7)), Some("7".into()));
        assert_eq!(attribute_value(&json!(null)), None);
        assert_eq!(attribute_value(&json!("x".repeat(2049))), None);
        assert_eq!(attribute_value(&json!("a\u{0}")), None);
    }

    proptest::proptest! {
        /// `<ProviderName>_<user id>` names one (provider, user) pair: however a user name is split
        /// at an `_`, only one split gives a valid provider name (with a valid id), so two
        /// providers' users never share a name, whatever ids the providers choose.
        #[test]
        fn federated_user_names_never_collide(a in "[A-Za-z0-9.-]{1,8}", x in "[a-z_.A-Z0-9é-]{1,12}") {
            proptest::prop_assume!(portcullis_config::is_provider_name(&a) && is_subject(&x));
            let name = format!("{a}_{x}");
            for (k, _) in name.match_indices('_') {
                let (b, y) = (&name[..k], &name[k + 1..]);
                if portcullis_config::is_provider_name(b) && is_subject(y) {
                    proptest::prop_assert_eq!(b, a.as_str());
                    proptest::prop_assert_eq!(y, x.as_str());
                }
            }
        }
    }

    #[test]
    fn binding_cookies_have_one_shape() {
        assert!(is_binding(&random_token(32).unwrap()));
        assert!(!is_binding("short"));
        assert!(!is_binding(
            &"a".repeat(42).chars().chain(['!']).collect::<String>()
        ));
    }
}
