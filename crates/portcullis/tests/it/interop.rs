//! Clients that are not ours against Portcullis: Python Authlib runs the code flow with PKCE,
//! verifies the ID token with its own JOSE, refreshes and revokes.

use crate::kit;

use kit::*;

#[tokio::test]
async fn authlib_completes_code_flow_with_pkce_refresh_and_revoke() {
    let kit = Kit::builder().start().await;
    let pool = kit.pool();
    let secret = pool.client_secret("tasks-web").unwrap().to_string();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../e2e/authlib_client.py");
    let redirect_uri = kit.url("/oauth2/idpresponse");
    let args: Vec<String> = [
        script,
        &kit.pool_url,
        &pool.issuer,
        "tasks-web",
        &secret,
        &redirect_uri,
        "alice",
        PASSWORD,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // The script calls back into this runtime's servers: run it off the runtime thread.
    let (out, text) = run_script("python3", None, args).await;
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("authlib: code+PKCE, ID token, userInfo, refresh, revoke ok"),
        "{text}"
    );
    kit.app.shutdown().await;
}
