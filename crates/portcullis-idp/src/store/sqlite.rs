//! The SQLite store (the default): one file in the state dir, WAL, `synchronous=FULL`. Every call
//! runs on the blocking pool. The [`Store`] methods below only move their arguments there; the
//! statements live in a module per domain.

use super::sessions::{EndRecord, SessionStore, SignInRecord};
use super::{
    CodeRecord, GroupRecord, KeyRecord, Put, RefreshRecord, RefreshUse, Reservation, Store,
    StoreFuture, UserRecord,
};

mod catalog;
mod connection;
mod grants;
mod groups;
mod limits;
mod sessions;
mod tickets;
mod users;

pub use connection::SqliteStore;

use connection::owned;

impl Store for SqliteStore {
    // Client secrets, documents and signing keys (`catalog`).

    fn client_secret_or_insert<'a>(
        &'a self,
        pool: &'a str,
        client: &'a str,
        make: String,
    ) -> StoreFuture<'a, String> {
        let [pool, client] = owned([pool, client]);
        self.run(move |c| catalog::client_secret_or_insert(c, pool, client, make))
    }
    fn set_client_secret<'a>(
        &'a self,
        pool: &'a str,
        client: &'a str,
        secret: String,
    ) -> StoreFuture<'a, ()> {
        let [pool, client] = owned([pool, client]);
        self.run(move |c| catalog::set_client_secret(c, pool, client, secret))
    }
    fn put_object<'a>(
        &'a self,
        pool: &'a str,
        kind: &'a str,
        id: &'a str,
        body: String,
        mode: Put,
    ) -> StoreFuture<'a, bool> {
        let [pool, kind, id] = owned([pool, kind, id]);
        self.run(move |c| catalog::put_object(c, pool, kind, id, body, mode))
    }
    fn object<'a>(
        &'a self,
        pool: &'a str,
        kind: &'a str,
        id: &'a str,
    ) -> StoreFuture<'a, Option<String>> {
        let [pool, kind, id] = owned([pool, kind, id]);
        self.run(move |c| catalog::object(c, pool, kind, id))
    }
    fn objects<'a>(
        &'a self,
        pool: &'a str,
        kind: &'a str,
    ) -> StoreFuture<'a, Vec<(String, String)>> {
        let [pool, kind] = owned([pool, kind]);
        self.run(move |c| catalog::objects(c, pool, kind))
    }
    fn delete_object<'a>(
        &'a self,
        pool: &'a str,
        kind: &'a str,
        id: &'a str,
    ) -> StoreFuture<'a, bool> {
        let [pool, kind, id] = owned([pool, kind, id]);
        self.run(move |c| catalog::delete_object(c, pool, kind, id))
    }
    fn signing_keys<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
    ) -> StoreFuture<'a, Vec<KeyRecord>> {
        let [pool, purpose] = owned([pool, purpose]);
        self.run(move |c| catalog::signing_keys(c, pool, purpose))
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
        let [pool, purpose] = owned([pool, purpose]);
        self.run(move |c| {
            catalog::insert_signing_key(c, pool, purpose, generation, kid, pkcs8, activates_at)
        })
    }

    // Users (`users`).

    fn insert_user<'a>(&'a self, pool: &'a str, user: UserRecord) -> StoreFuture<'a, bool> {
        let pool = pool.to_string();
        self.run(move |c| users::insert(c, pool, user))
    }
    fn set_password<'a>(
        &'a self,
        pool: &'a str,
        username: &'a str,
        hash: String,
        status: &'a str,
    ) -> StoreFuture<'a, bool> {
        let [pool, username, status] = owned([pool, username, status]);
        self.run(move |c| users::set_password(c, pool, username, hash, status))
    }
    fn user_by_username<'a>(
        &'a self,
        pool: &'a str,
        username: &'a str,
    ) -> StoreFuture<'a, Option<UserRecord>> {
        let [pool, username] = owned([pool, username]);
        self.run(move |c| users::by_username(c, pool, username))
    }
    fn user_by_sub<'a>(
        &'a self,
        pool: &'a str,
        sub: &'a str,
    ) -> StoreFuture<'a, Option<UserRecord>> {
        let [pool, sub] = owned([pool, sub]);
        self.run(move |c| users::by_sub(c, pool, sub))
    }
    fn save_user<'a>(&'a self, pool: &'a str, user: UserRecord) -> StoreFuture<'a, bool> {
        let pool = pool.to_string();
        self.run(move |c| users::save(c, pool, user))
    }
    fn delete_user<'a>(&'a self, pool: &'a str, sub: &'a str) -> StoreFuture<'a, bool> {
        let [pool, sub] = owned([pool, sub]);
        self.run(move |c| users::delete(c, pool, sub))
    }
    fn list_users<'a>(
        &'a self,
        pool: &'a str,
        after: Option<String>,
        limit: i64,
    ) -> StoreFuture<'a, Vec<UserRecord>> {
        let pool = pool.to_string();
        self.run(move |c| users::list(c, pool, after, limit))
    }
    fn revoke_user_tokens<'a>(&'a self, pool: &'a str, sub: &'a str) -> StoreFuture<'a, u64> {
        let [pool, sub] = owned([pool, sub]);
        self.run(move |c| users::revoke_tokens(c, pool, sub))
    }
    fn count_users<'a>(&'a self, pool: &'a str) -> StoreFuture<'a, i64> {
        let pool = pool.to_string();
        self.run(move |c| users::count(c, pool))
    }

    // Groups (`groups`).

    fn upsert_group<'a>(
        &'a self,
        pool: &'a str,
        name: &'a str,
        precedence: Option<i64>,
        description: Option<&'a str>,
    ) -> StoreFuture<'a, ()> {
        let [pool, name] = owned([pool, name]);
        let description = description.map(str::to_string);
        self.run(move |c| groups::upsert(c, pool, name, precedence, description))
    }
    fn add_to_group<'a>(
        &'a self,
        pool: &'a str,
        group: &'a str,
        sub: &'a str,
    ) -> StoreFuture<'a, ()> {
        self.set_member(pool, group, sub, true)
    }
    fn groups_of<'a>(&'a self, pool: &'a str, sub: &'a str) -> StoreFuture<'a, Vec<String>> {
        let [pool, sub] = owned([pool, sub]);
        self.run(move |c| groups::of_user(c, pool, sub))
    }
    fn groups<'a>(&'a self, pool: &'a str) -> StoreFuture<'a, Vec<GroupRecord>> {
        let pool = pool.to_string();
        self.run(move |c| groups::all(c, pool))
    }
    fn insert_group<'a>(&'a self, pool: &'a str, group: GroupRecord) -> StoreFuture<'a, bool> {
        let pool = pool.to_string();
        self.run(move |c| groups::insert(c, pool, group))
    }
    fn delete_group<'a>(&'a self, pool: &'a str, name: &'a str) -> StoreFuture<'a, bool> {
        let [pool, name] = owned([pool, name]);
        self.run(move |c| groups::delete(c, pool, name))
    }
    fn remove_from_group<'a>(
        &'a self,
        pool: &'a str,
        group: &'a str,
        sub: &'a str,
    ) -> StoreFuture<'a, ()> {
        self.set_member(pool, group, sub, false)
    }
    fn group_members<'a>(&'a self, pool: &'a str, group: &'a str) -> StoreFuture<'a, Vec<String>> {
        let [pool, group] = owned([pool, group]);
        self.run(move |c| groups::members(c, pool, group))
    }

    // Codes, refresh tokens and their families, hosted-UI sessions (`grants`).

    fn insert_code<'a>(
        &'a self,
        pool: &'a str,
        code_hash: String,
        rec: CodeRecord,
        expires_at: i64,
    ) -> StoreFuture<'a, ()> {
        let pool = pool.to_string();
        self.run(move |c| grants::insert_code(c, pool, code_hash, rec, expires_at))
    }
    fn take_code<'a>(
        &'a self,
        pool: &'a str,
        code_hash: String,
        origin_jti: &'a str,
    ) -> StoreFuture<'a, Option<CodeRecord>> {
        let [pool, origin] = owned([pool, origin_jti]);
        self.run(move |c| grants::take_code(c, pool, code_hash, origin))
    }
    fn spent_code_family<'a>(
        &'a self,
        pool: &'a str,
        code_hash: String,
    ) -> StoreFuture<'a, Option<String>> {
        let pool = pool.to_string();
        self.run(move |c| grants::spent_code_family(c, pool, code_hash))
    }
    fn insert_refresh<'a>(
        &'a self,
        pool: &'a str,
        token_hash: String,
        rec: RefreshRecord,
        expires_at: i64,
    ) -> StoreFuture<'a, ()> {
        let pool = pool.to_string();
        self.run(move |c| grants::insert_refresh(c, pool, token_hash, rec, expires_at))
    }
    fn refresh<'a>(
        &'a self,
        pool: &'a str,
        token_hash: String,
    ) -> StoreFuture<'a, Option<RefreshRecord>> {
        let pool = pool.to_string();
        self.run(move |c| grants::refresh(c, pool, token_hash))
    }
    fn use_refresh<'a>(
        &'a self,
        pool: &'a str,
        token_hash: String,
        client: &'a str,
        now: i64,
        retire_until: Option<i64>,
    ) -> StoreFuture<'a, RefreshUse> {
        let [pool, client] = owned([pool, client]);
        self.run(move |c| grants::use_refresh(c, pool, token_hash, client, now, retire_until))
    }
    fn revoke_refresh<'a>(
        &'a self,
        pool: &'a str,
        token_hash: String,
        client: &'a str,
    ) -> StoreFuture<'a, Option<String>> {
        let [pool, client] = owned([pool, client]);
        self.run(move |c| grants::revoke_refresh(c, pool, token_hash, client))
    }
    fn revoke_family<'a>(&'a self, pool: &'a str, origin_jti: &'a str) -> StoreFuture<'a, ()> {
        let [pool, origin] = owned([pool, origin_jti]);
        self.run(move |c| {
            let tx = c.transaction()?;
            grants::revoke_family_in(&tx, &pool, &origin, super::now())?;
            tx.commit()
        })
    }
    fn origin_revoked<'a>(&'a self, pool: &'a str, origin_jti: &'a str) -> StoreFuture<'a, bool> {
        let [pool, origin] = owned([pool, origin_jti]);
        self.run(move |c| grants::origin_revoked(c, pool, origin))
    }
    fn insert_session<'a>(
        &'a self,
        pool: &'a str,
        id_hash: String,
        sub: &'a str,
        auth_time: i64,
        expires_at: i64,
    ) -> StoreFuture<'a, ()> {
        let [pool, sub] = owned([pool, sub]);
        self.run(move |c| grants::insert_session(c, pool, id_hash, sub, auth_time, expires_at))
    }
    fn session<'a>(
        &'a self,
        pool: &'a str,
        id_hash: String,
    ) -> StoreFuture<'a, Option<(String, i64)>> {
        let pool = pool.to_string();
        self.run(move |c| grants::session(c, pool, id_hash))
    }
    fn delete_session<'a>(&'a self, pool: &'a str, id_hash: String) -> StoreFuture<'a, ()> {
        let pool = pool.to_string();
        self.run(move |c| grants::delete_session(c, pool, id_hash))
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
        let [pool, username] = owned([pool, username]);
        self.run(move |c| {
            limits::reserve_sign_in(c, pool, username, now, reset_after, max_lock, lease)
        })
    }
    fn release_sign_in<'a>(&'a self, pool: &'a str, username: &'a str) -> StoreFuture<'a, ()> {
        let [pool, username] = owned([pool, username]);
        self.run(move |c| limits::release_sign_in(c, pool, username))
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
        let tat = self.bucket(pool, key);
        Box::pin(async move { Ok(tat) })
    }
    fn sweep_limits<'a>(
        &'a self,
        pool: &'a str,
        now_ms: i64,
        reset_after: i64,
    ) -> StoreFuture<'a, ()> {
        self.forget_full_buckets(pool, now_ms);
        let pool = pool.to_string();
        self.run(move |c| limits::sweep_failures(c, pool, now_ms / 1000, reset_after))
    }
    fn locked_until<'a>(&'a self, pool: &'a str, username: &'a str) -> StoreFuture<'a, i64> {
        let [pool, username] = owned([pool, username]);
        self.run(move |c| limits::locked_until(c, &pool, &username))
    }
    fn clear_failures<'a>(&'a self, pool: &'a str, username: &'a str) -> StoreFuture<'a, ()> {
        let [pool, username] = owned([pool, username]);
        self.run(move |c| limits::clear_failures(c, pool, username))
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
        let [pool, purpose, key] = owned([pool, purpose, key]);
        self.run(move |c| tickets::put(c, pool, purpose, key, value, expires_at))
    }
    fn ticket<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        key: &'a str,
    ) -> StoreFuture<'a, Option<(String, i64)>> {
        let [pool, purpose, key] = owned([pool, purpose, key]);
        self.run(move |c| tickets::get(c, pool, purpose, key))
    }
    fn spend_ticket_attempt<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        key: &'a str,
        max: i64,
    ) -> StoreFuture<'a, Option<(String, i64)>> {
        let [pool, purpose, key] = owned([pool, purpose, key]);
        self.run(move |c| tickets::spend_attempt(c, pool, purpose, key, max))
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
        let [pool, purpose, key] = owned([pool, purpose, key]);
        self.run(move |c| tickets::reserve_attempt(c, pool, purpose, key, max, window, now))
    }
    fn advance_ticket<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        key: &'a str,
        value: i64,
        expires_at: i64,
    ) -> StoreFuture<'a, bool> {
        let [pool, purpose, key] = owned([pool, purpose, key]);
        self.run(move |c| tickets::advance(c, pool, purpose, key, value, expires_at))
    }
    fn take_ticket<'a>(
        &'a self,
        pool: &'a str,
        purpose: &'a str,
        key: &'a str,
    ) -> StoreFuture<'a, Option<String>> {
        let [pool, purpose, key] = owned([pool, purpose, key]);
        self.run(move |c| tickets::take(c, pool, purpose, key))
    }
}

impl SessionStore for SqliteStore {
    fn start_sign_in<'a>(
        &'a self,
        pool: &'a str,
        rec: &'a SignInRecord,
        now: i64,
    ) -> StoreFuture<'a, ()> {
        let (pool, rec) = (pool.to_string(), rec.clone());
        self.run(move |c| sessions::start(c, pool, rec, now))
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
        let [pool, sid, client, origin] = owned([pool, sid, client, origin_jti]);
        self.run(move |c| sessions::add_grant(c, pool, sid, client, origin, expires_at, now))
    }
    fn sign_in_session<'a>(
        &'a self,
        pool: &'a str,
        sid: &'a str,
        now: i64,
    ) -> StoreFuture<'a, Option<SignInRecord>> {
        let [pool, sid] = owned([pool, sid]);
        self.run(move |c| sessions::session_in(c, super::sql::SIGN_IN, &pool, &sid, now))
    }
    fn sid_of_family<'a>(
        &'a self,
        pool: &'a str,
        origin_jti: &'a str,
    ) -> StoreFuture<'a, Option<String>> {
        let [pool, origin] = owned([pool, origin_jti]);
        self.run(move |c| sessions::sid_of_family(c, pool, origin))
    }
    fn end_sign_in<'a>(
        &'a self,
        pool: &'a str,
        sid: &'a str,
        now: i64,
    ) -> StoreFuture<'a, Option<SignInRecord>> {
        self.end_session(pool, sid, now)
    }
    fn end_user_sign_ins<'a>(
        &'a self,
        pool: &'a str,
        sub: &'a str,
        now: i64,
        keep_until: i64,
    ) -> StoreFuture<'a, Vec<SignInRecord>> {
        let [pool, sub] = owned([pool, sub]);
        self.run(move |c| sessions::end_user(c, pool, sub, now, keep_until))
    }
    fn ended_sign_ins<'a>(&'a self, pool: &'a str, now: i64) -> StoreFuture<'a, Vec<EndRecord>> {
        let pool = pool.to_string();
        self.run(move |c| sessions::ended(c, pool, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
