//! Rate limits of every endpoint that checks a secret: token buckets per client address and per
//! user (or app client), kept in the store so that nodes sharing PostgreSQL share them, with the
//! pool's [`Clock`] so tests pass time in. This is the limiter and its bucket arithmetic; taking
//! tokens is [`admission`](crate::domain::admission): the front-ends (API dispatch, hosted-UI
//! forms, the token endpoint) call `Pool::admit` before a password or code is checked, and
//! `Pool::client_auth_allowed` / `Pool::client_auth_failed` around client secrets and admin
//! signatures (high-entropy secrets: only failures are counted, so busy clients are not throttled).

use portcullis_config::{Bucket, RateLimits};
use portcullis_core::Clock;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;

/// How often stale buckets and failure rows are swept (ms).
pub(crate) const SWEEP_EVERY_MS: i64 = 60_000;

/// Why a request was refused before its secret was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    /// Too many from this client address.
    PerIp,
    /// Too many naming this user or client.
    PerUser,
}

/// The bucket key of an address: IPv6 clients are counted by /64 (one subscriber's prefix).
pub(crate) fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The limits of one pool.
pub struct Limiter {
    /// The configured limits.
    pub config: RateLimits,
    /// Lockouts and buckets read this clock.
    pub clock: Arc<Clock>,
    pub(crate) last_sweep: AtomicI64,
}

impl Limiter {
    /// Limits from config, on `clock`.
    pub fn new(config: RateLimits, clock: Arc<Clock>) -> Limiter {
        Limiter {
            config,
            clock,
            last_sweep: AtomicI64::new(0),
        }
    }
}

/// GCRA parameters of a bucket: (ms per token, burst).
pub(crate) fn gcra(b: Bucket) -> (i64, i64) {
    (
        (60_000 / i64::from(b.per_minute.max(1))).max(1),
        i64::from(b.burst.max(1)),
    )
}

/// The failure buckets of a client authentication: per address and per subject.
pub(crate) fn failure_keys(ip: IpAddr, subject: &str) -> [String; 2] {
    let s: String = subject.chars().take(128).collect();
    [
        format!("authfail-ip:{}", ip_key(ip)),
        format!("authfail-client:{s}"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_share_their_64() {
        let a: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        let m: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(ip_key(m), "10.0.0.1");
    }

    #[test]
    fn buckets_refill_at_their_rate() {
        let b = Bucket {
            burst: 3,
            per_minute: 60,
        };
        assert_eq!(gcra(b), (1000, 3));
    }
}
