//! The foundation under every Portcullis crate: plumbing that would otherwise be written once per
//! crate. It depends on nothing of ours, so any crate may use it: the clock and `now()`, HTTP
//! dates, files private to their owner, secrets given literally or by environment variable,
//! (feature `http`) the host a request names, and (feature `scratch`, for tests) scratch
//! directories.

pub mod clock;
pub mod httpdate;
pub mod private_file;
#[cfg(feature = "http")]
pub mod request;
#[cfg(any(test, feature = "scratch"))]
pub mod scratch;
pub mod secret;

pub use clock::Clock;
pub use httpdate::httpdate;
pub use secret::SecretError;

/// Seconds since the Unix epoch by the system clock (0 before 1970); logic that tests move in
/// time reads a [`Clock`] instead.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
