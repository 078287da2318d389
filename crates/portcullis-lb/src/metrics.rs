//! ALB's CloudWatch metrics as Prometheus metrics, served at `<admin>/metrics`. Each is named
//! `portcullis_<what>` and its help text names the CloudWatch metric it stands for. Request metrics
//! are tallied from the same record the access log writes, once per request.

use crate::access_log::Entry;
use portcullis_auth::AuthObserver;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

/// `code` is the class (`2xx` … `5xx`) or, for the load balancer's own 5xx, the exact code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    /// `4xx`, `5xx`, `502`, ...
    pub code: String,
}

/// `result` of a back-channel logout token: `accepted` or `refused`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `accepted` or `refused`.
    pub result: String,
}

/// A target group's responses by class.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetCodeLabels {
    /// The target group's name.
    pub target_group: String,
    /// `2xx` … `5xx`.
    pub code: String,
}

/// A target group's host counts, for the gauges.
#[derive(Clone, Debug)]
pub struct HostCounts {
    /// The target group's name.
    pub target_group: String,
    /// Healthy or unchecked targets (`HealthyHostCount`).
    pub healthy: i64,
    /// Unhealthy targets (`UnHealthyHostCount`).
    pub unhealthy: i64,
    /// Targets anomaly detection flags (`AnomalousHostCount`).
    pub anomalous: i64,
    /// Anomalous targets whose traffic is reduced (`MitigatedHostCount`).
    pub mitigated: i64,
}

/// A target group.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetGroupLabels {
    /// The target group's name.
    pub target_group: String,
}

type HistogramFamily = Family<TargetGroupLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms to about 33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Another component's metrics (the identity provider's), appended in the text format without
/// `# EOF`.
pub type MetricSource = std::sync::Arc<dyn Fn(&mut String) -> std::fmt::Result + Send + Sync>;

/// Every metric the balancer keeps.
pub struct Metrics {
    registry: Registry,
    extra: std::sync::Mutex<Vec<MetricSource>>,
    requests: Counter,
    elb_responses: Family<CodeLabels, Counter>,
    target_responses: Family<TargetCodeLabels, Counter>,
    target_response_time: HistogramFamily,
    target_connection_errors: Counter,
    /// Requests sent to a second target because the first refused the connection.
    pub target_retries: Counter,
    fixed_responses: Counter,
    redirects: Counter,
    rule_evaluations: Counter,
    /// Open client connections (`ActiveConnectionCount`).
    pub active_connections: Gauge,
    /// Accepted client connections (`NewConnectionCount`).
    pub new_connections: Counter,
    auth_success: Counter,
    auth_refresh: Counter,
    auth_failure: Counter,
    auth_error: Counter,
    auth_claims_exceeded: Counter,
    auth_session_revoked: Counter,
    logout_tokens: Family<ResultLabels, Counter>,
    lambda_user_errors: Counter,
    lambda_internal_errors: Counter,
    grpc_requests: Counter,
    auth_latency: Histogram,
    healthy_hosts: Family<TargetGroupLabels, Gauge>,
    unhealthy_hosts: Family<TargetGroupLabels, Gauge>,
    anomalous_hosts: Family<TargetGroupLabels, Gauge>,
    mitigated_hosts: Family<TargetGroupLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            registry: Registry::default(),
            extra: std::sync::Mutex::new(Vec::new()),
            requests: Counter::default(),
            elb_responses: Family::default(),
            target_responses: Family::default(),
            target_response_time: Family::new_with_constructor(latency_histogram),
            target_connection_errors: Counter::default(),
            target_retries: Counter::default(),
            fixed_responses: Counter::default(),
            redirects: Counter::default(),
            rule_evaluations: Counter::default(),
            active_connections: Gauge::default(),
            new_connections: Counter::default(),
            auth_success: Counter::default(),
            auth_refresh: Counter::default(),
            auth_failure: Counter::default(),
            auth_error: Counter::default(),
            auth_claims_exceeded: Counter::default(),
            auth_session_revoked: Counter::default(),
            logout_tokens: Family::default(),
            lambda_user_errors: Counter::default(),
            lambda_internal_errors: Counter::default(),
            grpc_requests: Counter::default(),
            auth_latency: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            healthy_hosts: Family::default(),
            unhealthy_hosts: Family::default(),
            anomalous_hosts: Family::default(),
            mitigated_hosts: Family::default(),
        };
        let r = &mut registry;
        r.register(
            "portcullis_requests",
            "Requests answered (RequestCount)",
            m.requests.clone(),
        );
        r.register(
            "portcullis_elb_responses",
            "Responses the load balancer made itself, by class and exact 5xx code (HTTPCode_ELB_nXX_Count, HTTPCode_ELB_50n_Count)",
            m.elb_responses.clone(),
        );
        r.register(
            "portcullis_target_responses",
            "Responses from targets by class (HTTPCode_Target_nXX_Count)",
            m.target_responses.clone(),
        );
        r.register(
            "portcullis_target_response_time_seconds",
            "Time from sending the request to the target to its response headers (TargetResponseTime)",
            m.target_response_time.clone(),
        );
        r.register(
            "portcullis_target_connection_errors",
            "Requests whose target could not be reached or answered badly (TargetConnectionErrorCount)",
            m.target_connection_errors.clone(),
        );
        r.register(
            "portcullis_target_retries",
            "Requests tried on a second target because the first could not be connected to (no byte of the request had left)",
            m.target_retries.clone(),
        );
        r.register(
            "portcullis_fixed_responses",
            "fixed-response actions run (HTTP_Fixed_Response_Count)",
            m.fixed_responses.clone(),
        );
        r.register(
            "portcullis_redirects",
            "redirect actions run (HTTP_Redirect_Count)",
            m.redirects.clone(),
        );
        r.register(
            "portcullis_rule_evaluations",
            "Rules evaluated (RuleEvaluations)",
            m.rule_evaluations.clone(),
        );
        r.register(
            "portcullis_active_connections",
            "Open client connections (ActiveConnectionCount)",
            m.active_connections.clone(),
        );
        r.register(
            "portcullis_new_connections",
            "Client connections accepted (NewConnectionCount)",
            m.new_connections.clone(),
        );
        r.register(
            "portcullis_auth_success",
            "Logins completed with tokens and user claims (ELBAuthSuccess)",
            m.auth_success.clone(),
        );
        r.register(
            "portcullis_auth_refresh_token_success",
            "Sessions refreshed with the refresh token (ELBAuthRefreshTokenSuccess)",
            m.auth_refresh.clone(),
        );
        r.register(
            "portcullis_auth_failure",
            "Authentications refused for invalid input: state, nonce, code, tokens (ELBAuthFailure)",
            m.auth_failure.clone(),
        );
        r.register(
            "portcullis_auth_error",
            "Authentications that failed on the IdP or configuration side (ELBAuthError)",
            m.auth_error.clone(),
        );
        r.register(
            "portcullis_auth_user_claims_size_exceeded",
            "Logins whose claims and token exceeded 11 KB (ELBAuthUserClaimsSizeExceeded)",
            m.auth_claims_exceeded.clone(),
        );
        r.register(
            "portcullis_auth_session_revoked",
            "Requests whose session the provider had ended, treated as signed out",
            m.auth_session_revoked.clone(),
        );
        r.register(
            "portcullis_auth_logout_tokens",
            "Back-channel logout tokens received, by result",
            m.logout_tokens.clone(),
        );
        r.register(
            "portcullis_auth_latency_seconds",
            "Time the IdP took to return tokens and user claims (ELBAuthLatency)",
            m.auth_latency.clone(),
        );
        r.register(
            "portcullis_healthy_hosts",
            "Targets passing health checks, or not checked (HealthyHostCount)",
            m.healthy_hosts.clone(),
        );
        r.register(
            "portcullis_unhealthy_hosts",
            "Targets failing health checks (UnHealthyHostCount)",
            m.unhealthy_hosts.clone(),
        );
        r.register(
            "portcullis_grpc_requests",
            "gRPC requests (GrpcRequestCount)",
            m.grpc_requests.clone(),
        );
        r.register(
            "portcullis_lambda_user_errors",
            "Lambda calls that failed because of the function: errors, timeouts, throttling, bad answers (LambdaUserError)",
            m.lambda_user_errors.clone(),
        );
        r.register(
            "portcullis_lambda_internal_errors",
            "Lambda calls that failed because the invoke endpoint could not be reached or failed (LambdaInternalError)",
            m.lambda_internal_errors.clone(),
        );
        r.register(
            "portcullis_anomalous_hosts",
            "Targets whose error rate stands out from their peers' (AnomalousHostCount)",
            m.anomalous_hosts.clone(),
        );
        r.register(
            "portcullis_mitigated_hosts",
            "Anomalous targets sent less traffic by anomaly mitigation (MitigatedHostCount)",
            m.mitigated_hosts.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Sets the host-count gauges from the target groups' current health.
    pub fn set_health(&self, groups: &[HostCounts]) {
        for g in groups {
            let l = TargetGroupLabels {
                target_group: g.target_group.clone(),
            };
            self.healthy_hosts.get_or_create(&l).set(g.healthy);
            self.unhealthy_hosts.get_or_create(&l).set(g.unhealthy);
            self.anomalous_hosts.get_or_create(&l).set(g.anomalous);
            self.mitigated_hosts.get_or_create(&l).set(g.mitigated);
        }
    }

    /// Tallies one finished request.
    pub fn observe(&self, e: &Entry) {
        self.requests.inc();
        if e.kind == "grpcs" {
            self.grpc_requests.inc();
        }
        if !matches!(e.matched_rule_priority.as_str(), "-" | "") {
            self.rule_evaluations.inc();
        }
        for a in &e.actions_executed {
            match *a {
                "fixed-response" => {
                    self.fixed_responses.inc();
                }
                "redirect" => {
                    self.redirects.inc();
                }
                _ => {}
            }
        }
        let class = |c: u16| format!("{}xx", c / 100);
        let tg = e
            .target_group_arn
            .split('/')
            .nth(1)
            .unwrap_or("-")
            .to_string();
        match e.target_status_code {
            Some(code) => {
                self.target_responses
                    .get_or_create(&TargetCodeLabels {
                        target_group: tg.clone(),
                        code: class(code),
                    })
                    .inc();
                if e.target_processing_time >= 0.0 {
                    self.target_response_time
                        .get_or_create(&TargetGroupLabels { target_group: tg })
                        .observe(e.target_processing_time);
                }
            }
            None => {
                let c = e.elb_status_code;
                self.elb_responses
                    .get_or_create(&CodeLabels { code: class(c) })
                    .inc();
                if (500..=504).contains(&c) {
                    self.elb_responses
                        .get_or_create(&CodeLabels {
                            code: c.to_string(),
                        })
                        .inc();
                }
                if !e.target.is_empty() && matches!(c, 502 | 504) {
                    self.target_connection_errors.inc();
                }
            }
        }
        let r = e.error_reason.as_str();
        if r.starts_with("Lambda") {
            if matches!(
                r,
                "LambdaConnectionError" | "LambdaConnectionTimeout" | "LambdaServiceException"
            ) {
                self.lambda_internal_errors.inc();
            } else {
                self.lambda_user_errors.inc();
            }
        }
        if r.starts_with("Auth") {
            if r.contains("SizeExceeded") {
                self.auth_claims_exceeded.inc();
                self.auth_error.inc();
            } else if r.contains("Timeout")
                || r.contains("RequestFailed")
                || r == "AuthMissingHostHeader"
                || r == "AuthUnhandledException"
            {
                self.auth_error.inc();
            } else {
                self.auth_failure.inc();
            }
        }
    }

    /// Serves `source`'s metrics after the balancer's.
    pub fn add_source(&self, source: MetricSource) {
        self.extra
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(source);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut out = String::new();
        let extra = self.extra.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let ok = encode_registry(&mut out, &self.registry).is_ok()
            && extra.iter().all(|s| s(&mut out).is_ok())
            && encode_eof(&mut out).is_ok();
        if !ok {
            out.clear();
        }
        out
    }
}

impl AuthObserver for Metrics {
    fn signed_in(&self, idp_time: Duration) {
        self.auth_success.inc();
        self.auth_latency.observe(idp_time.as_secs_f64());
    }
    fn refreshed(&self, idp_time: Duration) {
        self.auth_refresh.inc();
        self.auth_latency.observe(idp_time.as_secs_f64());
    }
    fn session_revoked(&self) {
        self.auth_session_revoked.inc();
    }
    fn logout_token(&self, accepted: bool) {
        let result = if accepted { "accepted" } else { "refused" };
        self.logout_tokens
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(priority: &str, tg_arn: &str, target_status: Option<u16>, elb: u16) -> Entry {
        Entry {
            target_processing_time: 0.002,
            elb_status_code: elb,
            target_status_code: target_status,
            target_group_arn: tg_arn.into(),
            matched_rule_priority: priority.into(),
            actions_executed: vec!["forward"],
            ..Entry::blank("http")
        }
    }

    #[test]
    fn added_sources_are_served_before_the_end() {
        let m = Metrics::new();
        m.add_source(std::sync::Arc::new(|out: &mut String| {
            out.push_str("# TYPE other counter\nother_total 3\n");
            Ok(())
        }));
        let text = m.render();
        let other = text.find("other_total 3").expect("the source is served");
        assert!(other < text.find("# EOF").unwrap(), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
    }

    #[test]
    fn entries_without_log_text_still_count() {
        // Metrics-only entries leave the log-only fields empty: an empty priority is no rule.
        let m = Metrics::new();
        m.observe(&entry("", "", None, 405));
        m.observe(&entry(
            "0",
            "arn:aws:elasticloadbalancing:r:a:targetgroup/web/1",
            Some(200),
            200,
        ));
        let text = m.render();
        let value = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("{name} in {text}"))
                .rsplit(' ')
                .next()
                .unwrap()
                .to_string()
        };
        assert_eq!(value("portcullis_rule_evaluations_total"), "1");
        assert_eq!(value("portcullis_requests_total"), "2");
        assert!(
            text.contains("target_group=\"web\"") && text.contains("code=\"2xx\""),
            "{text}"
        );
        assert!(text.contains("code=\"4xx\""), "{text}");
    }
}
