//! Arbitrary `x-amzn-oidc-data` values through the verifier: never a panic, never accepted.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static KEY: OnceLock<portcullis_verify::PublicKey> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let key = KEY.get_or_init(|| {
        let pem = portcullis_auth::AuthKeys::ephemeral().claims.public_pem();
        portcullis_verify::PublicKey::from_pem(&pem).expect("generated key")
    });
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = portcullis_verify::peek_header(s);
        assert!(portcullis_verify::AlbVerifier::new("arn").verify(s, key, 0).is_err());
    }
});
