//! What the balancer speaks to targets: HTTPS targets (self-signed, not validated, as at ALB),
//! HTTP/2 target groups (h2c and h2 over TLS), gRPC pass-through with a real `grpcio` client and
//! server (unary, both streaming modes, status and trailers, ALB's gRPC health check), and 464
//! for requests that do not fit a group's protocol version.

mod kit;

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
    let kit = Kit::start(&rules).await;
    let (h1, h2) = (h1_client(), h2_client());

    // An HTTPS target with a self-signed certificate for another name: reached, not validated.
    let v: Value = h1
        .get(kit.url("/tls/a"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
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
    let kit = Kit::start(&rules).await;

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
