//! The SQLite store (the default): one file in the state dir, WAL, `synchronous=FULL`. Every call
//! runs on the blocking pool.

use super::{
    CodeRecord, GroupRecord, KeyRecord, Put, RefreshRecord, RefreshUse, Reservation, StoreError,
    StoreFuture, UserRecord,
};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

mod sessions;

/// The SQLite store shared by every pool of a process.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// Rate-limit buckets `(pool, key) → theoretical arrival time (ms)`. A SQLite store serves one
    /// process, so they live in memory: no disk write (and fsync) per request; a restart refills
    /// them.
    buckets: Arc<Mutex<HashMap<(String, String), i64>>>,
}

/// Migrations in order; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE client_secrets (
  pool_id TEXT NOT NULL, client_id TEXT NOT NULL, secret TEXT NOT NULL,
  PRIMARY KEY (pool_id, client_id));
CREATE TABLE users (
  sub TEXT PRIMARY KEY, pool_id TEXT NOT NULL, username TEXT NOT NULL, password_hash TEXT NOT NULL,
  status TEXT NOT NULL, enabled INTEGER NOT NULL, attributes TEXT NOT NULL,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  UNIQUE (pool_id, username));
CREATE TABLE auth_codes (
  code_hash TEXT PRIMARY KEY, pool_id TEXT NOT NULL, client_id TEXT NOT NULL, sub TEXT NOT NULL,
  redirect_uri TEXT NOT NULL, scope TEXT NOT NULL, nonce TEXT, code_challenge TEXT,
  auth_time INTEGER NOT NULL, expires_at INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0);
CREATE TABLE refresh_tokens (
  token_hash TEXT PRIMARY KEY, pool_id TEXT NOT NULL, client_id TEXT NOT NULL, sub TEXT NOT NULL,
  scope TEXT NOT NULL, auth_time INTEGER NOT NULL, origin_jti TEXT NOT NULL,
  expires_at INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
CREATE INDEX refresh_tokens_origin ON refresh_tokens (pool_id, origin_jti);
CREATE TABLE signing_keys (
  kid TEXT PRIMARY KEY, pool_id TEXT NOT NULL, purpose TEXT NOT NULL, generation INTEGER NOT NULL,
  pkcs8 BLOB NOT NULL, created_at INTEGER NOT NULL,
  UNIQUE (pool_id, purpose, generation));
"#,
    r#"
CREATE TABLE sessions (
  id_hash TEXT PRIMARY KEY, pool_id TEXT NOT NULL, sub TEXT NOT NULL,
  auth_time INTEGER NOT NULL, expires_at INTEGER NOT NULL);
"#,
    r#"
CREATE TABLE sign_in_failures (
  pool_id TEXT NOT NULL, username TEXT NOT NULL, failures INTEGER NOT NULL,
  last_failure INTEGER NOT NULL, locked_until INTEGER NOT NULL,
  PRIMARY KEY (pool_id, username));
"#,
    r#"
CREATE TABLE user_groups (
  pool_id TEXT NOT NULL, name TEXT NOT NULL, precedence INTEGER, description TEXT,
  PRIMARY KEY (pool_id, name));
CREATE TABLE group_members (
  pool_id TEXT NOT NULL, group_name TEXT NOT NULL, sub TEXT NOT NULL,
  PRIMARY KEY (pool_id, group_name, sub));
CREATE INDEX group_members_sub ON group_members (pool_id, sub);
"#,
    super::OBJECTS_AND_TICKETS,
    super::REUSE_DETECTION,
    super::SIGN_IN_IN_FLIGHT,
    super::sessions::sign_in_sessions_migration!("INTEGER PRIMARY KEY AUTOINCREMENT"),
];

/// True when the family of the `refresh_tokens` row `t` was revoked (any of its tokens, or the
/// family itself).
const FAMILY_REVOKED: &str = "(EXISTS (SELECT 1 FROM refresh_tokens f WHERE f.pool_id = t.pool_id AND f.origin_jti = t.origin_jti AND f.revoked = 1)
  OR EXISTS (SELECT 1 FROM revoked_families r WHERE r.pool_id = t.pool_id AND r.origin_jti = t.origin_jti))";

fn refresh_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RefreshRecord> {
    Ok(RefreshRecord {
        client_id: r.get(0)?,
        sub: r.get(1)?,
        scope: r.get(2)?,
        auth_time: r.get(3)?,
        origin_jti: r.get(4)?,
    })
}

/// Revokes a family inside the caller's transaction.
fn revoke_family_in(c: &Connection, pool: &str, origin: &str, now: i64) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO revoked_families (pool_id, origin_jti, revoked_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        params![pool, origin, now],
    )?;
    c.execute(
        "UPDATE refresh_tokens SET revoked = 1 WHERE pool_id = ?1 AND origin_jti = ?2",
        params![pool, origin],
    )?;
    Ok(())
}

use super::now;

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

    async fn run<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard).map_err(StoreError::from)
        })
        .await
        .map_err(|_| StoreError::Join)?
    }

    /// The client's secret, creating it from `make` when absent (idempotent seeding).
    async fn client_secret_or_insert(
        &self,
        pool: &str,
        client: &str,
        make: String,
    ) -> Result<String, StoreError> {
        let (pool, client) = (pool.to_string(), client.to_string());
        self.run(move |c| {
            c.execute(
                "INSERT INTO client_secrets (pool_id, client_id, secret) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                params![pool, client, make],
            )?;
            c.query_row(
                "SELECT secret FROM client_secrets WHERE pool_id = ?1 AND client_id = ?2",
                params![pool, client],
                |r| r.get(0),
            )
        })
        .await
    }

    /// Sets a client's secret (configured secrets win over stored ones).
    async fn set_client_secret(
        &self,
        pool: &str,
        client: &str,
        secret: String,
    ) -> Result<(), StoreError> {
        let (pool, client) = (pool.to_string(), client.to_string());
        self.run(move |c| {
            c.execute(
                "INSERT INTO client_secrets (pool_id, client_id, secret) VALUES (?1, ?2, ?3)
                 ON CONFLICT (pool_id, client_id) DO UPDATE SET secret = excluded.secret",
                params![pool, client, secret],
            )
            .map(|_| ())
        })
        .await
    }

    /// Creates a user unless the name is taken; returns whether it was created.
    async fn insert_user(&self, pool: &str, u: UserRecord) -> Result<bool, StoreError> {
        let pool = pool.to_string();
        self.run(move |c| {
            let n = c.execute(
                "INSERT INTO users (sub, pool_id, username, password_hash, status, enabled, attributes, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) ON CONFLICT DO NOTHING",
                params![
                    u.sub, pool, u.username, u.password_hash, u.status, u.enabled,
                    serde_json::Value::Object(u.attributes).to_string(), now()
                ],
            )?;
            Ok(n == 1)
        })
        .await
    }

    /// Replaces a user's password hash and status.
    async fn set_password(
        &self,
        pool: &str,
        username: &str,
        hash: String,
        status: &str,
    ) -> Result<bool, StoreError> {
        let (pool, username, status) = (pool.to_string(), username.to_string(), status.to_string());
        self.run(move |c| {
            let n = c.execute(
                "UPDATE users SET password_hash = ?1, status = ?2, updated_at = ?3 WHERE pool_id = ?4 AND username = ?5",
                params![hash, status, now(), pool, username],
            )?;
            Ok(n == 1)
        })
        .await
    }

    fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRecord> {
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

    /// Finds a user by name.
    async fn user_by_username(
        &self,
        pool: &str,
        username: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let (pool, username) = (pool.to_string(), username.to_string());
        self.run(move |c| {
            c.query_row(
                "SELECT sub, username, password_hash, status, enabled, attributes, created_at, updated_at FROM users WHERE pool_id = ?1 AND username = ?2",
                params![pool, username],
                Self::user_from_row,
            )
            .optional()
        })
        .await
    }

    /// Finds a user by `sub`.
    async fn user_by_sub(&self, pool: &str, sub: &str) -> Result<Option<UserRecord>, StoreError> {
        let (pool, sub) = (pool.to_string(), sub.to_string());
        self.run(move |c| {
            c.query_row(
                "SELECT sub, username, password_hash, status, enabled, attributes, created_at, updated_at FROM users WHERE pool_id = ?1 AND sub = ?2",
                params![pool, sub],
                Self::user_from_row,
            )
            .optional()
        })
        .await
    }

    /// Stores a new code (by hash) valid until `expires_at`.
    async fn insert_code(
        &self,
        pool: &str,
        code_hash: String,
        rec: CodeRecord,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let pool = pool.to_string();
        self.run(move |c| {
            c.execute(
                "INSERT INTO auth_codes (code_hash, pool_id, client_id, sub, redirect_uri, scope, nonce, code_challenge, auth_time, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![code_hash, pool, rec.client_id, rec.sub, rec.redirect_uri, rec.scope, rec.nonce, rec.code_challenge, rec.auth_time, expires_at],
            )
            .map(|_| ())
        })
        .await
    }

    /// Marks a code used by the family `origin_jti` and returns it, atomically; `None` when
    /// unknown, expired or used before.
    async fn take_code(
        &self,
        pool: &str,
        code_hash: String,
        origin_jti: &str,
    ) -> Result<Option<CodeRecord>, StoreError> {
        let (pool, origin) = (pool.to_string(), origin_jti.to_string());
        self.run(move |c| {
            c.query_row(
                "UPDATE auth_codes SET used = 1, origin_jti = ?4
                 WHERE code_hash = ?1 AND pool_id = ?2 AND used = 0 AND expires_at > ?3
                 RETURNING client_id, sub, redirect_uri, scope, nonce, code_challenge, auth_time",
                params![code_hash, pool, now(), origin],
                |r| {
                    Ok(CodeRecord {
                        client_id: r.get(0)?,
                        sub: r.get(1)?,
                        redirect_uri: r.get(2)?,
                        scope: r.get(3)?,
                        nonce: r.get(4)?,
                        code_challenge: r.get(5)?,
                        auth_time: r.get(6)?,
                    })
                },
            )
            .optional()
        })
        .await
    }

    /// The token family of a code redeemed before.
    async fn spent_code_family(
        &self,
        pool: &str,
        code_hash: String,
    ) -> Result<Option<String>, StoreError> {
        let pool = pool.to_string();
        self.run(move |c| {
            c.query_row(
                "SELECT origin_jti FROM auth_codes WHERE code_hash = ?1 AND pool_id = ?2 AND used = 1",
                params![code_hash, pool],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()
            .map(Option::flatten)
        })
        .await
    }

    /// Stores a refresh token (by hash).
    async fn insert_refresh(
        &self,
        pool: &str,
        token_hash: String,
        rec: RefreshRecord,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let pool = pool.to_string();
        self.run(move |c| {
            c.execute(
                "INSERT INTO refresh_tokens (token_hash, pool_id, client_id, sub, scope, auth_time, origin_jti, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![token_hash, pool, rec.client_id, rec.sub, rec.scope, rec.auth_time, rec.origin_jti, expires_at],
            )
            .map(|_| ())
        })
        .await
    }

    /// A live refresh token's grant.
    async fn refresh(
        &self,
        pool: &str,
        token_hash: String,
    ) -> Result<Option<RefreshRecord>, StoreError> {
        let pool = pool.to_string();
        self.run(move |c| {
            c.query_row(
                &format!(
                    "SELECT client_id, sub, scope, auth_time, origin_jti FROM refresh_tokens t
                     WHERE token_hash = ?1 AND pool_id = ?2 AND revoked = 0 AND expires_at > ?3
                     AND NOT {FAMILY_REVOKED}"
                ),
                params![token_hash, pool, now()],
                refresh_from_row,
            )
            .optional()
        })
        .await
    }

    /// Presents a refresh token: finds it, rotates or detects its reuse, in one transaction.
    async fn use_refresh(
        &self,
        pool: &str,
        token_hash: String,
        client: &str,
        at: i64,
        retire_until: Option<i64>,
    ) -> Result<RefreshUse, StoreError> {
        let (pool, client) = (pool.to_string(), client.to_string());
        self.run(move |c| {
            let tx = c.transaction()?;
            let found = tx
                .query_row(
                    &format!(
                        "SELECT client_id, sub, scope, auth_time, origin_jti, retired_until FROM refresh_tokens t
                         WHERE token_hash = ?1 AND pool_id = ?2 AND client_id = ?3 AND revoked = 0
                         AND expires_at > ?4 AND NOT {FAMILY_REVOKED}"
                    ),
                    params![token_hash, pool, client, at],
                    |r| Ok((refresh_from_row(r)?, r.get::<_, Option<i64>>(5)?)),
                )
                .optional()?;
            let out = match found {
                None => RefreshUse::Invalid,
                Some((rec, Some(until))) if until <= at => {
                    revoke_family_in(&tx, &pool, &rec.origin_jti, at)?;
                    RefreshUse::Reused
                }
                Some((rec, Some(_))) => RefreshUse::Live(rec),
                Some((rec, None)) => {
                    if let Some(until) = retire_until {
                        tx.execute(
                            "UPDATE refresh_tokens SET retired_until = ?3 WHERE token_hash = ?1 AND pool_id = ?2",
                            params![token_hash, pool, until],
                        )?;
                    }
                    RefreshUse::Live(rec)
                }
            };
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    /// Revokes a token family.
    async fn revoke_family(&self, pool: &str, origin_jti: &str) -> Result<(), StoreError> {
        let (pool, origin) = (pool.to_string(), origin_jti.to_string());
        self.run(move |c| {
            let tx = c.transaction()?;
            revoke_family_in(&tx, &pool, &origin, now())?;
            tx.commit()
        })
        .await
    }

    /// Signing keys of a pool for one purpose, oldest first.
    async fn signing_keys(&self, pool: &str, purpose: &str) -> Result<Vec<KeyRecord>, StoreError> {
        let (pool, purpose) = (pool.to_string(), purpose.to_string());
        self.run(move |c| {
            let mut st = c.prepare(
                "SELECT kid, pkcs8, generation, created_at FROM signing_keys WHERE pool_id = ?1 AND purpose = ?2 ORDER BY generation",
            )?;
            let rows = st.query_map(params![pool, purpose], |r| {
                Ok(KeyRecord {
                    kid: r.get(0)?,
                    pkcs8: r.get(1)?,
                    generation: r.get(2)?,
                    activates_at: r.get(3)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn insert_signing_key(
        &self,
        pool: &str,
        purpose: &str,
        generation: i64,
        kid: String,
        pkcs8: Vec<u8>,
        activates_at: i64,
    ) -> Result<bool, StoreError> {
        let (pool, purpose) = (pool.to_string(), purpose.to_string());
        self.run(move |c| {
            let n = c.execute(
                "INSERT INTO signing_keys (kid, pool_id, purpose, generation, pkcs8, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT DO NOTHING",
                params![kid, pool, purpose, generation, pkcs8, activates_at],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn revoke_refresh(
        &self,
        pool: &str,
        token_hash: String,
        client: &str,
    ) -> Result<Option<String>, StoreError> {
        let (pool, client) = (pool.to_string(), client.to_string());
        self.run(move |c| {
            c.query_row(
                "UPDATE refresh_tokens SET revoked = 1 WHERE token_hash = ?1 AND pool_id = ?2 AND client_id = ?3 RETURNING origin_jti",
                params![token_hash, pool, client],
                |r| r.get(0),
            )
            .optional()
        })
        .await
    }

    async fn origin_revoked(&self, pool: &str, origin_jti: &str) -> Result<bool, StoreError> {
        let (pool, origin) = (pool.to_string(), origin_jti.to_string());
        self.run(move |c| {
            c.query_row(
                "SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE pool_id = ?1 AND origin_jti = ?2 AND revoked = 1)
                     OR EXISTS (SELECT 1 FROM revoked_families WHERE pool_id = ?1 AND origin_jti = ?2)",
                params![pool, origin],
                |r| r.get(0),
            )
        })
        .await
    }
}

impl SqliteStore {
    async fn insert_session(
        &self,
        pool: &str,
        id_hash: String,
        sub: &str,
        auth_time: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let (pool, sub) = (pool.to_string(), sub.to_string());
        self.run(move |c| {
            c.execute("DELETE FROM sessions WHERE expires_at <= ?1", params![now()])?;
            c.execute(
                "INSERT INTO sessions (id_hash, pool_id, sub, auth_time, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id_hash, pool, sub, auth_time, expires_at],
            )
            .map(|_| ())
        })
        .await
    }

    async fn session(
        &self,
        pool: &str,
        id_hash: String,
    ) -> Result<Option<(String, i64)>, StoreError> {
        let pool = pool.to_string();
        self.run(move |c| {
            c.query_row(
                "SELECT sub, auth_time FROM sessions WHERE id_hash = ?1 AND pool_id = ?2 AND expires_at > ?3",
                params![id_hash, pool, now()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })
        .await
    }

    async fn delete_session(&self, pool: &str, id_hash: String) -> Result<(), StoreError> {
        let pool = pool.to_string();
        self.run(move |c| {
            c.execute(
                "DELETE FROM sessions WHERE id_hash = ?1 AND pool_id = ?2",
                params![id_hash, pool],
            )
            .map(|_| ())
        })
        .await
    }
}

impl SqliteStore {
    /// The lockout schedule alone (what [`Store::reserve_sign_in`] counts), kept for its unit test.
    #[cfg(test)]
    async fn record_failure(
        &self,
        pool: &str,
        username: &str,
        now: i64,
        reset_after: i64,
        max_lock: i64,
    ) -> Result<(i64, i64), StoreError> {
        let (pool, username) = (pool.to_string(), username.to_string());
        self.run(move |c| {
            c.query_row(
                "INSERT INTO sign_in_failures (pool_id, username, failures, last_failure, locked_until)
                 VALUES (?1, ?2, 1, ?3, 0)
                 ON CONFLICT (pool_id, username) DO UPDATE SET
                   failures = CASE WHEN ?3 - last_failure > ?4 THEN 1 ELSE failures + 1 END,
                   locked_until = CASE
                     WHEN ?3 - last_failure > ?4 OR failures + 1 < 5 THEN 0
                     ELSE ?3 + MIN(?5, 1 << MIN(failures + 1 - 5, 20)) END,
                   last_failure = ?3
                 RETURNING failures, locked_until",
                params![pool, username, now, reset_after, max_lock],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .await
    }

    async fn reserve_sign_in(
        &self,
        pool: &str,
        username: &str,
        now: i64,
        reset_after: i64,
        max_lock: i64,
        lease: i64,
    ) -> Result<Reservation, StoreError> {
        let (pool, username) = (pool.to_string(), username.to_string());
        self.run(move |c| {
            let tx = c.transaction()?;
            let granted = tx
                .query_row(
                    "INSERT INTO sign_in_failures (pool_id, username, failures, last_failure, locked_until, busy_until)
                     VALUES (?1, ?2, 1, ?3, 0, ?3 + ?6)
                     ON CONFLICT (pool_id, username) DO UPDATE SET
                       failures = CASE WHEN ?3 - last_failure > ?4 THEN 1 ELSE failures + 1 END,
                       locked_until = CASE
                         WHEN ?3 - last_failure > ?4 OR failures + 1 < 5 THEN 0
                         ELSE ?3 + MIN(?5, 1 << MIN(failures + 1 - 5, 20)) END,
                       last_failure = ?3,
                       busy_until = ?3 + ?6
                     WHERE locked_until <= ?3 AND busy_until <= ?3
                     RETURNING failures",
                    params![pool, username, now, reset_after, max_lock, lease],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?;
            let answer = if granted.is_some() {
                Reservation::Granted
            } else {
                let locked: i64 = tx.query_row(
                    "SELECT locked_until FROM sign_in_failures WHERE pool_id = ?1 AND username = ?2",
                    params![pool, username],
                    |r| r.get(0),
                )?;
                if locked > now {
                    Reservation::Locked
                } else {
                    Reservation::Busy
                }
            };
            tx.commit()?;
            Ok(answer)
        })
        .await
    }

    async fn release_sign_in(&self, pool: &str, username: &str) -> Result<(), StoreError> {
        let (pool, username) = (pool.to_string(), username.to_string());
        self.run(move |c| {
            c.execute(
                "UPDATE sign_in_failures SET busy_until = 0 WHERE pool_id = ?1 AND username = ?2",
                params![pool, username],
            )
            .map(|_| ())
        })
        .await
    }

    /// GCRA on the in-memory buckets (see the field).
    fn take_token(&self, pool: &str, key: &str, now_ms: i64, interval_ms: i64, burst: i64) -> bool {
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let k = (pool.to_string(), key.to_string());
        let tat = b.get(&k).copied().unwrap_or(now_ms).max(now_ms) + interval_ms;
        if tat - now_ms > burst.saturating_mul(interval_ms) {
            return false;
        }
        b.insert(k, tat);
        true
    }

    async fn sweep_limits(
        &self,
        pool: &str,
        now_ms: i64,
        reset_after: i64,
    ) -> Result<(), StoreError> {
        self.buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(p, _), tat| p != pool || *tat >= now_ms);
        let pool = pool.to_string();
        let now = now_ms / 1000;
        self.run(move |c| {
            c.execute(
                "DELETE FROM sign_in_failures WHERE pool_id = ?1 AND last_failure < ?2 - ?3
                 AND locked_until <= ?2 AND busy_until <= ?2",
                params![pool, now, reset_after],
            )
            .map(|_| ())
        })
        .await
    }

    async fn locked_until(&self, pool: &str, username: &str) -> Result<i64, StoreError> {
        let (pool, username) = (pool.to_string(), username.to_string());
        self.run(move |c| {
            c.query_row(
                "SELECT locked_until FROM sign_in_failures WHERE pool_id = ?1 AND username = ?2",
                params![pool, username],
                |r| r.get(0),
            )
            .optional()
            .map(|v| v.unwrap_or(0))
        })
        .await
    }

    async fn clear_failures(&self, pool: &str, username: &str) -> Result<(), StoreError> {
        let (pool, username) = (pool.to_string(), username.to_string());
        self.run(move |c| {
            c.execute(
                "DELETE FROM sign_in_failures WHERE pool_id = ?1 AND username = ?2",
                params![pool, username],
            )
            .map(|_| ())
        })
        .await
    }
}

impl SqliteStore {
    async fn upsert_group(
        &self,
        pool: &str,
        name: &str,
        precedence: Option<i64>,
        description: Option<&str>,
    ) -> Result<(), StoreError> {
        let (pool, name, description) = (
            pool.to_string(),
            name.to_string(),
            description.map(str::to_string),
        );
        self.run(move |c| {
            c.execute(
                "INSERT INTO user_groups (pool_id, name, precedence, description) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (pool_id, name) DO UPDATE SET precedence = excluded.precedence, description = excluded.description",
                params![pool, name, precedence, description],
            )
            .map(|_| ())
        })
        .await
    }

    async fn add_to_group(&self, pool: &str, group: &str, sub: &str) -> Result<(), StoreError> {
        let (pool, group, sub) = (pool.to_string(), group.to_string(), sub.to_string());
        self.run(move |c| {
            c.execute(
                "INSERT INTO group_members (pool_id, group_name, sub) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                params![pool, group, sub],
            )
            .map(|_| ())
        })
        .await
    }

    async fn groups_of(&self, pool: &str, sub: &str) -> Result<Vec<String>, StoreError> {
        let (pool, sub) = (pool.to_string(), sub.to_string());
        self.run(move |c| {
            let mut st = c.prepare(
                "SELECT g.name FROM group_members m JOIN user_groups g ON g.pool_id = m.pool_id AND g.name = m.group_name
                 WHERE m.pool_id = ?1 AND m.sub = ?2 ORDER BY g.precedence IS NULL, g.precedence, g.name",
            )?;
            let rows = st.query_map(params![pool, sub], |r| r.get(0))?;
            rows.collect()
        })
        .await
    }
}

impl super::Store for SqliteStore {
    fn put_object<'a>(
        &'a self,
        pool: &'a str,
        kind: &'a str,
        id: &'a str,
        body: String,
        mode: Put,
    ) -> StoreFuture<'a, bool> {
        let (pool, kind, id) = (pool.to_string(), kind.to_string(), id.to_string());
        Box::pin(self.run(move |c| {
            let sql = match mode {
                Put::Insert => "INSERT INTO pool_objects (pool_id, kind, id, body, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT DO NOTHING",
                Put::Upsert => "INSERT INTO pool_objects (pool_id, kind, id, body, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)
                                ON CONFLICT (pool_id, kind, id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
                Put::Update => "UPDATE pool_objects SET body = ?4, updated_at = ?5 WHERE pool_id = ?1 AND kind = ?2 AND id = ?3",
            };
            Ok(c.execute(sql, params![pool, kind, id, body, now()])? == 1)
        }))
    }
    fn object<'a>(
        &'a self,
        pool: &'a str,
        kind: &'a str,
        id: &'a str,
    ) -> StoreFuture<'a, Option<String>> {
        let (pool, kind, id) = (pool.to_string(), kind.to_string(), id.to_string());
        Box::pin(self.run(move |c| {
            c.query_row(
                "SELECT body FROM pool_objects WHERE pool_id = ?1 AND kind = ?2 AND id = ?3",
                params![pool, kind, id],
                |r| r.get(0),
            )
            .optional()
        }))
    }
    fn objects<'a>(
        &'a self,
        pool: &'a str,
        kind: &'a str,
    ) -> StoreFuture<'a, Vec<(String, String)>> {
        let (pool, kind) = (pool.to_string(), kind.to_string());
        Box::pin(self.run(move |c| {
            let mut st = c.prepare(
                "SELECT id, body FROM pool_objects WHERE pool_id = ?1 AND kind = ?2 ORDER BY id",
            )?;
            st.query_map(params![pool, kind], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        }))
    }
    fn delete_object<'a>(
        &'a self,
        pool: &'a str,
        kind: &'a str,
        id: &'a str,
    ) -> StoreFuture<'a, bool> {
        let (pool, kind, id) = (pool.to_string(), kind.to_string(), id.to_string());
        Box::pin(self.run(move |c| {
            Ok(c.execute(
                "DELETE FROM pool_objects WHERE pool_id = ?1 AND kind = ?2 AND id = ?3",
                params![pool, kind, id],
            )? == 1)
        }))
    }
    fn save_user<'a>(&'a self, pool: &'a str, u: UserRecord) -> StoreFuture<'a, bool> {
        let pool = pool.to_string();
        Box::pin(self.run(move |c| {
            Ok(c.execute(
                "UPDATE users SET password_hash = ?1, status = ?2, enabled = ?3, attributes = ?4, updated_at = ?5
                 WHERE pool_id = ?6 AND sub = ?7",
                params![
                    u.password_hash, u.status, u.enabled,
                    serde_json::Value::Object(u.attributes).to_string(), now(), pool, u.sub
                ],
            )? == 1)
        }))
    }
    fn delete_user<'a>(&'a self, pool: &'a str, sub: &'a str) -> StoreFuture<'a, bool> {
        let (pool, sub) = (pool.to_string(), sub.to_string());
        Box::pin(self.run(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "DELETE FROM group_members WHERE pool_id = ?1 AND sub = ?2",
                params![pool, sub],
            )?;
            tx.execute(
                "DELETE FROM sessions WHERE pool_id = ?1 AND sub = ?2",
                params![pool, sub],
            )?;
            tx.execute(
                "UPDATE refresh_tokens SET revoked = 1 WHERE pool_id = ?1 AND sub = ?2",
                params![pool, sub],
            )?;
            let n = tx.execute(
                "DELETE FROM users WHERE pool_id = ?1 AND sub = ?2",
                params![pool, sub],
            )?;
            tx.commit()?;
            Ok(n == 1)
        }))
    }
    fn list_users<'a>(
        &'a self,
        pool: &'a str,
        after: Option<String>,
        limit: i64,
    ) -> StoreFuture<'a, Vec<UserRecord>> {
        let pool = pool.to_string();
        Box::pin(self.run(move |c| {
            let mut st = c.prepare(
                "SELECT sub, username, password_hash, status, enabled, attributes, created_at, updated_at FROM users
                 WHERE pool_id = ?1 AND username > ?2 ORDER BY username LIMIT ?3",
            )?;
            st.query_map(params![pool, after.unwrap_or_default(), limit], SqliteStore::user_from_row)?
                .collect()
        }))
    }
    fn revoke_user_tokens<'a>(&'a self, pool: &'a str, sub: &'a str) -> StoreFuture<'a, u64> {
        let (pool, sub) = (pool.to_string(), sub.to_string());
        Box::pin(self.run(move |c| {
            c.execute("DELETE FROM sessions WHERE pool_id = ?1 AND sub = ?2", params![pool, sub])?;
            Ok(c.execute(
                "UPDATE refresh_tokens SET revoked = 1 WHERE pool_id = ?1 AND sub = ?2 AND revoked = 0",
                params![pool, sub],
            )? as u64)
        }))
    }
    fn count_users<'a>(&'a self, pool: &'a str) -> StoreFuture<'a, i64> {
        let pool = pool.to_string();
        Box::pin(self.run(move |c| {
            c.query_row(
                "SELECT COUNT(*) FROM users WHERE pool_id = ?1",
                params![pool],
                |r| r.get(0),
            )
        }))
    }
    fn groups<'a>(&'a self, pool: &'a str) -> StoreFuture<'a, Vec<GroupRecord>> {
        let pool = pool.to_string();
        Box::pin(self.run(move |c| {
            let mut st = c.prepare("SELECT name, precedence, description FROM user_groups WHERE pool_id = ?1 ORDER BY name")?;
            st.query_map(params![pool], |r| {
                Ok(GroupRecord { name: r.get(0)?, precedence: r.get(1)?, description: r.get(2)? })
            })?
            .collect()
        }))
    }
    fn insert_group<'a>(&'a self, pool: &'a str, g: GroupRecord) -> StoreFuture<'a, bool> {
        let pool = pool.to_string();
        Box::pin(self.run(move |c| {
            Ok(c.execute(
                "INSERT INTO user_groups (pool_id, name, precedence, description) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                params![pool, g.name, g.precedence, g.description],
            )? == 1)
        }))
    }
    fn delete_group<'a>(&'a self, pool: &'a str, name: &'a str) -> StoreFuture<'a, bool> {
        let (pool, name) = (pool.to_string(), name.to_string());
        Box::pin(self.run(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "DELETE FROM group_members WHERE pool_id = ?1 AND group_name = ?2",
                params![pool, name],
            )?;
            let n = tx.execute(
                "DELETE FROM user_groups WHERE pool_id = ?1 AND name = ?2",
                params![pool, name],
            )?;
            tx.commit()?;
            Ok(n == 1)
        }))
    }
    fn remove_from_group<'a>(
        &'a self,
        pool: &'a str,
        group: &'a str,
        sub: &'a str,
    ) -> StoreFuture<'a, ()> {
        let (pool, group, sub) = (pool.to_string(), group.to_string(), sub.to_string());
        Box::pin(self.run(move |c| {
            c.execute(
                "DELETE FROM group_members WHERE pool_id = ?1 AND group_name = ?2 AND sub = ?3",
                params![pool, group, sub],
            )
            .map(|_| ())
        }))
    }
    fn group_members<'a>(&'a self, pool: &'a str, group: &'a str) -> StoreFuture<'a, Vec<String>> {
        let (pool, group) = (pool.to_string(), group.to_string());
        Box::pin(self.run(move |c| {
            let mut st = c.prepare(
                "SELECT sub FROM group_members WHERE pool_id = ?1 AND group_name = ?2 ORDER BY sub",
            )?;
            st.query_map(params![pool, group], |r| r.get(0))?.collect()
        }))
    }
    fn put_ticket<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        key: &'a str,
        value: String,
        expires_at: i64,
    ) -> StoreFuture<'a, ()> {
        let (pool, purpose, key) = (pool.to_string(), purpose.to_string(), key.to_string());
        Box::pin(self.run(move |c| {
            // Expired tickets (codes, decoys, spent budgets) go, so the table stays bounded.
            c.execute("DELETE FROM tickets WHERE expires_at <= ?1", params![now()])?;
            c.execute(
                "INSERT INTO tickets (pool_id, purpose, key, value, expires_at, attempts) VALUES (?1, ?2, ?3, ?4, ?5, 0)
                 ON CONFLICT (pool_id, purpose, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, attempts = 0",
                params![pool, purpose, key, value, expires_at],
            )
            .map(|_| ())
        }))
    }
    fn ticket<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        key: &'a str,
    ) -> StoreFuture<'a, Option<(String, i64)>> {
        let (pool, purpose, key) = (pool.to_string(), purpose.to_string(), key.to_string());
        Box::pin(self.run(move |c| {
            c.query_row(
                "SELECT value, attempts FROM tickets WHERE pool_id = ?1 AND purpose = ?2 AND key = ?3 AND expires_at > ?4",
                params![pool, purpose, key, now()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        }))
    }
    fn spend_ticket_attempt<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        key: &'a str,
        max: i64,
    ) -> StoreFuture<'a, Option<(String, i64)>> {
        let (pool, purpose, key) = (pool.to_string(), purpose.to_string(), key.to_string());
        Box::pin(self.run(move |c| {
            c.query_row(
                "UPDATE tickets SET attempts = attempts + 1
                 WHERE pool_id = ?1 AND purpose = ?2 AND key = ?3 AND expires_at > ?4 AND attempts < ?5
                 RETURNING value, attempts",
                params![pool, purpose, key, now(), max],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        }))
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
        let (pool, purpose, key) = (pool.to_string(), purpose.to_string(), key.to_string());
        Box::pin(self.run(move |c| {
            Ok(c.query_row(
                "INSERT INTO tickets (pool_id, purpose, key, value, expires_at, attempts) VALUES (?1, ?2, ?3, '', ?4 + ?5, 1)
                 ON CONFLICT (pool_id, purpose, key) DO UPDATE SET
                   attempts = CASE WHEN tickets.expires_at <= ?4 THEN 1 ELSE tickets.attempts + 1 END,
                   expires_at = CASE WHEN tickets.expires_at <= ?4 THEN ?4 + ?5 ELSE tickets.expires_at END
                 WHERE tickets.expires_at <= ?4 OR tickets.attempts < ?6
                 RETURNING attempts",
                params![pool, purpose, key, now, window, max],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .is_some())
        }))
    }
    fn advance_ticket<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        key: &'a str,
        value: i64,
        expires_at: i64,
    ) -> StoreFuture<'a, bool> {
        let (pool, purpose, key) = (pool.to_string(), purpose.to_string(), key.to_string());
        Box::pin(self.run(move |c| {
            Ok(c.query_row(
                "INSERT INTO tickets (pool_id, purpose, key, value, expires_at, attempts) VALUES (?1, ?2, ?3, ?4, ?5, 0)
                 ON CONFLICT (pool_id, purpose, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at
                 WHERE CAST(tickets.value AS INTEGER) < CAST(excluded.value AS INTEGER)
                 RETURNING value",
                params![pool, purpose, key, value.to_string(), expires_at],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .is_some())
        }))
    }
    fn take_ticket<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        key: &'a str,
    ) -> StoreFuture<'a, Option<String>> {
        let (pool, purpose, key) = (pool.to_string(), purpose.to_string(), key.to_string());
        Box::pin(self.run(move |c| {
            c.query_row(
                "DELETE FROM tickets WHERE pool_id = ?1 AND purpose = ?2 AND key = ?3 AND expires_at > ?4 RETURNING value",
                params![pool, purpose, key, now()],
                |r| r.get(0),
            )
            .optional()
        }))
    }
    fn use_refresh<'a>(
        &'a self,
        pool: &'a str,
        token_hash: String,
        client: &'a str,
        now: i64,
        retire_until: Option<i64>,
    ) -> StoreFuture<'a, RefreshUse> {
        Box::pin(SqliteStore::use_refresh(
            self,
            pool,
            token_hash,
            client,
            now,
            retire_until,
        ))
    }
    fn revoke_family<'a>(&'a self, pool: &'a str, origin_jti: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(SqliteStore::revoke_family(self, pool, origin_jti))
    }
    fn upsert_group<'a>(
        &'a self,
        pool: &'a str,
        name: &'a str,
        precedence: Option<i64>,
        description: Option<&'a str>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(SqliteStore::upsert_group(
            self,
            pool,
            name,
            precedence,
            description,
        ))
    }
    fn add_to_group<'a>(
        &'a self,
        pool: &'a str,
        group: &'a str,
        sub: &'a str,
    ) -> StoreFuture<'a, ()> {
        Box::pin(SqliteStore::add_to_group(self, pool, group, sub))
    }
    fn groups_of<'a>(&'a self, pool: &'a str, sub: &'a str) -> StoreFuture<'a, Vec<String>> {
        Box::pin(SqliteStore::groups_of(self, pool, sub))
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
        Box::pin(SqliteStore::reserve_sign_in(
            self,
            pool,
            username,
            now,
            reset_after,
            max_lock,
            lease,
        ))
    }
    fn release_sign_in<'a>(&'a self, pool: &'a str, username: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(SqliteStore::release_sign_in(self, pool, username))
    }
    fn take_token<'a>(
        &'a self,
        pool: &'a str,
        key: &'a str,
        now_ms: i64,
        interval_ms: i64,
        burst: i64,
    ) -> StoreFuture<'a, bool> {
        let taken = SqliteStore::take_token(self, pool, key, now_ms, interval_ms, burst);
        Box::pin(async move { Ok(taken) })
    }
    fn bucket_tat<'a>(&'a self, pool: &'a str, key: &'a str) -> StoreFuture<'a, Option<i64>> {
        let tat = self
            .buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(pool.to_string(), key.to_string()))
            .copied();
        Box::pin(async move { Ok(tat) })
    }
    fn sweep_limits<'a>(
        &'a self,
        pool: &'a str,
        now_ms: i64,
        reset_after: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(SqliteStore::sweep_limits(self, pool, now_ms, reset_after))
    }
    fn locked_until<'a>(&'a self, pool: &'a str, username: &'a str) -> StoreFuture<'a, i64> {
        Box::pin(SqliteStore::locked_until(self, pool, username))
    }
    fn clear_failures<'a>(&'a self, pool: &'a str, username: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(SqliteStore::clear_failures(self, pool, username))
    }
    fn insert_session<'a>(
        &'a self,
        pool: &'a str,
        id_hash: String,
        sub: &'a str,
        auth_time: i64,
        expires_at: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(SqliteStore::insert_session(
            self, pool, id_hash, sub, auth_time, expires_at,
        ))
    }
    fn session<'a>(
        &'a self,
        pool: &'a str,
        id_hash: String,
    ) -> StoreFuture<'a, Option<(String, i64)>> {
        Box::pin(SqliteStore::session(self, pool, id_hash))
    }
    fn delete_session<'a>(&'a self, pool: &'a str, id_hash: String) -> StoreFuture<'a, ()> {
        Box::pin(SqliteStore::delete_session(self, pool, id_hash))
    }
    fn client_secret_or_insert<'a>(
        &'a self,
        pool: &'a str,
        client: &'a str,
        make: String,
    ) -> StoreFuture<'a, String> {
        Box::pin(SqliteStore::client_secret_or_insert(
            self, pool, client, make,
        ))
    }
    fn set_client_secret<'a>(
        &'a self,
        pool: &'a str,
        client: &'a str,
        secret: String,
    ) -> StoreFuture<'a, ()> {
        Box::pin(SqliteStore::set_client_secret(self, pool, client, secret))
    }
    fn insert_user<'a>(&'a self, pool: &'a str, user: UserRecord) -> StoreFuture<'a, bool> {
        Box::pin(SqliteStore::insert_user(self, pool, user))
    }
    fn set_password<'a>(
        &'a self,
        pool: &'a str,
        username: &'a str,
        hash: String,
        status: &'a str,
    ) -> StoreFuture<'a, bool> {
        Box::pin(SqliteStore::set_password(
            self, pool, username, hash, status,
        ))
    }
    fn user_by_username<'a>(
        &'a self,
        pool: &'a str,
        username: &'a str,
    ) -> StoreFuture<'a, Option<UserRecord>> {
        Box::pin(SqliteStore::user_by_username(self, pool, username))
    }
    fn user_by_sub<'a>(
        &'a self,
        pool: &'a str,
        sub: &'a str,
    ) -> StoreFuture<'a, Option<UserRecord>> {
        Box::pin(SqliteStore::user_by_sub(self, pool, sub))
    }
    fn insert_code<'a>(
        &'a self,
        pool: &'a str,
        code_hash: String,
        rec: CodeRecord,
        expires_at: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(SqliteStore::insert_code(
            self, pool, code_hash, rec, expires_at,
        ))
    }
    fn take_code<'a>(
        &'a self,
        pool: &'a str,
        code_hash: String,
        origin_jti: &'a str,
    ) -> StoreFuture<'a, Option<CodeRecord>> {
        Box::pin(SqliteStore::take_code(self, pool, code_hash, origin_jti))
    }
    fn spent_code_family<'a>(
        &'a self,
        pool: &'a str,
        code_hash: String,
    ) -> StoreFuture<'a, Option<String>> {
        Box::pin(SqliteStore::spent_code_family(self, pool, code_hash))
    }
    fn insert_refresh<'a>(
        &'a self,
        pool: &'a str,
        token_hash: String,
        rec: RefreshRecord,
        expires_at: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(SqliteStore::insert_refresh(
            self, pool, token_hash, rec, expires_at,
        ))
    }
    fn refresh<'a>(
        &'a self,
        pool: &'a str,
        token_hash: String,
    ) -> StoreFuture<'a, Option<RefreshRecord>> {
        Box::pin(SqliteStore::refresh(self, pool, token_hash))
    }
    fn revoke_refresh<'a>(
        &'a self,
        pool: &'a str,
        token_hash: String,
        client: &'a str,
    ) -> StoreFuture<'a, Option<String>> {
        Box::pin(SqliteStore::revoke_refresh(self, pool, token_hash, client))
    }
    fn origin_revoked<'a>(&'a self, pool: &'a str, origin_jti: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(SqliteStore::origin_revoked(self, pool, origin_jti))
    }
    fn signing_keys<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
    ) -> StoreFuture<'a, Vec<KeyRecord>> {
        Box::pin(SqliteStore::signing_keys(self, pool, purpose))
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
        Box::pin(SqliteStore::insert_signing_key(
            self,
            pool,
            purpose,
            generation,
            kid,
            pkcs8,
            activates_at,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(client: &str) -> CodeRecord {
        CodeRecord {
            client_id: client.into(),
            sub: "s".into(),
            redirect_uri: "https://x/cb".into(),
            scope: "openid".into(),
            nonce: None,
            code_challenge: None,
            auth_time: 1,
        }
    }

    #[tokio::test]
    async fn codes_are_single_use_and_expire() {
        let s = SqliteStore::in_memory().unwrap();
        s.insert_code("p", "h1".into(), code("c"), now() + 300)
            .await
            .unwrap();
        s.insert_code("p", "h2".into(), code("c"), now() - 1)
            .await
            .unwrap();
        assert!(
            s.take_code("other-pool", "h1".into(), "o")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            s.take_code("p", "h1".into(), "o")
                .await
                .unwrap()
                .unwrap()
                .client_id,
            "c"
        );
        assert!(
            s.take_code("p", "h1".into(), "o").await.unwrap().is_none(),
            "second use"
        );
        assert!(
            s.take_code("p", "h2".into(), "o").await.unwrap().is_none(),
            "expired"
        );
    }

    #[tokio::test]
    async fn a_rotated_refresh_token_reused_after_its_grace_revokes_the_family() {
        let s = SqliteStore::in_memory().unwrap();
        let rec = |o: &str| RefreshRecord {
            client_id: "c".into(),
            sub: "s".into(),
            scope: "openid".into(),
            auth_time: 1,
            origin_jti: o.into(),
        };
        let t = 1_000;
        s.insert_refresh("p", "r0".into(), rec("fam"), t + 3600)
            .await
            .unwrap();
        let live = |u: &RefreshUse| matches!(u, RefreshUse::Live(_));
        let use_at = |h: &'static str, at: i64, client: &'static str| {
            s.use_refresh("p", h.into(), client, at, Some(at + 10))
        };
        assert!(
            matches!(use_at("r0", t, "other").await.unwrap(), RefreshUse::Invalid),
            "another client's"
        );
        assert!(
            live(&use_at("r0", t, "c").await.unwrap()),
            "first use rotates"
        );
        s.insert_refresh("p", "r1".into(), rec("fam"), t + 3600)
            .await
            .unwrap();
        assert!(live(&use_at("r0", t + 9, "c").await.unwrap()), "grace");
        assert!(matches!(
            use_at("r0", t + 10, "c").await.unwrap(),
            RefreshUse::Reused
        ));
        assert!(matches!(
            use_at("r1", t + 10, "c").await.unwrap(),
            RefreshUse::Invalid
        ));
        assert!(s.origin_revoked("p", "fam").await.unwrap());
        // A token of the family stored after the revocation is born dead.
        s.insert_refresh("p", "r2".into(), rec("fam"), now() + 3600)
            .await
            .unwrap();
        assert!(s.refresh("p", "r2".into()).await.unwrap().is_none());
        // A family revoked before it has any token (a replayed code) stays revoked.
        s.revoke_family("p", "early").await.unwrap();
        s.insert_refresh("p", "e1".into(), rec("early"), now() + 3600)
            .await
            .unwrap();
        assert!(s.refresh("p", "e1".into()).await.unwrap().is_none());
        assert!(s.origin_revoked("p", "early").await.unwrap());
    }

    #[tokio::test]
    async fn lockout_doubles_caps_at_15_minutes_and_resets() {
        let s = SqliteStore::in_memory().unwrap();
        let mut got = Vec::new();
        for _ in 0..16 {
            got.push(s.record_failure("p", "u", 1000, 900, 900).await.unwrap());
        }
        assert_eq!(&got[..4], &[(1, 0), (2, 0), (3, 0), (4, 0)]);
        assert_eq!(&got[4..8], &[(5, 1001), (6, 1002), (7, 1004), (8, 1008)]);
        assert_eq!(got[13], (14, 1000 + 512));
        assert_eq!(got[14], (15, 1900), "capped at 15 minutes");
        assert_eq!(s.locked_until("p", "u").await.unwrap(), 1900);
        assert_eq!(
            s.record_failure("p", "u", 1901, 900, 900).await.unwrap(),
            (1, 0),
            "15 quiet minutes reset the count"
        );
        s.clear_failures("p", "u").await.unwrap();
        assert_eq!(s.locked_until("p", "u").await.unwrap(), 0);
    }

    #[tokio::test]
    async fn ticket_attempts_are_reserved_atomically_and_budgets_survive_reissue() {
        use crate::store::Store;
        let s = SqliteStore::in_memory().unwrap();
        s.put_ticket("p", "reset", "u", "h".into(), now() + 60)
            .await
            .unwrap();
        let tries: Vec<_> = (0..50)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move { s.spend_ticket_attempt("p", "reset", "u", 5).await })
            })
            .collect();
        let mut granted = Vec::new();
        for t in tries {
            if let Some((v, n)) = t.await.unwrap().unwrap() {
                assert_eq!(v, "h");
                granted.push(n);
            }
        }
        granted.sort();
        assert_eq!(
            granted,
            [1, 2, 3, 4, 5],
            "exactly five guesses, each counted once"
        );
        // The budget: five per window, not restored by a new code, reopened when the window ends.
        let t = now();
        for _ in 0..5 {
            assert!(s.reserve_attempt("p", "b", "u", 5, 100, t).await.unwrap());
        }
        s.put_ticket("p", "reset", "u", "h2".into(), now() + 60)
            .await
            .unwrap();
        assert!(
            !s.reserve_attempt("p", "b", "u", 5, 100, t + 99)
                .await
                .unwrap()
        );
        assert!(
            s.reserve_attempt("p", "b", "u", 5, 100, t + 100)
                .await
                .unwrap()
        );
        // A TOTP step is accepted once, and never an older one.
        assert!(
            s.advance_ticket("p", "step", "u", 7, i64::MAX / 4)
                .await
                .unwrap()
        );
        assert!(
            !s.advance_ticket("p", "step", "u", 7, i64::MAX / 4)
                .await
                .unwrap()
        );
        assert!(
            !s.advance_ticket("p", "step", "u", 6, i64::MAX / 4)
                .await
                .unwrap()
        );
        assert!(
            s.advance_ticket("p", "step", "u", 8, i64::MAX / 4)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn a_reservation_is_counted_before_the_check_and_excludes_others() {
        use super::Reservation::*;
        let s = SqliteStore::in_memory().unwrap();
        assert_eq!(
            s.reserve_sign_in("p", "u", 1000, 900, 900, 60)
                .await
                .unwrap(),
            Granted
        );
        // While it runs, no other check of the same user (until the lease ends).
        assert_eq!(
            s.reserve_sign_in("p", "u", 1000, 900, 900, 60)
                .await
                .unwrap(),
            Busy
        );
        assert_eq!(
            s.reserve_sign_in("p", "v", 1000, 900, 900, 60)
                .await
                .unwrap(),
            Granted
        );
        assert_eq!(
            s.reserve_sign_in("p", "u", 1061, 900, 900, 60)
                .await
                .unwrap(),
            Granted
        );
        for _ in 0..3 {
            s.release_sign_in("p", "u").await.unwrap();
            assert_eq!(
                s.reserve_sign_in("p", "u", 1061, 900, 900, 60)
                    .await
                    .unwrap(),
                Granted
            );
        }
        // The fifth reservation locked (1 s), and the lock holds even once released.
        s.release_sign_in("p", "u").await.unwrap();
        assert_eq!(s.locked_until("p", "u").await.unwrap(), 1062);
        assert_eq!(
            s.reserve_sign_in("p", "u", 1061, 900, 900, 60)
                .await
                .unwrap(),
            Locked
        );
        assert_eq!(
            s.reserve_sign_in("p", "u", 1062, 900, 900, 60)
                .await
                .unwrap(),
            Granted
        );
        assert_eq!(
            s.locked_until("p", "u").await.unwrap(),
            1064,
            "the sixth doubles it"
        );
        s.clear_failures("p", "u").await.unwrap();
        assert_eq!(
            s.reserve_sign_in("p", "u", 1062, 900, 900, 60)
                .await
                .unwrap(),
            Granted
        );
    }

    #[tokio::test]
    async fn buckets_allow_their_burst_then_their_rate() {
        let s = SqliteStore::in_memory().unwrap();
        let take = |now| SqliteStore::take_token(&s, "p", "k", now, 1000, 3);
        assert!(take(0) && take(0) && take(0));
        assert!(!take(0) && !take(999));
        assert!(take(1000) && !take(1000));
        assert!(take(10_000) && take(10_000) && take(10_000) && !take(10_000));
        s.sweep_limits("p", 20_000, 900).await.unwrap();
        assert!(
            s.buckets.lock().unwrap().is_empty(),
            "full buckets are forgotten"
        );
    }

    #[tokio::test]
    async fn client_secret_seeding_is_idempotent() {
        let s = SqliteStore::in_memory().unwrap();
        let a = s
            .client_secret_or_insert("p", "c", "first".into())
            .await
            .unwrap();
        let b = s
            .client_secret_or_insert("p", "c", "second".into())
            .await
            .unwrap();
        assert_eq!((a.as_str(), b.as_str()), ("first", "first"));
    }

    #[tokio::test]
    async fn injection_in_values_is_inert() {
        let s = SqliteStore::in_memory().unwrap();
        let evil = "x'); DROP TABLE users; --".to_string();
        let u = UserRecord {
            sub: "s1".into(),
            username: evil.clone(),
            password_hash: "h".into(),
            status: "CONFIRMED".into(),
            enabled: true,
            attributes: Default::default(),
            created_at: 0,
            updated_at: 0,
        };
        assert!(s.insert_user("p", u).await.unwrap());
        assert_eq!(
            s.user_by_username("p", &evil).await.unwrap().unwrap().sub,
            "s1"
        );
    }
}
