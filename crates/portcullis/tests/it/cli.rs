//! The command line as a user meets it: `config check` on good and bad files, and the demo's config.

use crate::kit::free_port;
use std::process::Command;

fn portcullis(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn config_check_accepts_the_shipped_examples() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let (code, out, err) = portcullis(&["config", "check", path.to_str().unwrap()]);
            assert_eq!(code, 0, "{}: {out}{err}", path.display());
            assert!(out.contains(": ok"));
            checked += 1;
        }
    }
    assert!(checked >= 2, "demo.toml and full.toml");
}

#[test]
fn config_check_names_file_field_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        r#"
[load_balancer]
name = "bad"

[[listeners]]
protocol = "HTTP"
port = 80
default_actions = [{ type = "fixed-response", status_code = 404 }]

[[listeners.rules]]
priority = 1
conditions = [{ field = "path-pattern", values = ["/app/*"] }]
actions = [
  { type = "authenticate-oidc", issuer = "https://idp", authorization_endpoint = "https://idp/a",
    token_endpoint = "https://idp/t", user_info_endpoint = "https://idp/u", client_id = "c", client_secret = "s" },
  { type = "forward", target_group = "nowhere" },
]
"#,
    )
    .unwrap();
    let (code, _, err) = portcullis(&["config", "check", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    let f = file.display().to_string();
    assert!(err.contains(&format!("{f}: listeners[0].rules[0].actions[0]: authenticate actions are allowed only on HTTPS listeners")), "{err}");
    assert!(
        err.contains(&format!(
            "{f}: listeners[0].rules[0].actions[1].target_group: unknown target group `nowhere`"
        )),
        "{err}"
    );

    std::fs::write(
        &file,
        "[load_balancer]\nname = \"x\"\n[[listeners]]\nprotocol = \"HTTPS\"\nport = \"443\"\n",
    )
    .unwrap();
    let (code, _, err) = portcullis(&["config", "check", file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with(&format!("{f}:5:8: listeners[0].port: ")),
        "{err}"
    );

    let (code, _, err) = portcullis(&["config", "check", "/nonexistent/portcullis.toml"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("/nonexistent/portcullis.toml: cannot read"),
        "{err}"
    );
}

#[test]
fn demo_config_is_the_example_file_with_the_password_filled_in() {
    let keys = portcullis::demo::DemoKeys::from_env_or_generate();
    let c = portcullis::demo::config("Pw-123456!", &keys).unwrap();
    assert_eq!(
        c.user_pools[0].users[0].password.as_deref(),
        Some("Pw-123456!")
    );
    assert_eq!(
        c.user_pools[0].access_keys[0].access_key_id,
        keys.access_key_id
    );
    assert!(keys.access_key_id.starts_with("AKIA") && keys.access_key_id.len() == 20);
    assert_eq!(keys.secret_access_key.len(), 40);
    assert_eq!(
        portcullis::demo::first_cognito_client(&c),
        Some(("demo".into(), "tasks-web".into()))
    );
    let p = portcullis::demo::generate_password();
    assert!(
        p.len() >= 16
            && p.chars().any(|c| c.is_ascii_digit())
            && p.chars().any(|c| c.is_ascii_uppercase())
    );
}

fn portcullis_stdin(args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn admin_commands_manage_users_groups_and_clients_on_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let file = crate::kit::write_config(
        dir.path(),
        &format!(
            r#"
[load_balancer]
name = "cli"
state_dir = "{}"

[[user_pools]]
name = "main"
domain = {{ listen = "127.0.0.1:9", base_url = "http://localhost:9" }}
"#,
            dir.path().join("state").display()
        ),
    );
    let cfg = file.to_str().unwrap();
    let json = |out: &str| -> serde_json::Value {
        serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
    };

    let (code, out, err) = portcullis(&[
        "groups",
        "--config",
        cfg,
        "create",
        "admins",
        "--precedence",
        "1",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["Group"]["Precedence"], 1);

    let (code, out, err) = portcullis_stdin(
        &[
            "users",
            "--config",
            cfg,
            "create",
            "carol",
            "--email",
            "carol@example.com",
            "--attribute",
            "name=Carol",
            "--password-stdin",
            "--permanent",
        ],
        "Carol-password-1!\n",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["UserStatus"], "CONFIRMED");
    assert!(
        !out.contains("Carol-password-1!"),
        "the password is never printed"
    );

    let (code, _, err) = portcullis(&["users", "--config", cfg, "add-to-group", "carol", "admins"]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = portcullis(&["users", "--config", cfg, "groups", "carol"]);
    assert_eq!(json(&out)["Groups"][0]["GroupName"], "admins");

    let (code, out, err) = portcullis(&[
        "users",
        "--config",
        cfg,
        "list",
        "--filter",
        r#"email = "carol@example.com""#,
    ]);
    assert_eq!(code, 0, "{err}");
    let users = json(&out)["Users"].as_array().unwrap().clone();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["Username"], "carol");

    // A weak password is refused with Cognito's exception and a non-zero exit.
    let (code, _, err) = portcullis_stdin(
        &["users", "--config", cfg, "set-password", "carol"],
        "weak\n",
    );
    assert_eq!(code, 1);
    assert!(err.contains("InvalidPasswordException"), "{err}");
    let (code, _, err) = portcullis(&["users", "--config", cfg, "get", "nobody"]);
    assert_eq!(code, 1);
    assert!(err.contains("UserNotFoundException"), "{err}");

    let (code, out, err) = portcullis(&[
        "clients",
        "--config",
        cfg,
        "create",
        "cli-app",
        "--generate-secret",
        "--flow",
        "code",
        "--scope",
        "openid",
        "--callback-url",
        "http://localhost/cb",
    ]);
    assert_eq!(code, 0, "{err}");
    let client = json(&out)["UserPoolClient"].clone();
    assert!(client["ClientSecret"].as_str().unwrap().len() >= 24);
    let (_, out, _) = portcullis(&["clients", "--config", cfg, "list"]);
    assert_eq!(
        json(&out)["UserPoolClients"][0]["ClientId"],
        client["ClientId"]
    );

    let (code, _, err) = portcullis(&["users", "--config", cfg, "disable", "carol"]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = portcullis(&["users", "--config", cfg, "get", "carol"]);
    assert_eq!(json(&out)["Enabled"], false);
}

struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(cfg: &str, admin: u16) -> Serve {
    let node = Serve(
        Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["serve", "--config", cfg])
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", admin)).is_ok() {
            return node;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("serve did not start");
}

fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[test]
fn lb_keys_rotate_keeps_the_old_claims_key_published() {
    let dir = tempfile::tempdir().unwrap();
    let (https, admin) = (free_port(), free_port());
    let file = dir.path().join("lb.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[load_balancer]
name = "rot"
state_dir = "{}"
admin = {{ listen = "127.0.0.1:{admin}" }}

[[listeners]]
protocol = "HTTPS"
port = {https}
address = "127.0.0.1"
certificates = [{{ self_signed = ["localhost"] }}]
default_actions = [{{ type = "fixed-response", status_code = 200, message_body = "ok" }}]
"#,
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let cfg = file.to_str().unwrap();
    let kid_file = dir.path().join("state/lb/claims-signing-key.kid");
    let first = serve(cfg, admin);
    let old = std::fs::read_to_string(&kid_file).unwrap();
    assert_eq!(http_get(admin, &format!("/public-keys/{old}")).0, 200);
    drop(first);

    let (code, out, err) = portcullis(&["lb-keys", "--config", cfg, "rotate"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cookie key") && out.contains(&old), "{out}");

    let _second = serve(cfg, admin);
    let new = std::fs::read_to_string(&kid_file).unwrap();
    assert_ne!(new, old);
    let (status, old_pem) = http_get(admin, &format!("/public-keys/{old}"));
    assert_eq!(status, 200, "the retired key is still served");
    assert!(old_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    assert_eq!(http_get(admin, &format!("/public-keys/{new}")).0, 200);
    let (_, jwks) = http_get(admin, "/.well-known/jwks.json");
    let jwks: serde_json::Value = serde_json::from_str(&jwks).unwrap();
    let kids = crate::kit::field_strs(&jwks["keys"], "kid");
    assert_eq!(kids, [new.as_str(), old.as_str()]);
}

/// `serve --log-format json` on a config with one HTTP listener whose default actions are
/// `actions`; its stderr as JSON events (panics on a line that is not JSON).
fn serve_json_logs(
    dir: &std::path::Path,
    http: u16,
    actions: &str,
    extra: &str,
    rust_log: &str,
) -> (Serve, impl Iterator<Item = serde_json::Value>) {
    use std::io::BufRead;
    let file = dir.join("lb.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[load_balancer]
name = "logs"
state_dir = "{}"

[[listeners]]
protocol = "HTTP"
port = {http}
address = "127.0.0.1"
default_actions = [{actions}]
{extra}
"#,
            dir.join("state").display()
        ),
    )
    .unwrap();
    let mut child = Serve(
        Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["serve", "--log-format", "json", "--config"])
            .arg(&file)
            .env("RUST_LOG", rust_log)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = std::io::BufReader::new(child.0.stderr.take().unwrap());
    // Stderr closes if serve dies, which ends the iterator.
    let events = stderr.lines().map(|line| {
        let line = line.unwrap();
        let event: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(event["timestamp"].is_string(), "{line}");
        assert!(event["level"].is_string(), "{line}");
        event
    });
    (child, events)
}

#[test]
fn serve_with_log_format_json_writes_json_lines_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let fixed = r#"{ type = "fixed-response", status_code = 200, message_body = "ok" }"#;
    let (_serve, events) = serve_json_logs(dir.path(), free_port(), fixed, "", "info");
    // The startup log names the listener.
    let listener = events
        .take(50)
        .find(|e| {
            e["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("listener 0: http://127.0.0.1:"))
        })
        .expect("serve logged no listener line");
    assert_eq!(listener["level"], "INFO", "{listener}");
}

#[test]
fn a_request_log_line_carries_the_request_span_and_its_trace_id() {
    let dir = tempfile::tempdir().unwrap();
    let (http, closed) = (free_port(), free_port());
    let forward = r#"{ type = "forward", target_group = "refused" }"#;
    let group = format!(
        "[[target_groups]]\nname = \"refused\"\ntargets = [{{ id = \"127.0.0.1\", port = {closed} }}]"
    );
    let (_serve, events) =
        serve_json_logs(dir.path(), http, forward, &group, "portcullis_lb=debug");
    let mut events = events.take(200);
    // Started once the listener accepts; the request's target refuses, which is logged at debug.
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", http)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(http_get(http, "/orders?id=1").0, 502);
    let failed = events
        .find(|e| e["fields"]["message"] == "request failed")
        .expect("no `request failed` line");
    let span = &failed["span"];
    assert_eq!(span["name"], "request", "{failed}");
    assert_eq!(span["method"], "GET", "{failed}");
    assert_eq!(span["path"], "/orders", "{failed}");
    let trace = span["trace_id"].as_str().unwrap_or_default();
    assert!(trace.starts_with("Root=1-"), "{failed}");
}

#[test]
fn log_format_rejects_an_unknown_format() {
    let (code, _, err) = portcullis(&["serve", "--log-format", "xml", "--config", "x.toml"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--log-format") && err.contains("json"),
        "{err}"
    );
}
