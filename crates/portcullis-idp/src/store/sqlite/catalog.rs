//! Client secrets, the admin API's documents (app clients, resource servers, identity providers)
//! and signing keys, in SQLite.

use super::connection::lite;
use crate::store::{KeyRecord, Put, now, sql};
use rusqlite::{Connection, OptionalExtension, params};

/// The client's secret, seeded from `make` when absent.
pub(super) fn client_secret_or_insert(
    c: &Connection,
    pool: String,
    client: String,
    make: String,
) -> rusqlite::Result<String> {
    c.execute(&lite(sql::CLIENT_SECRET_SEED), params![pool, client, make])?;
    c.query_row(&lite(sql::CLIENT_SECRET), params![pool, client], |r| {
        r.get(0)
    })
}

/// Sets a client's secret.
pub(super) fn set_client_secret(
    c: &Connection,
    pool: String,
    client: String,
    secret: String,
) -> rusqlite::Result<()> {
    c.execute(&lite(sql::CLIENT_SECRET_SET), params![pool, client, secret])
        .map(|_| ())
}

/// Writes a document as `mode` says; whether it was written.
pub(super) fn put_object(
    c: &Connection,
    pool: String,
    kind: String,
    id: String,
    body: String,
    mode: Put,
) -> rusqlite::Result<bool> {
    let sql = lite(sql::object_put(mode));
    Ok(c.execute(&sql, params![pool, kind, id, body, now()])? == 1)
}

/// One document.
pub(super) fn object(
    c: &Connection,
    pool: String,
    kind: String,
    id: String,
) -> rusqlite::Result<Option<String>> {
    c.query_row(&lite(sql::OBJECT), params![pool, kind, id], |r| r.get(0))
        .optional()
}

/// Every document of a kind, by id.
pub(super) fn objects(
    c: &Connection,
    pool: String,
    kind: String,
) -> rusqlite::Result<Vec<(String, String)>> {
    let mut st = c.prepare(&lite(sql::OBJECTS))?;
    st.query_map(params![pool, kind], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// Deletes a document; whether it existed.
pub(super) fn delete_object(
    c: &Connection,
    pool: String,
    kind: String,
    id: String,
) -> rusqlite::Result<bool> {
    Ok(c.execute(&lite(sql::OBJECT_DELETE), params![pool, kind, id])? == 1)
}

/// A pool's signing keys for one purpose, oldest first.
pub(super) fn signing_keys(
    c: &Connection,
    pool: String,
    purpose: String,
) -> rusqlite::Result<Vec<KeyRecord>> {
    let mut st = c.prepare(&lite(sql::SIGNING_KEYS))?;
    let rows = st.query_map(params![pool, purpose], |r| {
        Ok(KeyRecord {
            kid: r.get(0)?,
            pkcs8: r.get(1)?,
            generation: r.get(2)?,
            activates_at: r.get(3)?,
        })
    })?;
    rows.collect()
}

/// Adds a signing key unless its generation exists; whether this call added it.
pub(super) fn insert_signing_key(
    c: &Connection,
    pool: String,
    purpose: String,
    generation: i64,
    kid: String,
    pkcs8: Vec<u8>,
    activates_at: i64,
) -> rusqlite::Result<bool> {
    let n = c.execute(
        &lite(sql::SIGNING_KEY_INSERT),
        params![kid, pool, purpose, generation, pkcs8, activates_at],
    )?;
    Ok(n == 1)
}
