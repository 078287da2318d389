//! Users in PostgreSQL.

use super::connection::{PgStore, pg};
use crate::store::{StoreError, UserRecord, now, sql};
use tokio_postgres::Row;

/// A user from a row of [`sql::user_columns`].
fn user_from_row(r: &Row) -> UserRecord {
    let attrs: String = r.get(5);
    UserRecord {
        sub: r.get(0),
        username: r.get(1),
        password_hash: r.get(2),
        status: r.get(3),
        enabled: r.get(4),
        attributes: serde_json::from_str(&attrs).unwrap_or_default(),
        created_at: r.get(6),
        updated_at: r.get(7),
    }
}

/// Creates a user unless the name is taken; whether it was created.
pub(super) async fn insert(s: &PgStore, pool: &str, u: UserRecord) -> Result<bool, StoreError> {
    let attrs = serde_json::Value::Object(u.attributes).to_string();
    let n = s
        .exec(
            sql::USER_INSERT,
            &[
                &u.sub,
                &pool,
                &u.username,
                &u.password_hash,
                &u.status,
                &u.enabled,
                &attrs,
                &now(),
            ],
        )
        .await?;
    Ok(n == 1)
}

/// Replaces a user's password hash and status; whether the user exists.
pub(super) async fn set_password(
    s: &PgStore,
    pool: &str,
    username: &str,
    hash: String,
    status: &str,
) -> Result<bool, StoreError> {
    let n = s
        .exec(
            sql::USER_SET_PASSWORD,
            &[&hash, &status, &now(), &pool, &username],
        )
        .await?;
    Ok(n == 1)
}

/// A user by name.
pub(super) async fn by_username(
    s: &PgStore,
    pool: &str,
    username: &str,
) -> Result<Option<UserRecord>, StoreError> {
    let r = s.opt(sql::USER_BY_USERNAME, &[&pool, &username]).await?;
    Ok(r.as_ref().map(user_from_row))
}

/// A user by `sub`.
pub(super) async fn by_sub(
    s: &PgStore,
    pool: &str,
    sub: &str,
) -> Result<Option<UserRecord>, StoreError> {
    let r = s.opt(sql::USER_BY_SUB, &[&pool, &sub]).await?;
    Ok(r.as_ref().map(user_from_row))
}

/// Rewrites a user (by `sub`); whether the user exists.
pub(super) async fn save(s: &PgStore, pool: &str, u: UserRecord) -> Result<bool, StoreError> {
    let attrs = serde_json::Value::Object(u.attributes).to_string();
    let n = s
        .exec(
            sql::USER_SAVE,
            &[
                &u.password_hash,
                &u.status,
                &u.enabled,
                &attrs,
                &now(),
                &pool,
                &u.sub,
            ],
        )
        .await?;
    Ok(n == 1)
}

/// Deletes a user with their memberships, sessions and refresh tokens; whether they existed.
pub(super) async fn delete(s: &PgStore, pool: &str, sub: &str) -> Result<bool, StoreError> {
    let mut c = s.client().await?;
    let tx = c.transaction().await.map_err(pg)?;
    for first in sql::USER_DELETE_FIRST {
        tx.execute(first, &[&pool, &sub]).await.map_err(pg)?;
    }
    let n = tx
        .execute(sql::USER_DELETE, &[&pool, &sub])
        .await
        .map_err(pg)?;
    tx.commit().await.map_err(pg)?;
    Ok(n == 1)
}

/// Users by name (byte order, as SQLite sorts) after `after`, at most `limit`.
pub(super) async fn list(
    s: &PgStore,
    pool: &str,
    after: Option<String>,
    limit: i64,
) -> Result<Vec<UserRecord>, StoreError> {
    let after = after.unwrap_or_default();
    let rows = s
        .all(
            concat!(
                "SELECT ",
                sql::user_columns!(),
                " FROM users
                 WHERE pool_id = $1 AND username COLLATE \"C\" > $2 ORDER BY username COLLATE \"C\" LIMIT $3"
            ),
            &[&pool, &after, &limit],
        )
        .await?;
    Ok(rows.iter().map(user_from_row).collect())
}

/// Ends a user's hosted-UI sessions and revokes their refresh tokens; how many tokens.
pub(super) async fn revoke_tokens(s: &PgStore, pool: &str, sub: &str) -> Result<u64, StoreError> {
    s.exec(sql::HOSTED_SESSIONS_OF_USER_DELETE, &[&pool, &sub])
        .await?;
    s.exec(sql::USER_TOKENS_REVOKE, &[&pool, &sub]).await
}

/// How many users a pool has.
pub(super) async fn count(s: &PgStore, pool: &str) -> Result<i64, StoreError> {
    Ok(s.one(sql::USER_COUNT, &[&pool]).await?.get(0))
}
