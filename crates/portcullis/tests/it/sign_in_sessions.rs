//! Sign-in sessions (issue 13, the pool's side): `sid` in tokens, every trigger that ends a
//! session publishing on the pool's feed and killing refresh, `ended_sessions()`, back-channel
//! logout tokens received by a real server, and ends crossing nodes on one real PostgreSQL
//! (through `LISTEN`/`NOTIFY`, and after the listening connection was killed).

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

#[tokio::test]
async fn sid_is_shared_by_a_browser_session_and_kept_across_refresh() {
    let s = serve(None, "").await;
    let b = browser();
    let code_a = hosted_sign_in(&s, &b, "web-a", "alice").await;
    let code_b = silent_code(&s, &b, "web-b").await;
    let a = redeem(&s, "web-a", &code_a).await;
    let bt = redeem(&s, "web-b", &code_b).await;
    let sid = sid_of(a["id_token"].as_str().unwrap());
    assert!(sid.len() >= 22, "at least 128 bits: {sid}");
    assert_eq!(
        sid,
        sid_of(bt["id_token"].as_str().unwrap()),
        "one browser session, one sid"
    );
    assert_eq!(
        sid,
        sid_of(a["access_token"].as_str().unwrap()),
        "access tokens carry it too"
    );
    let rec = s
        .pool
        .sign_in_session(&sid)
        .await
        .unwrap()
        .expect("recorded");
    assert_eq!(rec.clients, vec!["web-a".to_string(), "web-b".to_string()]);
    assert!(rec.ended_at.is_none());
    // Refresh keeps the sid.
    let (status, r) = refresh_status(&s, "web-a", a["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(sid_of(r["id_token"].as_str().unwrap()), sid);
    // Another browser: another session.
    let other = hosted_sign_in(&s, &browser(), "web-a", "alice").await;
    let o = redeem(&s, "web-a", &other).await;
    assert_ne!(sid_of(o["id_token"].as_str().unwrap()), sid);
    // Each API sign-in is a session of its own, kept across its refresh.
    let t1 = api_sign_in(&s, "alice").await;
    let t2 = api_sign_in(&s, "alice").await;
    let sid1 = sid_of(t1["IdToken"].as_str().unwrap());
    assert_ne!(sid1, sid_of(t2["IdToken"].as_str().unwrap()));
    assert_ne!(sid1, sid);
    let (status, r) = api_refresh(&s, t1["RefreshToken"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        sid_of(r["AuthenticationResult"]["IdToken"].as_str().unwrap()),
        sid1
    );
    let d: Value = reqwest::get(format!(
        "{}/us-east-1_Sessions1/.well-known/openid-configuration",
        s.url
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(d["backchannel_logout_supported"], true);
    assert_eq!(d["backchannel_logout_session_supported"], true);
}

#[tokio::test]
async fn every_trigger_ends_sessions_publishes_and_stops_refresh() {
    let s = serve(None, "").await;
    let long = Duration::from_secs(10);
    // API sign-ins ended through the API.
    for (user, op) in [
        ("u-global", "GlobalSignOut"),
        ("u-admin-global", "AdminUserGlobalSignOut"),
        ("u-disable", "AdminDisableUser"),
        ("u-delete", "AdminDeleteUser"),
        ("u-self-delete", "DeleteUser"),
        ("u-reset", "AdminResetUserPassword"),
        ("u-change", "ChangePassword"),
        ("u-forgot", "ConfirmForgotPassword"),
        ("u-set", "AdminSetUserPassword"),
    ] {
        let t = api_sign_in(&s, user).await;
        let access = t["AccessToken"].as_str().unwrap().to_string();
        let refresh = t["RefreshToken"].as_str().unwrap().to_string();
        let sub = sub_of(&access);
        let sid = sid_of(&access);
        let mut feed = s.pool.subscribe_session_ends();
        match op {
            "GlobalSignOut" | "DeleteUser" => {
                let (status, body) = api(&s, op, json!({"AccessToken": access})).await;
                assert_eq!(status, 200, "{op}: {body}");
            }
            "ChangePassword" => {
                let (status, body) = api(
                    &s,
                    op,
                    json!({"AccessToken": access, "PreviousPassword": PASSWORD,
                        "ProposedPassword": NEW_PASSWORD}),
                )
                .await;
                assert_eq!(status, 200, "{op}: {body}");
            }
            "ConfirmForgotPassword" => {
                let (status, body) = api(
                    &s,
                    "ForgotPassword",
                    json!({"ClientId": "web-a", "Username": user}),
                )
                .await;
                assert_eq!(status, 200, "{body}");
                let outbox = std::fs::read_to_string(&s.outbox).unwrap();
                let line: Value = outbox
                    .lines()
                    .rev()
                    .map(|l| serde_json::from_str::<Value>(l).unwrap())
                    .find(|l| l.to_string().contains(user))
                    .expect("a reset code in the outbox");
                let (status, body) = api(
                    &s,
                    op,
                    json!({"ClientId": "web-a", "Username": user,
                        "ConfirmationCode": line["code"], "Password": NEW_PASSWORD}),
                )
                .await;
                assert_eq!(status, 200, "{op}: {body}");
            }
            "AdminSetUserPassword" => {
                admin(
                    &s,
                    op,
                    json!({"Username": user, "Password": NEW_PASSWORD, "Permanent": true}),
                )
                .await
            }
            _ => admin(&s, op, json!({"Username": user})).await,
        }
        let e = next_event(&mut feed, long).await;
        assert_eq!(e.issuer, s.pool.issuer, "{op}");
        assert_eq!(e.sub, sub, "{op}");
        assert_eq!(e.sid, None, "{op} ends every session of the user");
        // Then each live session by its sid (those begun in the end's own second included).
        let mut by_sid = Vec::new();
        while let Ok(e) = feed.try_recv() {
            assert_eq!(e.sub, sub, "{op}");
            by_sid.push(e.sid.expect("after the user-wide event, sid events"));
        }
        assert!(
            by_sid.contains(&sid),
            "{op}: the session's own end is published"
        );
        let (status, body) = api_refresh(&s, &refresh).await;
        assert_eq!(status, 400, "{op}: refresh after it must fail: {body}");
        let rec = s.pool.sign_in_session(&sid).await.unwrap();
        assert!(
            rec.is_none_or(|r| r.ended_at.is_some()),
            "{op}: the session is recorded as ended"
        );
    }
    // The hosted UI's /logout ends that browser's session, and /oauth2/revoke the session of
    // the refresh token.
    for user in ["u-logout", "u-revoke"] {
        let b = browser();
        let code = hosted_sign_in(&s, &b, "web-a", user).await;
        let t = redeem(&s, "web-a", &code).await;
        let (id, refresh) = (
            t["id_token"].as_str().unwrap().to_string(),
            t["refresh_token"].as_str().unwrap().to_string(),
        );
        let mut feed = s.pool.subscribe_session_ends();
        if user == "u-logout" {
            let r = b
                .get(format!(
                    "{}/logout?client_id=web-a&logout_uri=http://localhost/bye",
                    s.url
                ))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 302);
        } else {
            let r = reqwest::Client::new()
                .post(format!("{}/oauth2/revoke", s.url))
                .form(&[("token", refresh.as_str()), ("client_id", "web-a")])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            // The browser's session is over as well: no silent code.
            let r = b.get(authorize_url(&s, "web-a")).send().await.unwrap();
            assert!(location(&r).starts_with("/login?"), "{}", location(&r));
        }
        let e = next_event(&mut feed, long).await;
        assert_eq!(e.sid.as_deref(), Some(sid_of(&id).as_str()), "{user}");
        assert_eq!(e.sub, sub_of(&id));
        let (status, body) = refresh_status(&s, "web-a", &refresh).await;
        assert_eq!(status, 400, "{user}: {body}");
        assert_eq!(body["error"], "invalid_grant");
    }
}

#[tokio::test]
async fn ended_sessions_lists_ends_until_their_tokens_expire() {
    let s = serve(None, "").await;
    let t = api_sign_in(&s, "alice").await;
    let sid = sid_of(t["IdToken"].as_str().unwrap());
    let sub = sub_of(t["IdToken"].as_str().unwrap());
    assert!(s.pool.ended_sessions().await.unwrap().is_empty());
    // One session ended by revoking its refresh token, then every session of the user.
    let r = reqwest::Client::new()
        .post(format!("{}/oauth2/revoke", s.url))
        .form(&[
            ("token", t["RefreshToken"].as_str().unwrap()),
            ("client_id", "web-a"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    admin(&s, "AdminUserGlobalSignOut", json!({"Username": "alice"})).await;
    let ended = s.pool.ended_sessions().await.unwrap();
    assert_eq!(ended.len(), 2, "{ended:?}");
    assert_eq!(ended[0].sid.as_deref(), Some(sid.as_str()));
    assert_eq!(ended[1].sid, None);
    assert!(
        ended
            .iter()
            .all(|e| e.sub == sub && e.issuer == s.pool.issuer)
    );
    // Ending again publishes no second end of the same session.
    assert!(!s.pool.end_sign_in(&sid).await.unwrap());
    // Past every token's lifetime the ends are forgotten.
    // The session's own end goes with its tokens (web-a's refresh tokens live a day); the
    // user-wide end stays as long as any client's tokens may live (30 days).
    s.pool.advance_clock(2 * 86400);
    assert_eq!(s.pool.ended_sessions().await.unwrap().len(), 1);
    s.pool.advance_clock(31 * 86400);
    assert!(s.pool.ended_sessions().await.unwrap().is_empty());
}

#[tokio::test]
async fn only_the_sessions_own_credentials_end_it() {
    let s = serve(None, "").await;
    let b = browser();
    let code = hosted_sign_in(&s, &b, "web-a", "alice").await;
    let t = redeem(&s, "web-a", &code).await;
    let refresh = t["refresh_token"].as_str().unwrap();
    let sid = sid_of(t["id_token"].as_str().unwrap());
    // Another client presenting the token, a made-up token, another browser's /logout, and a
    // sign-out with a forged access token end nothing.
    for (token, client) in [(refresh, "web-b"), ("made-up-refresh-token", "web-a")] {
        let r = reqwest::Client::new()
            .post(format!("{}/oauth2/revoke", s.url))
            .form(&[("token", token), ("client_id", client)])
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "unknown tokens succeed silently, as Cognito"
        );
    }
    let r = browser()
        .get(format!(
            "{}/logout?client_id=web-a&logout_uri=http://localhost/bye",
            s.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let access = t["access_token"].as_str().unwrap();
    let forged = format!("{}x", &access[..access.len() - 1]);
    let (status, _) = api(&s, "GlobalSignOut", json!({"AccessToken": forged})).await;
    assert_eq!(status, 400);
    let rec = s.pool.sign_in_session(&sid).await.unwrap().unwrap();
    assert!(rec.ended_at.is_none(), "still live");
    let (status, body) = refresh_status(&s, "web-a", refresh).await;
    assert_eq!(status, 200, "{body}");
    assert!(s.pool.ended_sessions().await.unwrap().is_empty());
}

/// A relying party's back-channel logout endpoint on port 0: hands each POST over.
async fn logout_receiver() -> (String, mpsc::Receiver<(String, String, String)>) {
    let (tx, rx) = mpsc::channel(16);
    let app = axum::Router::new().route(
        "/{client}",
        axum::routing::post(
            move |axum::extract::Path(client): axum::extract::Path<String>,
                  headers: axum::http::HeaderMap,
                  body: String| {
                let tx = tx.clone();
                async move {
                    let ct = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let _ = tx.send((client, ct, body)).await;
                    axum::http::StatusCode::OK
                }
            },
        ),
    );
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", tcp.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(tcp, app).await.unwrap() });
    (url, rx)
}

#[tokio::test]
async fn back_channel_logout_tokens_are_signed_and_complete() {
    let (receiver, mut rx) = logout_receiver().await;
    let s = serve(None, &receiver).await;
    let b = browser();
    let code_a = hosted_sign_in(&s, &b, "web-a", "alice").await;
    let code_b = silent_code(&s, &b, "web-b").await;
    let id = redeem(&s, "web-a", &code_a).await["id_token"]
        .as_str()
        .unwrap()
        .to_string();
    redeem(&s, "web-b", &code_b).await;
    let sid = sid_of(&id);
    let r = b
        .get(format!(
            "{}/logout?client_id=web-a&logout_uri=http://localhost/bye",
            s.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let jwks: Value = reqwest::get(format!(
        "{}/us-east-1_Sessions1/.well-known/jwks.json",
        s.url
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let (client, content_type, body) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a logout token in time")
            .unwrap();
        assert_eq!(content_type, "application/x-www-form-urlencoded");
        let form: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(form.len(), 1, "{form:?}");
        assert_eq!(form[0].0, "logout_token");
        let jwt = &form[0].1;
        let h = header(jwt);
        assert_eq!(h["typ"], "logout+jwt");
        assert_eq!(h["alg"], "RS256");
        // The signature, by a key of the pool's JWKS (the ID-token key).
        let jwk = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == h["kid"])
            .expect("the kid is published");
        assert_eq!(h["kid"], header(&id)["kid"], "signed as the ID tokens are");
        let key = jsonwebtoken::DecodingKey::from_rsa_components(
            jwk["n"].as_str().unwrap(),
            jwk["e"].as_str().unwrap(),
        )
        .unwrap();
        let aud = format!("web-{client}");
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        v.set_audience(&[aud.as_str()]);
        v.set_issuer(&[s.pool.issuer.as_str()]);
        v.set_required_spec_claims(&["iss", "aud", "exp", "iat", "sub"]);
        let c = jsonwebtoken::decode::<Value>(jwt, &key, &v)
            .unwrap_or_else(|e| panic!("logout token does not verify: {e}"))
            .claims;
        let now = portcullis_core::now() as i64;
        let iat = c["iat"].as_i64().unwrap();
        assert!((now - 60..=now + 5).contains(&iat), "iat {iat} now {now}");
        let exp = c["exp"].as_i64().unwrap();
        assert!(exp > iat && exp - iat <= 300, "short-lived: {c}");
        assert!(!c["jti"].as_str().unwrap().is_empty());
        assert_eq!(c["sub"], claims(&id)["sub"]);
        assert_eq!(c["sid"], sid.as_str());
        assert_eq!(
            c["events"],
            json!({"http://schemas.openid.net/event/backchannel-logout": {}})
        );
        assert!(c.get("nonce").is_none(), "no nonce in a logout token");
        seen.push(aud);
    }
    seen.sort();
    assert_eq!(seen, ["web-a", "web-b"], "each client of the session once");
    // The client field through the API: ours, named as such, validated as in the config.
    let created = portcullis_idp::admin_api::call(
        &s.pool,
        "CreateUserPoolClient",
        json!({"ClientName": "rp", "PortcullisBackchannelLogoutURI": "https://rp.example/bcl",
            "PortcullisBackchannelLogoutSessionRequired": true})
        .as_object()
        .unwrap()
        .clone(),
    )
    .await
    .unwrap();
    let c = &created["UserPoolClient"];
    assert_eq!(
        c["PortcullisBackchannelLogoutURI"],
        "https://rp.example/bcl"
    );
    assert_eq!(c["PortcullisBackchannelLogoutSessionRequired"], true);
    let described = portcullis_idp::admin_api::call(
        &s.pool,
        "DescribeUserPoolClient",
        json!({"ClientId": c["ClientId"]})
            .as_object()
            .unwrap()
            .clone(),
    )
    .await
    .unwrap();
    assert_eq!(
        described["UserPoolClient"]["PortcullisBackchannelLogoutURI"],
        "https://rp.example/bcl"
    );
    let refused = portcullis_idp::admin_api::call(
        &s.pool,
        "CreateUserPoolClient",
        json!({"ClientName": "rp2", "PortcullisBackchannelLogoutURI": "http://rp.example/bcl"})
            .as_object()
            .unwrap()
            .clone(),
    )
    .await;
    assert!(refused.is_err(), "plain http off loopback is refused");
}

#[tokio::test]
async fn a_failing_back_channel_client_gets_the_same_token_again() {
    // The relying party answers 503 to the first attempt, then 200.
    let (tx, mut rx) = mpsc::channel::<String>(16);
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/{client}",
        axum::routing::post(move |body: String| {
            let (tx, seen) = (tx.clone(), seen.clone());
            async move {
                let _ = tx.send(body).await;
                if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = format!("http://127.0.0.1:{}", tcp.local_addr().unwrap().port());
    tokio::spawn(async move { axum::serve(tcp, app).await.unwrap() });
    let s = serve(None, &receiver).await;
    let t = api_sign_in(&s, "alice").await;
    admin(&s, "AdminUserGlobalSignOut", json!({"Username": "alice"})).await;
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(
            tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("a delivery attempt in time")
                .unwrap(),
        );
    }
    assert_eq!(got[0], got[1], "the same logout token, retried");
    let jwt = form_urlencoded::parse(got[0].as_bytes())
        .find(|(k, _)| k == "logout_token")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(
        claims(&jwt)["sid"],
        sid_of(t["IdToken"].as_str().unwrap()).as_str()
    );
}

// ---- several nodes on one PostgreSQL ----

/// Waits (bounded) until `f` holds.
async fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "not in time: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn ends_cross_nodes_on_postgres_even_while_a_listener_was_down() {
    let db = crate::kit::PgDatabase::create("sessions").await;
    let url = db.url();
    let store_a = Arc::new(portcullis_idp::PgStore::connect(&url).await.unwrap());
    let store_b = Arc::new(portcullis_idp::PgStore::connect(&url).await.unwrap());
    let a = serve(Some(store_a.clone()), "").await;
    let b = serve(Some(store_b.clone()), "").await;
    let limit = Duration::from_secs(10);
    until("node B listens", limit, || {
        store_b.session_listener().connected
    })
    .await;

    // Ended on A, heard on B.
    let t = api_sign_in(&a, "alice").await;
    let sid = sid_of(t["IdToken"].as_str().unwrap());
    let mut feed_b = b.pool.subscribe_session_ends();
    let started = Instant::now();
    assert!(a.pool.end_sign_in(&sid).await.unwrap());
    let e = next_event(&mut feed_b, limit).await;
    println!(
        "session end from node A reached node B's feed in {:?}",
        started.elapsed()
    );
    assert_eq!(e.sid.as_deref(), Some(sid.as_str()));
    assert_eq!(e.issuer, b.pool.issuer);
    // Refresh of the ended session fails on the other node too.
    let (status, _) = api_refresh(&b, t["RefreshToken"].as_str().unwrap()).await;
    assert_eq!(status, 400);

    // B's LISTEN connection is killed, and kept down while A signs the user out everywhere.
    store_b.hold_session_listener(true);
    let killed = crate::kit::pg_admin()
        .await
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&format!("portcullis-listen-{}", store_b.node_id())],
        )
        .await
        .unwrap();
    assert_eq!(killed.len(), 1, "B's listening connection found");
    until("B notices", limit, || !store_b.session_listener().connected).await;
    let t = api_sign_in(&a, "alice").await;
    let sub = sub_of(t["IdToken"].as_str().unwrap());
    admin(&a, "AdminUserGlobalSignOut", json!({"Username": "alice"})).await;
    store_b.hold_session_listener(false);
    // Catching up re-reads a little before the gap: earlier ends may come again (duplicates are
    // allowed), the missed one must come.
    let deadline = Instant::now() + limit;
    loop {
        let e = next_event(
            &mut feed_b,
            deadline.saturating_duration_since(Instant::now()),
        )
        .await;
        if e.sid.is_none() {
            assert_eq!(e.sub, sub, "caught up after reconnecting");
            break;
        }
    }
    let state = store_b.session_listener();
    assert!(
        state.connected && state.reconnects >= 1 && state.caught_up >= 1,
        "{state:?}"
    );
    // A late subscriber on B sees the ends from the store: the first session's, the user-wide
    // one, and the second session's own.
    let ends = b.pool.ended_sessions().await.unwrap();
    assert_eq!(ends.len(), 3, "{ends:?}");
    assert_eq!(ends.iter().filter(|e| e.sid.is_none()).count(), 1);

    drop((a, b, store_a, store_b));
    db.drop_it().await;
}

#[tokio::test]
async fn tokens_racing_an_end_on_another_node_are_refused_or_revoked() {
    let db = crate::kit::PgDatabase::create("race").await;
    let url = db.url();
    let a = serve(
        Some(Arc::new(
            portcullis_idp::PgStore::connect(&url).await.unwrap(),
        )),
        "",
    )
    .await;
    let b = serve(
        Some(Arc::new(
            portcullis_idp::PgStore::connect(&url).await.unwrap(),
        )),
        "",
    )
    .await;
    let a = Arc::new(a);
    let b = Arc::new(b);
    let browser_a = browser();
    let first = hosted_sign_in(&a, &browser_a, "web-a", "alice").await;
    let sid = sid_of(
        redeem(&a, "web-a", &first).await["id_token"]
            .as_str()
            .unwrap(),
    );
    let mut codes = Vec::new();
    for i in 0..20 {
        let client = if i % 2 == 0 { "web-a" } else { "web-b" };
        codes.push((client, silent_code(&a, &browser_a, client).await));
    }
    // The first codes are redeemed before the end; the rest race it, half on A and half on B,
    // while B ends the session.
    let mut tasks = Vec::new();
    for (i, (client, code)) in codes.into_iter().enumerate() {
        let node = if i % 2 == 0 { a.clone() } else { b.clone() };
        if i < 4 {
            let body = redeem(&node, client, &code).await;
            tasks.push(tokio::spawn(async move { (client, 200, body) }));
            continue;
        }
        tasks.push(tokio::spawn(async move {
            let (status, body) = token(
                &node,
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", client),
                    ("code", &code),
                    ("redirect_uri", CB),
                ],
            )
            .await;
            (client, status, body)
        }));
        if i == 6 {
            let (b, sid) = (b.clone(), sid.clone());
            tasks.push(tokio::spawn(async move {
                assert!(b.pool.end_sign_in(&sid).await.unwrap());
                ("end", 200, Value::Null)
            }));
        }
    }
    // Every redemption and the end are over before refreshes are tried.
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let (mut given, mut refused) = (0, 0);
    for (client, status, body) in results {
        if client == "end" {
            continue;
        }
        if status == 200 {
            given += 1;
            let refresh = body["refresh_token"].as_str().unwrap();
            for node in [&a, &b] {
                let (status, r) = refresh_status(node, client, refresh).await;
                assert_eq!(
                    status, 400,
                    "tokens given in an ended session are revoked: {r}"
                );
            }
        } else {
            refused += 1;
            assert_eq!(body["error"], "invalid_grant", "{body}");
        }
    }
    println!("{given} codes gave tokens before the end, {refused} were refused after it");
    assert_eq!(given + refused, 20);
    assert!(given >= 4 && refused >= 1);
    drop((a, b));
    db.drop_it().await;
}
