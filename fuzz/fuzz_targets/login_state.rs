//! Arbitrary `state` parameters through the state opener: never a panic, never accepted.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portcullis_auth::keys::KeyRing;

fuzz_target!(|data: &[u8]| {
    let ring = KeyRing::new(vec![(1, [7; 32])]);
    if let Ok(s) = std::str::from_utf8(data) {
        assert!(portcullis_auth::state::open(&ring, s, 1_000_000).is_err());
    }
});
