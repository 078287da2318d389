//! Token-signing key rotation with `portcullis keys rotate` while the pool serves: the new keys are
//! picked up without a restart, tokens signed by the old keys keep working until they expire, and
//! the load balancer's login verifies ID tokens signed by the new key (it refetches the JWKS on an
//! unknown kid).

use crate::kit;

use kit::*;
use serde_json::{Value, json};
use std::time::Duration;

async fn api_sign_in(kit: &Kit) -> String {
    let (status, v) = PoolApi::of(kit)
        .call(
            "InitiateAuth",
            json!({"ClientId": "api-cli", "AuthFlow": "USER_PASSWORD_AUTH",
                   "AuthParameters": {"USERNAME": "alice", "PASSWORD": PASSWORD}}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v["AuthenticationResult"]["AccessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_string()
}

async fn get_user(kit: &Kit, token: &str) -> u16 {
    PoolApi::of(kit)
        .send("GetUser", &json!({"AccessToken": token}))
        .await
        .status()
        .as_u16()
}

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

fn cli(kit: &Kit, args: &[&str]) -> Value {
    let mut all = vec!["keys", "--config", kit.config_file.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = stdout_of(std::process::Command::new(env!("CARGO_BIN_EXE_portcullis")).args(&all));
    serde_json::from_slice(&out).unwrap()
}

#[tokio::test]
async fn rotation_keeps_old_tokens_valid_and_new_tokens_use_new_keys() {
    let kit = Kit::builder().start().await;
    let old = api_sign_in(&kit).await;
    assert_eq!(get_user(&kit, &old).await, 200);

    // Pending rotation: published at once, not yet signing.
    let pending = cli(&kit, &["rotate", "--activate-in", "3600"]);
    assert_eq!(pending["Added"].as_array().unwrap().len(), 2);
    let listed = cli(&kit, &["list"]);
    let states = field_strs(&listed["Keys"], "state");
    assert_eq!(states, ["signing", "pending", "signing", "pending"]);
    // Rotation that activates now.
    let now = cli(&kit, &["rotate", "--activate-in", "0"]);
    let added: Vec<String> = now["Added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();

    // The serving pool picks the new keys up (reload every 2 s), without a restart.
    let mut fresh = String::new();
    for _ in 0..60 {
        fresh = api_sign_in(&kit).await;
        if added.contains(&kid(&fresh)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        added.contains(&kid(&fresh)),
        "new tokens are signed by a new key"
    );
    assert_ne!(kid(&fresh), kid(&old));
    // Both the old and the new token work: nothing signed before the rotation is invalidated.
    assert_eq!(get_user(&kit, &old).await, 200);
    assert_eq!(get_user(&kit, &fresh).await, 200);
    let jwks: Value = reqwest::get(format!("{}/.well-known/jwks.json", kit.pool().issuer))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(
        kids.len(),
        6,
        "old, current and pending keys are all published"
    );
    assert!(kids.contains(&kid(&old).as_str()) && kids.contains(&kid(&fresh).as_str()));

    // The balancer's login verifies an ID token signed by the new key.
    let client = login(&kit, "/tasks").await;
    let r = client.get(kit.url("/tasks")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    kit.app.shutdown().await;
}
