//! The PostgreSQL store: several IdP nodes on one database act as one pool. Every race between
//! nodes is settled by one statement (`UPDATE … RETURNING`, `INSERT … ON CONFLICT`).

use super::{
    CodeRecord, GroupRecord, KeyRecord, Put, RefreshRecord, RefreshUse, Reservation, StoreError,
    StoreFuture, UserRecord, now,
};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

mod listen;
mod sessions;

pub use listen::ListenerState;

/// Migrations in order; `portcullis_schema` records how many have run.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE client_secrets (
  pool_id TEXT NOT NULL, client_id TEXT NOT NULL, secret TEXT NOT NULL,
  PRIMARY KEY (pool_id, client_id));
CREATE TABLE users (
  sub TEXT PRIMARY KEY, pool_id TEXT NOT NULL, username TEXT NOT NULL, password_hash TEXT NOT NULL,
  status TEXT NOT NULL, enabled BOOLEAN NOT NULL, attributes TEXT NOT NULL,
  created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
  UNIQUE (pool_id, username));
CREATE TABLE auth_codes (
  code_hash TEXT PRIMARY KEY, pool_id TEXT NOT NULL, client_id TEXT NOT NULL, sub TEXT NOT NULL,
  redirect_uri TEXT NOT NULL, scope TEXT NOT NULL, nonce TEXT, code_challenge TEXT,
  auth_time BIGINT NOT NULL, expires_at BIGINT NOT NULL, used BOOLEAN NOT NULL DEFAULT FALSE);
CREATE TABLE refresh_tokens (
  token_hash TEXT PRIMARY KEY, pool_id TEXT NOT NULL, client_id TEXT NOT NULL, sub TEXT NOT NULL,
  scope TEXT NOT NULL, auth_time BIGINT NOT NULL, origin_jti TEXT NOT NULL,
  expires_at BIGINT NOT NULL, revoked BOOLEAN NOT NULL DEFAULT FALSE);
CREATE INDEX refresh_tokens_origin ON refresh_tokens (pool_id, origin_jti);
CREATE TABLE signing_keys (
  kid TEXT PRIMARY KEY, pool_id TEXT NOT NULL, purpose TEXT NOT NULL, generation BIGINT NOT NULL,
  pkcs8 BYTEA NOT NULL, created_at BIGINT NOT NULL,
  UNIQUE (pool_id, purpose, generation));
"#,
    r#"
CREATE TABLE sessions (
  id_hash TEXT PRIMARY KEY, pool_id TEXT NOT NULL, sub TEXT NOT NULL,
  auth_time BIGINT NOT NULL, expires_at BIGINT NOT NULL);
"#,
    r#"
CREATE TABLE sign_in_failures (
  pool_id TEXT NOT NULL, username TEXT NOT NULL, failures BIGINT NOT NULL,
  last_failure BIGINT NOT NULL, locked_until BIGINT NOT NULL,
  PRIMARY KEY (pool_id, username));
"#,
    r#"
CREATE TABLE user_groups (
  pool_id TEXT NOT NULL, name TEXT NOT NULL, precedence BIGINT, description TEXT,
  PRIMARY KEY (pool_id, name));
CREATE TABLE group_members (
  pool_id TEXT NOT NULL, group_name TEXT NOT NULL, sub TEXT NOT NULL,
  PRIMARY KEY (pool_id, group_name, sub));
CREATE INDEX group_members_sub ON group_members (pool_id, sub);
"#,
    super::OBJECTS_AND_TICKETS,
    super::REUSE_DETECTION,
    r#"
ALTER TABLE sign_in_failures ADD COLUMN busy_until BIGINT NOT NULL DEFAULT 0;
CREATE TABLE rate_buckets (
  pool_id TEXT NOT NULL, key TEXT NOT NULL, tat BIGINT NOT NULL,
  PRIMARY KEY (pool_id, key));
"#,
    super::sessions::sign_in_sessions_migration!("BIGSERIAL PRIMARY KEY"),
];

/// True when the family of the `refresh_tokens` row `t` was revoked (any of its tokens, or the
/// family itself).
const FAMILY_REVOKED: &str = "(EXISTS (SELECT 1 FROM refresh_tokens f WHERE f.pool_id = t.pool_id AND f.origin_jti = t.origin_jti AND f.revoked)
  OR EXISTS (SELECT 1 FROM revoked_families r WHERE r.pool_id = t.pool_id AND r.origin_jti = t.origin_jti))";

fn refresh_from_row(r: &Row) -> RefreshRecord {
    RefreshRecord {
        client_id: r.get(0),
        sub: r.get(1),
        scope: r.get(2),
        auth_time: r.get(3),
        origin_jti: r.get(4),
    }
}

/// A pool of connections to one PostgreSQL database.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// Where the dedicated `LISTEN` connection for ended sessions connects.
    config: tokio_postgres::Config,
    /// This store's id in the session-end log and notifications (random per process).
    node: String,
    /// Publishes other nodes' session ends on this process's feeds.
    listener: std::sync::Arc<listen::Listener>,
}

fn pg(e: impl std::fmt::Display) -> StoreError {
    StoreError::Postgres(e.to_string())
}

fn user_from_row(r: &tokio_postgres::Row) -> UserRecord {
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

impl PgStore {
    /// Connects (a pool of up to 16 connections) and runs pending migrations under an advisory
    /// lock, so nodes starting together migrate once.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let cfg: tokio_postgres::Config = url.parse().map_err(|e| pg(format!("store URL: {e}")))?;
        let mgr = Manager::from_config(
            cfg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(mgr).max_size(16).build().map_err(pg)?;
        let store = PgStore {
            pool,
            config: url.parse().map_err(|e| pg(format!("store URL: {e}")))?,
            node: crate::domain::secrets::random_token(9)
                .map_err(|_| pg("the system random source failed"))?,
            listener: Default::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut c = self.pool.get().await.map_err(pg)?;
        let tx = c.transaction().await.map_err(pg)?;
        tx.execute("SELECT pg_advisory_xact_lock(7201999)", &[])
            .await
            .map_err(pg)?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS portcullis_schema (version BIGINT NOT NULL)")
            .await
            .map_err(pg)?;
        let done: i64 = tx
            .query_opt("SELECT version FROM portcullis_schema", &[])
            .await
            .map_err(pg)?
            .map_or(0, |r| r.get(0));
        for m in MIGRATIONS.iter().skip(done as usize) {
            tx.batch_execute(m).await.map_err(pg)?;
        }
        let version = MIGRATIONS.len() as i64;
        if done == 0 {
            tx.execute(
                "INSERT INTO portcullis_schema (version) VALUES ($1)",
                &[&version],
            )
            .await
            .map_err(pg)?;
        } else {
            tx.execute("UPDATE portcullis_schema SET version = $1", &[&version])
                .await
                .map_err(pg)?;
        }
        tx.commit().await.map_err(pg)
    }

    /// This process's node id in the session-end log.
    pub fn node_id(&self) -> &str {
        &self.node
    }

    /// The state of the `LISTEN` connection for other nodes' session ends.
    pub fn session_listener(&self) -> ListenerState {
        self.listener.state()
    }

    /// While `hold`, a lost `LISTEN` connection is not re-established (tests end sessions while a
    /// node is deaf, then let it catch up).
    pub fn hold_session_listener(&self, hold: bool) {
        self.listener.hold(hold);
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pg)
    }

    /// Runs one statement on a pooled connection; returns the rows it changed.
    async fn exec(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        self.client().await?.execute(sql, params).await.map_err(pg)
    }

    /// Runs one query that returns at most one row.
    async fn opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        self.client()
            .await?
            .query_opt(sql, params)
            .await
            .map_err(pg)
    }

    /// Runs one query that returns exactly one row.
    async fn one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, StoreError> {
        self.client()
            .await?
            .query_one(sql, params)
            .await
            .map_err(pg)
    }

    /// Revokes a token family: the family's mark first (it holds even for tokens stored later),
    /// then its tokens.
    async fn revoke_family_at(&self, pool: &str, origin: &str, at: i64) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        tx.execute(
            "INSERT INTO revoked_families (pool_id, origin_jti, revoked_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[&pool, &origin, &at],
        )
        .await
        .map_err(pg)?;
        tx.execute(
            "UPDATE refresh_tokens SET revoked = TRUE WHERE pool_id = $1 AND origin_jti = $2",
            &[&pool, &origin],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)
    }

    /// Runs one query.
    async fn all(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StoreError> {
        self.client().await?.query(sql, params).await.map_err(pg)
    }
}

impl super::Store for PgStore {
    fn put_object<'a>(
        &'a self,
        pool: &'a str,
        kind: &'a str,
        id: &'a str,
        body: String,
        mode: Put,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let sql = match mode {
                Put::Insert => "INSERT INTO pool_objects (pool_id, kind, id, body, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT DO NOTHING",
                Put::Upsert => "INSERT INTO pool_objects (pool_id, kind, id, body, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)
                                ON CONFLICT (pool_id, kind, id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
                Put::Update => "UPDATE pool_objects SET body = $4, updated_at = $5 WHERE pool_id = $1 AND kind = $2 AND id = $3",
            };
            Ok(self.exec(sql, &[&pool, &kind, &id, &body, &now()]).await? == 1)
        })
    }
    fn object<'a>(
        &'a self,
        pool: &'a str,
        kind: &'a str,
        id: &'a str,
    ) -> StoreFuture<'a, Option<String>> {
        Box::pin(async move {
            let r = self
                .opt(
                    "SELECT body FROM pool_objects WHERE pool_id = $1 AND kind = $2 AND id = $3",
                    &[&pool, &kind, &id],
                )
                .await?;
            Ok(r.map(|r| r.get(0)))
        })
    }
    fn objects<'a>(
        &'a self,
        pool: &'a str,
        kind: &'a str,
    ) -> StoreFuture<'a, Vec<(String, String)>> {
        Box::pin(async move {
            let rows = self
                .all(
                    "SELECT id, body FROM pool_objects WHERE pool_id = $1 AND kind = $2 ORDER BY id",
                    &[&pool, &kind],
                )
                .await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }
    fn delete_object<'a>(
        &'a self,
        pool: &'a str,
        kind: &'a str,
        id: &'a str,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            Ok(self
                .exec(
                    "DELETE FROM pool_objects WHERE pool_id = $1 AND kind = $2 AND id = $3",
                    &[&pool, &kind, &id],
                )
                .await?
                == 1)
        })
    }
    fn save_user<'a>(&'a self, pool: &'a str, u: UserRecord) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let attrs = serde_json::Value::Object(u.attributes).to_string();
            Ok(self
                .exec(
                    "UPDATE users SET password_hash = $1, status = $2, enabled = $3, attributes = $4, updated_at = $5
                     WHERE pool_id = $6 AND sub = $7",
                    &[&u.password_hash, &u.status, &u.enabled, &attrs, &now(), &pool, &u.sub],
                )
                .await?
                == 1)
        })
    }
    fn delete_user<'a>(&'a self, pool: &'a str, sub: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(pg)?;
            for sql in [
                "DELETE FROM group_members WHERE pool_id = $1 AND sub = $2",
                "DELETE FROM sessions WHERE pool_id = $1 AND sub = $2",
                "UPDATE refresh_tokens SET revoked = TRUE WHERE pool_id = $1 AND sub = $2",
            ] {
                tx.execute(sql, &[&pool, &sub]).await.map_err(pg)?;
            }
            let n = tx
                .execute(
                    "DELETE FROM users WHERE pool_id = $1 AND sub = $2",
                    &[&pool, &sub],
                )
                .await
                .map_err(pg)?;
            tx.commit().await.map_err(pg)?;
            Ok(n == 1)
        })
    }
    fn list_users<'a>(
        &'a self,
        pool: &'a str,
        after: Option<String>,
        limit: i64,
    ) -> StoreFuture<'a, Vec<UserRecord>> {
        Box::pin(async move {
            let after = after.unwrap_or_default();
            let rows = self
                .all(
                    "SELECT sub, username, password_hash, status, enabled, attributes, created_at, updated_at FROM users
                     WHERE pool_id = $1 AND username COLLATE \"C\" > $2 ORDER BY username COLLATE \"C\" LIMIT $3",
                    &[&pool, &after, &limit],
                )
                .await?;
            Ok(rows.iter().map(user_from_row).collect())
        })
    }
    fn revoke_user_tokens<'a>(&'a self, pool: &'a str, sub: &'a str) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            self.exec(
                "DELETE FROM sessions WHERE pool_id = $1 AND sub = $2",
                &[&pool, &sub],
            )
            .await?;
            self.exec(
                "UPDATE refresh_tokens SET revoked = TRUE WHERE pool_id = $1 AND sub = $2 AND NOT revoked",
                &[&pool, &sub],
            )
            .await
        })
    }
    fn groups<'a>(&'a self, pool: &'a str) -> StoreFuture<'a, Vec<GroupRecord>> {
        Box::pin(async move {
            let rows = self
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
        })
    }
    fn insert_group<'a>(&'a self, pool: &'a str, g: GroupRecord) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            Ok(self
                .exec(
                    "INSERT INTO user_groups (pool_id, name, precedence, description) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    &[&pool, &g.name, &g.precedence, &g.description],
                )
                .await?
                == 1)
        })
    }
    fn delete_group<'a>(&'a self, pool: &'a str, name: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut c = self.client().await?;
            let tx = c.transaction().await.map_err(pg)?;
            tx.execute(
                "DELETE FROM group_members WHERE pool_id = $1 AND group_name = $2",
                &[&pool, &name],
            )
            .await
            .map_err(pg)?;
            let n = tx
                .execute(
                    "DELETE FROM user_groups WHERE pool_id = $1 AND name = $2",
                    &[&pool, &name],
                )
                .await
                .map_err(pg)?;
            tx.commit().await.map_err(pg)?;
            Ok(n == 1)
        })
    }
    fn remove_from_group<'a>(
        &'a self,
        pool: &'a str,
        group: &'a str,
        sub: &'a str,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.exec(
                "DELETE FROM group_members WHERE pool_id = $1 AND group_name = $2 AND sub = $3",
                &[&pool, &group, &sub],
            )
            .await?;
            Ok(())
        })
    }
    fn group_members<'a>(&'a self, pool: &'a str, group: &'a str) -> StoreFuture<'a, Vec<String>> {
        Box::pin(async move {
            let rows = self
                .all(
                    "SELECT sub FROM group_members WHERE pool_id = $1 AND group_name = $2 ORDER BY sub",
                    &[&pool, &group],
                )
                .await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }
    fn put_ticket<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        key: &'a str,
        value: String,
        expires_at: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            // Expired tickets (codes, decoys, spent budgets) go, so the table stays bounded.
            self.exec("DELETE FROM tickets WHERE expires_at <= $1", &[&now()])
                .await?;
            self.exec(
                "INSERT INTO tickets (pool_id, purpose, key, value, expires_at, attempts) VALUES ($1, $2, $3, $4, $5, 0)
                 ON CONFLICT (pool_id, purpose, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, attempts = 0",
                &[&pool, &purpose, &key, &value, &expires_at],
            )
            .await?;
            Ok(())
        })
    }
    fn ticket<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        key: &'a str,
    ) -> StoreFuture<'a, Option<(String, i64)>> {
        Box::pin(async move {
            let r = self
                .opt(
                    "SELECT value, attempts FROM tickets WHERE pool_id = $1 AND purpose = $2 AND key = $3 AND expires_at > $4",
                    &[&pool, &purpose, &key, &now()],
                )
                .await?;
            Ok(r.map(|r| (r.get(0), r.get(1))))
        })
    }
    fn spend_ticket_attempt<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        key: &'a str,
        max: i64,
    ) -> StoreFuture<'a, Option<(String, i64)>> {
        Box::pin(async move {
            let r = self
                .opt(
                    "UPDATE tickets SET attempts = attempts + 1
                     WHERE pool_id = $1 AND purpose = $2 AND key = $3 AND expires_at > $4 AND attempts < $5
                     RETURNING value, attempts",
                    &[&pool, &purpose, &key, &now(), &max],
                )
                .await?;
            Ok(r.map(|r| (r.get(0), r.get(1))))
        })
    }
    fn reserve_attempt<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        key: &'a str,
        max: i64,
        window: i64,
        now: i64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let r = self
                .opt(
                    "INSERT INTO tickets (pool_id, purpose, key, value, expires_at, attempts) VALUES ($1, $2, $3, '', $4::bigint + $5::bigint, 1)
                     ON CONFLICT (pool_id, purpose, key) DO UPDATE SET
                       attempts = CASE WHEN tickets.expires_at <= $4 THEN 1 ELSE tickets.attempts + 1 END,
                       expires_at = CASE WHEN tickets.expires_at <= $4 THEN $4::bigint + $5::bigint ELSE tickets.expires_at END
                     WHERE tickets.expires_at <= $4::bigint OR tickets.attempts < $6::bigint
                     RETURNING attempts",
                    &[&pool, &purpose, &key, &now, &window, &max],
                )
                .await?;
            Ok(r.is_some())
        })
    }
    fn advance_ticket<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        key: &'a str,
        value: i64,
        expires_at: i64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let value = value.to_string();
            let r = self
                .opt(
                    "INSERT INTO tickets (pool_id, purpose, key, value, expires_at, attempts) VALUES ($1, $2, $3, $4, $5, 0)
                     ON CONFLICT (pool_id, purpose, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
                     WHERE tickets.value::bigint < excluded.value::bigint
                     RETURNING value",
                    &[&pool, &purpose, &key, &value, &expires_at],
                )
                .await?;
            Ok(r.is_some())
        })
    }
    fn take_ticket<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        key: &'a str,
    ) -> StoreFuture<'a, Option<String>> {
        Box::pin(async move {
            let r = self
                .opt(
                    "DELETE FROM tickets WHERE pool_id = $1 AND purpose = $2 AND key = $3 AND expires_at > $4 RETURNING value",
                    &[&pool, &purpose, &key, &now()],
                )
                .await?;
            Ok(r.map(|r| r.get(0)))
        })
    }
    fn upsert_group<'a>(
        &'a self,
        pool: &'a str,
        name: &'a str,
        precedence: Option<i64>,
        description: Option<&'a str>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.exec(
                    "INSERT INTO user_groups (pool_id, name, precedence, description) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (pool_id, name) DO UPDATE SET precedence = excluded.precedence, description = excluded.description",
                    &[&pool, &name, &precedence, &description],
                ).await?;
            Ok(())
        })
    }

    fn add_to_group<'a>(
        &'a self,
        pool: &'a str,
        group: &'a str,
        sub: &'a str,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.exec(
                    "INSERT INTO group_members (pool_id, group_name, sub) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    &[&pool, &group, &sub],
                ).await?;
            Ok(())
        })
    }

    fn groups_of<'a>(&'a self, pool: &'a str, sub: &'a str) -> StoreFuture<'a, Vec<String>> {
        Box::pin(async move {
            let rows = self.all(
                    "SELECT g.name FROM group_members m JOIN user_groups g ON g.pool_id = m.pool_id AND g.name = m.group_name
                     WHERE m.pool_id = $1 AND m.sub = $2 ORDER BY g.precedence IS NULL, g.precedence, g.name",
                    &[&pool, &sub],
                ).await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn reserve_sign_in<'a>(
        &'a self,
        pool: &'a str,
        username: &'a str,
        now: i64,
        reset_after: i64,
        max_lock: i64,
        lease: i64,
    ) -> StoreFuture<'a, Reservation> {
        Box::pin(async move {
            let granted = self.opt(
                    "INSERT INTO sign_in_failures AS f (pool_id, username, failures, last_failure, locked_until, busy_until)
                     VALUES ($1, $2, 1, $3::BIGINT, 0, $3::BIGINT + $6::BIGINT)
                     ON CONFLICT (pool_id, username) DO UPDATE SET
                       failures = CASE WHEN $3 - f.last_failure > $4::BIGINT THEN 1 ELSE f.failures + 1 END,
                       locked_until = CASE
                         WHEN $3 - f.last_failure > $4 OR f.failures + 1 < 5 THEN 0
                         ELSE $3 + LEAST($5::BIGINT, (1::BIGINT << LEAST(f.failures + 1 - 5, 20)::INT)) END,
                       last_failure = $3,
                       busy_until = $3 + $6
                     WHERE f.locked_until <= $3 AND f.busy_until <= $3
                     RETURNING failures",
                    &[&pool, &username, &now, &reset_after, &max_lock, &lease],
                ).await?;
            if granted.is_some() {
                return Ok(Reservation::Granted);
            }
            let locked = self.locked_until(pool, username).await? > now;
            Ok(if locked {
                Reservation::Locked
            } else {
                Reservation::Busy
            })
        })
    }

    fn release_sign_in<'a>(&'a self, pool: &'a str, username: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.exec(
                "UPDATE sign_in_failures SET busy_until = 0 WHERE pool_id = $1 AND username = $2",
                &[&pool, &username],
            )
            .await?;
            Ok(())
        })
    }

    fn take_token<'a>(
        &'a self,
        pool: &'a str,
        key: &'a str,
        now_ms: i64,
        interval_ms: i64,
        burst: i64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let r = self
                .opt(
                    "INSERT INTO rate_buckets AS b (pool_id, key, tat) VALUES ($1, $2, $3::BIGINT + $4::BIGINT)
                     ON CONFLICT (pool_id, key) DO UPDATE SET tat = GREATEST(b.tat, $3) + $4
                     WHERE GREATEST(b.tat, $3) + $4 - $3 <= $5::BIGINT * $4
                     RETURNING tat",
                    &[&pool, &key, &now_ms, &interval_ms, &burst],
                )
                .await?;
            Ok(r.is_some())
        })
    }

    fn bucket_tat<'a>(&'a self, pool: &'a str, key: &'a str) -> StoreFuture<'a, Option<i64>> {
        Box::pin(async move {
            let r = self
                .opt(
                    "SELECT tat FROM rate_buckets WHERE pool_id = $1 AND key = $2",
                    &[&pool, &key],
                )
                .await?;
            Ok(r.map(|r| r.get(0)))
        })
    }

    fn sweep_limits<'a>(
        &'a self,
        pool: &'a str,
        now_ms: i64,
        reset_after: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let now = now_ms / 1000;
            self.exec(
                "DELETE FROM rate_buckets WHERE pool_id = $1 AND tat < $2",
                &[&pool, &now_ms],
            )
            .await?;
            self.exec(
                "DELETE FROM sign_in_failures WHERE pool_id = $1 AND last_failure < $2::BIGINT - $3::BIGINT
                 AND locked_until <= $2 AND busy_until <= $2",
                &[&pool, &now, &reset_after],
            )
            .await?;
            Ok(())
        })
    }

    fn count_users<'a>(&'a self, pool: &'a str) -> StoreFuture<'a, i64> {
        Box::pin(async move {
            let r = self
                .one("SELECT COUNT(*) FROM users WHERE pool_id = $1", &[&pool])
                .await?;
            Ok(r.get(0))
        })
    }

    fn locked_until<'a>(&'a self, pool: &'a str, username: &'a str) -> StoreFuture<'a, i64> {
        Box::pin(async move {
            let r = self.opt("SELECT locked_until FROM sign_in_failures WHERE pool_id = $1 AND username = $2", &[&pool, &username]).await?;
            Ok(r.map_or(0, |r| r.get(0)))
        })
    }

    fn clear_failures<'a>(&'a self, pool: &'a str, username: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.exec(
                "DELETE FROM sign_in_failures WHERE pool_id = $1 AND username = $2",
                &[&pool, &username],
            )
            .await?;
            Ok(())
        })
    }

    fn insert_session<'a>(
        &'a self,
        pool: &'a str,
        id_hash: String,
        sub: &'a str,
        auth_time: i64,
        expires_at: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let c = self.client().await?;
            c.execute("DELETE FROM sessions WHERE expires_at <= $1", &[&now()])
                .await
                .map_err(pg)?;
            c.execute(
                "INSERT INTO sessions (id_hash, pool_id, sub, auth_time, expires_at) VALUES ($1, $2, $3, $4, $5)",
                &[&id_hash, &pool, &sub, &auth_time, &expires_at],
            )
            .await
            .map_err(pg)?;
            Ok(())
        })
    }

    fn session<'a>(
        &'a self,
        pool: &'a str,
        id_hash: String,
    ) -> StoreFuture<'a, Option<(String, i64)>> {
        Box::pin(async move {
            let r = self.opt(
                    "SELECT sub, auth_time FROM sessions WHERE id_hash = $1 AND pool_id = $2 AND expires_at > $3",
                    &[&id_hash, &pool, &now()],
                ).await?;
            Ok(r.map(|r| (r.get(0), r.get(1))))
        })
    }

    fn delete_session<'a>(&'a self, pool: &'a str, id_hash: String) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.exec(
                "DELETE FROM sessions WHERE id_hash = $1 AND pool_id = $2",
                &[&id_hash, &pool],
            )
            .await?;
            Ok(())
        })
    }

    fn client_secret_or_insert<'a>(
        &'a self,
        pool: &'a str,
        client: &'a str,
        make: String,
    ) -> StoreFuture<'a, String> {
        Box::pin(async move {
            let c = self.client().await?;
            c.execute(
                "INSERT INTO client_secrets (pool_id, client_id, secret) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&pool, &client, &make],
            )
            .await
            .map_err(pg)?;
            let r = c
                .query_one(
                    "SELECT secret FROM client_secrets WHERE pool_id = $1 AND client_id = $2",
                    &[&pool, &client],
                )
                .await
                .map_err(pg)?;
            Ok(r.get(0))
        })
    }

    fn set_client_secret<'a>(
        &'a self,
        pool: &'a str,
        client: &'a str,
        secret: String,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.exec(
                "INSERT INTO client_secrets (pool_id, client_id, secret) VALUES ($1, $2, $3)
                     ON CONFLICT (pool_id, client_id) DO UPDATE SET secret = excluded.secret",
                &[&pool, &client, &secret],
            )
            .await?;
            Ok(())
        })
    }

    fn insert_user<'a>(&'a self, pool: &'a str, u: UserRecord) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let attrs = serde_json::Value::Object(u.attributes).to_string();
            let n = self.exec(
                    "INSERT INTO users (sub, pool_id, username, password_hash, status, enabled, attributes, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT DO NOTHING",
                    &[&u.sub, &pool, &u.username, &u.password_hash, &u.status, &u.enabled, &attrs, &now()],
                ).await?;
            Ok(n == 1)
        })
    }

    fn set_password<'a>(
        &'a self,
        pool: &'a str,
        username: &'a str,
        hash: String,
        status: &'a str,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let n = self.exec(
                    "UPDATE users SET password_hash = $1, status = $2, updated_at = $3 WHERE pool_id = $4 AND username = $5",
                    &[&hash, &status, &now(), &pool, &username],
                ).await?;
            Ok(n == 1)
        })
    }

    fn user_by_username<'a>(
        &'a self,
        pool: &'a str,
        username: &'a str,
    ) -> StoreFuture<'a, Option<UserRecord>> {
        Box::pin(async move {
            let r = self.opt(
                    "SELECT sub, username, password_hash, status, enabled, attributes, created_at, updated_at FROM users WHERE pool_id = $1 AND username = $2",
                    &[&pool, &username],
                ).await?;
            Ok(r.as_ref().map(user_from_row))
        })
    }

    fn user_by_sub<'a>(
        &'a self,
        pool: &'a str,
        sub: &'a str,
    ) -> StoreFuture<'a, Option<UserRecord>> {
        Box::pin(async move {
            let r = self.opt(
                    "SELECT sub, username, password_hash, status, enabled, attributes, created_at, updated_at FROM users WHERE pool_id = $1 AND sub = $2",
                    &[&pool, &sub],
                ).await?;
            Ok(r.as_ref().map(user_from_row))
        })
    }

    fn insert_code<'a>(
        &'a self,
        pool: &'a str,
        code_hash: String,
        rec: CodeRecord,
        expires_at: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.exec(
                    "INSERT INTO auth_codes (code_hash, pool_id, client_id, sub, redirect_uri, scope, nonce, code_challenge, auth_time, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    &[&code_hash, &pool, &rec.client_id, &rec.sub, &rec.redirect_uri, &rec.scope, &rec.nonce, &rec.code_challenge, &rec.auth_time, &expires_at],
                ).await?;
            Ok(())
        })
    }

    fn take_code<'a>(
        &'a self,
        pool: &'a str,
        code_hash: String,
        origin_jti: &'a str,
    ) -> StoreFuture<'a, Option<CodeRecord>> {
        Box::pin(async move {
            let r = self.opt(
                    "UPDATE auth_codes SET used = TRUE, origin_jti = $4
                     WHERE code_hash = $1 AND pool_id = $2 AND NOT used AND expires_at > $3
                     RETURNING client_id, sub, redirect_uri, scope, nonce, code_challenge, auth_time",
                    &[&code_hash, &pool, &now(), &origin_jti],
                ).await?;
            Ok(r.map(|r| CodeRecord {
                client_id: r.get(0),
                sub: r.get(1),
                redirect_uri: r.get(2),
                scope: r.get(3),
                nonce: r.get(4),
                code_challenge: r.get(5),
                auth_time: r.get(6),
            }))
        })
    }

    fn spent_code_family<'a>(
        &'a self,
        pool: &'a str,
        code_hash: String,
    ) -> StoreFuture<'a, Option<String>> {
        Box::pin(async move {
            let r = self
                .opt(
                    "SELECT origin_jti FROM auth_codes WHERE code_hash = $1 AND pool_id = $2 AND used",
                    &[&code_hash, &pool],
                )
                .await?;
            Ok(r.and_then(|r| r.get::<_, Option<String>>(0)))
        })
    }

    fn insert_refresh<'a>(
        &'a self,
        pool: &'a str,
        token_hash: String,
        rec: RefreshRecord,
        expires_at: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.exec(
                    "INSERT INTO refresh_tokens (token_hash, pool_id, client_id, sub, scope, auth_time, origin_jti, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[&token_hash, &pool, &rec.client_id, &rec.sub, &rec.scope, &rec.auth_time, &rec.origin_jti, &expires_at],
                ).await?;
            Ok(())
        })
    }

    fn refresh<'a>(
        &'a self,
        pool: &'a str,
        token_hash: String,
    ) -> StoreFuture<'a, Option<RefreshRecord>> {
        Box::pin(async move {
            let r = self
                .opt(
                    &format!(
                        "SELECT client_id, sub, scope, auth_time, origin_jti FROM refresh_tokens t
                         WHERE token_hash = $1 AND pool_id = $2 AND NOT revoked AND expires_at > $3
                         AND NOT {FAMILY_REVOKED}"
                    ),
                    &[&token_hash, &pool, &now()],
                )
                .await?;
            Ok(r.as_ref().map(refresh_from_row))
        })
    }

    fn use_refresh<'a>(
        &'a self,
        pool: &'a str,
        token_hash: String,
        client: &'a str,
        at: i64,
        retire_until: Option<i64>,
    ) -> StoreFuture<'a, RefreshUse> {
        Box::pin(async move {
            // Rotation: one conditional UPDATE retires the token, so of concurrent presentations
            // (on any node) exactly one finds it unretired.
            if let Some(until) = retire_until {
                let claimed = self
                    .opt(
                        &format!(
                            "UPDATE refresh_tokens t SET retired_until = $5
                             WHERE token_hash = $1 AND pool_id = $2 AND client_id = $3 AND NOT revoked
                             AND expires_at > $4 AND retired_until IS NULL AND NOT {FAMILY_REVOKED}
                             RETURNING client_id, sub, scope, auth_time, origin_jti"
                        ),
                        &[&token_hash, &pool, &client, &at, &until],
                    )
                    .await?;
                if let Some(r) = claimed {
                    return Ok(RefreshUse::Live(refresh_from_row(&r)));
                }
            }
            let found = self
                .opt(
                    &format!(
                        "SELECT client_id, sub, scope, auth_time, origin_jti, retired_until FROM refresh_tokens t
                         WHERE token_hash = $1 AND pool_id = $2 AND client_id = $3 AND NOT revoked
                         AND expires_at > $4 AND NOT {FAMILY_REVOKED}"
                    ),
                    &[&token_hash, &pool, &client, &at],
                )
                .await?;
            let Some(r) = found else {
                return Ok(RefreshUse::Invalid);
            };
            let rec = refresh_from_row(&r);
            match r.get::<_, Option<i64>>(5) {
                Some(until) if until <= at => {
                    self.revoke_family_at(pool, &rec.origin_jti, at).await?;
                    Ok(RefreshUse::Reused)
                }
                _ => Ok(RefreshUse::Live(rec)),
            }
        })
    }

    fn revoke_family<'a>(&'a self, pool: &'a str, origin_jti: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(self.revoke_family_at(pool, origin_jti, now()))
    }

    fn revoke_refresh<'a>(
        &'a self,
        pool: &'a str,
        token_hash: String,
        client: &'a str,
    ) -> StoreFuture<'a, Option<String>> {
        Box::pin(async move {
            let r = self.opt(
                    "UPDATE refresh_tokens SET revoked = TRUE WHERE token_hash = $1 AND pool_id = $2 AND client_id = $3 RETURNING origin_jti",
                    &[&token_hash, &pool, &client],
                ).await?;
            Ok(r.map(|r| r.get(0)))
        })
    }

    fn origin_revoked<'a>(&'a self, pool: &'a str, origin_jti: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let r = self.one(
                    "SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE pool_id = $1 AND origin_jti = $2 AND revoked)
                         OR EXISTS (SELECT 1 FROM revoked_families WHERE pool_id = $1 AND origin_jti = $2)",
                    &[&pool, &origin_jti],
                ).await?;
            Ok(r.get(0))
        })
    }

    fn signing_keys<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
    ) -> StoreFuture<'a, Vec<KeyRecord>> {
        Box::pin(async move {
            let rows = self.all(
                    "SELECT kid, pkcs8, generation, created_at FROM signing_keys WHERE pool_id = $1 AND purpose = $2 ORDER BY generation",
                    &[&pool, &purpose],
                ).await?;
            Ok(rows
                .iter()
                .map(|r| KeyRecord {
                    kid: r.get(0),
                    pkcs8: r.get(1),
                    generation: r.get(2),
                    activates_at: r.get(3),
                })
                .collect())
        })
    }

    fn insert_signing_key<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        generation: i64,
        kid: String,
        pkcs8: Vec<u8>,
        activates_at: i64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let n = self.exec(
                    "INSERT INTO signing_keys (kid, pool_id, purpose, generation, pkcs8, created_at) VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT DO NOTHING",
                    &[&kid, &pool, &purpose, &generation, &pkcs8, &activates_at],
                ).await?;
            Ok(n == 1)
        })
    }
}
