//! Sign-in sessions in SQLite: one connection under a lock, so every operation is one
//! transaction that no other can interleave with.

use super::{SqliteStore, revoke_family_in};
use crate::store::StoreFuture;
use crate::store::sessions::{EndRecord, SessionStore, SignInRecord};
use rusqlite::{Connection, OptionalExtension, params};

/// What a SQLite store writes as the ending node: it serves one process.
const NODE: &str = "sqlite";

fn clients_of(c: &Connection, pool: &str, sid: &str) -> rusqlite::Result<Vec<String>> {
    let mut st = c.prepare(
        "SELECT DISTINCT client_id FROM sign_in_grants WHERE pool_id = ?1 AND sid = ?2 ORDER BY client_id",
    )?;
    st.query_map(params![pool, sid], |r| r.get(0))?.collect()
}

fn record(
    c: &Connection,
    pool: &str,
    row: (String, String, i64, i64, Option<i64>),
) -> rusqlite::Result<SignInRecord> {
    let (sid, sub, started_at, expires_at, ended_at) = row;
    let clients = clients_of(c, pool, &sid)?;
    Ok(SignInRecord {
        sid,
        sub,
        started_at,
        expires_at,
        ended_at,
        clients,
    })
}

/// Ends one live session inside the caller's transaction: revokes its families, and logs the end
/// when `log` (a user-wide end logs once for all).
fn end_in(
    c: &Connection,
    pool: &str,
    sid: &str,
    now: i64,
    log: bool,
) -> rusqlite::Result<Option<SignInRecord>> {
    let row = c
        .query_row(
            "UPDATE sign_in_sessions SET ended_at = ?3
             WHERE pool_id = ?1 AND sid = ?2 AND ended_at IS NULL AND expires_at > ?3
             RETURNING sid, sub, started_at, expires_at, ended_at",
            params![pool, sid, now],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    let Some(row) = row else { return Ok(None) };
    let families: Vec<String> = c
        .prepare("SELECT origin_jti FROM sign_in_grants WHERE pool_id = ?1 AND sid = ?2")?
        .query_map(params![pool, sid], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for f in &families {
        revoke_family_in(c, pool, f, now)?;
    }
    let rec = record(c, pool, row)?;
    if log {
        log_end(c, pool, Some(sid), &rec.sub, now, rec.expires_at)?;
    }
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

impl SessionStore for SqliteStore {
    fn start_sign_in<'a>(
        &'a self,
        pool: &'a str,
        rec: &'a SignInRecord,
        now: i64,
    ) -> StoreFuture<'a, ()> {
        let (pool, rec) = (pool.to_string(), rec.clone());
        Box::pin(self.run(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "DELETE FROM sign_in_grants WHERE pool_id = ?1 AND sid IN
                 (SELECT sid FROM sign_in_sessions WHERE pool_id = ?1 AND sub = ?2 AND expires_at <= ?3)",
                params![pool, rec.sub, now],
            )?;
            tx.execute(
                "DELETE FROM sign_in_sessions WHERE pool_id = ?1 AND sub = ?2 AND expires_at <= ?3",
                params![pool, rec.sub, now],
            )?;
            tx.execute(
                "INSERT INTO sign_in_sessions (pool_id, sid, sub, started_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![pool, rec.sid, rec.sub, rec.started_at, rec.expires_at],
            )?;
            tx.commit()
        }))
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
        let (pool, sid, client, origin) = (
            pool.to_string(),
            sid.to_string(),
            client.to_string(),
            origin_jti.to_string(),
        );
        Box::pin(self.run(move |c| {
            let tx = c.transaction()?;
            let live = tx.execute(
                "UPDATE sign_in_sessions SET expires_at = MAX(expires_at, ?3)
                 WHERE pool_id = ?1 AND sid = ?2 AND ended_at IS NULL AND expires_at > ?4",
                params![pool, sid, expires_at, now],
            )? == 1;
            if live {
                tx.execute(
                    "INSERT INTO sign_in_grants (pool_id, origin_jti, sid, client_id) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT DO NOTHING",
                    params![pool, origin, sid, client],
                )?;
            }
            tx.commit()?;
            Ok(live)
        }))
    }

    fn sign_in_session<'a>(
        &'a self,
        pool: &'a str,
        sid: &'a str,
        now: i64,
    ) -> StoreFuture<'a, Option<SignInRecord>> {
        let (pool, sid) = (pool.to_string(), sid.to_string());
        Box::pin(self.run(move |c| {
            let row = c
                .query_row(
                    "SELECT sid, sub, started_at, expires_at, ended_at FROM sign_in_sessions
                     WHERE pool_id = ?1 AND sid = ?2 AND expires_at > ?3",
                    params![pool, sid, now],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()?;
            row.map(|row| record(c, &pool, row)).transpose()
        }))
    }

    fn sid_of_family<'a>(
        &'a self,
        pool: &'a str,
        origin_jti: &'a str,
    ) -> StoreFuture<'a, Option<String>> {
        let (pool, origin) = (pool.to_string(), origin_jti.to_string());
        Box::pin(self.run(move |c| {
            c.query_row(
                "SELECT sid FROM sign_in_grants WHERE pool_id = ?1 AND origin_jti = ?2",
                params![pool, origin],
                |r| r.get(0),
            )
            .optional()
        }))
    }

    fn end_sign_in<'a>(
        &'a self,
        pool: &'a str,
        sid: &'a str,
        now: i64,
    ) -> StoreFuture<'a, Option<SignInRecord>> {
        let (pool, sid) = (pool.to_string(), sid.to_string());
        Box::pin(self.run(move |c| {
            let tx = c.transaction()?;
            let out = end_in(&tx, &pool, &sid, now, true)?;
            tx.commit()?;
            Ok(out)
        }))
    }

    fn end_user_sign_ins<'a>(
        &'a self,
        pool: &'a str,
        sub: &'a str,
        now: i64,
        keep_until: i64,
    ) -> StoreFuture<'a, Vec<SignInRecord>> {
        let (pool, sub) = (pool.to_string(), sub.to_string());
        Box::pin(self.run(move |c| {
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
                ended.extend(end_in(&tx, &pool, sid, now, false)?);
            }
            let keep = ended
                .iter()
                .map(|r| r.expires_at)
                .fold(keep_until, i64::max);
            log_end(&tx, &pool, None, &sub, now, keep)?;
            tx.commit()?;
            Ok(ended)
        }))
    }

    fn ended_sign_ins<'a>(&'a self, pool: &'a str, now: i64) -> StoreFuture<'a, Vec<EndRecord>> {
        let pool = pool.to_string();
        Box::pin(self.run(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "DELETE FROM session_ends WHERE pool_id = ?1 AND keep_until <= ?2",
                params![pool, now],
            )?;
            tx.execute(
                "DELETE FROM sign_in_grants WHERE pool_id = ?1 AND sid IN
                 (SELECT sid FROM sign_in_sessions WHERE pool_id = ?1 AND expires_at <= ?2)",
                params![pool, now],
            )?;
            tx.execute(
                "DELETE FROM sign_in_sessions WHERE pool_id = ?1 AND expires_at <= ?2",
                params![pool, now],
            )?;
            let out = tx
                .prepare(
                    "SELECT sid, sub, ended_at FROM session_ends WHERE pool_id = ?1 ORDER BY seq",
                )?
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
        }))
    }
}
