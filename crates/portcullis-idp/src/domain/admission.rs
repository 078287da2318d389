//! Admission before a secret is checked: the per-address and per-user buckets, and the budget
//! of failed client authentications, read from the store on the pool's clock.

use crate::domain::pool::Pool;
use crate::domain::rate_limit::{SWEEP_EVERY_MS, Throttled, failure_keys, gcra, ip_key};
use portcullis_config::Bucket;
use std::net::IpAddr;
use std::sync::atomic::Ordering;

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
                .sweep_limits(&self.id, now, crate::domain::accounts::LOCKOUT_RESET)
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
