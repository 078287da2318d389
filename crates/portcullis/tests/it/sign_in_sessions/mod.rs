//! Sign-in sessions (issue 13, the pool's side): `sid` in tokens, every trigger that ends a
//! session publishing on the pool's feed and killing refresh, `ended_sessions()`, back-channel
//! logout tokens received by a real server, and ends crossing nodes on one real PostgreSQL
//! (through `LISTEN`/`NOTIFY`, and after the listening connection was killed). This module holds
//! the pool served on port 0 and the calls the tests make; the tests are in one submodule per
//! topic.

use crate::kit::{PASSWORD, browser, location, post_sign_in, query_param};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_idp::Pool;
use portcullis_idp::domain::revocation::SessionEnded;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};

const NEW_PASSWORD: &str = "Another-horse-7!";
const NO_LIMITS: &str = "rate_limits = { per_ip = { burst = 10000, per_minute = 60000 }, per_user = { burst = 10000, per_minute = 60000 }, hash_queue = 1000 }";
const CB: &str = "http://localhost/cb";
const USERS: [&str; 12] = [
    "alice",
    "u-global",
    "u-admin-global",
    "u-disable",
    "u-delete",
    "u-self-delete",
    "u-reset",
    "u-change",
    "u-forgot",
    "u-set",
    "u-logout",
    "u-revoke",
];

/// One pool served on port 0 (HTTP), with its store and state dir.
struct Served {
    pool: Arc<Pool>,
    url: String,
    outbox: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn pool_config(id: &str, base_url: &str, outbox: &std::path::Path, backchannel: &str) -> String {
    let users: Vec<String> = USERS
        .iter()
        .map(|u| {
            format!(
                r#"{{ username = "{u}", password = "{PASSWORD}", attributes = {{ email = "{u}@example.com" }} }}"#
            )
        })
        .collect();
    format!(
        r#"
[load_balancer]
name = "sessions"
state_dir = "/tmp/unused"

[[user_pools]]
name = "sessions"
id = "{id}"
domain = {{ listen = "127.0.0.1:0", base_url = "{base_url}" }}
messages = {{ outbox = "{outbox}" }}
{NO_LIMITS}
users = [{users}]

[[user_pools.clients]]
client_id = "web-a"
allowed_oauth_flows = ["code"]
allowed_oauth_scopes = ["openid", "email"]
callback_urls = ["{CB}"]
logout_urls = ["http://localhost/bye"]
explicit_auth_flows = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
refresh_token_validity = 1
{backchannel_a}

[[user_pools.clients]]
client_id = "web-b"
allowed_oauth_flows = ["code"]
allowed_oauth_scopes = ["openid", "email"]
callback_urls = ["{CB}"]
{backchannel_b}
"#,
        outbox = outbox.display(),
        users = users.join(", "),
        backchannel_a = if backchannel.is_empty() {
            String::new()
        } else {
            format!(r#"backchannel_logout_uri = "{backchannel}/a""#)
        },
        backchannel_b = if backchannel.is_empty() {
            String::new()
        } else {
            format!(
                r#"backchannel_logout_uri = "{backchannel}/b"
backchannel_logout_session_required = true"#
            )
        },
    )
}

/// Opens a pool on `store` (`None`: SQLite in a new state dir) and serves it on port 0.
async fn serve(store: Option<Arc<dyn portcullis_idp::Store>>, backchannel: &str) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://localhost:{}", tcp.local_addr().unwrap().port());
    let outbox = dir.path().join("outbox.jsonl");
    let text = pool_config("us-east-1_Sessions1", &url, &outbox, backchannel);
    let loaded = portcullis_config::load_str(
        &text,
        std::path::Path::new("sessions.toml"),
        std::path::Path::new("."),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let cfg = loaded.config.user_pools[0].clone();
    let store = match store {
        Some(s) => s,
        None => portcullis_idp::store::open(None, dir.path()).await.unwrap(),
    };
    let pool = Pool::open(&cfg, "us-east-1", store, Default::default(), dir.path())
        .await
        .unwrap();
    pool.seed_users(&cfg, |u| Ok::<_, String>(u.password.clone().unwrap()))
        .await
        .unwrap();
    let pool = Arc::new(pool);
    tokio::spawn(portcullis_idp::serve(
        tcp,
        pool.clone(),
        None,
        std::future::pending(),
    ));
    Served {
        pool,
        url,
        outbox,
        _dir: dir,
    }
}

fn code_of(callback: &str) -> String {
    assert!(callback.starts_with(CB), "{callback}");
    query_param(callback, "code")
}

fn authorize_url(s: &Served, client: &str) -> String {
    format!(
        "{}/oauth2/authorize?client_id={client}&redirect_uri={CB}&response_type=code&scope=openid+email",
        s.url
    )
}

/// Signs `user` in through the hosted UI for `client`; returns the code.
async fn hosted_sign_in(s: &Served, b: &reqwest::Client, client: &str, user: &str) -> String {
    let r = b.get(authorize_url(s, client)).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let login = format!("{}{}", s.url, location(&r));
    let r = post_sign_in(b, &login, user, PASSWORD).await;
    assert_eq!(r.status(), 302, "sign-in succeeds");
    code_of(&location(&r))
}

/// A code for `client` from the browser's live hosted-UI session (no password).
async fn silent_code(s: &Served, b: &reqwest::Client, client: &str) -> String {
    let r = b.get(authorize_url(s, client)).send().await.unwrap();
    assert_eq!(r.status(), 302);
    code_of(&location(&r))
}

async fn token(s: &Served, form: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/oauth2/token", s.url))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn redeem(s: &Served, client: &str, code: &str) -> Value {
    let (status, body) = token(
        s,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client),
            ("code", code),
            ("redirect_uri", CB),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn refresh_status(s: &Served, client: &str, refresh: &str) -> (u16, Value) {
    token(
        s,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", client),
            ("refresh_token", refresh),
        ],
    )
    .await
}

/// A public Cognito API call over HTTP.
async fn api(s: &Served, op: &str, params: Value) -> (u16, Value) {
    crate::kit::PoolApi::at(&s.url).call(op, params).await
}

/// `InitiateAuth` with `USER_PASSWORD_AUTH`: the `AuthenticationResult`.
async fn api_sign_in(s: &Served, user: &str) -> Value {
    let (status, body) = api(
        s,
        "InitiateAuth",
        json!({"ClientId": "web-a", "AuthFlow": "USER_PASSWORD_AUTH",
            "AuthParameters": {"USERNAME": user, "PASSWORD": PASSWORD}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["AuthenticationResult"].clone()
}

/// `InitiateAuth` with `REFRESH_TOKEN_AUTH`: the status.
async fn api_refresh(s: &Served, refresh: &str) -> (u16, Value) {
    api(
        s,
        "InitiateAuth",
        json!({"ClientId": "web-a", "AuthFlow": "REFRESH_TOKEN_AUTH",
            "AuthParameters": {"REFRESH_TOKEN": refresh}}),
    )
    .await
}

/// An admin operation, run as the CLI runs it (the same dispatch as the signed API).
async fn admin(s: &Served, op: &str, params: Value) {
    let Value::Object(m) = params else { panic!() };
    portcullis_idp::admin_api::call(&s.pool, op, m)
        .await
        .unwrap_or_else(|e| panic!("{op}: {e:?}"));
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn header(jwt: &str) -> Value {
    let h = jwt.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap()
}

/// The hosted UI's `/logout` for client `web-a` with browser `b`: a 302 to its logout URI.
async fn hosted_logout(s: &Served, b: &reqwest::Client) {
    let r = b
        .get(format!(
            "{}/logout?client_id=web-a&logout_uri=http://localhost/bye",
            s.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "http://localhost/bye");
}

/// A JSON document the pool publishes under its id (`.well-known/…`).
async fn well_known(s: &Served, document: &str) -> Value {
    let r = reqwest::get(format!(
        "{}/us-east-1_Sessions1/.well-known/{document}",
        s.url
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 200, "{document}");
    r.json().await.unwrap()
}

fn sid_of(jwt: &str) -> String {
    claims(jwt)["sid"]
        .as_str()
        .expect("a sid claim")
        .to_string()
}

/// The next event on `feed`, waiting at most `limit`.
async fn next_event(feed: &mut broadcast::Receiver<SessionEnded>, limit: Duration) -> SessionEnded {
    tokio::time::timeout(limit, feed.recv())
        .await
        .expect("an event in time")
        .expect("the feed is open")
}

fn sub_of(jwt: &str) -> String {
    claims(jwt)["sub"].as_str().unwrap().to_string()
}

mod back_channel;
mod ends;
mod postgres;
mod sid;
