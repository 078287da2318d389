//! The `state` parameter and the `AWSALBAuthNonce` cookie that bind a login to the browser and
//! rule that started it.

use crate::keys::{KeyRing, MacKey};
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

/// Characters in a nonce: alphanumeric as ALB's, but twice as many as ALB's 16 (about 95 bits),
/// so that the value binding a login to its browser, and the PKCE verifier derived from it,
/// carry well over 128 bits.
pub const NONCE_LEN: usize = 32;

/// A new [`NONCE_LEN`]-character alphanumeric nonce; `None` if the system random source fails.
pub fn new_nonce() -> Option<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut raw = [0u8; NONCE_LEN];
    SystemRandom::new().fill(&mut raw).ok()?;
    // The 256 % 62 bias leaves at least log2(256/5) = 5.6 bits a character: over 180 in all.
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

/// HMAC under the balancer's key: the nonce cookie alone (a stolen or fixated one) gives neither
/// the verifier nor the OIDC nonce.
fn derive(key: &MacKey, label: &str, nonce: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    URL_SAFE_NO_PAD.encode(key.sign(label, &[nonce.as_bytes()]))
}

/// The PKCE verifier of a login (43 characters), derived from the browser's nonce cookie by HMAC
/// under the balancer's key: it lives on the browser side, never in `state`, and only the browser
/// that started the login has the cookie it comes from.
pub fn pkce_verifier(key: &MacKey, nonce: &str) -> String {
    derive(key, "portcullis pkce verifier v2", nonce)
}

/// The S256 challenge for a verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()).as_ref())
}

/// The OIDC `nonce` sent to the IdP and required back in the ID token (HMAC of the nonce cookie).
pub fn oidc_nonce(key: &MacKey, nonce: &str) -> String {
    derive(key, "portcullis oidc nonce v2", nonce)
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
        let k = MacKey::new(&[5; 32]);
        let v = pkce_verifier(&k, "abcdefghijklmnop");
        assert_eq!(v.len(), 43);
        assert_ne!(v, oidc_nonce(&k, "abcdefghijklmnop"));
        assert_ne!(v, pkce_verifier(&k, "abcdefghijklmnoq"));
    }

    #[test]
    fn derivations_are_keyed() {
        let n = new_nonce().unwrap();
        let (a, b) = (MacKey::new(&[1; 32]), MacKey::new(&[2; 32]));
        assert_ne!(pkce_verifier(&a, &n), pkce_verifier(&b, &n));
        assert_ne!(oidc_nonce(&a, &n), oidc_nonce(&b, &n));
        // Not the unkeyed SHA-256 of label and nonce that anyone holding the cookie could compute.
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let unkeyed = |label: &str| {
            URL_SAFE_NO_PAD.encode(digest(&SHA256, format!("{label}{n}").as_bytes()).as_ref())
        };
        assert_ne!(pkce_verifier(&a, &n), unkeyed("portcullis pkce verifier\0"));
        assert_ne!(oidc_nonce(&a, &n), unkeyed("portcullis oidc nonce\0"));
    }

    #[test]
    fn nonces_carry_at_least_128_bits() {
        let n = new_nonce().unwrap();
        assert_eq!(n.len(), NONCE_LEN);
        assert!(n.bytes().all(|b| b.is_ascii_alphanumeric()));
        // Each character carries at least log2(256 / 5) bits (the most likely ones: 5 of 256).
        assert!(NONCE_LEN as f64 * (256f64 / 5.0).log2() >= 128.0);
        assert_ne!(n, new_nonce().unwrap());
    }

    #[test]
    fn state_round_trip_and_checks() {
        let ring = KeyRing::new(vec![(1, [3; 32])]);
        let n = new_nonce().unwrap();
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
