//! Failed sign-ins (lockout, checks in flight) in SQLite, and the rate-limit buckets, which a
//! SQLite store keeps in memory.

use super::connection::{SqliteStore, lite};
use crate::store::{Reservation, sql};
use rusqlite::{Connection, OptionalExtension, params};

/// Reserves a password check: counts it as a failure and marks it in flight, unless the user is
/// locked or another check is in flight.
pub(super) fn reserve_sign_in(
    c: &mut Connection,
    pool: String,
    username: String,
    now: i64,
    reset_after: i64,
    max_lock: i64,
    lease: i64,
) -> rusqlite::Result<Reservation> {
    let tx = c.transaction()?;
    let granted = tx
        .query_row(
            "INSERT INTO sign_in_failures (pool_id, username, failures, last_failure, locked_until, busy_until)
             VALUES (?1, ?2, 1, ?3, 0, ?3 + ?6)
             ON CONFLICT (pool_id, username) DO UPDATE SET
               failures = CASE WHEN ?3 - last_failure > ?4 THEN 1 ELSE failures + 1 END,
               locked_until = CASE
                 WHEN ?3 - last_failure > ?4 OR failures + 1 < 5 THEN 0
                 ELSE ?3 + MIN(?5, 1 << MIN(failures + 1 - 5, 20)) END,
               last_failure = ?3,
               busy_until = ?3 + ?6
             WHERE locked_until <= ?3 AND busy_until <= ?3
             RETURNING failures",
            params![pool, username, now, reset_after, max_lock, lease],
            |r| r.get::<_, i64>(0),
        )
        .optional()?;
    let answer = if granted.is_some() {
        Reservation::Granted
    } else {
        let locked: i64 = tx.query_row(&lite(sql::LOCKED_UNTIL), params![pool, username], |r| {
            r.get(0)
        })?;
        if locked > now {
            Reservation::Locked
        } else {
            Reservation::Busy
        }
    };
    tx.commit()?;
    Ok(answer)
}

/// Ends the in-flight mark of a failed check.
pub(super) fn release_sign_in(
    c: &Connection,
    pool: String,
    username: String,
) -> rusqlite::Result<()> {
    c.execute(&lite(sql::SIGN_IN_RELEASE), params![pool, username])
        .map(|_| ())
}

/// Forgets failures that no longer matter at `now` (seconds).
pub(super) fn sweep_failures(
    c: &Connection,
    pool: String,
    now: i64,
    reset_after: i64,
) -> rusqlite::Result<()> {
    c.execute(
        "DELETE FROM sign_in_failures WHERE pool_id = ?1 AND last_failure < ?2 - ?3
         AND locked_until <= ?2 AND busy_until <= ?2",
        params![pool, now, reset_after],
    )
    .map(|_| ())
}

/// When the user's lockout ends (0 when unknown).
pub(super) fn locked_until(c: &Connection, pool: &str, username: &str) -> rusqlite::Result<i64> {
    c.query_row(&lite(sql::LOCKED_UNTIL), params![pool, username], |r| {
        r.get(0)
    })
    .optional()
    .map(|v| v.unwrap_or(0))
}

/// Forgets a user's failures.
pub(super) fn clear_failures(
    c: &Connection,
    pool: String,
    username: String,
) -> rusqlite::Result<()> {
    c.execute(&lite(sql::FAILURES_CLEAR), params![pool, username])
        .map(|_| ())
}

impl SqliteStore {
    /// GCRA on the in-memory buckets (see the field).
    pub(super) fn take_token(
        &self,
        pool: &str,
        key: &str,
        now_ms: i64,
        interval_ms: i64,
        burst: i64,
    ) -> bool {
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let k = (pool.to_string(), key.to_string());
        let tat = b.get(&k).copied().unwrap_or(now_ms).max(now_ms) + interval_ms;
        if tat - now_ms > burst.saturating_mul(interval_ms) {
            return false;
        }
        b.insert(k, tat);
        true
    }

    /// A bucket's theoretical arrival time, when it is not full.
    pub(super) fn bucket(&self, pool: &str, key: &str) -> Option<i64> {
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(pool.to_string(), key.to_string()))
            .copied()
    }

    /// Forgets the pool's buckets that are full again at `now_ms`.
    pub(super) fn forget_full_buckets(&self, pool: &str, now_ms: i64) {
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(p, _), tat| p != pool || *tat >= now_ms);
    }

    /// The lockout schedule alone (what [`crate::store::Store::reserve_sign_in`] counts), kept
    /// for its unit test.
    #[cfg(test)]
    pub(super) async fn record_failure(
        &self,
        pool: &str,
        username: &str,
        now: i64,
        reset_after: i64,
        max_lock: i64,
    ) -> Result<(i64, i64), crate::store::StoreError> {
        let (pool, username) = (pool.to_string(), username.to_string());
        self.run(move |c| {
            c.query_row(
                "INSERT INTO sign_in_failures (pool_id, username, failures, last_failure, locked_until)
                 VALUES (?1, ?2, 1, ?3, 0)
                 ON CONFLICT (pool_id, username) DO UPDATE SET
                   failures = CASE WHEN ?3 - last_failure > ?4 THEN 1 ELSE failures + 1 END,
                   locked_until = CASE
                     WHEN ?3 - last_failure > ?4 OR failures + 1 < 5 THEN 0
                     ELSE ?3 + MIN(?5, 1 << MIN(failures + 1 - 5, 20)) END,
                   last_failure = ?3
                 RETURNING failures, locked_until",
                params![pool, username, now, reset_after, max_lock],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .await
    }
}
