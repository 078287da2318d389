//! Login: the redirect to the identity provider (with state, PKCE and nonce) and the callback at
//! `/oauth2/idpresponse` that checks them, exchanges the code and sets the session.

use super::request::{is_cors, original_uri};
use super::responses::{add_cookies, fail};
use super::{AuthAction, Authenticator, CALLBACK_PATH, Outcome};
use crate::error::AuthError;
use crate::session_cookie;
use crate::state::{self, NONCE_COOKIE};
use bytes::Bytes;
use http::header::{CACHE_CONTROL, LOCATION, SET_COOKIE};
use http::{Response, StatusCode, request::Parts};
use std::sync::Arc;

impl Authenticator {
    /// The 302 to the provider's authorization endpoint, with the nonce cookie that binds the login.
    pub(super) fn redirect_to_idp(&self, action: &AuthAction, parts: &Parts, now: u64) -> Outcome {
        let Some(host) = portcullis_core::request::host(parts) else {
            return fail(AuthError::MissingHostHeader);
        };
        let c = &action.provider.config;
        let Some((nonce, st)) = state::new_nonce().and_then(|nonce| {
            let st = state::seal(
                &self.ring,
                &original_uri(parts),
                &action.rule_id,
                &nonce,
                now,
            )?;
            Some((nonce, st))
        }) else {
            return fail(AuthError::Unhandled);
        };
        let redirect_uri = format!("https://{host}{CALLBACK_PATH}");
        let query = {
            let mut q = form_urlencoded::Serializer::new(String::new());
            q.append_pair("client_id", &c.client_id)
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair("response_type", "code")
                .append_pair("scope", &action.session.scope)
                .append_pair("state", &st);
            if action.session.use_pkce {
                q.append_pair(
                    "code_challenge",
                    &state::pkce_challenge(&state::pkce_verifier(&self.mac, &nonce)),
                )
                .append_pair("code_challenge_method", "S256");
            }
            if action.session.use_nonce {
                q.append_pair("nonce", &state::oidc_nonce(&self.mac, &nonce));
            }
            for (k, v) in &action.session.authentication_request_extra_params {
                q.append_pair(k, v);
            }
            q.finish()
        };
        let sep = if c.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        // form_urlencoded writes spaces as '+'; ALB sends %20.
        let location = format!(
            "{}{sep}{}",
            c.authorization_endpoint,
            query.replace('+', "%20")
        );
        let nonce_cookie = format!(
            "{NONCE_COOKIE}={nonce}; Max-Age={}; Path=/; Secure; HttpOnly; SameSite=Lax",
            state::LOGIN_TIMEOUT
        );
        let response = Response::builder()
            .status(StatusCode::FOUND)
            .header(LOCATION, location)
            .header(SET_COOKIE, nonce_cookie)
            .header(CACHE_CONTROL, "no-store")
            .header(http::header::SERVER, "awselb/2.0")
            .body(Bytes::new());
        match response {
            Ok(response) => Outcome::Respond {
                response,
                error: None,
            },
            Err(_) => fail(AuthError::Unhandled),
        }
    }

    /// Handles `GET /oauth2/idpresponse`: checks nonce and state before the code is spent, then
    /// exchanges it, fetches userinfo, sets the session and sends the browser back.
    pub async fn callback(
        &self,
        parts: &Parts,
        find: impl Fn(&str) -> Option<Arc<AuthAction>>,
    ) -> Outcome {
        let now = self.now();
        let query: Vec<(String, String)> =
            form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .take(32)
                .collect();
        let param = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let Some(nonce) = session_cookie::cookie_value(&parts.headers, NONCE_COOKIE) else {
            return fail(AuthError::MissingNonce);
        };
        let Some(st) = param("state") else {
            return fail(AuthError::MissingStateParam);
        };
        let Ok(login) = state::open(&self.ring, st, now) else {
            return fail(AuthError::InvalidStateParam);
        };
        let Some(action) = find(&login.rule) else {
            return fail(AuthError::InvalidStateParam);
        };
        if state::check_nonce(&login, nonce).is_err() {
            return fail(AuthError::InvalidNonce);
        }
        if let Some(e) = param("error") {
            tracing::info!(error = e, "identity provider denied access");
            return fail(AuthError::IdpDenied);
        }
        let Some(code) = param("code") else {
            return fail(AuthError::MissingCodeParam);
        };
        let Some(host) = portcullis_core::request::host(parts) else {
            return fail(AuthError::MissingHostHeader);
        };
        let redirect_uri = format!("https://{host}{CALLBACK_PATH}");
        match self
            .complete_login(&action, code, &redirect_uri, nonce, parts, now)
            .await
        {
            Ok(mut cookies) => {
                cookies.push(session_cookie::expire_value(NONCE_COOKIE));
                // `uri` was sealed by us from a request path; refuse anything else all the same.
                let back = if login.uri.starts_with('/') && !login.uri.starts_with("//") {
                    login.uri
                } else {
                    "/".into()
                };
                let mut response = Response::builder()
                    .status(StatusCode::FOUND)
                    .header(LOCATION, back)
                    .header(CACHE_CONTROL, "no-store")
                    .header(http::header::SERVER, "awselb/2.0")
                    .body(Bytes::new())
                    .unwrap_or_default();
                add_cookies(&mut response, &cookies);
                Outcome::Respond {
                    response,
                    error: None,
                }
            }
            Err(e) => fail(e),
        }
    }

    /// Exchanges the code, checks the ID token and userinfo, and seals the new session.
    async fn complete_login(
        &self,
        action: &AuthAction,
        code: &str,
        redirect_uri: &str,
        browser_nonce: &str,
        parts: &Parts,
        now: u64,
    ) -> Result<Vec<String>, AuthError> {
        let p = &action.provider;
        let s = &action.session;
        let verifier = s
            .use_pkce
            .then(|| state::pkce_verifier(&self.mac, browser_nonce));
        let started = std::time::Instant::now();
        let tokens = p
            .exchange_code(code, redirect_uri, verifier.as_deref())
            .await?;
        let expected_nonce = s
            .use_nonce
            .then(|| state::oidc_nonce(&self.mac, browser_nonce));
        let mut id = p
            .check_id_token(
                tokens.id_token.as_deref().unwrap_or_default(),
                expected_nonce.as_deref(),
            )
            .await?;
        let claims = p.userinfo(&tokens.access_token).await?;
        crate::oidc::same_subject(&claims, &id.sub)?;
        self.observer.signed_in(started.elapsed());
        if id.iat == 0 {
            id.iat = now;
        }
        let session = self.new_session(
            action,
            tokens,
            claims,
            now + action.session.session_timeout,
            None,
            &id,
            now,
        )?;
        let sealed = self.seal(action, &session)?;
        let previous =
            session_cookie::shard_count(&parts.headers, &action.session.session_cookie_name);
        tracing::info!(sub = %session.sub, rule = %action.rule_id, "signed in");
        Ok(session_cookie::set_cookie_values(
            &action.session.session_cookie_name,
            &sealed,
            previous,
            is_cors(parts),
        ))
    }
}
