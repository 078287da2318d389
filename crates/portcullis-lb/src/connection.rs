//! What the balancer knows of one client connection, made by the listener and read by the
//! request path (forwarding headers, access log, connection limits).

use std::net::SocketAddr;

/// TLS details of a connection, for the access log.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    /// OpenSSL cipher name.
    pub cipher: String,
    /// `TLSv1.3`, `TLSv1.2`.
    pub protocol: &'static str,
    /// SNI.
    pub sni: Option<String>,
}

/// One client connection.
#[derive(Debug)]
pub struct ConnInfo {
    /// Counter, for `conn_trace_id`.
    pub id: u64,
    /// Index of the listener in the config.
    pub listener: usize,
    /// The port the client connected to.
    pub port: u16,
    /// The TCP peer.
    pub peer: SocketAddr,
    /// TLS details, on HTTPS listeners.
    pub tls: Option<TlsInfo>,
    /// When `client_keep_alive` runs out: HTTP/1 answers after it carry `Connection: close`.
    pub close_after: std::time::Instant,
    /// Requests served on this connection (HTTP/2 ends after ALB's 10,000).
    pub requests: std::sync::atomic::AtomicU32,
    /// Asks the connection to close gracefully (HTTP/2: GOAWAY).
    pub goaway: tokio::sync::Notify,
    /// The client's address as `X-Forwarded-For` lists it (without and with its port), made
    /// once per connection.
    pub forwarded_for: [std::sync::OnceLock<http::HeaderValue>; 2],
}

impl ConnInfo {
    /// The client as `X-Forwarded-For` names it: `ip`, or `ip:port` (`[v6]:port`).
    pub fn forwarded_for(&self, with_port: bool) -> &http::HeaderValue {
        self.forwarded_for[usize::from(with_port)].get_or_init(|| {
            let ip = self.peer.ip().to_canonical();
            let text = match (with_port, ip) {
                (false, ip) => ip.to_string(),
                (true, std::net::IpAddr::V6(v6)) => format!("[{v6}]:{}", self.peer.port()),
                (true, ip) => format!("{ip}:{}", self.peer.port()),
            };
            http::HeaderValue::from_str(&text).unwrap_or(http::HeaderValue::from_static("-"))
        })
    }
}
