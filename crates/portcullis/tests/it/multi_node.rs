//! Several IdP processes act as one pool on one PostgreSQL: a code issued by one is redeemable once
//! on any (also under concurrent redemption), a refresh token revoked on one is dead on all, and
//! the pool keys are shared. Also: the SQLite store keeps a committed code across `kill -9`.
//! Real processes (`portcullis serve`), a real database per test.

use crate::kit::{free_port, query_param};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const POOL_ID: &str = "us-east-1_Multi1234";
const SECRET: &str = "multi-node-secret-0123456789abcdef";
const PASSWORD: &str = "Bob-password-42!";
const KEY_ID: &str = "AKIAMULTINODETEST001";
const KEY_SECRET: &str = "multi-node-access-secret-0123456789";

struct Node {
    child: Child,
    url: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(store: &str, state: &std::path::Path, port: u16, base_port: u16) -> String {
    format!(
        r#"
store = "{store}"
[load_balancer]
name = "node"
state_dir = "{state}"

[[user_pools]]
name = "shared"
id = "{POOL_ID}"
domain = {{ listen = "127.0.0.1:{port}", base_url = "http://localhost:{base_port}" }}
access_keys = [{{ access_key_id = "{KEY_ID}", secret_access_key = "{KEY_SECRET}" }}]
allow_self_sign_up = true
messages = {{ outbox = "{outbox}" }}
clients = [{{ client_id = "web", client_secret = "{SECRET}", allowed_oauth_flows = ["code"], allowed_oauth_scopes = ["openid", "email"], callback_urls = ["http://localhost/cb"] }}]
users = [{{ username = "bob", password = "{PASSWORD}", attributes = {{ email = "bob@example.com" }} }}]
"#,
        state = state.display(),
        outbox = state.parent().unwrap().join("outbox.jsonl").display(),
    )
}

async fn start(dir: &std::path::Path, name: &str, store: &str, base_port: u16) -> Node {
    let port = free_port();
    let state = dir.join(name);
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, config(store, &state, port, base_port)).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["serve", "--config", file.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if reqwest::get(format!("{url}/.well-known/jwks.json"))
            .await
            .is_ok()
        {
            return Node { child, url };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut child = child;
    let _ = child.kill();
    let _ = child.wait();
    panic!("node {name} did not start");
}

/// One sign-in attempt for bob on a node's hosted UI.
async fn sign_in(node: &Node, password: &str) -> reqwest::Response {
    let login = format!(
        "{}/login?client_id=web&redirect_uri=http%3A%2F%2Flocalhost%2Fcb&response_type=code&scope=openid%20email",
        node.url
    );
    crate::kit::post_sign_in(&crate::kit::browser(), &login, "bob", password).await
}

/// Signs bob in and returns the code.
async fn code_from(node: &Node) -> String {
    let r = sign_in(node, PASSWORD).await;
    assert_eq!(r.status(), 302, "sign-in on {}", node.url);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    query_param(&loc, "code")
}

/// One sign-in attempt: (status, page).
async fn sign_in_status(node: &Node, password: &str) -> (u16, String) {
    let r = sign_in(node, password).await;
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn token(node: &Node, form: &[(&str, &str)]) -> (u16, Value) {
    token_at(&node.url, form).await
}

async fn token_at(url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{url}/oauth2/token"))
        .basic_auth("web", Some(SECRET))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn redeem(node: &Node, code: &str) -> (u16, Value) {
    token(
        node,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", "http://localhost/cb"),
        ],
    )
    .await
}

#[tokio::test]
async fn two_nodes_on_one_postgres_act_as_one_pool() {
    let db = crate::kit::PgDatabase::create("test").await;
    let dir = tempfile::tempdir().unwrap();
    let base = free_port();
    // Started together: they race on migrations, seeding and key generation.
    let url = db.url();
    let (a, b) = tokio::join!(
        start(dir.path(), "a", &url, base),
        start(dir.path(), "b", &url, base)
    );

    // One pool: the same keys on both nodes.
    let ja: Value = reqwest::get(format!("{}/.well-known/jwks.json", a.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jb: Value = reqwest::get(format!("{}/.well-known/jwks.json", b.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ja, jb);
    assert_eq!(ja["keys"].as_array().unwrap().len(), 2);

    // A code issued by A is redeemable once, on B; A then refuses it.
    let code = code_from(&a).await;
    let (status, tokens) = redeem(&b, &code).await;
    assert_eq!(status, 200, "{tokens}");
    let (status, body) = redeem(&a, &code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // The replay on A revoked what the code's first use gave on B (RFC 6749 §4.1.2).
    let replayed = reqwest::Client::new()
        .get(format!("{}/oauth2/userInfo", b.url))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), 401);

    // Concurrent redemption of one code across both nodes: exactly one wins.
    let code = code_from(&b).await;
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let url = if i % 2 == 0 {
                a.url.clone()
            } else {
                b.url.clone()
            };
            let code = code.clone();
            tokio::spawn(async move {
                token_at(
                    &url,
                    &[
                        ("grant_type", "authorization_code"),
                        ("code", &code),
                        ("redirect_uri", "http://localhost/cb"),
                    ],
                )
                .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    assert_eq!(
        results.iter().filter(|(s, _)| *s == 200).count(),
        1,
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .filter(|(s, _)| *s != 200)
            .all(|(s, b)| *s == 400 && b["error"] == "invalid_grant")
    );

    // Tokens from B are good on A; a refresh token revoked on B is dead on A, and so are the
    // access tokens minted from it. (The race above was a replay too, so fresh tokens.)
    let (status, tokens) = redeem(&b, &code_from(&a).await).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let userinfo = |node: &Node| {
        reqwest::Client::new()
            .get(format!("{}/oauth2/userInfo", node.url))
            .bearer_auth(access)
            .send()
    };
    assert_eq!(userinfo(&a).await.unwrap().status(), 200);
    let (status, _) = token(
        &a,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(status, 200);
    let r = reqwest::Client::new()
        .post(format!("{}/oauth2/revoke", b.url))
        .basic_auth("web", Some(SECRET))
        .form(&[("token", refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, body) = token(
        &a,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(userinfo(&a).await.unwrap().status(), 401);
    assert_eq!(userinfo(&b).await.unwrap().status(), 401);

    // Lockout counts are shared: failures on A lock the user on B. The fifth failure locks for 1 s
    // (whole seconds); after it, a sixth counted failure locks for 2 s, which B is asked inside.
    for _ in 0..5 {
        assert_eq!(sign_in_status(&a, "wrong").await.0, 401);
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = sign_in_status(&a, "wrong").await;
    assert_eq!(status, 401);
    assert!(body.contains("Incorrect username or password."), "{body}");
    // Refused although right: the lock is shared through the store.
    let (status, body) = sign_in_status(&b, PASSWORD).await;
    assert_eq!(status, 401);
    assert!(body.contains("Password attempts exceeded"), "{body}");

    drop((a, b));
    db.drop_it().await;
}

#[tokio::test]
async fn sqlite_keeps_a_committed_code_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let base = free_port();
    let mut node = start(dir.path(), "solo", "sqlite", base).await;
    let code = code_from(&node).await;
    // SIGKILL: no shutdown code runs.
    node.child.kill().unwrap();
    node.child.wait().unwrap();
    let node = start(dir.path(), "solo", "sqlite", base).await;
    let (status, body) = redeem(&node, &code).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = redeem(&node, &code).await;
    assert_eq!(status, 400);
}

/// One admin API call through boto3 (a real SDK signing with SigV4).
async fn boto3(node: &Node, op: &str, params: Value) -> Value {
    let (out, text) = crate::kit::boto3_call(&node.url, (KEY_ID, KEY_SECRET), op, &params).await;
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("boto3 {op}: {text}"))
}

/// A public user-pool API call (no signature).
async fn public(node: &Node, op: &str, params: Value) -> Value {
    crate::kit::PoolApi::at(&node.url).call(op, params).await.1
}

/// `InitiateAuth` with `USER_PASSWORD_AUTH`.
async fn auth(node: &Node, client_id: &str, user: &str, pw: &str) -> Value {
    public(
        node,
        "InitiateAuth",
        serde_json::json!({"ClientId": client_id, "AuthFlow": "USER_PASSWORD_AUTH",
            "AuthParameters": {"USERNAME": user, "PASSWORD": pw}}),
    )
    .await
}

/// Retries `f` until `done` holds, for up to 6 s (twice the catalog reload interval and more).
async fn eventually<F, Fut>(mut f: F, done: impl Fn(&Value) -> bool) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Value>,
{
    let mut last = Value::Null;
    for _ in 0..60 {
        last = f().await;
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not reached in time: {last}");
}

#[tokio::test]
async fn admin_changes_on_one_node_reach_the_other() {
    let db = crate::kit::PgDatabase::create("test").await;
    let dir = tempfile::tempdir().unwrap();
    let base = free_port();
    let url = db.url();
    let (a, b) = tokio::join!(
        start(dir.path(), "a", &url, base),
        start(dir.path(), "b", &url, base)
    );
    let outbox = dir.path().join("outbox.jsonl");

    // A client created through node A serves sign-ins on node B once B reloads (≤ 2 s).
    let created = boto3(
        &a,
        "CreateUserPoolClient",
        serde_json::json!({"UserPoolId": POOL_ID, "ClientName": "mobile",
            "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]}),
    )
    .await;
    let client_id = created["UserPoolClient"]["ClientId"]
        .as_str()
        .unwrap()
        .to_string();
    let v = eventually(
        || auth(&b, &client_id, "bob", PASSWORD),
        |v| v.get("AuthenticationResult").is_some(),
    )
    .await;
    assert!(v["AuthenticationResult"]["AccessToken"].is_string());

    // Sign up on A, confirm on B with the code A sent, sign in on A.
    let su = public(
        &a,
        "SignUp",
        serde_json::json!({"ClientId": client_id, "Username": "zed", "Password": "Zed-password-1!",
            "UserAttributes": [{"Name": "email", "Value": "zed@example.com"}]}),
    )
    .await;
    assert_eq!(su["UserConfirmed"], false, "{su}");
    let text = std::fs::read_to_string(&outbox).unwrap();
    let code = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .rfind(|m| m["username"] == "zed")
        .unwrap()["code"]
        .as_str()
        .unwrap()
        .to_string();
    let ok = public(
        &b,
        "ConfirmSignUp",
        serde_json::json!({"ClientId": client_id, "Username": "zed", "ConfirmationCode": code}),
    )
    .await;
    assert_eq!(ok, serde_json::json!({}));
    assert!(
        auth(&a, &client_id, "zed", "Zed-password-1!").await["AuthenticationResult"].is_object()
    );

    // A user disabled through B cannot sign in on A.
    boto3(
        &b,
        "AdminDisableUser",
        serde_json::json!({"UserPoolId": POOL_ID, "Username": "zed"}),
    )
    .await;
    assert_eq!(
        auth(&a, &client_id, "zed", "Zed-password-1!").await["__type"],
        "NotAuthorizedException"
    );

    // A client deleted through B stops working on A.
    let gone = boto3(
        &b,
        "DeleteUserPoolClient",
        serde_json::json!({"UserPoolId": POOL_ID, "ClientId": client_id}),
    )
    .await;
    assert!(gone.get("error").is_none(), "{gone}");
    eventually(
        || auth(&a, &client_id, "bob", PASSWORD),
        |v| v["__type"] == "ResourceNotFoundException",
    )
    .await;

    drop((a, b));
    db.drop_it().await;
}

#[tokio::test]
async fn an_identity_provider_created_on_one_node_serves_logins_on_the_other() {
    let db = crate::kit::PgDatabase::create("test").await;
    let dir = tempfile::tempdir().unwrap();
    let base = free_port();
    let url = db.url();
    let (a, b) = tokio::join!(
        start(dir.path(), "a", &url, base),
        start(dir.path(), "b", &url, base)
    );
    // Explicit endpoints: nothing to discover, so no provider needs to run.
    let idp = "https://idp.partner.example";
    let created = boto3(
        &a,
        "CreateIdentityProvider",
        serde_json::json!({"UserPoolId": POOL_ID, "ProviderName": "Partner", "ProviderType": "OIDC",
            "ProviderDetails": {"client_id": "pool", "client_secret": "partner-secret", "oidc_issuer": idp,
                "authorize_url": format!("{idp}/authorize"), "token_url": format!("{idp}/token"),
                "attributes_url": format!("{idp}/userinfo"), "jwks_uri": format!("{idp}/jwks")}}),
    )
    .await;
    assert!(created["IdentityProvider"].is_object(), "{created}");
    let client = boto3(
        &a,
        "CreateUserPoolClient",
        serde_json::json!({"UserPoolId": POOL_ID, "ClientName": "fed", "AllowedOAuthFlows": ["code"],
            "AllowedOAuthScopes": ["openid"], "AllowedOAuthFlowsUserPoolClient": true,
            "CallbackURLs": ["http://localhost/cb"], "SupportedIdentityProviders": ["Partner"]}),
    )
    .await;
    let client_id = client["UserPoolClient"]["ClientId"]
        .as_str()
        .unwrap()
        .to_string();
    // Node B knows the provider once it reloads (≤ 2 s).
    eventually(
        || {
            boto3(
                &b,
                "DescribeIdentityProvider",
                serde_json::json!({"UserPoolId": POOL_ID, "ProviderName": "Partner"}),
            )
        },
        |v| v["IdentityProvider"]["ProviderDetails"]["client_id"] == "pool",
    )
    .await;
    // A login started on B ...
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let authorize = format!(
        "{}/oauth2/authorize?client_id={client_id}&response_type=code&scope=openid&redirect_uri=http://localhost/cb&state=app&identity_provider=Partner",
        b.url
    );
    let mut location = String::new();
    for _ in 0..60 {
        let r = browser.get(&authorize).send().await.unwrap();
        if let Some(l) = r.headers().get("location") {
            location = l.to_str().unwrap().to_string();
            if location.starts_with(idp) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        location.starts_with(&format!("{idp}/authorize?")),
        "{location}"
    );
    let state = reqwest::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    // ... finishes on A (the pending login is in the store): the provider's refusal reaches the app.
    let r = browser
        .get(format!(
            "{}/oauth2/idpresponse?error=access_denied&state={state}",
            a.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers().get("location").unwrap(),
        "http://localhost/cb?error=access_denied&state=app"
    );
    // Spent once for every node.
    let r = browser
        .get(format!(
            "{}/oauth2/idpresponse?error=access_denied&state={state}",
            b.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    drop((a, b));
    db.drop_it().await;
}
