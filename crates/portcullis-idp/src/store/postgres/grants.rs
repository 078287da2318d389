//! Authorization codes, refresh tokens and their families, and hosted-UI sessions in PostgreSQL.

use super::connection::{PgStore, pg};
use crate::store::{CodeRecord, RefreshRecord, RefreshUse, StoreError, now, sql};
use tokio_postgres::Row;

/// A grant from a row of [`sql::refresh_columns`].
fn refresh_from_row(r: &Row) -> RefreshRecord {
    RefreshRecord {
        client_id: r.get(0),
        sub: r.get(1),
        scope: r.get(2),
        auth_time: r.get(3),
        origin_jti: r.get(4),
    }
}

/// Stores a new code (by hash).
pub(super) async fn insert_code(
    s: &PgStore,
    pool: &str,
    code_hash: String,
    rec: CodeRecord,
    expires_at: i64,
) -> Result<(), StoreError> {
    s.exec(
        sql::CODE_INSERT,
        &[
            &code_hash,
            &pool,
            &rec.client_id,
            &rec.sub,
            &rec.redirect_uri,
            &rec.scope,
            &rec.nonce,
            &rec.code_challenge,
            &rec.auth_time,
            &expires_at,
        ],
    )
    .await?;
    Ok(())
}

/// Spends a live code for the family `origin_jti` and returns it.
pub(super) async fn take_code(
    s: &PgStore,
    pool: &str,
    code_hash: String,
    origin_jti: &str,
) -> Result<Option<CodeRecord>, StoreError> {
    let r = s
        .opt(sql::CODE_TAKE, &[&code_hash, &pool, &now(), &origin_jti])
        .await?;
    Ok(r.map(|r| CodeRecord {
        client_id: r.get(0),
        sub: r.get(1),
        redirect_uri: r.get(2),
        scope: r.get(3),
        nonce: r.get(4),
        code_challenge: r.get(5),
        auth_time: r.get(6),
    }))
}

/// The family a code redeemed before started.
pub(super) async fn spent_code_family(
    s: &PgStore,
    pool: &str,
    code_hash: String,
) -> Result<Option<String>, StoreError> {
    let r = s.opt(sql::CODE_FAMILY, &[&code_hash, &pool]).await?;
    Ok(r.and_then(|r| r.get::<_, Option<String>>(0)))
}

/// Stores a refresh token (by hash).
pub(super) async fn insert_refresh(
    s: &PgStore,
    pool: &str,
    token_hash: String,
    rec: RefreshRecord,
    expires_at: i64,
) -> Result<(), StoreError> {
    s.exec(
        sql::REFRESH_INSERT,
        &[
            &token_hash,
            &pool,
            &rec.client_id,
            &rec.sub,
            &rec.scope,
            &rec.auth_time,
            &rec.origin_jti,
            &expires_at,
        ],
    )
    .await?;
    Ok(())
}

/// A live refresh token's grant.
pub(super) async fn refresh(
    s: &PgStore,
    pool: &str,
    token_hash: String,
) -> Result<Option<RefreshRecord>, StoreError> {
    let r = s.opt(sql::REFRESH, &[&token_hash, &pool, &now()]).await?;
    Ok(r.as_ref().map(refresh_from_row))
}

/// Presents a refresh token: rotation is one conditional `UPDATE` that retires it, so of
/// concurrent presentations (on any node) exactly one finds it unretired.
pub(super) async fn use_refresh(
    s: &PgStore,
    pool: &str,
    token_hash: String,
    client: &str,
    at: i64,
    retire_until: Option<i64>,
) -> Result<RefreshUse, StoreError> {
    if let Some(until) = retire_until {
        let claimed = s
            .opt(
                concat!(
                    "UPDATE refresh_tokens t SET retired_until = $5
                     WHERE token_hash = $1 AND pool_id = $2 AND client_id = $3 AND NOT revoked
                     AND expires_at > $4 AND retired_until IS NULL AND NOT ",
                    sql::family_revoked!(),
                    "
                     RETURNING ",
                    sql::refresh_columns!()
                ),
                &[&token_hash, &pool, &client, &at, &until],
            )
            .await?;
        if let Some(r) = claimed {
            return Ok(RefreshUse::Live(refresh_from_row(&r)));
        }
    }
    let found = s
        .opt(sql::REFRESH_OF_CLIENT, &[&token_hash, &pool, &client, &at])
        .await?;
    let Some(r) = found else {
        return Ok(RefreshUse::Invalid);
    };
    let rec = refresh_from_row(&r);
    match r.get::<_, Option<i64>>(5) {
        Some(until) if until <= at => {
            revoke_family(s, pool, &rec.origin_jti, at).await?;
            Ok(RefreshUse::Reused)
        }
        _ => Ok(RefreshUse::Live(rec)),
    }
}

/// Revokes a token family: the family's mark first (it holds even for tokens stored later),
/// then its tokens.
pub(super) async fn revoke_family(
    s: &PgStore,
    pool: &str,
    origin: &str,
    at: i64,
) -> Result<(), StoreError> {
    let mut c = s.client().await?;
    let tx = c.transaction().await.map_err(pg)?;
    tx.execute(sql::FAMILY_MARK, &[&pool, &origin, &at])
        .await
        .map_err(pg)?;
    tx.execute(sql::FAMILY_TOKENS_REVOKE, &[&pool, &origin])
        .await
        .map_err(pg)?;
    tx.commit().await.map_err(pg)
}

/// Revokes a client's refresh token; its family when it existed.
pub(super) async fn revoke_refresh(
    s: &PgStore,
    pool: &str,
    token_hash: String,
    client: &str,
) -> Result<Option<String>, StoreError> {
    let r = s
        .opt(sql::REFRESH_REVOKE, &[&token_hash, &pool, &client])
        .await?;
    Ok(r.map(|r| r.get(0)))
}

/// Whether a family was revoked.
pub(super) async fn origin_revoked(
    s: &PgStore,
    pool: &str,
    origin_jti: &str,
) -> Result<bool, StoreError> {
    Ok(s.one(sql::FAMILY_IS_REVOKED, &[&pool, &origin_jti])
        .await?
        .get(0))
}

/// Stores a hosted-UI session (and forgets expired ones).
pub(super) async fn insert_session(
    s: &PgStore,
    pool: &str,
    id_hash: String,
    sub: &str,
    auth_time: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    let c = s.client().await?;
    c.execute(sql::HOSTED_SESSIONS_SWEEP, &[&now()])
        .await
        .map_err(pg)?;
    c.execute(
        sql::HOSTED_SESSION_INSERT,
        &[&id_hash, &pool, &sub, &auth_time, &expires_at],
    )
    .await
    .map_err(pg)?;
    Ok(())
}

/// A live hosted-UI session: `(sub, auth_time)`.
pub(super) async fn session(
    s: &PgStore,
    pool: &str,
    id_hash: String,
) -> Result<Option<(String, i64)>, StoreError> {
    let r = s
        .opt(sql::HOSTED_SESSION, &[&id_hash, &pool, &now()])
        .await?;
    Ok(r.map(|r| (r.get(0), r.get(1))))
}

/// Ends a hosted-UI session.
pub(super) async fn delete_session(
    s: &PgStore,
    pool: &str,
    id_hash: String,
) -> Result<(), StoreError> {
    s.exec(sql::HOSTED_SESSION_DELETE, &[&id_hash, &pool])
        .await?;
    Ok(())
}
