//! Arbitrary config text through parsing and validation: errors, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = portcullis_config::load_str(s, std::path::Path::new("fuzz.toml"), std::path::Path::new("."));
    }
});
