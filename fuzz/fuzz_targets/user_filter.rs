//! Arbitrary `ListUsers` filters: never a panic; a parsed filter names a filterable attribute.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(Some(f)) = portcullis_idp::admin_api::parse_filter(s)
    {
        assert!(!f.attribute.is_empty());
    }
});
