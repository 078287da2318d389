//! What a backend needs at run time (feature `fetch`): the load balancer's public keys fetched by
//! `kid` (from Portcullis's admin listener or AWS's regional endpoint) and kept, JWKS for the
//! standard identity JWT and for Cognito/Portcullis access tokens, and one call that turns a
//! request's headers into a verified [`Identity`] with scope and group helpers.

use crate::client::{HttpClient, http_client};
use crate::jwks::{JwksCache, JwksError, MAX_JWKS_BODY};
use crate::{AlbClaims, AlbVerifier, PublicKey, VerifyError, peek_header};
use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, Full, Limited};
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Largest key document read (as a JWKS).
const MAX_DOC: usize = MAX_JWKS_BODY;
/// Public keys kept (a `kid` names one key forever, so they never go stale).
const MAX_CACHED_KEYS: usize = 64;
/// More keys than any issuer publishes; a larger JWKS is refused.
const MAX_JWKS_KEYS: usize = 100;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

async fn get(http: &HttpClient, url: &str) -> Result<Bytes, VerifyError> {
    let req = http::Request::get(url)
        .body(Full::new(Bytes::new()))
        .map_err(|_| VerifyError::KeyUnavailable)?;
    let fut = async {
        let resp = http
            .request(req)
            .await
            .map_err(|_| VerifyError::KeyUnavailable)?;
        if !resp.status().is_success() {
            return Err(VerifyError::KeyUnavailable);
        }
        Limited::new(resp.into_body(), MAX_DOC)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .map_err(|_| VerifyError::KeyUnavailable)
    };
    tokio::time::timeout(FETCH_TIMEOUT, fut)
        .await
        .map_err(|_| VerifyError::KeyUnavailable)?
}

/// Where the load balancer's public keys are.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Portcullis: `<admin base URL>/public-keys/<kid>`.
    Portcullis(String),
    /// A real ALB: `https://public-keys.auth.elb.<region>.amazonaws.com/<kid>`.
    Aws(String),
}

impl KeySource {
    fn url(&self, kid: &str) -> String {
        match self {
            KeySource::Portcullis(base) => {
                format!("{}/public-keys/{kid}", base.trim_end_matches('/'))
            }
            KeySource::Aws(region) => crate::aws_public_key_url(region, kid),
        }
    }
}

/// A JWKS with its expected issuer (and audience), cached.
struct JwtSource {
    jwks: JwksCache,
    issuer: String,
    audience: Option<String>,
    alg: Algorithm,
}

impl JwtSource {
    async fn verify(&self, token: &str) -> Result<Map<String, Value>, VerifyError> {
        if token.len() > crate::MAX_TOKEN_LEN {
            return Err(VerifyError::Malformed("token too long"));
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed("not a JWT"))?;
        if header.alg != self.alg {
            return Err(VerifyError::UnsupportedAlg(format!("{:?}", header.alg)));
        }
        let kid = header.kid.ok_or(VerifyError::Malformed("no kid"))?;
        let key = self.jwks.decoding_key(&kid).await.map_err(|e| match e {
            JwksError::Unavailable => VerifyError::KeyUnavailable,
            JwksError::UnknownKey => VerifyError::UnknownKey(kid),
            JwksError::UnusableKey => VerifyError::InvalidKey("unusable JWK"),
        })?;
        let mut v = Validation::new(self.alg);
        v.set_issuer(&[&self.issuer]);
        match &self.audience {
            Some(a) => v.set_audience(&[a]),
            None => v.validate_aud = false,
        }
        v.leeway = 5;
        jsonwebtoken::decode::<Map<String, Value>>(token, &key, &v)
            .map(|t| t.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => VerifyError::Expired {
                    exp: 0,
                    now: portcullis_core::now(),
                },
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => {
                    VerifyError::WrongIssuer("(see token)".into())
                }
                _ => VerifyError::BadSignature,
            })
    }
}

/// Verifies what a load balancer sends a backend, fetching and caching keys as needed.
///
/// ```no_run
/// # async fn run(headers: http::HeaderMap) -> Result<(), portcullis_verify::VerifyError> {
/// use portcullis_verify::{AlbVerifier, KeySource, Verifier};
/// let verifier = Verifier::new(
///     AlbVerifier::new("arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/0123456789abcdef")
///         .expect_client("tasks-web"),
///     KeySource::Aws("us-east-1".into()),
/// )
/// .with_access_tokens(
///     "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example/.well-known/jwks.json",
///     "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example",
/// );
/// let who = verifier.identity(&headers).await?;
/// who.require_scope("tasks/read")?;
/// println!("{} in {:?}", who.sub, who.groups);
/// # Ok(()) }
/// ```
pub struct Verifier {
    alb: AlbVerifier,
    keys: KeySource,
    http: HttpClient,
    cache: Mutex<HashMap<String, Arc<PublicKey>>>,
    access: Option<JwtSource>,
    identity_jwt: Option<JwtSource>,
}

impl Verifier {
    /// Verifies `x-amzn-oidc-data` with `alb`'s pins, keys from `keys`.
    pub fn new(alb: AlbVerifier, keys: KeySource) -> Verifier {
        Verifier {
            alb,
            keys,
            http: http_client(),
            cache: Mutex::new(HashMap::new()),
            access: None,
            identity_jwt: None,
        }
    }

    /// Also verify `x-amzn-oidc-accesstoken` (RS256, Cognito or Portcullis) against this JWKS and
    /// issuer; [`Identity::scopes`] and [`Identity::groups`] then come from it.
    pub fn with_access_tokens(mut self, jwks_url: &str, issuer: &str) -> Verifier {
        self.access = Some(JwtSource {
            jwks: JwksCache::new(jwks_url.into(), self.http.clone(), MAX_JWKS_KEYS),
            issuer: issuer.into(),
            audience: None,
            alg: Algorithm::RS256,
        });
        self
    }

    /// Also accept Portcullis's standard identity JWT (`x-portcullis-jwt`, ES256): its JWKS
    /// (`<admin>/.well-known/jwks.json`), issuer (the load balancer ARN) and audience.
    pub fn with_identity_jwt(mut self, jwks_url: &str, issuer: &str, audience: &str) -> Verifier {
        self.identity_jwt = Some(JwtSource {
            jwks: JwksCache::new(jwks_url.into(), self.http.clone(), MAX_JWKS_KEYS),
            issuer: issuer.into(),
            audience: Some(audience.into()),
            alg: Algorithm::ES256,
        });
        self
    }

    async fn key(&self, kid: &str) -> Result<Arc<PublicKey>, VerifyError> {
        if let Some(k) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(kid)
            .cloned()
        {
            return Ok(k);
        }
        // A kid is a UUID; anything else never leaves this process as a URL.
        if kid.len() != 36 || !kid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Err(VerifyError::UnknownKey(kid.chars().take(40).collect()));
        }
        let pem = get(&self.http, &self.keys.url(kid)).await?;
        let key = Arc::new(PublicKey::from_pem(&String::from_utf8_lossy(&pem))?);
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if c.len() >= MAX_CACHED_KEYS {
            c.clear();
        }
        c.insert(kid.to_string(), key.clone());
        Ok(key)
    }

    /// Verifies an `x-amzn-oidc-data` value.
    pub async fn verify_alb(&self, header: &str) -> Result<AlbClaims, VerifyError> {
        let kid = peek_header(header)?.kid;
        let key = self.key(&kid).await?;
        self.alb.verify(header, &key, portcullis_core::now())
    }

    /// Verifies an access token (needs [`Verifier::with_access_tokens`]).
    pub async fn verify_access_token(
        &self,
        token: &str,
    ) -> Result<Map<String, Value>, VerifyError> {
        let src = self
            .access
            .as_ref()
            .ok_or(VerifyError::NotConfigured("access tokens"))?;
        let claims = src.verify(token).await?;
        if claims
            .get("token_use")
            .and_then(Value::as_str)
            .is_some_and(|u| u != "access")
        {
            return Err(VerifyError::Malformed("not an access token"));
        }
        Ok(claims)
    }

    /// Verifies a standard identity JWT (needs [`Verifier::with_identity_jwt`]).
    pub async fn verify_identity_jwt(
        &self,
        token: &str,
    ) -> Result<Map<String, Value>, VerifyError> {
        let src = self
            .identity_jwt
            .as_ref()
            .ok_or(VerifyError::NotConfigured("identity JWTs"))?;
        src.verify(token).await
    }

    /// The verified identity of a request: `x-amzn-oidc-data` (or, when configured and that is
    /// absent, `x-portcullis-jwt`), and the access token when configured.
    pub async fn identity(&self, headers: &HeaderMap) -> Result<Identity, VerifyError> {
        let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
        let (claims, alb) = match (header("x-amzn-oidc-data"), header("x-portcullis-jwt")) {
            (Some(h), _) => {
                let c = self.verify_alb(h).await?;
                (c.claims, Some(c.header))
            }
            (None, Some(j)) if self.identity_jwt.is_some() => {
                (self.verify_identity_jwt(j).await?, None)
            }
            _ => return Err(VerifyError::Missing),
        };
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or(VerifyError::Malformed("no sub"))?
            .to_string();
        if let Some(id) = header("x-amzn-oidc-identity")
            && id != sub
        {
            return Err(VerifyError::Malformed(
                "x-amzn-oidc-identity differs from the signed sub",
            ));
        }
        let (mut scopes, mut groups) = (
            Vec::new(),
            list(claims.get("cognito:groups").or(claims.get("groups"))),
        );
        let mut access_claims = None;
        if self.access.is_some() {
            let token = header("x-amzn-oidc-accesstoken").ok_or(VerifyError::Missing)?;
            let a = self.verify_access_token(token).await?;
            if a.get("sub").and_then(Value::as_str) != Some(sub.as_str()) {
                return Err(VerifyError::Malformed("the access token is another user's"));
            }
            scopes = match a.get("scope").or(a.get("scp")) {
                Some(Value::String(s)) => s
                    .split(' ')
                    .filter(|x| !x.is_empty())
                    .map(String::from)
                    .collect(),
                v => list(v),
            };
            groups = list(a.get("cognito:groups").or(a.get("groups")))
                .into_iter()
                .chain(groups)
                .collect();
            groups.dedup();
            access_claims = Some(a);
        }
        Ok(Identity {
            sub,
            claims,
            scopes,
            groups,
            access_claims,
            alb,
        })
    }
}

fn list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// A verified user.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The stable user id.
    pub sub: String,
    /// The signed claims (userinfo).
    pub claims: Map<String, Value>,
    /// The access token's scopes (empty without access-token verification).
    pub scopes: Vec<String>,
    /// The user's groups (`cognito:groups` or `groups`).
    pub groups: Vec<String>,
    /// The verified access token's claims, when checked.
    pub access_claims: Option<Map<String, Value>>,
    /// The protected header of `x-amzn-oidc-data` (signer, kid, client), when that was the proof.
    pub alb: Option<crate::AlbHeader>,
}

impl Identity {
    /// Whether the access token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// `Err(MissingScope)` unless the token carries `scope`.
    pub fn require_scope(&self, scope: &str) -> Result<(), VerifyError> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(VerifyError::MissingScope(scope.into()))
        }
    }

    /// A string claim.
    pub fn claim(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_helpers_and_key_urls() {
        let who = Identity {
            sub: "u".into(),
            claims: serde_json::json!({"email": "u@example.com"})
                .as_object()
                .unwrap()
                .clone(),
            scopes: vec!["tasks/read".into()],
            groups: vec!["admins".into()],
            access_claims: None,
            alb: None,
        };
        assert!(who.has_scope("tasks/read") && !who.has_scope("tasks/write"));
        assert!(who.in_group("admins") && !who.in_group("users"));
        assert_eq!(
            who.require_scope("tasks/write"),
            Err(VerifyError::MissingScope("tasks/write".into()))
        );
        assert_eq!(who.claim("email"), Some("u@example.com"));
        assert_eq!(list(Some(&serde_json::json!(["a", 1, "b"]))), ["a", "b"]);
        assert_eq!(
            KeySource::Portcullis("http://h:1/".into()).url("k"),
            "http://h:1/public-keys/k"
        );
        assert_eq!(
            KeySource::Aws("eu-west-1".into()).url("k"),
            "https://public-keys.auth.elb.eu-west-1.amazonaws.com/k"
        );
    }
}

#[cfg(feature = "axum")]
mod extract {
    use super::{Identity, Verifier};
    use axum::extract::{FromRef, FromRequestParts};
    use axum::http::StatusCode;
    use axum::http::request::Parts;
    use axum::response::{IntoResponse, Response};
    use std::sync::Arc;

    /// Why the extractor refused a request: 401 (403 is the handler's call, with
    /// [`Identity::require_scope`]).
    pub struct Rejection(pub crate::VerifyError);

    impl IntoResponse for Rejection {
        fn into_response(self) -> Response {
            let status = match self.0 {
                crate::VerifyError::KeyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
                crate::VerifyError::MissingScope(_) => StatusCode::FORBIDDEN,
                _ => StatusCode::UNAUTHORIZED,
            };
            let body =
                serde_json::json!({ "error": "unauthenticated", "message": self.0.to_string() });
            (status, axum::Json(body)).into_response()
        }
    }

    impl From<crate::VerifyError> for Rejection {
        fn from(e: crate::VerifyError) -> Self {
            Rejection(e)
        }
    }

    /// `Identity` as a handler argument: the state provides an `Arc<Verifier>`.
    impl<S> FromRequestParts<S> for Identity
    where
        Arc<Verifier>: FromRef<S>,
        S: Send + Sync,
    {
        type Rejection = Rejection;

        async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
            let v = Arc::<Verifier>::from_ref(state);
            Ok(v.identity(&parts.headers).await?)
        }
    }
}

#[cfg(feature = "axum")]
pub use extract::Rejection;
