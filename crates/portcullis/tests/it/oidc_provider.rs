//! Portcullis in front of an OpenID Provider that is not ours (npm `oidc-provider`), found by
//! discovery: login, refresh after the access token expires, logout through the provider's
//! end-session endpoint, and re-login, in Chromium.

use crate::kit;

use kit::*;
use std::io::BufRead;
use std::process::{Command, Stdio};

#[tokio::test]
async fn login_refresh_logout_and_relogin_against_oidc_provider() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../e2e/browser");
    let lb = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lb_port = lb.local_addr().unwrap().port();
    let mut op = Command::new("node")
        .current_dir(dir)
        .args(["oidc_provider.mjs", &lb_port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node");
    let mut line = String::new();
    // Kept open until the end: the provider may still write to its stdout.
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
     scope = "openid email", logout_path = "/op/logout", logout_redirect_uri = "$LB_URL/signed-out" }},
  {{ type = "forward", target_group = "echo" }},
]
"#
    );
    let kit = Kit::builder().on(lb).toml(&rules).start().await;
    let cfg = serde_json::json!({ "lb": kit.url(""), "op": format!("http://localhost:{op_port}") })
        .to_string();
    let (out, text) = run_script("node", Some(dir), ["oidc_flow.mjs", &cfg]).await;
    drop(op.stdin.take());
    let _ = op.wait();
    drop(op_out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("oidc-provider: login, refresh, logout, re-login ok"),
        "{text}"
    );
    kit.app.shutdown().await;
}
