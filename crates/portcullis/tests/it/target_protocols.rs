//! What the balancer speaks to targets: HTTPS targets (self-signed, not validated, as at ALB),
//! HTTP/2 target groups (h2c and h2 over TLS), gRPC pass-through with a real `grpcio` client and
//! server (unary, both streaming modes, status and trailers, ALB's gRPC health check), 464
//! for requests that do not fit a group's protocol version, and pooled HTTPS connections that
//! hold a `close_notify` or stray bytes inside rustls (not reused).

use crate::kit;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kit::*;
use serde_json::Value;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;

/// A backend that answers what it saw (protocol version, TLS, path, headers) as JSON, over
/// HTTP/1.1 or HTTP/2 (prior knowledge on TCP, ALPN on TLS) with a fresh self-signed certificate.
async fn versioned_backend(tls: bool) -> SocketAddr {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let acceptor = tls.then(|| {
        let key = rcgen::generate_simple_self_signed(vec!["target.internal".into()]).unwrap();
        let mut cfg = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![key.cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into()),
            )
            .unwrap();
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
    });
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = tcp.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let svc = service_fn(
                    move |req: http::Request<hyper::body::Incoming>| async move {
                        let headers: serde_json::Map<String, Value> = req
                            .headers()
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").into()))
                            .collect();
                        let body = serde_json::json!({
                            "version": format!("{:?}", req.version()),
                            "tls": tls,
                            "path": req.uri().path(),
                        "authority": req.uri().authority().map(|a| a.as_str()),
                            "headers": headers,
                        });
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from(body.to_string()),
                        )))
                    },
                );
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                match acceptor {
                    Some(a) => {
                        if let Ok(s) = a.accept(stream).await {
                            let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                        }
                    }
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                    }
                }
            });
        }
    });
    addr
}

fn h1_client() -> reqwest::Client {
    reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .http1_only()
        .build()
        .unwrap()
}

#[tokio::test]
async fn https_and_http2_targets() {
    let (tls_h1, h2c, tls_h2) = (
        versioned_backend(true).await,
        versioned_backend(false).await,
        versioned_backend(true).await,
    );
    let rules = format!(
        r#"
[[listeners.rules]]
priority = 40
conditions = [{{ field = "path-pattern", values = ["/tls/*"] }}]
actions = [{{ type = "forward", target_group = "tls-h1" }}]

[[listeners.rules]]
priority = 41
conditions = [{{ field = "path-pattern", values = ["/h2c/*"] }}]
actions = [{{ type = "forward", target_group = "h2c" }}]

[[listeners.rules]]
priority = 42
conditions = [{{ field = "path-pattern", values = ["/h2tls/*"] }}]
actions = [{{ type = "forward", target_group = "tls-h2" }}]

[[target_groups]]
name = "tls-h1"
protocol = "HTTPS"
targets = [{{ id = "127.0.0.1", port = {} }}]
health_check = {{ protocol = "HTTPS", interval_seconds = 1, timeout_seconds = 1 }}

[[target_groups]]
name = "h2c"
protocol_version = "HTTP2"
targets = [{{ id = "127.0.0.1", port = {} }}]
health_check = {{ interval_seconds = 1, timeout_seconds = 1 }}

[[target_groups]]
name = "tls-h2"
protocol = "HTTPS"
protocol_version = "HTTP2"
targets = [{{ id = "127.0.0.1", port = {} }}]
health_check = {{ protocol = "HTTPS", interval_seconds = 1, timeout_seconds = 1 }}
"#,
        tls_h1.port(),
        h2c.port(),
        tls_h2.port()
    );
    let kit = Kit::builder().toml(&rules).start().await;
    let (h1, h2) = (h1_client(), h2_client());

    // An HTTPS target with a self-signed certificate for another name: reached, not validated.
    let v: Value = h1.get(kit.url("/tls/a")).fetch_json().await;
    assert_eq!(
        (v["tls"].as_bool(), v["version"].as_str()),
        (Some(true), Some("HTTP/1.1")),
        "{v}"
    );
    assert_eq!(v["headers"]["x-forwarded-proto"], "https");

    // HTTP/2 groups: an HTTP/2 client reaches the target over HTTP/2, in clear or over TLS.
    for (path, tls) in [("/h2c/a", false), ("/h2tls/a", true)] {
        let r = h2.get(kit.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["version"], "HTTP/2.0", "{path}: {v}");
        assert_eq!(v["tls"].as_bool(), Some(tls), "{path}: {v}");
        assert_eq!(v["path"], path);
        // The client's host reaches the target as `:authority` (and no second `Host`).
        assert_eq!(v["authority"], format!("localhost:{}", kit.lb_port), "{v}");
        assert!(v["headers"]["host"].is_null(), "{v}");
        assert!(v["headers"]["x-amzn-trace-id"].is_string(), "{v}");
        assert!(v["headers"]["x-forwarded-for"].is_string(), "{v}");
    }
    // An HTTP/1.1 client cannot be sent to an HTTP/2 group: 464, logged.
    let r = h1.get(kit.url("/h2c/b")).send().await.unwrap();
    assert_eq!(r.status(), 464);
    kit.log_line(&["/h2c/b", " 464 "]).await;

    // Health checks go over the group's protocol and version: every target is healthy.
    let health = kit
        .target_health_until(|h| {
            ["tls-h1", "h2c", "tls-h2"]
                .iter()
                .all(|g| h[g][0]["state"] == "healthy")
        })
        .await;
    for g in ["tls-h1", "h2c", "tls-h2"] {
        assert_eq!(health[g][0]["state"], "healthy", "{g}: {health}");
    }
    kit.app.shutdown().await;
}

const GRPC_PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../e2e/grpc_peer.py");

async fn grpc_client(lb_port: u16, prefix: &str) -> Value {
    let args = [
        GRPC_PEER.to_string(),
        "client".into(),
        format!("127.0.0.1:{lb_port}"),
        prefix.into(),
    ];
    let out = tokio::task::spawn_blocking(move || Command::new("python3").args(args).output())
        .await
        .unwrap()
        .unwrap();
    crate::kit::json_stdout(&out)
}

#[tokio::test]
async fn grpc_passes_through() {
    let (_server, port) = python_peer("grpc_peer.py", &["serve"]);
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let rules = format!(
        r#"
[[listeners.rules]]
priority = 40
conditions = [{{ field = "path-pattern", values = ["/echo.Echo/*"] }}]
actions = [{{ type = "forward", target_group = "grpc" }}]

[[listeners.rules]]
priority = 41
conditions = [{{ field = "path-pattern", values = ["/h1/*"] }}]
actions = [{{ type = "forward", target_group = "echo" }}]

[[listeners.rules]]
priority = 42
conditions = [{{ field = "path-pattern", values = ["/down/*"] }}]
actions = [{{ type = "forward", target_group = "grpc-down" }}]

[[target_groups]]
name = "grpc"
protocol_version = "GRPC"
targets = [{{ id = "127.0.0.1", port = {port} }}]
health_check = {{ interval_seconds = 1, timeout_seconds = 1 }}

[[target_groups]]
name = "grpc-down"
protocol_version = "GRPC"
targets = [{{ id = "127.0.0.1", port = {dead_port} }}]
health_check = {{ enabled = false }}
"#
    );
    let kit = Kit::builder().toml(&rules).start().await;

    let v = grpc_client(kit.lb_port, "/").await;
    assert_eq!(v["say"], "said:hello", "{v}");
    // Request metadata reached the server, and its trailing metadata came back.
    let md: Value =
        serde_json::from_str(v["say_trailers"]["echo-metadata"].as_str().unwrap()).unwrap();
    assert_eq!(md["x-caller"], "test", "{md}");
    assert!(
        md["x-amzn-trace-id"].is_string(),
        "the balancer's headers: {md}"
    );
    assert_eq!(
        v["count"],
        serde_json::json!(["0", "1", "2", "3", "4"]),
        "server streaming"
    );
    assert_eq!(v["sum"], "100005", "client streaming");
    assert_eq!(
        v["fail"],
        serde_json::json!(["NOT_FOUND", "no such thing"]),
        "{v}"
    );
    assert_eq!(v["missing"][0], "UNIMPLEMENTED", "{v}");

    // ALB's gRPC health check (/AWS.ALB/healthcheck, code 12 passes) finds the server healthy.
    let health = kit
        .target_health_until(|h| h["grpc"][0]["state"] == "healthy")
        .await;
    assert_eq!(health["grpc"][0]["state"], "healthy", "{health}");

    // Logged with ALB's `grpcs` type, and counted as GrpcRequestCount.
    let line = kit.log_line(&["/echo.Echo/Say", " 200 200 "]).await;
    assert!(line.starts_with("grpcs "), "{line}");
    let metrics = kit.metrics().await;
    let grpc: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("portcullis_grpc_requests_total "))
        .unwrap_or_else(|| panic!("{metrics}"))
        .parse()
        .unwrap();
    assert!(grpc >= 5, "{grpc}");
    // gRPC to an HTTP/1 group: 464, which a gRPC client reads as UNAVAILABLE (grpc-status 14).
    let v = grpc_client(kit.lb_port, "/h1/").await;
    assert_eq!(v["error"][0], "UNAVAILABLE", "{v}");
    kit.log_line(&["/h1/echo.Echo/Say", " 464 "]).await;
    // A dead gRPC target: 502 with grpc-status 14, as ALB answers.
    let v = grpc_client(kit.lb_port, "/down/").await;
    assert_eq!(
        v["error"],
        serde_json::json!(["UNAVAILABLE", "unavailable"]),
        "{v}"
    );
    kit.log_line(&["/down/echo.Echo/Say", " 502 "]).await;
    // An HTTP/1.1 request to the gRPC group: 464.
    let r = h1_client()
        .post(kit.url("/echo.Echo/Say"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 464);
    kit.app.shutdown().await;
}

/// An HTTPS target that speaks HTTP/1.1 by hand, so that it can misbehave after an answer, in
/// the same TCP write: `/notify/*` is answered with a `close_notify` (the TCP connection stays
/// open, unanswered), `/stray/*` with an answer of exactly `STRAY_FILL` bytes and then a stray
/// response. Other paths answer `conn-<n>`, the connection's number.
async fn misbehaving_tls_target() -> u16 {
    use std::io::Write as _;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let key = rcgen::generate_simple_self_signed(vec!["target.internal".into()]).unwrap();
    let cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![key.cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let conns = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = tcp.accept().await else {
                return;
            };
            let (acceptor, n) = (acceptor.clone(), conns.fetch_add(1, Ordering::Relaxed));
            tokio::spawn(async move {
                let Ok(mut s) = acceptor.accept(stream).await else {
                    return;
                };
                let mut got = Vec::new();
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    // One request: its head, then a `content-length` body.
                    let head_end = loop {
                        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => got.extend_from_slice(&buf[..k]),
                        }
                    };
                    let head = String::from_utf8_lossy(&got[..head_end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    while got.len() < head_end + length {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => got.extend_from_slice(&buf[..k]),
                        }
                    }
                    got.drain(..head_end + length);
                    let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                    let (tcp, tls) = s.get_mut();
                    if path.contains("/stray/") {
                        let prefix = "HTTP/1.1 200 OK\r\ncontent-length: ";
                        let body_len = STRAY_FILL - prefix.len() - 4 - 4;
                        let answer =
                            format!("{prefix}{body_len:04}\r\n\r\n{}", "s".repeat(body_len));
                        assert_eq!(answer.len(), STRAY_FILL);
                        tls.writer().write_all(answer.as_bytes()).unwrap();
                        tls.writer()
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nstray")
                            .unwrap();
                    } else {
                        let body = format!("conn-{n}");
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        tls.writer().write_all(answer.as_bytes()).unwrap();
                        if path.contains("/notify/") {
                            tls.send_close_notify();
                        }
                    }
                    // Every record of the answer leaves in one TCP write, so the balancer's
                    // TLS layer reads them together.
                    let mut wire = Vec::new();
                    while tls.wants_write() {
                        tls.write_tls(&mut wire).unwrap();
                    }
                    if tcp.write_all(&wire).await.is_err() {
                        return;
                    }
                    if path.contains("/notify/") {
                        // TLS is closed; TCP stays open, and whatever comes is not answered.
                        while matches!(tcp.read(&mut buf).await, Ok(k) if k > 0) {}
                        return;
                    }
                }
            });
        }
    });
    port
}

/// The size of the `/stray/*` answer: the balancer's read buffer (8 KB), so that the stray
/// response stays decrypted inside rustls rather than in that buffer.
const STRAY_FILL: usize = 8 * 1024;

/// A pooled HTTPS connection is reused only if rustls holds nothing past the last answer: a
/// target's `close_notify` or stray response read along with the answer leaves the TCP socket
/// quiet, but such a connection is dropped and the next request goes on a new one (a POST,
/// which is never sent twice, would otherwise get a 502; a GET, the stray response).
#[tokio::test]
async fn tls_target_connections_holding_a_close_or_stray_bytes_are_not_reused() {
    let target = misbehaving_tls_target().await;
    let rules = format!(
        r#"
[[listeners.rules]]
priority = 40
conditions = [{{ field = "path-pattern", values = ["/mis/*"] }}]
actions = [{{ type = "forward", target_group = "mis" }}]

[[target_groups]]
name = "mis"
protocol = "HTTPS"
targets = [{{ id = "127.0.0.1", port = {target} }}]
health_check = {{ enabled = false }}
"#
    );
    let kit = Kit::builder().toml(&rules).start().await;
    let c = h1_client();
    for i in 0..3 {
        let r = c
            .get(kit.url(&format!("/mis/notify/{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "notify {i}");
        assert!(r.text().await.unwrap().starts_with("conn-"));
        let r = c
            .post(kit.url(&format!("/mis/post/{i}")))
            .body("a body, never sent twice")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "a POST after a close_notify ({i})");
        assert!(r.text().await.unwrap().starts_with("conn-"));
    }
    for i in 0..3 {
        let r = c
            .get(kit.url(&format!("/mis/stray/{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "stray {i}");
        let body = r.text().await.unwrap();
        assert!(
            body.len() > 8000 && body.bytes().all(|b| b == b's'),
            "stray {i}: {} bytes",
            body.len()
        );
        let r = c
            .get(kit.url(&format!("/mis/after/{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "after a stray response ({i})");
        let body = r.text().await.unwrap();
        assert!(
            body.starts_with("conn-"),
            "the stray response was read as the answer: {body}"
        );
    }
    kit.app.shutdown().await;
}
