//! A session's life after login: refreshed with its refresh token when the access token expires,
//! built from token and userinfo answers, and sealed into cookie shards.

use super::{AuthAction, Authenticator, DEFAULT_ACCESS_LIFETIME, Outcome, request::is_cors};
use crate::error::AuthError;
use crate::forward_cache;
use crate::oidc::{IdTokenFacts, TokenResponse};
use crate::session_cookie::{self, Session, Shards};
use http::request::Parts;

impl Authenticator {
    /// Refreshes an expired access token, re-checks the subject, and forwards with the new session.
    pub(super) async fn refresh(
        &self,
        action: &AuthAction,
        old: &Session,
        refresh_token: &str,
        parts: &Parts,
        shards: usize,
        now: u64,
    ) -> Result<Outcome, AuthError> {
        let started = std::time::Instant::now();
        let tokens = action.provider.refresh(refresh_token).await?;
        // A refresh continues the same user's session (OIDC Core §12.2): a new ID token is
        // checked like the first, and it and userinfo must name the session's subject.
        if let Some(id_token) = tokens.id_token.as_deref() {
            let facts = action.provider.check_id_token(id_token, None).await?;
            if facts.sub != old.sub {
                return Err(AuthError::InvalidIdToken);
            }
        }
        let claims = action.provider.userinfo(&tokens.access_token).await?;
        crate::oidc::same_subject(&claims, &old.sub)?;
        self.observer.refreshed(started.elapsed());
        let keep = tokens
            .refresh_token
            .is_none()
            .then(|| refresh_token.to_string());
        // The same provider session: its sid and start carry over.
        let began = IdTokenFacts {
            sub: old.sub.clone(),
            sid: old.sid.clone(),
            iat: old.began,
        };
        let mut session =
            self.new_session(action, tokens, claims, old.session_exp, keep, &began, now)?;
        if session.id_token.is_none() {
            session.id_token = old.id_token.clone();
        }
        let sealed = self.seal(action, &session)?;
        let name = &action.session.session_cookie_name;
        let cookies = session_cookie::set_cookie_values(name, &sealed, shards, is_cors(parts));
        tracing::debug!(sub = %session.sub, "session refreshed");
        // Cached under the new cookie, as the browser will send it back.
        Ok(match Shards::of(&sealed) {
            Some(new) => forward_cache::with_frame(name, &new, |frame| {
                self.forward(action, &session, frame, cookies, now, parts)
            }),
            None => self.forward(action, &session, None, cookies, now, parts),
        })
    }

    /// A session from the provider's answers, expiring at `session_exp`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new_session(
        &self,
        action: &AuthAction,
        tokens: TokenResponse,
        claims: serde_json::Map<String, serde_json::Value>,
        session_exp: u64,
        keep_refresh: Option<String>,
        id: &IdTokenFacts,
        now: u64,
    ) -> Result<Session, AuthError> {
        let sub = claims
            .get("sub")
            .and_then(|s| s.as_str())
            .ok_or(AuthError::InvalidUserinfoResponse)?
            .to_string();
        let keep_id_token = matches!(
            action.provider.config.end_session,
            Some(crate::oidc::EndSession::Oidc(_))
        );
        Ok(Session {
            sub,
            claims,
            id_token: if keep_id_token {
                tokens.id_token.clone()
            } else {
                None
            },
            access_exp: now + tokens.expires_in.unwrap_or(DEFAULT_ACCESS_LIFETIME).max(1),
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token.or(keep_refresh),
            session_exp,
            binding: action.binding().to_string(),
            sid: id.sid.clone(),
            began: id.iat,
        })
    }

    /// The session sealed into cookie shards (too large: the userinfo size error, as ALB).
    pub(super) fn seal(&self, action: &AuthAction, s: &Session) -> Result<Vec<String>, AuthError> {
        session_cookie::seal(&self.ring, &action.session.session_cookie_name, s).map_err(
            |e| match e {
                session_cookie::SealError::TooLarge => AuthError::UserinfoResponseSizeExceeded,
                session_cookie::SealError::Crypto => AuthError::Unhandled,
            },
        )
    }
}
