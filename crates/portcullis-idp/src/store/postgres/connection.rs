//! The PostgreSQL store's connections: the pool, migrations under an advisory lock, and the
//! one-statement helpers the domain modules beside this one run their statements with.

use super::listen::{Listener, ListenerState};
use crate::store::StoreError;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

/// Migrations in order; `portcullis_schema` records how many have run.
const MIGRATIONS: [&str; 8] = crate::store::schema::migrations!(
    int: "BIGINT",
    flag: "BOOLEAN",
    no: "FALSE",
    bytes: "BYTEA",
    buckets: "
CREATE TABLE rate_buckets (
  pool_id TEXT NOT NULL, key TEXT NOT NULL, tat BIGINT NOT NULL,
  PRIMARY KEY (pool_id, key));
",
    serial: "BIGSERIAL PRIMARY KEY",
);

/// A pool of connections to one PostgreSQL database.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// Where the dedicated `LISTEN` connection for ended sessions connects.
    pub(super) config: tokio_postgres::Config,
    /// This store's id in the session-end log and notifications (random per process).
    pub(super) node: String,
    /// Publishes other nodes' session ends on this process's feeds.
    pub(super) listener: std::sync::Arc<Listener>,
}

/// A PostgreSQL or pool failure as a [`StoreError`], keeping its message.
pub(super) fn pg(e: impl std::fmt::Display) -> StoreError {
    StoreError::Postgres(e.to_string())
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

    pub(super) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pg)
    }

    /// Runs one statement on a pooled connection; returns the rows it changed.
    pub(super) async fn exec(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        self.client().await?.execute(sql, params).await.map_err(pg)
    }

    /// Runs one query that returns at most one row.
    pub(super) async fn opt(
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
    pub(super) async fn one(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, StoreError> {
        self.client()
            .await?
            .query_one(sql, params)
            .await
            .map_err(pg)
    }

    /// Runs one query.
    pub(super) async fn all(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        self.client().await?.query(sql, params).await.map_err(pg)
    }
}
