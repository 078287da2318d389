//! HTTP/1.1 from clients: one loop per connection that reads a request head into a buffer it
//! takes only when bytes arrive, hands the request to the proxy, feeds the request body to it
//! while watching for the client leaving (ALB's 460), and writes the answer's head with its
//! first body bytes in one `write`.
//!
//! Framing follows RFC 9112 strictly, as ALB's `defensive` desync mode: conflicting lengths, a
//! `Transfer-Encoding` other than `chunked` and malformed header lines get 400 and close the
//! connection; `Transfer-Encoding` with `Content-Length` is read as chunked and the connection
//! is closed after the answer.

use super::{Decoded, Decoder, Framing, Transport};
use crate::body::{Body, BoxError, ChannelBody, RequestBody};
use crate::connection::ConnInfo;
use crate::proxy;
use crate::shared::Shared;
use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, EXPECT, TRANSFER_ENCODING};
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::{Body as _, Frame};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot, watch};

/// The most bytes a request head may take before it is refused (ALB's limits, 16 KB for the line
/// and for one header and 64 KB in all, are checked after, so that they answer as ALB does).
pub const MAX_HEAD: usize = 80 * 1024;
/// Headers parsed on the stack; more take a second parse on the heap, up to [`MAX_HEADER_COUNT`].
const STACK_HEADERS: usize = 64;
/// The most header fields a request may have (hyper's limit was 100; ALB counts bytes).
const MAX_HEADER_COUNT: usize = 1024;
/// Answers up to this size are written with their head in one `write`.
const COALESCE: usize = 64 * 1024;

/// A request head, parsed.
struct Head {
    parts: http::request::Parts,
    framing: Framing,
    /// `Transfer-Encoding` and `Content-Length` both: read as chunked, then close.
    ambiguous: bool,
    keep_alive: bool,
    expect_continue: bool,
    wants_trailers: bool,
}

enum Next {
    Request(Box<Head>),
    /// The client closed, was idle too long, or the balancer is shutting down.
    Closed,
    /// A head the balancer refuses, with its status.
    Refused(u16),
}

/// Serves HTTP/1.1 on one connection until it closes, it has been idle for the idle timeout, or
/// shutdown (an idle connection closes at once; a busy one after its answer).
pub async fn serve<T: Transport>(
    mut io: T,
    shared: Arc<Shared>,
    info: Arc<ConnInfo>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf = BytesMut::new();
    // One idle timer for the connection's life, moved forward for each request: moving a
    // registered timer later is an atomic store, where a `timeout` per request registered and
    // removed a timer under the driver's lock each time.
    let mut idle = std::pin::pin!(tokio::time::sleep(shared.idle_timeout));
    loop {
        if *shutdown.borrow() {
            return;
        }
        idle.as_mut()
            .reset(tokio::time::Instant::now() + shared.idle_timeout);
        let next = tokio::select! {
            n = read_head(&mut io, &mut buf, idle.as_mut()) => n,
            _ = shutdown.changed() => return,
        };
        let head = match next {
            Next::Request(h) => h,
            Next::Closed => return,
            Next::Refused(status) => {
                proxy::log_refused(&shared, &info, status);
                let page = crate::error::page(status).map(crate::body::full);
                let _ = write_response(&mut io, page, &Version::HTTP_11, false, false, true).await;
                let _ = io.shutdown().await;
                return;
            }
        };
        let head = *head;
        let version = head.parts.version;
        let head_request = head.parts.method == Method::HEAD;
        let (body, mut pump) = match head.framing {
            Framing::Empty | Framing::Length(0) | Framing::UntilClose => (RequestBody::Empty, None),
            f => {
                let (tx, rx) = mpsc::channel(2);
                let (want_tx, want_rx) = oneshot::channel();
                let length = match f {
                    Framing::Length(n) => Some(n),
                    _ => None,
                };
                (
                    RequestBody::H1(ChannelBody {
                        rx,
                        want: Some(want_tx),
                        length,
                    }),
                    Some(Pump {
                        tx,
                        want: Some(want_rx),
                        decoder: Decoder::new(f),
                        expect_continue: head.expect_continue,
                    }),
                )
            }
        };
        let mut handler = Box::pin(proxy::handle(
            shared.clone(),
            info.clone(),
            Request::from_parts(head.parts, body),
        ));
        let mut watching = true;
        let mut body_broken = false;
        let response = loop {
            tokio::select! {
                biased;
                r = &mut handler => break r,
                side = Box::pin(client_side(&mut io, &mut buf, &mut pump, shared.idle_timeout)), if pump.is_some() || watching => {
                    match side {
                        Side::Continue => {}
                        Side::BodyDone => pump = None,
                        Side::BodyBroken => {
                            pump = None;
                            body_broken = true;
                        }
                        Side::Pipelined => watching = false,
                        // The client left before its answer: dropping the request logs ALB's 460.
                        Side::ClientGone => return,
                    }
                }
            }
        };
        drop(handler);
        let Ok(response) = response;
        let close = !head.keep_alive
            || head.ambiguous
            || body_broken
            || pump.is_some()
            || *shutdown.borrow()
            || crate::headers::has_token(response.headers(), &CONNECTION, "close");
        drop(pump);
        // Boxed, as are the body pump and the splice: what a connection holds while it is idle
        // is the size of this loop's future, so only the idle wait is kept inline.
        match Box::pin(write_response(
            &mut io,
            response,
            &version,
            head_request,
            head.wants_trailers,
            close,
        ))
        .await
        {
            Ok(Written::Done) if !close => {}
            Ok(Written::Upgrade(target, leftover)) => {
                let client_leftover = buf.split().freeze();
                Box::pin(crate::upgrade::splice(
                    io,
                    client_leftover,
                    target,
                    leftover,
                ))
                .await;
                return;
            }
            _ => {
                let _ = io.shutdown().await;
                return;
            }
        }
    }
}

/// Reads the next request head before `deadline` (the connection's idle timer); an idle
/// connection holds no buffer while it waits.
async fn read_head<T: Transport>(
    io: &mut T,
    buf: &mut BytesMut,
    deadline: Pin<&mut tokio::time::Sleep>,
) -> Next {
    // How far `buf` has been searched for the head's end: each byte is looked at once, and the
    // head is parsed once, when it is whole (not again on every read of a slow one).
    let mut searched: usize = 0;
    let read = async {
        loop {
            let whole = head_ends(&buf[searched.saturating_sub(2)..]);
            searched = buf.len();
            if buf.is_empty() {
                if buf.capacity() > 0 {
                    super::buffers::give(std::mem::take(buf));
                }
                if std::future::poll_fn(|cx| io.poll_idle_ready(cx))
                    .await
                    .is_err()
                {
                    return Next::Closed;
                }
                *buf = super::buffers::take();
            } else if whole || buf.len() >= MAX_HEAD {
                match parse(buf) {
                    Ok(Some(head)) => return Next::Request(Box::new(head)),
                    Ok(None) if buf.len() >= MAX_HEAD => {
                        // The request line alone filled the buffer: 414; else the headers: 431.
                        return Next::Refused(if super::find_crlf(buf).is_none() {
                            414
                        } else {
                            431
                        });
                    }
                    Ok(None) => {}
                    Err(status) => return Next::Refused(status),
                }
            }
            // Room for the rest of a long head in few reads, never much past the limit.
            let want = buf
                .len()
                .max(1024)
                .min(MAX_HEAD.saturating_sub(buf.len()).max(1024));
            let got = std::future::poll_fn(|cx| match super::poll_fill(io, buf, cx, want) {
                // A wake-up without data: wait again without the buffer.
                std::task::Poll::Pending if buf.is_empty() => std::task::Poll::Ready(None),
                other => other.map(Some),
            })
            .await;
            match got {
                None => super::buffers::give(std::mem::take(buf)),
                Some(Ok(0)) | Some(Err(_)) => {
                    super::buffers::give(std::mem::take(buf));
                    return Next::Closed;
                }
                Some(Ok(_)) => {}
            }
        }
    };
    tokio::select! {
        biased;
        next = read => next,
        () = deadline => Next::Closed,
    }
}

/// Whether `b` holds the blank line that ends a head (`\r\n\r\n`, or bare `\n` as `httparse` allows).
fn head_ends(b: &[u8]) -> bool {
    b.windows(2).any(|w| w == b"\n\n") || b.windows(3).any(|w| w == b"\n\r\n")
}

/// Parses a client's request head off the front of `buf` as the connection loop does: its
/// parts and body framing, `Ok(None)` while incomplete, the status answered when refused.
/// Public for the fuzz target.
pub fn parse_request_head(
    buf: &mut BytesMut,
) -> Result<Option<(http::request::Parts, Framing)>, u16> {
    parse(buf).map(|h| h.map(|h| (h.parts, h.framing)))
}

/// Parses a complete head off the front of `buf`; `Ok(None)` while it is incomplete, the status
/// to answer when it is refused.
fn parse(buf: &mut BytesMut) -> Result<Option<Head>, u16> {
    match parse_with::<STACK_HEADERS>(buf) {
        Err(Refusal::TooManyHeaders) => {
            parse_with::<MAX_HEADER_COUNT>(buf).map_err(Refusal::status)
        }
        other => other.map_err(Refusal::status),
    }
}

enum Refusal {
    TooManyHeaders,
    Status(u16),
}

impl Refusal {
    fn status(self) -> u16 {
        match self {
            Refusal::TooManyHeaders => 431,
            Refusal::Status(s) => s,
        }
    }
}

fn parse_with<const N: usize>(buf: &mut BytesMut) -> Result<Option<Head>, Refusal> {
    let bad = Refusal::Status(400);
    let mut headers = [httparse::EMPTY_HEADER; N];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Refusal::TooManyHeaders),
        Err(_) => return Err(bad),
    };
    let base = buf.as_ptr() as usize;
    let offset = |s: &[u8]| s.as_ptr() as usize - base;
    let method = Method::from_bytes(req.method.unwrap_or("").as_bytes())
        .map_err(|_| Refusal::Status(400))?;
    let path = req.path.unwrap_or("");
    let path_at = (offset(path.as_bytes()), path.len());
    let version = super::version(req.version);
    let at = super::spans(buf, req.headers);
    // Room for what the balancer adds (forwarding, trace id, identity) without growing.
    let (head, mut map) = super::split_head(buf, len, &at, 8).map_err(|_| Refusal::Status(400))?;
    let uri = Uri::from_maybe_shared(head.slice(path_at.0..path_at.0 + path_at.1))
        .map_err(|_| Refusal::Status(400))?;
    let (framing, ambiguous) = super::framing(&map).map_err(|_| Refusal::Status(400))?;
    if framing == Framing::Chunked && version == Version::HTTP_10 {
        return Err(Refusal::Status(400));
    }
    if ambiguous {
        map.remove(CONTENT_LENGTH);
    } else if let Framing::Length(n) = framing
        && (map.get_all(CONTENT_LENGTH).iter().count() > 1
            || map
                .get(CONTENT_LENGTH)
                .is_some_and(|v| v.as_bytes().contains(&b',')))
    {
        // `5, 5` or two equal fields: the target gets one plain length.
        map.insert(CONTENT_LENGTH, HeaderValue::from(n));
    }
    let keep_alive = if version == Version::HTTP_10 {
        crate::headers::has_token(&map, &CONNECTION, "keep-alive")
    } else {
        !crate::headers::has_token(&map, &CONNECTION, "close")
    };
    let expect_continue = version == Version::HTTP_11
        && map
            .get(EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let wants_trailers = crate::headers::accepts_trailers(&map);
    let mut parts = Request::new(()).into_parts().0;
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = map;
    Ok(Some(Head {
        parts,
        framing,
        ambiguous,
        keep_alive,
        expect_continue,
        wants_trailers,
    }))
}

/// Reads a request body for the proxy, as it asks for it.
struct Pump {
    tx: mpsc::Sender<Result<Frame<Bytes>, BoxError>>,
    want: Option<oneshot::Receiver<()>>,
    decoder: Decoder,
    expect_continue: bool,
}

enum Side {
    Continue,
    BodyDone,
    /// The body could not be read whole (malformed, cut, or not wanted).
    BodyBroken,
    /// Bytes of a next request arrived: stop watching.
    Pipelined,
    ClientGone,
}

/// What the client side does while the proxy works: feed the request body, then watch for the
/// client closing.
async fn client_side<T: Transport>(
    io: &mut T,
    buf: &mut BytesMut,
    pump: &mut Option<Pump>,
    idle: Duration,
) -> Side {
    let Some(p) = pump else {
        if !buf.is_empty() {
            // The next request is already here: no more is read until this one is answered.
            return Side::Pipelined;
        }
        if std::future::poll_fn(|cx| io.poll_idle_ready(cx))
            .await
            .is_err()
        {
            return Side::ClientGone;
        }
        return match super::fill(io, buf).await {
            Ok(0) | Err(_) => Side::ClientGone,
            Ok(_) => Side::Pipelined,
        };
    };
    if let Some(want) = p.want.take() {
        if want.await.is_err() {
            return Side::BodyBroken;
        }
        if p.expect_continue
            && io
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .is_err()
        {
            return Side::ClientGone;
        }
        return Side::Continue;
    }
    let frame = match p.decoder.decode(buf) {
        Ok(Decoded::Data(b)) => Frame::data(b),
        Ok(Decoded::Trailers(t)) => Frame::trailers(t),
        Ok(Decoded::Done) => return Side::BodyDone,
        Ok(Decoded::NeedMore) => {
            return match tokio::time::timeout(idle, super::fill(io, buf)).await {
                Ok(Ok(n)) if n > 0 => Side::Continue,
                Ok(Ok(_)) | Ok(Err(_)) => {
                    let _ = p.tx.send(Err(Box::new(super::CodecError::Truncated))).await;
                    Side::ClientGone
                }
                Err(_) => {
                    let _ = p.tx.send(Err(Box::new(super::CodecError::Truncated))).await;
                    Side::BodyBroken
                }
            };
        }
        Err(e) => {
            let _ = p.tx.send(Err(Box::new(e))).await;
            return Side::BodyBroken;
        }
    };
    if p.tx.send(Ok(frame)).await.is_err() {
        return Side::BodyBroken;
    }
    if p.decoder.is_done() {
        Side::BodyDone
    } else {
        Side::Continue
    }
}

impl Written {
    /// `Close` when the connection must end after this answer.
    fn after(close: bool) -> Written {
        if close { Written::Close } else { Written::Done }
    }
}

/// What writing an answer left.
enum Written {
    /// The connection may carry another request.
    Done,
    /// The answer ended the connection (its body ran until close).
    Close,
    /// A 101: the target's connection to join to the client's, and what it sent after its head.
    Upgrade(super::client::UpstreamIo, Bytes),
}

/// Writes an answer: its head, then its body by length, chunked, or until close.
async fn write_response<T: Transport>(
    io: &mut T,
    response: Response<Body>,
    version: &Version,
    head_request: bool,
    wants_trailers: bool,
    mut close: bool,
) -> std::io::Result<Written> {
    let (mut parts, mut body) = response.into_parts();
    let status = parts.status;
    let h = &mut parts.headers;
    h.remove(TRANSFER_ENCODING);
    let upgrade = if status == StatusCode::SWITCHING_PROTOCOLS {
        parts
            .extensions
            .remove::<crate::upgrade::TargetSide>()
            .and_then(|t| t.take())
    } else {
        None
    };
    let no_body = head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let length = super::content_length(h).or(body.size_hint().exact());
    let framing = if no_body {
        Framing::Empty
    } else if let Some(n) = length {
        Framing::Length(n)
    } else if *version == Version::HTTP_11 {
        Framing::Chunked
    } else {
        close = true;
        Framing::UntilClose
    };
    let mut out = Vec::with_capacity(256 + h.len() * 40);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    match framing {
        Framing::Length(n) if !h.contains_key(CONTENT_LENGTH) => {
            out.extend_from_slice(b"content-length: ");
            super::write_u64(&mut out, n);
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        _ => {}
    }
    if !h.contains_key(DATE) {
        h.insert(DATE, super::date());
    }
    if upgrade.is_none() {
        if close {
            if !crate::headers::has_token(h, &CONNECTION, "close") {
                h.insert(CONNECTION, HeaderValue::from_static("close"));
            }
        } else if *version == Version::HTTP_10 {
            h.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
        }
    }
    super::write_headers(&mut out, h);
    out.extend_from_slice(b"\r\n");
    super::batch_writes().await;
    if let Some((target, leftover)) = upgrade {
        io.write_all(&out).await?;
        io.flush().await?;
        return Ok(Written::Upgrade(target, leftover));
    }
    if framing == Framing::Empty {
        io.write_all(&out).await?;
        io.flush().await?;
        return Ok(Written::after(close));
    }
    let mut sent: u64 = 0;
    let mut body = Pin::new(&mut body);
    loop {
        let frame = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await;
        match frame {
            Some(Ok(f)) => match f.into_data() {
                Ok(mut data) => {
                    if data.is_empty() {
                        continue;
                    }
                    if let Framing::Length(n) = framing
                        && sent + data.len() as u64 > n
                    {
                        // Never more than the length said: the rest would read as another
                        // answer. The connection closes after what fits.
                        data.truncate((n - sent) as usize);
                        close = true;
                        if data.is_empty() {
                            break;
                        }
                    }
                    sent += data.len() as u64;
                    if framing == Framing::Chunked {
                        super::write_chunk_size(&mut out, data.len());
                    }
                    if out.len() + data.len() <= COALESCE {
                        out.extend_from_slice(&data);
                    } else {
                        io.write_all(&out).await?;
                        out.clear();
                        io.write_all(&data).await?;
                    }
                    if framing == Framing::Chunked {
                        out.extend_from_slice(b"\r\n");
                    }
                    if body.is_end_stream() {
                        break;
                    }
                }
                Err(f) => {
                    if let (Ok(t), Framing::Chunked) = (f.into_trailers(), framing) {
                        super::write_last_chunk(&mut out, wants_trailers.then_some(&t));
                        io.write_all(&out).await?;
                        io.flush().await?;
                        return Ok(Written::after(close));
                    }
                }
            },
            Some(Err(e)) => {
                // A target that failed mid-body: what was sent stands, the connection closes.
                io.write_all(&out).await?;
                io.flush().await?;
                return Err(std::io::Error::other(e));
            }
            None => break,
        }
    }
    if framing == Framing::Chunked {
        super::write_last_chunk(&mut out, None);
    }
    io.write_all(&out).await?;
    io.flush().await?;
    if let Framing::Length(n) = framing
        && n != sent
    {
        return Err(std::io::Error::other("body shorter than its length"));
    }
    Ok(Written::after(close))
}
