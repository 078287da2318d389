//! Connections to targets: HTTP/1.1 through the balancer's own pool (`h1::client`, one per
//! target), and one multiplexed HTTP/2 connection per target through hyper (prior knowledge on
//! plain TCP, ALPN `h2` on TLS), each reaching `http://` and `https://` targets. Target
//! certificates are not validated, as at ALB. ALB's connect (10 s → 504) and idle (→ 504)
//! timeouts apply, and 502 for everything else.
//!
//! A request is sent in two steps, [`Upstreams::connect`] then [`Upstreams::send`], so that a
//! target that refuses the connection (no byte of the request has left) can be swapped for
//! another.

use crate::body::{BoxError, RequestBody};
use crate::error::{ErrorKind, ProxyError};
use crate::h1::client::{self, Destination, UpstreamBody};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use portcullis_config::ProtocolVersion;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// A client's request body on its way to a target, as it streams in, except that trailers the
/// client sent under a name the balancer owns (`x-amzn-oidc-*` and the rest of
/// [`crate::headers::is_owned`]) are dropped: the header block loses them before any rule runs,
/// and HTTP/2 targets (gRPC among them) would otherwise read the same names from the trailers.
pub struct ClientBody {
    inner: RequestBody,
}

impl ClientBody {
    /// Wraps a client's body.
    pub fn new(inner: RequestBody) -> ClientBody {
        ClientBody { inner }
    }
}

impl hyper::body::Body for ClientBody {
    type Data = Bytes;
    type Error = crate::body::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, crate::body::BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(match frame.into_trailers() {
                Ok(mut trailers) => {
                    crate::headers::strip_oidc_headers(&mut trailers);
                    Frame::trailers(trailers)
                }
                Err(frame) => frame,
            }))),
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// TCP, then TLS for `https://` targets (health checks and Lambda).
pub type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// How the balancer reaches targets: the HTTP/1.1 pools (one per target, in its [`Destination`]) and
/// HTTP/2 connections made by hand (one per target, multiplexed) so that `:authority` can be
/// the client's host while the connection goes to the target's address.
#[derive(Default)]
pub struct Upstreams {
    http2: Http2Targets,
}

/// A connection ready for one request.
pub enum Connection {
    /// HTTP/1.1, and whether it came from the pool.
    Http1(client::Conn, bool),
    /// A stream on the target's HTTP/2 connection.
    Http2(Http2Sender),
}

/// A target's answer, and its connection when it switched protocols (101).
pub type Answer = (Response<UpstreamBody>, Option<crate::upgrade::TargetSide>);

impl Upstreams {
    /// No HTTP/2 connections yet.
    pub fn new() -> Upstreams {
        Upstreams::default()
    }

    /// A connection to `dest`; an error here means no byte of the request has left.
    pub async fn connect(
        &self,
        version: ProtocolVersion,
        dest: &Destination<'_>,
    ) -> Result<Connection, ProxyError> {
        match version {
            ProtocolVersion::HTTP1 => {
                let (io, reused) = client::checkout(dest).await?;
                Ok(Connection::Http1(io, reused))
            }
            // Boxed: its connect path is large and would grow every request's future.
            ProtocolVersion::HTTP2 | ProtocolVersion::GRPC => Ok(Connection::Http2(
                Box::pin(self.http2.sender(dest.authority, dest.tls)).await?,
            )),
        }
    }

    /// Sends a request on `conn`, waiting at most `idle_timeout` for the response head, and no
    /// longer than the target's deregistration `cutoff`. HTTP/1 requests carry the target in
    /// their URI; HTTP/2 ones carry the client's authority there.
    pub async fn send(
        &self,
        conn: Connection,
        dest: &Destination<'_>,
        cutoff: &Cutoff,
        req: Request<ClientBody>,
        idle_timeout: Duration,
    ) -> Result<Answer, ProxyError> {
        let sent = async {
            match conn {
                Connection::Http1(io, reused) => {
                    let (parts, body) = req.into_parts();
                    let a = Box::pin(client::send(dest, io, reused, parts, body.inner)).await?;
                    Ok((
                        a.response,
                        a.upgraded
                            .map(|(io, rest)| crate::upgrade::TargetSide::new(io, rest)),
                    ))
                }
                // Boxed, as in `connect`: hyper's request future is large.
                Connection::Http2(mut sender) => {
                    Box::pin(async move {
                        if sender.ready().await.is_err() {
                            return Err(ProxyError::upstream(ErrorKind::BadTargetResponse));
                        }
                        let r = sender.send_request(req).await.map_err(|e| {
                            tracing::debug!(error = %e, "target failed");
                            ProxyError::upstream(ErrorKind::BadTargetResponse)
                        })?;
                        Ok((r.map(UpstreamBody::Hyper), None))
                    })
                    .await
                }
            }
        };
        tokio::select! {
            r = tokio::time::timeout(idle_timeout, sent) => {
                r.unwrap_or(Err(ProxyError::upstream(ErrorKind::TargetTimeout)))
            }
            () = cutoff.reached() => Err(ProxyError::upstream(ErrorKind::Deregistered)),
        }
    }
}

/// A handle for requests on a target's HTTP/2 connection.
pub type Http2Sender = hyper::client::conn::http2::SendRequest<ClientBody>;

/// HTTP/2 connections to targets, one per target and scheme, shared by every request to it.
struct Http2Targets {
    conns: std::sync::Mutex<std::collections::HashMap<(String, bool), Http2Sender>>,
    tls: tokio_rustls::TlsConnector,
}

impl Default for Http2Targets {
    fn default() -> Self {
        let mut cfg = crate::target_tls::config();
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        Http2Targets {
            conns: std::sync::Mutex::new(std::collections::HashMap::new()),
            tls: tokio_rustls::TlsConnector::from(Arc::new(cfg)),
        }
    }
}

impl Http2Targets {
    /// The target's shared HTTP/2 connection, made when there is none or it ended.
    async fn sender(&self, target: &str, tls: bool) -> Result<Http2Sender, ProxyError> {
        let key = (target.to_string(), tls);
        let cached = self
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .filter(|s| !s.is_closed())
            .cloned();
        match cached {
            Some(s) => Ok(s),
            None => {
                let s = self.connect(target, tls).await?;
                let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
                // Forget connections that have ended (a target that went away, a GOAWAY).
                conns.retain(|_, s| !s.is_closed());
                conns.insert(key, s.clone());
                Ok(s)
            }
        }
    }

    async fn connect(&self, target: &str, tls: bool) -> Result<Http2Sender, ProxyError> {
        let io = client::dial(target, tls.then_some(&self.tls)).await?;
        let mut builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
        builder.timer(hyper_util::rt::TokioTimer::new());
        let (sender, conn) = builder
            .handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|_| ProxyError::upstream(ErrorKind::ConnectFailed))?;
        tokio::spawn(conn);
        Ok(sender)
    }
}

/// A connector for `http://` and `https://` targets; `h2` offers only HTTP/2 by ALPN.
pub fn connector(h2: bool, keepalive: bool) -> Connector {
    let mut tcp = HttpConnector::new();
    tcp.set_connect_timeout(Some(client::CONNECT_TIMEOUT));
    tcp.set_nodelay(true);
    tcp.enforce_http(false);
    if keepalive {
        tcp.set_keepalive(Some(Duration::from_secs(60)));
    }
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(crate::target_tls::config())
        .https_or_http();
    if h2 {
        builder.enable_http2().wrap_connector(tcp)
    } else {
        builder.enable_http1().wrap_connector(tcp)
    }
}

/// Fires when a removed target's deregistration delay ends: requests it has not finished get 502.
#[derive(Debug)]
pub struct Cutoff(tokio::sync::watch::Sender<bool>);

impl Default for Cutoff {
    fn default() -> Self {
        Cutoff(tokio::sync::watch::channel(false).0)
    }
}

impl Cutoff {
    /// Ends the target's remaining requests.
    pub fn fire(&self) {
        self.0.send_replace(true);
    }

    /// Whether it has fired.
    pub fn fired(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves when it fires.
    pub async fn reached(&self) {
        let mut rx = self.0.subscribe();
        if rx.wait_for(|cut| *cut).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// A target's response body that stops with an error when the target's cutoff fires.
pub struct CutBody {
    inner: UpstreamBody,
    cut: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl CutBody {
    /// Wraps a target's body.
    pub fn new(inner: UpstreamBody, cutoff: Arc<Cutoff>) -> CutBody {
        CutBody {
            inner,
            cut: Box::pin(async move { cutoff.reached().await }),
        }
    }
}

/// The error a body gets when its target's deregistration delay ends.
#[derive(Debug, thiserror::Error)]
#[error("the target's deregistration delay ended")]
pub struct DeregistrationElapsed;

impl hyper::body::Body for CutBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.cut.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(DeregistrationElapsed))));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Reads at most `limit` bytes of a body (for Lambda and health checks).
pub async fn collect_limited<B>(
    body: B,
    limit: usize,
) -> Result<(Bytes, Option<http::HeaderMap>), ()>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let collected = http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .map_err(|_| ())?;
    let trailers = collected.trailers().cloned();
    Ok((collected.to_bytes(), trailers))
}

/// Whether a request is gRPC (HTTP/2 with an `application/grpc` content type).
pub fn is_grpc(version: http::Version, headers: &http::HeaderMap) -> bool {
    version == http::Version::HTTP_2
        && headers
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// ALB's table of which requests a group of each protocol version takes (else 464).
pub fn fits(group: ProtocolVersion, parts: &http::request::Parts) -> bool {
    let h2 = parts.version == http::Version::HTTP_2;
    let grpc = is_grpc(parts.version, &parts.headers);
    match group {
        ProtocolVersion::HTTP1 => !grpc,
        ProtocolVersion::HTTP2 => h2,
        ProtocolVersion::GRPC => grpc || (h2 && parts.method == http::Method::POST),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(version: http::Version, method: &str, ct: Option<&str>) -> http::request::Parts {
        let mut b = Request::builder().method(method).version(version).uri("/");
        if let Some(ct) = ct {
            b = b.header(http::header::CONTENT_TYPE, ct);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn protocol_version_table() {
        use ProtocolVersion::*;
        let h1 = parts(http::Version::HTTP_11, "GET", None);
        let h2 = parts(http::Version::HTTP_2, "GET", None);
        let h2_post = parts(http::Version::HTTP_2, "POST", Some("application/json"));
        let grpc = parts(
            http::Version::HTTP_2,
            "POST",
            Some("application/grpc+proto"),
        );
        // ALB: HTTP/1.1→HTTP1 ok, HTTP/2→HTTP1 ok, gRPC→HTTP1 error, HTTP/1.1→HTTP2 error,
        // HTTP/2→HTTP2 ok, gRPC→HTTP2 ok, HTTP/1.1→GRPC error, HTTP/2→GRPC POST only, gRPC→GRPC ok.
        assert!(fits(HTTP1, &h1) && fits(HTTP1, &h2) && !fits(HTTP1, &grpc));
        assert!(!fits(HTTP2, &h1) && fits(HTTP2, &h2) && fits(HTTP2, &grpc));
        assert!(!fits(GRPC, &h1) && !fits(GRPC, &h2) && fits(GRPC, &h2_post) && fits(GRPC, &grpc));
    }
}
