//! The `state` parameter and the `AWSALBAuthNonce` cookie that bind a login to the browser and
//! rule that started it.

use crate::keys::KeyRing;
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// The nonce cookie's name (as ALB).
pub const NONCE_COOKIE: &str = "AWSALBAuthNonce";
/// How long a login may take (ALB: 15 minutes, fixed).
pub const LOGIN_TIMEOUT: u64 = 15 * 60;
/// Longest `state` accepted.
pub const MAX_STATE_LEN: usize = 4096;
const CONTEXT: &[u8] = b"portcullis state v1";

/// What `state` carries through the IdP and back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoginState {
    /// Original path and query.
    pub uri: String,
    /// Issue time, epoch seconds.
    pub iat: u64,
    /// The rule whose action started the login.
    pub rule: String,
    /// SHA-256 of the nonce cookie, base64.
    pub nonce_hash: String,
}

/// Why a callback's `state` was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum StateError {
    /// Unreadable or tampered.
    Invalid,
    /// Older than 15 minutes.
    Expired,
    /// Valid, but started by another browser (nonce cookie differs).
    NonceMismatch,
}

/// A 16-character alphanumeric nonce, as ALB's; `None` if the system random source fails.
pub fn new_nonce() -> Option<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut raw = [0u8; 16];
    SystemRandom::new().fill(&mut raw).ok()?;
    // 256 % 62 bias is negligible for a 95-bit binding value.
    Some(
        raw.iter()
            .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
            .collect(),
    )
}

fn nonce_hash(nonce: &str) -> String {
    STANDARD.encode(digest(&SHA256, nonce.as_bytes()).as_ref())
}

/// Seals a new state for `uri` and `rule`, bound to `nonce`; `None` if encryption fails (the
/// system random source).
pub fn seal(ring: &KeyRing, uri: &str, rule: &str, nonce: &str, now: u64) -> Option<String> {
    let s = LoginState {
        uri: uri.into(),
        iat: now,
        rule: rule.into(),
        nonce_hash: nonce_hash(nonce),
    };
    let plain = serde_json::to_vec(&s).ok()?;
    Some(STANDARD.encode(ring.seal(CONTEXT, &plain).ok()?))
}

/// Opens a state without checking the nonce (to learn the rule).
pub fn open(ring: &KeyRing, state: &str, now: u64) -> Result<LoginState, StateError> {
    if state.len() > MAX_STATE_LEN {
        return Err(StateError::Invalid);
    }
    let sealed = STANDARD.decode(state).map_err(|_| StateError::Invalid)?;
    let plain = ring.open(CONTEXT, &sealed).ok_or(StateError::Invalid)?;
    let s: LoginState = serde_json::from_slice(&plain).map_err(|_| StateError::Invalid)?;
    if now > s.iat.saturating_add(LOGIN_TIMEOUT) || s.iat > now.saturating_add(60) {
        return Err(StateError::Expired);
    }
    Ok(s)
}

fn derive(label: &str, nonce: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut input = label.as_bytes().to_vec();
    input.extend_from_slice(nonce.as_bytes());
    URL_SAFE_NO_PAD.encode(digest(&SHA256, &input).as_ref())
}

/// The PKCE verifier of a login (43 characters), derived from the browser's nonce cookie: it lives
/// on the browser side, never in `state`, and only the browser that started the login has it.
pub fn pkce_verifier(nonce: &str) -> String {
    derive("portcullis pkce verifier\0", nonce)
}

/// The S256 challenge for a verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()).as_ref())
}

/// The OIDC `nonce` sent to the IdP and required back in the ID token.
pub fn oidc_nonce(nonce: &str) -> String {
    derive("portcullis oidc nonce\0", nonce)
}

/// Checks that the browser's nonce cookie is the one the state was sealed with.
pub fn check_nonce(s: &LoginState, nonce: &str) -> Result<(), StateError> {
    let want = nonce_hash(nonce);
    aws_lc_rs::constant_time::verify_slices_are_equal(want.as_bytes(), s.nonce_hash.as_bytes())
        .map_err(|_| StateError::NonceMismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let v = pkce_verifier("abcdefghijklmnop");
        assert_eq!(v.len(), 43);
        assert_ne!(v, oidc_nonce("abcdefghijklmnop"));
        assert_ne!(v, pkce_verifier("abcdefghijklmnoq"));
    }

    #[test]
    fn state_round_trip_and_checks() {
        let ring = KeyRing::new(vec![(1, [3; 32])]);
        let n = new_nonce().unwrap();
        assert_eq!(n.len(), 16);
        assert!(n.bytes().all(|b| b.is_ascii_alphanumeric()));
        let st = seal(&ring, "/tasks?a=1", "8443/10", &n, 1000).unwrap();
        let s = open(&ring, &st, 1000 + LOGIN_TIMEOUT).unwrap();
        assert_eq!(s.uri, "/tasks?a=1");
        assert_eq!(s.rule, "8443/10");
        assert_eq!(check_nonce(&s, &n), Ok(()));
        assert_eq!(check_nonce(&s, "other"), Err(StateError::NonceMismatch));
        assert_eq!(
            open(&ring, &st, 1001 + LOGIN_TIMEOUT),
            Err(StateError::Expired)
        );
        let mut bad = st.clone().into_bytes();
        bad[20] = if bad[20] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            open(&ring, std::str::from_utf8(&bad).unwrap(), 1000),
            Err(StateError::Invalid)
        );
        assert_eq!(open(&ring, "not base64!", 1000), Err(StateError::Invalid));
    }
}
