//! Arbitrary `Authorization`, `X-Amz-Date` and bodies through SigV4 verification: never a panic,
//! never accepted without the secret.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let (auth, date, body) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let mut h = http::HeaderMap::new();
    for (name, value) in [("authorization", auth), ("x-amz-date", date), ("host", "localhost")] {
        if let Ok(v) = http::HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    }
    let req = portcullis_idp::admin_api::sigv4::SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &h,
        body: body.as_bytes(),
    };
    let r = portcullis_idp::admin_api::sigv4::verify(&req, "us-east-1", "cognito-idp", 1_795_482_036, |_| {
        Some("fuzz-secret-never-guessed".to_string())
    });
    assert!(r.is_err());
});
