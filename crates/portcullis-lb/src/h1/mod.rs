//! The balancer's own HTTP/1.1 codec, on `httparse`: the client side (`server`) and the target
//! side (`client`). It owns its buffers: a connection holds no read buffer while it waits for a
//! request, heads are parsed in place and their header values are slices of the bytes read, and
//! a head is written with one `write`. HTTP/2 (clients and targets) stays on hyper.
//!
//! This module holds what both sides share: the transports, body framing (length, chunked,
//! until close), the chunked decoder, and the writers of heads and chunks.

pub mod client;
pub mod server;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// How much a read asks for at a time.
pub const READ_CHUNK: usize = 8 * 1024;
/// The longest chunk-size line (size and extensions) accepted.
const MAX_CHUNK_LINE: usize = 4 * 1024;
/// The most trailer bytes accepted after a chunked body.
const MAX_TRAILERS: usize = 16 * 1024;

/// A connection the codec reads and writes: plain TCP or TLS over it.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Resolves when a read would make progress, without a buffer (an idle connection holds
    /// none).
    fn poll_idle_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

impl Transport for TcpStream {
    fn poll_idle_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_read_ready(cx)
    }
}

impl Transport for tokio_rustls::server::TlsStream<TcpStream> {
    fn poll_idle_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let (tcp, tls) = self.get_mut();
        // Records already decrypted (a pipelined request) are ready now; so is an error, which
        // the read then reports.
        match tls.process_new_packets() {
            Ok(state) if state.plaintext_bytes_to_read() == 0 && !state.peer_has_closed() => {
                tcp.poll_read_ready(cx)
            }
            _ => Poll::Ready(Ok(())),
        }
    }
}

/// Reads once into `buf`, with room for at least `want` more bytes: `Ok(0)` is the end of the
/// stream.
pub fn poll_fill<T: AsyncRead + Unpin + ?Sized>(
    io: &mut T,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
    want: usize,
) -> Poll<io::Result<usize>> {
    if buf.capacity() - buf.len() < want {
        buf.reserve(want);
    }
    tokio_util::io::poll_read_buf(Pin::new(io), cx, buf)
}

/// Reads once into `buf` (see [`poll_fill`]).
pub async fn fill<T: AsyncRead + Unpin + ?Sized>(
    io: &mut T,
    buf: &mut BytesMut,
) -> io::Result<usize> {
    std::future::poll_fn(|cx| poll_fill(io, buf, cx, 1024)).await
}

/// Waits until the other tasks ready in this scheduler tick have run, before a write to a peer
/// (to a target: before the request head, the pooled connection asked again after the wait
/// whether it is still open; to a client: before the answer's head).
///
/// The requests that arrive together then leave together: writes to the same target (and to the
/// same client machine) go out in a burst, so that the peer wakes once for several of them,
/// not once each. On a core shared with the target, each wake-up also preempted the balancer:
/// 0.63 wake-ups of the target per forwarded request before, 0.28–0.31 with this, nginx
/// 0.30–0.39 (bench/README.md, "Batched writes"). With nothing else ready it costs one
/// `epoll_wait` that does not block.
pub async fn batch_writes() {
    tokio::task::yield_now().await;
}

/// Read buffers kept per thread, so that a request does not allocate one: a connection takes a
/// buffer when bytes arrive and gives it back when it goes idle, once nothing refers to its
/// bytes any more.
pub mod buffers {
    use bytes::BytesMut;
    use std::cell::RefCell;

    /// The size of a buffer.
    pub const SIZE: usize = 8 * 1024;
    /// Buffers kept per thread.
    const KEEP: usize = 128;

    thread_local! {
        static FREE: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
    }

    /// A buffer, from the thread's free list or new.
    pub fn take() -> BytesMut {
        FREE.with(|f| f.borrow_mut().pop())
            .unwrap_or_else(|| BytesMut::with_capacity(SIZE))
    }

    /// Gives an empty buffer back, when its whole allocation can be reused.
    pub fn give(mut b: BytesMut) {
        if !b.is_empty() || b.capacity() > 4 * SIZE || !b.try_reclaim(SIZE) {
            return;
        }
        FREE.with(|f| {
            let mut f = f.borrow_mut();
            if f.len() < KEEP {
                f.push(b);
            }
        });
    }
}

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the connection closes (responses only).
    UntilClose,
}

/// Why a message could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The bytes are not HTTP/1.1 (or are ambiguous).
    #[error("malformed message")]
    Malformed,
    /// The connection ended inside a message.
    #[error("the connection ended inside a message")]
    Truncated,
}

/// What a body decoder produced from the buffer.
#[derive(Debug)]
pub enum Decoded {
    /// Body bytes.
    Data(Bytes),
    /// Trailers (after a chunked body).
    Trailers(HeaderMap),
    /// The body ended.
    Done,
    /// More bytes must be read first.
    NeedMore,
}

/// Decodes a body from a buffer the caller fills: lengths, chunks and trailers.
#[derive(Debug)]
pub struct Decoder {
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers,
    UntilClose,
    Done,
}

impl Decoder {
    /// A decoder for `framing`.
    pub fn new(framing: Framing) -> Decoder {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::UntilClose => State::UntilClose,
        };
        Decoder { state }
    }

    /// Whether the body has ended.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Bytes the body still has, when known.
    pub fn remaining(&self) -> Option<u64> {
        match self.state {
            State::Length(n) => Some(n),
            State::Done => Some(0),
            _ => None,
        }
    }

    /// The end of the stream: fine for a body delimited by it, a truncation otherwise.
    pub fn eof(&mut self) -> Result<Decoded, CodecError> {
        match self.state {
            State::UntilClose | State::Done => {
                self.state = State::Done;
                Ok(Decoded::Done)
            }
            _ => Err(CodecError::Truncated),
        }
    }

    /// Takes what it can from `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, CodecError> {
        loop {
            match self.state {
                State::Done => return Ok(Decoded::Done),
                State::UntilClose => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    return Ok(Decoded::Data(buf.split().freeze()));
                }
                State::Length(n) | State::ChunkData(n) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let take = (buf.len() as u64).min(n) as usize;
                    let left = n - take as u64;
                    self.state = match (self.state, left) {
                        (State::Length(_), 0) => State::Done,
                        (State::Length(_), l) => State::Length(l),
                        (_, 0) => State::ChunkEnd,
                        (_, l) => State::ChunkData(l),
                    };
                    return Ok(Decoded::Data(buf.split_to(take).freeze()));
                }
                State::ChunkEnd => {
                    if buf.len() < 2 {
                        return Ok(Decoded::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(CodecError::Malformed);
                    }
                    let _ = buf.split_to(2);
                    self.state = State::ChunkSize;
                }
                State::ChunkSize => {
                    let Some(end) = find_crlf(&buf[..buf.len().min(MAX_CHUNK_LINE)]) else {
                        if buf.len() >= MAX_CHUNK_LINE {
                            return Err(CodecError::Malformed);
                        }
                        return Ok(Decoded::NeedMore);
                    };
                    let size = chunk_size(&buf[..end])?;
                    let _ = buf.split_to(end + 2);
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::ChunkData(size)
                    };
                }
                State::Trailers => {
                    if buf.starts_with(b"\r\n") {
                        let _ = buf.split_to(2);
                        self.state = State::Done;
                        return Ok(Decoded::Done);
                    }
                    let mut headers = [httparse::EMPTY_HEADER; 64];
                    match httparse::parse_headers(buf, &mut headers) {
                        Ok(httparse::Status::Complete((len, parsed))) => {
                            let mut map = HeaderMap::new();
                            for h in parsed.iter() {
                                let (Ok(n), Ok(v)) = (
                                    HeaderName::from_bytes(h.name.as_bytes()),
                                    HeaderValue::from_bytes(h.value),
                                ) else {
                                    return Err(CodecError::Malformed);
                                };
                                map.append(n, v);
                            }
                            let _ = buf.split_to(len);
                            self.state = State::Done;
                            return Ok(Decoded::Trailers(map));
                        }
                        Ok(httparse::Status::Partial) if buf.len() < MAX_TRAILERS => {
                            return Ok(Decoded::NeedMore);
                        }
                        _ => return Err(CodecError::Malformed),
                    }
                }
            }
        }
    }
}

/// The position of the first `\r\n`.
pub fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

/// A chunk-size line: hex digits, optional whitespace, optional `;` extensions (ignored).
fn chunk_size(line: &[u8]) -> Result<u64, CodecError> {
    let digits = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    if digits == 0 || digits > 15 {
        return Err(CodecError::Malformed);
    }
    let rest = &line[digits..];
    let rest_ok = rest
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .is_none_or(|i| {
            rest[i] == b';'
                && rest[i..]
                    .iter()
                    .all(|&b| b == b'\t' || (b' '..0x7f).contains(&b))
        });
    if !rest_ok {
        return Err(CodecError::Malformed);
    }
    let mut n = 0u64;
    for &b in &line[..digits] {
        let d = (b as char).to_digit(16).ok_or(CodecError::Malformed)?;
        n = n * 16 + u64::from(d);
    }
    Ok(n)
}

/// Appends `name: value\r\n` for every header.
pub fn write_headers(out: &mut Vec<u8>, h: &HeaderMap) {
    for (n, v) in h {
        out.extend_from_slice(n.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends a decimal number.
pub fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends a chunk's size line.
pub fn write_chunk_size(out: &mut Vec<u8>, n: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = HEX[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
}

/// The last chunk, with trailers.
pub fn write_last_chunk(out: &mut Vec<u8>, trailers: Option<&HeaderMap>) {
    out.extend_from_slice(b"0\r\n");
    if let Some(t) = trailers {
        write_headers(out, t);
    }
    out.extend_from_slice(b"\r\n");
}

/// Where a parsed header's name and value sit in the buffer it was parsed from.
pub type Span = (usize, usize, usize, usize);

/// The spans of parsed headers in `buf` (taken while `httparse` borrows it, so that the head can
/// then be split off and frozen).
pub fn spans(buf: &[u8], parsed: &[httparse::Header<'_>]) -> Vec<Span> {
    let base = buf.as_ptr() as usize;
    parsed
        .iter()
        .map(|h| {
            (
                h.name.as_ptr() as usize - base,
                h.name.len(),
                h.value.as_ptr() as usize - base,
                h.value.len(),
            )
        })
        .collect()
}

/// The `Content-Length` the headers give, when it is one plain number (the encoders trust
/// what the balancer already checked or set).
pub fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(http::header::CONTENT_LENGTH).and_then(|v| {
        std::str::from_utf8(v.as_bytes())
            .ok()?
            .trim()
            .parse::<u64>()
            .ok()
    })
}

/// The HTTP version of a parsed head, from the minor version `httparse` read.
pub fn version(minor: Option<u8>) -> http::Version {
    if minor == Some(0) {
        http::Version::HTTP_10
    } else {
        http::Version::HTTP_11
    }
}

/// Splits the parsed head (its first `len` bytes, headers at `at`) off `buf`, with its header
/// map (see [`header_map`]).
pub fn split_head(
    buf: &mut BytesMut,
    len: usize,
    at: &[Span],
    extra: usize,
) -> Result<(Bytes, HeaderMap), CodecError> {
    let head = buf.split_to(len).freeze();
    let map = header_map(&head, at, extra)?;
    Ok((head, map))
}

/// A header map whose values are slices of `head` (no copy), with room for `extra` more.
pub fn header_map(head: &Bytes, at: &[Span], extra: usize) -> Result<HeaderMap, CodecError> {
    let mut map = HeaderMap::with_capacity(at.len() + extra);
    for &(n, nl, v, vl) in at {
        let name = HeaderName::from_bytes(&head[n..n + nl]).map_err(|_| CodecError::Malformed)?;
        let value = HeaderValue::from_maybe_shared(head.slice(v..v + vl))
            .map_err(|_| CodecError::Malformed)?;
        map.append(name, value);
    }
    Ok(map)
}

/// The body framing a message's headers give, under RFC 9112 §6.3, refusing what is ambiguous:
/// differing or invalid lengths, and a `Transfer-Encoding` other than `chunked`. Returns the
/// framing and whether both a length and chunked were given (the length is then ignored).
pub fn framing(h: &HeaderMap) -> Result<(Framing, bool), CodecError> {
    let mut length: Option<u64> = None;
    for v in h.get_all(http::header::CONTENT_LENGTH) {
        for part in v.as_bytes().split(|&b| b == b',') {
            let part = part.trim_ascii();
            if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
                return Err(CodecError::Malformed);
            }
            let n: u64 = std::str::from_utf8(part)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(CodecError::Malformed)?;
            if length.is_some_and(|l| l != n) {
                return Err(CodecError::Malformed);
            }
            length = Some(n);
        }
    }
    let mut codings = h
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
        .peekable();
    if codings.peek().is_none() {
        return Ok((length.map_or(Framing::Empty, Framing::Length), false));
    }
    // Only `chunked`, once: any other coding (or none last) leaves the length unknowable.
    let all: Vec<&[u8]> = codings.collect();
    if all.len() != 1 || !all[0].eq_ignore_ascii_case(b"chunked") {
        return Err(CodecError::Malformed);
    }
    Ok((Framing::Chunked, length.is_some()))
}

/// Today's `Date` header, formatted once a second.
pub fn date() -> HeaderValue {
    thread_local! {
        static DATE: std::cell::RefCell<(u64, HeaderValue)> =
            const { std::cell::RefCell::new((u64::MAX, HeaderValue::from_static(""))) };
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with(|d| {
        let mut d = d.borrow_mut();
        if d.0 != now {
            let text = time::OffsetDateTime::from_unix_timestamp(now as i64)
                .ok()
                .and_then(|t| {
                    t.format(time::macros::format_description!(
                        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
                    ))
                    .ok()
                })
                .unwrap_or_default();
            d.1 = HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static(""));
            d.0 = now;
        }
        d.1.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Connections ready in the same tick all reach their write before any of them writes, so
    /// the writes leave back to back (one wake-up of the peer for several requests).
    #[tokio::test(flavor = "current_thread")]
    async fn batched_writes_leave_after_every_ready_connection_has_prepared_its_own() {
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..3)
            .map(|i| {
                let log = log.clone();
                tokio::spawn(async move {
                    log.lock().unwrap().push(format!("prepare {i}"));
                    batch_writes().await;
                    log.lock().unwrap().push(format!("write {i}"));
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let log = log.lock().unwrap().clone();
        // Every connection prepares before any writes (tokio wakes the deferred tasks last
        // first, so the writes' order within the burst is not the arrival order).
        assert_eq!(log[..3], ["prepare 0", "prepare 1", "prepare 2"]);
        let mut writes = log[3..].to_vec();
        writes.sort();
        assert_eq!(writes, ["write 0", "write 1", "write 2"]);
    }

    fn decode_all(
        framing: Framing,
        input: &[u8],
    ) -> Result<(Vec<u8>, Option<HeaderMap>), CodecError> {
        let mut d = Decoder::new(framing);
        let mut buf = BytesMut::from(input);
        let (mut out, mut trailers) = (Vec::new(), None);
        loop {
            match d.decode(&mut buf)? {
                Decoded::Data(b) => out.extend_from_slice(&b),
                Decoded::Trailers(t) => trailers = Some(t),
                Decoded::Done => return Ok((out, trailers)),
                Decoded::NeedMore => {
                    d.eof()?;
                    return Ok((out, trailers));
                }
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_with_extensions_and_trailers() {
        let (body, t) = decode_all(
            Framing::Chunked,
            b"3;ext=1\r\nabc\r\nA \r\n0123456789\r\n0\r\nx-t: 1\r\n\r\n",
        )
        .unwrap();
        assert_eq!(body, b"abc0123456789");
        assert_eq!(t.unwrap()["x-t"], "1");
        assert_eq!(decode_all(Framing::Chunked, b"0\r\n\r\n").unwrap().0, b"");
    }

    #[test]
    fn malformed_chunks_are_refused() {
        for bad in [
            &b"g\r\n"[..],
            b"3\r\nabcX\r\n0\r\n\r\n",
            b"-1\r\n",
            b"1234567890123456\r\n",
            b"3 x\r\nabc\r\n",
        ] {
            assert!(decode_all(Framing::Chunked, bad).is_err(), "{bad:?}");
        }
        // Truncated inside a chunk.
        assert_eq!(
            decode_all(Framing::Chunked, b"5\r\nab").unwrap_err(),
            CodecError::Truncated
        );
    }

    #[test]
    fn lengths_and_codings_are_checked() {
        let h = |pairs: &[(&str, &str)]| {
            let mut m = HeaderMap::new();
            for (n, v) in pairs {
                m.append(
                    HeaderName::from_bytes(n.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            framing(&m)
        };
        assert_eq!(h(&[]).unwrap(), (Framing::Empty, false));
        assert_eq!(
            h(&[("content-length", "5")]).unwrap(),
            (Framing::Length(5), false)
        );
        assert_eq!(
            h(&[("content-length", "5, 5")]).unwrap(),
            (Framing::Length(5), false)
        );
        assert!(h(&[("content-length", "5"), ("content-length", "6")]).is_err());
        assert!(h(&[("content-length", "+5")]).is_err());
        assert!(h(&[("transfer-encoding", "chunked, identity")]).is_err());
        assert!(h(&[("transfer-encoding", "gzip, chunked")]).is_err());
        assert_eq!(
            h(&[("transfer-encoding", "Chunked"), ("content-length", "3")]).unwrap(),
            (Framing::Chunked, true)
        );
    }

    proptest! {
        /// Any body, cut into any chunks and fed in any pieces, decodes to itself.
        #[test]
        fn chunked_round_trip(body in proptest::collection::vec(any::<u8>(), 0..2000),
                              cut in 1usize..300, feed in 1usize..50) {
            let mut wire = Vec::new();
            for c in body.chunks(cut) {
                write_chunk_size(&mut wire, c.len());
                wire.extend_from_slice(c);
                wire.extend_from_slice(b"\r\n");
            }
            write_last_chunk(&mut wire, None);
            let mut d = Decoder::new(Framing::Chunked);
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            let mut pieces = wire.chunks(feed);
            loop {
                match d.decode(&mut buf).unwrap() {
                    Decoded::Data(b) => out.extend_from_slice(&b),
                    Decoded::Trailers(_) => {}
                    Decoded::Done => break,
                    Decoded::NeedMore => buf.extend_from_slice(pieces.next().unwrap()),
                }
            }
            prop_assert_eq!(out, body);
        }

        /// Arbitrary bytes never panic the decoder.
        #[test]
        fn decoder_never_panics(input in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_all(Framing::Chunked, &input);
        }
    }
}
