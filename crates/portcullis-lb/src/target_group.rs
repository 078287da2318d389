//! Target groups: static targets chosen round robin among the healthy ones (all of them when none
//! is healthy: ALB's fail-open), reached over pooled keep-alive connections, with ALB's connect
//! (10 s → 504) and idle (→ 504) timeouts and 502 for everything else. Each group checks its
//! targets in the background as ALB's health checks do.

use crate::error::{ErrorKind, ProxyError};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
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

/// A target's health, as ALB's `TargetHealth.State`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
    /// Registered, not yet checked (`Elb.InitialHealthChecking`).
    Initial,
    /// Passing.
    Healthy,
    /// Failing (`Target.FailedHealthChecks`, `Target.Timeout`, `Target.ResponseCodeMismatch`).
    Unhealthy,
    /// Checks are off (`Target.HealthCheckDisabled`): routed to like a healthy target.
    Unused,
}

/// A target's health record, kept across reloads while the target stays in its group.
#[derive(Debug)]
pub struct TargetHealth {
    state: std::sync::Mutex<(HealthState, u32, u32, &'static str)>,
}

impl TargetHealth {
    fn new(enabled: bool) -> TargetHealth {
        let s = if enabled {
            (HealthState::Initial, 0, 0, "Elb.InitialHealthChecking")
        } else {
            (HealthState::Unused, 0, 0, "Target.HealthCheckDisabled")
        };
        TargetHealth {
            state: std::sync::Mutex::new(s),
        }
    }

    /// The state and its reason code.
    pub fn state(&self) -> (HealthState, &'static str) {
        let g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (g.0, g.3)
    }

    /// Counts one check; returns the new state when it changed.
    fn record(
        &self,
        pass: bool,
        why: &'static str,
        hc: &portcullis_config::HealthCheck,
    ) -> Option<HealthState> {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (state, ok_run, fail_run, _) = *g;
        let (ok_run, fail_run) = if pass {
            (ok_run + 1, 0)
        } else {
            (0, fail_run + 1)
        };
        let next = match state {
            // One pass makes a new target healthy, as at ALB.
            HealthState::Initial if pass => HealthState::Healthy,
            HealthState::Initial if fail_run >= hc.unhealthy_threshold_count => {
                HealthState::Unhealthy
            }
            HealthState::Healthy if fail_run >= hc.unhealthy_threshold_count => {
                HealthState::Unhealthy
            }
            HealthState::Unhealthy if ok_run >= hc.healthy_threshold_count => HealthState::Healthy,
            s => s,
        };
        let reason = match next {
            HealthState::Healthy => "",
            HealthState::Unhealthy if fail_run > 0 => why,
            _ => g.3,
        };
        *g = (next, ok_run, fail_run, reason);
        (next != state).then_some(next)
    }
}

/// One target.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port` (IPv6 in brackets).
    pub authority: String,
    /// Its health record.
    pub health: Arc<TargetHealth>,
    /// Requests sent and not yet answered (for `least_outstanding_requests`).
    pub outstanding: Arc<AtomicUsize>,
}

/// Counts a request as outstanding on its target until dropped (when the response head arrives).
pub struct Outstanding(Arc<AtomicUsize>);

impl Drop for Outstanding {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Target {
    /// Marks a request as sent to this target.
    pub fn begin(&self) -> Outstanding {
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        Outstanding(self.outstanding.clone())
    }
}

/// `load_balancing.algorithm.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// In turn.
    RoundRobin,
    /// The target with the fewest requests in flight (ties in turn).
    LeastOutstanding,
    /// At random (equal weights: anomaly mitigation is not implemented).
    WeightedRandom,
}

impl Target {
    fn routable(&self) -> bool {
        matches!(
            self.health.state().0,
            HealthState::Healthy | HealthState::Unused
        )
    }
}

/// A target group at run time.
pub struct TargetGroup {
    /// Config name.
    pub name: String,
    /// Its ARN, for the access log.
    pub arn: String,
    targets: Vec<Target>,
    next: AtomicUsize,
    health_check: portcullis_config::HealthCheck,
    /// `AWSALB` cookie lifetime, when stickiness is on.
    sticky: Option<u64>,
    algorithm: Algorithm,
}

/// A cheap per-process pseudo-random number (xorshift), for `weighted_random`.
fn random_index(n: usize) -> usize {
    static STATE: std::sync::atomic::AtomicU64 =
        std::sync::atomic::AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let mut x = STATE.load(Ordering::Relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    (x % n as u64) as usize
}

/// A short opaque token naming something of this load balancer (a target group or a target) in
/// a stickiness cookie: stable across nodes of one balancer, meaningless elsewhere.
fn token(parts: &[&str]) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for p in parts {
        ctx.update(p.as_bytes());
        ctx.update(b"\0");
    }
    hex::encode(&ctx.finish().as_ref()[..12])
}

/// The value of cookie `name` in a request.
fn cookie<'a>(h: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    h.get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|p| p.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// `Set-Cookie` values for a stickiness cookie and its CORS twin (HTTPS only, as it is `Secure`).
fn sticky_cookies(name: &str, value: &str, seconds: u64, https: bool) -> Vec<String> {
    let mut v = vec![format!("{name}={value}; Max-Age={seconds}; Path=/")];
    if https {
        v.push(format!(
            "{name}CORS={value}; Max-Age={seconds}; Path=/; SameSite=None; Secure"
        ));
    }
    v
}

/// A `forward` action: one group, or up to five with weights, optionally sticky per client.
pub struct Forward {
    /// The groups and their weights.
    pub groups: Vec<(Arc<TargetGroup>, u32)>,
    total: u32,
    next: AtomicUsize,
    sticky: Option<u64>,
}

impl Forward {
    /// From compiled groups (weights validated: at least one above 0).
    pub fn new(groups: Vec<(Arc<TargetGroup>, u32)>, sticky: Option<u64>) -> Forward {
        let total = groups.iter().map(|(_, w)| *w).sum::<u32>().max(1);
        Forward {
            groups,
            total,
            next: AtomicUsize::new(0),
            sticky,
        }
    }

    /// The group for this request: the one its `AWSALBTG` cookie names, else by weight (exact
    /// proportions: a weighted round robin). Returns the cookies to set.
    pub fn choose(&self, h: &http::HeaderMap, https: bool) -> (&Arc<TargetGroup>, Vec<String>) {
        if let Some(secs) = self.sticky
            && let Some(v) = cookie(h, "AWSALBTG").or_else(|| cookie(h, "AWSALBTGCORS"))
            && let Some((g, _)) = self
                .groups
                .iter()
                .find(|(g, w)| *w > 0 && token(&[&g.arn]) == v)
        {
            return (g, sticky_cookies("AWSALBTG", v, secs, https));
        }
        let g = if self.groups.len() == 1 {
            &self.groups[0].0
        } else {
            // Every `total` requests visit each position once, in a scrambled order (a prime
            // stride), so the groups interleave and the proportions are exact.
            let n = self.next.fetch_add(1, Ordering::Relaxed) as u64;
            let mut pos = (n.wrapping_mul(2_654_435_761) % u64::from(self.total)) as u32;
            let mut chosen = &self.groups[0].0;
            for (g, w) in &self.groups {
                if pos < *w {
                    chosen = g;
                    break;
                }
                pos -= w;
            }
            chosen
        };
        let cookies = self
            .sticky
            .map(|secs| sticky_cookies("AWSALBTG", &token(&[&g.arn]), secs, https))
            .unwrap_or_default();
        (g, cookies)
    }
}

impl TargetGroup {
    /// From config (validated), with this load balancer's ARN prefix. Targets also in `previous`
    /// (the group of the config being replaced) keep their health.
    pub fn new(
        cfg: &portcullis_config::TargetGroup,
        arn: String,
        previous: Option<&TargetGroup>,
    ) -> TargetGroup {
        let enabled = cfg.health_check.enabled;
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
                let authority = format!("{host}:{port}");
                let health = previous
                    .filter(|p| p.health_check.enabled == enabled)
                    .and_then(|p| p.targets.iter().find(|t| t.authority == authority))
                    .map_or_else(
                        || Arc::new(TargetHealth::new(enabled)),
                        |t| t.health.clone(),
                    );
                let outstanding = previous
                    .and_then(|p| p.targets.iter().find(|t| t.authority == authority))
                    .map_or_else(|| Arc::new(AtomicUsize::new(0)), |t| t.outstanding.clone());
                Target {
                    authority,
                    health,
                    outstanding,
                }
            })
            .collect();
        TargetGroup {
            name: cfg.name.clone(),
            arn,
            targets,
            next: AtomicUsize::new(0),
            health_check: cfg.health_check.clone(),
            sticky: cfg
                .stickiness
                .as_ref()
                .filter(|s| s.enabled)
                .map(|s| s.duration_seconds),
            algorithm: match cfg.load_balancing_algorithm.as_str() {
                "least_outstanding_requests" => Algorithm::LeastOutstanding,
                "weighted_random" => Algorithm::WeightedRandom,
                _ => Algorithm::RoundRobin,
            },
        }
    }

    /// The target for a request: the one its `AWSALB` cookie names while that target is routable,
    /// else the next one. Returns the cookies to set (stickiness on).
    pub fn pick_for(&self, h: &http::HeaderMap, https: bool) -> Option<(&Target, Vec<String>)> {
        let Some(secs) = self.sticky else {
            return self.pick().map(|t| (t, Vec::new()));
        };
        if let Some(v) = cookie(h, "AWSALB").or_else(|| cookie(h, "AWSALBCORS"))
            && let Some(t) = self
                .targets
                .iter()
                .find(|t| t.routable() && token(&[&self.arn, &t.authority]) == v)
        {
            return Some((t, sticky_cookies("AWSALB", v, secs, https)));
        }
        let t = self.pick()?;
        let v = token(&[&self.arn, &t.authority]);
        Some((t, sticky_cookies("AWSALB", &v, secs, https)))
    }

    /// The next target, round robin over the routable ones, or over all when none is (fail-open);
    /// `None` when the group is empty (503).
    pub fn pick(&self) -> Option<&Target> {
        if self.targets.is_empty() {
            return None;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let healthy = self.targets.iter().filter(|t| t.routable()).count();
        // Every target when none is healthy (fail-open), else the healthy ones.
        let pool = |t: &&Target| healthy == 0 || t.routable();
        let count = if healthy == 0 {
            self.targets.len()
        } else {
            healthy
        };
        match self.algorithm {
            Algorithm::RoundRobin => self.targets.iter().filter(pool).nth(n % count),
            Algorithm::WeightedRandom => self.targets.iter().filter(pool).nth(random_index(count)),
            Algorithm::LeastOutstanding => {
                // Start the scan at a rotating offset so ties are broken in turn.
                let len = self.targets.len();
                let start = n % len;
                (0..len)
                    .map(|i| &self.targets[(start + i) % len])
                    .filter(pool)
                    .min_by_key(|t| t.outstanding.load(Ordering::Relaxed))
            }
        }
    }

    /// `(authority, state, reason)` of every target (ALB's DescribeTargetHealth).
    pub fn health(&self) -> Vec<(String, HealthState, &'static str)> {
        self.targets
            .iter()
            .map(|t| {
                let (s, r) = t.health.state();
                (t.authority.clone(), s, r)
            })
            .collect()
    }

    /// Starts this group's health checks; they stop when the group is dropped (a reload).
    pub fn start_health_checks(self: &Arc<Self>) {
        if !self.health_check.enabled || self.targets.is_empty() {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let client: HealthClient = Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(0)
                .build(HttpConnector::new());
            while let Some(tg) = weak.upgrade() {
                let hc = tg.health_check.clone();
                // Every target checked at once; each check bounded by the timeout.
                let mut set = tokio::task::JoinSet::new();
                for (i, t) in tg.targets.iter().enumerate() {
                    let (c, t, hc) = (client.clone(), t.clone(), hc.clone());
                    set.spawn(async move { (i, check(&c, &t, &hc).await) });
                }
                let mut results = vec![(false, "Elb.InternalError"); tg.targets.len()];
                while let Some(Ok((i, r))) = set.join_next().await {
                    results[i] = r;
                }
                for (t, (pass, why)) in tg.targets.iter().zip(results) {
                    if let Some(state) = t.health.record(pass, why, &hc) {
                        tracing::info!(target_group = %tg.name, target = %t.authority, ?state, reason = why, "target health changed");
                    }
                }
                let interval = Duration::from_secs(hc.interval_seconds);
                drop(tg);
                tokio::time::sleep(interval).await;
            }
        });
    }
}

type HealthClient = Client<HttpConnector, http_body_util::Empty<bytes::Bytes>>;

/// One health check: `GET <path>` with ALB's `User-Agent`, passing when the status matches.
async fn check(
    client: &HealthClient,
    t: &Target,
    hc: &portcullis_config::HealthCheck,
) -> (bool, &'static str) {
    let authority = match hc.port.parse::<u16>() {
        Ok(p) => format!(
            "{}:{p}",
            t.authority
                .rsplit_once(':')
                .map_or(t.authority.as_str(), |(h, _)| h)
        ),
        Err(_) => t.authority.clone(),
    };
    let Ok(req) = Request::get(format!("http://{authority}{}", hc.path))
        .header(http::header::USER_AGENT, "ELB-HealthChecker/2.0")
        .header(http::header::CONNECTION, "close")
        .body(http_body_util::Empty::new())
    else {
        return (false, "Elb.InternalError");
    };
    match tokio::time::timeout(Duration::from_secs(hc.timeout_seconds), client.request(req)).await {
        Err(_) => (false, "Target.Timeout"),
        Ok(Err(_)) => (false, "Target.FailedHealthChecks"),
        Ok(Ok(r)) if hc.passes(r.status().as_u16()) => (true, ""),
        Ok(Ok(_)) => (false, "Target.ResponseCodeMismatch"),
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
        let tg = TargetGroup::new(&cfg, "arn".into(), None);
        let picks: Vec<String> = (0..4)
            .map(|_| tg.pick().unwrap().authority.clone())
            .collect();
        assert_eq!(
            picks,
            ["10.0.0.1:80", "[::1]:81", "10.0.0.1:80", "[::1]:81"]
        );
        let empty: portcullis_config::TargetGroup = toml::from_str("name = \"e\"").unwrap();
        assert!(
            TargetGroup::new(&empty, "arn".into(), None)
                .pick()
                .is_none()
        );
    }
}
