//! The login flows in real headless Chromium driven by Playwright (`e2e/browser/hosted_ui.mjs`).
//! `scripts/test.sh` installs Chromium (Debian) and playwright-core (npm).

use crate::kit;

use kit::*;

#[tokio::test]
async fn hosted_ui_flows_in_chromium() {
    let kit = Kit::builder().start().await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../e2e/browser");
    let cfg = serde_json::json!({ "lb": kit.url(""), "pool": kit.pool_url, "user": "alice", "password": PASSWORD }).to_string();
    // The browser calls back into this runtime's servers: run it off the runtime thread.
    let (out, text) = run_script("node", Some(dir), ["hosted_ui.mjs", &cfg]).await;
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("browser: sign-in, wrong password, claims, silent second app, logout ok"),
        "{text}"
    );
    kit.app.shutdown().await;
}

#[tokio::test]
async fn account_flows_in_chromium_without_javascript() {
    let kit = Kit::builder().start().await;
    let temporary = "Temporary-pass-1!";
    kit.pool()
        .admin_create_user("ivy", serde_json::Map::new(), Some(temporary), true)
        .await
        .unwrap();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../e2e/browser");
    let outbox = kit.state_dir.join("outbox").join("test.jsonl");
    let cfg = serde_json::json!({
        "lb": kit.url(""), "pool": kit.pool_url, "outbox": outbox, "invited": "ivy", "temporary": temporary,
    })
    .to_string();
    let (out, text) = run_script("node", Some(dir), ["account_flows.mjs", &cfg]).await;
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("browser: sign-up, confirmation, forgot password, new password, client branding, axe, keyboard ok"),
        "{text}"
    );
    // The new password took: the user is confirmed.
    let ivy = kit.pool().user("ivy").await.unwrap();
    assert_eq!(ivy.status, "CONFIRMED");
    kit.app.shutdown().await;
}

#[tokio::test]
async fn totp_mfa_in_chromium() {
    let kit = Kit::builder().mfa("ON").start().await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../e2e/browser");
    let cfg = serde_json::json!({ "lb": kit.url(""), "pool": kit.pool_url, "user": "alice", "password": PASSWORD }).to_string();
    let (out, text) = run_script("node", Some(dir), ["mfa.mjs", &cfg]).await;
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("browser: MFA setup, wrong code, code at sign-in ok"),
        "{text}"
    );
    assert!(kit.pool().has_totp("alice").await.unwrap());
    kit.app.shutdown().await;
}
