//! Sign-in sessions in the store: each sign-in's `sid`, the token families (and so the clients)
//! it gave tokens to, when it ended, and a log of ended sessions that other nodes and late
//! subscribers read.

use super::StoreFuture;
use crate::domain::revocation::{Feed, SessionEnded};
use std::sync::Weak;

/// The moment recorded for a user-wide end made at `now` (seconds): one second earlier. Tokens say
/// when a session began only to the second, so a user-wide end at `now` would also refuse a
/// session begun later in that same second (a sign-in right after a password reset). Sessions
/// begun in that second before the end are ended by their own `sid` rows, written beside it.
pub fn user_wide_at(now: i64) -> i64 {
    now.saturating_sub(1)
}

/// One sign-in session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInRecord {
    /// The `sid` claim (random, 192 bits).
    pub sid: String,
    /// The user.
    pub sub: String,
    /// When the user authenticated (`auth_time`).
    pub started_at: i64,
    /// When the last token it gave stops living (its longest refresh-token validity).
    pub expires_at: i64,
    /// When it ended, if it did.
    pub ended_at: Option<i64>,
    /// The clients that received tokens in it (sorted, distinct).
    pub clients: Vec<String>,
}

/// A `sign_in_sessions` row as both stores read it: `sid`, `sub`, `started_at`, `expires_at`,
/// `ended_at`.
pub(crate) type SessionRow = (String, String, i64, i64, Option<i64>);

impl SignInRecord {
    /// The record of a session row and the clients given tokens in it.
    pub(crate) fn from_row(row: SessionRow, clients: Vec<String>) -> SignInRecord {
        let (sid, sub, started_at, expires_at, ended_at) = row;
        SignInRecord {
            sid,
            sub,
            started_at,
            expires_at,
            ended_at,
            clients,
        }
    }
}

/// One entry of the log of ended sessions: one session (`sid`), or every session of `sub` that
/// began at or before `at` (`sid: None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndRecord {
    /// The ended session, or `None` for all of the user's.
    pub sid: Option<String>,
    /// The user.
    pub sub: String,
    /// When it ended (pool clock).
    pub at: i64,
}

/// How the store keeps sign-in sessions. Ending is atomic and happens once: of concurrent ends of
/// one session exactly one returns it (and so publishes it and sends back-channel logouts).
pub trait SessionStore: Send + Sync {
    /// Records a new sign-in session (and forgets this user's expired ones).
    fn start_sign_in<'a>(
        &'a self,
        pool: &'a str,
        rec: &'a SignInRecord,
        now: i64,
    ) -> StoreFuture<'a, ()>;
    /// Records that the token family `origin_jti` was given to `client` in session `sid`, and
    /// extends the session to `expires_at` when that is later; `false` (nothing recorded) when the
    /// session is unknown, ended or expired. Serialised with [`SessionStore::end_sign_in`], so a
    /// family recorded is always revoked by a later end.
    fn add_sign_in_grant<'a>(
        &'a self,
        pool: &'a str,
        sid: &'a str,
        client: &'a str,
        origin_jti: &'a str,
        expires_at: i64,
        now: i64,
    ) -> StoreFuture<'a, bool>;
    /// A session, ended or not (`None` when unknown or expired at `now`).
    fn sign_in_session<'a>(
        &'a self,
        pool: &'a str,
        sid: &'a str,
        now: i64,
    ) -> StoreFuture<'a, Option<SignInRecord>>;
    /// The session a token family was given in.
    fn sid_of_family<'a>(
        &'a self,
        pool: &'a str,
        origin_jti: &'a str,
    ) -> StoreFuture<'a, Option<String>>;
    /// Ends a live session at `now`: marks it, revokes every token family given in it, logs the
    /// end (kept until the session's expiry) and tells other nodes. Returns the session when this
    /// call ended it; `None` when it was unknown, expired or ended already.
    fn end_sign_in<'a>(
        &'a self,
        pool: &'a str,
        sid: &'a str,
        now: i64,
    ) -> StoreFuture<'a, Option<SignInRecord>>;
    /// Ends every live session of `sub` at `now` as [`SessionStore::end_sign_in`] does, and logs
    /// one user-wide end (`sid: None`) kept until `keep_until` (tokens given before sessions
    /// were recorded have no `sid`). Returns the sessions this call ended.
    fn end_user_sign_ins<'a>(
        &'a self,
        pool: &'a str,
        sub: &'a str,
        now: i64,
        keep_until: i64,
    ) -> StoreFuture<'a, Vec<SignInRecord>>;
    /// The ends logged whose tokens may still live at `now`, oldest first; forgets the others,
    /// and sessions expired at `now`.
    fn ended_sign_ins<'a>(&'a self, pool: &'a str, now: i64) -> StoreFuture<'a, Vec<EndRecord>>;
    /// Publishes on `feed` the ends other nodes log for `pool` (PostgreSQL: `LISTEN`; a store
    /// that serves one process has nothing to do: the pool publishes its own ends).
    fn watch_session_ends(&self, _pool: &str, _issuer: &str, _feed: Weak<Feed>) {}
    /// Logs a session a load balancer ended on a back-channel logout token it validated, kept
    /// until `keep_until`, and tells other nodes (PostgreSQL; a one-process store has no others).
    fn log_logout_end<'a>(
        &'a self,
        _end: &'a SessionEnded,
        _keep_until: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
    /// The logout-token ends logged by any node that are kept at `now`.
    fn logout_ends<'a>(&'a self, _now: i64) -> StoreFuture<'a, Vec<SessionEnded>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    /// Publishes on `feed` the logout-token ends other nodes log (PostgreSQL: `LISTEN`).
    fn watch_logout_ends(&self, _feed: Weak<Feed>) {}
}

/// The `pool_id` prefix of logout-token ends in the end log (a space: no pool id has one); the
/// issuer follows it.
pub const LOGOUT_END_PREFIX: &str = "logout-token ";

/// Where PostgreSQL announces ended sessions (`NOTIFY`), for every node's `LISTEN`.
pub const NOTIFY_CHANNEL: &str = "portcullis_session_ends";
