//! The command line as a user meets it: `config check` on good and bad files, and the demo's config.

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
    let file = dir.path().join("p.toml");
    std::fs::write(
        &file,
        format!(
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
    )
    .unwrap();
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
