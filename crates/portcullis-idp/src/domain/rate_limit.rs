//! Rate limits of every endpoint that checks a secret: token buckets per client address and per
//! user (or app client), kept in the store so that nodes sharing PostgreSQL share them, with the
//! pool's [`Clock`] so tests pass time in. The front-ends (API dispatch, hosted-UI forms, the
//! token endpoint) call [`Pool::admit`] before a password or code is checked, and
//! [`Pool::client_auth_allowed`] / [`Pool::client_auth_failed`] around client secrets and admin
//! signatures (high-entropy secrets: only failures are counted, so busy clients are not throttled).

use crate::domain::pool::Pool;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use portcullis_config::{Bucket, RateLimits};
use portcullis_core::Clock;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// How often stale buckets and failure rows are swept (ms).
const SWEEP_EVERY_MS: i64 = 60_000;

/// Why a request was refused before its secret was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    /// Too many from this client address.
    PerIp,
    /// Too many naming this user or client.
    PerUser,
}

/// The client address of a request: the TCP peer of the pool's listener, or, when that peer is
/// one of `rate_limits.trusted_proxies`, the last address in `X-Forwarded-For` that is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<Arc<Pool>> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        pool: &Arc<Pool>,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let Some(peer) = peer else {
            // Served without connection info (see `serve`): every client shares one bucket.
            return Ok(ClientIp(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        };
        let trusted = &pool.limits.config.trusted_proxies;
        let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
        if !is_trusted(&peer) {
            return Ok(ClientIp(peer));
        }
        let forwarded: Vec<IpAddr> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .map(|a| a.parse::<IpAddr>().ok())
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default();
        Ok(ClientIp(
            forwarded
                .into_iter()
                .rev()
                .find(|ip| !is_trusted(ip))
                .unwrap_or(peer),
        ))
    }
}

/// The bucket key of an address: IPv6 clients are counted by /64 (one subscriber's prefix).
fn ip_key(ip: IpAddr) -> String {
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
    last_sweep: AtomicI64,
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
fn gcra(b: Bucket) -> (i64, i64) {
    (
        (60_000 / i64::from(b.per_minute.max(1))).max(1),
        i64::from(b.burst.max(1)),
    )
}

impl Pool {
    /// Takes a token for a secret check from `ip`'s bucket (none for signed admin calls, whose
    /// callers speak for many clients), then from `user`'s; refuses when either is empty. Store
    /// failures let the request through (the check itself then fails).
    pub async fn admit(&self, ip: Option<IpAddr>, user: Option<&str>) -> Result<(), Throttled> {
        let cfg = &self.limits.config;
        if let Some(ip) = ip
            && !self.take(&format!("ip:{}", ip_key(ip)), cfg.per_ip).await
        {
            self.metrics.limited(&self.name, "per_ip");
            tracing::info!(pool = %self.name, client = %ip, "rate limited (per_ip)");
            return Err(Throttled::PerIp);
        }
        if let Some(u) = user.filter(|u| !u.is_empty()) {
            let u: String = u.chars().take(128).collect();
            if !self.take(&format!("user:{u}"), cfg.per_user).await {
                self.metrics.limited(&self.name, "per_user");
                tracing::info!(pool = %self.name, client = ?ip, "rate limited (per_user)");
                return Err(Throttled::PerUser);
            }
        }
        Ok(())
    }

    /// Whether a client secret or admin signature from `ip` for `subject` (client id, access key
    /// id) may be checked: refused once its failures used up `failed_client_auth`.
    pub async fn client_auth_allowed(&self, ip: IpAddr, subject: &str) -> bool {
        let b = self.limits.config.failed_client_auth;
        let now = self.limits.clock.now_ms();
        let (interval, burst) = gcra(b);
        for key in failure_keys(ip, subject) {
            // A token would be there: the next failure may still be counted.
            let free = match self.store.bucket_tat(&self.id, &key).await {
                Ok(Some(tat)) => tat.max(now) + interval - now <= burst * interval,
                Ok(None) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "rate limit store failure");
                    true
                }
            };
            if !free {
                self.metrics.limited(&self.name, "failed_client_auth");
                tracing::info!(pool = %self.name, client = %ip, "rate limited (failed_client_auth)");
                return false;
            }
        }
        true
    }

    /// Counts a failed client secret or admin signature from `ip` for `subject`.
    pub async fn client_auth_failed(&self, ip: IpAddr, subject: &str) {
        let b = self.limits.config.failed_client_auth;
        for key in failure_keys(ip, subject) {
            self.take(&key, b).await;
        }
    }

    /// Takes a token from a bucket; sweeps stale buckets now and then.
    async fn take(&self, key: &str, b: Bucket) -> bool {
        let now = self.limits.clock.now_ms();
        let (interval, burst) = gcra(b);
        let last = self.limits.last_sweep.load(Ordering::Relaxed);
        if now - last > SWEEP_EVERY_MS
            && self
                .limits
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            && let Err(e) = self
                .store
                .sweep_limits(&self.id, now, crate::domain::pool::LOCKOUT_RESET)
                .await
        {
            tracing::warn!(error = %e, "cannot sweep rate limits");
        }
        match self
            .store
            .take_token(&self.id, key, now, interval, burst)
            .await
        {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "rate limit store failure");
                true
            }
        }
    }
}

fn failure_keys(ip: IpAddr, subject: &str) -> [String; 2] {
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
