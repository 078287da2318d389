//! Backends and peers the servers talk to: the echo backend, test targets, a fake OIDC provider
//! and Python peers from `e2e/`.

use std::net::SocketAddr;
use tokio::net::TcpListener;

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

/// Runs `program args` (in `dir`, if given) off the runtime thread, since scripts call back into
/// this runtime's servers; returns its output and its text (stdout, then stderr).
pub async fn run_script<S: AsRef<std::ffi::OsStr>>(
    program: &str,
    dir: Option<&str>,
    args: impl IntoIterator<Item = S>,
) -> (std::process::Output, String) {
    let mut cmd = std::process::Command::new(program);
    cmd.args(args);
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

/// One operation of the user-pool API through boto3 (a real SDK signing with SigV4,
/// `e2e/boto3_call.py`) against the pool at `pool_url` with access key `(id, secret)`:
/// (output, text).
pub async fn boto3_call(
    pool_url: &str,
    (id, secret): (&str, &str),
    op: &str,
    params: &serde_json::Value,
) -> (std::process::Output, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../e2e/boto3_call.py");
    let args = [script, pool_url, id, secret, op, &params.to_string()].map(str::to_string);
    run_script("python3", None, args).await
}

/// How the tests reach PostgreSQL as its administrator (127.0.0.1:5432, trust auth).
pub const PG_ADMIN: &str = "host=127.0.0.1 port=5432 user=root dbname=postgres";

/// A connection to PostgreSQL as its administrator, for creating, dropping and watching databases.
pub async fn pg_admin() -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(PG_ADMIN, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL on 127.0.0.1:5432 (run .ci/run or start it)");
    tokio::spawn(conn);
    c
}

/// A fresh PostgreSQL database for one test (a store that nodes share), dropped at its end.
pub struct PgDatabase {
    name: String,
}

impl PgDatabase {
    /// Creates `portcullis_<what>_<process>_<nanoseconds>`.
    pub async fn create(what: &str) -> PgDatabase {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!("portcullis_{what}_{}_{nanos}", std::process::id());
        pg_admin()
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        PgDatabase { name }
    }

    /// The database's connection URL, as a `store` setting.
    pub fn url(&self) -> String {
        format!("postgres://root@127.0.0.1:5432/{}", self.name)
    }

    /// Drops the database (with its connections).
    pub async fn drop_it(self) {
        let _ = pg_admin()
            .await
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await;
    }
}

/// The stdout of `cmd`, run to its end; panics with its stderr if it fails.
pub fn stdout_of(cmd: &mut std::process::Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A target on raw TCP (127.0.0.1, port 0) that hands each connection to `serve`, for answers no
/// HTTP server would write; it serves until its task is aborted, then its port refuses.
pub async fn tcp_target<F, Fut>(serve: F) -> (u16, tokio::task::JoinHandle<()>)
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(serve(s));
        }
    });
    (port, task)
}

/// The bytes of one request head read from `s` (up to its blank line, maybe a little past it);
/// `None` if the peer closed or failed first.
pub async fn read_head(s: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 8192];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    Some(got)
}

/// The stdout of a peer script as JSON; panics with its stdout and stderr when it is not.
pub fn json_stdout(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Writes `toml` as `p.toml` in `dir`; its path, for a config loaded or served from a file.
pub fn write_config(dir: &std::path::Path, toml: &str) -> std::path::PathBuf {
    let file = dir.join("p.toml");
    std::fs::write(&file, toml).unwrap();
    file
}

/// The browser and Node.js peers of the tests (`e2e/browser/`, after `npm ci` there).
pub const E2E_BROWSER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../e2e/browser");

/// An OpenID Provider that is not ours (npm `oidc-provider`, `e2e/browser/oidc_provider.mjs`) on
/// a port of its own, for a balancer on `lb_port`; [`NodeOidcProvider::stop`] ends it.
pub struct NodeOidcProvider {
    child: std::process::Child,
    /// Kept open until the end: the provider may still write to its stdout.
    _out: std::io::BufReader<std::process::ChildStdout>,
    /// The provider's port (issuer `http://localhost:<port>`).
    pub port: u16,
}

impl NodeOidcProvider {
    /// Starts the provider for a balancer on `lb_port`, with `args` after the port.
    pub fn start(lb_port: u16, args: &[&str]) -> NodeOidcProvider {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let mut child = Command::new("node")
            .current_dir(E2E_BROWSER)
            .arg("oidc_provider.mjs")
            .arg(lb_port.to_string())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node");
        let mut line = String::new();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut line).unwrap();
        let port: u16 = line.trim().parse().expect("the provider prints its port");
        NodeOidcProvider {
            child,
            _out: out,
            port,
        }
    }

    /// A rule at priority 4 for `/op/*` that signs in at this provider (cookie `OpSession`,
    /// `settings` added to its `authenticate-oidc` action) and forwards to the echo backend.
    pub fn rule(&self, settings: &str) -> String {
        format!(
            r#"
[[listeners.rules]]
priority = 4
conditions = [{{ field = "path-pattern", values = ["/op/*"] }}]
actions = [
  {{ type = "authenticate-oidc", issuer = "http://localhost:{}", client_id = "portcullis",
     client_secret = "oidc-provider-client-secret-0123456789", session_cookie_name = "OpSession",
     scope = "openid email"{settings} }},
  {{ type = "forward", target_group = "echo" }},
]
"#,
            self.port
        )
    }

    /// Closes the provider's stdin (it exits on that) and waits for it.
    pub fn stop(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}
