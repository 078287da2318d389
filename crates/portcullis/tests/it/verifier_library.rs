//! The backend library (`portcullis-verify`, feature `axum`) in a real backend behind Portcullis:
//! the `Identity` extractor verifies `x-amzn-oidc-data` with keys fetched by kid from the admin
//! listener, the access token with the pool's JWKS, and falls back to the standard identity JWT;
//! scope helpers answer 403; requests that did not come through the balancer get 401.

use crate::kit;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::get;
use kit::*;
use portcullis_verify::{AlbVerifier, Identity, KeySource, Rejection, Verifier};
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};

/// The backend's state: its verifier, filled in once the balancer (whose ARN and keys it pins) is up.
#[derive(Clone, Default)]
struct Backend(Arc<OnceLock<Arc<Verifier>>>);

impl FromRef<Backend> for Arc<Verifier> {
    fn from_ref(b: &Backend) -> Arc<Verifier> {
        b.0.get().expect("verifier set before traffic").clone()
    }
}

async fn whoami(who: Identity) -> axum::Json<Value> {
    axum::Json(json!({
        "sub": who.sub, "email": who.claim("email"), "scopes": who.scopes, "groups": who.groups,
        "admins": who.in_group("admins"), "via_alb": who.alb.is_some(),
    }))
}

async fn writer(who: Identity) -> Result<&'static str, Rejection> {
    who.require_scope("tasks/write")?;
    Ok("written")
}

#[tokio::test]
async fn axum_extractor_verifies_what_the_balancer_sends() {
    let state = Backend::default();
    let app = Router::new()
        .route("/app/whoami", get(whoami))
        .route("/app/write", get(writer))
        .with_state(state.clone());
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = tcp.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(tcp, app).await.unwrap() });
    let rules = format!(
        r#"
[[listeners.rules]]
priority = 3
conditions = [{{ field = "path-pattern", values = ["/app/*"] }}]
actions = [
  {{ type = "authenticate-cognito", user_pool = "test", user_pool_client_id = "tasks-web",
     scope = "openid email tasks/read", identity_header = "both", jwt_audience = "tasks-api" }},
  {{ type = "forward", target_group = "lib" }},
]

[[listeners.rules]]
priority = 2
conditions = [{{ field = "path-pattern", values = ["/app/echo"] }}]
actions = [
  {{ type = "authenticate-cognito", user_pool = "test", user_pool_client_id = "tasks-web",
     scope = "openid email tasks/read", identity_header = "both", jwt_audience = "tasks-api" }},
  {{ type = "forward", target_group = "echo" }},
]

[[target_groups]]
name = "lib"
targets = [{{ id = "127.0.0.1", port = {} }}]
"#,
        backend.port()
    );
    let kit = Kit::builder().toml(&rules).start().await;
    let pool = kit.pool();
    let _ = state.0.set(Arc::new(
        Verifier::new(
            AlbVerifier::new(kit.app.lb.signer_arn.clone())
                .expect_client("tasks-web")
                .expect_issuer(pool.issuer.clone()),
            KeySource::Portcullis(format!("http://{}", kit.admin)),
        )
        .with_access_tokens(
            &format!("{}/.well-known/jwks.json", pool.issuer),
            &pool.issuer,
        )
        .with_identity_jwt(
            &format!("http://{}/.well-known/jwks.json", kit.admin),
            &kit.app.lb.signer_arn,
            "tasks-api",
        ),
    ));

    // Through the balancer: the extractor verifies everything and the handler sees the user.
    let client = login(&kit, "/app/whoami").await;
    let r = client.get(kit.url("/app/whoami")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let who: Value = r.json().await.unwrap();
    assert_eq!(who["email"], "alice@example.com");
    assert_eq!(who["via_alb"], true);
    assert_eq!(who["admins"], true, "groups from the verified access token");
    assert!(
        who["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "tasks/read")
    );
    // A scope the token lacks: 403 from the helper.
    assert_eq!(
        client
            .get(kit.url("/app/write"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );

    // Straight to the backend: nothing, a forged identity, or only the standard JWT.
    let echo: Value = client.get(kit.url("/app/echo")).fetch_json().await;
    let h = &echo["headers"];
    let direct = |names: &[&str], forged_identity: bool| {
        let mut r = reqwest::Client::new().get(format!("http://{backend}/app/whoami"));
        for n in names {
            r = r.header(*n, h[*n].as_str().unwrap());
        }
        if forged_identity {
            r = r.header("x-amzn-oidc-identity", "someone-else");
        }
        r.send()
    };
    assert_eq!(direct(&[], false).await.unwrap().status(), 401);
    let r = direct(&["x-amzn-oidc-data", "x-amzn-oidc-accesstoken"], true)
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a forged x-amzn-oidc-identity is caught");
    let r = direct(&["x-portcullis-jwt", "x-amzn-oidc-accesstoken"], false)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["via_alb"], false);
    kit.app.shutdown().await;
}
