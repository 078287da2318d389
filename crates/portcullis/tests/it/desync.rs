//! Desync mitigation as ALB's `defensive` mode: severe framing errors (conflicting lengths, a
//! `Transfer-Encoding` that is not chunked, malformed header lines) are refused with 400 and never
//! reach a target; the ambiguous `Transfer-Encoding` + `Content-Length` is read as chunked (the
//! length dropped, per RFC 9112), forwarded, and the client connection closed after it. The HTTP/1
//! parser (hyper's) enforces this; these tests pin it.

use crate::kit;

use kit::*;
use std::io::{Read, Write};

fn raw(port: u16, request: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_framing_is_refused() {
    let kit = Kit::builder().start().await;
    let port = kit.http_port;
    let cases = [
        (
            "two different Content-Lengths",
            "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabcd",
        ),
        (
            "a Transfer-Encoding that is not chunked last",
            "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\nConnection: close\r\n\r\n0\r\n\r\n",
        ),
        (
            "a space before the colon",
            "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length : 3\r\nConnection: close\r\n\r\nabc",
        ),
    ];
    let first = |p: &str| p.split("\r\n").next().unwrap_or("").to_string();
    for (what, req) in cases {
        let r = raw(port, req);
        assert!(r.starts_with("HTTP/1.1 400"), "{what}: {}", first(&r));
    }
    // Each refusal is in the access log, as ALB logs a malformed request: `- - - `, no target.
    let line = kit.log_line(&["\"- - - \"", " 400 - "]).await;
    assert!(line.starts_with("http "), "{line}");
    // The log is written in the background: wait for all three.
    let mut refused = 0;
    for _ in 0..100 {
        refused = std::fs::read_to_string(&kit.access_log)
            .unwrap()
            .lines()
            .filter(|l| l.contains("\"- - - \""))
            .count();
        if refused >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(refused, 3);
    // Ambiguous: forwarded as chunked (the backend sees no Content-Length), connection closed.
    let r = raw(
        port,
        "POST /open/te HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 200"), "{}", first(&r));
    assert!(r.to_ascii_lowercase().contains("connection: close"), "{r}");
    assert!(
        !r.contains("\"content-length\":\"5\""),
        "the length is not passed on: {r}"
    );
    let chunked = raw(
        port,
        "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    assert!(chunked.starts_with("HTTP/1.1 200"), "{}", first(&chunked));
    let sized = raw(
        port,
        "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    );
    assert!(sized.starts_with("HTTP/1.1 200"), "{}", first(&sized));
    kit.app.shutdown().await;
}
