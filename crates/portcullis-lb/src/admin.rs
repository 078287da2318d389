//! The admin listener: the public keys backends verify `x-amzn-oidc-data` with
//! (`GET /public-keys/<kid>`, PEM, as ALB's regional key endpoint), the JWKS for the standard
//! identity JWT (`GET /.well-known/jwks.json`) and a health check.

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// What the admin listener serves.
pub struct AdminState {
    /// The current claims-signing key id.
    pub kid: String,
    /// Its PEM.
    pub pem: String,
    /// The JWKS for `x-portcullis-jwt` (current and retired keys).
    pub jwks: String,
    /// Retired claims-signing keys: `(kid, PEM)`, still served so headers they signed verify.
    pub retired: Vec<(String, String)>,
    /// Served at `/metrics`.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// The live config, for target health.
    pub shared: Arc<crate::shared::Shared>,
}

/// Every target's health: `{target_group: [{target, state, reason, anomaly_detection}]}` (ALB's
/// DescribeTargetHealth).
fn target_health(state: &AdminState) -> (String, Vec<crate::metrics::HostCounts>) {
    use crate::target_group::HealthState;
    let snap = state.shared.snapshot.load();
    let mut out = serde_json::Map::new();
    let mut counts = Vec::new();
    let mut names: Vec<&String> = snap.target_groups.keys().collect();
    names.sort();
    for name in names {
        let tg = &snap.target_groups[name];
        let targets: Vec<serde_json::Value> = tg
            .health()
            .into_iter()
            .map(|(t, s, r, anomalous)| {
                let state = match s {
                    HealthState::Initial => "initial",
                    HealthState::Healthy => "healthy",
                    HealthState::Unhealthy => "unhealthy",
                    HealthState::Unused => "unused",
                    HealthState::Draining => "draining",
                };
                let anomaly = if anomalous { "anomalous" } else { "normal" };
                serde_json::json!({"target": t, "state": state, "reason": r, "anomaly_detection": anomaly})
            })
            .collect();
        let healthy = targets
            .iter()
            .filter(|t| t["state"] == "healthy" || t["state"] == "unused")
            .count() as i64;
        let unhealthy = targets.iter().filter(|t| t["state"] == "unhealthy").count() as i64;
        let anomalous = targets
            .iter()
            .filter(|t| t["anomaly_detection"] == "anomalous")
            .count() as i64;
        counts.push(crate::metrics::HostCounts {
            target_group: name.clone(),
            healthy,
            unhealthy,
            anomalous,
            mitigated: if tg.mitigates() { anomalous } else { 0 },
        });
        out.insert(name.clone(), targets.into());
    }
    (serde_json::Value::Object(out).to_string(), counts)
}

fn respond(state: &AdminState, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, ct: &'static str, body: String| {
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, ct)
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_default()
    };
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "text/plain", "ok\n".into()),
        "/metrics" => match &state.metrics {
            Some(m) => {
                m.set_health(&target_health(state).1);
                text(
                    StatusCode::OK,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    m.render(),
                )
            }
            None => text(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
        },
        "/target-health" => text(StatusCode::OK, "application/json", target_health(state).0),
        "/.well-known/jwks.json" => text(StatusCode::OK, "application/json", state.jwks.clone()),
        p => match p.strip_prefix("/public-keys/") {
            Some(kid) if kid == state.kid || state.retired.iter().any(|(k, _)| k == kid) => {
                let pem = if kid == state.kid {
                    state.pem.clone()
                } else {
                    state
                        .retired
                        .iter()
                        .find(|(k, _)| k == kid)
                        .map(|(_, p)| p.clone())
                        .unwrap_or_default()
                };
                let mut r = text(StatusCode::OK, "text/plain", pem);
                r.headers_mut().insert(
                    header::CACHE_CONTROL,
                    header::HeaderValue::from_static("public, max-age=3600"),
                );
                r
            }
            _ => text(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
        },
    }
}

/// Serves the admin endpoints until shutdown.
pub async fn run(tcp: TcpListener, state: Arc<AdminState>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let (stream, _) = tokio::select! {
            r = tcp.accept() => match r { Ok(x) => x, Err(_) => continue },
            _ = shutdown.changed() => return,
        };
        let state = state.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let r = respond(&state, &req);
                async move { Ok::<_, std::convert::Infallible>(r) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
