//! Transport and files: the user pool served over TLS (and refused in plaintext off loopback),
//! its cookies `__Host-` prefixed on HTTPS, and the state directory private to its owner.

use crate::kit::{self, Kit, PASSWORD};
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
    let kit = Kit::start("").await;
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
        .map(|(p, _, _)| p.strip_prefix(&kit.state_dir).unwrap().display().to_string())
        .collect();
    for expected in ["idp.sqlite3", "idp.sqlite3-wal", "lb/cookie-keys", "lb/id"] {
        assert!(names.iter().any(|n| n == expected), "{expected} in {names:?}");
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
    let file = dir.path().join("p.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[load_balancer]
name = "t"
state_dir = "{}"

[[user_pools]]
name = "p"
domain = {{ listen = "127.0.0.1:0", base_url = "http://localhost:1" }}
"#,
            state.display()
        ),
    )
    .unwrap();
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
    let _ = PASSWORD;
}
