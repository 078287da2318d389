//! Logout at a rule's `logout_path`: the refresh token revoked, the shards cleared, the browser
//! sent to the provider's sign-out.

use super::request::same_origin;
use super::responses::add_cookies;
use super::{AuthAction, Authenticator, Outcome};
use crate::error::AuthError;
use crate::oidc::EndSession;
use crate::session_cookie::{self, CookieRead};
use bytes::Bytes;
use http::header::{CACHE_CONTROL, LOCATION};
use http::{Response, StatusCode, request::Parts};

impl Authenticator {
    /// Handles a rule's `logout_path`: revokes the session's refresh token at the provider (so a
    /// copied cookie dies at its next refresh), expires every shard, and sends the browser to the
    /// provider's sign-out (Cognito `/logout`, or OIDC `end_session_endpoint` with `id_token_hint`).
    ///
    /// Only a same-origin request signs out ([`same_origin`]): a page elsewhere cannot end the
    /// session by linking or posting here (403, nothing revoked or cleared).
    pub async fn logout(&self, action: &AuthAction, parts: &Parts) -> Outcome {
        if !same_origin(parts) {
            tracing::info!(rule = %action.rule_id, "cross-site logout refused");
            return Outcome::Error {
                status: 403,
                error: Some(AuthError::Forbidden),
                set_cookies: Vec::new(),
            };
        }
        let name = &action.session.session_cookie_name;
        let session = match session_cookie::read(&self.ring, name, &parts.headers) {
            CookieRead::Valid { session, .. } if session.binding == action.binding() => {
                Some(session)
            }
            _ => None,
        };
        if let Some(rt) = session.as_ref().and_then(|s| s.refresh_token.as_deref()) {
            action.provider.revoke(rt).await;
        }
        let c = &action.provider.config;
        let back = action.session.logout_redirect_uri.as_deref();
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let sep = |url: &str| if url.contains('?') { '&' } else { '?' };
        let location = match (&c.end_session, back) {
            (Some(EndSession::Cognito(url)), Some(back)) => {
                format!(
                    "{url}{}client_id={}&logout_uri={}",
                    sep(url),
                    enc(&c.client_id),
                    enc(back)
                )
            }
            (Some(EndSession::Oidc(url)), _) => {
                let mut q = format!("client_id={}", enc(&c.client_id));
                if let Some(t) = session.as_ref().and_then(|s| s.id_token.as_deref()) {
                    q.push_str(&format!("&id_token_hint={}", enc(t)));
                }
                if let Some(back) = back {
                    q.push_str(&format!("&post_logout_redirect_uri={}", enc(back)));
                }
                format!("{url}{}{q}", sep(url))
            }
            (_, Some(back)) => back.to_string(),
            _ => "/".to_string(),
        };
        tracing::info!(sub = session.as_ref().map_or("-", |s| s.sub.as_str()), rule = %action.rule_id, "signed out");
        let mut response = Response::builder()
            .status(StatusCode::FOUND)
            .header(LOCATION, location)
            .header(CACHE_CONTROL, "no-store")
            .header(http::header::SERVER, "awselb/2.0")
            .body(Bytes::new())
            .unwrap_or_default();
        add_cookies(
            &mut response,
            &session_cookie::clear_values(name, session_cookie::MAX_SHARDS),
        );
        Outcome::Respond {
            response,
            error: None,
        }
    }
}
