//! Random tokens, their stored digests and constant-time comparison: how the pool makes and
//! checks its secrets.

use crate::error::IdpError;
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Random bytes, base64url; fails (`Internal`) only if the system random source does.
pub fn random_token(bytes: usize) -> Result<String, IdpError> {
    let mut b = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| IdpError::Internal)?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

/// SHA-256 in hex: how codes, tokens and sessions are stored.
pub(crate) fn sha256_hex(s: &str) -> String {
    hex::encode(digest(&SHA256, s.as_bytes()).as_ref())
}

/// Compares secrets without leaking where they differ.
pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}
