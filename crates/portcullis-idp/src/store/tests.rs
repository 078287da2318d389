//! The behaviour both stores promise, checked on each: SQLite in memory and PostgreSQL on
//! 127.0.0.1:5432 (a fresh database per test).

use super::sessions::{EndRecord, SignInRecord};
use super::{CodeRecord, PgStore, RefreshRecord, RefreshUse, SqliteStore, Store, UserRecord, now};

/// The administrative database fresh test databases are created from.
const PG_ADMIN: &str = "postgres://root@127.0.0.1:5432/postgres";

/// Runs `case` on a fresh store of each kind.
macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test]
            async fn sqlite() {
                super::$case(super::SqliteStore::in_memory().unwrap()).await;
            }
            #[tokio::test]
            async fn postgres() {
                let db = super::Database::create().await;
                super::$case(super::PgStore::connect(&db.url()).await.unwrap()).await;
                db.drop_it().await;
            }
        }
    )*};
}

on_both_stores!(
    codes_are_single_use_and_expire,
    a_rotated_refresh_token_reused_after_its_grace_revokes_the_family,
    ticket_attempts_are_reserved_atomically_and_budgets_survive_reissue,
    a_reservation_is_counted_before_the_check_and_excludes_others,
    client_secret_seeding_is_idempotent,
    injection_in_values_is_inert,
    a_session_ends_once_and_takes_its_families_and_later_grants_with_it,
    a_user_wide_end_ends_only_that_users_live_sessions_and_logs_each,
);

/// A PostgreSQL database of one test.
struct Database {
    name: String,
}

impl Database {
    async fn create() -> Database {
        let name = format!("portcullis_store_{}", uuid::Uuid::new_v4().simple());
        Self::admin(&format!("CREATE DATABASE {name}")).await;
        Database { name }
    }

    fn url(&self) -> String {
        format!("postgres://root@127.0.0.1:5432/{}", self.name)
    }

    async fn drop_it(self) {
        Self::admin(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .await;
    }

    async fn admin(sql: &str) {
        let (c, conn) = tokio_postgres::connect(PG_ADMIN, tokio_postgres::NoTls)
            .await
            .expect("PostgreSQL on 127.0.0.1:5432 (run .ci/run or start it)");
        tokio::spawn(conn);
        c.batch_execute(sql).await.unwrap();
    }
}

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

fn session(sid: &str, sub: &str, expires_at: i64) -> SignInRecord {
    SignInRecord {
        sid: sid.into(),
        sub: sub.into(),
        started_at: 100,
        expires_at,
        ended_at: None,
        clients: Vec::new(),
    }
}

async fn codes_are_single_use_and_expire<S: Store + Clone + 'static>(s: S) {
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

async fn a_rotated_refresh_token_reused_after_its_grace_revokes_the_family<
    S: Store + Clone + 'static,
>(
    s: S,
) {
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

async fn ticket_attempts_are_reserved_atomically_and_budgets_survive_reissue<
    S: Store + Clone + 'static,
>(
    s: S,
) {
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

async fn a_reservation_is_counted_before_the_check_and_excludes_others<
    S: Store + Clone + 'static,
>(
    s: S,
) {
    use crate::store::Reservation::*;
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

async fn client_secret_seeding_is_idempotent<S: Store + Clone + 'static>(s: S) {
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

async fn injection_in_values_is_inert<S: Store + Clone + 'static>(s: S) {
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

async fn a_session_ends_once_and_takes_its_families_and_later_grants_with_it<
    S: Store + Clone + 'static,
>(
    s: S,
) {
    let now = 1_000;
    s.start_sign_in("p", &session("sid1", "u", now + 60), now)
        .await
        .unwrap();
    assert!(
        s.add_sign_in_grant("p", "sid1", "web-b", "fam-b", now + 3600, now)
            .await
            .unwrap()
    );
    assert!(
        s.add_sign_in_grant("p", "sid1", "web-a", "fam-a", now + 600, now)
            .await
            .unwrap()
    );
    let rec = RefreshRecord {
        client_id: "web-a".into(),
        sub: "u".into(),
        scope: "openid".into(),
        auth_time: 100,
        origin_jti: "fam-a".into(),
    };
    s.insert_refresh("p", "r".into(), rec, now + 600)
        .await
        .unwrap();
    let live = s.sign_in_session("p", "sid1", now).await.unwrap().unwrap();
    assert_eq!(live.expires_at, now + 3600, "extended by its longest grant");
    assert_eq!(live.clients, ["web-a", "web-b"]);
    assert_eq!(
        s.sid_of_family("p", "fam-b").await.unwrap().as_deref(),
        Some("sid1")
    );
    assert!(
        s.end_sign_in("other-pool", "sid1", now)
            .await
            .unwrap()
            .is_none()
    );
    let ended = s.end_sign_in("p", "sid1", now + 1).await.unwrap().unwrap();
    assert_eq!(ended.ended_at, Some(now + 1));
    assert!(
        s.end_sign_in("p", "sid1", now + 2).await.unwrap().is_none(),
        "once"
    );
    assert!(s.origin_revoked("p", "fam-a").await.unwrap());
    assert!(s.origin_revoked("p", "fam-b").await.unwrap());
    assert!(matches!(
        s.use_refresh("p", "r".into(), "web-a", now + 2, None)
            .await
            .unwrap(),
        RefreshUse::Invalid
    ));
    assert!(
        !s.add_sign_in_grant("p", "sid1", "web-a", "fam-c", now + 600, now + 2)
            .await
            .unwrap(),
        "no tokens from an ended session"
    );
    let log = s.ended_sign_ins("p", now + 2).await.unwrap();
    assert_eq!(
        log,
        [EndRecord {
            sid: Some("sid1".into()),
            sub: "u".into(),
            at: now + 1
        }]
    );
    // The end is forgotten with the session's tokens.
    assert!(s.ended_sign_ins("p", now + 3600).await.unwrap().is_empty());
    assert!(
        s.sign_in_session("p", "sid1", now + 3600)
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_user_wide_end_ends_only_that_users_live_sessions_and_logs_each<
    S: Store + Clone + 'static,
>(
    s: S,
) {
    let now = 1_000;
    for (sid, sub) in [("a1", "u"), ("a2", "u"), ("b1", "v")] {
        s.start_sign_in("p", &session(sid, sub, now + 60), now)
            .await
            .unwrap();
    }
    s.end_sign_in("p", "a2", now).await.unwrap();
    let ended = s
        .end_user_sign_ins("p", "u", now + 1, now + 500)
        .await
        .unwrap();
    assert_eq!(
        ended.iter().map(|r| r.sid.as_str()).collect::<Vec<_>>(),
        ["a1"]
    );
    assert!(
        s.sign_in_session("p", "b1", now + 1)
            .await
            .unwrap()
            .unwrap()
            .ended_at
            .is_none()
    );
    let log = s.ended_sign_ins("p", now + 1).await.unwrap();
    assert_eq!(log.len(), 3, "{log:?}");
    // The user-wide end is dated a second early; the session it ended has its own row.
    assert!(log.contains(&EndRecord {
        sid: None,
        sub: "u".into(),
        at: now
    }));
    assert!(log.contains(&EndRecord {
        sid: Some("a1".into()),
        sub: "u".into(),
        at: now + 1
    }));
    // Kept until `keep_until`, past the sessions' own expiry.
    assert_eq!(s.ended_sign_ins("p", now + 100).await.unwrap().len(), 1);
    assert!(s.ended_sign_ins("p", now + 500).await.unwrap().is_empty());
}
