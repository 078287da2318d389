//! The answers the authenticate action gives itself: 401 for scripts and API clients, 403 for a
//! user a rule does not admit, and the balancer's error pages.

use super::request::original_uri;
use super::{Denied, Outcome, is_api_request};
use crate::error::AuthError;
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, SET_COOKIE};
use http::{HeaderValue, Response, StatusCode, request::Parts};

/// 401 for a script or API client without a session: JSON naming the URL that starts a login (a
/// page navigation there redirects to the IdP), and a `WWW-Authenticate` challenge.
pub(super) fn api_unauthorized(parts: &Parts) -> Response<Bytes> {
    let host = portcullis_core::request::host(parts).unwrap_or("");
    let login = format!("https://{host}{}", original_uri(parts));
    let body = serde_json::json!({ "error": "unauthenticated", "message": "sign in first: navigate to login", "login": login });
    let challenge = format!("Portcullis realm=\"{}\"", host.replace('"', ""));
    Response::builder()
        .status(StatusCode::UNAUTHORIZED)
        .header(CONTENT_TYPE, "application/json")
        .header(http::header::WWW_AUTHENTICATE, challenge)
        .header(http::header::SERVER, "awselb/2.0")
        .header(CACHE_CONTROL, "no-store")
        .body(Bytes::from(body.to_string()))
        .unwrap_or_default()
}

/// 403 for a signed-in user the rule does not admit: JSON for API clients, a page for browsers.
pub(super) fn forbidden(parts: &Parts, why: &Denied, set_cookies: Vec<String>) -> Outcome {
    tracing::debug!(%why, "authorization denied");
    if !is_api_request(parts) {
        return Outcome::Error {
            status: 403,
            error: Some(AuthError::Forbidden),
            set_cookies,
        };
    }
    let body = serde_json::json!({ "error": "forbidden", "message": why.to_string() }).to_string();
    let mut response = Response::builder()
        .status(StatusCode::FORBIDDEN)
        .header(CONTENT_TYPE, "application/json")
        .header(http::header::SERVER, "awselb/2.0")
        .header(CACHE_CONTROL, "no-store")
        .body(Bytes::from(body))
        .unwrap_or_default();
    add_cookies(&mut response, &set_cookies);
    Outcome::Respond {
        response,
        error: Some(AuthError::Forbidden),
    }
}

/// The balancer's error page for `e`, logged as its reason.
pub(super) fn fail(e: AuthError) -> Outcome {
    Outcome::Error {
        status: e.status(),
        error: Some(e),
        set_cookies: Vec::new(),
    }
}

/// Adds `Set-Cookie` values to an answer.
pub(super) fn add_cookies(resp: &mut Response<Bytes>, cookies: &[String]) {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            resp.headers_mut().append(SET_COOKIE, v);
        }
    }
}
