//! The balancer's own HTTP/1.1 codec (issue 11: `lb::h1`) attacked from outside: request
//! smuggling between the balancer and a target, response-side desync, resource exhaustion, and
//! upgrades. Each test drives real sockets against a balancer on port 0 whose plain listener
//! forwards to a raw target written here, a strict HTTP/1.1 reader that records every request
//! exactly as it arrived on the wire. This module holds the raw target and the client's side;
//! the tests are in one submodule per topic.
//!
//! The tests whose doc comment begins "Fixed" each showed a defect, and failed before its fix;
//! the others pin a defence that holds.

use crate::kit::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------------------------------------
// A raw target: a strict HTTP/1.1 reader that records what it gets.
// ---------------------------------------------------------------------------------------------

/// One request as a raw target read it off the wire.
#[derive(Debug, Clone, Default)]
struct Received {
    /// The head, lower-cased, without the blank line.
    head: String,
    /// The body (chunked bodies decoded).
    body: Vec<u8>,
    /// The trailer section, lower-cased (chunked bodies only).
    trailers: String,
    /// A framing error the target met instead of a request (a desync symptom).
    error: Option<String>,
}

impl Received {
    fn path(&self) -> &str {
        self.head.split(' ').nth(1).unwrap_or("")
    }
}

/// Every request a raw target read, in order, over all its connections.
type Log = Arc<Mutex<Vec<Received>>>;

/// What a raw target does after reading a request.
enum Step {
    /// Write these bytes.
    Send(Vec<u8>),
    /// Wait.
    Sleep(u64),
}

type Responder = Arc<dyn Fn(&Received) -> Vec<Step> + Send + Sync>;

/// A connection's bytes with a read buffer.
struct Wire {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Wire {
    async fn more(&mut self) -> bool {
        let mut b = [0u8; 16 * 1024];
        match self.s.read(&mut b).await {
            Ok(n) if n > 0 => {
                self.buf.extend_from_slice(&b[..n]);
                true
            }
            _ => false,
        }
    }

    /// Bytes up to `delim` (not included), consumed with it; `None` at end of stream.
    async fn until(&mut self, delim: &[u8]) -> Option<Vec<u8>> {
        loop {
            if let Some(p) = self.buf.windows(delim.len()).position(|w| w == delim) {
                let out = self.buf[..p].to_vec();
                self.buf.drain(..p + delim.len());
                return Some(out);
            }
            if !self.more().await {
                return None;
            }
        }
    }

    async fn exact(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            if !self.more().await {
                return None;
            }
        }
        Some(self.buf.drain(..n).collect())
    }
}

fn values<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v.trim())
        .collect()
}

/// Reads one request strictly as RFC 9112 frames it (no leniency at all: the balancer writes
/// every head and chunk itself). `None` at a clean end of stream.
async fn read_request(w: &mut Wire) -> Option<Received> {
    if w.buf.is_empty() && !w.more().await {
        return None;
    }
    let fail = |head: String, e: &str| {
        Some(Received {
            head,
            error: Some(e.to_string()),
            ..Received::default()
        })
    };
    let Some(head) = w.until(b"\r\n\r\n").await else {
        return fail(String::from_utf8_lossy(&w.buf).into(), "truncated head");
    };
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    if head.contains('\n')
        && head
            .split("\r\n")
            .any(|l| l.contains('\n') || l.contains('\r'))
    {
        return fail(head, "bare CR or LF in the head");
    }
    if head
        .split("\r\n")
        .skip(1)
        .any(|l| l.starts_with([' ', '\t']) || !l.contains(':'))
    {
        return fail(head, "obs-fold or a line without a colon");
    }
    let cl = values(&head, "content-length");
    let te = values(&head, "transfer-encoding");
    let mut r = Received {
        head: head.clone(),
        ..Received::default()
    };
    match (cl.as_slice(), te.as_slice()) {
        (_, [_, ..]) if !cl.is_empty() => {
            return fail(head, "both Content-Length and Transfer-Encoding");
        }
        ([], []) => {}
        ([n], []) => {
            let Ok(n) = n.parse::<usize>() else {
                return fail(head, "bad Content-Length");
            };
            match w.exact(n).await {
                Some(b) => r.body = b,
                None => return fail(head, "truncated body"),
            }
        }
        ([], ["chunked"]) => loop {
            let Some(line) = w.until(b"\r\n").await else {
                return fail(head, "truncated chunk size");
            };
            let Some(size) = std::str::from_utf8(&line)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|s| usize::from_str_radix(s, 16).ok())
            else {
                return fail(
                    head,
                    &format!("bad chunk size {:?}", String::from_utf8_lossy(&line)),
                );
            };
            if size == 0 {
                let mut trailers = Vec::new();
                loop {
                    match w.until(b"\r\n").await {
                        Some(l) if l.is_empty() => break,
                        Some(l) => {
                            trailers.extend_from_slice(&l);
                            trailers.extend_from_slice(b"\r\n");
                        }
                        None => return fail(head, "truncated trailers"),
                    }
                }
                r.trailers = String::from_utf8_lossy(&trailers).to_ascii_lowercase();
                break;
            }
            let Some(data) = w.exact(size + 2).await else {
                return fail(head, "truncated chunk");
            };
            if !data.ends_with(b"\r\n") {
                return fail(head, "chunk without CRLF");
            }
            r.body.extend_from_slice(&data[..size]);
        },
        _ => return fail(head, "several lengths or codings"),
    }
    Some(r)
}

/// A raw target: reads requests strictly, records them, and answers as `respond` says. A
/// framing error is recorded and closes the connection.
async fn raw_target(respond: Responder) -> (u16, Log) {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let log: Log = Arc::default();
    let seen = log.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = tcp.accept().await {
            let (seen, respond) = (seen.clone(), respond.clone());
            tokio::spawn(async move {
                let mut w = Wire { s, buf: Vec::new() };
                while let Some(r) = read_request(&mut w).await {
                    seen.lock().unwrap().push(r.clone());
                    if r.error.is_some() {
                        return;
                    }
                    for step in respond(&r) {
                        match step {
                            Step::Send(b) => {
                                if w.s.write_all(&b).await.is_err() {
                                    return;
                                }
                            }
                            Step::Sleep(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                        }
                    }
                }
            });
        }
    });
    (port, log)
}

/// A small answer naming the path it answers.
fn ok_for(r: &Received) -> Vec<u8> {
    let body = format!("answer for {}", r.path());
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn plain_target() -> Responder {
    Arc::new(|r: &Received| vec![Step::Send(ok_for(r))])
}

/// A kit whose plain listener forwards everything to `port` (a raw target).
async fn kit_forwarding_to(port: u16) -> Kit {
    kit_forwarding_to_with(port, "").await
}

async fn kit_forwarding_to_with(port: u16, lb_extra: &str) -> Kit {
    let group = format!(
        "[[target_groups]]\nname = \"raw\"\nhealth_check = {{ enabled = false }}\ntargets = [{{ id = \"127.0.0.1\", port = {port} }}]\n"
    );
    let kit = Kit::builder().toml(&group).lb(lb_extra).start().await;
    kit.reload_replacing(
        r#"default_actions = [{ type = "forward", target_group = "echo" }]"#,
        r#"default_actions = [{ type = "forward", target_group = "raw" }]"#,
    )
    .await;
    kit
}

// ---------------------------------------------------------------------------------------------
// The client's side.
// ---------------------------------------------------------------------------------------------

/// Sends `bytes` on a new connection and reads until the balancer closes (10 s at most).
async fn exchange(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(bytes).await.unwrap();
    read_to_close(&mut s).await
}

async fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    out
}

/// One answer as a client reads it.
#[derive(Debug)]
struct Answer {
    /// Lower-cased head.
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn status(&self) -> u16 {
        self.head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

/// Splits what a client received into answers as a client frames them (Content-Length,
/// chunked, or to the end); `head_requests` lists which answers (by index) answer a HEAD.
fn answers(mut bytes: &[u8], head_requests: &[usize]) -> Vec<Answer> {
    let mut out = Vec::new();
    while let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
        let mut rest = &bytes[end + 4..];
        let status = head.split(' ').nth(1).unwrap_or("");
        let body;
        if status.starts_with('1')
            || status == "204"
            || status == "304"
            || head_requests.contains(&out.len())
        {
            body = Vec::new();
        } else if let [n] = values(&head, "content-length").as_slice() {
            let n: usize = n.parse().unwrap_or(usize::MAX).min(rest.len());
            body = rest[..n].to_vec();
            rest = &rest[n..];
        } else if values(&head, "transfer-encoding") == ["chunked"] {
            let mut b = Vec::new();
            loop {
                let Some(p) = rest.windows(2).position(|w| w == b"\r\n") else {
                    rest = &[];
                    break;
                };
                let size = usize::from_str_radix(
                    std::str::from_utf8(&rest[..p])
                        .unwrap_or("")
                        .split(';')
                        .next()
                        .unwrap_or(""),
                    16,
                )
                .unwrap_or(0);
                rest = &rest[p + 2..];
                if size == 0 {
                    // Trailer lines up to the blank one.
                    while let Some(t) = rest.windows(2).position(|w| w == b"\r\n") {
                        rest = &rest[t + 2..];
                        if t == 0 {
                            break;
                        }
                    }
                    break;
                }
                let take = size.min(rest.len());
                b.extend_from_slice(&rest[..take]);
                rest = &rest[(take + 2).min(rest.len())..];
            }
            body = b;
        } else {
            body = rest.to_vec();
            rest = &[];
        }
        out.push(Answer { head, body });
        bytes = rest;
    }
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Sends `bytes` on a new connection and reads until the balancer closes or stays silent for
/// 1.5 s.
async fn exchange_until_quiet(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let mut b = [0u8; 8192];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(1500), s.read(&mut b)).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[..n]);
    }
    out
}

/// The request a desync would smuggle.
const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: a\r\nX-Smuggled: 1\r\n\r\n";

mod exhaustion;
mod pipelining;
mod responses;
mod smuggling;
mod upgrades;
