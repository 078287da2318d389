//! The pool's clock: the system clock, or a time tests stop and move, so expiry, lockouts, attempt
//! windows and rate limits are tested without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};

/// The time every decision of a pool reads.
#[derive(Debug, Default)]
pub struct Clock {
    /// Milliseconds since the epoch when stopped; 0 follows the system clock.
    fixed_ms: AtomicI64,
    /// Milliseconds added to the system clock while it runs.
    offset_ms: AtomicI64,
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

    /// Moves the clock forward: a stopped clock stays stopped, a running one keeps running.
    pub fn advance_ms(&self, ms: i64) {
        if self.fixed_ms.load(Ordering::Relaxed) == 0 {
            self.offset_ms.fetch_add(ms, Ordering::Relaxed);
        } else {
            self.fixed_ms.fetch_add(ms, Ordering::Relaxed);
        }
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
}
