//! Arbitrary patterns and values through the ALB wildcard matcher.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (p, v) = data.split_at(data.len() / 2);
    let _ = portcullis_lb::wildcard::matches(p, v, true);
    let _ = portcullis_lb::wildcard::matches(p, v, false);
});
