//! Hot reload under load: a real `portcullis serve`, a load generator running the whole time, and
//! 20 reloads (SIGHUP and file changes, every other one invalid). No request fails, each valid
//! config takes effect, and an invalid one leaves the running config in place.

use crate::kit::free_port;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn config(port: u16, backend: u16, generation: u32) -> String {
    format!(
        r#"
[load_balancer]
name = "reload"
state_dir = "STATE"

[[listeners]]
protocol = "HTTP"
port = {port}
address = "127.0.0.1"
default_actions = [{{ type = "forward", target_group = "app" }}]

[[listeners.rules]]
priority = 1
conditions = [{{ field = "path-pattern", values = ["/generation"] }}]
actions = [{{ type = "fixed-response", status_code = 200, content_type = "text/plain", message_body = "gen-{generation}" }}]

[[target_groups]]
name = "app"
targets = [{{ id = "127.0.0.1", port = {backend} }}]
"#
    )
}

async fn generation(client: &reqwest::Client, port: u16) -> String {
    client
        .get(format!("http://127.0.0.1:{port}/generation"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn twenty_reloads_under_load_fail_no_request() {
    // The target: answers 200 to everything.
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = tcp.local_addr().unwrap().port();
    tokio::spawn(async move {
        axum::serve(tcp, axum::Router::new().fallback(|| async { "ok" }))
            .await
            .unwrap()
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lb.toml");
    let port = free_port();
    let write = |text: String| {
        // Written whole and renamed, as editors and deploy tools do.
        let tmp = dir.path().join("lb.toml.tmp");
        std::fs::write(
            &tmp,
            text.replace("STATE", &dir.path().join("state").display().to_string()),
        )
        .unwrap();
        std::fs::rename(&tmp, &file).unwrap();
    };
    write(config(port, backend, 0));
    let node = Node(
        Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["serve", "--config", file.to_str().unwrap()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(generation(&client, port).await, "gen-0");

    // The load: 4 workers on keep-alive connections, every response checked.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (stop, ok, failed, client) = (stop.clone(), ok.clone(), failed.clone(), client.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match client
                    .get(format!("http://127.0.0.1:{port}/work"))
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }

    let pid = node.0.id().to_string();
    let mut current = 0;
    for i in 1..=20u32 {
        let valid = i % 2 == 0;
        if valid {
            write(config(port, backend, i));
        } else if i % 4 == 1 {
            write(format!(
                "{}\n[[listeners.rules]]\npriority = \"not a number\"\n",
                config(port, backend, i)
            ));
        } else {
            // Valid TOML, invalid config: a rule forwarding to a target group that does not exist.
            write(config(port, backend, i).replace(
                "target_group = \"app\" }]\n\n[[listeners.rules]]",
                "target_group = \"nope\" }]\n\n[[listeners.rules]]",
            ));
        }
        // Half the reloads by signal, the rest by the file watcher.
        if i % 3 == 0 {
            assert!(
                Command::new("kill")
                    .args(["-HUP", &pid])
                    .status()
                    .unwrap()
                    .success()
            );
        }
        if valid {
            current = i;
            let want = format!("gen-{i}");
            let mut got = String::new();
            for _ in 0..60 {
                got = generation(&client, port).await;
                if got == want {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(got, want, "reload {i} took effect");
        } else {
            // Give the watcher time to see it, then check nothing changed.
            tokio::time::sleep(Duration::from_millis(1300)).await;
            assert_eq!(
                generation(&client, port).await,
                format!("gen-{current}"),
                "reload {i} was refused"
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(ok > 1000, "the load ran: {ok} requests");
    assert_eq!(failed, 0, "{failed} of {} requests failed", ok + failed);
    drop(node);
}

/// The SAN DNS names of the certificate a TLS server presents (Python's ssl and cryptography).
fn served_names(port: u16) -> String {
    let script = format!(
        "import ssl\nfrom cryptography import x509\npem = ssl.get_server_certificate(('127.0.0.1', {port}))\n\
         c = x509.load_pem_x509_certificate(pem.encode())\n\
         print(' '.join(sorted(c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName))))"
    );
    let out = kit::stdout_of(Command::new("python3").args(["-c", &script]));
    String::from_utf8_lossy(&out).trim().to_string()
}

use crate::kit;

#[tokio::test]
async fn certificates_are_replaced_by_a_reload() {
    let kit = kit::Kit::builder().start().await;
    let port = kit.lb_port;
    let names = tokio::task::spawn_blocking(move || served_names(port))
        .await
        .unwrap();
    assert_eq!(names, "localhost");
    let text = std::fs::read_to_string(&kit.config_file).unwrap().replace(
        r#"self_signed = ["localhost"]"#,
        r#"self_signed = ["localhost", "rotated.example"]"#,
    );
    let cfg =
        portcullis_config::load_str(&text, &kit.config_file, kit.config_file.parent().unwrap())
            .unwrap()
            .config;
    kit.app.reload(&cfg).await.unwrap();
    let names = tokio::task::spawn_blocking(move || served_names(port))
        .await
        .unwrap();
    assert_eq!(
        names, "localhost rotated.example",
        "the new certificate is served"
    );
    // A certificate file that does not exist refuses the reload and keeps the served one.
    let broken = text.replace(
        r#"certificates = [{ self_signed = ["localhost", "rotated.example"] }]"#,
        r#"certificates = [{ cert_file = "/nonexistent.pem", key_file = "/nonexistent.key" }]"#,
    );
    let cfg =
        portcullis_config::load_str(&broken, &kit.config_file, kit.config_file.parent().unwrap())
            .unwrap()
            .config;
    let err = kit.app.reload(&cfg).await.unwrap_err().to_string();
    assert!(err.contains("nonexistent"), "{err}");
    let names = tokio::task::spawn_blocking(move || served_names(port))
        .await
        .unwrap();
    assert_eq!(names, "localhost rotated.example");
    kit.app.shutdown().await;
}

#[tokio::test]
async fn listeners_are_added_and_removed_by_a_reload() {
    let kit = kit::Kit::builder().start().await;
    let base = std::fs::read_to_string(&kit.config_file).unwrap();
    let load = |text: &str| {
        portcullis_config::load_str(text, &kit.config_file, kit.config_file.parent().unwrap())
            .unwrap_or_else(|e| panic!("{e}"))
            .config
    };
    let port = free_port();
    let added = format!(
        "{base}\n[[listeners]]\nprotocol = \"HTTP\"\nport = {port}\naddress = \"127.0.0.1\"\ndefault_actions = [{{ type = \"fixed-response\", status_code = 200, content_type = \"text/plain\", message_body = \"new listener\" }}]\n"
    );
    kit.app.reload(&load(&added)).await.unwrap();
    assert!(
        kit.app
            .lb
            .listener_addrs()
            .await
            .iter()
            .any(|a| a.port() == port)
    );
    // A keep-alive client of the new listener.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/x");
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "new listener");
    // The old listeners kept serving across the reload.
    let old = reqwest::get(format!("http://127.0.0.1:{}/anything", kit.http_port))
        .await
        .unwrap();
    assert_eq!(old.status(), 200);

    // Changing a running listener's protocol is refused; nothing changes.
    let flipped = added.replacen(
        &format!("protocol = \"HTTP\"\nport = {}", kit.http_port),
        &format!(
            "protocol = \"HTTPS\"\ncertificates = [{{ self_signed = [\"localhost\"] }}]\nport = {}",
            kit.http_port
        ),
        1,
    );
    assert_ne!(flipped, added);
    let err = kit
        .app
        .reload(&load(&flipped))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("protocol"), "{err}");
    // A new listener on a port that is taken is refused; nothing changes.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let clash = added.replace(&format!("port = {port}"), &format!("port = {taken_port}"));
    let err = kit.app.reload(&load(&clash)).await.unwrap_err().to_string();
    assert!(err.contains("cannot listen"), "{err}");
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "new listener");

    // Removing it: the port stops accepting and its open connection is closed.
    kit.app.reload(&load(&base)).await.unwrap();
    let mut refused = false;
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "the removed listener still accepts");
    assert!(
        client.get(&url).send().await.is_err(),
        "the kept-alive connection was closed"
    );
    assert!(
        !kit.app
            .lb
            .listener_addrs()
            .await
            .iter()
            .any(|a| a.port() == port)
    );
    // The others still serve, and rules that rely on listener slots (logins) still resolve.
    let r = reqwest::get(format!("http://127.0.0.1:{}/anything", kit.http_port))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    kit.app.shutdown().await;
}
