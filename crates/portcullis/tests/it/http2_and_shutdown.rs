//! HTTP/2 from clients (ALPN `h2` on an HTTPS listener, forwarded to an HTTP/1.1 target as ALB
//! does, or turned off with `http2_enabled`), the TLS details ALB can send targets, and graceful
//! shutdown: a request in flight when the balancer stops still completes.

use crate::kit;

use kit::*;
use serde_json::Value;
use std::time::Duration;

#[tokio::test]
async fn http2_clients_are_served_and_logged_as_h2() {
    let kit = Kit::builder().start().await;
    let h2 = h2_client();
    let r = h2.get(kit.url("/open/h2?x=1")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    let echo: Value = r.json().await.unwrap();
    assert_eq!(echo["uri"], "/open/h2?x=1");
    assert!(
        echo["headers"]["host"]
            .as_str()
            .unwrap()
            .starts_with("localhost"),
        "{echo}"
    );
    assert_eq!(echo["headers"]["x-forwarded-proto"], "https");
    // Many streams on one connection.
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (c, url) = (h2.clone(), kit.url(&format!("/open/s{i}")));
        tasks.push(tokio::spawn(async move {
            c.get(url).send().await.unwrap().status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    kit.log_line(&["h2 ", "/open/h2?x=1"]).await;
    kit.app.shutdown().await;
}

#[tokio::test]
async fn shutdown_drains_requests_in_flight() {
    // A target that takes a second to answer, and says when a request has reached it.
    let arrived = std::sync::Arc::new(tokio::sync::Notify::new());
    let signal = arrived.clone();
    let app = axum::Router::new().fallback(move || async move {
        signal.notify_one();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        "late but whole"
    });
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(tcp, app).await.unwrap() });
    let rules = format!(
        r#"
[[listeners.rules]]
priority = 6
conditions = [{{ field = "path-pattern", values = ["/slow"] }}]
actions = [{{ type = "forward", target_group = "slow" }}]

[[target_groups]]
name = "slow"
targets = [{{ id = "127.0.0.1", port = {port} }}]
health_check = {{ enabled = false }}
"#
    );
    let kit = Kit::builder().toml(&rules).start().await;
    let url = kit.url("/slow");
    let in_flight = tokio::spawn(async move { plain().get(url).send().await.unwrap() });
    // Shut down once the request is at the target (not after a guessed while).
    tokio::time::timeout(Duration::from_secs(10), arrived.notified())
        .await
        .expect("the request reaches the target");
    let lb_port = kit.lb_port;
    let stopping = tokio::spawn(kit.app.shutdown());
    // New connections are refused while the old request finishes: the listener closes soon (a
    // bounded wait, well inside the target's second).
    let closed = poll_until(Duration::from_millis(800), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", lb_port))
            .await
            .is_err()
    })
    .await;
    assert!(closed, "the listener is closed");
    let r = in_flight.await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "late but whole");
    stopping.await.unwrap();
}

#[tokio::test]
async fn http2_can_be_turned_off_and_tls_details_sent_to_targets() {
    let kit = Kit::builder()
        .lb("http2_enabled = false\ntls_version_and_cipher_suite_headers = true")
        .start()
        .await;
    // A client that offers h2 by ALPN gets HTTP/1.1.
    let client = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let r = client
        .get(kit.url("/open/tls"))
        .header("x-amzn-tls-version", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    let echo: Value = r.json().await.unwrap();
    assert_eq!(echo["headers"]["x-amzn-tls-version"], "TLSv1.3", "{echo}");
    let cipher = echo["headers"]["x-amzn-tls-cipher-suite"].as_str().unwrap();
    assert!(
        cipher.starts_with("TLS_AES_") || cipher.starts_with("TLS_CHACHA20"),
        "{cipher}"
    );
    // Plain HTTP requests carry neither.
    let plain: Value = reqwest::get(format!("http://127.0.0.1:{}/x", kit.http_port))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(plain["headers"]["x-amzn-tls-version"].is_null(), "{plain}");
    kit.app.shutdown().await;
}
