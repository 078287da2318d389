//! Transport and files: the user pool served over TLS (and refused in plaintext off loopback),
//! its cookies `__Host-` prefixed on HTTPS, and the state directory private to its owner.

use crate::kit::{self, Fetch, Kit, PASSWORD};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Every path under `dir` (itself included) with its mode.
fn modes_under(dir: &Path) -> Vec<(PathBuf, u32, bool)> {
    let mut out = vec![(dir.to_path_buf(), mode(dir), true)];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(modes_under(&p));
        } else {
            out.push((p.clone(), mode(&p), false));
        }
    }
    out
}

async fn forgot_password(pool_url: &str, username: &str) {
    let r = reqwest::Client::new()
        .post(format!("{pool_url}/"))
        .header(
            "x-amz-target",
            "AWSCognitoIdentityProviderService.ForgotPassword",
        )
        .header("content-type", "application/x-amz-json-1.1")
        .body(serde_json::json!({"ClientId": "api-cli", "Username": username}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
}

/// After a sign-in and a forgot-password (the store with its WAL, the balancer's keys and id, the
/// self-signed certificate, the outbox of codes all written), the state directory and every
/// directory in it are 0700 and every file 0600, whatever the process umask.
#[tokio::test]
async fn state_dir_holds_nothing_others_can_read() {
    let kit = Kit::builder().start().await;
    let client = kit::login(&kit, "/tasks").await;
    let r = client.get(kit.url("/tasks")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    forgot_password(&kit.pool_url, "alice").await;
    let outbox = kit.state_dir.join("outbox").join("test.jsonl");
    assert!(
        std::fs::read_to_string(&outbox)
            .unwrap()
            .contains("\"code\""),
        "the code went to the outbox"
    );
    let all = modes_under(&kit.state_dir);
    let names: Vec<String> = all
        .iter()
        .map(|(p, _, _)| {
            p.strip_prefix(&kit.state_dir)
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    for expected in ["idp.sqlite3", "idp.sqlite3-wal", "lb/cookie-keys", "lb/id"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    assert!(names.iter().any(|n| n.starts_with("tls/")), "{names:?}");
    let wrong: Vec<String> = all
        .iter()
        .filter(|(_, m, dir)| *m != if *dir { 0o700 } else { 0o600 })
        .map(|(p, m, _)| format!("{} {m:03o}", p.display()))
        .collect();
    assert!(wrong.is_empty(), "readable by others: {wrong:?}");
    // The access log (outside the state dir) carries request lines with one-time codes.
    assert_eq!(mode(&kit.access_log), 0o600);
    kit.app.shutdown().await;
}

/// A state directory that others may write (they could swap the keys or the store) is refused at
/// start with the field and the reason, and is left as it is.
#[tokio::test]
async fn start_refuses_a_state_dir_others_can_write() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let file = write_t_config(
        dir.path(),
        r#"
[[user_pools]]
name = "p"
domain = { listen = "127.0.0.1:0", base_url = "http://localhost:1" }
"#,
    );
    let cfg = portcullis_config::load(&file)
        .unwrap_or_else(|e| panic!("{e}"))
        .config;
    let e = match portcullis::app::start(&cfg, Default::default()).await {
        Ok(app) => {
            app.shutdown().await;
            panic!("started on a world-writable state_dir");
        }
        Err(e) => format!("{e:#}"),
    };
    assert!(
        e.contains("load_balancer.state_dir") && e.contains("writable by group and others"),
        "{e}"
    );
    assert_eq!(mode(&state), 0o777, "refused, not silently repaired");
    assert!(
        std::fs::read_dir(&state).unwrap().next().is_none(),
        "nothing written"
    );
    // The command line names the file too.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&file.display().to_string()) && stderr.contains("load_balancer.state_dir"),
        "{stderr}"
    );
}

/// Writes the config of balancer `t` (its state in `dir/state`) with `rest` after its
/// `[load_balancer]` table; the file.
fn write_t_config(dir: &Path, rest: &str) -> PathBuf {
    kit::write_config(
        dir,
        &format!(
            "\n[load_balancer]\nname = \"t\"\nstate_dir = \"{}\"\n{rest}",
            dir.join("state").display()
        ),
    )
}

/// A pool on HTTPS (self-signed for `names`) behind an HTTPS listener that authenticates with
/// it; returns the running app, the temp dir, the config file and the (pool, balancer) ports.
async fn start_tls_pool(
    names: &str,
) -> (portcullis::app::App, tempfile::TempDir, PathBuf, u16, u16) {
    let dir = tempfile::tempdir().unwrap();
    let pool_tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lb_tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (pool_port, lb_port) = (
        pool_tcp.local_addr().unwrap().port(),
        lb_tcp.local_addr().unwrap().port(),
    );
    let backend = kit::echo_backend().await;
    let file = write_t_config(
        dir.path(),
        &format!(
            r#"
[[listeners]]
protocol = "HTTPS"
port = {lb_port}
address = "127.0.0.1"
certificates = [{{ self_signed = ["localhost"] }}]
default_actions = [
  {{ type = "authenticate-cognito", user_pool = "p", user_pool_client_id = "web", scope = "openid email" }},
  {{ type = "forward", target_group = "echo" }},
]

[[target_groups]]
name = "echo"
targets = [{{ id = "127.0.0.1", port = {backend_port} }}]

[[user_pools]]
name = "p"
id = "us-east-1_Tls12345"
domain = {{ listen = "127.0.0.1:{pool_port}", base_url = "https://localhost:{pool_port}", certificates = [{{ self_signed = {names} }}] }}

[[user_pools.clients]]
client_id = "web"
generate_secret = true
allowed_oauth_flows = ["code"]
allowed_oauth_scopes = ["openid", "email"]
callback_urls = ["https://localhost:{lb_port}/oauth2/idpresponse"]

[[user_pools.clients]]
client_id = "api-cli"
explicit_auth_flows = ["ALLOW_USER_PASSWORD_AUTH"]

[[user_pools.users]]
username = "alice"
password = "{PASSWORD}"
attributes = {{ email = "alice@example.com" }}
"#,
            backend_port = backend.port(),
        ),
    );
    let cfg = portcullis_config::load(&file)
        .unwrap_or_else(|e| panic!("{e}"))
        .config;
    let mut pools = std::collections::HashMap::new();
    pools.insert("p".to_string(), pool_tcp);
    let app = portcullis::app::start(
        &cfg,
        portcullis::app::Prebound {
            listeners: vec![Some(lb_tcp)],
            pools,
        },
    )
    .await
    .unwrap();
    (app, dir, file, pool_port, lb_port)
}

/// A client that trusts exactly the PEM certificate at `path` (and no public root).
fn trusting(path: &Path) -> reqwest::Client {
    let pem = std::fs::read(path).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The cookie `name` among a response's `Set-Cookie` headers (the whole header).
fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

/// A browser sign-in through the balancer to the HTTPS pool and back: the balancer's own token
/// exchange with the pool (over TLS, trusting the pool's self-signed certificate) must succeed.
/// Checks the hosted UI's `__Host-` cookies on the way.
async fn browser_login_through_balancer(pool_port: u16, lb_port: u16) {
    let browser = kit::browser();
    let r = browser
        .get(format!("https://localhost:{lb_port}/app"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let authorize = kit::location(&r);
    let pool = format!("https://localhost:{pool_port}");
    assert!(
        authorize.starts_with(&format!("{pool}/oauth2/authorize?")),
        "{authorize}"
    );
    let r = browser.get(&authorize).send().await.unwrap();
    let login = format!("{pool}{}", kit::location(&r));
    let page = browser.get(&login).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csrf_cookie = set_cookie(&page, "__Host-XSRF-TOKEN").expect("__Host-XSRF-TOKEN on HTTPS");
    assert!(
        csrf_cookie.contains("; Secure")
            && csrf_cookie.contains("; Path=/;")
            && !csrf_cookie.to_ascii_lowercase().contains("domain="),
        "{csrf_cookie}"
    );
    assert!(set_cookie(&page, "XSRF-TOKEN").is_none());
    let html = page.text().await.unwrap();
    let r = kit::post_sign_in_form(&browser, &login, &kit::csrf(&html), "alice", PASSWORD).await;
    assert_eq!(r.status(), 302, "signed in");
    let session = set_cookie(&r, "__Host-cognito").expect("__Host-cognito on HTTPS");
    assert!(
        session.contains("; Secure")
            && session.contains("; Path=/;")
            && !session.contains("omain="),
        "{session}"
    );
    assert!(set_cookie(&r, "cognito").is_none());
    let callback = kit::location(&r);
    let r = browser.get(&callback).send().await.unwrap();
    assert_eq!(
        r.status(),
        302,
        "the balancer redeemed the code at the HTTPS pool: {:?}",
        r.text().await
    );
    let r = browser
        .get(format!("https://localhost:{lb_port}/app"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let echoed: serde_json::Value = r.json().await.unwrap();
    assert!(
        echoed["headers"]["x-amzn-oidc-data"].is_string(),
        "{echoed}"
    );
}

/// The pool on its own HTTPS domain: discovery, the API's sign-in and the balancer's code
/// exchange all over TLS (a client trusting only the pool's certificate), and nothing in clear.
#[tokio::test]
async fn pool_serves_https_for_discovery_sign_in_and_token_exchange() {
    let (app, dir, _file, pool_port, lb_port) = start_tls_pool(r#"["localhost"]"#).await;
    let pool = format!("https://localhost:{pool_port}");
    let tls = trusting(&dir.path().join("state/tls/localhost.crt"));
    let d: serde_json::Value = tls
        .get(format!(
            "{pool}/us-east-1_Tls12345/.well-known/openid-configuration"
        ))
        .fetch_json()
        .await;
    assert_eq!(d["issuer"], format!("{pool}/us-east-1_Tls12345"));
    assert_eq!(d["token_endpoint"], format!("{pool}/oauth2/token"));
    let r = tls
        .post(format!("{pool}/"))
        .header(
            "x-amz-target",
            "AWSCognitoIdentityProviderService.InitiateAuth",
        )
        .header("content-type", "application/x-amz-json-1.1")
        .body(
            serde_json::json!({"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": "api-cli",
                "AuthParameters": {"USERNAME": "alice", "PASSWORD": PASSWORD}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["AuthenticationResult"]["IdToken"].is_string(), "{v}");
    // No plaintext HTTP on the pool's port.
    let plain = reqwest::Client::new()
        .get(format!(
            "http://localhost:{pool_port}/.well-known/jwks.json"
        ))
        .send()
        .await;
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "served in clear text"
    );
    browser_login_through_balancer(pool_port, lb_port).await;
    app.shutdown().await;
}

/// A reload replaces the pool's certificates (the next handshake presents the new one) and the
/// balancer's client then trusts the new certificate.
#[tokio::test]
async fn pool_certificates_reload_and_the_balancer_follows() {
    let (app, dir, file, pool_port, lb_port) = start_tls_pool(r#"["localhost"]"#).await;
    let text = std::fs::read_to_string(&file).unwrap();
    let text = text.replace(
        r#"self_signed = ["localhost"] }] }"#,
        r#"self_signed = ["localhost", "pool.test"] }] }"#,
    );
    let cfg = portcullis_config::load_str(&text, &file, dir.path())
        .unwrap_or_else(|e| panic!("{e}"))
        .config;
    app.reload(&cfg).await.unwrap();
    let jwks = format!("https://localhost:{pool_port}/.well-known/jwks.json");
    let new = trusting(&dir.path().join("state/tls/localhost_pool.test.crt"));
    assert_eq!(new.get(&jwks).send().await.unwrap().status(), 200);
    let old = trusting(&dir.path().join("state/tls/localhost.crt"));
    assert!(
        old.get(&jwks).send().await.is_err(),
        "the old certificate is gone"
    );
    browser_login_through_balancer(pool_port, lb_port).await;
    app.shutdown().await;
}

/// `config check` refuses a pool whose `base_url` is plain http off this machine, naming file,
/// field and reason, unless the user opts in by name.
#[test]
fn config_check_refuses_plain_http_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let check = |domain: &str| {
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            format!("[load_balancer]\nname = \"t\"\n\n[[user_pools]]\nname = \"p\"\ndomain = {{ {domain} }}\n"),
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["config", "check"])
            .arg(&file)
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            file.display().to_string(),
        )
    };
    let (ok, out, file) = check(r#"listen = "127.0.0.1:9000", base_url = "http://example.com""#);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("{file}: user_pools[0].domain.base_url: "))
            && out.contains("clear text")
            && out.contains("allow_insecure_http"),
        "{out}"
    );
    let (ok, out, _) = check(
        r#"listen = "127.0.0.1:9000", base_url = "http://example.com", allow_insecure_http = true"#,
    );
    assert!(ok, "{out}");
    let (ok, out, _) = check(r#"listen = "127.0.0.1:9000", base_url = "http://localhost:9000""#);
    assert!(ok, "{out}");
}
