//! Health checks, as ALB runs them: every target of a group checked each interval on a fresh
//! connection (`GET <path>` with `User-Agent: ELB-HealthChecker/2.0`, or a gRPC call for gRPC
//! groups), over HTTP or HTTPS, HTTP/1.1 or HTTP/2 as the group speaks.
//!
//! The interval is measured on the balancer's clock: a test that moves the clock by an interval
//! gets the next round at once, and waits for it with [`TargetGroup::health_rounds`].

use crate::target_group::{Target, TargetGroup};
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use portcullis_config::{HealthCheck, Protocol, ProtocolVersion};
use std::sync::Arc;
use std::time::Duration;

type HealthClient = Client<crate::upstream::Connector, Full<Bytes>>;

/// The default path of a gRPC group's check (ALB's), used when the config keeps `/`.
const GRPC_HEALTH_PATH: &str = "/AWS.ALB/healthcheck";

/// Starts a group's health checks: a round at once, then one per interval of the group's clock;
/// they stop when the group is dropped (a reload). Lambda groups and groups with checks off are
/// not checked.
pub fn start(tg: &Arc<TargetGroup>) {
    if !tg.health_check.enabled || tg.lambda.is_some() || tg.targets().is_empty() {
        return;
    }
    let weak = Arc::downgrade(tg);
    let clock = tg.clock().clone();
    let h2 = tg.protocol_version != ProtocolVersion::HTTP1;
    tokio::spawn(async move {
        let client: HealthClient = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .http2_only(h2)
            .build(crate::upstream::connector(h2, false));
        while let Some(tg) = weak.upgrade() {
            let hc = tg.health_check.clone();
            let scheme = match hc.protocol {
                Some(Protocol::HTTPS) => "https",
                _ => "http",
            };
            let grpc = tg.protocol_version == ProtocolVersion::GRPC;
            // Every target checked at once; each check bounded by the timeout.
            let mut set = tokio::task::JoinSet::new();
            for (i, t) in tg.targets().iter().enumerate() {
                let (c, t, hc) = (client.clone(), t.clone(), hc.clone());
                set.spawn(async move { (i, check(&c, &t, &hc, scheme, grpc, h2).await) });
            }
            let mut results = vec![(false, "Elb.InternalError"); tg.targets().len()];
            while let Some(Ok((i, r))) = set.join_next().await {
                results[i] = r;
            }
            let now = clock.instant();
            for (t, (pass, why)) in tg.targets().iter().zip(results) {
                if let Some(state) = t.health.record(pass, why, &hc, now) {
                    tracing::info!(target_group = %tg.name, target = %t.authority, ?state, reason = why, "target health changed");
                }
            }
            tg.round_done();
            let interval = Duration::from_secs(hc.interval_seconds);
            drop(tg);
            clock.sleep(interval).await;
        }
    });
}

/// One check: passes when the status (or, for gRPC, `grpc-status`) matches.
async fn check(
    client: &HealthClient,
    t: &Target,
    hc: &HealthCheck,
    scheme: &str,
    grpc: bool,
    h2: bool,
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
    let path = if grpc && hc.path == "/" {
        GRPC_HEALTH_PATH
    } else {
        hc.path.as_str()
    };
    let uri = format!("{scheme}://{authority}{path}");
    let req = if grpc {
        // An empty request message: a zero flag byte and a zero length.
        Request::post(uri)
            .version(http::Version::HTTP_2)
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers")
            .header(http::header::USER_AGENT, "ELB-HealthChecker/2.0")
            .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
    } else {
        let b = Request::get(uri).header(http::header::USER_AGENT, "ELB-HealthChecker/2.0");
        if h2 {
            b.version(http::Version::HTTP_2)
        } else {
            b.header(http::header::CONNECTION, "close")
        }
        .body(Full::new(Bytes::new()))
    };
    let Ok(req) = req else {
        return (false, "Elb.InternalError");
    };
    let timeout = Duration::from_secs(hc.timeout_seconds);
    let answer = tokio::time::timeout(timeout, async {
        let r = client.request(req).await.map_err(|_| ())?;
        if !grpc {
            return Ok(hc.passes(r.status().as_u16()));
        }
        // gRPC status: in the headers of a trailers-only answer, else in the trailers.
        let head = grpc_status(r.headers());
        let (_, trailers) = crate::upstream::collect_limited(r.into_body(), 64 * 1024).await?;
        let code = head.or_else(|| trailers.as_ref().and_then(grpc_status));
        Ok(code.is_some_and(|c| hc.passes_grpc(c)))
    })
    .await;
    match answer {
        Err(_) => (false, "Target.Timeout"),
        Ok(Err(())) => (false, "Target.FailedHealthChecks"),
        Ok(Ok(true)) => (true, ""),
        Ok(Ok(false)) => (false, "Target.ResponseCodeMismatch"),
    }
}

fn grpc_status(h: &http::HeaderMap) -> Option<u16> {
    h.get("grpc-status")?.to_str().ok()?.parse().ok()
}
