//! Client connections end as at ALB: after `client_keep_alive_seconds` a busy connection is closed
//! once the request in progress is answered (`Connection: close`; HTTP/2: GOAWAY), a connection
//! silent for `idle_timeout_seconds` between requests is closed, and an HTTP/2 connection ends
//! after 10,000 requests. Raw TCP where the test must see the closes.

use crate::kit;

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
    let kit = Kit::builder()
        .lb("client_keep_alive_seconds = 1")
        .start()
        .await;
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
    let kit = Kit::builder().lb("idle_timeout_seconds = 1").start().await;
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
    let text = kit.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix("portcullis_new_connections_total "))
        .unwrap_or_else(|| panic!("{text}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn an_http2_connection_gets_goaway_after_client_keep_alive() {
    let kit = Kit::builder().toml("[[listeners.rules]]\npriority = 50\nconditions = [{ field = \"path-pattern\", values = [\"/h2ka\"] }]\nactions = [{ type = \"forward\", target_group = \"echo\" }]\n").lb("client_keep_alive_seconds = 1").start()
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
    let kit = Kit::builder().toml("[[listeners.rules]]\npriority = 50\nconditions = [{ field = \"path-pattern\", values = [\"/many\"] }]\nactions = [{ type = \"fixed-response\", status_code = 200, content_type = \"text/plain\", message_body = \"ok\" }]\n").start()
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

/// Reads one whole response: the head (lower case) and a `Content-Length` or chunked body.
async fn read_full(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    let mut byte = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let rest = &buf[end + 4..];
            if head.starts_with("http/1.1 101") || head.starts_with("head") {
                buf.drain(..end + 4);
                return Some((head, Vec::new()));
            }
            if let Some(len) = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse::<usize>().unwrap())
            {
                if rest.len() >= len {
                    let body = rest[..len].to_vec();
                    buf.drain(..end + 4 + len);
                    return Some((head, body));
                }
            } else if head.contains("transfer-encoding: chunked") {
                if let Some(z) = rest.windows(5).position(|w| w == b"0\r\n\r\n") {
                    let body = rest[..z].to_vec();
                    buf.drain(..end + 4 + z + 5);
                    return Some((head, body));
                }
            } else {
                return Some((head, Vec::new()));
            }
        }
        let n = s.read(&mut byte).await.unwrap_or(0);
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&byte[..n]);
    }
}

/// The balancer's own HTTP/1.1 codec: pipelined requests are answered in order on one
/// connection, HTTP/1.0 closes unless it asks for keep-alive, HEAD gets no body, and a chunked
/// request body with a trailer reaches the target.
#[tokio::test]
async fn http1_pipelining_http10_head_and_chunked_bodies() {
    let kit = Kit::builder().start().await;
    let port = kit.http_port;
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(
        b"GET /open/first HTTP/1.1\r\nHost: a\r\n\r\nGET /open/second HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let (h1, b1) = read_full(&mut s, &mut buf).await.unwrap();
    let (h2, b2) = read_full(&mut s, &mut buf).await.unwrap();
    assert!(
        h1.starts_with("http/1.1 200") && h2.starts_with("http/1.1 200"),
        "{h1}\n{h2}"
    );
    assert!(String::from_utf8_lossy(&b1).contains("/open/first"));
    assert!(String::from_utf8_lossy(&b2).contains("/open/second"));

    // HEAD: the length of the GET, no body; the connection goes on.
    s.write_all(
        b"HEAD /open/h HTTP/1.1\r\nHost: a\r\n\r\nGET /open/after HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    let mut byte = [0u8; 8192];
    while raw.windows(11).filter(|w| w == b"/open/after").count() == 0 {
        let n = s.read(&mut byte).await.unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&byte[..n]);
    }
    let text = String::from_utf8_lossy(&raw);
    let first = text.find("HTTP/1.1 200").unwrap();
    let second = text[first + 1..].find("HTTP/1.1 200").unwrap() + first + 1;
    assert!(
        !text[first..second].contains("/open/h"),
        "HEAD got a body: {text}"
    );

    // HTTP/1.0 without keep-alive: answered, then closed.
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(b"GET /open/old HTTP/1.0\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let (h, _) = read_full(&mut s, &mut buf).await.unwrap();
    assert!(
        h.starts_with("http/1.1 200") && h.contains("connection: close"),
        "{h}"
    );
    assert!(closed(&mut s).await);
    // With keep-alive it stays open.
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(b"GET /open/old HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let (h, _) = read_full(&mut s, &mut buf).await.unwrap();
    assert!(h.contains("connection: keep-alive"), "{h}");
    s.write_all(b"GET /open/again HTTP/1.0\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let (h, b) = read_full(&mut s, &mut buf).await.unwrap();
    assert!(h.starts_with("http/1.1 200"), "{h}");
    assert!(String::from_utf8_lossy(&b).contains("/open/again"));

    // A chunked body (with a trailer) is forwarded; the target reads a body, not chunk sizes.
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(b"POST /open/chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let mut got = Vec::new();
    // The balancer asks for the body before the target answers.
    while !got.windows(12).any(|w| w == b"100 Continue") {
        let n = s.read(&mut byte).await.unwrap();
        assert!(n > 0);
        got.extend_from_slice(&byte[..n]);
    }
    s.write_all(b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-t: 1\r\n\r\n")
        .await
        .unwrap();
    let rest = got.split(|_| false).next().unwrap().to_vec();
    let after = rest
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(Vec::new(), |p| rest[p + 4..].to_vec());
    buf.extend_from_slice(&after);
    let (h, b) = read_full(&mut s, &mut buf).await.unwrap();
    assert!(h.starts_with("http/1.1 200"), "{h}");
    let echoed: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(echoed["method"], "POST");
    kit.app.shutdown().await;
}

/// Bodies stream both ways through the HTTP/1 codec: a 3 MiB request body (sent chunked, with
/// no length) reaches the target whole, and the target's 3 MiB answer (by length, and chunked)
/// reaches the client whole.
#[tokio::test]
async fn large_bodies_stream_both_ways() {
    let app = axum::Router::new()
        .route(
            "/big/echo",
            axum::routing::post(|body: axum::body::Bytes| async move { body }),
        )
        .layer(axum::extract::DefaultBodyLimit::disable())
        .route(
            "/big/chunked",
            axum::routing::get(|| async {
                let chunks = (0..48).map(|i| {
                    Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![
                        b'a' + (i % 26) as u8;
                        65536
                    ]))
                });
                axum::body::Body::from_stream(futures_util::stream::iter(chunks))
            }),
        );
    let port = serve_target(app).await;
    let rules = format!(
        "[[listeners.rules]]\npriority = 40\nconditions = [{{ field = \"path-pattern\", values = [\"/big/*\"] }}]\nactions = [{{ type = \"forward\", target_group = \"big\" }}]\n\n[[target_groups]]\nname = \"big\"\ntargets = [{{ id = \"127.0.0.1\", port = {port} }}]\n"
    );
    let kit = Kit::builder().toml(&rules).start().await;
    let c = plain();
    let sent: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        sent.chunks(100_000).map(|c| Ok(c.to_vec())).collect();
    let r = c
        .post(kit.url("/big/echo"))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            pieces,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let back = r.bytes().await.unwrap();
    assert_eq!(back.len(), sent.len());
    assert!(back[..] == sent[..], "the body came back changed");
    let r = c.get(kit.url("/big/chunked")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let got = r.bytes().await.unwrap();
    assert_eq!(got.len(), 48 * 65536);
    assert!(
        got[..65536].iter().all(|&b| b == b'a') && got[65536..131072].iter().all(|&b| b == b'b')
    );
    kit.app.shutdown().await;
}

/// A raw target that answers every request on a connection with `answer`.
async fn raw_target(answer: &'static [u8]) -> u16 {
    let (port, _) = tcp_target(move |mut s| async move {
        let mut buf = [0u8; 8192];
        let mut got = Vec::new();
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            while let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                got.drain(..end + 4);
                if s.write_all(answer).await.is_err() {
                    return;
                }
            }
        }
    })
    .await;
    port
}

/// A target's framing mistakes stay with that answer: a length with chunked is read as chunked
/// and the length is not passed on; bytes past a length are not sent to the client (which
/// would read them as its next answer), and the next request still gets its own answer.
#[tokio::test]
async fn a_targets_framing_mistakes_do_not_reach_the_next_answer() {
    let both = raw_target(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n").await;
    let extra = raw_target(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled").await;
    let rules = format!(
        "[[listeners.rules]]\npriority = 40\nconditions = [{{ field = \"path-pattern\", values = [\"/both/*\"] }}]\nactions = [{{ type = \"forward\", target_group = \"both\" }}]\n\n\
         [[listeners.rules]]\npriority = 41\nconditions = [{{ field = \"path-pattern\", values = [\"/extra/*\"] }}]\nactions = [{{ type = \"forward\", target_group = \"extra\" }}]\n\n\
         [[target_groups]]\nname = \"both\"\ntargets = [{{ id = \"127.0.0.1\", port = {both} }}]\nhealth_check = {{ enabled = false }}\n\n\
         [[target_groups]]\nname = \"extra\"\ntargets = [{{ id = \"127.0.0.1\", port = {extra} }}]\nhealth_check = {{ enabled = false }}\n"
    );
    let kit = Kit::builder().toml(&rules).start().await;
    let c = plain();
    for _ in 0..3 {
        let r = c.get(kit.url("/both/x")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_ne!(
            r.headers()
                .get("content-length")
                .map(|v| v.to_str().unwrap()),
            Some("50")
        );
        assert_eq!(r.text().await.unwrap(), "abc");
    }
    for _ in 0..3 {
        let r = c.get(kit.url("/extra/x")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "ab", "only the answer's own bytes");
    }
    kit.app.shutdown().await;
}
