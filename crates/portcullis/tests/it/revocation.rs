//! Instant revocation at the edge (issue 13): a session the provider ends is refused on its next
//! request. From the embedded pool's feed (no configuration), and from any OIDC provider through
//! Back-Channel Logout 1.0 (npm `oidc-provider` as the real sender, hostile tokens refused).

use crate::kit;

use kit::*;
use portcullis_auth::session_cookie::Session;
use portcullis_idp::domain::revocation::SessionEnded;
use std::time::{Duration, Instant};

/// Requests `path` until it is no longer forwarded (bounded); returns that answer and how long
/// it took to come.
async fn until_refused(
    client: &reqwest::Client,
    url: &str,
    since: Instant,
) -> (reqwest::Response, Duration) {
    for _ in 0..2000 {
        let r = client.get(url).send().await.unwrap();
        if r.status() != 200 {
            return (r, since.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("{url} was still served after 2000 requests");
}

fn clears_session(r: &reqwest::Response) -> bool {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.starts_with("AWSELBAuthSessionCookie-0=;"))
}

async fn identity(client: &reqwest::Client, url: &str) -> String {
    let r = client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    let v: serde_json::Value = r.json().await.unwrap();
    v["headers"]["x-amzn-oidc-identity"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Publishes an ended session on the pool's feed and waits until the balancer's set holds it.
async fn publish(kit: &Kit, sid: Option<&str>, sub: &str, at: i64) -> Instant {
    let pool = kit.pool();
    let set = kit.app.lb.shared.auth.revocations().clone();
    let before = set.len();
    let published = Instant::now();
    pool.publish_session_end(SessionEnded {
        issuer: pool.issuer.clone(),
        sid: sid.map(str::to_owned),
        sub: sub.to_string(),
        at,
    });
    for _ in 0..2000 {
        if set.len() > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    published
}

/// A signed-in session's cookie (`AWSELBAuthSessionCookie-N=...` pairs).
async fn session_cookie(kit: &Kit) -> String {
    let client = browser();
    let p = login_until_callback(kit, &client, "/tasks", PASSWORD).await;
    let r = client.get(&p.callback).send().await.unwrap();
    assert_eq!(r.status(), 302);
    session_cookie_of(&r)
}

/// The same session resealed with the balancer's keys after `edit` (its sid, or when it began):
/// times are set, not waited for.
fn reseal(kit: &Kit, cookie: &str, edit: impl FnOnce(&mut Session)) -> String {
    kit.resealed(cookie, edit)
}

#[tokio::test]
async fn an_ended_session_on_the_pool_feed_is_refused_on_its_next_request() {
    let kit = Kit::builder().start().await;
    let client = login(&kit, "/tasks").await;
    let sub = identity(&client, &kit.url("/tasks")).await;
    // Served from the session cache from now on: the check must run there too.
    assert_eq!(identity(&client, &kit.url("/tasks")).await, sub);
    assert_eq!(identity(&client, &kit.url("/api/x")).await, sub);
    let now = kit.pool().now();
    // Another user's sign-out changes nothing.
    publish(&kit, None, "someone-else", now).await;
    assert_eq!(identity(&client, &kit.url("/api/x")).await, sub);

    // on_unauthenticated_request = deny: 401, and the shards are cleared.
    let published = publish(&kit, None, &sub, now).await;
    let (r, took) = until_refused(&client, &kit.url("/api/x"), published).await;
    println!("pool feed: first refused request {took:?} after the event was published");
    assert_eq!(r.status(), 401);
    assert!(clears_session(&r), "{:?}", r.headers());

    // Sessions with set start times: one that began before that user-wide sign-out, one after.
    let cookie = session_cookie(&kit).await;
    let now = now as u64;
    let before = reseal(&kit, &cookie, |s| s.began = now - 200);
    let after = reseal(&kit, &cookie, |s| s.began = now + 50);
    // `authenticate`: a new login.
    let r = get_with_cookie(&kit, &before, "/tasks").await;
    assert_eq!(r.status(), 302);
    assert!(
        location(&r).contains("/oauth2/authorize?"),
        "{}",
        location(&r)
    );
    assert!(clears_session(&r));
    // `allow`: forwarded without identity.
    let r = get_with_cookie(&kit, &before, "/allow/x").await;
    assert_eq!(r.status(), 200);
    assert!(clears_session(&r));
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["headers"]["x-amzn-oidc-identity"].is_null(), "{v}");
    // The session that began after the sign-out is served.
    let r = get_with_cookie(&kit, &after, "/tasks").await;
    assert_eq!(r.status(), 200);

    // One session by its sid: the others of the user are served.
    let one = reseal(&kit, &cookie, |s| {
        s.sid = Some("sid-one".into());
        s.began = now + 1000;
    });
    let other = reseal(&kit, &cookie, |s| {
        s.sid = Some("sid-other".into());
        s.began = now + 1000;
    });
    assert_eq!(get_with_cookie(&kit, &one, "/api/x").await.status(), 200);
    publish(&kit, Some("sid-one"), &sub, now as i64).await;
    assert_eq!(get_with_cookie(&kit, &one, "/api/x").await.status(), 401);
    assert_eq!(get_with_cookie(&kit, &other, "/api/x").await.status(), 200);

    let line = kit.log_line(&["AuthSessionRevoked"]).await;
    assert!(line.contains("/api/x"), "{line}");
    let metrics = kit.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("portcullis_auth_session_revoked_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );
    kit.app.shutdown().await;
}

#[tokio::test]
async fn revocations_and_the_feed_outlive_a_config_reload() {
    let kit = Kit::builder().start().await;
    let a = login(&kit, "/tasks").await;
    let sub = identity(&a, &kit.url("/api/x")).await;
    let cookie = session_cookie(&kit).await;
    let now = kit.pool().now();
    let b = reseal(&kit, &cookie, |s| s.sid = Some("sid-b".into()));
    let c = reseal(&kit, &cookie, |s| {
        s.sid = Some("sid-c".into());
        s.began = now as u64 + 1000;
    });
    assert_eq!(get_with_cookie(&kit, &b, "/api/x").await.status(), 200);
    publish(&kit, Some("sid-b"), &sub, now).await;
    assert_eq!(get_with_cookie(&kit, &b, "/api/x").await.status(), 401);
    kit.reload_replacing(
        r#"values = ["/open/*"]"#,
        r#"values = ["/open/*", "/open2/*"]"#,
    )
    .await;
    // Known before the reload: still refused after it.
    assert_eq!(get_with_cookie(&kit, &b, "/api/x").await.status(), 401);
    // Published after it: the subscription is still there.
    assert_eq!(get_with_cookie(&kit, &c, "/api/x").await.status(), 200);
    publish(&kit, Some("sid-c"), &sub, now).await;
    assert_eq!(get_with_cookie(&kit, &c, "/api/x").await.status(), 401);
    assert_eq!(
        identity(&a, &kit.url("/api/x")).await,
        sub,
        "other sessions live on"
    );
    kit.app.shutdown().await;
}

/// `AdminUserGlobalSignOut` through boto3 (SigV4), then the time from its answer to the first
/// refused request, printed (issue 13's goal is 1 s; tests assert no timings).
#[tokio::test]
async fn admin_user_global_sign_out_refuses_the_next_request() {
    let kit = Kit::builder().start().await;
    let client = login(&kit, "/tasks").await;
    assert!(!identity(&client, &kit.url("/tasks")).await.is_empty());
    let (out, text) = boto3_call(
        &kit.pool_url,
        (ACCESS_KEY_ID, ACCESS_SECRET),
        "AdminUserGlobalSignOut",
        &serde_json::json!({"UserPoolId": "us-east-1_Kit12345", "Username": "alice"}),
    )
    .await;
    let answered = Instant::now();
    assert!(
        out.status.success() && !String::from_utf8_lossy(&out.stdout).contains("error"),
        "{text}"
    );
    let (r, took) = until_refused(&client, &kit.url("/api/x"), answered).await;
    println!(
        "AdminUserGlobalSignOut: first refused request {took:?} after the API answered (goal: <= 1 s)"
    );
    assert_eq!(r.status(), 401);
    kit.app.shutdown().await;
}

#[tokio::test]
async fn backchannel_logout_from_oidc_provider_refuses_the_session() {
    let tmp = tempfile::tempdir().unwrap();
    let key_file = tmp.path().join("op-key.json");
    let lb = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lb_port = lb.local_addr().unwrap().port();
    let op = NodeOidcProvider::start(lb_port, &[key_file.to_str().unwrap()]);
    let op_port = op.port;
    let rules = op.rule("");
    let kit = Kit::builder().on(lb).toml(&rules).start().await;
    let cfg = serde_json::json!({
        "lb": kit.url(""),
        "op": format!("http://localhost:{op_port}"),
        "key": key_file,
    })
    .to_string();
    let (out, text) = run_script("node", Some(E2E_BROWSER), ["backchannel_flow.mjs", &cfg]).await;
    op.stop();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("back-channel logout: hostile tokens refused"),
        "{text}"
    );
    let metrics = kit.metrics().await;
    assert!(
        metrics.contains("portcullis_auth_logout_tokens_total{result=\"accepted\"} 2"),
        "{metrics}"
    );
    let line = kit.log_line(&["AuthInvalidLogoutToken"]).await;
    assert!(line.contains("/oauth2/backchannel-logout"), "{line}");
    kit.app.shutdown().await;
}

/// A sign-in right after "sign out everywhere" (or a password reset) works, even in the same
/// second: tokens say when a session began only to the second, so the user-wide end is dated a
/// second early and the sessions begun in its own second are ended by their `sid`. Before, the
/// balancer refused the new session too (the hosted UI's reset-then-sign-in flow looped).
#[tokio::test]
async fn a_sign_in_right_after_a_global_sign_out_is_served() {
    let kit = Kit::builder().start().await;
    let old = login(&kit, "/tasks").await;
    let sub = identity(&old, &kit.url("/tasks")).await;
    // Move the pool's clock to just after a second begins, so that the end and the next sign-in
    // share that second (this only aligns the test with the pool's second; nothing sleeps).
    let ms = kit.pool().clock().now_ms();
    kit.pool().clock().advance_ms(1000 - ms % 1000 + 5);
    kit.pool().end_user_sessions(&sub).await.unwrap();
    let (r, _) = until_refused(&old, &kit.url("/api/x"), Instant::now()).await;
    assert_eq!(r.status(), 401, "the old session is refused");
    let new = login(&kit, "/tasks").await;
    assert_eq!(
        identity(&new, &kit.url("/tasks")).await,
        sub,
        "the new session is served"
    );
    kit.app.shutdown().await;
}
