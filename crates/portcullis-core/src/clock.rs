//! The clock of a pool or a load balancer: the system clock, or a time tests stop and move, so
//! expiry, lockouts, attempt windows, rate limits, slow start, draining and health-check rounds
//! are tested without sleeping.
//!
//! It has two readings. The wall clock ([`Clock::now_ms`]) is what a pool stamps and compares;
//! tests stop it or move it. The monotonic one ([`Clock::instant`]) is what a load balancer
//! measures durations with: the system's `Instant` plus every advance, so it never stops and
//! never goes back; its timers (`Clock::sleep_until`, feature `timers`) wake early when a test moves it.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The time every decision of a pool or a load balancer reads.
#[derive(Debug, Default)]
pub struct Clock {
    /// Milliseconds since the epoch when stopped; 0 follows the system clock.
    fixed_ms: AtomicI64,
    /// Milliseconds added to the system clock while it runs.
    offset_ms: AtomicI64,
    /// Milliseconds every forward move added to the monotonic reading.
    advanced_ms: AtomicU64,
    /// Wakes the timers of `Clock::sleep_until` when the clock moves.
    #[cfg(feature = "timers")]
    moved: tokio::sync::Notify,
}

impl Clock {
    /// Milliseconds since the epoch.
    pub fn now_ms(&self) -> i64 {
        match self.fixed_ms.load(Ordering::Relaxed) {
            0 => {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0)
                    + self.offset_ms.load(Ordering::Relaxed)
            }
            t => t,
        }
    }

    /// Seconds since the epoch.
    pub fn now(&self) -> i64 {
        self.now_ms() / 1000
    }

    /// Stops the clock at `ms` (tests), or lets it follow the system clock again (`None`).
    pub fn set_ms(&self, ms: Option<i64>) {
        self.fixed_ms.store(ms.unwrap_or(0), Ordering::Relaxed);
    }

    /// Moves the clock forward: a stopped clock stays stopped, a running one keeps running. The
    /// monotonic reading moves too (forward only), and timers waiting on it wake.
    pub fn advance_ms(&self, ms: i64) {
        if self.fixed_ms.load(Ordering::Relaxed) == 0 {
            self.offset_ms.fetch_add(ms, Ordering::Relaxed);
        } else {
            self.fixed_ms.fetch_add(ms, Ordering::Relaxed);
        }
        if let Ok(forward) = u64::try_from(ms) {
            self.advanced_ms.fetch_add(forward, Ordering::Relaxed);
            #[cfg(feature = "timers")]
            self.moved.notify_waiters();
        }
    }

    /// Monotonic time, for durations: the system's `Instant` plus every advance (one atomic load
    /// more than `Instant::now()`).
    pub fn instant(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.advanced_ms.load(Ordering::Relaxed))
    }

    /// Waits until [`Clock::instant`] reaches `deadline`, by real time passing or by a test
    /// moving the clock.
    #[cfg(feature = "timers")]
    pub async fn sleep_until(&self, deadline: Instant) {
        loop {
            // Registered before reading the time, so a move in between is not missed.
            let moved = self.moved.notified();
            let mut moved = std::pin::pin!(moved);
            moved.as_mut().enable();
            let now = self.instant();
            if now >= deadline {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(deadline - now) => {}
                () = moved => {}
            }
        }
    }

    /// Waits `d` by [`Clock::instant`] (see [`Clock::sleep_until`]).
    #[cfg(feature = "timers")]
    pub async fn sleep(&self, d: Duration) {
        self.sleep_until(self.instant() + d).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopped_and_running_clocks_move() {
        let c = Clock::default();
        let t = c.now_ms();
        c.advance_ms(60_000);
        assert!(c.now_ms() >= t + 60_000);
        c.set_ms(Some(5_000));
        c.advance_ms(1_000);
        assert_eq!(c.now_ms(), 6_000);
        assert_eq!(c.now(), 6);
        c.set_ms(None);
        assert!(c.now_ms() >= t + 60_000);
    }

    #[test]
    fn the_monotonic_reading_moves_forward_only() {
        let c = Clock::default();
        let t = c.instant();
        c.advance_ms(60_000);
        assert!(c.instant() >= t + Duration::from_secs(60));
        c.advance_ms(-120_000);
        assert!(c.instant() >= t + Duration::from_secs(60));
        // Stopping the wall clock does not stop the monotonic one.
        c.set_ms(Some(5_000));
        assert!(c.instant() >= t + Duration::from_secs(60));
    }

    #[cfg(feature = "timers")]
    #[tokio::test]
    async fn timers_wake_when_the_clock_moves() {
        let c = std::sync::Arc::new(Clock::default());
        let sleeper = tokio::spawn({
            let c = c.clone();
            async move { c.sleep(Duration::from_secs(3600)).await }
        });
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        c.advance_ms(1_000);
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "an hour is not up after a second");
        c.advance_ms(3_600_000);
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("the move wakes the timer")
            .unwrap();
        // A deadline already passed returns at once.
        c.sleep_until(Instant::now()).await;
    }
}
