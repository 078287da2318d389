//! The load balancer as an OIDC relying party: code exchange, refresh, userinfo and ID-token
//! checks against one provider, server to server, with timeouts and size bounds.

use crate::error::AuthError;
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use jsonwebtoken::{Algorithm, Validation};
use portcullis_config::ClientAuthMethod;
use portcullis_verify::client::HttpClient;
use portcullis_verify::jwks::JwksCache;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::Duration;

/// Longest time a call to the IdP may take.
pub const IDP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest IdP response body read.
pub const MAX_IDP_BODY: usize = 64 * 1024;
/// User claims plus access token above this are refused (ALB: 11 KB).
pub const MAX_CLAIMS_AND_TOKEN: usize = 11 * 1024;
/// More keys than any provider publishes; a larger set is refused.
const MAX_PROVIDER_KEYS: usize = 100;

/// A provider's endpoints and the client's credentials, resolved from config.
#[derive(Clone)]
pub struct ProviderConfig {
    /// Expected `iss`.
    pub issuer: String,
    /// Browser redirect target.
    pub authorization_endpoint: String,
    /// Code and refresh exchange.
    pub token_endpoint: String,
    /// Claims.
    pub user_info_endpoint: String,
    /// Keys for ID-token signatures, when known.
    pub jwks_uri: Option<String>,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: String,
    /// Basic or post.
    pub auth_method: ClientAuthMethod,
    /// RFC 7009 revocation endpoint, for logout.
    pub revocation_endpoint: Option<String>,
    /// How the provider signs a user out, for logout.
    pub end_session: Option<EndSession>,
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A provider's sign-out endpoint.
#[derive(Debug, Clone)]
pub enum EndSession {
    /// Cognito's `/logout?client_id=&logout_uri=`.
    Cognito(String),
    /// OIDC RP-initiated logout: `id_token_hint`, `post_logout_redirect_uri`, `client_id`.
    Oidc(String),
}

/// The parts of a provider's discovery document the relying party uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    /// Must equal the configured issuer.
    pub issuer: String,
    /// Browser redirect target.
    pub authorization_endpoint: String,
    /// Code and refresh exchange.
    pub token_endpoint: String,
    /// Claims.
    pub userinfo_endpoint: String,
    /// Keys for ID-token signatures.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// RFC 7009 revocation.
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    /// RP-initiated logout.
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
}

/// Why a provider's discovery document could not be used; each names the URL.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The request could not be built from the issuer.
    #[error("{url}: {source}")]
    BadUrl {
        /// The discovery URL.
        url: String,
        /// Why.
        #[source]
        source: http::Error,
    },
    /// The provider could not be reached.
    #[error("{url}: {source}")]
    Unreachable {
        /// The discovery URL.
        url: String,
        /// Why.
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// The provider answered with an error status.
    #[error("{url}: HTTP {status}")]
    Status {
        /// The discovery URL.
        url: String,
        /// What it answered.
        status: StatusCode,
    },
    /// The body was too large or could not be read.
    #[error("{url}: body larger than 64 KiB or unreadable")]
    Body {
        /// The discovery URL.
        url: String,
    },
    /// The body is not a discovery document.
    #[error("{url}: not a discovery document: {source}")]
    NotADocument {
        /// The discovery URL.
        url: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// No answer within [`IDP_TIMEOUT`].
    #[error("{url}: timed out")]
    Timeout {
        /// The discovery URL.
        url: String,
    },
    /// The document names another issuer (OpenID Connect Discovery §4.3).
    #[error("{url}: the document's issuer `{found}` is not `{expected}`")]
    OtherIssuer {
        /// The discovery URL.
        url: String,
        /// The issuer the document names.
        found: String,
        /// The configured issuer.
        expected: String,
    },
}

/// Fetches `<issuer>/.well-known/openid-configuration` (at start, not per request) and checks
/// that it names the same issuer (OpenID Connect Discovery §4.3).
pub async fn discover(http: &HttpClient, issuer: &str) -> Result<Discovery, DiscoveryError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let req = Request::builder()
        .uri(&url)
        .body(Full::new(Bytes::new()))
        .map_err(|source| DiscoveryError::BadUrl {
            url: url.clone(),
            source,
        })?;
    let fetch = async {
        let resp = http
            .request(req)
            .await
            .map_err(|source| DiscoveryError::Unreachable {
                url: url.clone(),
                source,
            })?;
        if !resp.status().is_success() {
            return Err(DiscoveryError::Status {
                url: url.clone(),
                status: resp.status(),
            });
        }
        let body = Limited::new(resp.into_body(), MAX_IDP_BODY)
            .collect()
            .await
            .map_err(|_| DiscoveryError::Body { url: url.clone() })?
            .to_bytes();
        serde_json::from_slice::<Discovery>(&body).map_err(|source| DiscoveryError::NotADocument {
            url: url.clone(),
            source,
        })
    };
    let doc = tokio::time::timeout(IDP_TIMEOUT, fetch)
        .await
        .map_err(|_| DiscoveryError::Timeout { url: url.clone() })??;
    if doc.issuer != issuer {
        return Err(DiscoveryError::OtherIssuer {
            url,
            found: doc.issuer,
            expected: issuer.to_string(),
        });
    }
    Ok(doc)
}

/// What the token endpoint answered.
#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    /// Goes to `x-amzn-oidc-accesstoken`.
    pub access_token: String,
    /// Checked, never forwarded.
    #[serde(default)]
    pub id_token: Option<String>,
    /// Kept in the session for refresh.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Access-token lifetime in seconds.
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// One configured provider and its cached keys.
pub struct Provider {
    /// Resolved settings.
    pub config: ProviderConfig,
    http: HttpClient,
    jwks: Option<JwksCache>,
}

enum CallError {
    Timeout,
    Status(StatusCode, Bytes),
    Body,
}

impl Provider {
    /// A provider using the shared client.
    pub fn new(config: ProviderConfig, http: HttpClient) -> Self {
        let jwks = config
            .jwks_uri
            .clone()
            .map(|u| JwksCache::new(u, http.clone(), MAX_PROVIDER_KEYS));
        Provider { config, http, jwks }
    }

    async fn call(&self, req: Request<Full<Bytes>>) -> Result<Bytes, CallError> {
        let fut = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|_| CallError::Timeout)?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), MAX_IDP_BODY)
                .collect()
                .await
                .map_err(|_| CallError::Body)?
                .to_bytes();
            if status.is_success() {
                Ok(body)
            } else {
                Err(CallError::Status(status, body))
            }
        };
        tokio::time::timeout(IDP_TIMEOUT, fut)
            .await
            .unwrap_or(Err(CallError::Timeout))
    }

    /// A client-authenticated form POST to `url` (token and revocation endpoints).
    fn client_post(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<Request<Full<Bytes>>, AuthError> {
        let c = &self.config;
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(url)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json");
        let body = {
            let mut body = form_urlencoded::Serializer::new(String::new());
            for (k, v) in form {
                body.append_pair(k, v);
            }
            if c.auth_method == ClientAuthMethod::ClientSecretPost {
                body.append_pair("client_id", &c.client_id);
                body.append_pair("client_secret", &c.client_secret);
            }
            body.finish()
        };
        if c.auth_method == ClientAuthMethod::ClientSecretBasic {
            use base64::Engine;
            // RFC 6749 §2.3.1: form-encode id and secret before Basic.
            let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let cred = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                enc(&c.client_id),
                enc(&c.client_secret)
            ));
            req = req.header(header::AUTHORIZATION, format!("Basic {cred}"));
        }
        req.body(Full::new(Bytes::from(body)))
            .map_err(|_| AuthError::Unhandled)
    }

    async fn token_call(&self, form: &[(&str, &str)]) -> Result<TokenResponse, AuthError> {
        let req = self.client_post(&self.config.token_endpoint, form)?;
        match self.call(req).await {
            Ok(body) => serde_json::from_slice(&body).map_err(|_| AuthError::InvalidTokenResponse),
            Err(CallError::Timeout) => Err(AuthError::TokenEpRequestTimeout),
            Err(CallError::Body) => Err(AuthError::InvalidTokenResponse),
            Err(CallError::Status(status, body)) => {
                let error = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned));
                tracing::info!(%status, error = error.as_deref().unwrap_or("-"), "token endpoint refused");
                if error.as_deref() == Some("invalid_grant") {
                    Err(AuthError::InvalidGrant)
                } else {
                    Err(AuthError::TokenEpRequestFailed)
                }
            }
        }
    }

    /// Exchanges an authorization code.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<&str>,
    ) -> Result<TokenResponse, AuthError> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ];
        if let Some(v) = code_verifier {
            form.push(("code_verifier", v));
        }
        let t = self.token_call(&form).await?;
        if t.id_token.is_none() {
            return Err(AuthError::InvalidTokenResponse);
        }
        Ok(t)
    }

    /// Revokes a refresh token (RFC 7009), when the provider has a revocation endpoint. Best effort:
    /// a failure is logged, and the session is ended regardless.
    pub async fn revoke(&self, refresh_token: &str) {
        let Some(url) = &self.config.revocation_endpoint else {
            return;
        };
        match self.client_post(
            url,
            &[
                ("token", refresh_token),
                ("token_type_hint", "refresh_token"),
            ],
        ) {
            Ok(req) => match self.call(req).await {
                Ok(_) => tracing::debug!("refresh token revoked"),
                Err(CallError::Status(status, _)) => {
                    tracing::warn!(%status, "revocation endpoint refused")
                }
                Err(_) => tracing::warn!("revocation endpoint unreachable"),
            },
            Err(_) => tracing::warn!("revocation request could not be built"),
        }
    }

    /// Uses a refresh token.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse, AuthError> {
        self.token_call(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    /// Fetches userinfo and enforces the 11 KB claims + token bound.
    pub async fn userinfo(&self, access_token: &str) -> Result<Map<String, Value>, AuthError> {
        self.userinfo_by(access_token, Method::GET).await
    }

    /// As [`Provider::userinfo`], with `GET` or `POST` (a user pool's `attributes_request_method`).
    pub async fn userinfo_by(
        &self,
        access_token: &str,
        method: Method,
    ) -> Result<Map<String, Value>, AuthError> {
        let req = Request::builder()
            .method(method)
            .uri(&self.config.user_info_endpoint)
            .header(header::AUTHORIZATION, format!("Bearer {access_token}"))
            .header(header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|_| AuthError::Unhandled)?;
        let body = match self.call(req).await {
            Ok(b) => b,
            Err(CallError::Timeout) => return Err(AuthError::UserinfoEpRequestTimeout),
            Err(CallError::Body) => return Err(AuthError::UserinfoResponseSizeExceeded),
            Err(CallError::Status(..)) => return Err(AuthError::UserinfoEpRequestFailed),
        };
        if body.len() + access_token.len() > MAX_CLAIMS_AND_TOKEN {
            return Err(AuthError::UserinfoResponseSizeExceeded);
        }
        let claims: Map<String, Value> =
            serde_json::from_slice(&body).map_err(|_| AuthError::InvalidUserinfoResponse)?;
        match claims.get("sub") {
            Some(Value::String(s)) if !s.is_empty() => Ok(claims),
            _ => Err(AuthError::InvalidUserinfoResponse),
        }
    }

    /// Checks an ID token ([`validate_id_claims`], and its signature when the provider's JWKS is
    /// known); returns its `sub` (which userinfo must repeat), `sid` and `iat`.
    pub async fn check_id_token(
        &self,
        id_token: &str,
        nonce: Option<&str>,
    ) -> Result<IdTokenFacts, AuthError> {
        let (sub, claims) = self.verified_id_claims(id_token, nonce).await?;
        let sid = match claims.get("sid") {
            None => None,
            Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_SID => Some(s.clone()),
            Some(_) => {
                tracing::info!(issuer = %self.config.issuer, "ID token refused: sid is not a string of 1 to 255 bytes");
                return Err(AuthError::InvalidIdToken);
            }
        };
        let iat = claims.get("iat").and_then(Value::as_u64).unwrap_or(0);
        Ok(IdTokenFacts { sub, sid, iat })
    }

    /// As [`Provider::check_id_token`], returning the claims too (a user pool maps them onto its
    /// users' attributes).
    pub async fn verified_id_claims(
        &self,
        id_token: &str,
        nonce: Option<&str>,
    ) -> Result<(String, Map<String, Value>), AuthError> {
        let claims = self.id_token_claims(id_token).await?;
        let sub = validate_id_claims(&claims, &self.config, nonce, portcullis_core::now())?;
        Ok((sub, claims))
    }

    /// Whether ID-token signatures are checked against a JWKS (a user pool requires it).
    pub fn checks_signatures(&self) -> bool {
        self.jwks.is_some()
    }

    /// The provider's key set, when its `jwks_uri` is known (back-channel logout tokens).
    pub fn jwks(&self) -> Option<&JwksCache> {
        self.jwks.as_ref()
    }

    /// The ID token's claims: signature-checked when the provider's JWKS is known; otherwise
    /// read as they came from the token endpoint over the back channel (OIDC Core §3.1.3.7 6).
    async fn id_token_claims(&self, id_token: &str) -> Result<Map<String, Value>, AuthError> {
        let c = &self.config;
        let Some(jwks) = &self.jwks else {
            return jsonwebtoken::dangerous::insecure_decode_claims(id_token)
                .map_err(|_| AuthError::InvalidIdToken);
        };
        let header =
            jsonwebtoken::decode_header(id_token).map_err(|_| AuthError::InvalidIdToken)?;
        let kid = header.kid.ok_or(AuthError::InvalidIdToken)?;
        let key = jwks
            .decoding_key(&kid)
            .await
            .map_err(|_| AuthError::InvalidIdToken)?;
        let mut v = Validation::new(if header.alg == Algorithm::ES256 {
            Algorithm::ES256
        } else {
            Algorithm::RS256
        });
        v.set_issuer(&[&c.issuer]);
        v.set_audience(&[&c.client_id]);
        v.leeway = ID_TOKEN_LEEWAY;
        jsonwebtoken::decode::<Map<String, Value>>(id_token, &key, &v)
            .map(|t| t.claims)
            .map_err(|_| AuthError::InvalidIdToken)
    }
}

/// What a checked ID token says about its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenFacts {
    /// The user, which userinfo must repeat.
    pub sub: String,
    /// The provider's session id, by which revocations name the session.
    pub sid: Option<String>,
    /// When it was issued (the provider's clock): when a new session began.
    pub iat: u64,
}

/// The longest `sid` accepted (OIDC does not bound it; session ids are short).
pub const MAX_SID: usize = 255;

/// Clock skew allowed on an ID token's `exp` and `iat`, in seconds.
pub const ID_TOKEN_LEEWAY: u64 = 60;

/// The longest `sub` OIDC Core allows (§2: 255 ASCII characters).
const MAX_SUB: usize = 255;

/// OIDC Core §3.1.3.7 on an ID token's claims, whether or not its signature could be checked:
/// `iss` is the provider's; `aud` names this client (and, with several audiences, `azp` is this
/// client, as it must be whenever present); `exp` is not past and `iat` not in the future (both
/// required, numeric, with [`ID_TOKEN_LEEWAY`]); `sub` is a non-empty string of at most 255
/// characters; and the `nonce` is the one sent, when one was. Returns the `sub`.
pub fn validate_id_claims(
    claims: &Map<String, Value>,
    c: &ProviderConfig,
    nonce: Option<&str>,
    now: u64,
) -> Result<String, AuthError> {
    let bad = |why: &'static str| {
        tracing::info!(why, issuer = %c.issuer, "ID token refused");
        AuthError::InvalidIdToken
    };
    if claims.get("iss").and_then(Value::as_str) != Some(c.issuer.as_str()) {
        return Err(bad("iss is not the provider's"));
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a
            .iter()
            .map(Value::as_str)
            .collect::<Option<_>>()
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    if !audiences.contains(&c.client_id.as_str()) {
        return Err(bad("aud does not name this client"));
    }
    match claims.get("azp") {
        None if audiences.len() > 1 => return Err(bad("several audiences and no azp")),
        None => {}
        Some(a) if a.as_str() == Some(c.client_id.as_str()) => {}
        Some(_) => return Err(bad("azp is another client")),
    }
    let time = |name: &str| {
        claims.get(name).and_then(|v| {
            v.as_u64().or_else(|| {
                v.as_f64()
                    .filter(|f| f.is_finite() && *f >= 0.0)
                    .map(|f| f as u64)
            })
        })
    };
    match time("exp") {
        Some(exp) if exp.saturating_add(ID_TOKEN_LEEWAY) > now => {}
        Some(_) => return Err(bad("expired")),
        None => return Err(bad("no exp")),
    }
    match time("iat") {
        Some(iat) if iat <= now.saturating_add(ID_TOKEN_LEEWAY) => {}
        Some(_) => return Err(bad("issued in the future")),
        None => return Err(bad("no iat")),
    }
    let sub = match claims.get("sub").and_then(Value::as_str) {
        Some(s) if !s.is_empty() && s.len() <= MAX_SUB => s.to_string(),
        _ => return Err(bad("no sub")),
    };
    if let Some(n) = nonce {
        let sent = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
        if aws_lc_rs::constant_time::verify_slices_are_equal(sent.as_bytes(), n.as_bytes()).is_err()
        {
            return Err(bad("nonce is not the one sent"));
        }
    }
    Ok(sub)
}

/// Whether a userinfo answer is about the ID token's user (OIDC Core §5.3.2: its `sub` must be
/// the ID token's exactly, or the response is not used).
pub fn same_subject(userinfo: &Map<String, Value>, id_sub: &str) -> Result<(), AuthError> {
    let sub = userinfo.get("sub").and_then(Value::as_str).unwrap_or("");
    if sub.as_bytes() == id_sub.as_bytes() {
        Ok(())
    } else {
        tracing::info!("userinfo is about another subject than the ID token");
        Err(AuthError::InvalidUserinfoResponse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn provider() -> ProviderConfig {
        ProviderConfig {
            issuer: "https://idp.example".into(),
            authorization_endpoint: String::new(),
            token_endpoint: String::new(),
            user_info_endpoint: String::new(),
            jwks_uri: None,
            client_id: "me".into(),
            client_secret: String::new(),
            auth_method: ClientAuthMethod::ClientSecretBasic,
            revocation_endpoint: None,
            end_session: None,
        }
    }

    const NOW: u64 = 1_700_000_000;

    fn good() -> Map<String, Value> {
        let v = json!({"iss": "https://idp.example", "aud": "me", "exp": NOW + 300, "iat": NOW, "sub": "u-1", "nonce": "n"});
        v.as_object().unwrap().clone()
    }

    fn check(edit: impl FnOnce(&mut Map<String, Value>)) -> Result<String, AuthError> {
        let mut c = good();
        edit(&mut c);
        validate_id_claims(&c, &provider(), Some("n"), NOW)
    }

    #[test]
    fn id_token_claims_are_all_required() {
        assert_eq!(check(|_| {}), Ok("u-1".into()));
        for claim in ["iss", "aud", "exp", "iat", "sub"] {
            assert_eq!(
                check(|c| {
                    c.remove(claim);
                }),
                Err(AuthError::InvalidIdToken),
                "{claim}"
            );
        }
        let bad: [(&str, Value); 9] = [
            ("iss", json!("https://evil.example")),
            ("aud", json!("other")),
            ("aud", json!(["other", 1])),
            ("exp", json!(NOW - 61)),
            ("exp", json!("soon")),
            ("iat", json!(NOW + 61)),
            ("sub", json!("")),
            ("sub", json!(7)),
            ("nonce", json!("m")),
        ];
        for (k, v) in bad {
            assert_eq!(
                check(|c| {
                    c.insert(k.into(), v.clone());
                }),
                Err(AuthError::InvalidIdToken),
                "{k}={v}"
            );
        }
        assert_eq!(
            check(|c| {
                c.remove("nonce");
            }),
            Err(AuthError::InvalidIdToken)
        );
        let mut c = good();
        c.remove("nonce");
        assert!(
            validate_id_claims(&c, &provider(), None, NOW).is_ok(),
            "no nonce asked"
        );
    }

    #[test]
    fn azp_with_several_audiences() {
        assert!(
            check(|c| {
                c.insert("aud".into(), json!(["me"]));
            })
            .is_ok()
        );
        assert_eq!(
            check(|c| {
                c.insert("aud".into(), json!(["me", "other"]));
            }),
            Err(AuthError::InvalidIdToken),
            "several audiences need azp"
        );
        assert_eq!(
            check(|c| {
                c.insert("aud".into(), json!(["me", "other"]));
                c.insert("azp".into(), json!("other"));
            }),
            Err(AuthError::InvalidIdToken)
        );
        assert!(
            check(|c| {
                c.insert("aud".into(), json!(["me", "other"]));
                c.insert("azp".into(), json!("me"));
            })
            .is_ok()
        );
        assert_eq!(
            check(|c| {
                c.insert("azp".into(), json!("other"));
            }),
            Err(AuthError::InvalidIdToken),
            "a present azp must be this client"
        );
    }

    #[test]
    fn userinfo_must_be_about_the_same_subject() {
        let ui = |sub: &str| json!({"sub": sub}).as_object().unwrap().clone();
        assert_eq!(same_subject(&ui("u-1"), "u-1"), Ok(()));
        assert_eq!(
            same_subject(&ui("u-2"), "u-1"),
            Err(AuthError::InvalidUserinfoResponse)
        );
        assert_eq!(
            same_subject(&ui("U-1"), "u-1"),
            Err(AuthError::InvalidUserinfoResponse)
        );
    }
}
