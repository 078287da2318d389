//! Arbitrary bytes as a Lambda function's answer (untrusted: a target sends them).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = portcullis_lb::lambda::response(data, false);
    let _ = portcullis_lb::lambda::response(data, true);
});
