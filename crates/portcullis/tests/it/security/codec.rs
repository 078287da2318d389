//! The balancer's own HTTP/1.1 codec (issue 11: `lb::h1`) attacked from outside: request
//! smuggling between the balancer and a target, response-side desync, resource exhaustion, and
//! upgrades. Each test drives real sockets against a balancer on port 0 whose plain listener
//! forwards to a raw target written here, a strict HTTP/1.1 reader that records every request
//! exactly as it arrived on the wire.
//!
//! The tests after "Found and fixed" each showed a defect an outside review found, and failed
//! before its fix; the others pin a defence that holds.

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

// ---------------------------------------------------------------------------------------------
// Found and fixed (each failed before its fix).
// ---------------------------------------------------------------------------------------------

/// Fixed: trailers of a chunked request reach HTTP/1 targets with names the balancer owns.
/// `upstream::ClientBody` strips `x-amzn-oidc-*` (and the rest of `headers::is_owned`) from
/// trailers, but `Upstreams::send` hands `body.inner` to `h1::client::send`, so for HTTP/1
/// targets the stripping wrapper is bypassed and `h1::client::exchange` writes the client's
/// trailers verbatim. A target (or framework) that merges trailers into headers reads a forged
/// identity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_trailers_never_reach_http1_targets() {
    let (port, log) = raw_target(plain_target()).await;
    let kit = kit_forwarding_to(port).await;
    let got = exchange(
        kit.http_port,
        b"POST /open/t HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
          5\r\nhello\r\n0\r\nx-amzn-oidc-identity: admin\r\nX_Amzn_Oidc_Data: forged\r\nx-portcullis-jwt: forged\r\nx-ok: 1\r\n\r\n",
    )
    .await;
    assert!(text(&got).starts_with("HTTP/1.1 200"), "{}", text(&got));
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 1, "{log:?}");
    let r = &log[0];
    assert_eq!(r.body, b"hello");
    assert!(
        r.trailers.contains("x-ok: 1"),
        "trailers are passed on: {r:?}"
    );
    for owned in [
        "x-amzn-oidc-identity",
        "x_amzn_oidc_data",
        "x-portcullis-jwt",
    ] {
        assert!(
            !r.trailers.contains(owned),
            "the client's {owned} trailer reached the target: {:?}",
            r.trailers
        );
    }
    kit.app.shutdown().await;
}

/// Fixed: a target's answer with both `Content-Length` and `Transfer-Encoding: chunked`
/// reaches the client with the target's `Content-Length` and the de-chunked body, whatever its
/// length. `h1::client::finish` reads the body as chunked (right) but leaves `Content-Length`
/// in the headers; `upstream_response` strips `Transfer-Encoding` as hop-by-hop; then
/// `h1::server::write_response` frames by that `Content-Length` and writes every body byte it
/// gets (it checks `sent != n` only after writing). The bytes past the length are read by a
/// keep-alive or pipelining client (or a CDN in front) as the answer to its next request:
/// response splitting under a target's control. RFC 9112 §6.3: the length must be removed (and
/// the target connection closed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_with_length_and_chunked_cannot_split_the_clients_responses() {
    const FAKE: &str = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled";
    let respond: Responder = Arc::new(|r: &Received| {
        if r.path() == "/first" {
            let data = format!("abc{FAKE}");
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{data}\r\n0\r\n\r\n",
                data.len()
            );
            vec![Step::Send(answer.into_bytes())]
        } else {
            vec![Step::Send(ok_for(r))]
        }
    });
    let (port, _log) = raw_target(respond).await;
    let kit = kit_forwarding_to(port).await;
    let got = exchange(
        kit.http_port,
        b"GET /first HTTP/1.1\r\nHost: a\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .await;
    let answers = answers(&got, &[]);
    assert!(!answers.is_empty(), "{}", text(&got));
    for (i, a) in answers.iter().enumerate() {
        assert_ne!(
            a.body,
            b"smuggled",
            "answer {i} is one the target planted in the first answer's body:\n{}",
            text(&got)
        );
    }
    kit.app.shutdown().await;
}

/// Fixed: a `Connection` header can name headers the balancer sets before it strips
/// hop-by-hop ones: `Host` (which the rules routed on) and `X-Amzn-Trace-Id`.
/// `proxy::forward::upstream_request` calls `headers::set_trace_id` and reads nothing of `Host`
/// until after `headers::strip_hop_by_hop`, which removes every header `Connection` names. The
/// target then gets no `Host` at all (the rules routed on one; a name-based target serves its
/// default host) and no trace id. The balancer's own headers should be set after the strip, or
/// be immune to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cannot_remove_host_or_the_trace_id() {
    let (port, log) = raw_target(plain_target()).await;
    let kit = kit_forwarding_to(port).await;
    let got = exchange(
        kit.http_port,
        b"GET /open/c HTTP/1.1\r\nHost: a.example\r\nConnection: close, Host, X-Amzn-Trace-Id, X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Port\r\n\r\n",
    )
    .await;
    assert!(text(&got).starts_with("HTTP/1.1 200"), "{}", text(&got));
    let log = log.lock().unwrap().clone();
    let head = &log[0].head;
    for h in [
        "host:",
        "x-amzn-trace-id:",
        "x-forwarded-for:",
        "x-forwarded-proto:",
        "x-forwarded-port:",
    ] {
        assert!(
            head.split("\r\n").any(|l| l.starts_with(h)),
            "the target got no {h} header:\n{head}"
        );
    }
    kit.app.shutdown().await;
}

/// Fixed: a pipelining client that does not read its answers makes the balancer buffer
/// everything it sends, without bound. While a request is at the target, `h1::server::serve`
/// polls `client_side`, which (with no body to pump) reads once more into the connection's
/// buffer to notice a departing client (`Side::Pipelined`) even when that buffer already holds
/// the next requests; `read_head` takes only one head from it per cycle. So each request
/// cycle adds a read (about 1 KB or more) and removes one small head: the buffer grows with
/// what the client sends, with no cap (hyper stopped reading at `max_buf_size`, 80 KB). One
/// connection is measured here: what the client has written, minus what reached the target,
/// minus what the kernel still queues on both ends, is what the balancer holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_flood_does_not_grow_the_read_buffer() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Counts requests without keeping them.
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    let (port, log) = raw_target(Arc::new(move |r: &Received| {
        count.fetch_add(1, Ordering::Relaxed);
        vec![Step::Send(ok_for(r))]
    }))
    .await;
    let kit = kit_forwarding_to(port).await;
    let s = TcpStream::connect(("127.0.0.1", kit.http_port))
        .await
        .unwrap();
    let client_port = s.local_addr().unwrap().port();
    // The client reads nothing; its answers queue in the kernel.
    let (_r, mut w) = s.into_split();
    const ONE: &[u8] = b"GET /p HTTP/1.1\r\nHost: a\r\n\r\n";
    let block: Vec<u8> = ONE.iter().copied().cycle().take(ONE.len() * 4096).collect();
    let written = Arc::new(AtomicUsize::new(0));
    let wrote = written.clone();
    let writer = tokio::spawn(async move {
        while w.write_all(&block).await.is_ok() {
            wrote.fetch_add(block.len(), Ordering::Relaxed);
        }
    });
    // Kernel queues of a loopback connection from /proc/net/tcp: (send, receive) of the socket
    // whose local port is `local` and remote port `remote`.
    let queues = |local: u16, remote: u16| -> (usize, usize) {
        let (l, r) = (format!(":{local:04X}"), format!(":{remote:04X}"));
        std::fs::read_to_string("/proc/net/tcp")
            .unwrap()
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.len() > 4 && f[1].ends_with(&l) && f[2].ends_with(&r))
            .and_then(|f| {
                let (tx, rx) = f[4].split_once(':')?;
                Some((
                    usize::from_str_radix(tx, 16).ok()?,
                    usize::from_str_radix(rx, 16).ok()?,
                ))
            })
            .unwrap_or((0, 0))
    };
    const LIMIT: usize = 4 << 20;
    let mut held = 0;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        log.lock().unwrap().clear();
        let (client_tx, _) = queues(client_port, kit.http_port);
        let (_, server_rx) = queues(kit.http_port, client_port);
        held = written
            .load(Ordering::Relaxed)
            .saturating_sub(served.load(Ordering::Relaxed) * ONE.len())
            .saturating_sub(client_tx + server_rx);
        if held > LIMIT {
            break;
        }
    }
    writer.abort();
    assert!(
        held <= LIMIT,
        "the balancer holds {} KB of one client's unanswered pipelined requests ({} requests \
         served of {} written)",
        held >> 10,
        served.load(Ordering::Relaxed),
        written.load(Ordering::Relaxed) / ONE.len()
    );
    kit.app.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Defences that hold.
// ---------------------------------------------------------------------------------------------

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

/// Request smuggling: every odd framing is either refused with 400 before anything reaches the
/// target, or forwarded so that the target (a strict reader) frames it exactly as the balancer
/// did: every request head it reads is one the balancer wrote (it carries the trace id and
/// `X-Forwarded-For`), and it never meets a framing error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_framings_are_refused_or_forwarded_unambiguously() {
    let (port, log) = raw_target(plain_target()).await;
    let kit = kit_forwarding_to(port).await;
    let chunk_of_smuggled = format!("{:x}\r\n{SMUGGLED}\r\n0\r\n\r\n", SMUGGLED.len());
    // (what, head lines after the request line, body and what follows, refused with 400)
    let cases: Vec<(&str, String, String, bool)> = vec![
        (
            "CL.TE",
            "Content-Length: 60\r\nTransfer-Encoding: chunked".into(),
            format!("0\r\n\r\n{SMUGGLED}"),
            false,
        ),
        (
            "TE.CL",
            "Content-Length: 4\r\nTransfer-Encoding: chunked".into(),
            chunk_of_smuggled.clone(),
            false,
        ),
        (
            "TE in odd case",
            "Transfer-Encoding: cHuNkEd".into(),
            chunk_of_smuggled.clone(),
            false,
        ),
        (
            "TE with tabs",
            "Transfer-Encoding:\tchunked\t".into(),
            chunk_of_smuggled.clone(),
            false,
        ),
        (
            "TE xchunked",
            "Content-Length: 5\r\nTransfer-Encoding: xchunked".into(),
            format!("0\r\n\r\n{SMUGGLED}"),
            true,
        ),
        (
            "TE space before colon",
            "Content-Length: 5\r\nTransfer-Encoding : chunked".into(),
            format!("0\r\n\r\n{SMUGGLED}"),
            true,
        ),
        (
            "TE tab before colon",
            "Content-Length: 5\r\nTransfer-Encoding\t: chunked".into(),
            format!("0\r\n\r\n{SMUGGLED}"),
            true,
        ),
        (
            "TE twice",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked".into(),
            chunk_of_smuggled.clone(),
            true,
        ),
        (
            "TE chunked, identity",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity".into(),
            chunk_of_smuggled.clone(),
            true,
        ),
        (
            "TE chunked, chunked",
            "Transfer-Encoding: chunked, chunked".into(),
            chunk_of_smuggled.clone(),
            true,
        ),
        (
            "TE quoted",
            "Content-Length: 5\r\nTransfer-Encoding: \"chunked\"".into(),
            format!("0\r\n\r\n{SMUGGLED}"),
            true,
        ),
        (
            "TE identity",
            "Transfer-Encoding: identity".into(),
            format!("0\r\n\r\n{SMUGGLED}"),
            true,
        ),
        (
            "TE obs-fold",
            "Content-Length: 5\r\nX-Pad: 1\r\n Transfer-Encoding: chunked".into(),
            format!("0\r\n\r\n{SMUGGLED}"),
            true,
        ),
        (
            "TE obs-fold value",
            "Content-Length: 5\r\nTransfer-Encoding:\r\n chunked".into(),
            format!("0\r\n\r\n{SMUGGLED}"),
            true,
        ),
        (
            "TE vertical tab",
            "Content-Length: 5\r\nTransfer-Encoding:\x0bchunked".into(),
            format!("0\r\n\r\n{SMUGGLED}"),
            true,
        ),
        (
            "TE NUL",
            "Content-Length: 5\r\nTransfer-Encoding: chunked\x00".into(),
            format!("0\r\n\r\n{SMUGGLED}"),
            true,
        ),
        (
            "TE bare CR",
            "Content-Length: 5\r\nX: 1\rTransfer-Encoding: chunked".into(),
            format!("0\r\n\r\n{SMUGGLED}"),
            true,
        ),
        (
            "TE name with NUL",
            "Content-Length: 5\r\nTransfer-Encoding\x00: chunked".into(),
            format!("0\r\n\r\n{SMUGGLED}"),
            true,
        ),
        (
            "two lengths",
            "Content-Length: 0\r\nContent-Length: 51".into(),
            SMUGGLED.into(),
            true,
        ),
        (
            "a length list that differs",
            "Content-Length: 0, 51".into(),
            SMUGGLED.into(),
            true,
        ),
        (
            "a signed length",
            "Content-Length: +51".into(),
            SMUGGLED.into(),
            true,
        ),
        (
            "a negative length",
            "Content-Length: -1".into(),
            SMUGGLED.into(),
            true,
        ),
        (
            "a hex length",
            "Content-Length: 0x33".into(),
            SMUGGLED.into(),
            true,
        ),
        (
            "a length with a space",
            "Content-Length: 5 1".into(),
            SMUGGLED.into(),
            true,
        ),
        (
            "a 20-digit length",
            "Content-Length: 18446744073709551616".into(),
            SMUGGLED.into(),
            true,
        ),
        (
            "a length with a vertical tab",
            "Content-Length:\x0b51".into(),
            SMUGGLED.into(),
            true,
        ),
        (
            "a length obs-folded",
            "Content-Length:\r\n 51".into(),
            SMUGGLED.into(),
            true,
        ),
        (
            "a length with a space in its name",
            "Content Length: 51".into(),
            SMUGGLED.into(),
            true,
        ),
        (
            "a body on GET",
            "Content-Length: 5".into(),
            format!("hello{SMUGGLED}"),
            false,
        ),
        (
            "a length with leading zeros",
            "Content-Length: 005".into(),
            format!("hello{SMUGGLED}"),
            false,
        ),
        (
            "Expect with a length",
            "Expect: 100-continue\r\nContent-Length: 5".into(),
            format!("hello{SMUGGLED}"),
            false,
        ),
        (
            "a chunk extension",
            "Transfer-Encoding: chunked".into(),
            format!("5;a=b;c=\"d\"\r\nhello\r\n0\r\n\r\n{SMUGGLED}"),
            false,
        ),
        (
            "trailers",
            "Transfer-Encoding: chunked".into(),
            format!("5\r\nhello\r\n0\r\nX-T: 1\r\nContent-Length: 51\r\n\r\n{SMUGGLED}"),
            false,
        ),
    ];
    let mut refusals = 0;
    for (what, lines, rest, refused) in &cases {
        let before = log.lock().unwrap().len();
        let request = format!("POST /open/case HTTP/1.1\r\nHost: a\r\n{lines}\r\n\r\n{rest}");
        let got = exchange_until_quiet(kit.http_port, request.as_bytes()).await;
        let got = text(&got);
        let got = got
            .strip_prefix("HTTP/1.1 100 Continue\r\n\r\n")
            .unwrap_or(&got);
        if *refused {
            refusals += 1;
            assert!(got.starts_with("HTTP/1.1 400 "), "{what}: {got}");
            assert!(got.contains("onnection: close"), "{what}: {got}");
            assert_eq!(
                log.lock().unwrap().len(),
                before,
                "{what}: reached the target"
            );
        } else {
            assert!(got.starts_with("HTTP/1.1 200 "), "{what}: {got}");
        }
    }
    // HTTP/1.0 with chunked, and bare LF line ends.
    let got = exchange_until_quiet(
        kit.http_port,
        format!("POST /open/old HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{chunk_of_smuggled}").as_bytes(),
    )
    .await;
    assert!(text(&got).starts_with("HTTP/1.1 400 "), "{}", text(&got));
    let got = exchange_until_quiet(
        kit.http_port,
        format!("POST /open/lf HTTP/1.1\nHost: a\nContent-Length: 5\n\nhello{SMUGGLED}").as_bytes(),
    )
    .await;
    assert!(text(&got).starts_with("HTTP/1.1 "), "{}", text(&got));
    assert!(refusals > 20);
    let log = log.lock().unwrap().clone();
    assert!(!log.is_empty());
    for r in &log {
        assert_eq!(r.error, None, "the target met a framing error: {r:?}");
        assert!(
            r.head.contains("\r\nx-amzn-trace-id: ") && r.head.contains("\r\nx-forwarded-for: "),
            "a head the balancer did not write reached the target: {r:?}"
        );
    }
    // The bodies are what the balancer framed.
    assert!(
        log.iter().any(|r| r.body == SMUGGLED.as_bytes()),
        "TE.CL body"
    );
    assert!(
        log.iter()
            .any(|r| r.body == b"hello" && r.head.starts_with("post /open/case"))
    );
    kit.app.shutdown().await;
}

/// Fixed (RFC 9110 §8.6 / RFC 7230 §3.3.2): a request whose length is a list of one value
/// (`Content-Length: 5, 5`) or a repeated field is accepted, but not normalised before it is
/// forwarded: the target gets `content-length: 5` written by `h1::client::encode_head` (which
/// could not parse `5, 5` and took the body's size) and the client's `content-length: 5, 5`
/// as well, or the client's two fields. The RFC lets a recipient accept such a length only if
/// it replaces it with a single field before forwarding; targets on llhttp (Node) refuse
/// duplicated lengths, so a request the balancer accepted becomes a 400/502.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_length_list_reaches_the_target_as_one_length() {
    let (port, log) = raw_target(plain_target()).await;
    let kit = kit_forwarding_to(port).await;
    for lines in [
        "Content-Length: 5, 5",
        "Content-Length: 5\r\nContent-Length: 5",
    ] {
        let got = exchange(
            kit.http_port,
            format!(
                "POST /open/len HTTP/1.1\r\nHost: a\r\n{lines}\r\nConnection: close\r\n\r\nhello"
            )
            .as_bytes(),
        )
        .await;
        let r = log.lock().unwrap().last().cloned().unwrap();
        let lengths = values(&r.head, "content-length");
        assert_eq!(
            lengths,
            ["5"],
            "{lines:?} reached the target as:\n{}",
            r.head
        );
        assert!(
            text(&got).starts_with("HTTP/1.1 200 "),
            "{lines:?}: {}",
            text(&got)
        );
    }
    kit.app.shutdown().await;
}

/// Response-side desync: a target that sends more than its answer (bytes after the body, a
/// body on a HEAD or 204 answer, bytes after `Connection: close` or an HTTP/1.0 answer, at
/// once or a moment later) never has those bytes read as another client's answer: the pooled
/// connection is dropped when its buffer holds more, or when it has news before it is reused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_bytes_from_a_target_never_reach_another_client() {
    const STOLEN: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nstolen";
    let respond: Responder = Arc::new(|r: &Received| {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec();
        let then = |first: Vec<u8>| {
            vec![
                Step::Send(first),
                Step::Sleep(100),
                Step::Send(STOLEN.to_vec()),
            ]
        };
        let with = |first: &[u8]| vec![Step::Send([first, STOLEN].concat())];
        match r.path() {
            "/short" => with(&ok),
            "/short-later" => then(ok),
            "/head" => with(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n"),
            "/head-later" => then(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n".to_vec()),
            "/no-content" => with(b"HTTP/1.1 204 No Content\r\n\r\n"),
            "/no-content-later" => then(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()),
            "/not-modified-later" => {
                then(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 6\r\n\r\n".to_vec())
            }
            "/close-later" => then(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_vec(),
            ),
            "/old-later" => then(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()),
            "/chunked-later" => then(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
                    .to_vec(),
            ),
            _ => vec![Step::Send(ok_for(r))],
        }
    });
    let (port, _log) = raw_target(respond).await;
    let kit = kit_forwarding_to(port).await;
    for (method, path) in [
        ("GET", "/short"),
        ("GET", "/short-later"),
        ("HEAD", "/head"),
        ("HEAD", "/head-later"),
        ("GET", "/no-content"),
        ("GET", "/no-content-later"),
        ("GET", "/not-modified-later"),
        ("GET", "/close-later"),
        ("GET", "/old-later"),
        ("GET", "/chunked-later"),
    ] {
        let got = exchange(
            kit.http_port,
            format!("{method} {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
        let a = answers(&got, if method == "HEAD" { &[0] } else { &[] });
        assert!(!a.is_empty(), "{path}: {}", text(&got));
        assert_ne!(a[0].body, b"stolen", "{path}");
        // The target's late bytes (100 ms after its answer) arrive; then other clients come.
        tokio::time::sleep(Duration::from_millis(600)).await;
        for i in 0..3 {
            let victim = format!("/victim/{i}");
            let got = exchange(
                kit.http_port,
                format!("GET {victim} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await;
            let a = answers(&got, &[]);
            assert_eq!(a.len(), 1, "after {path}: {}", text(&got));
            assert_eq!(
                text(&a[0].body),
                format!("answer for {victim}"),
                "after {path}, another client got: {}",
                text(&got)
            );
        }
    }
    kit.app.shutdown().await;
}

/// Interim answers: `100 Continue` and `103 Early Hints` before the final answer (in one
/// packet or apart) are skipped, not taken as the answer; a 101 nobody asked for is a 502 and
/// does not tunnel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interim_answers_are_skipped_and_an_unasked_101_is_refused() {
    let respond: Responder = Arc::new(|r: &Received| {
        let final_ = ok_for(r);
        match r.path() {
            "/together" => vec![Step::Send(
                [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n".as_slice(), &final_].concat(),
            )],
            "/apart" => vec![
                Step::Send(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()),
                Step::Sleep(50),
                Step::Send(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n".to_vec()),
                Step::Sleep(50),
                Step::Send(final_),
            ],
            "/switch" => vec![
                Step::Send(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n".to_vec()),
            ],
            _ => vec![Step::Send(final_)],
        }
    });
    let (port, log) = raw_target(respond).await;
    let kit = kit_forwarding_to(port).await;
    for path in ["/together", "/apart"] {
        let got = exchange(
            kit.http_port,
            format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
        let a = answers(&got, &[]);
        assert_eq!(a.len(), 2, "{path}: {}", text(&got));
        assert_eq!(text(&a[0].body), format!("answer for {path}"));
        assert_eq!(text(&a[1].body), "answer for /next");
    }
    // A 101 to a request that asked for no upgrade; bytes after it are never tunnelled.
    let got = exchange_until_quiet(
        kit.http_port,
        format!("GET /switch HTTP/1.1\r\nHost: a\r\n\r\n{SMUGGLED}").as_bytes(),
    )
    .await;
    let a = answers(&got, &[]);
    assert_eq!(a.first().map(Answer::status), Some(502), "{}", text(&got));
    for r in log.lock().unwrap().iter() {
        assert!(r.head.contains("\r\nx-amzn-trace-id: "), "tunnelled: {r:?}");
    }
    kit.app.shutdown().await;
}

/// Fixed: a malformed chunked request body (the client's fault) is answered 504 after the
/// whole idle timeout (60 s by default), blamed on the target and counted against it. On a
/// decoding error `h1::server::client_side` hands the proxy an error frame;
/// `h1::client::exchange` fails (`later`) and `h1::client::send` then waits in `read_answer`
/// for an answer from a target that is still waiting for the rest of the body (or, when the
/// first chunk was the bad one, has not even been sent the head, which `exchange` holds back
/// until the first data). `upstream::Upstreams::send` times out with `TargetTimeout`, and
/// `forward::to_target` records the failure in the target's `outcomes`, which anomaly
/// mitigation reads: any client can make a healthy target look failing and hold a target
/// connection per request. Expected: 400 at once (ALB's answer to a malformed body), the
/// target connection dropped, nothing counted against the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_chunked_body_is_the_clients_400_not_the_targets_fault() {
    let (port, _log) = raw_target(plain_target()).await;
    // A short idle timeout keeps the test short; the default is 60 s.
    let kit = kit_forwarding_to_with(port, "idle_timeout_seconds = 2").await;
    for body in [
        "5\r\nhelloXX0\r\n\r\n",
        "10000000000000005\r\nhello\r\n0\r\n\r\n",
        "5\nhello\r\n0\r\n\r\n",
    ] {
        let got = exchange(
            kit.http_port,
            format!(
                "POST /open/bad HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{body}"
            )
            .as_bytes(),
        )
        .await;
        let status = answers(&got, &[]).first().map(Answer::status);
        assert_eq!(status, Some(400), "{body:?}: {}", text(&got));
    }
    kit.app.shutdown().await;
}

/// Fixed (low): an `Upgrade: websocket` on a method other than GET is forwarded with its
/// upgrade, and a 101 to it is tunnelled. RFC 6455 §4.1 allows only GET, and
/// `headers::upgrade_protocol` (which names RFC 6455 as the only protocol tunnelled) checks the
/// version and the headers but not the method. With a target that switches whenever it is
/// asked, the bytes after a POST's 101 reach it raw, past every rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_get_is_upgraded() {
    // Switches to whatever it is asked for; the bytes after that are read as requests, so a
    // tunnelled one shows up as a head the balancer did not write.
    let respond: Responder = Arc::new(|r: &Received| {
        if let [proto] = values(&r.head, "upgrade").as_slice() {
            vec![Step::Send(
                format!("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: {proto}\r\n\r\n")
                    .into_bytes(),
            )]
        } else {
            vec![Step::Send(ok_for(r))]
        }
    });
    let (port, log) = raw_target(respond).await;
    let kit = kit_forwarding_to(port).await;
    let mut s = TcpStream::connect(("127.0.0.1", kit.http_port))
        .await
        .unwrap();
    s.write_all(b"POST /open/up HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 5\r\n\r\nhello")
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).await.unwrap_or(0) == 1 {
        head.push(b[0]);
    }
    s.write_all(SMUGGLED.as_bytes()).await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut [0u8; 1024])).await;
    let log = log.lock().unwrap().clone();
    for r in &log {
        assert!(
            r.head.contains("\r\nx-amzn-trace-id: "),
            "tunnelled past the rules: {r:?}"
        );
    }
    for r in &log {
        assert!(
            values(&r.head, "upgrade").is_empty(),
            "the upgrade was forwarded: {r:?}"
        );
    }
    assert!(
        !text(&head).starts_with("HTTP/1.1 101"),
        "a POST was switched: {}",
        text(&head)
    );
    kit.app.shutdown().await;
}

/// Slowloris on the head: a client that sends its head a byte at a time, forever, is closed
/// once the idle timeout has passed since the head began (not since its last byte).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_sent_a_byte_at_a_time_is_cut_at_the_idle_timeout() {
    let kit = Kit::builder().lb("idle_timeout_seconds = 1").start().await;
    let mut s = TcpStream::connect(("127.0.0.1", kit.http_port))
        .await
        .unwrap();
    s.write_all(b"GET /open/slow HTTP/1.1\r\nHost: a\r\n")
        .await
        .unwrap();
    let (mut r, mut w) = s.into_split();
    let trickle = tokio::spawn(async move {
        // 30 s of one header byte every 100 ms, if nothing stops it.
        for _ in 0..300 {
            if w.write_all(b"x").await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    });
    let mut out = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(20), r.read_to_end(&mut out)).await;
    assert!(
        closed.is_ok(),
        "the connection is still open after 20 s of trickling"
    );
    assert!(!text(&out).contains(" 200 "), "{}", text(&out));
    trickle.abort();
    kit.app.shutdown().await;
}

/// Header floods: up to 1,024 fields are read; more get 431 and the connection closes; the
/// balancer goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_floods_are_refused_and_the_balancer_goes_on() {
    let (port, log) = raw_target(plain_target()).await;
    let kit = kit_forwarding_to(port).await;
    let many = |n: usize| {
        (0..n)
            .map(|i| format!("x-{i}: {i}\r\n"))
            .collect::<String>()
    };
    let got = exchange(
        kit.http_port,
        format!(
            "GET /open/many HTTP/1.1\r\nHost: a\r\n{}Connection: close\r\n\r\n",
            many(1000)
        )
        .as_bytes(),
    )
    .await;
    assert!(
        text(&got).starts_with("HTTP/1.1 200 "),
        "{}",
        &text(&got)[..60.min(got.len())]
    );
    assert_eq!(values(&log.lock().unwrap()[0].head, "x-999"), ["999"]);
    let got = exchange(
        kit.http_port,
        format!(
            "GET /open/too-many HTTP/1.1\r\nHost: a\r\n{}\r\n",
            many(5000)
        )
        .as_bytes(),
    )
    .await;
    assert!(
        text(&got).starts_with("HTTP/1.1 431 "),
        "{}",
        &text(&got)[..60.min(got.len())]
    );
    // 80 KB of one header line: refused, and a head that never ends is cut too.
    let got = exchange_until_quiet(
        kit.http_port,
        format!(
            "GET /open/long HTTP/1.1\r\nHost: a\r\nx-long: {}\r\n\r\n",
            "a".repeat(80 * 1024)
        )
        .as_bytes(),
    )
    .await;
    assert!(
        text(&got).starts_with("HTTP/1.1 4"),
        "{}",
        &text(&got)[..60.min(got.len())]
    );
    let got = exchange(kit.http_port, "a".repeat(200 * 1024).as_bytes()).await;
    assert!(
        text(&got).starts_with("HTTP/1.1 4"),
        "{}",
        &text(&got)[..60.min(got.len())]
    );
    let got = exchange(
        kit.http_port,
        b"GET /open/after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        text(&got).ends_with("answer for /open/after"),
        "{}",
        text(&got)
    );
    kit.app.shutdown().await;
}

/// Many tiny chunks (and chunk extensions on each) reach the target as the same body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_small_chunks_arrive_whole() {
    let (port, log) = raw_target(plain_target()).await;
    let kit = kit_forwarding_to(port).await;
    let mut body = Vec::new();
    let mut want = Vec::new();
    for i in 0..20_000u32 {
        let c = b'a' + (i % 26) as u8;
        want.push(c);
        body.extend_from_slice(b"1;ext=v\r\n");
        body.push(c);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let mut request =
        b"POST /open/tiny HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    request.extend_from_slice(&body);
    let got = exchange(kit.http_port, &request).await;
    assert!(
        text(&got).ends_with("answer for /open/tiny"),
        "{}",
        text(&got)
    );
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].error, None);
    assert!(log[0].body == want, "the body changed on the way");
    kit.app.shutdown().await;
}

/// TLS to the balancer's HTTPS listener, any certificate accepted.
async fn tls_to(port: u16) -> tokio_rustls::client::TlsStream<TcpStream> {
    #[derive(Debug)]
    struct AnyCert(Arc<rustls::crypto::CryptoProvider>);
    impl rustls::client::danger::ServerCertVerifier for AnyCert {
        fn verify_server_cert(
            &self,
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &[rustls::pki_types::CertificateDer<'_>],
            _: &rustls::pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &rustls::pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &rustls::pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap()
}

/// Pipelining across authenticate rules (HTTPS listener): requests hidden in a body, sent
/// after a public one, or after an `Expect`, are each routed and authenticated on their own;
/// the target never gets a request for a protected path from a client without a session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelining_never_carries_a_request_past_an_authenticate_rule() {
    let (port, log) = raw_target(plain_target()).await;
    let kit = Kit::builder().start().await;
    // Every forward of the HTTPS listener goes to the raw target.
    kit.reload_replacing(
        &format!("port = {} }}]", kit.backend.port()),
        &format!("port = {port} }}]"),
    )
    .await;
    let hidden = "GET /api/secret HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let pipelined = format!(
        "GET /open/a HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{hidden}\
         POST /api/b HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n{:x}\r\n{hidden}\r\n0\r\n\r\n\
         GET /open/c HTTP/1.1\r\nHost: localhost\r\n\r\n\
         GET /tasks/d HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{hidden}\
         GET /open/e HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        hidden.len(),
        hidden.len(),
        hidden.len(),
    );
    let mut s = tls_to(kit.lb_port).await;
    s.write_all(pipelined.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    let statuses: Vec<u16> = answers(&out, &[]).iter().map(Answer::status).collect();
    let log: Vec<Received> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| !r.head.contains("user-agent: elb-healthchecker"))
        .cloned()
        .collect();
    let paths: Vec<&str> = log.iter().map(Received::path).collect();
    for r in &log {
        assert_eq!(r.error, None, "{r:?}");
        assert!(
            r.path().starts_with("/open/"),
            "a protected request reached the target: {r:?}\nanswers: {statuses:?}"
        );
    }
    assert_eq!(paths.first(), Some(&"/open/a"), "{paths:?} {statuses:?}");
    assert_eq!(statuses.first(), Some(&200), "{}", text(&out));
    // The POST to /api/b is refused (401, the connection closes as its body was not read);
    // nothing after it is served on this connection.
    assert_eq!(statuses.get(1), Some(&401), "{}", text(&out));
    kit.app.shutdown().await;
}
