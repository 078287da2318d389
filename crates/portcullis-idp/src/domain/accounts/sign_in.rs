//! Password sign-in: one reserved, rate-limited check per user at a time, the same work for
//! unknown users, and the lockout after repeated failures.

use super::*;
use crate::domain::authorize::MAX_PARAM_LEN;
use crate::domain::grants::{Grant, REFRESH_LIFETIME};
use crate::domain::hashing::{Admission, HashError};
use crate::domain::scopes::ADMIN_SCOPE;
use crate::store::Reservation;
use std::collections::HashSet;
use std::sync::Mutex;

/// A user's mark in [`Pool::checking`], removed when the check ends.
struct Checking<'a> {
    set: &'a Mutex<HashSet<String>>,
    username: String,
}

impl<'a> Checking<'a> {
    /// Marks `username`, unless a check of theirs is in flight already.
    fn enter(set: &'a Mutex<HashSet<String>>, username: &str) -> Option<Checking<'a>> {
        let fresh = set
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(username.to_string());
        fresh.then(|| Checking {
            set,
            username: username.to_string(),
        })
    }
}

impl Drop for Checking<'_> {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.username);
    }
}

impl Pool {
    /// Checks a user name and password; the same work is done for unknown users. The attempt is
    /// reserved before the password is hashed: one check per user at a time (on this node and,
    /// through the store, on every node), counted before it runs, and none while the user is
    /// locked, whatever the concurrency. A full hashing queue refuses at once (`Busy`).
    pub async fn sign_in(&self, username: &str, password: &str) -> Result<UserRecord, SignInError> {
        // One span per sign-in, so its log lines belong together; none unless a subscriber wants it.
        let span = if tracing::enabled!(tracing::Level::INFO) {
            // The name is the client's input: bounded, and written escaped (`?`).
            let user = if username.len() <= 128 {
                username
            } else {
                "(too long)"
            };
            tracing::info_span!("sign_in", pool = %self.id, username = ?user)
        } else {
            tracing::Span::none()
        };
        tracing::Instrument::instrument(self.sign_in_unspanned(username, password), span).await
    }

    /// [`Pool::sign_in`] without its span.
    async fn sign_in_unspanned(
        &self,
        username: &str,
        password: &str,
    ) -> Result<UserRecord, SignInError> {
        if username.is_empty() || username.len() > 128 || password.len() > MAX_PASSWORD_LEN {
            return Err(SignInError::NotAuthorized);
        }
        // A shed request touches nothing else (no reservation, no failure counted).
        let admission = self.hasher.admit().map_err(|_| SignInError::Busy)?;
        let Some(_checking) = Checking::enter(&self.checking, username) else {
            return Err(SignInError::Busy);
        };
        let now = self.clock().now();
        // Known and unknown user names alike, so the answers reveal nobody.
        match self
            .store
            .reserve_sign_in(
                &self.id,
                username,
                now,
                LOCKOUT_RESET,
                LOCKOUT_MAX,
                CHECK_LEASE,
            )
            .await
            .map_err(|_| SignInError::Internal)?
        {
            Reservation::Granted => {}
            Reservation::Locked => return Err(SignInError::Locked),
            Reservation::Busy => return Err(SignInError::Busy),
        }
        let checked = self.check_reserved(admission, username, password).await;
        let release = match &checked {
            Ok((Some(_), true)) => self.store.clear_failures(&self.id, username).await,
            _ => self.store.release_sign_in(&self.id, username).await,
        };
        release.map_err(|_| SignInError::Internal)?;
        let (user, ok) = checked?;
        match user {
            Some(u) if ok => {
                if !u.enabled {
                    return Err(SignInError::Disabled);
                }
                match u.status.as_str() {
                    "CONFIRMED" => Ok(u),
                    "UNCONFIRMED" => Err(SignInError::NotConfirmed),
                    "RESET_REQUIRED" => Err(SignInError::ResetRequired),
                    "FORCE_CHANGE_PASSWORD" => {
                        if self.temporary_password_expired(&u).await {
                            Err(SignInError::TemporaryPasswordExpired)
                        } else {
                            Err(SignInError::NewPasswordRequired(Box::new(u)))
                        }
                    }
                    _ => Err(SignInError::NotAuthorized),
                }
            }
            Some(_) => Err(SignInError::NotAuthorized),
            None => Err(SignInError::UnknownUser),
        }
    }

    /// The reserved check itself: the user (if any) and whether the password matched (unknown
    /// users are checked against a dummy hash of the same cost).
    async fn check_reserved(
        &self,
        admission: Admission<'_>,
        username: &str,
        password: &str,
    ) -> Result<(Option<UserRecord>, bool), SignInError> {
        let user = self
            .store
            .user_by_username(&self.id, username)
            .await
            .map_err(|_| SignInError::Internal)?;
        let hash = user
            .as_ref()
            .map_or(self.dummy_hash.as_str(), |u| u.password_hash.as_str());
        let ok = admission
            .verify(password, hash)
            .await
            .map_err(|e| match e {
                HashError::Busy => SignInError::Busy,
                HashError::Failed => SignInError::Internal,
            })?;
        let known = user.is_some();
        Ok((user, ok && known))
    }
}

impl Pool {
    /// Checks `SECRET_HASH` for a client with secrets (any of its secrets).
    pub fn check_secret_hash(
        &self,
        client_id: &str,
        username: &str,
        hash: Option<&str>,
    ) -> Result<(), IdpError> {
        let client = self
            .client(client_id)
            .ok_or_else(|| IdpError::ResourceNotFound("User pool client does not exist.".into()))?;
        if client.secrets.is_empty() {
            return Ok(());
        }
        let bad = || {
            IdpError::NotAuthorized(format!(
                "Unable to verify secret hash for client {client_id}"
            ))
        };
        let got = hash.ok_or_else(bad)?;
        let mut ok = false;
        for s in &client.secrets {
            let want = secret_hash(&s.value, username, client_id);
            ok |= constant_time_eq(&want, got);
        }
        if ok { Ok(()) } else { Err(bad()) }
    }

    /// A password sign-in through the API (`USER_PASSWORD_AUTH`, `ADMIN_USER_PASSWORD_AUTH`),
    /// with Cognito's lockout and statuses.
    pub async fn password_auth(
        &self,
        client_id: &str,
        username: &str,
        password: &str,
    ) -> Result<AuthOutcome, IdpError> {
        let client = self
            .client(client_id)
            .ok_or_else(|| IdpError::ResourceNotFound("User pool client does not exist.".into()))?;
        let legacy = client.client.prevent_user_existence_errors == "LEGACY";
        match self.sign_in(username, password).await {
            Ok(user) => self.outcome(user, client_id).await,
            Err(SignInError::NewPasswordRequired(user)) => {
                let session = self
                    .start_challenge(&user, client_id, "NEW_PASSWORD_REQUIRED")
                    .await?;
                Ok(AuthOutcome::Challenge {
                    name: "NEW_PASSWORD_REQUIRED",
                    session,
                    user,
                })
            }
            Err(e) => Err(sign_in_error(e, legacy)),
        }
    }

    /// Tokens, or the second factor the user still owes.
    pub async fn outcome(
        &self,
        user: UserRecord,
        client_id: &str,
    ) -> Result<AuthOutcome, IdpError> {
        match self.next_step(user.clone(), client_id).await? {
            crate::domain::mfa::Step::Done(u) => {
                Ok(AuthOutcome::Tokens(self.api_tokens(&u, client_id).await?))
            }
            crate::domain::mfa::Step::Challenge { name, session } => Ok(AuthOutcome::Challenge {
                name,
                session,
                user: Box::new(user),
            }),
        }
    }

    /// Tokens for an API sign-in: access token with `aws.cognito.signin.user.admin`, an ID token
    /// and a refresh token.
    pub async fn api_tokens(&self, user: &UserRecord, client_id: &str) -> Result<Tokens, IdpError> {
        let now = self.now();
        let groups = self.store.groups_of(&self.id, &user.sub).await?;
        let origin_jti = uuid::Uuid::new_v4().to_string();
        // Each API sign-in is a sign-in session of its own.
        let sid = self.begin_sign_in(&user.sub, now, None).await?;
        if !self.grant_in_session(&sid, client_id, &origin_jti).await? {
            return Err(IdpError::Internal);
        }
        let mut t = self
            .mint(&Grant {
                user,
                groups: &groups,
                client_id,
                scope: ADMIN_SCOPE,
                auth_time: now,
                nonce: None,
                origin_jti: &origin_jti,
                sid: Some(&sid),
            })
            .map_err(|_| IdpError::Internal)?;
        let refresh = random_token(48)?;
        let lifetime = self
            .client(client_id)
            .map_or(REFRESH_LIFETIME, |c| c.client.refresh_seconds() as i64);
        self.store
            .insert_refresh(
                &self.id,
                sha256_hex(&refresh),
                RefreshRecord {
                    client_id: client_id.into(),
                    sub: user.sub.clone(),
                    scope: ADMIN_SCOPE.into(),
                    auth_time: now,
                    origin_jti,
                },
                now + lifetime,
            )
            .await?;
        t.refresh_token = Some(refresh);
        Ok(t)
    }

    /// The user of an access token minted by the API (`GetUser`, `ChangePassword`, ...): valid,
    /// not globally signed out, with `aws.cognito.signin.user.admin`.
    pub async fn user_of_access_token(
        &self,
        token: &str,
    ) -> Result<(UserRecord, String), IdpError> {
        let invalid = || IdpError::InvalidToken("Invalid Access Token".into());
        let claims = self
            .keys
            .load()
            .verify_access(token, &self.issuer)
            .ok_or_else(invalid)?;
        let scope = claims.get("scope").and_then(Value::as_str).unwrap_or("");
        if !scope.split(' ').any(|s| s == ADMIN_SCOPE) {
            return Err(IdpError::NotAuthorized(
                "Access Token does not have required scopes".into(),
            ));
        }
        if let Some(origin) = claims.get("origin_jti").and_then(Value::as_str)
            && self.store.origin_revoked(&self.id, origin).await?
        {
            return Err(IdpError::InvalidToken(
                "Access Token has been revoked".into(),
            ));
        }
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(invalid)?;
        let u = self
            .store
            .user_by_sub(&self.id, sub)
            .await?
            .ok_or(IdpError::UserNotFound)?;
        if !u.enabled {
            return Err(IdpError::NotAuthorized("User is disabled.".into()));
        }
        let client_id = claims
            .get("client_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Ok((u, client_id))
    }

    /// The user a live refresh token belongs to.
    pub async fn refresh_owner(&self, token: &str) -> Option<UserRecord> {
        if token.is_empty() || token.len() > MAX_PARAM_LEN {
            return None;
        }
        let rec = self
            .store
            .refresh(&self.id, sha256_hex(token))
            .await
            .ok()??;
        self.store.user_by_sub(&self.id, &rec.sub).await.ok()?
    }
}
