//! The standard identity JWT (`identity_header = "both"`): unpadded, `aud`, `kid`, JWKS on the admin
//! listener; verified by Rust `jsonwebtoken`, Python PyJWT, Node `jose` and `jsonwebtoken`. ALB's
//! padded header is verified by PyJWT and `jose` too.

use crate::kit;

use kit::*;
use serde_json::Value;

#[tokio::test]
async fn both_identity_headers_verify_with_libraries_that_are_not_ours() {
    let kit = Kit::builder().toml(r#"
[[listeners.rules]]
priority = 90
conditions = [{ field = "path-pattern", values = ["/jwt/*"] }]
actions = [
  { type = "authenticate-cognito", user_pool = "test", user_pool_client_id = "tasks-web", scope = "openid email tasks/read",
    identity_header = "both", jwt_audience = "tasks-api" },
  { type = "forward", target_group = "echo" },
]
[[listeners.rules]]
priority = 91
conditions = [{ field = "path-pattern", values = ["/jwt-only/*"] }]
actions = [
  { type = "authenticate-cognito", user_pool = "test", user_pool_client_id = "tasks-web", identity_header = "jwt" },
  { type = "forward", target_group = "echo" },
]
"#).start()
    .await;
    let client = login(&kit, "/tasks").await;
    let echo: Value = client
        .get(kit.url("/jwt/x"))
        .header("x-portcullis-jwt", "forged")
        .fetch_json()
        .await;
    let token = echo["headers"]["x-portcullis-jwt"]
        .as_str()
        .expect("the standard JWT")
        .to_string();
    let alb = echo["headers"]["x-amzn-oidc-data"]
        .as_str()
        .expect("and ALB's header")
        .to_string();
    assert!(!token.contains('='), "unpadded");
    let jwks: Value = reqwest::get(format!("http://{}/.well-known/jwks.json", kit.admin))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let iss = kit.app.lb.signer_arn.clone();

    // Rust jsonwebtoken.
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&["tasks-api"]);
    v.set_issuer(&[&iss]);
    let claims = jsonwebtoken::decode::<serde_json::Map<String, Value>>(
        &token,
        &jsonwebtoken::DecodingKey::from_jwk(set.find(&kid).unwrap()).unwrap(),
        &v,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["sub"], echo["headers"]["x-amzn-oidc-identity"]);
    assert_eq!(claims["email"], "alice@example.com");
    let mut wrong = v.clone();
    wrong.set_audience(&["someone-else"]);
    assert!(
        jsonwebtoken::decode::<Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_jwk(set.find(&kid).unwrap()).unwrap(),
            &wrong
        )
        .is_err()
    );

    let pem = reqwest::get(format!("http://{}/public-keys/{kid}", kit.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pem_file = dir.path().join("key.pem");
    std::fs::write(&pem_file, &pem).unwrap();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let (t, j, i, a) = (token.clone(), jwks.to_string(), iss.clone(), alb.clone());
    let py = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args([
                &format!("{root}/e2e/verify_jwt.py"),
                &t,
                &j,
                "tasks-api",
                &i,
                &a,
                pem_file.to_str().unwrap(),
            ])
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&py.stdout),
        String::from_utf8_lossy(&py.stderr)
    );
    assert!(
        py.status.success() && out.contains("pyjwt verified"),
        "{out}"
    );
    let cfg = serde_json::json!({ "jwt": token, "jwks": jwks, "aud": "tasks-api", "iss": iss, "alb": alb, "pem": pem }).to_string();
    let (node, out) = run_script(
        "node",
        Some(&format!("{root}/e2e/browser")),
        ["verify_jwt.mjs", &cfg],
    )
    .await;
    assert!(
        node.status.success() && out.contains("node jose+jsonwebtoken verified"),
        "{out}"
    );

    // identity_header = "jwt": no ALB header, and the default audience is the client id.
    let echo: Value = client.get(kit.url("/jwt-only/x")).fetch_json().await;
    assert!(echo["headers"].get("x-amzn-oidc-data").is_none());
    let jwt2 = echo["headers"]["x-portcullis-jwt"].as_str().unwrap();
    let c2: serde_json::Map<String, Value> =
        jsonwebtoken::dangerous::insecure_decode_claims(jwt2).unwrap();
    assert_eq!(c2["aud"], "tasks-web");
    // The default rule sends only ALB's header.
    let echo: Value = client.get(kit.url("/tasks")).fetch_json().await;
    assert!(echo["headers"].get("x-portcullis-jwt").is_none());
    kit.app.shutdown().await;
}
