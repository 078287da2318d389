//! The PostgreSQL store: several IdP nodes on one database act as one pool. Every race between
//! nodes is settled by one statement (`UPDATE … RETURNING`, `INSERT … ON CONFLICT`). The [`Store`]
//! methods below only name the module of their domain, which runs the statements.

use super::sessions::{EndRecord, LOGOUT_END_PREFIX, SessionStore, SignInRecord};
use super::{
    CodeRecord, GroupRecord, KeyRecord, Put, RefreshRecord, RefreshUse, Reservation, Store,
    StoreFuture, UserRecord, now,
};
use crate::domain::revocation::{Feed, SessionEnded};
use std::sync::Weak;

mod catalog;
mod connection;
mod grants;
mod groups;
mod limits;
mod listen;
mod sessions;
mod tickets;
mod users;

pub use connection::PgStore;
pub use listen::ListenerState;

impl Store for PgStore {
    // Client secrets, documents and signing keys (`catalog`).

    fn client_secret_or_insert<'a>(
        &'a self,
        pool: &'a str,
        client: &'a str,
        make: String,
    ) -> StoreFuture<'a, String> {
        Box::pin(catalog::client_secret_or_insert(self, pool, client, make))
    }
    fn set_client_secret<'a>(
        &'a self,
        pool: &'a str,
        client: &'a str,
        secret: String,
    ) -> StoreFuture<'a, ()> {
        Box::pin(catalog::set_client_secret(self, pool, client, secret))
    }
    fn put_object<'a>(
        &'a self,
        pool: &'a str,
        kind: &'a str,
        id: &'a str,
        body: String,
        mode: Put,
    ) -> StoreFuture<'a, bool> {
        Box::pin(catalog::put_object(self, pool, kind, id, body, mode))
    }
    fn object<'a>(
        &'a self,
        pool: &'a str,
        kind: &'a str,
        id: &'a str,
    ) -> StoreFuture<'a, Option<String>> {
        Box::pin(catalog::object(self, pool, kind, id))
    }
    fn objects<'a>(
        &'a self,
        pool: &'a str,
        kind: &'a str,
    ) -> StoreFuture<'a, Vec<(String, String)>> {
        Box::pin(catalog::objects(self, pool, kind))
    }
    fn delete_object<'a>(
        &'a self,
        pool: &'a str,
        kind: &'a str,
        id: &'a str,
    ) -> StoreFuture<'a, bool> {
        Box::pin(catalog::delete_object(self, pool, kind, id))
    }
    fn signing_keys<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
    ) -> StoreFuture<'a, Vec<KeyRecord>> {
        Box::pin(catalog::signing_keys(self, pool, purpose))
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
        Box::pin(catalog::insert_signing_key(
            self,
            pool,
            purpose,
            generation,
            kid,
            pkcs8,
            activates_at,
        ))
    }

    // Users (`users`).

    fn insert_user<'a>(&'a self, pool: &'a str, user: UserRecord) -> StoreFuture<'a, bool> {
        Box::pin(users::insert(self, pool, user))
    }
    fn set_password<'a>(
        &'a self,
        pool: &'a str,
        username: &'a str,
        hash: String,
        status: &'a str,
    ) -> StoreFuture<'a, bool> {
        Box::pin(users::set_password(self, pool, username, hash, status))
    }
    fn user_by_username<'a>(
        &'a self,
        pool: &'a str,
        username: &'a str,
    ) -> StoreFuture<'a, Option<UserRecord>> {
        Box::pin(users::by_username(self, pool, username))
    }
    fn user_by_sub<'a>(
        &'a self,
        pool: &'a str,
        sub: &'a str,
    ) -> StoreFuture<'a, Option<UserRecord>> {
        Box::pin(users::by_sub(self, pool, sub))
    }
    fn save_user<'a>(&'a self, pool: &'a str, user: UserRecord) -> StoreFuture<'a, bool> {
        Box::pin(users::save(self, pool, user))
    }
    fn delete_user<'a>(&'a self, pool: &'a str, sub: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(users::delete(self, pool, sub))
    }
    fn list_users<'a>(
        &'a self,
        pool: &'a str,
        after: Option<String>,
        limit: i64,
    ) -> StoreFuture<'a, Vec<UserRecord>> {
        Box::pin(users::list(self, pool, after, limit))
    }
    fn revoke_user_tokens<'a>(&'a self, pool: &'a str, sub: &'a str) -> StoreFuture<'a, u64> {
        Box::pin(users::revoke_tokens(self, pool, sub))
    }
    fn count_users<'a>(&'a self, pool: &'a str) -> StoreFuture<'a, i64> {
        Box::pin(users::count(self, pool))
    }

    // Groups (`groups`).

    fn upsert_group<'a>(
        &'a self,
        pool: &'a str,
        name: &'a str,
        precedence: Option<i64>,
        description: Option<&'a str>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(groups::upsert(self, pool, name, precedence, description))
    }
    fn add_to_group<'a>(
        &'a self,
        pool: &'a str,
        group: &'a str,
        sub: &'a str,
    ) -> StoreFuture<'a, ()> {
        Box::pin(groups::add_member(self, pool, group, sub))
    }
    fn groups_of<'a>(&'a self, pool: &'a str, sub: &'a str) -> StoreFuture<'a, Vec<String>> {
        Box::pin(groups::of_user(self, pool, sub))
    }
    fn groups<'a>(&'a self, pool: &'a str) -> StoreFuture<'a, Vec<GroupRecord>> {
        Box::pin(groups::all(self, pool))
    }
    fn insert_group<'a>(&'a self, pool: &'a str, group: GroupRecord) -> StoreFuture<'a, bool> {
        Box::pin(groups::insert(self, pool, group))
    }
    fn delete_group<'a>(&'a self, pool: &'a str, name: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(groups::delete(self, pool, name))
    }
    fn remove_from_group<'a>(
        &'a self,
        pool: &'a str,
        group: &'a str,
        sub: &'a str,
    ) -> StoreFuture<'a, ()> {
        Box::pin(groups::remove_member(self, pool, group, sub))
    }
    fn group_members<'a>(&'a self, pool: &'a str, group: &'a str) -> StoreFuture<'a, Vec<String>> {
        Box::pin(groups::members(self, pool, group))
    }

    // Codes, refresh tokens and their families, hosted-UI sessions (`grants`).

    fn insert_code<'a>(
        &'a self,
        pool: &'a str,
        code_hash: String,
        rec: CodeRecord,
        expires_at: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(grants::insert_code(self, pool, code_hash, rec, expires_at))
    }
    fn take_code<'a>(
        &'a self,
        pool: &'a str,
        code_hash: String,
        origin_jti: &'a str,
    ) -> StoreFuture<'a, Option<CodeRecord>> {
        Box::pin(grants::take_code(self, pool, code_hash, origin_jti))
    }
    fn spent_code_family<'a>(
        &'a self,
        pool: &'a str,
        code_hash: String,
    ) -> StoreFuture<'a, Option<String>> {
        Box::pin(grants::spent_code_family(self, pool, code_hash))
    }
    fn insert_refresh<'a>(
        &'a self,
        pool: &'a str,
        token_hash: String,
        rec: RefreshRecord,
        expires_at: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(grants::insert_refresh(
            self, pool, token_hash, rec, expires_at,
        ))
    }
    fn refresh<'a>(
        &'a self,
        pool: &'a str,
        token_hash: String,
    ) -> StoreFuture<'a, Option<RefreshRecord>> {
        Box::pin(grants::refresh(self, pool, token_hash))
    }
    fn use_refresh<'a>(
        &'a self,
        pool: &'a str,
        token_hash: String,
        client: &'a str,
        now: i64,
        retire_until: Option<i64>,
    ) -> StoreFuture<'a, RefreshUse> {
        Box::pin(grants::use_refresh(
            self,
            pool,
            token_hash,
            client,
            now,
            retire_until,
        ))
    }
    fn revoke_refresh<'a>(
        &'a self,
        pool: &'a str,
        token_hash: String,
        client: &'a str,
    ) -> StoreFuture<'a, Option<String>> {
        Box::pin(grants::revoke_refresh(self, pool, token_hash, client))
    }
    fn revoke_family<'a>(&'a self, pool: &'a str, origin_jti: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(grants::revoke_family(self, pool, origin_jti, now()))
    }
    fn origin_revoked<'a>(&'a self, pool: &'a str, origin_jti: &'a str) -> StoreFuture<'a, bool> {
        Box::pin(grants::origin_revoked(self, pool, origin_jti))
    }
    fn insert_session<'a>(
        &'a self,
        pool: &'a str,
        id_hash: String,
        sub: &'a str,
        auth_time: i64,
        expires_at: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(grants::insert_session(
            self, pool, id_hash, sub, auth_time, expires_at,
        ))
    }
    fn session<'a>(
        &'a self,
        pool: &'a str,
        id_hash: String,
    ) -> StoreFuture<'a, Option<(String, i64)>> {
        Box::pin(grants::session(self, pool, id_hash))
    }
    fn delete_session<'a>(&'a self, pool: &'a str, id_hash: String) -> StoreFuture<'a, ()> {
        Box::pin(grants::delete_session(self, pool, id_hash))
    }

    // Failed sign-ins and rate limits (`limits`).

    fn reserve_sign_in<'a>(
        &'a self,
        pool: &'a str,
        username: &'a str,
        now: i64,
        reset_after: i64,
        max_lock: i64,
        lease: i64,
    ) -> StoreFuture<'a, Reservation> {
        Box::pin(limits::reserve_sign_in(
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
        Box::pin(limits::release_sign_in(self, pool, username))
    }
    fn take_token<'a>(
        &'a self,
        pool: &'a str,
        key: &'a str,
        now_ms: i64,
        interval_ms: i64,
        burst: i64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(limits::take_token(
            self,
            pool,
            key,
            now_ms,
            interval_ms,
            burst,
        ))
    }
    fn bucket_tat<'a>(&'a self, pool: &'a str, key: &'a str) -> StoreFuture<'a, Option<i64>> {
        Box::pin(limits::bucket_tat(self, pool, key))
    }
    fn sweep_limits<'a>(
        &'a self,
        pool: &'a str,
        now_ms: i64,
        reset_after: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(limits::sweep(self, pool, now_ms, reset_after))
    }
    fn locked_until<'a>(&'a self, pool: &'a str, username: &'a str) -> StoreFuture<'a, i64> {
        Box::pin(limits::locked_until(self, pool, username))
    }
    fn clear_failures<'a>(&'a self, pool: &'a str, username: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(limits::clear_failures(self, pool, username))
    }

    // One-time tickets (`tickets`).

    fn put_ticket<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        key: &'a str,
        value: String,
        expires_at: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(tickets::put(self, pool, purpose, key, value, expires_at))
    }
    fn ticket<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        key: &'a str,
    ) -> StoreFuture<'a, Option<(String, i64)>> {
        Box::pin(tickets::get(self, pool, purpose, key))
    }
    fn spend_ticket_attempt<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        key: &'a str,
        max: i64,
    ) -> StoreFuture<'a, Option<(String, i64)>> {
        Box::pin(tickets::spend_attempt(self, pool, purpose, key, max))
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
        Box::pin(tickets::reserve_attempt(
            self, pool, purpose, key, max, window, now,
        ))
    }
    fn advance_ticket<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        key: &'a str,
        value: i64,
        expires_at: i64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(tickets::advance(
            self, pool, purpose, key, value, expires_at,
        ))
    }
    fn take_ticket<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        key: &'a str,
    ) -> StoreFuture<'a, Option<String>> {
        Box::pin(tickets::take(self, pool, purpose, key))
    }
}

impl SessionStore for PgStore {
    fn start_sign_in<'a>(
        &'a self,
        pool: &'a str,
        rec: &'a SignInRecord,
        now: i64,
    ) -> StoreFuture<'a, ()> {
        Box::pin(sessions::start(self, pool, rec, now))
    }
    fn add_sign_in_grant<'a>(
        &'a self,
        pool: &'a str,
        sid: &'a str,
        client: &'a str,
        origin_jti: &'a str,
        expires_at: i64,
        now: i64,
    ) -> StoreFuture<'a, bool> {
        Box::pin(sessions::add_grant(
            self, pool, sid, client, origin_jti, expires_at, now,
        ))
    }
    fn sign_in_session<'a>(
        &'a self,
        pool: &'a str,
        sid: &'a str,
        now: i64,
    ) -> StoreFuture<'a, Option<SignInRecord>> {
        Box::pin(sessions::read(self, pool, sid, now))
    }
    fn sid_of_family<'a>(
        &'a self,
        pool: &'a str,
        origin_jti: &'a str,
    ) -> StoreFuture<'a, Option<String>> {
        Box::pin(sessions::sid_of_family(self, pool, origin_jti))
    }
    fn end_sign_in<'a>(
        &'a self,
        pool: &'a str,
        sid: &'a str,
        now: i64,
    ) -> StoreFuture<'a, Option<SignInRecord>> {
        Box::pin(sessions::end(self, pool, sid, now))
    }
    fn end_user_sign_ins<'a>(
        &'a self,
        pool: &'a str,
        sub: &'a str,
        now: i64,
        keep_until: i64,
    ) -> StoreFuture<'a, Vec<SignInRecord>> {
        Box::pin(sessions::end_user(self, pool, sub, now, keep_until))
    }
    fn ended_sign_ins<'a>(&'a self, pool: &'a str, now: i64) -> StoreFuture<'a, Vec<EndRecord>> {
        Box::pin(sessions::ended(self, pool, now))
    }
    fn log_logout_end<'a>(&'a self, end: &'a SessionEnded, keep_until: i64) -> StoreFuture<'a, ()> {
        Box::pin(sessions::log_logout_end(self, end, keep_until))
    }
    fn logout_ends<'a>(&'a self, now: i64) -> StoreFuture<'a, Vec<SessionEnded>> {
        Box::pin(sessions::logout_ends(self, now))
    }
    fn watch_logout_ends(&self, feed: Weak<Feed>) {
        listen::Listener::watch(
            &self.listener,
            &self.config,
            &self.node,
            LOGOUT_END_PREFIX,
            "",
            feed,
        );
    }
    fn watch_session_ends(&self, pool: &str, issuer: &str, feed: Weak<Feed>) {
        listen::Listener::watch(&self.listener, &self.config, &self.node, pool, issuer, feed);
    }
}
