//! TOTP multi-factor authentication (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits), as
//! Cognito's `SOFTWARE_TOKEN_MFA`: setup by `AssociateSoftwareToken` + `VerifySoftwareToken` (or the
//! hosted UI's setup page), then a code after every password sign-in. A code is accepted one step
//! early or late, and never twice.

use crate::store::UserRecord;
use aws_lc_rs::hmac;

/// Seconds per TOTP step.
pub const STEP_SECONDS: u64 = 30;
/// Minutes a secret from `AssociateSoftwareToken` waits for its first code.
pub const PENDING_MINUTES: i64 = 10;
pub(crate) const TICKET_SECRET: &str = "totp_secret";
pub(crate) const TICKET_PENDING: &str = "totp_pending";
pub(crate) const TICKET_LAST_STEP: &str = "totp_step";
pub(crate) const FOREVER: i64 = i64::MAX / 4;
/// TOTP codes a user may try (across sign-ins, setups and sessions) in an [`MFA_LOCKOUT`] window.
pub const MAX_MFA_ATTEMPTS: i64 = 5;
/// How long a spent TOTP budget locks the second factor (15 minutes, as the password lockout).
pub const MFA_LOCKOUT: i64 = 15 * 60;
/// The budget row of a user's TOTP attempts.
pub(crate) const BUDGET_MFA: &str = "attempts:totp";

/// The challenge after a right password for a user with TOTP.
pub const SOFTWARE_TOKEN_MFA: &str = "SOFTWARE_TOKEN_MFA";
/// The challenge after a right password when the pool requires MFA and the user has none yet.
pub const MFA_SETUP: &str = "MFA_SETUP";
/// A setup challenge whose token was verified: answering it signs in.
pub(crate) const MFA_SETUP_VERIFIED: &str = "MFA_SETUP_VERIFIED";

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
pub(crate) fn matching_step(secret: &[u8], code: &str, now: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let step = now / STEP_SECONDS;
    [step.saturating_sub(1), step, step + 1]
        .into_iter()
        .find(|s| crate::domain::secrets::constant_time_eq(&totp(secret, *s), code))
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
