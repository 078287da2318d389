//! Client connections end as at ALB: after `client_keep_alive_seconds` a busy connection is closed
//! once the request in progress is answered (`Connection: close`; HTTP/2: GOAWAY), a connection
//! silent for `idle_timeout_seconds` between requests is closed, and an HTTP/2 connection ends
//! after 10,000 requests. Raw TCP where the test must see the closes.

mod kit;

use kit::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads one response (head and a `Content-Length` body); `None` at EOF before any byte.
async fn read_response(s: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + len {
                return Some(head);
            }
        }
        let n = s.read(&mut byte).await.unwrap_or(0);
        if n == 0 {
            return if buf.is_empty() {
                None
            } else {
                panic!("truncated: {}", String::from_utf8_lossy(&buf))
            };
        }
        buf.extend_from_slice(&byte[..n]);
    }
}

async fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(s.read(&mut b).await, Ok(0) | Err(_))
}

#[tokio::test]
async fn a_busy_connection_closes_after_client_keep_alive() {
    let kit = Kit::start_with("", "client_keep_alive_seconds = 1").await;
    let mut s = TcpStream::connect(("127.0.0.1", kit.http_port))
        .await
        .unwrap();
    let opened = Instant::now();
    let mut answered = 0;
    loop {
        s.write_all(b"GET /ka HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .unwrap();
        let head = read_response(&mut s)
            .await
            .expect("every request sent is answered");
        assert!(head.starts_with("http/1.1 200"), "{head}");
        answered += 1;
        if head.contains("connection: close") {
            break;
        }
        assert!(opened.elapsed() < Duration::from_secs(5), "never closed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lived = opened.elapsed();
    assert!(closed(&mut s).await, "closed after the last answer");
    assert!(
        lived >= Duration::from_millis(900) && answered >= 5,
        "{lived:?}, {answered} answers"
    );
    kit.app.shutdown().await;
}

#[tokio::test]
async fn an_idle_connection_closes_after_the_idle_timeout() {
    let kit = Kit::start_with("", "idle_timeout_seconds = 1").await;
    let mut s = TcpStream::connect(("127.0.0.1", kit.http_port))
        .await
        .unwrap();
    s.write_all(b"GET /idle HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    assert!(
        read_response(&mut s)
            .await
            .unwrap()
            .starts_with("http/1.1 200")
    );
    let answered = Instant::now();
    let closed_in_time = tokio::time::timeout(Duration::from_secs(5), closed(&mut s))
        .await
        .unwrap_or(false);
    assert!(closed_in_time, "an idle connection must be closed");
    assert!(
        answered.elapsed() >= Duration::from_millis(900),
        "{:?}",
        answered.elapsed()
    );
    kit.app.shutdown().await;
}

async fn new_connections(kit: &Kit) -> u64 {
    let text = reqwest::get(format!("http://{}/metrics", kit.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("portcullis_new_connections_total "))
        .unwrap_or_else(|| panic!("{text}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn an_http2_connection_gets_goaway_after_client_keep_alive() {
    let kit = Kit::start_with(
        "[[listeners.rules]]\npriority = 50\nconditions = [{ field = \"path-pattern\", values = [\"/h2ka\"] }]\nactions = [{ type = \"forward\", target_group = \"echo\" }]\n",
        "client_keep_alive_seconds = 1",
    )
    .await;
    let client = h2_client();
    let before = new_connections(&kit).await;
    let started = Instant::now();
    let mut answered = 0;
    while started.elapsed() < Duration::from_millis(2500) {
        let r = client.get(kit.url("/h2ka")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.version(), reqwest::Version::HTTP_2);
        answered += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // One client, every request answered, yet the balancer made it reconnect (GOAWAY each second).
    let used = new_connections(&kit).await - before;
    assert!(
        (2..=5).contains(&used),
        "{used} connections for {answered} requests"
    );
    kit.app.shutdown().await;
}

#[tokio::test]
async fn an_http2_connection_ends_after_ten_thousand_requests() {
    let kit = Kit::start_with(
        "[[listeners.rules]]\npriority = 50\nconditions = [{ field = \"path-pattern\", values = [\"/many\"] }]\nactions = [{ type = \"fixed-response\", status_code = 200, content_type = \"text/plain\", message_body = \"ok\" }]\n",
        "",
    )
    .await;
    let client = h2_client();
    let before = new_connections(&kit).await;
    let total = portcullis_lb::proxy::MAX_HTTP2_REQUESTS as usize + 500;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (c, url) = (client.clone(), kit.url("/many"));
        tasks.push(tokio::spawn(async move {
            for _ in 0..total / 20 {
                let r = c.get(&url).send().await.unwrap();
                assert_eq!(r.status(), 200);
                r.bytes().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Every request answered; the first connection ended after 10,000 and a second took the rest.
    assert_eq!(new_connections(&kit).await - before, 2);
    kit.app.shutdown().await;
}
