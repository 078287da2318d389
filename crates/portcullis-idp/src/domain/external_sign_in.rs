//! Signing in at an external provider: the pool sends the browser there (state, PKCE, nonce
//! bound to the browser), then checks the answer, keeps the federated user and continues the
//! client's authorization as a password sign-in would.

use crate::domain::accounts::new_user;
use crate::domain::authorize::{AuthorizeProblem, AuthorizeRequest};
use crate::domain::federation::*;
use crate::domain::pool::Pool;
use crate::domain::secrets::{constant_time_eq, random_token};
use crate::store::UserRecord;
use portcullis_auth::AuthError;
use portcullis_auth::oidc;
use portcullis_config::IdentityProvider;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

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
                .provider_by_identifier(id)
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
                self.now() + LOGIN_LIFETIME,
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
        let now_ms = self.now() * 1000;
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
                // The dummy hash never matches a password: the status refuses password
                // sign-in anyway.
                let rec = new_user(&username, self.dummy_hash.clone(), EXTERNAL_PROVIDER, attrs);
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
