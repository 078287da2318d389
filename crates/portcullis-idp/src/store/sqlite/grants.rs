//! Authorization codes, refresh tokens and their families, and hosted-UI sessions in SQLite.

use super::connection::lite;
use crate::store::{CodeRecord, RefreshRecord, RefreshUse, now, sql};
use rusqlite::{Connection, OptionalExtension, Row, params};

/// A grant from a row of [`sql::refresh_columns`].
fn refresh_from_row(r: &Row<'_>) -> rusqlite::Result<RefreshRecord> {
    Ok(RefreshRecord {
        client_id: r.get(0)?,
        sub: r.get(1)?,
        scope: r.get(2)?,
        auth_time: r.get(3)?,
        origin_jti: r.get(4)?,
    })
}

/// Revokes a family inside the caller's transaction.
pub(super) fn revoke_family_in(
    c: &Connection,
    pool: &str,
    origin: &str,
    now: i64,
) -> rusqlite::Result<()> {
    c.execute(&lite(sql::FAMILY_MARK), params![pool, origin, now])?;
    c.execute(&lite(sql::FAMILY_TOKENS_REVOKE), params![pool, origin])?;
    Ok(())
}

/// Stores a new code (by hash).
pub(super) fn insert_code(
    c: &Connection,
    pool: String,
    code_hash: String,
    rec: CodeRecord,
    expires_at: i64,
) -> rusqlite::Result<()> {
    c.execute(
        &lite(sql::CODE_INSERT),
        params![
            code_hash,
            pool,
            rec.client_id,
            rec.sub,
            rec.redirect_uri,
            rec.scope,
            rec.nonce,
            rec.code_challenge,
            rec.auth_time,
            expires_at
        ],
    )
    .map(|_| ())
}

/// Spends a live code for the family `origin` and returns it.
pub(super) fn take_code(
    c: &Connection,
    pool: String,
    code_hash: String,
    origin: String,
) -> rusqlite::Result<Option<CodeRecord>> {
    c.query_row(
        &lite(sql::CODE_TAKE),
        params![code_hash, pool, now(), origin],
        |r| {
            Ok(CodeRecord {
                client_id: r.get(0)?,
                sub: r.get(1)?,
                redirect_uri: r.get(2)?,
                scope: r.get(3)?,
                nonce: r.get(4)?,
                code_challenge: r.get(5)?,
                auth_time: r.get(6)?,
            })
        },
    )
    .optional()
}

/// The family a code redeemed before started.
pub(super) fn spent_code_family(
    c: &Connection,
    pool: String,
    code_hash: String,
) -> rusqlite::Result<Option<String>> {
    c.query_row(&lite(sql::CODE_FAMILY), params![code_hash, pool], |r| {
        r.get::<_, Option<String>>(0)
    })
    .optional()
    .map(Option::flatten)
}

/// Stores a refresh token (by hash).
pub(super) fn insert_refresh(
    c: &Connection,
    pool: String,
    token_hash: String,
    rec: RefreshRecord,
    expires_at: i64,
) -> rusqlite::Result<()> {
    c.execute(
        &lite(sql::REFRESH_INSERT),
        params![
            token_hash,
            pool,
            rec.client_id,
            rec.sub,
            rec.scope,
            rec.auth_time,
            rec.origin_jti,
            expires_at
        ],
    )
    .map(|_| ())
}

/// A live refresh token's grant.
pub(super) fn refresh(
    c: &Connection,
    pool: String,
    token_hash: String,
) -> rusqlite::Result<Option<RefreshRecord>> {
    c.query_row(
        &lite(sql::REFRESH),
        params![token_hash, pool, now()],
        refresh_from_row,
    )
    .optional()
}

/// Presents a refresh token: finds it, rotates it or detects its reuse, in one transaction.
pub(super) fn use_refresh(
    c: &mut Connection,
    pool: String,
    token_hash: String,
    client: String,
    at: i64,
    retire_until: Option<i64>,
) -> rusqlite::Result<RefreshUse> {
    let tx = c.transaction()?;
    let found = tx
        .query_row(
            &lite(sql::REFRESH_OF_CLIENT),
            params![token_hash, pool, client, at],
            |r| Ok((refresh_from_row(r)?, r.get::<_, Option<i64>>(5)?)),
        )
        .optional()?;
    let out = match found {
        None => RefreshUse::Invalid,
        Some((rec, Some(until))) if until <= at => {
            revoke_family_in(&tx, &pool, &rec.origin_jti, at)?;
            RefreshUse::Reused
        }
        Some((rec, Some(_))) => RefreshUse::Live(rec),
        Some((rec, None)) => {
            if let Some(until) = retire_until {
                tx.execute(
                    "UPDATE refresh_tokens SET retired_until = ?3 WHERE token_hash = ?1 AND pool_id = ?2",
                    params![token_hash, pool, until],
                )?;
            }
            RefreshUse::Live(rec)
        }
    };
    tx.commit()?;
    Ok(out)
}

/// Revokes a client's refresh token; its family when it existed.
pub(super) fn revoke_refresh(
    c: &Connection,
    pool: String,
    token_hash: String,
    client: String,
) -> rusqlite::Result<Option<String>> {
    c.query_row(
        &lite(sql::REFRESH_REVOKE),
        params![token_hash, pool, client],
        |r| r.get(0),
    )
    .optional()
}

/// Whether a family was revoked.
pub(super) fn origin_revoked(
    c: &Connection,
    pool: String,
    origin: String,
) -> rusqlite::Result<bool> {
    c.query_row(&lite(sql::FAMILY_IS_REVOKED), params![pool, origin], |r| {
        r.get(0)
    })
}

/// Stores a hosted-UI session (and forgets expired ones).
pub(super) fn insert_session(
    c: &Connection,
    pool: String,
    id_hash: String,
    sub: String,
    auth_time: i64,
    expires_at: i64,
) -> rusqlite::Result<()> {
    c.execute(&lite(sql::HOSTED_SESSIONS_SWEEP), params![now()])?;
    c.execute(
        &lite(sql::HOSTED_SESSION_INSERT),
        params![id_hash, pool, sub, auth_time, expires_at],
    )
    .map(|_| ())
}

/// A live hosted-UI session: `(sub, auth_time)`.
pub(super) fn session(
    c: &Connection,
    pool: String,
    id_hash: String,
) -> rusqlite::Result<Option<(String, i64)>> {
    c.query_row(
        &lite(sql::HOSTED_SESSION),
        params![id_hash, pool, now()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// Ends a hosted-UI session.
pub(super) fn delete_session(
    c: &Connection,
    pool: String,
    id_hash: String,
) -> rusqlite::Result<()> {
    c.execute(&lite(sql::HOSTED_SESSION_DELETE), params![id_hash, pool])
        .map(|_| ())
}
