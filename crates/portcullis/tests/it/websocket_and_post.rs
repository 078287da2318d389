//! Requests under authentication that are not plain GETs: a WebSocket upgrade (Python `websockets`
//! as client and server) goes through the rule and the session check, then carries frames both
//! ways; without a session the handshake is refused; on a plain HTTP listener (`ws://`) it works
//! too. A POST without a session is redirected to
//! sign in (its body is not kept, as at ALB); with a session it reaches the target whole.

use crate::kit;

use kit::*;
use serde_json::Value;
use std::io::BufRead;
use std::process::{Command, Stdio};

fn ws_client(url: &str, cookie: &str) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../e2e/websocket_peer.py");
    let out = Command::new("python3")
        .args([script, "client", url, cookie])
        .output()
        .expect("python3 with websockets");
    crate::kit::json_stdout(&out)
}

#[tokio::test]
async fn websocket_upgrade_under_authentication() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../e2e/websocket_peer.py");
    let mut server = Command::new("python3")
        .args([script, "serve"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 with websockets");
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().unwrap();
    let rules = format!(
        r#"
[[listeners.rules]]
priority = 5
conditions = [{{ field = "path-pattern", values = ["/tasks/ws"] }}]
actions = [
  {{ type = "authenticate-cognito", user_pool = "test", user_pool_client_id = "tasks-web", scope = "openid email tasks/read",
     on_unauthenticated_request = "deny" }},
  {{ type = "forward", target_group = "ws" }},
]

[[target_groups]]
name = "ws"
targets = [{{ id = "127.0.0.1", port = {port} }}]
"#
    );
    let kit = Kit::builder().toml(&rules).start().await;
    // The session cookie a browser holds for the load balancer after signing in.
    let jar_cookie = session_cookie_for(&kit).await;
    let url = format!("wss://localhost:{}/tasks/ws", kit.lb_port);

    let v = tokio::task::spawn_blocking({
        let (url, c) = (url.clone(), jar_cookie.clone());
        move || ws_client(&url, &c)
    })
    .await
    .unwrap();
    assert_eq!(v["echo"], "hello", "{v}");
    let h = &v["headers"];
    assert!(
        h["x-amzn-oidc-data"].is_string(),
        "the upgrade request carried the identity: {h}"
    );
    assert_eq!(h["upgrade"], "websocket");
    assert!(
        !h["cookie"]
            .as_str()
            .unwrap_or("")
            .contains("AWSELBAuthSessionCookie"),
        "the session cookie is not passed on"
    );

    // No session: the handshake is refused with 401 (deny), nothing reaches the target.
    let v = tokio::task::spawn_blocking(move || ws_client(&url, ""))
        .await
        .unwrap();
    assert_eq!(v["status"], 401, "{v}");
    let line = kit
        .log_line(&["/tasks/ws", "authenticate,forward", " 101 "])
        .await;
    assert!(
        line.starts_with("wss "),
        "ALB's type for WebSocket over TLS: {line}"
    );

    // WebSocket on a plain HTTP listener too (`ws`): point its default action at the server.
    kit.reload_replacing(
        "default_actions = [{ type = \"forward\", target_group = \"echo\" }]",
        "default_actions = [{ type = \"forward\", target_group = \"ws\" }]",
    )
    .await;
    let plain_url = format!("ws://127.0.0.1:{}/chat", kit.http_port);
    let v = tokio::task::spawn_blocking(move || ws_client(&plain_url, ""))
        .await
        .unwrap();
    assert_eq!(v["echo"], "hello", "{v}");
    assert_eq!(v["headers"]["x-forwarded-proto"], "http", "{v}");
    let line = kit.log_line(&["/chat", " 101 "]).await;
    assert!(line.starts_with("ws "), "{line}");

    drop(server.stdin.take());
    let _ = server.wait();
    kit.app.shutdown().await;
}

/// Logs in with a fresh client and returns its `AWSELBAuthSessionCookie-*` pairs.
async fn session_cookie_for(kit: &Kit) -> String {
    let c = browser();
    let p = login_until_callback(kit, &c, "/tasks", PASSWORD).await;
    let r = c.get(&p.callback).send().await.unwrap();
    assert_eq!(r.status(), 302);
    session_cookie_of(&r)
}

#[tokio::test]
async fn post_under_authentication() {
    let kit = Kit::builder().start().await;
    // Without a session: 302 to sign in, as for GET (the body is dropped).
    let r = plain()
        .post(kit.url("/tasks/new"))
        .header("content-type", "application/json")
        .body(r#"{"title":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert!(location(&r).contains("/oauth2/authorize?"));
    // With a session: forwarded with method, length and type intact.
    let client = login(&kit, "/tasks").await;
    let body = "a".repeat(100_000);
    let r = client
        .post(kit.url("/tasks/new"))
        .header("content-type", "text/plain")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let echo: Value = r.json().await.unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["headers"]["content-length"], "100000");
    assert!(echo["headers"]["x-amzn-oidc-identity"].is_string());
    kit.app.shutdown().await;
}
