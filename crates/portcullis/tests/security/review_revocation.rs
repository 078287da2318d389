//! Findings of an outside review of sign-in sessions and instant revocation: the PostgreSQL
//! feed of ended sessions, the balancer's revocation set and back-channel logout.

use portcullis_idp::revocation::{Feed, SessionEnded};
use portcullis_idp::store::SessionStore;
use portcullis_idp::store::sessions::NOTIFY_CHANNEL;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

const PG_SERVER: &str = "postgres://root@127.0.0.1:5432";
const LIMIT: Duration = Duration::from_secs(10);

async fn pg(db: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(&format!("{PG_SERVER}/{db}"), tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL on 127.0.0.1:5432");
    tokio::spawn(conn);
    c
}

/// Waits (bounded) until `f` holds.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < LIMIT, "not in time: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn next(feed: &mut broadcast::Receiver<SessionEnded>) -> SessionEnded {
    tokio::time::timeout(LIMIT, feed.recv())
        .await
        .expect("an end in time")
        .expect("the feed is open")
}

/// Any database user may `NOTIFY` (no privilege beyond connecting is needed). A forged
/// notification was published as an end: a user-wide end dated `i64::MAX` shut its user out of
/// every balancer until restart, and its `noted_ms` froze the catch-up cursor, so ends missed
/// while a listener was down were never read. Now only an end the log holds is published.
#[tokio::test]
async fn a_forged_notify_ends_nothing_and_does_not_blind_the_catch_up() {
    let admin = pg("postgres").await;
    let name = format!(
        "portcullis_review_rev_{}_{}",
        std::process::id(),
        portcullis_idp::now()
    );
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let url = format!("{PG_SERVER}/{name}");
    let node_a = portcullis_idp::PgStore::connect(&url).await.unwrap();
    let node_b = portcullis_idp::PgStore::connect(&url).await.unwrap();
    let feed = Arc::new(Feed::default());
    let mut ends = feed.subscribe();
    node_b.watch_session_ends("pool-1", "https://issuer", Arc::downgrade(&feed));
    until("node B listens", || node_b.session_listener().connected).await;

    // A database user with no rights on the tables forges a user-wide end.
    let db = pg(&name).await;
    let forged = serde_json::json!({
        "pool": "pool-1", "sid": null, "sub": "victim", "at": i64::MAX,
        "node": "forger", "noted_ms": i64::MAX,
    });
    db.execute(
        "SELECT pg_notify($1, $2)",
        &[&NOTIFY_CHANNEL, &forged.to_string()],
    )
    .await
    .unwrap();
    // A genuine end, logged by node A after it: the first end node B publishes.
    let now = portcullis_idp::now() as i64;
    node_a
        .end_user_sign_ins("pool-1", "alice", now, now + 3600)
        .await
        .unwrap();
    let e = next(&mut ends).await;
    assert_eq!(
        (e.sub.as_str(), e.sid.as_deref()),
        ("alice", None),
        "the forged end was published: {e:?}"
    );

    // Node B is deaf while A ends bob's sessions; after reconnecting it catches up.
    node_b.hold_session_listener(true);
    admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&format!("portcullis-listen-{}", node_b.node_id())],
        )
        .await
        .unwrap();
    until("B notices", || !node_b.session_listener().connected).await;
    node_a
        .end_user_sign_ins("pool-1", "bob", now, now + 3600)
        .await
        .unwrap();
    node_b.hold_session_listener(false);
    let deadline = Instant::now() + LIMIT;
    loop {
        assert!(Instant::now() < deadline, "bob's end was never caught up");
        let e = next(&mut ends).await;
        assert_ne!(e.sub, "victim", "the forged end was published");
        if e.sub == "bob" {
            break;
        }
    }

    drop((node_a, node_b, db));
    let _ = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await;
}
