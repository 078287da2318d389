//! Listeners: accept TCP, complete TLS (with SNI and ALPN), and serve HTTP/1.1 with the
//! balancer's own codec (`h1::server`) and HTTP/2 through hyper, until shutdown; then drain in-flight requests. A connection is closed gracefully
//! (`Connection: close` after the request in progress, or HTTP/2 GOAWAY) when it has lived
//! `client_keep_alive`, or at shutdown.
//!
//! The request future (about 3.6 KB) is boxed per request: hyper keeps a slot of its size for
//! every connection, busy or idle, so unboxed it would cost each idle connection that much. Rare
//! or heavy phases (login, logout, authentication, JWT checks, Lambda, HTTP/2 connects) are boxed
//! where they are awaited, so that they do not grow every request's future.

use crate::connection::{ConnInfo, TlsInfo};
use crate::proxy;
use crate::shared::Shared;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// How long a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for in-flight requests.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Request heads the parsers take (HTTP/1 read buffer, HTTP/2 header list): ALB's limits
/// (16 KB line and header, 64 KB in all) are checked after, so that they answer as ALB does.
const MAX_HEAD: usize = 80 * 1024;

static CONN_IDS: AtomicU64 = AtomicU64::new(1);

fn builder(http2: bool, idle: Duration) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(idle)
        .max_buf_size(MAX_HEAD);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(128)
        .max_header_list_size(MAX_HEAD as u32);
    if !http2 {
        b = b.http1_only();
    }
    b
}

/// Serves one connection to its end: the request path as the service, a graceful close at
/// shutdown and, for HTTP/2 (GOAWAY; open streams finish), once it has lived `keep_alive` or
/// served ALB's 10,000 requests. HTTP/1
/// connections past it close with their next answer instead (`Connection: close`, set by the
/// proxy), so no request is cut. A request the parser refuses is logged. (A macro: the plain and
/// TLS connection types differ.)
macro_rules! serve_connection {
    ($builder:expr, $io:expr, $shared:expr, $info:expr, $shutdown:expr, $keep_alive:expr, $h2:expr) => {{
        let (shared, info) = ($shared, $info);
        let svc = {
            let (shared, info) = (shared.clone(), info.clone());
            service_fn(move |req: http::Request<hyper::body::Incoming>| {
                Box::pin(proxy::handle(
                    shared.clone(),
                    info.clone(),
                    req.map(crate::body::RequestBody::Hyper),
                ))
            })
        };
        let conn = $builder.serve_connection_with_upgrades(TokioIo::new($io), svc);
        tokio::pin!(conn);
        let mut shutdown = $shutdown;
        let expiry = tokio::time::sleep($keep_alive);
        tokio::pin!(expiry);
        let mut closing = *shutdown.borrow();
        if closing {
            conn.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        proxy::log_refused_by_hyper(&shared, &info, &*e);
                    }
                    break;
                }
                _ = &mut expiry, if $h2 && !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = info.goaway.notified(), if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = shutdown.changed(), if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }};
}

/// Serves one listener until `shutdown` turns true.
pub async fn run(
    tcp: TcpListener,
    index: usize,
    port: u16,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Every connection task holds a sender; when all are gone, the listener has drained.
    let (drained_tx, mut drained) = tokio::sync::mpsc::channel::<()>(1);
    let keep_alive = shared.client_keep_alive;
    let builder = Arc::new(builder(tls.is_some() && shared.http2, shared.idle_timeout));
    loop {
        let (stream, peer) = tokio::select! {
            r = tcp.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let id = CONN_IDS.fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        let builder = builder.clone();
        let tls = tls.clone();
        let (drained_tx, closing) = (drained_tx.clone(), shutdown.clone());
        let close_after = std::time::Instant::now() + keep_alive;
        let task = async move {
            let _drained = drained_tx;
            let _open = shared.metrics.clone().map(OpenConnection::new);
            let info = |tls: Option<TlsInfo>| {
                Arc::new(ConnInfo {
                    id,
                    listener: index,
                    port,
                    peer,
                    tls,
                    close_after,
                    requests: std::sync::atomic::AtomicU32::new(0),
                    goaway: tokio::sync::Notify::new(),
                    forwarded_for: Default::default(),
                })
            };
            match tls {
                None => {
                    crate::h1::server::serve(stream, shared, info(None), closing).await;
                }
                // Boxed: the handshake and hyper's HTTP/2 connection are large, and an unboxed
                // branch would size every plain connection's task too.
                Some(acceptor) => {
                    Box::pin(async move {
                        let Ok(Ok(tls_stream)) =
                            tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                        else {
                            tracing::debug!(%peer, "TLS handshake failed");
                            return;
                        };
                        let (_, c) = tls_stream.get_ref();
                        let h2 = c.alpn_protocol() == Some(b"h2");
                        let info = info(Some(TlsInfo {
                            cipher: c
                                .negotiated_cipher_suite()
                                .map_or("-".into(), crate::tls::cipher_name),
                            protocol: c.protocol_version().map_or("-", crate::tls::protocol_name),
                            sni: c.server_name().map(str::to_owned),
                        }));
                        if h2 {
                            serve_connection!(
                                builder, tls_stream, shared, info, closing, keep_alive, h2
                            );
                        } else {
                            crate::h1::server::serve(tls_stream, shared, info, closing).await;
                        }
                    })
                    .await
                }
            }
        };
        tokio::spawn(task);
    }
    drop(tcp);
    drop(drained_tx);
    if tokio::time::timeout(DRAIN_TIMEOUT, drained.recv())
        .await
        .is_err()
    {
        tracing::warn!(port, "connections still open after the drain timeout");
    }
}

/// Counts a client connection in the metrics while it is open.
struct OpenConnection(Arc<crate::metrics::Metrics>);

impl OpenConnection {
    fn new(m: Arc<crate::metrics::Metrics>) -> Self {
        m.new_connections.inc();
        m.active_connections.inc();
        OpenConnection(m)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.active_connections.dec();
    }
}
