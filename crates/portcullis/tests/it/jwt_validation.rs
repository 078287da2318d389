//! `jwt-validation` (ALB's bearer-token action) end to end: RS256 access tokens from the pool's
//! `client_credentials` grant and ES256 tokens from another issuer's JWKS, `require_scopes`, the
//! three additional-claim formats, and every refusal with its status, `WWW-Authenticate` and
//! access-log reason.

use crate::kit;

use kit::*;
use portcullis_auth::claims_header::ClaimsSigner;
use serde_json::{Map, Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

/// Another issuer: an ES256 key with its JWKS served over HTTP.
async fn es256_issuer() -> (Arc<ClaimsSigner>, SocketAddr) {
    let keys = portcullis_auth::AuthKeys::ephemeral();
    let signer = Arc::new(ClaimsSigner::new(keys.claims, "https://es.example".into()));
    let jwks = signer.jwks();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let j = jwks.clone();
            async move { axum::Json(j) }
        }),
    );
    tokio::spawn(async move { axum::serve(tcp, app).await.unwrap() });
    (signer, addr)
}

async fn client_credentials(kit: &Kit, scope: &str) -> String {
    let secret = kit.pool().client_secret("machine").unwrap();
    let v: Value = reqwest::Client::new()
        .post(format!("{}/oauth2/token", kit.pool_url))
        .basic_auth("machine", Some(secret))
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .fetch_json()
        .await;
    v["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn bearer_tokens_are_checked_at_the_balancer() {
    let (es, es_addr) = es256_issuer().await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let rules = format!(
        r#"
[[listeners.rules]]
priority = 40
conditions = [{{ field = "path-pattern", values = ["/machine/*"] }}]
actions = [
  {{ type = "jwt-validation", jwks_endpoint = "$POOL_URL/us-east-1_Kit12345/.well-known/jwks.json",
     issuer = "$POOL_URL/us-east-1_Kit12345", require_scopes = ["tasks/read"],
     additional_claims = [{{ format = "single-string", name = "token_use", values = ["access"] }}] }},
  {{ type = "forward", target_group = "echo" }},
]

[[listeners.rules]]
priority = 41
conditions = [{{ field = "path-pattern", values = ["/es/*"] }}]
actions = [
  {{ type = "jwt-validation", jwks_endpoint = "http://{es_addr}/jwks.json", issuer = "https://es.example",
     additional_claims = [
       {{ format = "string-array", name = "groups", values = ["ops", "sre"] }},
       {{ format = "space-separated-values", name = "scope", values = ["deploy"] }},
     ] }},
  {{ type = "forward", target_group = "echo" }},
]

[[listeners.rules]]
priority = 42
conditions = [{{ field = "path-pattern", values = ["/nokeys/*"] }}]
actions = [
  {{ type = "jwt-validation", jwks_endpoint = "http://{dead}/jwks.json", issuer = "https://es.example" }},
  {{ type = "forward", target_group = "echo" }},
]
"#
    );
    drop(std::net::TcpListener::bind(dead).ok());
    let kit = Kit::builder().toml(&rules).start().await;
    let c = plain();
    let get = |path: &str, token: Option<&str>| {
        let mut r = c.get(kit.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };

    // No token: 401 with a bare Bearer challenge.
    let r = get("/machine/a", None).await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    kit.log_line(&["/machine/a", "jwt-validation", "JwtMissing"])
        .await;

    // A client_credentials access token with tasks/read: forwarded, token unchanged.
    let token = client_credentials(&kit, "tasks/read").await;
    let r = get("/machine/b", Some(&token)).await.unwrap();
    assert_eq!(r.status(), 200);
    let echo: Value = r.json().await.unwrap();
    assert_eq!(echo["headers"]["authorization"], format!("Bearer {token}"));
    assert!(echo["headers"].get("x-amzn-oidc-data").is_none());

    // Without the required scope: 403 insufficient_scope.
    let write_only = client_credentials(&kit, "tasks/write").await;
    let r = get("/machine/c", Some(&write_only)).await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    kit.log_line(&["/machine/c", "JwtInsufficientScope"]).await;

    // Tampered, truncated, `alg: none`, HS256 with the public key as secret: 401 invalid_token.
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    use base64::Engine;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let payload = token.split('.').nth(1).unwrap().to_string();
    let none = format!("{}.{payload}.", b64(&json!({"alg": "none", "kid": "x"})));
    let hs = format!(
        "{}.{payload}.c2ln",
        b64(&json!({"alg": "HS256", "kid": "x"}))
    );
    for bad in [
        tampered.as_str(),
        &token[..token.len() / 2],
        &none,
        &hs,
        "not-a-jwt",
    ] {
        let r = get("/machine/d", Some(bad)).await.unwrap();
        assert_eq!(r.status(), 401, "{bad:.40}");
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer error=\"invalid_token\"")
        );
    }
    kit.log_line(&["/machine/d", "JwtInvalid"]).await;

    // ES256 from another issuer, with ALB's string-array and space-separated formats.
    let now = portcullis_core::now();
    let sign = |claims: Value, exp: u64| {
        let m: Map<String, Value> = claims.as_object().unwrap().clone();
        es.sign_jwt("api", &m, now, exp).unwrap()
    };
    let good = sign(
        json!({"sub": "svc", "groups": ["dev", "ops"], "scope": "read deploy"}),
        now + 300,
    );
    assert_eq!(get("/es/1", Some(&good)).await.unwrap().status(), 200);
    for (why, bad) in [
        (
            "no matching group",
            sign(json!({"groups": ["dev"], "scope": "deploy"}), now + 300),
        ),
        (
            "scope lacks deploy",
            sign(
                json!({"groups": ["ops"], "scope": "deployer read"}),
                now + 300,
            ),
        ),
        (
            "expired",
            sign(json!({"groups": ["ops"], "scope": "deploy"}), now - 120),
        ),
    ] {
        assert_eq!(
            get("/es/2", Some(&bad)).await.unwrap().status(),
            401,
            "{why}"
        );
    }
    // The pool's token is from another issuer and key set.
    assert_eq!(get("/es/3", Some(&token)).await.unwrap().status(), 401);

    // The JWKS cannot be fetched: 500, and the log says why.
    let r = get("/nokeys/x", Some(&good)).await.unwrap();
    assert_eq!(r.status(), 500);
    kit.log_line(&["/nokeys/x", "JwtKeysUnavailable"]).await;
    kit.app.shutdown().await;
}
