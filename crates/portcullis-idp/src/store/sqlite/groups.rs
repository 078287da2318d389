//! Groups and their members in SQLite.

use super::connection::{SqliteStore, lite, owned};
use crate::store::{GroupRecord, StoreFuture, sql};
use rusqlite::{Connection, params};

impl SqliteStore {
    /// Adds `sub` to `group` (`add`) or removes them, idempotently: a membership is one row.
    pub(super) fn set_member(
        &self,
        pool: &str,
        group: &str,
        sub: &str,
        add: bool,
    ) -> StoreFuture<'static, ()> {
        let [pool, group, sub] = owned([pool, group, sub]);
        let sql = match add {
            true => sql::GROUP_MEMBER_ADD,
            false => sql::GROUP_MEMBER_REMOVE,
        };
        self.run(move |c| c.execute(&lite(sql), params![pool, group, sub]).map(|_| ()))
    }
}

/// Creates or updates a group.
pub(super) fn upsert(
    c: &Connection,
    pool: String,
    name: String,
    precedence: Option<i64>,
    description: Option<String>,
) -> rusqlite::Result<()> {
    c.execute(
        &lite(sql::GROUP_UPSERT),
        params![pool, name, precedence, description],
    )
    .map(|_| ())
}

/// A user's groups, by precedence then name.
pub(super) fn of_user(c: &Connection, pool: String, sub: String) -> rusqlite::Result<Vec<String>> {
    let mut st = c.prepare(&lite(sql::GROUPS_OF))?;
    st.query_map(params![pool, sub], |r| r.get(0))?.collect()
}

/// Every group, by name.
pub(super) fn all(c: &Connection, pool: String) -> rusqlite::Result<Vec<GroupRecord>> {
    let mut st = c.prepare(
        "SELECT name, precedence, description FROM user_groups WHERE pool_id = ?1 ORDER BY name",
    )?;
    st.query_map(params![pool], |r| {
        Ok(GroupRecord {
            name: r.get(0)?,
            precedence: r.get(1)?,
            description: r.get(2)?,
        })
    })?
    .collect()
}

/// Creates a group unless it exists; whether it was created.
pub(super) fn insert(c: &Connection, pool: String, g: GroupRecord) -> rusqlite::Result<bool> {
    let n = c.execute(
        &lite(sql::GROUP_INSERT),
        params![pool, g.name, g.precedence, g.description],
    )?;
    Ok(n == 1)
}

/// Deletes a group and its memberships; whether it existed.
pub(super) fn delete(c: &mut Connection, pool: String, name: String) -> rusqlite::Result<bool> {
    let tx = c.transaction()?;
    tx.execute(&lite(sql::GROUP_MEMBERS_DELETE), params![pool, name])?;
    let n = tx.execute(&lite(sql::GROUP_DELETE), params![pool, name])?;
    tx.commit()?;
    Ok(n == 1)
}

/// A group's members.
pub(super) fn members(
    c: &Connection,
    pool: String,
    group: String,
) -> rusqlite::Result<Vec<String>> {
    let mut st = c.prepare(&lite(sql::GROUP_MEMBERS))?;
    st.query_map(params![pool, group], |r| r.get(0))?.collect()
}
