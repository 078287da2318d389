//! Sign-in sessions in SQLite: one connection under a lock, so every operation is one
//! transaction that no other can interleave with.

use super::connection::{SqliteStore, lite};
use super::grants::revoke_family_in;
use crate::store::sessions::{EndRecord, SessionRow, SignInRecord, user_wide_at};
use crate::store::{StoreFuture, sql};
use rusqlite::{Connection, OptionalExtension, Row, params};

/// What a SQLite store writes as the ending node: it serves one process.
const NODE: &str = "sqlite";

fn session_row(r: &Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

/// A session with the clients given tokens in it.
fn record(c: &Connection, pool: &str, row: SessionRow) -> rusqlite::Result<SignInRecord> {
    let clients = c
        .prepare(&lite(sql::SIGN_IN_CLIENTS))?
        .query_map(params![pool, row.0], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(SignInRecord::from_row(row, clients))
}

/// The session the statement `sql` `($1 pool, $2 sid, $3 now)` returns, with its clients.
pub(super) fn session_in(
    c: &Connection,
    sql: &str,
    pool: &str,
    sid: &str,
    now: i64,
) -> rusqlite::Result<Option<SignInRecord>> {
    let row = c
        .query_row(&lite(sql), params![pool, sid, now], session_row)
        .optional()?;
    row.map(|row| record(c, pool, row)).transpose()
}

/// Ends one live session inside the caller's transaction: revokes its families, and logs the end.
pub(super) fn end_in(
    c: &Connection,
    pool: &str,
    sid: &str,
    now: i64,
) -> rusqlite::Result<Option<SignInRecord>> {
    let Some(rec) = session_in(c, sql::SIGN_IN_END, pool, sid, now)? else {
        return Ok(None);
    };
    let families: Vec<String> = c
        .prepare(&lite(sql::SIGN_IN_FAMILIES))?
        .query_map(params![pool, sid], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for f in &families {
        revoke_family_in(c, pool, f, now)?;
    }
    log_end(c, pool, Some(sid), &rec.sub, now, rec.expires_at)?;
    Ok(Some(rec))
}

fn log_end(
    c: &Connection,
    pool: &str,
    sid: Option<&str>,
    sub: &str,
    at: i64,
    keep_until: i64,
) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO session_ends (pool_id, sid, sub, ended_at, keep_until, node, noted_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            pool,
            sid,
            sub,
            at,
            keep_until,
            NODE,
            at.saturating_mul(1000)
        ],
    )?;
    Ok(())
}

impl SqliteStore {
    /// Ends the live session `(pool, sid)` at `now`, in one transaction.
    pub(super) fn end_session(
        &self,
        pool: &str,
        sid: &str,
        now: i64,
    ) -> StoreFuture<'static, Option<SignInRecord>> {
        let [pool, sid] = super::connection::owned([pool, sid]);
        self.run(move |c| {
            let tx = c.transaction()?;
            let out = end_in(&tx, &pool, &sid, now)?;
            tx.commit()?;
            Ok(out)
        })
    }
}

/// Records a new session (and forgets this user's expired ones).
pub(super) fn start(
    c: &mut Connection,
    pool: String,
    rec: SignInRecord,
    now: i64,
) -> rusqlite::Result<()> {
    let tx = c.transaction()?;
    for sql in [
        sql::EXPIRED_GRANTS_OF_USER_DELETE,
        sql::EXPIRED_SIGN_INS_OF_USER_DELETE,
    ] {
        tx.execute(&lite(sql), params![pool, rec.sub, now])?;
    }
    tx.execute(
        &lite(sql::SIGN_IN_INSERT),
        params![pool, rec.sid, rec.sub, rec.started_at, rec.expires_at],
    )?;
    tx.commit()
}

/// Records a family given in a live session and extends the session; whether it was live.
pub(super) fn add_grant(
    c: &mut Connection,
    pool: String,
    sid: String,
    client: String,
    origin: String,
    expires_at: i64,
    now: i64,
) -> rusqlite::Result<bool> {
    let tx = c.transaction()?;
    let live = tx.execute(
        "UPDATE sign_in_sessions SET expires_at = MAX(expires_at, ?3)
         WHERE pool_id = ?1 AND sid = ?2 AND ended_at IS NULL AND expires_at > ?4",
        params![pool, sid, expires_at, now],
    )? == 1;
    if live {
        tx.execute(
            &lite(sql::SIGN_IN_GRANT_INSERT),
            params![pool, origin, sid, client],
        )?;
    }
    tx.commit()?;
    Ok(live)
}

/// The session a family was given in.
pub(super) fn sid_of_family(
    c: &Connection,
    pool: String,
    origin: String,
) -> rusqlite::Result<Option<String>> {
    c.query_row(&lite(sql::SID_OF_FAMILY), params![pool, origin], |r| {
        r.get(0)
    })
    .optional()
}

/// Ends every live session of `sub` and logs one user-wide end kept until `keep_until` (or the
/// latest expiry of the sessions ended).
pub(super) fn end_user(
    c: &mut Connection,
    pool: String,
    sub: String,
    now: i64,
    keep_until: i64,
) -> rusqlite::Result<Vec<SignInRecord>> {
    let tx = c.transaction()?;
    let sids: Vec<String> = tx
        .prepare(
            "SELECT sid FROM sign_in_sessions
             WHERE pool_id = ?1 AND sub = ?2 AND ended_at IS NULL AND expires_at > ?3",
        )?
        .query_map(params![pool, sub, now], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut ended = Vec::new();
    for sid in &sids {
        ended.extend(end_in(&tx, &pool, sid, now)?);
    }
    let keep = ended
        .iter()
        .map(|r| r.expires_at)
        .fold(keep_until, i64::max);
    log_end(&tx, &pool, None, &sub, user_wide_at(now), keep)?;
    tx.commit()?;
    Ok(ended)
}

/// The ends logged that are kept at `now`, oldest first (forgetting the others and expired
/// sessions).
pub(super) fn ended(
    c: &mut Connection,
    pool: String,
    now: i64,
) -> rusqlite::Result<Vec<EndRecord>> {
    let tx = c.transaction()?;
    for sql in sql::ENDS_SWEEP {
        tx.execute(&lite(sql), params![pool, now])?;
    }
    let out = tx
        .prepare(&lite(sql::ENDS))?
        .query_map(params![pool], |r| {
            Ok(EndRecord {
                sid: r.get(0)?,
                sub: r.get(1)?,
                at: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    tx.commit()?;
    Ok(out)
}
