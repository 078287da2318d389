//! ALB's `jwt-validation` action: a machine client's `Authorization: Bearer <JWT>` is checked
//! against the provider's JWKS (RS256 or ES256, where ALB takes RS256 only), the issuer, `exp`, and
//! `nbf`/`iat` when present, then up to 10 more claims; with `require_scopes` the same scope rule as
//! the cookie sessions applies. No state, no cookies: each request carries its proof.

use http::HeaderMap;
use jsonwebtoken::{Algorithm, Validation};
use portcullis_config::{AdditionalClaim, JwtValidation};
use portcullis_verify::client::HttpClient;
use portcullis_verify::jwks::{JwksCache, JwksError};
use serde_json::{Map, Value};

/// ALB reads at most 10 keys from a JWKS.
pub const MAX_KEYS: usize = 10;
/// Longest bearer token read (the 16 KB header limit bounds it too).
pub const MAX_TOKEN: usize = 16 * 1024;
/// Clock skew allowed on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECONDS: u64 = 60;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtRejection {
    /// No bearer token (401, `WWW-Authenticate: Bearer`).
    Missing,
    /// A token that fails a check (401, `error="invalid_token"`); the reason is for the log.
    Invalid(&'static str),
    /// A valid token without a required scope (403, `error="insufficient_scope"`).
    InsufficientScope(String),
    /// The JWKS could not be fetched (500).
    KeysUnavailable,
}

impl JwtRejection {
    /// HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            JwtRejection::Missing | JwtRejection::Invalid(_) => 401,
            JwtRejection::InsufficientScope(_) => 403,
            JwtRejection::KeysUnavailable => 500,
        }
    }

    /// The access log's `error_reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            JwtRejection::Missing => "JwtMissing",
            JwtRejection::Invalid(_) => "JwtInvalid",
            JwtRejection::InsufficientScope(_) => "JwtInsufficientScope",
            JwtRejection::KeysUnavailable => "JwtKeysUnavailable",
        }
    }

    /// The `WWW-Authenticate` value (RFC 6750).
    pub fn www_authenticate(&self) -> Option<String> {
        match self {
            JwtRejection::Missing => Some("Bearer".into()),
            JwtRejection::Invalid(why) => Some(format!(
                "Bearer error=\"invalid_token\", error_description=\"{why}\""
            )),
            JwtRejection::InsufficientScope(s) => Some(format!(
                "Bearer error=\"insufficient_scope\", scope=\"{s}\""
            )),
            JwtRejection::KeysUnavailable => None,
        }
    }

    /// A short JSON body for the client.
    pub fn body(&self) -> String {
        let message = match self {
            JwtRejection::Missing => "a bearer token is required".to_string(),
            JwtRejection::Invalid(why) => format!("the bearer token is not valid: {why}"),
            JwtRejection::InsufficientScope(s) => format!("the bearer token lacks scope {s}"),
            JwtRejection::KeysUnavailable => "the token issuer's keys are unavailable".to_string(),
        };
        serde_json::json!({ "error": self.reason(), "message": message }).to_string()
    }
}

/// A compiled `jwt-validation` action.
pub struct JwtValidator {
    issuer: String,
    claims: Vec<AdditionalClaim>,
    require_scopes: Vec<String>,
    jwks: JwksCache,
}

impl JwtValidator {
    /// From config, sharing the balancer's HTTP client.
    pub fn new(cfg: &JwtValidation, http: HttpClient) -> JwtValidator {
        JwtValidator {
            issuer: cfg.issuer.clone(),
            claims: cfg.additional_claims.clone(),
            require_scopes: cfg.require_scopes.clone(),
            jwks: JwksCache::new(cfg.jwks_endpoint.clone(), http, MAX_KEYS),
        }
    }

    /// Checks the request's bearer token; returns its claims.
    pub async fn check(&self, headers: &HeaderMap) -> Result<Map<String, Value>, JwtRejection> {
        let token = bearer(headers).ok_or(JwtRejection::Missing)?;
        if token.len() > MAX_TOKEN {
            return Err(JwtRejection::Invalid("token too large"));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| JwtRejection::Invalid("malformed token"))?;
        let alg = match header.alg {
            Algorithm::RS256 | Algorithm::ES256 => header.alg,
            _ => return Err(JwtRejection::Invalid("unsupported algorithm")),
        };
        let kid = header.kid.ok_or(JwtRejection::Invalid("no kid"))?;
        // Parsed once per fetched key set, not per request.
        let key = self.jwks.decoding_key(&kid).await.map_err(|e| match e {
            JwksError::Unavailable => JwtRejection::KeysUnavailable,
            JwksError::UnknownKey => JwtRejection::Invalid("unknown key"),
            JwksError::UnusableKey => JwtRejection::Invalid("unusable key"),
        })?;
        let mut v = Validation::new(alg);
        v.set_issuer(&[&self.issuer]);
        v.set_required_spec_claims(&["exp", "iss"]);
        v.validate_aud = false;
        v.validate_nbf = true;
        v.leeway = LEEWAY_SECONDS;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &v)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                JwtRejection::Invalid(match e.kind() {
                    K::ExpiredSignature => "expired",
                    K::ImmatureSignature => "not yet valid",
                    K::InvalidIssuer => "wrong issuer",
                    K::InvalidSignature => "bad signature",
                    K::MissingRequiredClaim(_) => "missing exp or iss",
                    _ => "malformed token",
                })
            })?
            .claims;
        if claims
            .get("iat")
            .and_then(Value::as_u64)
            .is_some_and(|iat| iat > portcullis_core::now() + LEEWAY_SECONDS)
        {
            return Err(JwtRejection::Invalid("issued in the future"));
        }
        for c in &self.claims {
            if !claim_matches(c, claims.get(&c.name)) {
                return Err(JwtRejection::Invalid("a required claim does not match"));
            }
        }
        let scopes = token_scopes(&claims);
        if let Some(missing) = self.require_scopes.iter().find(|s| !scopes.contains(s)) {
            return Err(JwtRejection::InsufficientScope(missing.clone()));
        }
        Ok(claims)
    }
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// `scope` (space-separated) or `scp` (array or string), as OAuth providers spell it.
pub fn token_scopes(claims: &Map<String, Value>) -> Vec<String> {
    match claims.get("scope").or_else(|| claims.get("scp")) {
        Some(Value::String(s)) => s
            .split(' ')
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

/// ALB's three formats; each passes when the claim holds one of the configured values.
pub fn claim_matches(c: &AdditionalClaim, got: Option<&Value>) -> bool {
    let wanted = |s: &str| c.values.iter().any(|v| v == s);
    match (c.format.as_str(), got) {
        ("single-string", Some(Value::String(s))) => wanted(s),
        ("string-array", Some(Value::Array(a))) => a.iter().filter_map(Value::as_str).any(wanted),
        ("space-separated-values", Some(Value::String(s))) => s.split(' ').any(wanted),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claim(format: &str, values: &[&str]) -> AdditionalClaim {
        AdditionalClaim {
            format: format.into(),
            name: "x".into(),
            values: values.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_three_formats() {
        let single = claim("single-string", &["a", "b"]);
        assert!(claim_matches(&single, Some(&json!("b"))));
        assert!(!claim_matches(&single, Some(&json!("c"))));
        assert!(!claim_matches(&single, Some(&json!(["a"]))), "wrong shape");
        assert!(!claim_matches(&single, None));
        let array = claim("string-array", &["admins"]);
        assert!(claim_matches(&array, Some(&json!(["users", "admins"]))));
        assert!(!claim_matches(&array, Some(&json!(["users"]))));
        assert!(
            !claim_matches(&array, Some(&json!("admins"))),
            "a string is not an array"
        );
        let spaced = claim("space-separated-values", &["tasks/read"]);
        assert!(claim_matches(&spaced, Some(&json!("openid tasks/read"))));
        assert!(!claim_matches(&spaced, Some(&json!("openid tasks/readx"))));
    }

    #[test]
    fn bearer_and_scopes() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "bEaReR  abc.def.ghi ".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc.def.ghi"));
        h.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
        let c = json!({"scope": "a b"}).as_object().unwrap().clone();
        assert_eq!(token_scopes(&c), ["a", "b"]);
        let c = json!({"scp": ["x"]}).as_object().unwrap().clone();
        assert_eq!(token_scopes(&c), ["x"]);
    }
}
