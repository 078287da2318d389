//! Arbitrary TOTP keys as typed by users: decoding never panics, and encoding round-trips.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = portcullis_idp::domain::mfa::base32_decode(s);
    }
    let enc = portcullis_idp::domain::mfa::base32_encode(data);
    assert_eq!(portcullis_idp::domain::mfa::base32_decode(&enc).as_deref(), Some(data));
});
