//! Test kit: starts a real Portcullis (load balancer, user pool, admin listener) and real backends
//! on port 0 for each test, with a config written for the ports the OS gave.

use portcullis::app::{self, App, Prebound};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

pub const PASSWORD: &str = "Correct-horse-9!";
pub const OIDC_SECRET: &str = "oidc-web-secret-0123456789abcdef";
pub const ACCESS_KEY_ID: &str = "AKIAPORTCULLISTEST01";
pub const ACCESS_SECRET: &str = "kit-secret-access-key-0123456789abcdefgh";

pub struct Kit {
    pub app: App,
    pub lb_port: u16,
    pub http_port: u16,
    pub pool_url: String,
    /// The pool's `base_url` (its issuer's prefix): `pool_url`, or the first node's for a peer.
    pub pool_url_base: String,
    pub admin: SocketAddr,
    pub state_dir: PathBuf,
    pub access_log: PathBuf,
    pub backend: SocketAddr,
    /// The config file the kit runs (for CLI commands against the same store).
    pub config_file: PathBuf,
    _dir: tempfile::TempDir,
}

/// What makes a kit one node of several (see [`Kit::start_node`]).
struct NodeOf<'a> {
    store: &'a str,
    peer: Option<&'a Kit>,
}

/// Copies the files of `from` into `to` (one level; modes kept by `fs::copy`).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A backend that answers every request with what it received, as JSON.
pub async fn echo_backend() -> SocketAddr {
    use axum::http::HeaderMap;
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let app = axum::Router::new().fallback(move |method: axum::http::Method, uri: axum::http::Uri, headers: HeaderMap| async move {
        let h: serde_json::Map<String, serde_json::Value> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned().into()))
            .collect();
        axum::Json(serde_json::json!({ "backend": addr.to_string(), "method": method.as_str(), "uri": uri.to_string(), "headers": h }))
    });
    tokio::spawn(async move { axum::serve(tcp, app).await.unwrap() });
    addr
}

impl Kit {
    /// Starts everything; `extra_rules` is TOML appended to the HTTPS listener's rules.
    pub async fn start(extra_rules: &str) -> Kit {
        Kit::start_with(extra_rules, "").await
    }

    /// As `start`, with `lb_extra` added to `[load_balancer]`.
    pub async fn start_with(extra_rules: &str, lb_extra: &str) -> Kit {
        Kit::start_full(extra_rules, lb_extra, "").await
    }

    /// As `start_with`, with `pool_extra` added to the user pool's table.
    pub async fn start_full(extra_rules: &str, lb_extra: &str, pool_extra: &str) -> Kit {
        let lb = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Kit::start_on(lb, extra_rules, lb_extra, pool_extra).await
    }

    /// As `start_full`, on an HTTPS listener bound beforehand (when a peer must know its port).
    pub async fn start_on(
        lb: TcpListener,
        extra_rules: &str,
        lb_extra: &str,
        pool_extra: &str,
    ) -> Kit {
        Kit::start_inner(lb, extra_rules, lb_extra, pool_extra, None).await
    }

    /// One node of several on the PostgreSQL `store` (a throwaway database): the user pool is
    /// shared there, and with `peer` this node joins it as the docs say several nodes must: the
    /// same pool `base_url` (so the same issuer), and a copy of the peer's `lb/` keys
    /// (`cookie-keys`, `mac-key`, the claims key, `id`). Also seeds user `bob`.
    pub async fn start_node(store: &str, peer: Option<&Kit>) -> Kit {
        let lb = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Kit::start_inner(lb, "", "", "", Some(NodeOf { store, peer })).await
    }

    async fn start_inner(
        lb: TcpListener,
        extra_rules: &str,
        lb_extra: &str,
        pool_extra: &str,
        node: Option<NodeOf<'_>>,
    ) -> Kit {
        let dir = tempfile::tempdir().unwrap();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let lb_port = lb.local_addr().unwrap().port();
        let http_port = http.local_addr().unwrap().port();
        let pool_port = pool.local_addr().unwrap().port();
        let backend = echo_backend().await;
        let own_pool_url = format!("http://localhost:{pool_port}");
        let peer = node.as_ref().and_then(|n| n.peer);
        // The pool's public address: the first node's, shared by the others.
        let pool_base = peer.map_or(own_pool_url.clone(), |p| p.pool_url_base.clone());
        let mut callbacks = vec![format!("https://localhost:{lb_port}")];
        callbacks.extend(peer.map(|p| format!("https://localhost:{}", p.lb_port)));
        let callback_urls = callbacks
            .iter()
            .map(|c| format!(r#""{c}/oauth2/idpresponse""#))
            .collect::<Vec<_>>()
            .join(", ");
        let logout_urls = callbacks
            .iter()
            .map(|c| format!(r#""{c}/signed-out""#))
            .collect::<Vec<_>>()
            .join(", ");
        let store_line = node
            .as_ref()
            .map_or(String::new(), |n| format!("store = \"{}\"", n.store));
        let users_tail = if node.is_some() {
            format!(
                r#"
[[user_pools.users]]
username = "bob"
password = "{PASSWORD}"
attributes = {{ email = "bob@example.com" }}
"#
            )
        } else {
            String::new()
        };
        if let Some(p) = peer {
            let lb_dir = dir.path().join("state").join("lb");
            std::fs::create_dir_all(&lb_dir).unwrap();
            copy_dir(&p.state_dir.join("lb"), &lb_dir);
        }
        let access_log = dir.path().join("access.log");
        // Extra rules may name the pool's URL before its port is known.
        let extra_rules = extra_rules
            .replace("$POOL_URL", &pool_base)
            .replace("$LB_URL", &format!("https://localhost:{lb_port}"));
        let config = format!(
            r#"
{store_line}
[load_balancer]
name = "test"
state_dir = "{state}"
admin = {{ listen = "127.0.0.1:0" }}
access_log = "{log}"
{lb_extra}

[[listeners]]
protocol = "HTTP"
port = {http_port}
address = "127.0.0.1"
default_actions = [{{ type = "forward", target_group = "echo" }}]

[[listeners]]
protocol = "HTTPS"
port = {lb_port}
address = "127.0.0.1"
certificates = [{{ self_signed = ["localhost"] }}]
default_actions = [{{ type = "fixed-response", status_code = 404, content_type = "text/plain", message_body = "no route" }}]

[[listeners.rules]]
priority = 10
conditions = [{{ field = "path-pattern", values = ["/tasks", "/tasks/*"] }}]
actions = [
  {{ type = "authenticate-cognito", user_pool = "test", user_pool_client_id = "tasks-web", scope = "openid email tasks/read",
     logout_path = "/tasks/logout", logout_redirect_uri = "https://localhost:{lb_port}/signed-out" }},
  {{ type = "forward", target_group = "echo" }},
]

[[listeners.rules]]
priority = 20
conditions = [{{ field = "path-pattern", values = ["/api/*"] }}]
actions = [
  {{ type = "authenticate-cognito", user_pool = "test", user_pool_client_id = "tasks-web", on_unauthenticated_request = "deny" }},
  {{ type = "forward", target_group = "echo" }},
]

[[listeners.rules]]
priority = 30
conditions = [{{ field = "path-pattern", values = ["/open/*"] }}]
actions = [{{ type = "forward", target_group = "echo" }}]

[[listeners.rules]]
priority = 31
conditions = [{{ field = "path-pattern", values = ["/allow/*"] }}]
actions = [
  {{ type = "authenticate-cognito", user_pool = "test", user_pool_client_id = "tasks-web", on_unauthenticated_request = "allow" }},
  {{ type = "forward", target_group = "echo" }},
]

[[listeners.rules]]
priority = 32
conditions = [{{ field = "path-pattern", values = ["/oidc/*"] }}]
actions = [
  {{ type = "authenticate-oidc", issuer = "{pool_base}/us-east-1_Kit12345",
     authorization_endpoint = "{pool_base}/oauth2/authorize",
     token_endpoint = "{pool_base}/oauth2/token",
     user_info_endpoint = "{pool_base}/oauth2/userInfo",
     client_id = "oidc-web", client_secret = "{OIDC_SECRET}", token_endpoint_auth_method = "client_secret_post",
     session_cookie_name = "OidcSession", scope = "openid email" }},
  {{ type = "forward", target_group = "echo" }},
]

[[listeners.rules]]
priority = 33
conditions = [{{ field = "path-pattern", values = ["/disc/*"] }}]
actions = [
  {{ type = "authenticate-oidc", issuer = "{pool_base}/us-east-1_Kit12345",
     client_id = "oidc-web", client_secret = "{OIDC_SECRET}", session_cookie_name = "DiscSession", scope = "openid email" }},
  {{ type = "forward", target_group = "echo" }},
]

{extra_rules}

[[target_groups]]
name = "echo"
targets = [{{ id = "127.0.0.1", port = {backend_port} }}]

[[user_pools]]
name = "test"
id = "us-east-1_Kit12345"
groups = [{{ name = "zeta" }}, {{ name = "readers", precedence = 5 }}, {{ name = "admins", precedence = 1, description = "Admins" }}]
domain = {{ listen = "127.0.0.1:{pool_port}", base_url = "{pool_base}" }}
resource_servers = [{{ identifier = "tasks", scopes = [{{ name = "read" }}, {{ name = "write" }}] }}]
access_keys = [{{ access_key_id = "{ACCESS_KEY_ID}", secret_access_key = "{ACCESS_SECRET}" }}]
allow_self_sign_up = true
custom_attributes = [{{ name = "team" }}]
{pool_extra}

[[user_pools.clients]]
client_id = "tasks-web"
client_name = "Tasks"
generate_secret = true
logo_url = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='40' height='40'%3E%3Crect width='40' height='40' fill='%23c00'/%3E%3C/svg%3E"
css = ".card {{ border-top: 6px solid rgb(200, 0, 0); }}"
allowed_oauth_flows = ["code"]
allowed_oauth_scopes = ["openid", "email", "tasks/read"]
callback_urls = [{callback_urls}]
logout_urls = [{logout_urls}]

[[user_pools.clients]]
client_id = "oidc-web"
client_secret = "{OIDC_SECRET}"
access_token_validity = 30
id_token_validity = 10
token_validity_units = {{ access_token = "minutes", id_token = "minutes" }}
read_attributes = ["email", "email_verified"]
refresh_token_rotation = {{ feature = "ENABLED", retry_grace_period_seconds = 0 }}
allowed_oauth_flows = ["code"]
allowed_oauth_scopes = ["openid", "email"]
callback_urls = [{callback_urls}]

[[user_pools.clients]]
client_id = "api-cli"
explicit_auth_flows = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]

[[user_pools.clients]]
client_id = "spa"
allowed_oauth_flows = ["implicit"]
allowed_oauth_scopes = ["openid", "email"]
callback_urls = ["http://localhost/spa"]

[[user_pools.clients]]
client_id = "machine"
generate_secret = true
allowed_oauth_flows = ["client_credentials"]
allowed_oauth_scopes = ["tasks/read", "tasks/write"]

[[user_pools.users]]
username = "alice"
password = "{PASSWORD}"
attributes = {{ email = "alice@example.com", "custom:team" = "blue" }}
groups = ["readers", "zeta", "admins"]
{users_tail}"#,
            state = dir.path().join("state").display(),
            log = access_log.display(),
            backend_port = backend.port(),
        );
        let file = dir.path().join("portcullis.toml");
        std::fs::write(&file, &config).unwrap();
        let loaded = portcullis_config::load(&file).unwrap_or_else(|e| panic!("{e}"));
        let mut pools = HashMap::new();
        pools.insert("test".to_string(), pool);
        let app = app::start(
            &loaded.config,
            Prebound {
                listeners: vec![Some(http), Some(lb)],
                pools,
            },
        )
        .await
        .unwrap();
        let admin = app.lb.admin.unwrap();
        Kit {
            app,
            lb_port,
            http_port,
            pool_url: own_pool_url,
            pool_url_base: pool_base,
            admin,
            state_dir: dir.path().join("state"),
            access_log,
            backend,
            config_file: file,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.lb_port)
    }

    pub fn pool(&self) -> &Arc<portcullis_idp::Pool> {
        &self.app.pools[0].0
    }

    /// Rewrites the running config file (`from` → `to`) and reloads it; panics if it is refused.
    pub async fn reload_replacing(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(&self.config_file).unwrap();
        assert!(text.contains(from), "not in the config: {from}");
        let text = text.replace(from, to);
        std::fs::write(&self.config_file, &text).unwrap();
        let cfg = portcullis_config::load_str(
            &text,
            &self.config_file,
            self.config_file.parent().unwrap(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .config;
        self.app.reload(&cfg).await.unwrap();
    }

    /// The admin listener's `/metrics` text.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The admin listener's `/target-health`.
    pub async fn target_health(&self) -> serde_json::Value {
        reqwest::get(format!("http://{}/target-health", self.admin))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until `/target-health` satisfies `ok`; returns the last answer either way.
    pub async fn target_health_until(
        &self,
        ok: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let mut health = serde_json::Value::Null;
        for _ in 0..100 {
            health = self.target_health().await;
            if ok(&health) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        health
    }

    /// Waits for an access-log line containing every needle.
    pub async fn log_line(&self, needles: &[&str]) -> String {
        for _ in 0..100 {
            if let Ok(text) = std::fs::read_to_string(&self.access_log)
                && let Some(l) = text.lines().find(|l| needles.iter().all(|n| l.contains(n)))
            {
                return l.to_string();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "no access-log line with {needles:?} in:\n{}",
            std::fs::read_to_string(&self.access_log).unwrap_or_default()
        );
    }
}

/// The `AWSELBAuthSessionCookie-N=...` pairs a response sets, joined as a Cookie header value.
pub fn session_cookie_of(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| v.starts_with("AWSELBAuthSessionCookie-"))
        .map(|v| v.split(';').next().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

impl Kit {
    /// The same session as `cookie` with its access token expired, sealed with the balancer's own
    /// keys (as if an hour had passed); also returns the session's access token.
    pub fn with_access_expired(&self, cookie: &str) -> (String, String) {
        use portcullis_auth::session_cookie::{self, CookieRead};
        let keys = portcullis_auth::AuthKeys::load_or_generate(&self.state_dir.join("lb")).unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert("cookie", cookie.parse().unwrap());
        let CookieRead::Valid { mut session, .. } =
            session_cookie::read(&keys.ring, "AWSELBAuthSessionCookie", &headers)
        else {
            panic!("the session cookie opens")
        };
        session.access_exp = 0;
        let shards = session_cookie::seal(&keys.ring, "AWSELBAuthSessionCookie", &session).unwrap();
        let stale = shards
            .iter()
            .enumerate()
            .map(|(i, v)| format!("AWSELBAuthSessionCookie-{i}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        (stale, session.access_token.clone())
    }
}

/// A browser-like client: cookie jar, self-signed certificates accepted, redirects not followed.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .tls_danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A client without cookies that accepts self-signed certificates and does not follow redirects.
/// A client that speaks HTTP/2 only (prior knowledge; the balancer's certificate accepted).
pub fn h2_client() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .http2_prior_knowledge()
        .build()
        .unwrap()
}

pub fn plain() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location in {r:?}"))
        .to_str()
        .unwrap()
        .to_string()
}

/// The `_csrf` value of the sign-in form.
pub fn csrf(html: &str) -> String {
    let i =
        html.find("name=\"_csrf\" value=\"").expect("csrf field") + "name=\"_csrf\" value=\"".len();
    html[i..].split('"').next().unwrap().to_string()
}

/// Follows a protected URL to the hosted sign-in page and returns its URL.
pub async fn sign_in_page(kit: &Kit, client: &reqwest::Client) -> String {
    let r = client.get(kit.url("/tasks")).send().await.unwrap();
    let r = client.get(location(&r)).send().await.unwrap();
    format!("{}{}", kit.pool_url, location(&r))
}

/// Posts the sign-in form of `login_url` with a fresh CSRF token: (status, page).
pub async fn submit_sign_in(
    client: &reqwest::Client,
    login_url: &str,
    username: &str,
    password: &str,
) -> (u16, String) {
    let html = client
        .get(login_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = client
        .post(login_url)
        .form(&[
            ("_csrf", csrf(&html).as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

/// What a login up to the IdP's redirect back gives: the callback URL with code and state.
pub struct PendingLogin {
    pub callback: String,
    pub nonce: String,
    /// The PKCE verifier the balancer derives from `nonce` under its key.
    verifier: String,
}

impl PendingLogin {
    /// The code in the callback URL.
    pub fn code(&self) -> String {
        self.callback
            .split("code=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_string()
    }
    /// The PKCE verifier the balancer would send (derived from this browser's nonce cookie under
    /// the balancer's key).
    pub fn verifier(&self) -> String {
        self.verifier.clone()
    }
}

/// Goes from a protected URL to the IdP's redirect back (without following it).
pub async fn login_until_callback(
    kit: &Kit,
    client: &reqwest::Client,
    path: &str,
    password: &str,
) -> PendingLogin {
    login_until_callback_as(kit, client, path, "alice", password).await
}

/// As [`login_until_callback`], for `username`.
pub async fn login_until_callback_as(
    kit: &Kit,
    client: &reqwest::Client,
    path: &str,
    username: &str,
    password: &str,
) -> PendingLogin {
    let r = client.get(kit.url(path)).send().await.unwrap();
    assert_eq!(r.status(), 302, "protected URL redirects to the IdP");
    let nonce = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("AWSALBAuthNonce="))
        .map(|v| v.split(';').next().unwrap().to_string())
        .expect("nonce cookie");
    let authorize = location(&r);
    assert!(
        authorize.starts_with(&format!("{}/oauth2/authorize?", kit.pool_url)),
        "{authorize}"
    );
    let r = client.get(&authorize).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let login = format!("{}{}", kit.pool_url, location(&r));
    assert!(login.contains("/login?client_id="), "{login}");
    let page = client.get(&login).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let r = client
        .post(&login)
        .form(&[
            ("_csrf", csrf(&html).as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "sign-in succeeds");
    let callback = location(&r);
    assert!(
        callback.starts_with(&kit.url("/oauth2/idpresponse?code=")),
        "{callback}"
    );
    let keys = portcullis_auth::AuthKeys::load_or_generate(&kit.state_dir.join("lb")).unwrap();
    let verifier = portcullis_auth::state::pkce_verifier(&keys.mac, &nonce);
    PendingLogin {
        callback,
        nonce,
        verifier,
    }
}

/// A full login; returns the client holding the session.
pub async fn login(kit: &Kit, path: &str) -> reqwest::Client {
    login_as(kit, path, "alice").await
}

/// A full login of `username` (password [`PASSWORD`]); returns the client holding the session.
pub async fn login_as(kit: &Kit, path: &str, username: &str) -> reqwest::Client {
    let client = browser();
    let p = login_until_callback_as(kit, &client, path, username, PASSWORD).await;
    let r = client.get(&p.callback).send().await.unwrap();
    assert_eq!(
        r.status(),
        302,
        "callback sets the session: {:?}",
        r.text().await
    );
    client
}

/// A fake OIDC provider for injecting failures the real pool never produces (5xx, oversized
/// userinfo, missing ID token). It is a test double, named as such; happy paths use the real pool.
pub mod fake_idp {
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use base64::Engine;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Copy, Debug, PartialEq)]
    pub enum TokenReply {
        Ok,
        Status(u16),
        InvalidGrant,
        WithoutIdTokenField,
        Garbage,
    }

    #[derive(Clone, Copy, Debug, PartialEq)]
    pub enum Userinfo {
        Ok,
        Status(u16),
        Huge,
        NoSub,
    }

    pub struct Behaviour {
        pub token: TokenReply,
        pub userinfo: Userinfo,
        pub last_token_auth: Option<String>,
    }

    pub type Shared = Arc<Mutex<Behaviour>>;

    pub const ISSUER: &str = "https://fake-idp.test";
    pub const CLIENT: &str = "fake-client";

    fn id_token() -> String {
        let b = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let now = portcullis_core::now();
        format!(
            "{}.{}.c2ln",
            b(serde_json::json!({"alg":"RS256"})),
            b(
                serde_json::json!({"iss": ISSUER, "aud": CLIENT, "exp": now + 300, "iat": now, "sub": "u-1"})
            )
        )
    }

    async fn token(
        State(s): State<Shared>,
        headers: axum::http::HeaderMap,
        body: String,
    ) -> axum::response::Response {
        let behaviour = {
            let mut g = s.lock().unwrap();
            g.last_token_auth = Some(if headers.contains_key("authorization") {
                "basic".into()
            } else if body.contains("client_secret=") {
                "post".into()
            } else {
                "none".into()
            });
            g.token
        };
        match behaviour {
            TokenReply::Ok => axum::Json(serde_json::json!({"access_token": "at-1", "id_token": id_token(), "token_type": "Bearer", "expires_in": 3600})).into_response(),
            TokenReply::Status(c) => (StatusCode::from_u16(c).unwrap(), "boom").into_response(),
            TokenReply::InvalidGrant => (StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({"error": "invalid_grant"}))).into_response(),
            TokenReply::WithoutIdTokenField => axum::Json(serde_json::json!({"access_token": "at-1", "token_type": "Bearer"})).into_response(),
            TokenReply::Garbage => "not json".into_response(),
        }
    }

    async fn userinfo(State(s): State<Shared>) -> axum::response::Response {
        let behaviour = s.lock().unwrap().userinfo;
        match behaviour {
            Userinfo::Ok => axum::Json(serde_json::json!({"sub": "u-1", "email": "u@fake.test"}))
                .into_response(),
            Userinfo::Status(c) => (StatusCode::from_u16(c).unwrap(), "boom").into_response(),
            Userinfo::Huge => {
                axum::Json(serde_json::json!({"sub": "u-1", "blob": "x".repeat(12 * 1024)}))
                    .into_response()
            }
            Userinfo::NoSub => {
                axum::Json(serde_json::json!({"email": "u@fake.test"})).into_response()
            }
        }
    }

    pub async fn start() -> (SocketAddr, Shared) {
        let shared: Shared = Arc::new(Mutex::new(Behaviour {
            token: TokenReply::Ok,
            userinfo: Userinfo::Ok,
            last_token_auth: None,
        }));
        let app = axum::Router::new()
            .route("/token", axum::routing::post(token))
            .route("/userinfo", axum::routing::get(userinfo))
            .with_state(shared.clone());
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(tcp, app).await.unwrap() });
        (addr, shared)
    }

    /// A rule at `/fake/*` that authenticates against the fake at `addr`.
    pub fn rule(addr: SocketAddr) -> String {
        format!(
            r#"
[[listeners.rules]]
priority = 50
conditions = [{{ field = "path-pattern", values = ["/fake/*"] }}]
actions = [
  {{ type = "authenticate-oidc", issuer = "{ISSUER}", authorization_endpoint = "http://{addr}/authorize",
     token_endpoint = "http://{addr}/token", user_info_endpoint = "http://{addr}/userinfo",
     client_id = "{CLIENT}", client_secret = "s3cret", session_cookie_name = "FakeSession",
     use_pkce = false, use_nonce = false }},
  {{ type = "forward", target_group = "echo" }},
]

[[listeners.rules]]
priority = 51
conditions = [{{ field = "path-pattern", values = ["/fake-nonce/*"] }}]
actions = [
  {{ type = "authenticate-oidc", issuer = "{ISSUER}", authorization_endpoint = "http://{addr}/authorize",
     token_endpoint = "http://{addr}/token", user_info_endpoint = "http://{addr}/userinfo",
     client_id = "{CLIENT}", client_secret = "s3cret", session_cookie_name = "FakeNonceSession" }},
  {{ type = "forward", target_group = "echo" }},
]
"#
        )
    }
}

/// A test peer from `e2e/` run by Python (a server of a protocol we talk to); killed when dropped.
pub struct PythonPeer(std::process::Child);

impl Drop for PythonPeer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `python3 e2e/<script> <args>`, which prints its port on its first line and serves
/// until its stdin closes.
pub fn python_peer(script: &str, args: &[&str]) -> (PythonPeer, u16) {
    use std::io::BufRead;
    let path = format!("{}/../../e2e/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = std::process::Command::new("python3")
        .arg(&path)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3 {path}: {e}"));
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{script} printed {line:?}, not a port"));
    (PythonPeer(child), port)
}

/// Serves an axum app as a target on 127.0.0.1, port 0; returns the port.
pub async fn serve_target(app: axum::Router) -> u16 {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(tcp, app).await.unwrap() });
    port
}
