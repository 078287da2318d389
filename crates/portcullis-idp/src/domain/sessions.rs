//! Sign-in sessions: each sign-in (the hosted UI's browser session, each API sign-in) gets a
//! random `sid` that its ID and access tokens carry, and ending it revokes its refresh tokens,
//! publishes a [`SessionEnded`] for load balancers (on every node through the store) and sends
//! back-channel logout tokens to the clients it gave tokens to.

use crate::domain::backchannel::{Delivery, LOGOUT_EVENT, LOGOUT_TOKEN_LIFETIME};
use crate::domain::grants::{OAuthError, REFRESH_LIFETIME};
use crate::domain::pool::Pool;
use crate::domain::revocation::SessionEnded;
use crate::domain::secrets::{random_token, sha256_hex};
use crate::store::UserRecord;
use crate::store::sessions::user_wide_at;
use crate::store::{SignInRecord, StoreError};
use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, json};

/// Random bytes in a `sid` (192 bits).
const SID_BYTES: usize = 24;
/// Longest `sid` accepted from a token or the store.
pub const MAX_SID_LEN: usize = 64;

/// The `sid` of the hosted UI's browser session with this cookie: a one-way, domain-separated
/// hash of the cookie (256 random bits), so the cookie's row needs no column and the `sid`
/// (which clients see) reveals nothing of the cookie.
pub fn browser_sid(cookie: &str) -> String {
    let mut input = b"portcullis browser sid\n".to_vec();
    input.extend_from_slice(cookie.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest(&SHA256, &input).as_ref()[..SID_BYTES])
}

impl Pool {
    /// Records a new sign-in session of `sub` (a random `sid` unless given) and returns its `sid`.
    pub(crate) async fn begin_sign_in(
        &self,
        sub: &str,
        auth_time: i64,
        sid: Option<String>,
    ) -> Result<String, StoreError> {
        let sid = match sid {
            Some(s) => s,
            None => random_token(SID_BYTES).map_err(|_| {
                StoreError::Io(std::io::Error::other("the system random source failed"))
            })?,
        };
        let now = self.now();
        let rec = SignInRecord {
            sid: sid.clone(),
            sub: sub.to_string(),
            started_at: auth_time,
            expires_at: now + SESSION_LIFETIME,
            ended_at: None,
            clients: Vec::new(),
        };
        self.store.start_sign_in(&self.id, &rec, now).await?;
        Ok(sid)
    }

    /// Records that the token family `origin_jti` was given to `client_id` in session `sid`;
    /// `false` when the session has ended (or expired), and then no tokens may be given.
    pub(crate) async fn grant_in_session(
        &self,
        sid: &str,
        client_id: &str,
        origin_jti: &str,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        self.store
            .add_sign_in_grant(
                &self.id,
                sid,
                client_id,
                origin_jti,
                now + self.longest_token_life(Some(client_id)),
                now,
            )
            .await
    }

    /// How long a token given to `client_id` (or, without one, to any client) may live.
    fn longest_token_life(&self, client_id: Option<&str>) -> i64 {
        let of = |c: &portcullis_config::Client| {
            (c.refresh_seconds() as i64)
                .max(c.access_seconds(self.token_validity) as i64)
                .max(c.id_seconds(self.token_validity) as i64)
        };
        match client_id.and_then(|id| self.client(id)) {
            Some(c) => of(&c.client),
            None => self
                .catalog()
                .clients
                .values()
                .map(|c| of(&c.client))
                .max()
                .unwrap_or(REFRESH_LIFETIME)
                .max(REFRESH_LIFETIME),
        }
    }

    /// The session a token family was given in.
    pub(crate) async fn sid_of_family(
        &self,
        origin_jti: &str,
    ) -> Result<Option<String>, StoreError> {
        self.store.sid_of_family(&self.id, origin_jti).await
    }

    /// Whether session `sid` is live (recorded, not ended, not expired).
    pub(crate) async fn sign_in_live(&self, sid: &str) -> Result<bool, StoreError> {
        Ok(self
            .store
            .sign_in_session(&self.id, sid, self.now())
            .await?
            .is_some_and(|s| s.ended_at.is_none()))
    }

    /// A sign-in session as stored (ended or not), for tests and operators.
    pub async fn sign_in_session(&self, sid: &str) -> Result<Option<SignInRecord>, StoreError> {
        if sid.is_empty() || sid.len() > MAX_SID_LEN {
            return Ok(None);
        }
        self.store.sign_in_session(&self.id, sid, self.now()).await
    }

    /// Ends sign-in session `sid`: its refresh tokens are revoked, load balancers are told and
    /// its clients get logout tokens. Returns whether this call ended it (unknown or ended
    /// sessions are ignored).
    pub async fn end_sign_in(&self, sid: &str) -> Result<bool, StoreError> {
        if sid.is_empty() || sid.len() > MAX_SID_LEN {
            return Ok(false);
        }
        let now = self.now();
        let Some(rec) = self.store.end_sign_in(&self.id, sid, now).await? else {
            return Ok(false);
        };
        self.session_ends.publish(SessionEnded {
            issuer: self.issuer.clone(),
            sid: Some(rec.sid.clone()),
            sub: rec.sub.clone(),
            at: now,
        });
        self.send_logouts(&rec, now);
        Ok(true)
    }

    /// Ends every sign-in session of `sub` (sign-out everywhere, disable, delete, password
    /// change): first one user-wide event (`sid: None`, for tokens given before sessions were
    /// recorded), dated a second early ([`user_wide_at`]) so that a sign-in later in the same
    /// second survives; then one event per session it ended, which covers sessions begun in that
    /// second; and logout tokens for each.
    pub async fn end_user_sessions(&self, sub: &str) -> Result<(), StoreError> {
        let now = self.now();
        let keep_until = now + self.longest_token_life(None);
        let ended = self
            .store
            .end_user_sign_ins(&self.id, sub, now, keep_until)
            .await?;
        self.session_ends.publish(SessionEnded {
            issuer: self.issuer.clone(),
            sid: None,
            sub: sub.to_string(),
            at: user_wide_at(now),
        });
        for rec in &ended {
            self.session_ends.publish(SessionEnded {
                issuer: self.issuer.clone(),
                sid: Some(rec.sid.clone()),
                sub: rec.sub.clone(),
                at: now,
            });
        }
        for rec in &ended {
            self.send_logouts(rec, now);
        }
        Ok(())
    }

    /// Queues a logout token for each client of `rec` that registered a back-channel URI.
    fn send_logouts(&self, rec: &SignInRecord, now: i64) {
        for client_id in &rec.clients {
            let Some(uri) = self
                .client(client_id)
                .and_then(|c| c.client.backchannel_logout_uri.clone())
            else {
                continue;
            };
            match self.logout_token(client_id, &rec.sub, &rec.sid, now) {
                Some(token) => self.backchannel.send(Delivery {
                    uri,
                    client_id: client_id.clone(),
                    token,
                }),
                None => {
                    tracing::error!(pool = %self.name, client = %client_id, "cannot sign a logout token")
                }
            }
        }
    }

    /// A logout token (OIDC Back-Channel Logout 1.0 §2.4) for `client_id`: signed with the ID
    /// key, `typ: logout+jwt`, no `nonce`.
    pub(crate) fn logout_token(
        &self,
        client_id: &str,
        sub: &str,
        sid: &str,
        now: i64,
    ) -> Option<String> {
        let mut c = Map::new();
        c.insert("iss".into(), self.issuer.clone().into());
        c.insert("aud".into(), client_id.into());
        c.insert("iat".into(), now.into());
        c.insert("exp".into(), (now + LOGOUT_TOKEN_LIFETIME).into());
        c.insert("jti".into(), uuid::Uuid::new_v4().to_string().into());
        c.insert("sub".into(), sub.into());
        c.insert("sid".into(), sid.into());
        c.insert("events".into(), json!({ LOGOUT_EVENT: {} }));
        self.keys.load().sign_logout(&c)
    }

    /// Sessions ended whose tokens may still live (a load balancer that starts later loads
    /// them); ends older than that are forgotten here.
    pub(crate) async fn ended_sign_ins(&self) -> Result<Vec<SessionEnded>, StoreError> {
        Ok(self
            .store
            .ended_sign_ins(&self.id, self.now())
            .await?
            .into_iter()
            .map(|e| SessionEnded {
                issuer: self.issuer.clone(),
                sid: e.sid,
                sub: e.sub,
                at: e.at,
            })
            .collect())
    }
}

/// How long the hosted UI remembers a sign-in (Cognito: 1 hour, fixed).
pub const SESSION_LIFETIME: i64 = 3600;

impl Pool {
    /// Every [`SessionEnded`] from now on, including those
    /// that other nodes on the same store publish.
    pub fn subscribe_session_ends(
        &self,
    ) -> tokio::sync::broadcast::Receiver<crate::domain::revocation::SessionEnded> {
        self.session_ends.subscribe()
    }

    /// Sessions ended recently enough that their tokens may still be alive (for a load balancer
    /// that starts after them).
    pub async fn ended_sessions(
        &self,
    ) -> Result<Vec<crate::domain::revocation::SessionEnded>, StoreError> {
        self.ended_sign_ins().await
    }

    /// Publishes `event` on this pool's feed as if a sign-out had happened (tests of
    /// subscribers).
    #[doc(hidden)]
    pub fn publish_session_end(&self, event: crate::domain::revocation::SessionEnded) {
        self.session_ends.publish(event);
    }
}

impl Pool {
    /// Starts a hosted-UI session for `user`; returns the cookie value.
    pub async fn start_session(
        &self,
        user: &UserRecord,
        auth_time: i64,
    ) -> Result<String, OAuthError> {
        let token = random_token(32).map_err(OAuthError::no_randomness)?;
        // The browser session is one sign-in session; its `sid` derives from the cookie.
        self.begin_sign_in(
            &user.sub,
            auth_time,
            Some(crate::domain::sessions::browser_sid(&token)),
        )
        .await
        .map_err(OAuthError::server)?;
        self.store
            .insert_session(
                &self.id,
                sha256_hex(&token),
                &user.sub,
                auth_time,
                self.now() + SESSION_LIFETIME,
            )
            .await
            .map_err(OAuthError::server)?;
        Ok(token)
    }

    /// The signed-in user of a session cookie, with the original authentication time.
    pub async fn session_user(&self, cookie: &str) -> Option<(UserRecord, i64)> {
        if cookie.is_empty() || cookie.len() > 128 {
            return None;
        }
        let (sub, auth_time) = self
            .store
            .session(&self.id, sha256_hex(cookie))
            .await
            .ok()??;
        let user = self.store.user_by_sub(&self.id, &sub).await.ok()??;
        // A browser session whose sign-in session ended (a revoked refresh token) is over too.
        if !self
            .sign_in_live(&crate::domain::sessions::browser_sid(cookie))
            .await
            .ok()?
        {
            return None;
        }
        (user.enabled && user.status == "CONFIRMED").then_some((user, auth_time))
    }

    /// Ends a browser session and its sign-in session (unknown values are ignored).
    pub async fn end_session(&self, cookie: &str) {
        if !cookie.is_empty() && cookie.len() <= 128 {
            let _ = self
                .store
                .delete_session(&self.id, sha256_hex(cookie))
                .await;
            if let Err(e) = self
                .end_sign_in(&crate::domain::sessions::browser_sid(cookie))
                .await
            {
                tracing::error!(pool = %self.name, error = %e, "cannot end the sign-in session");
            }
        }
    }

    /// The `sid` of a hosted-UI session cookie.
    pub fn browser_sid(&self, cookie: &str) -> String {
        crate::domain::sessions::browser_sid(cookie)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_sids_are_stable_distinct_and_not_the_cookie_hash() {
        let a = browser_sid("cookie-a");
        assert_eq!(a, browser_sid("cookie-a"));
        assert_ne!(a, browser_sid("cookie-b"));
        assert_eq!(a.len(), 32);
        assert!(!crate::domain::secrets::sha256_hex("cookie-a").contains(&a));
    }
}
