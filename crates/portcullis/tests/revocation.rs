//! Instant revocation at the edge (issue 13): a session the provider ends is refused on its next
//! request. From the embedded pool's feed (no configuration), and from any OIDC provider through
//! Back-Channel Logout 1.0 (npm `oidc-provider` as the real sender, hostile tokens refused).

mod kit;

use kit::*;
use portcullis_idp::revocation::SessionEnded;
use std::io::BufRead;
use std::process::{Command, Stdio};
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

/// Ends every session of `sub` that began up to the pool's now, on the pool's feed, and waits
/// until the balancer's set holds it.
async fn end_sessions_of(kit: &Kit, sub: &str) -> Instant {
    let pool = kit.pool();
    let set = kit.app.lb.shared.auth.revocations().clone();
    let before = set.len();
    let published = Instant::now();
    pool.publish_session_end(SessionEnded {
        issuer: pool.issuer.clone(),
        sid: None,
        sub: sub.to_string(),
        at: pool.now(),
    });
    for _ in 0..500 {
        if set.len() > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    published
}

#[tokio::test]
async fn an_ended_session_on_the_pool_feed_is_refused_on_its_next_request() {
    let kit = Kit::start("").await;
    let client = login(&kit, "/tasks").await;
    let sub = identity(&client, &kit.url("/tasks")).await;
    // Served from the session cache from now on: the check must run there too.
    assert_eq!(identity(&client, &kit.url("/tasks")).await, sub);
    assert_eq!(identity(&client, &kit.url("/api/x")).await, sub);
    // Another user's sign-out changes nothing.
    end_sessions_of(&kit, "someone-else").await;
    assert_eq!(identity(&client, &kit.url("/api/x")).await, sub);

    // on_unauthenticated_request = deny: 401, and the shards are cleared.
    let published = end_sessions_of(&kit, &sub).await;
    let (r, took) = until_refused(&client, &kit.url("/api/x"), published).await;
    println!("pool feed: first refused request {took:?} after the event was published");
    assert_eq!(r.status(), 401);
    assert!(clears_session(&r), "{:?}", r.headers());

    // `authenticate`: a new login. (Each new session is ended in turn: it may have begun in the
    // same second as the previous sign-out.)
    let c2 = login(&kit, "/tasks").await;
    end_sessions_of(&kit, &sub).await;
    let r = c2.get(kit.url("/tasks")).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert!(
        location(&r).contains("/oauth2/authorize?"),
        "{}",
        location(&r)
    );
    assert!(clears_session(&r));
    // `allow`: forwarded without identity.
    let c3 = login(&kit, "/tasks").await;
    end_sessions_of(&kit, &sub).await;
    let r = c3.get(kit.url("/allow/x")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(clears_session(&r));
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["headers"]["x-amzn-oidc-identity"].is_null(), "{v}");

    // A session that began after the sign-out is not refused.
    kit.pool().advance_clock(5);
    let later = login(&kit, "/tasks").await;
    assert_eq!(identity(&later, &kit.url("/tasks")).await, sub);

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
    let kit = Kit::start("").await;
    let a = login(&kit, "/tasks").await;
    let b = login(&kit, "/tasks").await;
    let sub = identity(&a, &kit.url("/api/x")).await;
    assert_eq!(identity(&b, &kit.url("/api/x")).await, sub);
    end_sessions_of(&kit, &sub).await;
    assert_eq!(a.get(kit.url("/api/x")).send().await.unwrap().status(), 401);
    kit.reload_replacing(
        r#"values = ["/open/*"]"#,
        r#"values = ["/open/*", "/open2/*"]"#,
    )
    .await;
    // Known before the reload: still refused after it.
    assert_eq!(b.get(kit.url("/api/x")).send().await.unwrap().status(), 401);
    // Published after it: the subscription is still there.
    kit.pool().advance_clock(5);
    let c = login(&kit, "/tasks").await;
    assert_eq!(identity(&c, &kit.url("/api/x")).await, sub);
    end_sessions_of(&kit, &sub).await;
    assert_eq!(c.get(kit.url("/api/x")).send().await.unwrap().status(), 401);
    kit.app.shutdown().await;
}

/// `AdminUserGlobalSignOut` through boto3 (SigV4), then the time from its answer to the first
/// refused request, printed (issue 13's goal is 1 s; tests assert no timings).
#[tokio::test]
#[ignore = "needs the sessions branch"]
async fn admin_user_global_sign_out_refuses_the_next_request() {
    let kit = Kit::start("").await;
    let client = login(&kit, "/tasks").await;
    assert!(!identity(&client, &kit.url("/tasks")).await.is_empty());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../e2e/boto3_call.py");
    let args = vec![
        script.to_string(),
        kit.pool_url.clone(),
        ACCESS_KEY_ID.to_string(),
        ACCESS_SECRET.to_string(),
        "AdminUserGlobalSignOut".to_string(),
        serde_json::json!({"UserPoolId": "us-east-1_Kit12345", "Username": "alice"}).to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || Command::new("python3").args(args).output())
        .await
        .unwrap()
        .expect("python3 runs");
    let answered = Instant::now();
    assert!(
        out.status.success() && !String::from_utf8_lossy(&out.stdout).contains("error"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
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
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../e2e/browser");
    let tmp = tempfile::tempdir().unwrap();
    let key_file = tmp.path().join("op-key.json");
    let lb = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lb_port = lb.local_addr().unwrap().port();
    let mut op = Command::new("node")
        .current_dir(dir)
        .args([
            "oidc_provider.mjs",
            &lb_port.to_string(),
            key_file.to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node");
    let mut line = String::new();
    let mut op_out = std::io::BufReader::new(op.stdout.take().unwrap());
    op_out.read_line(&mut line).unwrap();
    let op_port: u16 = line.trim().parse().expect("the provider prints its port");
    let rules = format!(
        r#"
[[listeners.rules]]
priority = 4
conditions = [{{ field = "path-pattern", values = ["/op/*"] }}]
actions = [
  {{ type = "authenticate-oidc", issuer = "http://localhost:{op_port}", client_id = "portcullis",
     client_secret = "oidc-provider-client-secret-0123456789", session_cookie_name = "OpSession",
     scope = "openid email" }},
  {{ type = "forward", target_group = "echo" }},
]
"#
    );
    let kit = Kit::start_on(lb, &rules, "", "").await;
    let cfg = serde_json::json!({
        "lb": kit.url(""),
        "op": format!("http://localhost:{op_port}"),
        "key": key_file,
    })
    .to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .current_dir(dir)
            .args(["backchannel_flow.mjs", &cfg])
            .output()
    })
    .await
    .unwrap()
    .expect("node runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    drop(op.stdin.take());
    let _ = op.wait();
    drop(op_out);
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
