//! One-time tickets (confirmation codes, challenge sessions, attempt budgets, TOTP steps) in
//! PostgreSQL.

use super::connection::PgStore;
use crate::store::{StoreError, now, sql};

/// Stores a ticket, replacing an earlier one (and forgets expired ones).
pub(super) async fn put(
    s: &PgStore,
    pool: &str,
    purpose: &str,
    key: &str,
    value: String,
    expires_at: i64,
) -> Result<(), StoreError> {
    s.exec(sql::TICKETS_SWEEP, &[&now()]).await?;
    s.exec(
        sql::TICKET_PUT,
        &[&pool, &purpose, &key, &value, &expires_at],
    )
    .await?;
    Ok(())
}

/// A live ticket's value and wrong guesses.
pub(super) async fn get(
    s: &PgStore,
    pool: &str,
    purpose: &str,
    key: &str,
) -> Result<Option<(String, i64)>, StoreError> {
    let r = s.opt(sql::TICKET, &[&pool, &purpose, &key, &now()]).await?;
    Ok(r.map(|r| (r.get(0), r.get(1))))
}

/// Counts a guess at a live ticket that has had fewer than `max`.
pub(super) async fn spend_attempt(
    s: &PgStore,
    pool: &str,
    purpose: &str,
    key: &str,
    max: i64,
) -> Result<Option<(String, i64)>, StoreError> {
    let r = s
        .opt(sql::TICKET_GUESS, &[&pool, &purpose, &key, &now(), &max])
        .await?;
    Ok(r.map(|r| (r.get(0), r.get(1))))
}

/// Reserves one attempt of a budget of `max` per `window` seconds.
pub(super) async fn reserve_attempt(
    s: &PgStore,
    pool: &str,
    purpose: &str,
    key: &str,
    max: i64,
    window: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let r = s
        .opt(
            "INSERT INTO tickets (pool_id, purpose, key, value, expires_at, attempts) VALUES ($1, $2, $3, '', $4::bigint + $5::bigint, 1)
             ON CONFLICT (pool_id, purpose, key) DO UPDATE SET
               attempts = CASE WHEN tickets.expires_at <= $4 THEN 1 ELSE tickets.attempts + 1 END,
               expires_at = CASE WHEN tickets.expires_at <= $4 THEN $4::bigint + $5::bigint ELSE tickets.expires_at END
             WHERE tickets.expires_at <= $4::bigint OR tickets.attempts < $6::bigint
             RETURNING attempts",
            &[&pool, &purpose, &key, &now, &window, &max],
        )
        .await?;
    Ok(r.is_some())
}

/// Stores `value` unless a larger or equal number is stored; whether it did.
pub(super) async fn advance(
    s: &PgStore,
    pool: &str,
    purpose: &str,
    key: &str,
    value: i64,
    expires_at: i64,
) -> Result<bool, StoreError> {
    let value = value.to_string();
    let r = s
        .opt(
            "INSERT INTO tickets (pool_id, purpose, key, value, expires_at, attempts) VALUES ($1, $2, $3, $4, $5, 0)
             ON CONFLICT (pool_id, purpose, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
             WHERE tickets.value::bigint < excluded.value::bigint
             RETURNING value",
            &[&pool, &purpose, &key, &value, &expires_at],
        )
        .await?;
    Ok(r.is_some())
}

/// Deletes a live ticket and returns its value.
pub(super) async fn take(
    s: &PgStore,
    pool: &str,
    purpose: &str,
    key: &str,
) -> Result<Option<String>, StoreError> {
    let r = s
        .opt(sql::TICKET_TAKE, &[&pool, &purpose, &key, &now()])
        .await?;
    Ok(r.map(|r| r.get(0)))
}
