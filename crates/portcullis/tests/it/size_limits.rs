//! ALB's size limits and the statuses it answers for them (a request line over 16 KB: 414; one
//! header over 16 KB or all over 64 KB: 400; a target's response headers over 32 KB: 502), and
//! 460 in the access log for a client that leaves before its answer.

use crate::kit;

use kit::*;
use std::time::Duration;

async fn target() -> u16 {
    let app = axum::Router::new()
        .route(
            "/lim/big-headers",
            axum::routing::get(|| async {
                let mut h = axum::http::HeaderMap::new();
                for i in 0..5 {
                    h.insert(
                        axum::http::HeaderName::from_bytes(format!("x-big-{i}").as_bytes())
                            .unwrap(),
                        "v".repeat(7 * 1024).parse().unwrap(),
                    );
                }
                (h, "too much")
            }),
        )
        .route(
            "/lim/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "late"
            }),
        )
        .fallback(|| async { "fine" });
    serve_target(app).await
}

#[tokio::test]
async fn alb_size_limits_and_460() {
    let port = target().await;
    let rules = format!(
        "[[listeners.rules]]\npriority = 40\nconditions = [{{ field = \"path-pattern\", values = [\"/lim/*\"] }}]\nactions = [{{ type = \"forward\", target_group = \"lim\" }}]\n\n[[target_groups]]\nname = \"lim\"\ntargets = [{{ id = \"127.0.0.1\", port = {port} }}]\n"
    );
    let kit = Kit::builder().toml(&rules).start().await;
    let c = plain();

    // Just under the limits: forwarded.
    let ok = c
        .get(kit.url(&format!("/lim/q?{}", "a".repeat(15 * 1024))))
        .header("x-one", "b".repeat(15 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "fine");

    let long_line = c
        .get(kit.url(&format!("/lim/q?{}", "a".repeat(17 * 1024))))
        .send()
        .await
        .unwrap();
    assert_eq!(long_line.status(), 414);
    let one_big = c
        .get(kit.url("/lim/h"))
        .header("x-one", "b".repeat(17 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(one_big.status(), 400);
    let mut many = c.get(kit.url("/lim/all"));
    for i in 0..5 {
        many = many.header(format!("x-part-{i}"), "c".repeat(14 * 1024));
    }
    assert_eq!(many.send().await.unwrap().status(), 400);
    kit.log_line(&["/lim/all", " 400 - "]).await;

    // Over HTTP/1.1, a refused oversized request ends its connection (ALB and nginx close too).
    let h1 = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .http1_only()
        .build()
        .unwrap();
    for (path, header) in [
        (format!("/lim/h1?{}", "a".repeat(17 * 1024)), 0),
        ("/lim/h1".to_string(), 17 * 1024),
    ] {
        let mut r = h1.get(kit.url(&path));
        if header > 0 {
            r = r.header("x-one", "b".repeat(header));
        }
        let r = r.send().await.unwrap();
        assert!(r.status() == 414 || r.status() == 400, "{}", r.status());
        assert_eq!(r.headers()["connection"], "close", "{path}");
    }
    // A good request still keeps its connection.
    let r = h1.get(kit.url("/lim/q")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("connection").is_none_or(|v| v != "close"));

    // A target whose answer has 35 KB of headers: 502.
    let r = c.get(kit.url("/lim/big-headers")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    kit.log_line(&["/lim/big-headers", " 502 200 "]).await;

    // A client that leaves while its target works (it gives up after 300 ms and drops the
    // connection): logged with 460.
    let gone = c
        .get(kit.url("/lim/slow"))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(gone.is_err(), "the client gave up");
    kit.log_line(&["/lim/slow", " 460 "]).await;
    kit.app.shutdown().await;
}
