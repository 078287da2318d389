//! One-time tickets (confirmation codes, challenge sessions, attempt budgets, TOTP steps) in
//! SQLite.

use super::connection::lite;
use crate::store::{now, sql};
use rusqlite::{Connection, OptionalExtension, params};

/// Stores a ticket, replacing an earlier one (and forgets expired ones).
pub(super) fn put(
    c: &Connection,
    pool: String,
    purpose: String,
    key: String,
    value: String,
    expires_at: i64,
) -> rusqlite::Result<()> {
    c.execute(&lite(sql::TICKETS_SWEEP), params![now()])?;
    c.execute(
        &lite(sql::TICKET_PUT),
        params![pool, purpose, key, value, expires_at],
    )
    .map(|_| ())
}

/// A live ticket's value and wrong guesses.
pub(super) fn get(
    c: &Connection,
    pool: String,
    purpose: String,
    key: String,
) -> rusqlite::Result<Option<(String, i64)>> {
    c.query_row(
        &lite(sql::TICKET),
        params![pool, purpose, key, now()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// Counts a guess at a live ticket that has had fewer than `max`.
pub(super) fn spend_attempt(
    c: &Connection,
    pool: String,
    purpose: String,
    key: String,
    max: i64,
) -> rusqlite::Result<Option<(String, i64)>> {
    c.query_row(
        &lite(sql::TICKET_GUESS),
        params![pool, purpose, key, now(), max],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// Reserves one attempt of a budget of `max` per `window` seconds.
pub(super) fn reserve_attempt(
    c: &Connection,
    pool: String,
    purpose: String,
    key: String,
    max: i64,
    window: i64,
    now: i64,
) -> rusqlite::Result<bool> {
    Ok(c.query_row(
        "INSERT INTO tickets (pool_id, purpose, key, value, expires_at, attempts) VALUES (?1, ?2, ?3, '', ?4 + ?5, 1)
         ON CONFLICT (pool_id, purpose, key) DO UPDATE SET
           attempts = CASE WHEN tickets.expires_at <= ?4 THEN 1 ELSE tickets.attempts + 1 END,
           expires_at = CASE WHEN tickets.expires_at <= ?4 THEN ?4 + ?5 ELSE tickets.expires_at END
         WHERE tickets.expires_at <= ?4 OR tickets.attempts < ?6
         RETURNING attempts",
        params![pool, purpose, key, now, window, max],
        |r| r.get::<_, i64>(0),
    )
    .optional()?
    .is_some())
}

/// Stores `value` unless a larger or equal number is stored; whether it did.
pub(super) fn advance(
    c: &Connection,
    pool: String,
    purpose: String,
    key: String,
    value: i64,
    expires_at: i64,
) -> rusqlite::Result<bool> {
    Ok(c.query_row(
        "INSERT INTO tickets (pool_id, purpose, key, value, expires_at, attempts) VALUES (?1, ?2, ?3, ?4, ?5, 0)
         ON CONFLICT (pool_id, purpose, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
         WHERE CAST(tickets.value AS INTEGER) < CAST(excluded.value AS INTEGER)
         RETURNING value",
        params![pool, purpose, key, value.to_string(), expires_at],
        |r| r.get::<_, String>(0),
    )
    .optional()?
    .is_some())
}

/// Deletes a live ticket and returns its value.
pub(super) fn take(
    c: &Connection,
    pool: String,
    purpose: String,
    key: String,
) -> rusqlite::Result<Option<String>> {
    c.query_row(
        &lite(sql::TICKET_TAKE),
        params![pool, purpose, key, now()],
        |r| r.get(0),
    )
    .optional()
}
