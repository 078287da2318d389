//! The balancer and relying party under attack (issue 10, items 7–12): protocol upgrades that
//! would tunnel past the rules, reserved headers smuggled under other spellings, credential
//! cookies leaking to targets, forged stickiness cookies, a hostile OIDC provider, cross-site
//! logout, and the login nonce and what is derived from it.

use crate::kit::*;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every request head a raw target received, as text (lower-cased).
type Heads = Arc<Mutex<Vec<String>>>;

/// Reads one request head (to the blank line) from `s`; `None` at end of stream.
async fn read_head(s: &mut tokio::net::TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).to_ascii_lowercase())
}

/// A raw HTTP/1.1 target that agrees to every `Upgrade` it is asked for with a 101 (naming
/// `answer_protocol`, or the protocol asked for when `None`), then reads the next request head
/// from the switched connection as a tunnelled one. Plain requests get a small 200. Every head
/// it reads is recorded.
async fn upgrading_target(answer_protocol: Option<&'static str>) -> (u16, Heads) {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let heads: Heads = Arc::default();
    let seen = heads.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = tcp.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                while let Some(head) = read_head(&mut s).await {
                    seen.lock().unwrap().push(head.clone());
                    let asked = head
                        .lines()
                        .find_map(|l| l.strip_prefix("upgrade:"))
                        .map(|p| p.trim().to_string());
                    if let Some(asked) = asked {
                        let proto = answer_protocol.map_or(asked, str::to_string);
                        let switch = format!(
                            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: {proto}\r\n\r\n"
                        );
                        let _ = s.write_all(switch.as_bytes()).await;
                        // Whatever comes next is tunnelled: answer it and close.
                        if let Some(tunnelled) = read_head(&mut s).await {
                            seen.lock().unwrap().push(format!("TUNNELLED {tunnelled}"));
                            let _ = s
                                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\ntunnelled")
                                .await;
                        }
                        return;
                    }
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        .await;
                }
            });
        }
    });
    (port, heads)
}

/// Sends `bytes` to the plain listener and reads until the balancer closes (10 s at most).
async fn raw_exchange(port: u16, bytes: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(bytes.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// A kit whose plain listener forwards everything to `port` (a raw target).
async fn kit_forwarding_to(port: u16) -> Kit {
    let group = format!(
        "[[target_groups]]\nname = \"raw\"\nhealth_check = {{ enabled = false }}\ntargets = [{{ id = \"127.0.0.1\", port = {port} }}]\n"
    );
    let kit = Kit::builder().toml(&group).start().await;
    kit.reload_replacing(
        r#"default_actions = [{ type = "forward", target_group = "echo" }]"#,
        r#"default_actions = [{ type = "forward", target_group = "raw" }]"#,
    )
    .await;
    kit
}

/// Item 7: `Upgrade: h2c` is not tunnelled. Before the fix, the target's 101 joined the two
/// connections and the request smuggled after it (with a forged identity) reached the target
/// without passing the balancer: no rule, no authenticate action, no header stripping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_upgrade_is_never_tunnelled() {
    let (port, heads) = upgrading_target(None).await;
    let kit = kit_forwarding_to(port).await;
    let answer = raw_exchange(
        kit.http_port,
        "GET /open/x HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n\
         GET /tasks/admin HTTP/1.1\r\nHost: localhost\r\nx-amzn-oidc-identity: admin\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        !answer.contains(" 101 "),
        "no switch reaches the client: {answer}"
    );
    let heads = heads.lock().unwrap().clone();
    assert!(!heads.is_empty(), "the first request was forwarded");
    for h in &heads {
        assert!(!h.starts_with("tunnelled"), "a request was tunnelled: {h}");
        assert!(!h.contains("upgrade"), "the upgrade was forwarded: {h}");
        assert!(
            h.contains("x-forwarded-for:"),
            "every request the target gets went through the balancer: {h}"
        );
        assert!(!h.contains("x-amzn-oidc-identity"), "forged identity: {h}");
    }
}

/// Item 7: a WebSocket upgrade answered with a 101 to another protocol is not tunnelled (502).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_101_to_another_protocol_is_not_tunnelled() {
    let (port, heads) = upgrading_target(Some("h2c")).await;
    let kit = kit_forwarding_to(port).await;
    let answer = raw_exchange(
        kit.http_port,
        "GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n\
         GET /smuggled HTTP/1.1\r\nHost: localhost\r\nx-amzn-oidc-identity: admin\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 502"), "{answer}");
    let heads = heads.lock().unwrap().clone();
    assert!(
        heads.iter().all(|h| !h.starts_with("tunnelled")),
        "{heads:?}"
    );
    // A CONNECT is refused outright: a 2xx to it would be a tunnel too.
    let answer = raw_exchange(
        kit.http_port,
        "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
}

/// The headers the echo target received.
fn echoed(v: &serde_json::Value) -> Vec<String> {
    v["headers"].as_object().unwrap().keys().cloned().collect()
}

/// Whether a header name is one the balancer owns, read as targets read it (`_` as `-`).
fn owned(name: &str) -> bool {
    let n = name.to_ascii_lowercase().replace('_', "-");
    [
        "x-amzn-oidc-",
        "x-portcullis-",
        "x-amzn-tls-",
        "x-amzn-mtls-",
    ]
    .iter()
    .any(|p| n.starts_with(p))
        || (n != name
            && [
                "x-forwarded-for",
                "x-forwarded-proto",
                "x-forwarded-port",
                "x-amzn-trace-id",
            ]
            .contains(&n.as_str()))
}

const SMUGGLED: [&str; 10] = [
    "x_amzn_oidc_identity",
    "X_Amzn_Oidc_Data",
    "x-amzn-oidc_accesstoken",
    "x_portcullis_jwt",
    "X-Portcullis_Jwt",
    "x_amzn_tls_version",
    "x-amzn-tls-version",
    "X_AMZN_TLS_CIPHER_SUITE",
    "x_forwarded_for",
    "x_amzn_trace_id",
];

/// Item 8: reserved headers spelled with `_` or in mixed case, and the TLS headers while they are
/// off, never reach a target, on HTTP/1 (raw bytes, names as sent) and HTTP/2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_headers_are_stripped_by_their_normalised_name() {
    let kit = Kit::builder().start().await;
    // HTTP/1.1 on the plain listener, names exactly as written.
    let mut req = String::from("GET /h1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for n in SMUGGLED {
        req.push_str(&format!("{n}: forged\r\n"));
    }
    req.push_str("\r\n");
    let answer = raw_exchange(kit.http_port, &req).await;
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{answer}"));
    let got = echoed(&v);
    assert!(!got.iter().any(|n| owned(n)), "reached the target: {got:?}");
    assert!(
        !v["headers"].to_string().contains("forged"),
        "{}",
        v["headers"]
    );
    // HTTP/2 (names are lower case on the wire there) to a rule without authentication.
    let mut r = h2_client().get(kit.url("/open/h2"));
    for n in SMUGGLED {
        r = r.header(n.to_ascii_lowercase(), "forged");
    }
    let v: serde_json::Value = r.fetch_json().await;
    let got = echoed(&v);
    assert!(!got.iter().any(|n| owned(n)), "reached the target: {got:?}");
    assert!(!v["headers"].to_string().contains("forged"));
}

/// Item 9: a listener without any authenticate rule forwards none of the balancer's credential
/// cookies (any shard of any configured session cookie, the nonce) nor the pool's hosted-UI
/// cookies (browsers send a host's cookies to every port); other cookies pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_cookies_never_reach_a_target_on_any_listener() {
    let kit = Kit::builder().start().await;
    let cookies = "app=1; AWSELBAuthSessionCookie-0=s0; AWSELBAuthSessionCookie-3=s3; \
                   OidcSession-0=o0; DiscSession-1=d1; AWSALBAuthNonce=n; cognito=pool; \
                   XSRF-TOKEN=x; __Host-cognito=pool; __Host-XSRF-TOKEN=x; theme=dark";
    // The plain listener has no authenticate rule at all; the pool is on `localhost` too.
    let r = plain()
        .get(format!("http://localhost:{}/x", kit.http_port))
        .header("cookie", cookies)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["headers"]["cookie"], "app=1; theme=dark", "{v}");
    // An open rule of the HTTPS listener, over HTTP/2 (one cookie header per pair).
    let mut r = h2_client().get(kit.url("/open/x"));
    for c in cookies.split("; ") {
        r = r.header("cookie", c);
    }
    let v: serde_json::Value = r.fetch_json().await;
    assert_eq!(v["headers"]["cookie"], "app=1; theme=dark", "{v}");
}

/// Item 9, the other direction: a target (another app on the host, or a compromised one) cannot
/// plant a session, a nonce or the pool's session in the browser (session fixation, login CSRF).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_cannot_set_credential_cookies() {
    let port = serve_target(axum::Router::new().fallback(|| async {
        let mut h = axum::http::HeaderMap::new();
        for v in [
            "AWSELBAuthSessionCookie-0=fixated; Path=/",
            "OidcSession-0=fixated",
            "AWSALBAuthNonce=fixated",
            "cognito=fixated; Path=/",
            "app=1; Path=/",
        ] {
            h.append("set-cookie", v.parse().unwrap());
        }
        (h, "ok")
    }))
    .await;
    let kit = kit_forwarding_to(port).await;
    let r = plain()
        .get(format!("http://localhost:{}/x", kit.http_port))
        .send()
        .await
        .unwrap();
    let set: Vec<_> = set_cookies(&r);
    assert_eq!(set, ["app=1; Path=/"]);
}

async fn named(name: &'static str) -> u16 {
    serve_target(axum::Router::new().fallback(move || async move { name })).await
}

/// The stickiness token as it was before the fix: unkeyed SHA-256, which anyone can compute.
fn unkeyed_token(parts: &[&str]) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for p in parts {
        ctx.update(p.as_bytes());
        ctx.update(b"\0");
    }
    ctx.finish().as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Item 10: a stickiness cookie a client builds (its choice of target, an unlimited duration) is
/// ignored; the balancer's own cookie keeps the client on its target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_stickiness_cookies_are_ignored() {
    let (a, b) = (named("A").await, named("B").await);
    let kit = Kit::builder()
        .toml(&format!(
            r#"
[[listeners.rules]]
priority = 7
conditions = [{{ field = "path-pattern", values = ["/st/*"] }}]
actions = [{{ type = "forward", target_group = "pair" }}]

[[target_groups]]
name = "pair"
health_check = {{ enabled = false }}
targets = [{{ id = "127.0.0.1", port = {a} }}, {{ id = "127.0.0.1", port = {b} }}]
stickiness = {{ enabled = true, type = "lb_cookie", duration_seconds = 60 }}
"#
        ))
        .start()
        .await;
    let c = plain();
    // A genuine cookie keeps its target.
    let r = c.get(kit.url("/st/x")).send().await.unwrap();
    let genuine = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("AWSALB="))
        .expect("AWSALB set")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let first = r.text().await.unwrap();
    for _ in 0..6 {
        let body = c
            .get(kit.url("/st/x"))
            .header("cookie", &genuine)
            .fetch_text()
            .await;
        assert_eq!(body, first, "a genuine cookie keeps its target");
    }
    // A forged one: target B, valid until the year 5138, made as the balancer used to.
    let line = kit.log_line(&["/st/x", "targetgroup/pair/"]).await;
    let arn = line
        .split(' ')
        .find(|f| f.contains("targetgroup/pair/"))
        .unwrap()
        .to_string();
    let expiry = "99999999999";
    let forged = format!(
        "AWSALB={expiry}-{}",
        unkeyed_token(&[&arn, &format!("127.0.0.1:{b}"), expiry])
    );
    let mut seen = Vec::new();
    for _ in 0..6 {
        let r = c
            .get(kit.url("/st/x"))
            .header("cookie", &forged)
            .send()
            .await
            .unwrap();
        let reissued = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("AWSALB="))
            .map(str::to_string)
            .unwrap_or_default();
        assert!(
            !reissued.contains(expiry),
            "the forged duration is never renewed: {reissued}"
        );
        seen.push(r.text().await.unwrap());
    }
    assert!(
        seen.iter().any(|t| t == "A"),
        "the forged cookie chose every target: {seen:?}"
    );
}

/// A hostile OIDC provider (a fake): its ID token and userinfo are shaped by `Mode`.
mod hostile_idp {
    use axum::extract::State;
    use base64::Engine;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    /// What the provider gets wrong.
    #[derive(Clone, Copy, Debug)]
    pub enum Mode {
        /// Nothing: a correct login.
        Honest,
        /// The ID token lacks a claim.
        Without(&'static str),
        /// `aud` names this client and another, with no `azp`.
        SeveralAudiencesNoAzp,
        /// `aud` names this client and another, `azp` the other.
        AzpOfAnotherClient,
        /// Userinfo describes another user than the ID token.
        UserinfoOfAnotherSubject,
    }

    pub const ISSUER: &str = "https://hostile-idp.test";
    pub const CLIENT: &str = "rp";

    fn id_token(mode: Mode) -> String {
        let b = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let now = portcullis_core::now();
        let mut claims = serde_json::json!({"iss": ISSUER, "aud": CLIENT, "exp": now + 300, "iat": now, "sub": "victim"});
        let c = claims.as_object_mut().unwrap();
        match mode {
            Mode::Without(k) => {
                c.remove(k);
            }
            Mode::SeveralAudiencesNoAzp => {
                c.insert("aud".into(), serde_json::json!([CLIENT, "other"]));
            }
            Mode::AzpOfAnotherClient => {
                c.insert("aud".into(), serde_json::json!([CLIENT, "other"]));
                c.insert("azp".into(), "other".into());
            }
            _ => {}
        }
        format!(
            "{}.{}.c2ln",
            b(serde_json::json!({"alg": "RS256"})),
            b(claims)
        )
    }

    pub async fn start() -> (SocketAddr, Arc<Mutex<Mode>>) {
        let mode = Arc::new(Mutex::new(Mode::Honest));
        let app = axum::Router::new()
            .route(
                "/token",
                axum::routing::post(|State(m): State<Arc<Mutex<Mode>>>| async move {
                    let mode = *m.lock().unwrap();
                    axum::Json(serde_json::json!({"access_token": "at", "id_token": id_token(mode), "token_type": "Bearer", "expires_in": 3600}))
                }),
            )
            .route(
                "/userinfo",
                axum::routing::get(|State(m): State<Arc<Mutex<Mode>>>| async move {
                    let sub = match *m.lock().unwrap() {
                        Mode::UserinfoOfAnotherSubject => "admin",
                        _ => "victim",
                    };
                    axum::Json(serde_json::json!({"sub": sub, "email": "x@hostile.test"}))
                }),
            )
            .with_state(mode.clone());
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(tcp, app).await.unwrap() });
        (addr, mode)
    }

    pub fn rule(addr: SocketAddr) -> String {
        format!(
            r#"
[[listeners.rules]]
priority = 60
conditions = [{{ field = "path-pattern", values = ["/hostile/*"] }}]
actions = [
  {{ type = "authenticate-oidc", issuer = "{ISSUER}", authorization_endpoint = "http://{addr}/authorize",
     token_endpoint = "http://{addr}/token", user_info_endpoint = "http://{addr}/userinfo",
     client_id = "{CLIENT}", client_secret = "s3cret", session_cookie_name = "HostileSession",
     use_pkce = false, use_nonce = false }},
  {{ type = "forward", target_group = "echo" }},
]
"#
        )
    }
}

/// Item 11: the relying party refuses an ID token without `iss`, `aud`, `exp`, `iat` or `sub`,
/// with several audiences and no (or another client's) `azp`, and a userinfo answer about
/// another subject than the ID token; an honest provider still signs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_provider_cannot_sign_anyone_in() {
    use hostile_idp::Mode;
    let (addr, mode) = hostile_idp::start().await;
    let kit = Kit::builder().toml(&hostile_idp::rule(addr)).start().await;
    let cases = [
        (Mode::Honest, 302, ""),
        (Mode::Without("iss"), 401, "AuthInvalidIdToken"),
        (Mode::Without("aud"), 401, "AuthInvalidIdToken"),
        (Mode::Without("exp"), 401, "AuthInvalidIdToken"),
        (Mode::Without("iat"), 401, "AuthInvalidIdToken"),
        (Mode::Without("sub"), 401, "AuthInvalidIdToken"),
        (Mode::SeveralAudiencesNoAzp, 401, "AuthInvalidIdToken"),
        (Mode::AzpOfAnotherClient, 401, "AuthInvalidIdToken"),
        (
            Mode::UserinfoOfAnotherSubject,
            401,
            "AuthInvalidUserinfoResponse",
        ),
    ];
    for (m, status, reason) in cases {
        *mode.lock().unwrap() = m;
        let client = browser();
        let r = client.get(kit.url("/hostile/x")).send().await.unwrap();
        assert_eq!(r.status(), 302);
        let loc = location(&r);
        let state = query_param(&loc, "state");
        let r = client
            .get(kit.url(&format!("/oauth2/idpresponse?code=c&state={state}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{m:?}");
        let signed_in = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|v| v.to_str().unwrap().starts_with("HostileSession-0="));
        assert_eq!(signed_in, status == 302, "{m:?}");
        if !reason.is_empty() {
            kit.log_line(&["/oauth2/idpresponse", reason]).await;
        }
    }
}

/// Item 12: a cross-site request to `logout_path` (a link or form on another site) does not sign
/// out; a same-origin one does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_is_not_triggerable_cross_site() {
    let kit = Kit::builder().start().await;
    let client = login(&kit, "/tasks").await;
    let attempts = [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "https://evil.example"),
    ];
    for (h, v) in attempts {
        for post in [false, true] {
            let url = kit.url("/tasks/logout");
            let req = if post {
                client.post(url)
            } else {
                client.get(url)
            };
            let r = req.header(h, v).send().await.unwrap();
            assert_eq!(r.status(), 403, "{h}: {v}");
            assert!(r.headers().get("set-cookie").is_none(), "{h}: {v}");
            let still = client.get(kit.url("/tasks")).send().await.unwrap();
            assert_eq!(still.status(), 200, "still signed in after {h}: {v}");
        }
    }
    let r = client
        .get(kit.url("/tasks/logout"))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(
        client.get(kit.url("/tasks")).send().await.unwrap().status(),
        302,
        "signed out"
    );
}

/// Item 12: the nonce cookie carries at least 128 bits, and the PKCE challenge sent is not one
/// anyone holding the cookie could compute (the verifier is an HMAC under the balancer's key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_nonce_is_long_and_its_derivations_keyed() {
    use base64::Engine;
    let kit = Kit::builder().start().await;
    let r = plain().get(kit.url("/tasks")).send().await.unwrap();
    let nonce = set_cookie_value(&r, "AWSALBAuthNonce").unwrap();
    assert!(
        nonce.len() >= 32 && nonce.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{nonce}: at least 32 alphanumerics (over 128 bits)"
    );
    let loc = location(&r);
    // `&` in the name: the parameter itself, never one whose name ends with it.
    let param = |k: &str| query_param(&loc, &format!("&{k}"));
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let sha = |s: &str| {
        b64.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            s.as_bytes(),
        ))
    };
    // What the balancer used to send: unkeyed SHA-256 of a label and the cookie.
    let old_verifier = sha(&format!("portcullis pkce verifier\0{nonce}"));
    assert_ne!(param("code_challenge"), sha(&old_verifier));
    assert_ne!(
        param("nonce"),
        sha(&format!("portcullis oidc nonce\0{nonce}"))
    );
    // It is the HMAC under the key in state_dir.
    let keys = portcullis_auth::AuthKeys::load_or_generate(&kit.state_dir.join("lb")).unwrap();
    let verifier = portcullis_auth::state::pkce_verifier(&keys.mac, &nonce);
    assert_eq!(
        param("code_challenge"),
        portcullis_auth::state::pkce_challenge(&verifier)
    );
    assert_eq!(
        param("nonce"),
        portcullis_auth::state::oidc_nonce(&keys.mac, &nonce)
    );
}
