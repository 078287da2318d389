//! Portcullis in front of an OpenID Provider that is not ours (npm `oidc-provider`), found by
//! discovery: login, refresh after the access token expires, logout through the provider's
//! end-session endpoint, and re-login, in Chromium.

use crate::kit;

use kit::*;

#[tokio::test]
async fn login_refresh_logout_and_relogin_against_oidc_provider() {
    let lb = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lb_port = lb.local_addr().unwrap().port();
    let op = NodeOidcProvider::start(lb_port, &[]);
    let op_port = op.port;
    let rules =
        op.rule(r#", logout_path = "/op/logout", logout_redirect_uri = "$LB_URL/signed-out""#);
    let kit = Kit::builder().on(lb).toml(&rules).start().await;
    let cfg = serde_json::json!({ "lb": kit.url(""), "op": format!("http://localhost:{op_port}") })
        .to_string();
    let (out, text) = run_script("node", Some(E2E_BROWSER), ["oidc_flow.mjs", &cfg]).await;
    op.stop();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("oidc-provider: login, refresh, logout, re-login ok"),
        "{text}"
    );
    kit.app.shutdown().await;
}
