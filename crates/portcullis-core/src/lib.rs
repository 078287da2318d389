//! The foundation under every Portcullis crate: plumbing that would otherwise be written once per
//! crate (the clock first). It depends on nothing of ours, so any crate may use it.

pub mod clock;

pub use clock::Clock;

/// Seconds since the Unix epoch by the system clock (0 before 1970); logic that tests move in
/// time reads a [`Clock`] instead.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
