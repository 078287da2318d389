//! The back-channel logout endpoint of the [`Authenticator`]: finds the provider a logout token
//! names, verifies it and ends its sessions. What a valid token is lives in [`crate::backchannel`].

use super::{AuthAction, Authenticator, Outcome};
use crate::backchannel::{LogoutRefusal, asymmetric, logout_token, typ_ok, validate_logout_claims};
use crate::error::AuthError;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, Response, StatusCode, request::Parts};
use jsonwebtoken::Validation;
use portcullis_verify::jwks::JwksError;
use serde_json::{Map, Value};
use std::sync::Arc;

/// An answer the balancer sends as is (`Cache-Control: no-store`).
fn answer(status: StatusCode, body: Bytes, json: bool) -> Response<Bytes> {
    let mut b = Response::builder()
        .status(status)
        .header(CACHE_CONTROL, "no-store")
        .header(http::header::SERVER, "awselb/2.0");
    if json {
        b = b.header(CONTENT_TYPE, "application/json");
    }
    b.body(body).unwrap_or_default()
}

/// The 400 (or 405) with a JSON error for a refused token.
fn refusal(r: LogoutRefusal) -> Outcome {
    let status = if r == LogoutRefusal::Method {
        StatusCode::METHOD_NOT_ALLOWED
    } else {
        StatusCode::BAD_REQUEST
    };
    let body =
        serde_json::json!({ "error": "invalid_request", "error_description": r.to_string() });
    let mut response = answer(status, Bytes::from(body.to_string()), true);
    if r == LogoutRefusal::Method {
        response
            .headers_mut()
            .insert(http::header::ALLOW, http::HeaderValue::from_static("POST"));
    }
    Outcome::Respond {
        response,
        error: Some(AuthError::InvalidLogoutToken),
    }
}

impl Authenticator {
    /// Handles `POST /oauth2/backchannel-logout` for the listener's authenticate `actions`:
    /// `body` is the request body, `None` when it was over
    /// [`MAX_LOGOUT_BODY`](crate::backchannel::MAX_LOGOUT_BODY) or unreadable.
    /// 200 (`Cache-Control: no-store`) when the token is valid; 400 with a JSON error otherwise.
    pub async fn backchannel_logout(
        &self,
        actions: &[Arc<AuthAction>],
        parts: &Parts,
        body: Option<&[u8]>,
    ) -> Outcome {
        match self.accept_logout(actions, parts, body).await {
            Ok(()) => {
                self.observer().logout_token(true);
                Outcome::Respond {
                    response: answer(StatusCode::OK, Bytes::new(), false),
                    error: None,
                }
            }
            Err(r) => {
                tracing::info!(why = %r, "back-channel logout token refused");
                self.observer().logout_token(false);
                refusal(r)
            }
        }
    }

    async fn accept_logout(
        &self,
        actions: &[Arc<AuthAction>],
        parts: &Parts,
        body: Option<&[u8]>,
    ) -> Result<(), LogoutRefusal> {
        use LogoutRefusal as R;
        if parts.method != Method::POST {
            return Err(R::Method);
        }
        let form = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form {
            return Err(R::ContentType);
        }
        let body = body.ok_or(R::Body)?;
        let token = logout_token(body)?;
        let header = jsonwebtoken::decode_header(&token).map_err(|_| R::Malformed)?;
        if !asymmetric(header.alg) {
            return Err(R::Malformed);
        }
        if !typ_ok(header.typ.as_deref()) {
            return Err(R::Type);
        }
        // Which provider: by the (not yet verified) `iss` and `aud`; verified below.
        let unverified: Map<String, Value> =
            jsonwebtoken::dangerous::insecure_decode_claims(&token).map_err(|_| R::Malformed)?;
        let iss = unverified.get("iss").and_then(Value::as_str).unwrap_or("");
        let names = |client: &str| match unverified.get("aud") {
            Some(Value::String(a)) => a == client,
            Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(client)),
            _ => false,
        };
        let action = actions
            .iter()
            .find(|a| a.provider.config.issuer == iss && names(&a.provider.config.client_id))
            .ok_or(R::UnknownIssuer)?;
        let provider = &action.provider;
        let jwks = provider.jwks().ok_or(R::NoKeys)?;
        let kid = header.kid.as_deref().ok_or(R::UnknownKey)?;
        let key = jwks.decoding_key(kid).await.map_err(|e| match e {
            JwksError::Unavailable => R::KeysUnavailable,
            JwksError::UnknownKey | JwksError::UnusableKey => R::UnknownKey,
        })?;
        let mut v = Validation::new(header.alg);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        v.validate_nbf = false;
        v.validate_aud = false;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(&token, &key, &v)
            .map_err(|_| R::Signature)?
            .claims;
        let now = self.now();
        let c = &provider.config;
        let facts = validate_logout_claims(&claims, &c.issuer, &c.client_id, now)?;
        self.logout_replay
            .first_use(&c.issuer, &facts.jti, facts.iat, now)?;
        let sub = facts.sub.as_deref().unwrap_or("");
        self.revocations()
            .end_and_share(&c.issuer, facts.sid.as_deref(), sub, facts.iat, now);
        tracing::info!(
            issuer = %c.issuer,
            sid = facts.sid.as_deref().unwrap_or("-"),
            sub = facts.sub.as_deref().unwrap_or("-"),
            "back-channel logout: session ended"
        );
        Ok(())
    }
}
