//! Users in SQLite.

use super::connection::lite;
use crate::store::{UserRecord, now, sql};
use rusqlite::{Connection, OptionalExtension, Row, params};

/// A user from a row of [`sql::user_columns`].
fn user_from_row(r: &Row<'_>) -> rusqlite::Result<UserRecord> {
    let attrs: String = r.get(5)?;
    Ok(UserRecord {
        sub: r.get(0)?,
        username: r.get(1)?,
        password_hash: r.get(2)?,
        status: r.get(3)?,
        enabled: r.get(4)?,
        attributes: serde_json::from_str(&attrs).unwrap_or_default(),
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
    })
}

/// Creates a user unless the name is taken; whether it was created.
pub(super) fn insert(c: &Connection, pool: String, u: UserRecord) -> rusqlite::Result<bool> {
    let attrs = serde_json::Value::Object(u.attributes).to_string();
    let n = c.execute(
        &lite(sql::USER_INSERT),
        params![
            u.sub,
            pool,
            u.username,
            u.password_hash,
            u.status,
            u.enabled,
            attrs,
            now()
        ],
    )?;
    Ok(n == 1)
}

/// Replaces a user's password hash and status; whether the user exists.
pub(super) fn set_password(
    c: &Connection,
    pool: String,
    username: String,
    hash: String,
    status: String,
) -> rusqlite::Result<bool> {
    let n = c.execute(
        &lite(sql::USER_SET_PASSWORD),
        params![hash, status, now(), pool, username],
    )?;
    Ok(n == 1)
}

/// A user by name.
pub(super) fn by_username(
    c: &Connection,
    pool: String,
    username: String,
) -> rusqlite::Result<Option<UserRecord>> {
    c.query_row(
        &lite(sql::USER_BY_USERNAME),
        params![pool, username],
        user_from_row,
    )
    .optional()
}

/// A user by `sub`.
pub(super) fn by_sub(
    c: &Connection,
    pool: String,
    sub: String,
) -> rusqlite::Result<Option<UserRecord>> {
    c.query_row(&lite(sql::USER_BY_SUB), params![pool, sub], user_from_row)
        .optional()
}

/// Rewrites a user (by `sub`); whether the user exists.
pub(super) fn save(c: &Connection, pool: String, u: UserRecord) -> rusqlite::Result<bool> {
    let attrs = serde_json::Value::Object(u.attributes).to_string();
    let n = c.execute(
        &lite(sql::USER_SAVE),
        params![
            u.password_hash,
            u.status,
            u.enabled,
            attrs,
            now(),
            pool,
            u.sub
        ],
    )?;
    Ok(n == 1)
}

/// Deletes a user with their memberships, sessions and refresh tokens; whether they existed.
pub(super) fn delete(c: &mut Connection, pool: String, sub: String) -> rusqlite::Result<bool> {
    let tx = c.transaction()?;
    for first in sql::USER_DELETE_FIRST {
        tx.execute(&lite(first), params![pool, sub])?;
    }
    let n = tx.execute(&lite(sql::USER_DELETE), params![pool, sub])?;
    tx.commit()?;
    Ok(n == 1)
}

/// Users by name after `after`, at most `limit`.
pub(super) fn list(
    c: &Connection,
    pool: String,
    after: Option<String>,
    limit: i64,
) -> rusqlite::Result<Vec<UserRecord>> {
    let mut st = c.prepare(concat!(
        "SELECT ",
        sql::user_columns!(),
        " FROM users
         WHERE pool_id = ?1 AND username > ?2 ORDER BY username LIMIT ?3"
    ))?;
    st.query_map(
        params![pool, after.unwrap_or_default(), limit],
        user_from_row,
    )?
    .collect()
}

/// Ends a user's hosted-UI sessions and revokes their refresh tokens; how many tokens.
pub(super) fn revoke_tokens(c: &Connection, pool: String, sub: String) -> rusqlite::Result<u64> {
    c.execute(
        &lite(sql::HOSTED_SESSIONS_OF_USER_DELETE),
        params![pool, sub],
    )?;
    Ok(c.execute(&lite(sql::USER_TOKENS_REVOKE), params![pool, sub])? as u64)
}

/// How many users a pool has.
pub(super) fn count(c: &Connection, pool: String) -> rusqlite::Result<i64> {
    c.query_row(&lite(sql::USER_COUNT), params![pool], |r| r.get(0))
}
