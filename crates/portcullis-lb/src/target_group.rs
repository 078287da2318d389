//! Target groups: static targets chosen round robin, reached over pooled keep-alive connections,
//! with ALB's connect (10 s → 504) and idle (→ 504) timeouts and 502 for everything else.

use crate::error::{ErrorKind, ProxyError};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// ALB's fixed connect timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client every target group shares (one pool of keep-alive connections per target).
pub type UpstreamClient = Client<HttpConnector, Incoming>;

/// Builds the shared upstream client.
pub fn upstream_client() -> UpstreamClient {
    let mut c = HttpConnector::new();
    c.set_connect_timeout(Some(CONNECT_TIMEOUT));
    c.set_nodelay(true);
    c.set_keepalive(Some(Duration::from_secs(60)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(55))
        .pool_max_idle_per_host(1024)
        .build(c)
}

/// One target.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port` (IPv6 in brackets).
    pub authority: String,
}

/// A target group at run time.
pub struct TargetGroup {
    /// Config name.
    pub name: String,
    /// Its ARN, for the access log.
    pub arn: String,
    targets: Vec<Target>,
    next: AtomicUsize,
}

impl TargetGroup {
    /// From config (validated), with this load balancer's ARN prefix.
    pub fn new(cfg: &portcullis_config::TargetGroup, arn: String) -> TargetGroup {
        let targets = cfg
            .targets
            .iter()
            .map(|t| {
                let port = t.port.or(cfg.port).unwrap_or(80);
                let host = if t.id.contains(':') && !t.id.starts_with('[') {
                    format!("[{}]", t.id)
                } else {
                    t.id.clone()
                };
                Target {
                    authority: format!("{host}:{port}"),
                }
            })
            .collect();
        TargetGroup {
            name: cfg.name.clone(),
            arn,
            targets,
            next: AtomicUsize::new(0),
        }
    }

    /// The next target, round robin; `None` when the group is empty (503).
    pub fn pick(&self) -> Option<&Target> {
        if self.targets.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.targets.len();
        self.targets.get(i)
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

/// Sends a request to a target, waiting at most `idle_timeout` for the response head.
pub async fn send(
    client: &UpstreamClient,
    req: Request<Incoming>,
    idle_timeout: Duration,
) -> Result<Response<Incoming>, ProxyError> {
    match tokio::time::timeout(idle_timeout, client.request(req)).await {
        Err(_) => Err(ProxyError::upstream(ErrorKind::TargetTimeout)),
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(e)) if e.is_connect() => {
            let kind = if is_timeout(&e) {
                ErrorKind::ConnectTimeout
            } else {
                ErrorKind::ConnectFailed
            };
            Err(ProxyError::upstream(kind))
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "target failed");
            Err(ProxyError::upstream(ErrorKind::BadTargetResponse))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_and_ipv6() {
        let cfg: portcullis_config::TargetGroup = toml::from_str(
            "name = \"a\"\nport = 80\ntargets = [{ id = \"10.0.0.1\" }, { id = \"::1\", port = 81 }]",
        )
        .unwrap();
        let tg = TargetGroup::new(&cfg, "arn".into());
        let picks: Vec<String> = (0..4)
            .map(|_| tg.pick().unwrap().authority.clone())
            .collect();
        assert_eq!(
            picks,
            ["10.0.0.1:80", "[::1]:81", "10.0.0.1:80", "[::1]:81"]
        );
        let empty: portcullis_config::TargetGroup = toml::from_str("name = \"e\"").unwrap();
        assert!(TargetGroup::new(&empty, "arn".into()).pick().is_none());
    }
}
