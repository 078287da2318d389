//! Connections to targets: a pooled HTTP/1.1 client, and one multiplexed HTTP/2 connection per
//! target (prior knowledge on plain TCP, ALPN `h2` on TLS), each reaching `http://` and
//! `https://` targets. Target certificates are not validated, as at ALB. ALB's connect (10 s →
//! 504) and idle (→ 504) timeouts apply, and 502 for everything else.

use crate::error::{ErrorKind, ProxyError};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use portcullis_config::ProtocolVersion;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
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
    inner: Incoming,
}

impl ClientBody {
    /// Wraps a client's body.
    pub fn new(inner: Incoming) -> ClientBody {
        ClientBody { inner }
    }
}

impl hyper::body::Body for ClientBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            std::task::Poll::Ready(Some(Ok(frame))) => {
                std::task::Poll::Ready(Some(Ok(match frame.into_trailers() {
                    Ok(mut trailers) => {
                        crate::headers::strip_oidc_headers(&mut trailers);
                        Frame::trailers(trailers)
                    }
                    Err(frame) => frame,
                })))
            }
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

/// ALB's fixed connect timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// TCP, then TLS for `https://` targets.
pub type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// A pooled client whose requests carry the client's body as it streams in.
pub type UpstreamClient = Client<Connector, ClientBody>;

/// How the balancer reaches targets: a pooled HTTP/1.1 client, and HTTP/2 connections made by
/// hand (one per target, multiplexed) so that `:authority` can be the client's host while the
/// connection goes to the target's address.
pub struct Upstreams {
    http1: UpstreamClient,
    http2: Http2Targets,
}

impl Default for Upstreams {
    fn default() -> Self {
        Self::new()
    }
}

impl Upstreams {
    /// The HTTP/1.1 pool and an empty set of HTTP/2 connections.
    pub fn new() -> Upstreams {
        Upstreams {
            http1: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(55))
                .pool_max_idle_per_host(1024)
                .build(connector(false, true)),
            http2: Http2Targets::default(),
        }
    }

    /// Sends a request to `target` (`host:port`), waiting at most `idle_timeout` for the response
    /// head, and no longer than the target's deregistration cutoff. HTTP/1 requests carry the
    /// target in their URI; HTTP/2 ones carry the client's authority there.
    pub async fn send(
        &self,
        version: ProtocolVersion,
        tls: bool,
        target: &str,
        req: Request<ClientBody>,
        idle_timeout: Duration,
        cutoff: &Cutoff,
    ) -> Result<Response<Incoming>, ProxyError> {
        let sent = async {
            match version {
                ProtocolVersion::HTTP1 => pooled(&self.http1, req).await,
                // Boxed: its connect path is large and would grow every request's future.
                ProtocolVersion::HTTP2 | ProtocolVersion::GRPC => {
                    Box::pin(self.http2.request(target, tls, req)).await
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

/// One HTTP/1.1 request through the pool, its errors mapped to ALB's.
async fn pooled(
    client: &UpstreamClient,
    req: Request<ClientBody>,
) -> Result<Response<Incoming>, ProxyError> {
    client.request(req).await.map_err(|e| {
        if e.is_connect() {
            ProxyError::upstream(if is_timeout(&e) {
                ErrorKind::ConnectTimeout
            } else {
                ErrorKind::ConnectFailed
            })
        } else {
            tracing::debug!(error = %e, "target failed");
            ProxyError::upstream(ErrorKind::BadTargetResponse)
        }
    })
}

type Http2Sender = hyper::client::conn::http2::SendRequest<ClientBody>;

/// HTTP/2 connections to targets, one per target and scheme, shared by every request to it.
struct Http2Targets {
    conns: std::sync::Mutex<std::collections::HashMap<(String, bool), Http2Sender>>,
    tls: tokio_rustls::TlsConnector,
}

impl Default for Http2Targets {
    fn default() -> Self {
        let mut cfg = target_tls();
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        Http2Targets {
            conns: std::sync::Mutex::new(std::collections::HashMap::new()),
            tls: tokio_rustls::TlsConnector::from(Arc::new(cfg)),
        }
    }
}

impl Http2Targets {
    async fn request(
        &self,
        target: &str,
        tls: bool,
        req: Request<ClientBody>,
    ) -> Result<Response<Incoming>, ProxyError> {
        let key = (target.to_string(), tls);
        let cached = self
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .filter(|s| !s.is_closed())
            .cloned();
        let mut sender = match cached {
            Some(s) => s,
            None => {
                let s = self.connect(target, tls).await?;
                let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
                // Forget connections that have ended (a target that went away, a GOAWAY).
                conns.retain(|_, s| !s.is_closed());
                conns.insert(key, s.clone());
                s
            }
        };
        if sender.ready().await.is_err() {
            return Err(ProxyError::upstream(ErrorKind::BadTargetResponse));
        }
        sender.send_request(req).await.map_err(|e| {
            tracing::debug!(error = %e, "target failed");
            ProxyError::upstream(ErrorKind::BadTargetResponse)
        })
    }

    async fn connect(&self, target: &str, tls: bool) -> Result<Http2Sender, ProxyError> {
        let failed = || ProxyError::upstream(ErrorKind::ConnectFailed);
        let tcp =
            match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(target))
                .await
            {
                Err(_) => return Err(ProxyError::upstream(ErrorKind::ConnectTimeout)),
                Ok(Err(_)) => return Err(failed()),
                Ok(Ok(t)) => t,
            };
        let _ = tcp.set_nodelay(true);
        let builder = {
            let mut b = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
            b.timer(hyper_util::rt::TokioTimer::new());
            b
        };
        let sender = if tls {
            let host = target
                .rsplit_once(':')
                .map_or(target, |(h, _)| h)
                .trim_start_matches('[')
                .trim_end_matches(']');
            let name = ServerName::try_from(host.to_string()).map_err(|_| failed())?;
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, self.tls.connect(name, tcp))
                .await
                .map_err(|_| ProxyError::upstream(ErrorKind::ConnectTimeout))?
                .map_err(|_| failed())?;
            let (sender, conn) = builder
                .handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|_| failed())?;
            tokio::spawn(conn);
            sender
        } else {
            let (sender, conn) = builder
                .handshake(hyper_util::rt::TokioIo::new(tcp))
                .await
                .map_err(|_| failed())?;
            tokio::spawn(conn);
            sender
        };
        Ok(sender)
    }
}

/// A connector for `http://` and `https://` targets; `h2` offers only HTTP/2 by ALPN.
pub fn connector(h2: bool, keepalive: bool) -> Connector {
    let mut tcp = HttpConnector::new();
    tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
    tcp.set_nodelay(true);
    tcp.enforce_http(false);
    if keepalive {
        tcp.set_keepalive(Some(Duration::from_secs(60)));
    }
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(target_tls())
        .https_or_http();
    if h2 {
        builder.enable_http2().wrap_connector(tcp)
    } else {
        builder.enable_http1().wrap_connector(tcp)
    }
}

/// TLS to targets: any certificate is accepted (ALB does not validate target certificates), but
/// the handshake's signatures are still checked against the certificate presented. Built once;
/// every client (requests, health checks, Lambda) takes a copy.
fn target_tls() -> rustls::ClientConfig {
    static CONFIG: std::sync::LazyLock<rustls::ClientConfig> = std::sync::LazyLock::new(|| {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = Arc::new(AnyTargetCertificate(provider.clone()));
        rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)
            .expect("aws-lc-rs offers TLS 1.2 and 1.3")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth()
    });
    CONFIG.clone()
}

/// Accepts whatever certificate a target presents, as ALB does.
#[derive(Debug)]
struct AnyTargetCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyTargetCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
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

fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// A target's response body that stops with an error when the target's cutoff fires.
pub struct CutBody {
    inner: Incoming,
    cut: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl CutBody {
    /// Wraps a target's body.
    pub fn new(inner: Incoming, cutoff: Arc<Cutoff>) -> CutBody {
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
    type Error = crate::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.cut.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(DeregistrationElapsed))));
        }
        Pin::new(&mut self.inner)
            .poll_frame(cx)
            .map_err(|e| Box::new(e) as crate::BoxError)
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
    B::Error: Into<crate::BoxError>,
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
