//! Durable state of the user pools behind one trait, with two real implementations: SQLite (the
//! default, one file in the state dir) and PostgreSQL (several IdP nodes act as one pool). No state
//! that must be shared between nodes lives anywhere else.

pub mod postgres;
mod schema;
pub mod sessions;
mod sql;
pub mod sqlite;

pub use postgres::PgStore;
pub use sessions::{EndRecord, SessionStore, SignInRecord};
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// When it was created (set by the store).
    pub created_at: i64,
    /// When it last changed (set by the store).
    pub updated_at: i64,
}

/// A token-signing key as stored.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    /// JWK `kid`.
    pub kid: String,
    /// PKCS#8 DER.
    pub pkcs8: Vec<u8>,
    /// 0, 1, ...: the newest active one signs.
    pub generation: i64,
    /// When it starts signing (epoch seconds; kept in the `created_at` column).
    pub activates_at: i64,
}

/// A group as stored.
#[derive(Debug, Clone)]
pub struct GroupRecord {
    /// Unique within the pool.
    pub name: String,
    /// Lower wins; `None` sorts last.
    pub precedence: Option<i64>,
    /// Free text.
    pub description: Option<String>,
}

/// How [`Store::put_object`] treats an existing object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// Only when absent (creation).
    Insert,
    /// Create or replace (seeding from config).
    Upsert,
    /// Only when present (update).
    Update,
}

/// The answer of [`Store::reserve_sign_in`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The check may run; it is counted already.
    Granted,
    /// Locked after repeated failures: the password must not be checked.
    Locked,
    /// Another check of this user is in flight (on this node or another).
    Busy,
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

/// What presenting a refresh token found; decided by the store atomically, so that of concurrent
/// presentations of one live token exactly one rotates it.
#[derive(Debug, Clone)]
pub enum RefreshUse {
    /// Unknown, expired, presented by another client, or of a revoked family.
    Invalid,
    /// Live (or rotated and still in its retry grace period): its grant.
    Live(RefreshRecord),
    /// A rotated token presented after its grace period, so a copy is in other hands: the whole
    /// family (`origin_jti`), refresh and access tokens alike, has just been revoked.
    Reused,
}

/// The operations the user pools need from storage. Every write that several nodes race on is a
/// single atomic statement (a code is spent by one conditional `UPDATE … RETURNING`).
pub trait Store: SessionStore + Send + Sync {
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
    /// Marks a code used by the token family `origin_jti` and returns it, atomically; `None` when
    /// unknown, expired or used before.
    fn take_code<'a>(
        &'a self,
        pool: &'a str,
        code_hash: String,
        origin_jti: &'a str,
    ) -> StoreFuture<'a, Option<CodeRecord>>;
    /// The token family of a code redeemed before (to revoke it when the code is replayed).
    fn spent_code_family<'a>(
        &'a self,
        pool: &'a str,
        code_hash: String,
    ) -> StoreFuture<'a, Option<String>>;
    /// Stores a refresh token (by hash).
    fn insert_refresh<'a>(
        &'a self,
        pool: &'a str,
        token_hash: String,
        rec: RefreshRecord,
        expires_at: i64,
    ) -> StoreFuture<'a, ()>;
    /// A live (unexpired, its family unrevoked) refresh token's grant.
    fn refresh<'a>(
        &'a self,
        pool: &'a str,
        token_hash: String,
    ) -> StoreFuture<'a, Option<RefreshRecord>>;
    /// Presents a refresh token of `client` at `now` (RFC 9700 §4.14.2). With `retire_until`
    /// (rotation), a live token not rotated before is retired, usable until then, in the same
    /// statement that finds it; a retired token presented at or after its end revokes its family.
    fn use_refresh<'a>(
        &'a self,
        pool: &'a str,
        token_hash: String,
        client: &'a str,
        now: i64,
        retire_until: Option<i64>,
    ) -> StoreFuture<'a, RefreshUse>;
    /// Revokes a refresh token of `client` (and so its family); returns its `origin_jti` when it
    /// existed.
    fn revoke_refresh<'a>(
        &'a self,
        pool: &'a str,
        token_hash: String,
        client: &'a str,
    ) -> StoreFuture<'a, Option<String>>;
    /// Revokes a token family: its refresh tokens, present and future, and the access tokens
    /// minted from it.
    fn revoke_family<'a>(&'a self, pool: &'a str, origin_jti: &'a str) -> StoreFuture<'a, ()>;
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
    /// Reserves a password check of `username` (known or not) before it is made, atomically and
    /// for every node: refused while the user is locked or another check of theirs is in flight;
    /// otherwise the attempt is counted as a failure now (the count restarts when the last failure
    /// is older than `reset_after` s; from the fifth on the user is locked for 2^(failures−5) s, at
    /// most `max_lock` s) and marked in flight for `lease` seconds. The caller ends
    /// it with [`Store::clear_failures`] (right password) or [`Store::release_sign_in`] (wrong).
    fn reserve_sign_in<'a>(
        &'a self,
        pool: &'a str,
        username: &'a str,
        now: i64,
        reset_after: i64,
        max_lock: i64,
        lease: i64,
    ) -> StoreFuture<'a, Reservation>;
    /// Ends the in-flight mark of a password check that failed (its failure stays counted).
    fn release_sign_in<'a>(&'a self, pool: &'a str, username: &'a str) -> StoreFuture<'a, ()>;
    /// Takes one token from the bucket `key` (GCRA: `interval_ms` per token, `burst` at most),
    /// atomically and for every node sharing the store; returns whether one was there.
    fn take_token<'a>(
        &'a self,
        pool: &'a str,
        key: &'a str,
        now_ms: i64,
        interval_ms: i64,
        burst: i64,
    ) -> StoreFuture<'a, bool>;
    /// The bucket's theoretical arrival time (ms), when it is not full.
    fn bucket_tat<'a>(&'a self, pool: &'a str, key: &'a str) -> StoreFuture<'a, Option<i64>>;
    /// Forgets full buckets and sign-in failures that no longer matter (older than `reset_after`).
    fn sweep_limits<'a>(
        &'a self,
        pool: &'a str,
        now_ms: i64,
        reset_after: i64,
    ) -> StoreFuture<'a, ()>;
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
    /// Signing keys of a pool for one purpose, oldest generation first.
    fn signing_keys<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
    ) -> StoreFuture<'a, Vec<KeyRecord>>;
    /// Adds the key of `generation`, signing from `activates_at`, unless another node already did;
    /// returns whether this one won.
    fn insert_signing_key<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        generation: i64,
        kid: String,
        pkcs8: Vec<u8>,
        activates_at: i64,
    ) -> StoreFuture<'a, bool>;
    /// Writes a JSON document (app clients, resource servers) under `(kind, id)`; returns whether
    /// it was written.
    fn put_object<'a>(
        &'a self,
        pool: &'a str,
        kind: &'a str,
        id: &'a str,
        body: String,
        mode: Put,
    ) -> StoreFuture<'a, bool>;
    /// One document.
    fn object<'a>(
        &'a self,
        pool: &'a str,
        kind: &'a str,
        id: &'a str,
    ) -> StoreFuture<'a, Option<String>>;
    /// Every document of a kind, by id.
    fn objects<'a>(
        &'a self,
        pool: &'a str,
        kind: &'a str,
    ) -> StoreFuture<'a, Vec<(String, String)>>;
    /// Deletes a document; returns whether it existed.
    fn delete_object<'a>(
        &'a self,
        pool: &'a str,
        kind: &'a str,
        id: &'a str,
    ) -> StoreFuture<'a, bool>;
    /// Rewrites a user's hash, status, enabled flag and attributes (by `sub`); returns whether the
    /// user exists.
    fn save_user<'a>(&'a self, pool: &'a str, user: UserRecord) -> StoreFuture<'a, bool>;
    /// Deletes a user with their memberships, sessions and refresh tokens.
    fn delete_user<'a>(&'a self, pool: &'a str, sub: &'a str) -> StoreFuture<'a, bool>;
    /// Users ordered by user name, after `after` when given, at most `limit`.
    fn list_users<'a>(
        &'a self,
        pool: &'a str,
        after: Option<String>,
        limit: i64,
    ) -> StoreFuture<'a, Vec<UserRecord>>;
    /// Revokes every refresh token of a user (global sign-out); returns how many.
    fn revoke_user_tokens<'a>(&'a self, pool: &'a str, sub: &'a str) -> StoreFuture<'a, u64>;
    /// Every group, by name.
    fn groups<'a>(&'a self, pool: &'a str) -> StoreFuture<'a, Vec<GroupRecord>>;
    /// Creates a group unless it exists; returns whether it was created.
    fn insert_group<'a>(&'a self, pool: &'a str, group: GroupRecord) -> StoreFuture<'a, bool>;
    /// Deletes a group and its memberships; returns whether it existed.
    fn delete_group<'a>(&'a self, pool: &'a str, name: &'a str) -> StoreFuture<'a, bool>;
    /// Removes a user from a group (idempotent).
    fn remove_from_group<'a>(
        &'a self,
        pool: &'a str,
        group: &'a str,
        sub: &'a str,
    ) -> StoreFuture<'a, ()>;
    /// The `sub`s of a group's members.
    fn group_members<'a>(&'a self, pool: &'a str, group: &'a str) -> StoreFuture<'a, Vec<String>>;
    /// Stores a one-time secret (confirmation code, challenge session) under `(purpose, key)`,
    /// replacing an earlier one.
    fn put_ticket<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        key: &'a str,
        value: String,
        expires_at: i64,
    ) -> StoreFuture<'a, ()>;
    /// A live ticket's value and how many wrong guesses it has had.
    fn ticket<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        key: &'a str,
    ) -> StoreFuture<'a, Option<(String, i64)>>;
    /// Reserves one guess at a live ticket BEFORE its value is compared: counts it and returns the
    /// value with the new count, in one atomic statement; `None` when the ticket is unknown,
    /// expired, or has had `max` guesses (so concurrent guesses can never exceed `max`).
    fn spend_ticket_attempt<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        key: &'a str,
        max: i64,
    ) -> StoreFuture<'a, Option<(String, i64)>>;
    /// Reserves one attempt from a budget of `max` attempts per `window` seconds kept under
    /// `(purpose, key)` (the window starts at its first attempt), in one atomic statement; `false`
    /// when the budget is spent. Re-issuing a code does not touch it; `take_ticket` clears it.
    fn reserve_attempt<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        key: &'a str,
        max: i64,
        window: i64,
        now: i64,
    ) -> StoreFuture<'a, bool>;
    /// Stores the number `value` under `(purpose, key)` only when no larger or equal number is
    /// stored (a TOTP step is spent once, even under races); returns whether it did.
    fn advance_ticket<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        key: &'a str,
        value: i64,
        expires_at: i64,
    ) -> StoreFuture<'a, bool>;
    /// Deletes a ticket and returns its value when it was live (single use, atomic).
    fn take_ticket<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        key: &'a str,
    ) -> StoreFuture<'a, Option<String>>;
    /// How many users a pool has (`DescribeUserPool`'s `EstimatedNumberOfUsers`).
    fn count_users<'a>(&'a self, pool: &'a str) -> StoreFuture<'a, i64>;
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

/// The store's time in seconds: what it stamps rows with and expires them by.
pub(crate) fn now() -> i64 {
    portcullis_core::now() as i64
}

#[cfg(test)]
mod tests;
