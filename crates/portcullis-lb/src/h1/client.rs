//! HTTP/1.1 to targets: a keep-alive pool per target (a locked stack of idle connections, no
//! channels and no connection tasks), one `write` per request head, and response heads parsed
//! in place. A body that arrived with its head is handed out whole and its connection goes
//! back to the pool at once. A target's response body ([`UpstreamBody`]) is defined here, beside
//! the streaming body it wraps, and hyper's HTTP/2 bodies share it.

use super::{Decoded, Decoder, Framing};
use crate::body::{BoxError, RequestBody};
use crate::error::{ErrorKind, ProxyError};
use bytes::{Bytes, BytesMut};
use http::{Method, StatusCode, Version};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// ALB's fixed connect timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle connection to a target is kept.
pub const POOL_IDLE: Duration = Duration::from_secs(55);
/// The most idle connections kept per target.
pub const POOL_MAX_IDLE: usize = 1024;
/// The most bytes of a target's response head read (ALB's 32 KB limit is checked after).
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Bodies up to this size that arrived with the head are handed out whole.
const WHOLE_BODY: usize = 64 * 1024;

/// A connection to a target: plain TCP or TLS.
pub enum UpstreamIo {
    /// `http://` targets.
    Tcp(TcpStream),
    /// `https://` targets.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl UpstreamIo {
    /// Whether an idle connection can carry another request: the target has not closed it and
    /// sent nothing unasked. A TLS connection is asked first what rustls already holds: records
    /// it decrypted past the last answer (a stray response) or a `close_notify` leave the TCP
    /// socket quiet, yet the next request would read them. The event loop's readiness answers
    /// without a system call in the usual case (nothing happened on the connection since its
    /// last answer was read whole); only a connection with news is peeked at.
    fn is_reusable(&mut self) -> bool {
        let tcp = match self {
            UpstreamIo::Tcp(t) => &*t,
            UpstreamIo::Tls(t) => {
                let (tcp, tls) = t.get_mut();
                match tls.process_new_packets() {
                    Ok(s) if s.plaintext_bytes_to_read() == 0 && !s.peer_has_closed() => &*tcp,
                    _ => return false,
                }
            }
        };
        let mut cx = Context::from_waker(std::task::Waker::noop());
        if tcp.poll_read_ready(&mut cx).is_pending() {
            return true;
        }
        let mut probe = [0u8; 1];
        let mut rb = ReadBuf::new(&mut probe);
        matches!(tcp.poll_peek(&mut cx, &mut rb), Poll::Pending)
    }
}

impl AsyncRead for UpstreamIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Tcp(t) => Pin::new(t).poll_read(cx, buf),
            UpstreamIo::Tls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamIo::Tcp(t) => Pin::new(t).poll_write(cx, b),
            UpstreamIo::Tls(t) => Pin::new(t.as_mut()).poll_write(cx, b),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Tcp(t) => Pin::new(t).poll_flush(cx),
            UpstreamIo::Tls(t) => Pin::new(t.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Tcp(t) => Pin::new(t).poll_shutdown(cx),
            UpstreamIo::Tls(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
        }
    }
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// A connection to a target with its read buffer (kept with it in the pool, so that a request
/// reuses the allocation once the last answer's bytes are dropped).
pub struct Conn {
    io: UpstreamIo,
    buf: BytesMut,
}

impl Conn {
    fn new(io: UpstreamIo) -> Conn {
        Conn {
            io,
            buf: BytesMut::new(),
        }
    }

    /// The connection, for an upgrade.
    pub fn into_io(self) -> UpstreamIo {
        self.io
    }
}

/// The idle connections to one target.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<VecDeque<Idle>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pool({} idle)", self.idle())
    }
}

impl Pool {
    /// An idle connection that is still open, newest first.
    fn take(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        while idle.front().is_some_and(|c| now - c.since > POOL_IDLE) {
            idle.pop_front();
        }
        while let Some(mut c) = idle.pop_back() {
            if c.conn.io.is_reusable() {
                return Some(c.conn);
            }
        }
        None
    }

    fn put(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() >= POOL_MAX_IDLE {
            idle.pop_front();
        }
        idle.push_back(Idle {
            conn,
            since: Instant::now(),
        });
    }

    /// Idle connections held (for tests and metrics).
    pub fn idle(&self) -> usize {
        self.idle.lock().map_or(0, |i| i.len())
    }
}

/// Where a request goes.
pub struct Destination<'a> {
    /// `host:port`.
    pub authority: &'a str,
    /// `https://` target.
    pub tls: bool,
    /// Its pool.
    pub pool: &'a Arc<Pool>,
}

/// A connection for a request: from the pool, or new. A failure here means no byte of the
/// request left: the caller may try another target.
pub async fn checkout(dest: &Destination<'_>) -> Result<(Conn, bool), ProxyError> {
    if let Some(c) = dest.pool.take() {
        return Ok((c, true));
    }
    connect(dest).await.map(|io| (Conn::new(io), false))
}

async fn connect(dest: &Destination<'_>) -> Result<UpstreamIo, ProxyError> {
    let tls = dest.tls.then(crate::target_tls::http1);
    // Boxed: dialling is rare on a warm pool, and inline it would grow every request's future
    // (and the bytes copied when it moves) by its size.
    Box::pin(dial(dest.authority, tls.as_ref())).await
}

/// A connection to a target (`host:port`): TCP within ALB's connect timeout, without Nagle,
/// then TLS with `tls` for `https://` targets (its certificate is not validated, as at ALB).
pub async fn dial(
    authority: &str,
    tls: Option<&tokio_rustls::TlsConnector>,
) -> Result<UpstreamIo, ProxyError> {
    let failed = || ProxyError::upstream(ErrorKind::ConnectFailed);
    let timeout = || ProxyError::upstream(ErrorKind::ConnectTimeout);
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(authority))
        .await
        .map_err(|_| timeout())?
        .map_err(|_| failed())?;
    let _ = tcp.set_nodelay(true);
    let Some(tls) = tls else {
        return Ok(UpstreamIo::Tcp(tcp));
    };
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|_| failed())?;
    let tls = tokio::time::timeout(CONNECT_TIMEOUT, tls.connect(name, tcp))
        .await
        .map_err(|_| timeout())?
        .map_err(|_| failed())?;
    Ok(UpstreamIo::Tls(Box::new(tls)))
}

/// The request head, written once: `parts` must already carry the headers the target gets.
fn encode_head(parts: &http::request::Parts, body: &RequestBody) -> (Vec<u8>, Framing) {
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = Vec::with_capacity(256 + parts.headers.len() * 48);
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(pq.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let length = super::content_length(&parts.headers);
    let framing = match (body.is_end_stream(), length, body.size_hint().exact()) {
        (true, _, _) => Framing::Empty,
        (false, Some(n), _) => Framing::Length(n),
        (false, None, Some(n)) => {
            out.extend_from_slice(b"content-length: ");
            super::write_u64(&mut out, n);
            out.extend_from_slice(b"\r\n");
            Framing::Length(n)
        }
        (false, None, None) => {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
            Framing::Chunked
        }
    };
    super::write_headers(&mut out, &parts.headers);
    out.extend_from_slice(b"\r\n");
    (out, framing)
}

/// A target's answer, with the connection for an upgrade (101).
pub struct Answer {
    /// Status, headers and body.
    pub response: http::Response<UpstreamBody>,
    /// The target's connection after a 101, and what it sent after the head.
    pub upgraded: Option<(UpstreamIo, Bytes)>,
}

/// Sends one request on `io` (from [`checkout`]) and reads the answer's head. A pooled
/// connection the target closed before answering a request without a body is retried once on
/// a new connection (the keep-alive race).
pub async fn send(
    dest: &Destination<'_>,
    conn: Conn,
    reused: bool,
    parts: http::request::Parts,
    mut body: RequestBody,
) -> Result<Answer, ProxyError> {
    let (head, framing) = encode_head(&parts, &body);
    let head_request = parts.method == Method::HEAD;
    let mut conn = conn;
    let mut reused = reused;
    super::batch_writes().await;
    // Asked again after the wait, right before the write: a target that closed the pooled
    // connection meanwhile would otherwise cost a request with a body its 502.
    if reused && !conn.io.is_reusable() {
        (conn, reused) = checkout(dest).await?;
    }
    loop {
        match exchange(&mut conn.io, &head, framing, &mut body).await {
            Ok(()) => {}
            Err(e) if reused && framing == Framing::Empty && e.nothing_read => {
                tracing::debug!(error = %e.error, "pooled connection closed; retrying on a new one");
                conn = Conn::new(connect(dest).await?);
                reused = false;
                continue;
            }
            Err(e) if e.client_body => {
                tracing::debug!(error = %e.error, "the client's body failed");
                return Err(ProxyError::downstream(ErrorKind::BadRequest));
            }
            Err(e) => {
                // A target may answer before it has read the whole body (413, 401) and close:
                // its answer stands.
                tracing::debug!(error = %e.error, "sending to the target failed; reading its answer");
                // The request was not sent whole: the connection is never reused.
                return read_answer(conn, dest.pool.clone(), head_request, false)
                    .await
                    .map_err(|_| ProxyError::upstream(ErrorKind::BadTargetResponse));
            }
        }
        match read_answer(conn, dest.pool.clone(), head_request, true).await {
            Ok(a) => return Ok(a),
            Err((e, nothing_read, io_back)) => {
                if reused && framing == Framing::Empty && nothing_read {
                    tracing::debug!(error = %e, "pooled connection closed; retrying on a new one");
                    drop(io_back);
                    conn = Conn::new(connect(dest).await?);
                    reused = false;
                    continue;
                }
                tracing::debug!(error = %e, "target failed");
                return Err(ProxyError::upstream(match e {
                    AnswerError::TooLarge => ErrorKind::ResponseHeadersTooLarge,
                    _ => ErrorKind::BadTargetResponse,
                }));
            }
        }
    }
}

struct WriteFailed {
    error: io::Error,
    nothing_read: bool,
    /// The client's body failed (malformed, cut): the client's error, not the target's.
    client_body: bool,
}

/// Writes the head and the body.
async fn exchange(
    io: &mut UpstreamIo,
    head: &[u8],
    framing: Framing,
    body: &mut RequestBody,
) -> Result<(), WriteFailed> {
    let first = |error| WriteFailed {
        error,
        nothing_read: true,
        client_body: false,
    };
    let later = |error| WriteFailed {
        error,
        nothing_read: false,
        client_body: false,
    };
    if framing == Framing::Empty {
        io.write_all(head).await.map_err(first)?;
        return io.flush().await.map_err(first);
    }
    let mut out = Vec::with_capacity(head.len() + 64);
    out.extend_from_slice(head);
    let mut pending = Some(out);
    let mut sent: u64 = 0;
    let mut body = Pin::new(body);
    loop {
        let frame = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await;
        let mut out = pending.take().unwrap_or_default();
        match frame {
            Some(Ok(f)) => match f.into_data() {
                Ok(data) => {
                    if data.is_empty() {
                        pending = Some(out);
                        continue;
                    }
                    sent += data.len() as u64;
                    if framing == Framing::Chunked {
                        super::write_chunk_size(&mut out, data.len());
                    }
                    if data.len() <= 16 * 1024 {
                        // Small pieces leave in one write with their framing.
                        out.extend_from_slice(&data);
                        if framing == Framing::Chunked {
                            out.extend_from_slice(b"\r\n");
                        }
                        io.write_all(&out).await.map_err(later)?;
                    } else {
                        if !out.is_empty() {
                            io.write_all(&out).await.map_err(later)?;
                        }
                        io.write_all(&data).await.map_err(later)?;
                        if framing == Framing::Chunked {
                            io.write_all(b"\r\n").await.map_err(later)?;
                        }
                    }
                }
                Err(f) => {
                    if let (Ok(mut t), Framing::Chunked) = (f.into_trailers(), framing) {
                        // Names the balancer owns never reach a target, in trailers either.
                        crate::headers::strip_oidc_headers(&mut t);
                        super::write_last_chunk(&mut out, Some(&t));
                        io.write_all(&out).await.map_err(later)?;
                        return io.flush().await.map_err(later);
                    }
                    pending = Some(out);
                }
            },
            Some(Err(e)) => {
                return Err(WriteFailed {
                    error: io::Error::other(e),
                    nothing_read: false,
                    client_body: true,
                });
            }
            None => {
                if framing == Framing::Chunked {
                    super::write_last_chunk(&mut out, None);
                }
                if let Framing::Length(n) = framing
                    && n != sent
                {
                    return Err(later(io::Error::other(
                        "request body shorter than its length",
                    )));
                }
                if !out.is_empty() {
                    io.write_all(&out).await.map_err(later)?;
                }
                return io.flush().await.map_err(later);
            }
        }
    }
}

/// Why an answer could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// The connection failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The target closed the connection before a whole head.
    #[error("the target closed the connection")]
    Closed,
    /// Not an HTTP/1.1 response.
    #[error("malformed response")]
    Malformed,
    /// A head over the limit.
    #[error("response head too large")]
    TooLarge,
}

type ReadFailure = (AnswerError, bool, Option<Conn>);

/// Reads the final response head (skipping 1xx other than 101) and sets up its body.
async fn read_answer(
    conn: Conn,
    pool: Arc<Pool>,
    head_request: bool,
    reusable: bool,
) -> Result<Answer, ReadFailure> {
    let Conn { mut io, mut buf } = conn;
    buf.clear();
    buf.reserve(super::buffers::SIZE);
    let mut any = false;
    loop {
        // Parse what is there first: a 100 Continue may have come with the final head.
        if !buf.is_empty() {
            match parse_response_head(&mut buf) {
                Ok(Some(response)) => {
                    return finish(io, buf, pool, response, head_request, reusable)
                        .map_err(|e| (e, false, None));
                }
                Ok(None) => {}
                Err(e) => return Err((e, false, None)),
            }
        }
        match super::fill(&mut io, &mut buf).await {
            Ok(0) => return Err((AnswerError::Closed, !any, Some(Conn { io, buf }))),
            Ok(_) => any = true,
            Err(e) => return Err((AnswerError::Io(e), !any, Some(Conn { io, buf }))),
        }
    }
}

/// Parses a target's final response head off the front of `buf` (1xx other than 101 are
/// skipped): `Ok(None)` while it is incomplete. Header values are slices of the bytes read.
/// Public for the fuzz target.
pub fn parse_response_head(
    buf: &mut BytesMut,
) -> Result<Option<http::Response<UpstreamBody>>, AnswerError> {
    match parse_response_with::<64>(buf) {
        Err(AnswerError::TooLarge) if buf.len() < MAX_RESPONSE_HEAD => {
            parse_response_with::<1024>(buf)
        }
        other => other,
    }
}

fn parse_response_with<const N: usize>(
    buf: &mut BytesMut,
) -> Result<Option<http::Response<UpstreamBody>>, AnswerError> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; N];
        let mut r = httparse::Response::new(&mut headers);
        let len = match r.parse(buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() >= MAX_RESPONSE_HEAD => {
                return Err(AnswerError::TooLarge);
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(AnswerError::TooLarge),
            Err(_) => return Err(AnswerError::Malformed),
        };
        let code = r.code.unwrap_or(0);
        if (100..200).contains(&code) && code != 101 {
            let _ = buf.split_to(len);
            if buf.is_empty() {
                return Ok(None);
            }
            continue;
        }
        let version = super::version(r.version);
        let at = super::spans(buf, r.headers);
        let (_, headers) =
            super::split_head(buf, len, &at, 0).map_err(|_| AnswerError::Malformed)?;
        let status = StatusCode::from_u16(code).map_err(|_| AnswerError::Malformed)?;
        let mut response = http::Response::new(UpstreamBody::Full(None));
        *response.status_mut() = status;
        *response.version_mut() = version;
        *response.headers_mut() = headers;
        return Ok(Some(response));
    }
}

fn finish(
    io: UpstreamIo,
    mut buf: BytesMut,
    pool: Arc<Pool>,
    mut response: http::Response<UpstreamBody>,
    head_request: bool,
    reusable: bool,
) -> Result<Answer, AnswerError> {
    let (status, version) = (response.status(), response.version());
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Ok(Answer {
            response,
            upgraded: Some((io, buf.freeze())),
        });
    }
    let bodiless =
        head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    // After an answer without a body, a target that sends one anyway would have it read as the
    // next request's answer: such a connection is not reused.
    let keep_alive = reusable
        && !bodiless
        && version == Version::HTTP_11
        && !crate::headers::has_token(response.headers(), &http::header::CONNECTION, "close");
    let framing = if bodiless {
        Framing::Empty
    } else {
        match super::framing(response.headers()).map_err(|_| AnswerError::Malformed)? {
            (Framing::Empty, _) => Framing::UntilClose,
            (f, ambiguous) => {
                if ambiguous {
                    // Chunked wins (RFC 9112 §6.3); the length must not reach the client.
                    response.headers_mut().remove(http::header::CONTENT_LENGTH);
                }
                f
            }
        }
    };
    let decoder = Decoder::new(framing);
    // The whole body is already here: hand it out and give the connection back.
    if let Some(n) = decoder.remaining()
        && n as usize <= buf.len()
        && n as usize <= WHOLE_BODY
    {
        let body = buf.split_to(n as usize).freeze();
        if keep_alive && buf.is_empty() {
            pool.put(Conn { io, buf });
        }
        *response.body_mut() = UpstreamBody::Full((!body.is_empty()).then_some(body));
        return Ok(Answer {
            response,
            upgraded: None,
        });
    }
    *response.body_mut() = UpstreamBody::Streaming(Box::new(Streaming {
        io: Some(io),
        buf,
        decoder,
        pool,
        keep_alive: keep_alive && framing != Framing::UntilClose,
    }));
    Ok(Answer {
        response,
        upgraded: None,
    })
}

/// A response body still arriving; its connection returns to the pool when it ends cleanly.
pub struct Streaming {
    io: Option<UpstreamIo>,
    buf: BytesMut,
    decoder: Decoder,
    pool: Arc<Pool>,
    keep_alive: bool,
}

impl Streaming {
    /// The next frame.
    pub fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Decoded::Data(b)) => {
                    if self.decoder.is_done() {
                        self.release();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(b))));
                }
                Ok(Decoded::Trailers(t)) => {
                    self.release();
                    return Poll::Ready(Some(Ok(Frame::trailers(t))));
                }
                Ok(Decoded::Done) => {
                    self.release();
                    return Poll::Ready(None);
                }
                Ok(Decoded::NeedMore) => {}
                Err(e) => {
                    self.io = None;
                    return Poll::Ready(Some(Err(Box::new(e))));
                }
            }
            let Some(io) = self.io.as_mut() else {
                return Poll::Ready(None);
            };
            match super::poll_fill(io, &mut self.buf, cx, super::READ_CHUNK) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => match self.decoder.eof() {
                    Ok(_) => {
                        self.io = None;
                        return Poll::Ready(None);
                    }
                    Err(e) => {
                        self.io = None;
                        return Poll::Ready(Some(Err(Box::new(e))));
                    }
                },
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    self.io = None;
                    return Poll::Ready(Some(Err(Box::new(e))));
                }
            }
        }
    }

    /// The body ended: a clean connection goes back to the pool.
    fn release(&mut self) {
        if let Some(io) = self.io.take()
            && self.keep_alive
            && self.buf.is_empty()
        {
            self.pool.put(Conn {
                io,
                buf: std::mem::take(&mut self.buf),
            });
        }
    }

    /// Whether the body has ended.
    pub fn is_end_stream(&self) -> bool {
        self.decoder.is_done()
    }

    /// The bytes left, when known.
    pub fn size_hint(&self) -> SizeHint {
        match self.decoder.remaining() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

/// A target's response body: an enum rather than a box, so a body read whole allocates nothing.
pub enum UpstreamBody {
    /// An HTTP/2 stream's body (hyper).
    Hyper(Incoming),
    /// An HTTP/1 body read whole with the head (its connection is back in the pool).
    Full(Option<Bytes>),
    /// An HTTP/1 body still arriving on its connection.
    Streaming(Box<Streaming>),
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            UpstreamBody::Hyper(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            UpstreamBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            UpstreamBody::Streaming(s) => s.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Hyper(b) => b.is_end_stream(),
            UpstreamBody::Full(b) => b.is_none(),
            UpstreamBody::Streaming(s) => s.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Hyper(b) => b.size_hint(),
            UpstreamBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            UpstreamBody::Streaming(s) => s.size_hint(),
        }
    }
}
