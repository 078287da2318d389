//! Sign-in sessions in SQLite: one connection under a lock, so every operation is one
//! transaction that no other can interleave with.

use super::grants::revoke_family_in;
use super::{SqliteStore, lite};
use crate::store::sessions::{EndRecord, SessionRow, SessionStore, SignInRecord, user_wide_at};
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

/// A session (ended or not) unexpired at `now`.
fn read(c: &Connection, pool: &str, sid: &str, now: i64) -> rusqlite::Result<Option<SignInRecord>> {
    let row = c
        .query_row(&lite(sql::SIGN_IN), params![pool, sid, now], session_row)
        .optional()?;
    row.map(|row| record(c, pool, row)).transpose()
}

/// Ends one live session inside the caller's transaction: revokes its families, and logs the end.
fn end_in(
    c: &Connection,
    pool: &str,
    sid: &str,
    now: i64,
) -> rusqlite::Result<Option<SignInRecord>> {
    let row = c
        .query_row(
            &lite(sql::SIGN_IN_END),
            params![pool, sid, now],
            session_row,
        )
        .optional()?;
    let Some(row) = row else { return Ok(None) };
    let families: Vec<String> = c
        .prepare(&lite(sql::SIGN_IN_FAMILIES))?
        .query_map(params![pool, sid], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for f in &families {
        revoke_family_in(c, pool, f, now)?;
    }
    let rec = record(c, pool, row)?;
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
    /// Runs `f` on the session `(pool, sid)`, in one transaction.
    fn on_sign_in<R, F>(&self, pool: &str, sid: &str, f: F) -> StoreFuture<'static, R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection, &str, &str) -> rusqlite::Result<R> + Send + 'static,
    {
        let [pool, sid] = super::owned([pool, sid]);
        self.run(move |c| {
            let tx = c.transaction()?;
            let out = f(&tx, &pool, &sid)?;
            tx.commit()?;
            Ok(out)
        })
    }
}

impl SessionStore for SqliteStore {
    fn start_sign_in<'a>(
        &'a self,
        pool: &'a str,
        rec: &'a SignInRecord,
        now: i64,
    ) -> StoreFuture<'a, ()> {
        let (pool, rec) = (pool.to_string(), rec.clone());
        self.run(move |c| {
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
        })
    }

    fn add_sign_in_grant<'a>(
        &'a self,
        pool: &'a str,
        sid: &'a str,
        client: &'a str,
        origin_jti: &'a str,
        expires_at: i64,
        now: i64,
    ) -> StoreFuture<'a, bool> {
        let [pool, sid, client, origin] = super::owned([pool, sid, client, origin_jti]);
        self.run(move |c| {
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
        })
    }

    fn sign_in_session<'a>(
        &'a self,
        pool: &'a str,
        sid: &'a str,
        now: i64,
    ) -> StoreFuture<'a, Option<SignInRecord>> {
        self.on_sign_in(pool, sid, move |c, pool, sid| read(c, pool, sid, now))
    }

    fn sid_of_family<'a>(
        &'a self,
        pool: &'a str,
        origin_jti: &'a str,
    ) -> StoreFuture<'a, Option<String>> {
        let [pool, origin] = super::owned([pool, origin_jti]);
        self.run(move |c| {
            c.query_row(&lite(sql::SID_OF_FAMILY), params![pool, origin], |r| {
                r.get(0)
            })
            .optional()
        })
    }

    fn end_sign_in<'a>(
        &'a self,
        pool: &'a str,
        sid: &'a str,
        now: i64,
    ) -> StoreFuture<'a, Option<SignInRecord>> {
        self.on_sign_in(pool, sid, move |c, pool, sid| end_in(c, pool, sid, now))
    }

    fn end_user_sign_ins<'a>(
        &'a self,
        pool: &'a str,
        sub: &'a str,
        now: i64,
        keep_until: i64,
    ) -> StoreFuture<'a, Vec<SignInRecord>> {
        let [pool, sub] = super::owned([pool, sub]);
        self.run(move |c| {
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
        })
    }

    fn ended_sign_ins<'a>(&'a self, pool: &'a str, now: i64) -> StoreFuture<'a, Vec<EndRecord>> {
        let pool = pool.to_string();
        self.run(move |c| {
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
        })
    }
}
