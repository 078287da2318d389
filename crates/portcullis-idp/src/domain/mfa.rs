//! TOTP multi-factor authentication (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits), as
//! Cognito's `SOFTWARE_TOKEN_MFA`: setup by `AssociateSoftwareToken` + `VerifySoftwareToken` (or the
//! hosted UI's setup page), then a code after every password sign-in. A code is accepted one step
//! early or late, and never twice.

use crate::domain::accounts::Challenge;
use crate::domain::pool::Pool;
use crate::error::IdpError;
use crate::store::UserRecord;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// Seconds per TOTP step.
pub const STEP_SECONDS: u64 = 30;
/// Minutes a secret from `AssociateSoftwareToken` waits for its first code.
pub const PENDING_MINUTES: i64 = 10;
const TICKET_SECRET: &str = "totp_secret";
const TICKET_PENDING: &str = "totp_pending";
const TICKET_LAST_STEP: &str = "totp_step";
const FOREVER: i64 = i64::MAX / 4;
/// TOTP codes a user may try (across sign-ins, setups and sessions) in an [`MFA_LOCKOUT`] window.
pub const MAX_MFA_ATTEMPTS: i64 = 5;
/// How long a spent TOTP budget locks the second factor (15 minutes, as the password lockout).
pub const MFA_LOCKOUT: i64 = 15 * 60;
/// The budget row of a user's TOTP attempts.
const BUDGET_MFA: &str = "attempts:totp";

/// The challenge after a right password for a user with TOTP.
pub const SOFTWARE_TOKEN_MFA: &str = "SOFTWARE_TOKEN_MFA";
/// The challenge after a right password when the pool requires MFA and the user has none yet.
pub const MFA_SETUP: &str = "MFA_SETUP";
/// A setup challenge whose token was verified: answering it signs in.
const MFA_SETUP_VERIFIED: &str = "MFA_SETUP_VERIFIED";

/// `mfa_configuration` of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaMode {
    /// No second factor.
    Off,
    /// Users who set up TOTP are asked for it.
    Optional,
    /// Everyone: users without TOTP set it up at their next sign-in.
    On,
}

impl MfaMode {
    /// From the config value (validated there).
    pub fn parse(s: &str) -> MfaMode {
        match s {
            "ON" => MfaMode::On,
            "OPTIONAL" => MfaMode::Optional,
            _ => MfaMode::Off,
        }
    }
}

/// What follows a right password.
#[derive(Debug)]
pub enum Step {
    /// Signed in.
    Done(Box<UserRecord>),
    /// Another factor: the challenge name and its session.
    Challenge {
        /// `SOFTWARE_TOKEN_MFA` or `MFA_SETUP`.
        name: &'static str,
        /// The opaque session.
        session: String,
    },
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding (what authenticator apps take).
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for b in bytes {
        buf = (buf << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            out.push(BASE32[((buf >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(BASE32[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes base32 (case-insensitive, padding and spaces ignored).
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in s.chars().filter(|c| *c != '=' && !c.is_whitespace()) {
        let v = BASE32
            .iter()
            .position(|x| *x as char == c.to_ascii_uppercase())? as u32;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            out.push((buf >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    Some(out)
}

/// The 6-digit code of `step` (RFC 4226 dynamic truncation).
pub fn totp(secret: &[u8], step: u64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = hmac::sign(&key, &step.to_be_bytes());
    let m = mac.as_ref();
    let off = (m[m.len() - 1] & 0x0f) as usize;
    let n = u32::from_be_bytes([m[off] & 0x7f, m[off + 1], m[off + 2], m[off + 3]]);
    format!("{:06}", n % 1_000_000)
}

/// The step a code matches, one step early or late allowed.
fn matching_step(secret: &[u8], code: &str, now: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let step = now / STEP_SECONDS;
    [step.saturating_sub(1), step, step + 1]
        .into_iter()
        .find(|s| crate::domain::pool::constant_time_eq(&totp(secret, *s), code))
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
    async fn accept_code(
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

    async fn secret_of(&self, username: &str, pending: bool) -> Result<Option<Vec<u8>>, IdpError> {
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
                crate::now() as i64 + PENDING_MINUTES * 60,
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

/// The `otpauth://` URI authenticator apps scan or open.
pub fn otpauth_uri(issuer: &str, username: &str, secret: &str) -> String {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret}&issuer={}",
        enc(issuer),
        enc(username),
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA-1, 8 digits truncated to 6 (the last six of each).
        let secret = b"12345678901234567890";
        for (t, want) in [
            (59u64, "287082"),
            (1111111109, "081804"),
            (1111111111, "050471"),
            (1234567890, "005924"),
            (2000000000, "279037"),
        ] {
            assert_eq!(totp(secret, t / STEP_SECONDS), want, "t={t}");
        }
    }

    #[test]
    fn base32_round_trips() {
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_decode("mzxw6ytboi======").unwrap(), b"foobar");
        assert_eq!(base32_decode("MZXW 6YTB OI").unwrap(), b"foobar");
        assert!(base32_decode("not base32!").is_none());
        let raw = [7u8; 20];
        assert_eq!(base32_decode(&base32_encode(&raw)).unwrap(), raw);
    }

    #[test]
    fn codes_match_one_step_either_side() {
        let s = b"12345678901234567890";
        let now = 1_800_000_000;
        let step = now / STEP_SECONDS;
        assert_eq!(matching_step(s, &totp(s, step), now), Some(step));
        assert_eq!(matching_step(s, &totp(s, step - 1), now), Some(step - 1));
        assert_eq!(matching_step(s, &totp(s, step + 1), now), Some(step + 1));
        assert_eq!(matching_step(s, &totp(s, step + 2), now), None);
        assert_eq!(matching_step(s, "12345", now), None);
        assert_eq!(matching_step(s, "abcdef", now), None);
    }

    proptest::proptest! {
        #[test]
        fn base32_is_a_codec(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let enc = base32_encode(&bytes);
            proptest::prop_assert!(enc.bytes().all(|b| BASE32.contains(&b)));
            proptest::prop_assert_eq!(base32_decode(&enc).unwrap(), bytes.clone());
            proptest::prop_assert_eq!(base32_decode(&enc.to_lowercase()).unwrap(), bytes);
        }

        #[test]
        fn base32_decode_never_panics(s in ".{0,80}") {
            let _ = base32_decode(&s);
        }
    }
}
