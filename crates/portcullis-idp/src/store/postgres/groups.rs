//! Groups and their members in PostgreSQL.

use super::connection::{PgStore, pg};
use crate::store::{GroupRecord, StoreError, sql};

/// Creates or updates a group.
pub(super) async fn upsert(
    s: &PgStore,
    pool: &str,
    name: &str,
    precedence: Option<i64>,
    description: Option<&str>,
) -> Result<(), StoreError> {
    s.exec(
        sql::GROUP_UPSERT,
        &[&pool, &name, &precedence, &description],
    )
    .await?;
    Ok(())
}

/// Adds a member (idempotent).
pub(super) async fn add_member(
    s: &PgStore,
    pool: &str,
    group: &str,
    sub: &str,
) -> Result<(), StoreError> {
    s.exec(sql::GROUP_MEMBER_ADD, &[&pool, &group, &sub])
        .await?;
    Ok(())
}

/// A user's groups, by precedence then name.
pub(super) async fn of_user(s: &PgStore, pool: &str, sub: &str) -> Result<Vec<String>, StoreError> {
    let rows = s.all(sql::GROUPS_OF, &[&pool, &sub]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Every group, by name (byte order, as SQLite sorts).
pub(super) async fn all(s: &PgStore, pool: &str) -> Result<Vec<GroupRecord>, StoreError> {
    let rows = s
        .all(
            "SELECT name, precedence, description FROM user_groups WHERE pool_id = $1 ORDER BY name COLLATE \"C\"",
            &[&pool],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| GroupRecord {
            name: r.get(0),
            precedence: r.get(1),
            description: r.get(2),
        })
        .collect())
}

/// Creates a group unless it exists; whether it was created.
pub(super) async fn insert(s: &PgStore, pool: &str, g: GroupRecord) -> Result<bool, StoreError> {
    let n = s
        .exec(
            sql::GROUP_INSERT,
            &[&pool, &g.name, &g.precedence, &g.description],
        )
        .await?;
    Ok(n == 1)
}

/// Deletes a group and its memberships; whether it existed.
pub(super) async fn delete(s: &PgStore, pool: &str, name: &str) -> Result<bool, StoreError> {
    let mut c = s.client().await?;
    let tx = c.transaction().await.map_err(pg)?;
    tx.execute(sql::GROUP_MEMBERS_DELETE, &[&pool, &name])
        .await
        .map_err(pg)?;
    let n = tx
        .execute(sql::GROUP_DELETE, &[&pool, &name])
        .await
        .map_err(pg)?;
    tx.commit().await.map_err(pg)?;
    Ok(n == 1)
}

/// Removes a member (idempotent).
pub(super) async fn remove_member(
    s: &PgStore,
    pool: &str,
    group: &str,
    sub: &str,
) -> Result<(), StoreError> {
    s.exec(sql::GROUP_MEMBER_REMOVE, &[&pool, &group, &sub])
        .await?;
    Ok(())
}

/// A group's members.
pub(super) async fn members(
    s: &PgStore,
    pool: &str,
    group: &str,
) -> Result<Vec<String>, StoreError> {
    let rows = s.all(sql::GROUP_MEMBERS, &[&pool, &group]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
