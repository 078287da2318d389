//! User-pool federation, as Cognito does it: external OIDC providers (config or admin API) whose
//! users sign in through the pool. `/oauth2/authorize` with `identity_provider=` (or a hosted-UI
//! button) sends the browser to the provider with `state`, PKCE (S256) and a `nonce` bound to the
//! browser by a cookie; `/oauth2/idpresponse` exchanges the code, checks the ID token and userinfo
//! with the load balancer's relying party (`portcullis_auth::oidc`), keeps the user
//! `<ProviderName>_<sub>` (status `EXTERNAL_PROVIDER`, an `identities` attribute, mapped attributes
//! updated at each sign-in) and continues the client's authorization as a password sign-in would.

use crate::store::{Put, Store, StoreError};
use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_auth::oidc::{self, ProviderConfig};
use portcullis_auth::{AuthError, Provider};
use portcullis_config::{ClientAuthMethod, IdentityProvider};
use portcullis_verify::client::{HttpClient, http_client};
use serde::{Deserialize, Serialize};
use serde_json::Value;
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

/// Why a configured identity provider cannot be written to the store.
#[derive(Debug, thiserror::Error)]
pub enum SeedProviderError {
    /// Its secret names an environment variable that is not set.
    #[error(transparent)]
    MissingSecret(#[from] portcullis_core::secret::SecretError),
    /// The store refused.
    #[error("{at}: {source}")]
    Store {
        /// Where in the config.
        at: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
}

/// Writes the config's providers to the store (their secrets resolved), keeping the creation date
/// of those stored before; providers created through the API are left as they are. `now` is the
/// pool's time.
pub async fn seed_providers(
    cfg: &portcullis_config::UserPool,
    store: &dyn Store,
    pool: &str,
    now: i64,
) -> Result<(), SeedProviderError> {
    for (i, ip) in cfg.identity_providers.iter().enumerate() {
        let at = format!("user_pools[{}].identity_providers[{i}]", cfg.name);
        let mut provider = ip.clone();
        provider.client_secret = portcullis_core::secret::literal_or_env(
            provider.client_secret.as_deref(),
            provider.client_secret_env.take().as_deref(),
            &format!("{at}.client_secret_env"),
        )?;
        let err = |source| SeedProviderError::Store {
            at: at.clone(),
            source,
        };
        let existing = store
            .object(pool, IDENTITY_PROVIDER, &provider.name)
            .await
            .map_err(err)?
            .and_then(|b| serde_json::from_str::<StoredProvider>(&b).ok());
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

pub(crate) fn sha256_b64(s: &str) -> String {
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
pub(crate) fn is_binding(v: &str) -> bool {
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
pub(crate) fn attribute_value(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Null => return None,
        other => other.to_string(),
    };
    (s.len() <= MAX_ATTRIBUTE_VALUE && !s.chars().any(|c| c.is_control() && c != '\n')).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::secrets::random_token;
    use serde_json::json;

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
