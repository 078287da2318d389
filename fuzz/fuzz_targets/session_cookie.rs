//! Arbitrary Cookie headers through the session-cookie reader: never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portcullis_auth::keys::KeyRing;

fuzz_target!(|data: &[u8]| {
    let ring = KeyRing::new(vec![(1, [7; 32])]);
    let mut h = http::HeaderMap::new();
    for part in data.split(|b| *b == b'\n') {
        if let Ok(v) = http::HeaderValue::from_bytes(part) {
            h.append(http::header::COOKIE, v);
        }
    }
    let _ = portcullis_auth::session_cookie::read(&ring, "AWSELBAuthSessionCookie", &h);
    let _ = portcullis_auth::session_cookie::shard_count(&h, "AWSELBAuthSessionCookie");
});
