//! The SQLite store's connection: opening and migrating the file, and running a call on the
//! blocking pool. The domain modules beside this one run their statements through it.

use crate::store::{StoreError, StoreFuture};
use rusqlite::Connection;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The SQLite store shared by every pool of a process.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// Rate-limit buckets `(pool, key) → theoretical arrival time (ms)`. A SQLite store serves one
    /// process, so they live in memory: no disk write (and fsync) per request; a restart refills
    /// them.
    pub(super) buckets: Arc<Mutex<HashMap<(String, String), i64>>>,
}

/// Migrations in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: [&str; 8] = crate::store::schema::migrations!(
    int: "INTEGER",
    flag: "INTEGER",
    no: "0",
    bytes: "BLOB",
    buckets: "",
    serial: "INTEGER PRIMARY KEY AUTOINCREMENT",
);

/// A statement of [`crate::store::sql`] in SQLite's spelling: `?1` for `$1`.
pub(super) fn lite(sql: &str) -> String {
    sql.replace('$', "?")
}

/// Owned copies of borrowed arguments, for a call that runs on the blocking pool.
pub(super) fn owned<const N: usize>(args: [&str; N]) -> [String; N] {
    args.map(str::to_string)
}

impl SqliteStore {
    /// Opens (creating and migrating) `<dir>/idp.sqlite3`. The file holds signing keys and
    /// secrets: it is created `0600` before SQLite opens it (SQLite gives its `-wal` and `-shm`
    /// files the database file's mode), and any of the three left wider by an older version is
    /// narrowed.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        use portcullis_config::state_dir;
        state_dir::create_dir_all(dir)?;
        let db = dir.join("idp.sqlite3");
        state_dir::ensure_file(&db)?;
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut side = db.clone().into_os_string();
            side.push(suffix);
            state_dir::restrict_path(Path::new(&side))?;
        }
        let conn = Connection::open(&db)?;
        Self::init(conn)
    }

    /// An in-memory store (unit tests).
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<SqliteStore, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let done: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, m) in MIGRATIONS.iter().enumerate().skip(done as usize) {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(m)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            buckets: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// Runs `f` on the connection, on the blocking pool.
    pub(super) fn run<R, F>(&self, f: F) -> StoreFuture<'static, R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let conn = self.conn.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
                f(&mut guard).map_err(StoreError::from)
            })
            .await
            .map_err(|_| StoreError::Join)?
        })
    }
}
