//! Findings of an outside review of sign-in sessions and instant revocation: the PostgreSQL
//! feed of ended sessions, the balancer's revocation set and back-channel logout.

use portcullis_idp::domain::revocation::{Feed, SessionEnded};
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
        portcullis_core::now()
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
    let now = portcullis_core::now() as i64;
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

/// A provider whose discovery works and whose JWKS endpoint fails (counted).
async fn provider_without_keys() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", tcp.local_addr().unwrap().port());
    let hits = Arc::new(AtomicUsize::new(0));
    let discovery = serde_json::json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "userinfo_endpoint": format!("{base}/userinfo"),
        "jwks_uri": format!("{base}/jwks"),
    });
    let counted = hits.clone();
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || async move { axum::Json(discovery) }),
        )
        .route(
            "/jwks",
            axum::routing::get(move || async move {
                counted.fetch_add(1, Ordering::SeqCst);
                (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down")
            }),
        );
    tokio::spawn(async move { axum::serve(tcp, app).await.unwrap() });
    (base, hits)
}

/// A logout token signed by nobody, naming `kid`.
fn forged_logout_token(issuer: &str, kid: &str) -> String {
    use base64::Engine;
    let b = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let now = portcullis_core::now();
    format!(
        "{}.{}.c2ln",
        b(serde_json::json!({"alg": "RS256", "kid": kid, "typ": "logout+jwt"})),
        b(serde_json::json!({
            "iss": issuer, "aud": "rev-client", "iat": now, "jti": kid, "sub": "someone",
            "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
        }))
    )
}

/// `POST /oauth2/backchannel-logout` needs no credentials. While a provider's JWKS was
/// unavailable, every forged logout token (any `kid`) made the balancer fetch it again, all at
/// once: an outsider could make it hammer the provider. Now one fetch at a time, none for a
/// while after a failure.
#[tokio::test]
async fn forged_logout_tokens_do_not_make_the_balancer_hammer_a_failing_jwks() {
    use std::sync::atomic::Ordering;
    let (issuer, hits) = provider_without_keys().await;
    let rules = format!(
        r#"
[[listeners.rules]]
priority = 60
conditions = [{{ field = "path-pattern", values = ["/rev/*"] }}]
actions = [
  {{ type = "authenticate-oidc", issuer = "{issuer}", client_id = "rev-client",
     client_secret = "rev-secret-0123456789", session_cookie_name = "RevSession" }},
  {{ type = "forward", target_group = "echo" }},
]
"#
    );
    let kit = crate::kit::Kit::builder().toml(&rules).start().await;
    let client = crate::kit::plain();
    let url = kit.url("/oauth2/backchannel-logout");
    let sends: Vec<_> = (0..40)
        .map(|i| {
            let (client, url, issuer) = (client.clone(), url.clone(), issuer.clone());
            tokio::spawn(async move {
                let body = form_urlencoded::Serializer::new(String::new())
                    .append_pair(
                        "logout_token",
                        &forged_logout_token(&issuer, &format!("k{i}")),
                    )
                    .finish();
                client
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for s in sends {
        statuses.push(s.await.unwrap());
    }
    assert!(statuses.iter().all(|s| *s == 400), "{statuses:?}");
    let fetched = hits.load(Ordering::SeqCst);
    assert!(
        fetched <= 2,
        "40 forged tokens fetched the JWKS {fetched} times"
    );
    kit.app.shutdown().await;
}
