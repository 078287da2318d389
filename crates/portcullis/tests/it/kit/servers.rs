//! The servers under test: [`Kit`] (a real Portcullis on port 0) and [`KitBuilder`], the one way
//! to start it with what a test varies.

use super::backends::echo_backend;
use super::{ACCESS_KEY_ID, ACCESS_SECRET, OIDC_SECRET, PASSWORD};
use portcullis::app::{self, App, Prebound};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// A running Portcullis (balancer, user pool `test`, admin listener) and an echo backend, with a
/// config written for the ports the OS gave; everything it wrote lives in a temporary directory.
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

/// What makes a kit one node of several (see [`KitBuilder::node`]).
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

/// What a test changes in the kit's config, gathered before [`KitBuilder::start`]: the base
/// config (listeners, rules at `/tasks`, `/api/*`, `/open/*`, `/allow/*`, `/oidc/*`, `/disc/*`,
/// pool `test` with its clients and user `alice`) stays the same for every test.
#[derive(Default)]
pub struct KitBuilder<'a> {
    rules: String,
    lb: String,
    pool: String,
    listener: Option<TcpListener>,
    node: Option<NodeOf<'a>>,
}

impl Kit {
    /// The way in: `Kit::builder().start().await` starts the base config.
    pub fn builder<'a>() -> KitBuilder<'a> {
        KitBuilder::default()
    }
}

impl<'a> KitBuilder<'a> {
    /// Raw TOML appended after the HTTPS listener's rules (more rules, target groups), for the
    /// shapes the typed methods do not name; `$POOL_URL` and `$LB_URL` are replaced.
    pub fn toml(mut self, toml: &str) -> Self {
        self.rules.push('\n');
        self.rules.push_str(toml);
        self
    }

    /// A rule at `priority` that forwards `path` (a path pattern) to target group `group`.
    pub fn forward(self, priority: u16, path: &str, group: &str) -> Self {
        self.toml(&format!(
            r#"
[[listeners.rules]]
priority = {priority}
conditions = [{{ field = "path-pattern", values = ["{path}"] }}]
actions = [{{ type = "forward", target_group = "{group}" }}]
"#
        ))
    }

    /// A target group `name` of targets on 127.0.0.1 at `ports`, with `settings` (TOML lines).
    pub fn target_group(self, name: &str, ports: &[u16], settings: &str) -> Self {
        self.toml(&format!(
            "\n[[target_groups]]\nname = \"{name}\"\n{}\n{settings}\n",
            targets(ports)
        ))
    }

    /// A rule at `priority` for `path` that signs in through the pool (client `tasks-web`,
    /// `settings` added to its `authenticate-cognito` action) and forwards to the echo backend.
    pub fn authenticated_rule(self, priority: u16, path: &str, settings: &str) -> Self {
        let settings = if settings.is_empty() {
            String::new()
        } else {
            format!(", {settings}")
        };
        self.toml(&format!(
            r#"
[[listeners.rules]]
priority = {priority}
conditions = [{{ field = "path-pattern", values = ["{path}"] }}]
actions = [
  {{ type = "authenticate-cognito", user_pool = "test", user_pool_client_id = "tasks-web"{settings} }},
  {{ type = "forward", target_group = "echo" }},
]
"#
        ))
    }

    /// A setting (a TOML line) of `[load_balancer]`.
    pub fn lb(mut self, setting: &str) -> Self {
        self.lb.push_str(setting);
        self.lb.push('\n');
        self
    }

    /// A setting (TOML lines) of the user pool `test`.
    pub fn pool(mut self, setting: &str) -> Self {
        self.pool.push_str(setting);
        self.pool.push('\n');
        self
    }

    /// Rate limits raised out of the way of tests that attack something else from one address.
    pub fn without_rate_limits(self) -> Self {
        self.pool(super::NO_RATE_LIMITS)
    }

    /// The pool's `mfa_configuration` (`"ON"`, `"OPTIONAL"`).
    pub fn mfa(self, mode: &str) -> Self {
        self.pool(&format!("mfa_configuration = \"{mode}\""))
    }

    /// Serves HTTPS on `listener`, bound beforehand (when a peer must know the port first).
    pub fn on(mut self, listener: TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// One node of several on the PostgreSQL `store` (a throwaway database): the user pool is
    /// shared there, and with `peer` this node joins it as the docs say several nodes must: the
    /// same pool `base_url` (so the same issuer), and a copy of the peer's `lb/` keys
    /// (`cookie-keys`, `mac-key`, the claims key, `id`). Also seeds user `bob`.
    pub fn node(mut self, store: &'a str, peer: Option<&'a Kit>) -> Self {
        self.node = Some(NodeOf { store, peer });
        self
    }

    /// Starts everything.
    pub async fn start(self) -> Kit {
        let dir = tempfile::tempdir().unwrap();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let pool = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let lb = match self.listener {
            Some(l) => l,
            None => TcpListener::bind("127.0.0.1:0").await.unwrap(),
        };
        let lb_port = lb.local_addr().unwrap().port();
        let http_port = http.local_addr().unwrap().port();
        let pool_port = pool.local_addr().unwrap().port();
        let backend = echo_backend().await;
        let own_pool_url = format!("http://localhost:{pool_port}");
        let node = self.node;
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
        let extra_rules = self
            .rules
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
            lb_extra = self.lb,
            pool_extra = self.pool,
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
        assert_eq!(app.pools.len(), 1, "the kit serves one user pool, `test`");
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
}

/// Polls `ok` every 10 ms until it holds or `limit` has passed; whether it held. For what the
/// kit cannot wait on otherwise (a listener closing, a file appearing), instead of a sleep.
pub async fn poll_until<F: std::future::Future<Output = bool>>(
    limit: Duration,
    mut ok: impl FnMut() -> F,
) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if ok().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `targets = [...]` on 127.0.0.1 at `ports`, for a target group's TOML.
pub fn targets(ports: &[u16]) -> String {
    let t: Vec<String> = ports
        .iter()
        .map(|p| format!("{{ id = \"127.0.0.1\", port = {p} }}"))
        .collect();
    format!("targets = [{}]", t.join(", "))
}

impl Kit {
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
