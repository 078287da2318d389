//! The second factor of a user's sign-in (TOTP): setting it up, answering its challenge and
//! turning it off, with one budget of attempts across all of them.

use super::Challenge;
use crate::domain::mfa::*;
use crate::domain::pool::Pool;
use crate::error::IdpError;
use crate::store::UserRecord;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// Why the hosted UI's answer to `MFA_SETUP` did not sign the user in. (No `Debug`: it holds the
/// pending key.)
pub struct SetupRefused {
    /// Cognito's error (`Internal` when the store failed).
    pub error: IdpError,
    /// For a wrong code: the user and the pending key (base32) to show again.
    pub retry: Option<(String, String)>,
}

impl From<IdpError> for SetupRefused {
    fn from(error: IdpError) -> Self {
        SetupRefused { error, retry: None }
    }
}

impl Pool {
    /// Whether the user has a verified TOTP secret.
    pub async fn has_totp(&self, username: &str) -> Result<bool, IdpError> {
        Ok(self
            .store
            .ticket(&self.id, TICKET_SECRET, username)
            .await?
            .is_some())
    }

    /// What a right password leads to for this pool and user.
    pub async fn next_step(&self, user: UserRecord, client_id: &str) -> Result<Step, IdpError> {
        if self.mfa != MfaMode::Off && self.has_totp(&user.username).await? {
            let session = self
                .start_challenge(&user, client_id, SOFTWARE_TOKEN_MFA)
                .await?;
            return Ok(Step::Challenge {
                name: SOFTWARE_TOKEN_MFA,
                session,
            });
        }
        if self.mfa == MfaMode::On {
            let session = self.start_challenge(&user, client_id, MFA_SETUP).await?;
            return Ok(Step::Challenge {
                name: MFA_SETUP,
                session,
            });
        }
        Ok(Step::Done(Box::new(user)))
    }

    /// Checks a code against the user's secret. The attempt is first reserved from the user's
    /// TOTP budget (atomic; spent budgets refuse even the right code until [`MFA_LOCKOUT`] ends);
    /// a right code's step is then recorded atomically, so it is accepted once, even under races,
    /// and the budget is cleared.
    pub(super) async fn accept_code(
        &self,
        username: &str,
        secret: &[u8],
        code: &str,
    ) -> Result<bool, IdpError> {
        if !self
            .store
            .reserve_attempt(
                &self.id,
                BUDGET_MFA,
                username,
                MAX_MFA_ATTEMPTS,
                MFA_LOCKOUT,
                self.now(),
            )
            .await?
        {
            return Err(IdpError::TooManyFailedAttempts);
        }
        let Some(step) = matching_step(secret, code, self.now().max(0) as u64) else {
            return Ok(false);
        };
        let fresh = self
            .store
            .advance_ticket(&self.id, TICKET_LAST_STEP, username, step as i64, FOREVER)
            .await?;
        if fresh {
            self.store
                .take_ticket(&self.id, BUDGET_MFA, username)
                .await?;
        }
        Ok(fresh)
    }

    pub(super) async fn secret_of(
        &self,
        username: &str,
        pending: bool,
    ) -> Result<Option<Vec<u8>>, IdpError> {
        let purpose = if pending {
            TICKET_PENDING
        } else {
            TICKET_SECRET
        };
        Ok(self
            .store
            .ticket(&self.id, purpose, username)
            .await?
            .and_then(|(v, _)| base32_decode(&v)))
    }

    /// Answers `SOFTWARE_TOKEN_MFA`: returns the signed-in user.
    pub async fn answer_mfa(
        &self,
        session: &str,
        client_id: &str,
        username: Option<&str>,
        code: &str,
    ) -> Result<UserRecord, IdpError> {
        let c = self
            .challenge(session, Some(client_id), username, SOFTWARE_TOKEN_MFA)
            .await?;
        let secret = self
            .secret_of(&c.username, false)
            .await?
            .ok_or_else(|| IdpError::NotAuthorized("MFA is not set up for this user".into()))?;
        let n = self.challenge_attempt(&c).await?;
        if !self.accept_code(&c.username, &secret, code).await? {
            return Err(self.fail_challenge(&c, n).await?);
        }
        self.end_challenge(&c).await?;
        self.user(&c.username).await
    }

    /// `AssociateSoftwareToken`: a new secret for the user of an access token, or of an
    /// `MFA_SETUP` session. Returns the base32 secret.
    pub async fn associate_token(&self, username: &str) -> Result<String, IdpError> {
        let mut raw = [0u8; 20];
        SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| IdpError::Internal)?;
        let secret = base32_encode(&raw);
        self.store
            .put_ticket(
                &self.id,
                TICKET_PENDING,
                username,
                secret.clone(),
                self.now() + PENDING_MINUTES * 60,
            )
            .await?;
        Ok(secret)
    }

    /// The user (and client) an `MFA_SETUP` session belongs to; `client_id` when the caller
    /// names one.
    pub(crate) async fn setup_challenge(
        &self,
        session: &str,
        client_id: Option<&str>,
    ) -> Result<Challenge, IdpError> {
        self.challenge(session, client_id, None, MFA_SETUP).await
    }

    /// The key `AssociateSoftwareToken` gave a user and they have not verified yet (base32), to
    /// show it again.
    pub(crate) async fn pending_secret(&self, username: &str) -> Result<Option<String>, IdpError> {
        Ok(self
            .secret_of(username, true)
            .await?
            .map(|s| base32_encode(&s)))
    }

    /// `VerifySoftwareToken`: the first code makes the pending secret the user's; MFA is then on
    /// for them.
    pub async fn verify_token(&self, username: &str, code: &str) -> Result<(), IdpError> {
        let secret = self.secret_of(username, true).await?.ok_or_else(|| {
            IdpError::NotAuthorized(
                "Call AssociateSoftwareToken first (or again: it expired)".into(),
            )
        })?;
        if !self.accept_code(username, &secret, code).await? {
            return Err(IdpError::CodeMismatch);
        }
        self.store
            .put_ticket(
                &self.id,
                TICKET_SECRET,
                username,
                base32_encode(&secret),
                FOREVER,
            )
            .await?;
        let _ = self
            .store
            .take_ticket(&self.id, TICKET_PENDING, username)
            .await?;
        Ok(())
    }

    /// After `VerifySoftwareToken` with an `MFA_SETUP` session: a new session that
    /// `RespondToAuthChallenge(MFA_SETUP)` turns into tokens.
    pub(crate) async fn setup_verified(
        &self,
        c: &Challenge,
        client_id: &str,
    ) -> Result<String, IdpError> {
        self.end_challenge(c).await?;
        let user = self.user(&c.username).await?;
        self.start_challenge(&user, client_id, MFA_SETUP_VERIFIED)
            .await
    }

    /// The hosted UI's `MFA_SETUP` step in one: checks the first code of the pending key on one
    /// reserved attempt of `session`'s challenge, then ends it and returns the signed-in user.
    pub async fn answer_setup(
        &self,
        session: &str,
        client_id: &str,
        code: &str,
    ) -> Result<UserRecord, SetupRefused> {
        let ch = self.setup_challenge(session, Some(client_id)).await?;
        // The key to show again on a wrong code is the one the pool holds, never one posted.
        let secret = self
            .pending_secret(&ch.username)
            .await
            .map_err(|_| IdpError::Internal)?
            .unwrap_or_default();
        let n = self.challenge_attempt(&ch).await?;
        if let Err(e) = self.verify_token(&ch.username, code).await {
            let error = match e {
                IdpError::CodeMismatch => self
                    .fail_challenge(&ch, n)
                    .await
                    .unwrap_or(IdpError::Internal),
                e => e,
            };
            return Err(SetupRefused {
                error,
                retry: Some((ch.username, secret)),
            });
        }
        if self.end_challenge(&ch).await.is_err() {
            return Err(IdpError::NotAuthorized("This step expired. Sign in again.".into()).into());
        }
        Ok(self
            .user(&ch.username)
            .await
            .map_err(|_| IdpError::Internal)?)
    }

    /// Answers `MFA_SETUP` with a verified session: returns the signed-in user.
    pub async fn finish_setup(
        &self,
        session: &str,
        client_id: &str,
        username: Option<&str>,
    ) -> Result<UserRecord, IdpError> {
        let c = self
            .challenge(session, Some(client_id), username, MFA_SETUP_VERIFIED)
            .await?;
        self.end_challenge(&c).await?;
        self.user(&c.username).await
    }

    /// `SetUserMFAPreference` / `AdminSetUserMFAPreference` for TOTP: disabling forgets the secret.
    pub async fn set_totp_enabled(&self, username: &str, enabled: bool) -> Result<(), IdpError> {
        let has = self.has_totp(username).await?;
        if enabled && !has {
            return Err(IdpError::InvalidParameter(
                "User has not verified software token mfa".into(),
            ));
        }
        if !enabled && has {
            if self.mfa == MfaMode::On {
                return Err(IdpError::InvalidParameter(
                    "MFA is required in this user pool and cannot be turned off".into(),
                ));
            }
            let _ = self
                .store
                .take_ticket(&self.id, TICKET_SECRET, username)
                .await?;
        }
        Ok(())
    }
}
