//! Failed sign-ins (lockout, checks in flight) and rate-limit buckets in PostgreSQL, shared by
//! every node.

use super::connection::PgStore;
use crate::store::{Reservation, StoreError, sql};

/// Reserves a password check: counts it as a failure and marks it in flight, unless the user is
/// locked or another check is in flight.
pub(super) async fn reserve_sign_in(
    s: &PgStore,
    pool: &str,
    username: &str,
    now: i64,
    reset_after: i64,
    max_lock: i64,
    lease: i64,
) -> Result<Reservation, StoreError> {
    let granted = s.opt(
            "INSERT INTO sign_in_failures AS f (pool_id, username, failures, last_failure, locked_until, busy_until)
             VALUES ($1, $2, 1, $3::BIGINT, 0, $3::BIGINT + $6::BIGINT)
             ON CONFLICT (pool_id, username) DO UPDATE SET
               failures = CASE WHEN $3 - f.last_failure > $4::BIGINT THEN 1 ELSE f.failures + 1 END,
               locked_until = CASE
                 WHEN $3 - f.last_failure > $4 OR f.failures + 1 < 5 THEN 0
                 ELSE $3 + LEAST($5::BIGINT, (1::BIGINT << LEAST(f.failures + 1 - 5, 20)::INT)) END,
               last_failure = $3,
               busy_until = $3 + $6
             WHERE f.locked_until <= $3 AND f.busy_until <= $3
             RETURNING failures",
            &[&pool, &username, &now, &reset_after, &max_lock, &lease],
        ).await?;
    if granted.is_some() {
        return Ok(Reservation::Granted);
    }
    let locked = locked_until(s, pool, username).await? > now;
    Ok(if locked {
        Reservation::Locked
    } else {
        Reservation::Busy
    })
}

/// Ends the in-flight mark of a failed check.
pub(super) async fn release_sign_in(
    s: &PgStore,
    pool: &str,
    username: &str,
) -> Result<(), StoreError> {
    s.exec(sql::SIGN_IN_RELEASE, &[&pool, &username]).await?;
    Ok(())
}

/// Takes a token from a bucket (GCRA), in one statement for every node.
pub(super) async fn take_token(
    s: &PgStore,
    pool: &str,
    key: &str,
    now_ms: i64,
    interval_ms: i64,
    burst: i64,
) -> Result<bool, StoreError> {
    let r = s
        .opt(
            "INSERT INTO rate_buckets AS b (pool_id, key, tat) VALUES ($1, $2, $3::BIGINT + $4::BIGINT)
             ON CONFLICT (pool_id, key) DO UPDATE SET tat = GREATEST(b.tat, $3) + $4
             WHERE GREATEST(b.tat, $3) + $4 - $3 <= $5::BIGINT * $4
             RETURNING tat",
            &[&pool, &key, &now_ms, &interval_ms, &burst],
        )
        .await?;
    Ok(r.is_some())
}

/// A bucket's theoretical arrival time, when it is not full.
pub(super) async fn bucket_tat(
    s: &PgStore,
    pool: &str,
    key: &str,
) -> Result<Option<i64>, StoreError> {
    let r = s
        .opt(
            "SELECT tat FROM rate_buckets WHERE pool_id = $1 AND key = $2",
            &[&pool, &key],
        )
        .await?;
    Ok(r.map(|r| r.get(0)))
}

/// Forgets full buckets and failures that no longer matter.
pub(super) async fn sweep(
    s: &PgStore,
    pool: &str,
    now_ms: i64,
    reset_after: i64,
) -> Result<(), StoreError> {
    let now = now_ms / 1000;
    s.exec(
        "DELETE FROM rate_buckets WHERE pool_id = $1 AND tat < $2",
        &[&pool, &now_ms],
    )
    .await?;
    s.exec(
        "DELETE FROM sign_in_failures WHERE pool_id = $1 AND last_failure < $2::BIGINT - $3::BIGINT
         AND locked_until <= $2 AND busy_until <= $2",
        &[&pool, &now, &reset_after],
    )
    .await?;
    Ok(())
}

/// When the user's lockout ends (0 when unknown).
pub(super) async fn locked_until(
    s: &PgStore,
    pool: &str,
    username: &str,
) -> Result<i64, StoreError> {
    let r = s.opt(sql::LOCKED_UNTIL, &[&pool, &username]).await?;
    Ok(r.map_or(0, |r| r.get(0)))
}

/// Forgets a user's failures.
pub(super) async fn clear_failures(
    s: &PgStore,
    pool: &str,
    username: &str,
) -> Result<(), StoreError> {
    s.exec(sql::FAILURES_CLEAR, &[&pool, &username]).await?;
    Ok(())
}
