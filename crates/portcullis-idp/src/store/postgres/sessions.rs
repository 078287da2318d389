//! Sign-in sessions in PostgreSQL. Ending a session and recording a grant both update the
//! session's row, so they are serialised by its row lock; an end is logged and `NOTIFY`d in the
//! transaction that makes it (PostgreSQL delivers the notification at commit).

use super::connection::{PgStore, pg};
use crate::domain::revocation::SessionEnded;
use crate::store::sessions::{
    EndRecord, LOGOUT_END_PREFIX, NOTIFY_CHANNEL, SessionRow, SignInRecord,
};
use crate::store::{StoreError, sql};
use deadpool_postgres::GenericClient;
use tokio_postgres::{Row, Transaction};

/// The database's clock in milliseconds: `noted_ms` orders the log for nodes catching up.
const DB_NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

fn session_row(r: &Row) -> SessionRow {
    (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))
}

/// A session with the clients given tokens in it.
async fn record(
    c: &impl GenericClient,
    pool: &str,
    row: SessionRow,
) -> Result<SignInRecord, StoreError> {
    let rows = c
        .query(sql::SIGN_IN_CLIENTS, &[&pool, &row.0])
        .await
        .map_err(pg)?;
    let clients = rows.iter().map(|r| r.get(0)).collect();
    Ok(SignInRecord::from_row(row, clients))
}

/// The session the statement `sql` `($1 pool, $2 sid, $3 now)` returns, with its clients.
async fn session_in(
    c: &impl GenericClient,
    sql: &str,
    pool: &str,
    sid: &str,
    now: i64,
) -> Result<Option<SignInRecord>, StoreError> {
    let row = c.query_opt(sql, &[&pool, &sid, &now]).await.map_err(pg)?;
    match row {
        Some(r) => Ok(Some(record(c, pool, session_row(&r)).await?)),
        None => Ok(None),
    }
}

/// Revokes the token families given in `sid` (the family mark holds for tokens stored later).
async fn revoke_families(
    tx: &Transaction<'_>,
    pool: &str,
    sid: &str,
    now: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO revoked_families (pool_id, origin_jti, revoked_at)
         SELECT pool_id, origin_jti, $3 FROM sign_in_grants WHERE pool_id = $1 AND sid = $2
         ON CONFLICT DO NOTHING",
        &[&pool, &sid, &now],
    )
    .await
    .map_err(pg)?;
    tx.execute(
        "UPDATE refresh_tokens SET revoked = TRUE WHERE pool_id = $1 AND origin_jti IN
         (SELECT origin_jti FROM sign_in_grants WHERE pool_id = $1 AND sid = $2)",
        &[&pool, &sid],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

impl PgStore {
    /// Logs an end and announces it to every node, inside the ending transaction.
    async fn log_end(
        &self,
        tx: &Transaction<'_>,
        pool: &str,
        sid: Option<&str>,
        sub: &str,
        at: i64,
        keep_until: i64,
    ) -> Result<(), StoreError> {
        let noted: i64 = tx
            .query_one(
                &format!(
                    "INSERT INTO session_ends (pool_id, sid, sub, ended_at, keep_until, node, noted_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, {DB_NOW_MS}) RETURNING noted_ms"
                ),
                &[&pool, &sid, &sub, &at, &keep_until, &self.node],
            )
            .await
            .map_err(pg)?
            .get(0);
        let payload = super::listen::Announced {
            pool: pool.to_string(),
            sid: sid.map(str::to_string),
            sub: sub.to_string(),
            at,
            node: self.node.clone(),
            noted_ms: noted,
        }
        .payload();
        tx.execute("SELECT pg_notify($1, $2)", &[&NOTIFY_CHANNEL, &payload])
            .await
            .map_err(pg)?;
        Ok(())
    }
}

/// A session (ended or not) unexpired at `now`.
pub(super) async fn read(
    s: &PgStore,
    pool: &str,
    sid: &str,
    now: i64,
) -> Result<Option<SignInRecord>, StoreError> {
    let c = s.client().await?;
    session_in(&c, sql::SIGN_IN, pool, sid, now).await
}

/// Records a new session (and forgets this user's expired ones).
pub(super) async fn start(
    s: &PgStore,
    pool: &str,
    rec: &SignInRecord,
    now: i64,
) -> Result<(), StoreError> {
    let mut c = s.client().await?;
    let tx = c.transaction().await.map_err(pg)?;
    for sql in [
        sql::EXPIRED_GRANTS_OF_USER_DELETE,
        sql::EXPIRED_SIGN_INS_OF_USER_DELETE,
    ] {
        tx.execute(sql, &[&pool, &rec.sub, &now])
            .await
            .map_err(pg)?;
    }
    tx.execute(
        sql::SIGN_IN_INSERT,
        &[&pool, &rec.sid, &rec.sub, &rec.started_at, &rec.expires_at],
    )
    .await
    .map_err(pg)?;
    tx.commit().await.map_err(pg)
}

/// Records a family given in a live session and extends the session; whether it was live.
pub(super) async fn add_grant(
    s: &PgStore,
    pool: &str,
    sid: &str,
    client: &str,
    origin_jti: &str,
    expires_at: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let mut c = s.client().await?;
    let tx = c.transaction().await.map_err(pg)?;
    // The row lock this takes is held until commit: an end waits for the grant (and
    // then revokes it), or the grant waits for the end (and finds the session ended).
    let live = tx
        .execute(
            "UPDATE sign_in_sessions SET expires_at = GREATEST(expires_at, $3)
             WHERE pool_id = $1 AND sid = $2 AND ended_at IS NULL AND expires_at > $4",
            &[&pool, &sid, &expires_at, &now],
        )
        .await
        .map_err(pg)?
        == 1;
    if live {
        tx.execute(
            sql::SIGN_IN_GRANT_INSERT,
            &[&pool, &origin_jti, &sid, &client],
        )
        .await
        .map_err(pg)?;
    }
    tx.commit().await.map_err(pg)?;
    Ok(live)
}

/// The session a family was given in.
pub(super) async fn sid_of_family(
    s: &PgStore,
    pool: &str,
    origin_jti: &str,
) -> Result<Option<String>, StoreError> {
    Ok(s.opt(sql::SID_OF_FAMILY, &[&pool, &origin_jti])
        .await?
        .map(|r| r.get(0)))
}

/// Ends a live session: marks it, revokes its families, and logs and announces the end.
pub(super) async fn end(
    s: &PgStore,
    pool: &str,
    sid: &str,
    now: i64,
) -> Result<Option<SignInRecord>, StoreError> {
    let mut c = s.client().await?;
    let tx = c.transaction().await.map_err(pg)?;
    let Some(rec) = session_in(&tx, sql::SIGN_IN_END, pool, sid, now).await? else {
        return Ok(None);
    };
    revoke_families(&tx, pool, sid, now).await?;
    s.log_end(&tx, pool, Some(sid), &rec.sub, now, rec.expires_at)
        .await?;
    tx.commit().await.map_err(pg)?;
    Ok(Some(rec))
}

/// Ends every live session of `sub`, and logs one user-wide end kept until `keep_until` (or the
/// latest expiry of the sessions ended).
pub(super) async fn end_user(
    s: &PgStore,
    pool: &str,
    sub: &str,
    now: i64,
    keep_until: i64,
) -> Result<Vec<SignInRecord>, StoreError> {
    let mut c = s.client().await?;
    let tx = c.transaction().await.map_err(pg)?;
    let rows = tx
        .query(sql::SIGN_INS_OF_USER_END, &[&pool, &sub, &now])
        .await
        .map_err(pg)?;
    let mut ended = Vec::new();
    for r in &rows {
        let row = session_row(r);
        revoke_families(&tx, pool, &row.0, now).await?;
        let rec = record(&tx, pool, row).await?;
        s.log_end(&tx, pool, Some(&rec.sid), sub, now, rec.expires_at)
            .await?;
        ended.push(rec);
    }
    let keep = ended
        .iter()
        .map(|r| r.expires_at)
        .fold(keep_until, i64::max);
    s.log_end(
        &tx,
        pool,
        None,
        sub,
        crate::store::sessions::user_wide_at(now),
        keep,
    )
    .await?;
    tx.commit().await.map_err(pg)?;
    Ok(ended)
}

/// The ends logged that are kept at `now`, oldest first (forgetting the others and expired
/// sessions).
pub(super) async fn ended(s: &PgStore, pool: &str, now: i64) -> Result<Vec<EndRecord>, StoreError> {
    let mut c = s.client().await?;
    let tx = c.transaction().await.map_err(pg)?;
    for sql in sql::ENDS_SWEEP {
        tx.execute(sql, &[&pool, &now]).await.map_err(pg)?;
    }
    let rows = tx.query(sql::ENDS, &[&pool]).await.map_err(pg)?;
    tx.commit().await.map_err(pg)?;
    Ok(rows
        .iter()
        .map(|r| EndRecord {
            sid: r.get(0),
            sub: r.get(1),
            at: r.get(2),
        })
        .collect())
}

/// Logs a logout-token end (under the issuer's prefix) and announces it.
pub(super) async fn log_logout_end(
    s: &PgStore,
    end: &SessionEnded,
    keep_until: i64,
) -> Result<(), StoreError> {
    let mut c = s.client().await?;
    let tx = c.transaction().await.map_err(pg)?;
    let pool = format!("{LOGOUT_END_PREFIX}{}", end.issuer);
    s.log_end(&tx, &pool, end.sid.as_deref(), &end.sub, end.at, keep_until)
        .await?;
    tx.commit().await.map_err(pg)
}

/// The logout-token ends kept at `now`.
pub(super) async fn logout_ends(s: &PgStore, now: i64) -> Result<Vec<SessionEnded>, StoreError> {
    let c = s.client().await?;
    c.execute(
        "DELETE FROM session_ends WHERE starts_with(pool_id, $1) AND keep_until <= $2",
        &[&LOGOUT_END_PREFIX, &now],
    )
    .await
    .map_err(pg)?;
    let rows = c
        .query(
            "SELECT pool_id, sid, sub, ended_at FROM session_ends
             WHERE starts_with(pool_id, $1) AND keep_until > $2 ORDER BY seq",
            &[&LOGOUT_END_PREFIX, &now],
        )
        .await
        .map_err(pg)?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let pool: String = r.get(0);
            Some(SessionEnded {
                issuer: pool.strip_prefix(LOGOUT_END_PREFIX)?.to_string(),
                sid: r.get(1),
                sub: r.get(2),
                at: r.get(3),
            })
        })
        .collect())
}
