//! Client secrets, the admin API's documents (app clients, resource servers, identity providers)
//! and signing keys, in PostgreSQL.

use super::connection::{PgStore, pg};
use crate::store::{KeyRecord, Put, StoreError, now, sql};

/// The client's secret, seeded from `make` when absent.
pub(super) async fn client_secret_or_insert(
    s: &PgStore,
    pool: &str,
    client: &str,
    make: String,
) -> Result<String, StoreError> {
    let c = s.client().await?;
    c.execute(sql::CLIENT_SECRET_SEED, &[&pool, &client, &make])
        .await
        .map_err(pg)?;
    let r = c
        .query_one(sql::CLIENT_SECRET, &[&pool, &client])
        .await
        .map_err(pg)?;
    Ok(r.get(0))
}

/// Sets a client's secret.
pub(super) async fn set_client_secret(
    s: &PgStore,
    pool: &str,
    client: &str,
    secret: String,
) -> Result<(), StoreError> {
    s.exec(sql::CLIENT_SECRET_SET, &[&pool, &client, &secret])
        .await?;
    Ok(())
}

/// Writes a document as `mode` says; whether it was written.
pub(super) async fn put_object(
    s: &PgStore,
    pool: &str,
    kind: &str,
    id: &str,
    body: String,
    mode: Put,
) -> Result<bool, StoreError> {
    let n = s
        .exec(sql::object_put(mode), &[&pool, &kind, &id, &body, &now()])
        .await?;
    Ok(n == 1)
}

/// One document.
pub(super) async fn object(
    s: &PgStore,
    pool: &str,
    kind: &str,
    id: &str,
) -> Result<Option<String>, StoreError> {
    let r = s.opt(sql::OBJECT, &[&pool, &kind, &id]).await?;
    Ok(r.map(|r| r.get(0)))
}

/// Every document of a kind, by id.
pub(super) async fn objects(
    s: &PgStore,
    pool: &str,
    kind: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let rows = s.all(sql::OBJECTS, &[&pool, &kind]).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Deletes a document; whether it existed.
pub(super) async fn delete_object(
    s: &PgStore,
    pool: &str,
    kind: &str,
    id: &str,
) -> Result<bool, StoreError> {
    Ok(s.exec(sql::OBJECT_DELETE, &[&pool, &kind, &id]).await? == 1)
}

/// A pool's signing keys for one purpose, oldest first.
pub(super) async fn signing_keys(
    s: &PgStore,
    pool: &str,
    purpose: &str,
) -> Result<Vec<KeyRecord>, StoreError> {
    let rows = s.all(sql::SIGNING_KEYS, &[&pool, &purpose]).await?;
    Ok(rows
        .iter()
        .map(|r| KeyRecord {
            kid: r.get(0),
            pkcs8: r.get(1),
            generation: r.get(2),
            activates_at: r.get(3),
        })
        .collect())
}

/// Adds a signing key unless its generation exists; whether this call added it.
pub(super) async fn insert_signing_key(
    s: &PgStore,
    pool: &str,
    purpose: &str,
    generation: i64,
    kid: String,
    pkcs8: Vec<u8>,
    activates_at: i64,
) -> Result<bool, StoreError> {
    let n = s
        .exec(
            sql::SIGNING_KEY_INSERT,
            &[&kid, &pool, &purpose, &generation, &pkcs8, &activates_at],
        )
        .await?;
    Ok(n == 1)
}
