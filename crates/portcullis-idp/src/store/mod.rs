//! Durable state of the user pools behind one trait, with two real implementations: SQLite (the
//! default, one file in the state dir) and PostgreSQL (several IdP nodes act as one pool). No state
//! that must be shared between nodes lives anywhere else.

pub mod postgres;
pub mod sqlite;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

/// What every store method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// A storage failure (never shown to clients in detail).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// PostgreSQL said no, or could not be reached.
    #[error("postgres: {0}")]
    Postgres(String),
    /// SQLite said no.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The state dir could not be created.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The blocking task died.
    #[error("storage task failed")]
    Join,
}

/// A user as stored.
#[derive(Debug, Clone)]
pub struct UserRecord {
    /// Stable id (UUID).
    pub sub: String,
    /// Immutable user name.
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// `CONFIRMED`, `FORCE_CHANGE_PASSWORD`, ...
    pub status: String,
    /// Disabled users cannot sign in.
    pub enabled: bool,
    /// Attributes as a JSON object of strings.
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// A redeemed authorization code.
#[derive(Debug, Clone)]
pub struct CodeRecord {
    /// The client it was issued to.
    pub client_id: String,
    /// The user.
    pub sub: String,
    /// Must match the token request's.
    pub redirect_uri: String,
    /// Granted scopes, space separated.
    pub scope: String,
    /// OIDC nonce to copy into the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// When the user authenticated.
    pub auth_time: i64,
}

/// A refresh token's grant.
#[derive(Debug, Clone)]
pub struct RefreshRecord {
    /// The client it was issued to.
    pub client_id: String,
    /// The user.
    pub sub: String,
    /// Granted scopes.
    pub scope: String,
    /// Original authentication time.
    pub auth_time: i64,
    /// `jti` family of the tokens minted from it.
    pub origin_jti: String,
}

/// The operations the user pools need from storage. Every write that several nodes race on is a
/// single atomic statement (a code is spent by one conditional `UPDATE … RETURNING`).
pub trait Store: Send + Sync {
    /// The client's secret, creating it from `make` when absent (idempotent seeding).
    fn client_secret_or_insert<'a>(
        &'a self,
        pool: &'a str,
        client: &'a str,
        make: String,
    ) -> StoreFuture<'a, String>;
    /// Sets a client's secret (configured secrets win over stored ones).
    fn set_client_secret<'a>(
        &'a self,
        pool: &'a str,
        client: &'a str,
        secret: String,
    ) -> StoreFuture<'a, ()>;
    /// Creates a user unless the name is taken; returns whether it was created.
    fn insert_user<'a>(&'a self, pool: &'a str, user: UserRecord) -> StoreFuture<'a, bool>;
    /// Replaces a user's password hash and status; returns whether the user exists.
    fn set_password<'a>(
        &'a self,
        pool: &'a str,
        username: &'a str,
        hash: String,
        status: &'a str,
    ) -> StoreFuture<'a, bool>;
    /// Finds a user by name.
    fn user_by_username<'a>(
        &'a self,
        pool: &'a str,
        username: &'a str,
    ) -> StoreFuture<'a, Option<UserRecord>>;
    /// Finds a user by `sub`.
    fn user_by_sub<'a>(
        &'a self,
        pool: &'a str,
        sub: &'a str,
    ) -> StoreFuture<'a, Option<UserRecord>>;
    /// Stores a new code (by hash) valid until `expires_at`.
    fn insert_code<'a>(
        &'a self,
        pool: &'a str,
        code_hash: String,
        rec: CodeRecord,
        expires_at: i64,
    ) -> StoreFuture<'a, ()>;
    /// Marks a code used and returns it, atomically; `None` when unknown, expired or used before.
    fn take_code<'a>(
        &'a self,
        pool: &'a str,
        code_hash: String,
    ) -> StoreFuture<'a, Option<CodeRecord>>;
    /// Stores a refresh token (by hash).
    fn insert_refresh<'a>(
        &'a self,
        pool: &'a str,
        token_hash: String,
        rec: RefreshRecord,
        expires_at: i64,
    ) -> StoreFuture<'a, ()>;
    /// A live (unrevoked, unexpired) refresh token's grant.
    fn refresh<'a>(
        &'a self,
        pool: &'a str,
        token_hash: String,
    ) -> StoreFuture<'a, Option<RefreshRecord>>;
    /// Ends a rotated refresh token at `until` (or earlier, if it already ends sooner).
    fn retire_refresh<'a>(
        &'a self,
        pool: &'a str,
        token_hash: String,
        until: i64,
    ) -> StoreFuture<'a, ()>;
    /// Revokes a refresh token of `client`; returns its `origin_jti` when it existed.
    fn revoke_refresh<'a>(
        &'a self,
        pool: &'a str,
        token_hash: String,
        client: &'a str,
    ) -> StoreFuture<'a, Option<String>>;
    /// Whether the refresh token that minted tokens with this `origin_jti` was revoked.
    fn origin_revoked<'a>(&'a self, pool: &'a str, origin_jti: &'a str) -> StoreFuture<'a, bool>;
    /// Stores a hosted-UI session (by hash of the cookie value).
    fn insert_session<'a>(
        &'a self,
        pool: &'a str,
        id_hash: String,
        sub: &'a str,
        auth_time: i64,
        expires_at: i64,
    ) -> StoreFuture<'a, ()>;
    /// A live hosted-UI session: `(sub, auth_time)`.
    fn session<'a>(
        &'a self,
        pool: &'a str,
        id_hash: String,
    ) -> StoreFuture<'a, Option<(String, i64)>>;
    /// Ends a hosted-UI session.
    fn delete_session<'a>(&'a self, pool: &'a str, id_hash: String) -> StoreFuture<'a, ()>;
    /// Records a failed sign-in of an existing user atomically and returns `(failures, locked_until)`.
    /// The count restarts when the last failure is older than `reset_after` seconds; from the
    /// fifth failure on, the user is locked for 2^(failures−5) s, at most `max_lock` s.
    fn record_failure<'a>(
        &'a self,
        pool: &'a str,
        username: &'a str,
        now: i64,
        reset_after: i64,
        max_lock: i64,
    ) -> StoreFuture<'a, (i64, i64)>;
    /// When the user's lockout ends (0 when not locked or unknown).
    fn locked_until<'a>(&'a self, pool: &'a str, username: &'a str) -> StoreFuture<'a, i64>;
    /// Forgets failures after a successful sign-in.
    fn clear_failures<'a>(&'a self, pool: &'a str, username: &'a str) -> StoreFuture<'a, ()>;
    /// Creates or updates a group.
    fn upsert_group<'a>(
        &'a self,
        pool: &'a str,
        name: &'a str,
        precedence: Option<i64>,
        description: Option<&'a str>,
    ) -> StoreFuture<'a, ()>;
    /// Adds a user to a group (idempotent).
    fn add_to_group<'a>(
        &'a self,
        pool: &'a str,
        group: &'a str,
        sub: &'a str,
    ) -> StoreFuture<'a, ()>;
    /// The user's groups, by precedence (lowest first, groups without one last), then name.
    fn groups_of<'a>(&'a self, pool: &'a str, sub: &'a str) -> StoreFuture<'a, Vec<String>>;
    /// Signing keys of a pool for one purpose, oldest first.
    fn signing_keys<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
    ) -> StoreFuture<'a, Vec<(String, Vec<u8>)>>;
    /// Adds the key of `generation` unless another node already did; returns whether this one won.
    fn insert_signing_key<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        generation: i64,
        kid: String,
        pkcs8: Vec<u8>,
    ) -> StoreFuture<'a, bool>;
}

/// Opens the store a config names: `None` or `"sqlite"` for `<state_dir>/idp.sqlite3`, or a
/// `postgres://` URL.
pub async fn open(spec: Option<&str>, state_dir: &Path) -> Result<Arc<dyn Store>, StoreError> {
    match spec {
        None | Some("sqlite") => Ok(Arc::new(SqliteStore::open(state_dir)?)),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Arc::new(PgStore::connect(url).await?))
        }
        Some(other) => Err(StoreError::Postgres(format!(
            "unsupported store `{other}`: use \"sqlite\" or a postgres:// URL"
        ))),
    }
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
