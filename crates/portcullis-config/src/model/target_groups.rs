//! Target groups: targets, Lambda functions, stickiness and health checks.

use super::*;

/// A target group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetGroup {
    /// ≤32 characters, alphanumerics and `-`.
    pub name: String,
    /// Protocol to the targets: `HTTP` or `HTTPS` (certificates not validated, as at ALB).
    #[serde(default = "default_tg_protocol")]
    pub protocol: Protocol,
    /// `HTTP1` (default), `HTTP2` or `GRPC`: what the targets speak; a request that does not
    /// fit gets 464.
    #[serde(default)]
    pub protocol_version: ProtocolVersion,
    /// `instance` (default), `ip` or `lambda`.
    #[serde(default)]
    pub target_type: TargetType,
    /// The function of a `lambda` group.
    #[serde(default)]
    pub lambda: Option<LambdaFunction>,
    /// `deregistration_delay.timeout_seconds` (0–3600, default 300): how long a target removed by
    /// a reload may finish the requests it has.
    #[serde(default = "five_minutes")]
    pub deregistration_delay_seconds: u64,
    /// `slow_start.duration_seconds` (30–900, 0 = off): a target that becomes healthy gets a
    /// share rising linearly over this time.
    #[serde(default)]
    pub slow_start_seconds: u64,
    /// `load_balancing.algorithm.anomaly_mitigation` (`weighted_random` only): send less to a
    /// target whose 5xx and connection-error rate stands out from its peers'.
    #[serde(default)]
    pub anomaly_mitigation: bool,
    /// `target_group_health.unhealthy_state_routing.minimum_healthy_targets.count` (default 1):
    /// with fewer routable targets, requests go to every target (fail-open).
    #[serde(default = "one")]
    pub minimum_healthy_targets_count: u32,
    /// `target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage` (1–100,
    /// default off): the same, as a share of the targets.
    #[serde(default)]
    pub minimum_healthy_targets_percentage: Option<u32>,
    /// Default port for targets that give none.
    #[serde(default)]
    pub port: Option<u16>,
    /// Static targets.
    #[serde(default)]
    pub targets: Vec<Target>,
    /// How targets are checked (ALB's defaults when absent).
    #[serde(default)]
    pub health_check: HealthCheck,
    /// Keep a client on one target (`lb_cookie`: cookie `AWSALB`; `app_cookie`: `AWSALBAPP-N`).
    #[serde(default)]
    pub stickiness: Option<TargetStickiness>,
    /// `load_balancing.algorithm.type`: `round_robin` (default), `least_outstanding_requests` or
    /// `weighted_random`.
    #[serde(default = "round_robin")]
    pub load_balancing_algorithm: String,
}

fn round_robin() -> String {
    "round_robin".into()
}
fn one() -> u32 {
    1
}
fn five_minutes() -> u64 {
    300
}

/// A target group's `ProtocolVersion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum ProtocolVersion {
    /// HTTP/1.1 to the targets, whatever the client spoke.
    #[default]
    HTTP1,
    /// HTTP/2 to the targets; HTTP/1.1 clients get 464.
    HTTP2,
    /// gRPC over HTTP/2; other requests get 464 (HTTP/2 POSTs excepted).
    GRPC,
}

/// A target group's `TargetType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetType {
    /// Targets by address (the same as `ip` here).
    #[default]
    Instance,
    /// Targets by address.
    Ip,
    /// One function, invoked with ALB's event JSON.
    Lambda,
}

/// The function behind a `lambda` target group, reached through the Lambda Invoke API
/// (`POST <endpoint>/2015-03-31/functions/<function>/invocations`), as the Lambda Runtime Interface
/// Emulator serves it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LambdaFunction {
    /// Base URL of the invoke API, such as `http://127.0.0.1:9000`.
    pub endpoint: String,
    /// The function name (the emulator's is `function`).
    #[serde(default = "function_name")]
    pub function: String,
    /// `lambda.multi_value_headers.enabled`: headers and query as arrays.
    #[serde(default)]
    pub multi_value_headers: bool,
    /// Seconds an invocation may take before the client gets 502 (default 30).
    #[serde(default = "thirty")]
    pub timeout_seconds: u64,
}

fn function_name() -> String {
    "function".into()
}

/// A target group's `stickiness.*` attributes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetStickiness {
    /// On or off.
    pub enabled: bool,
    /// `lb_cookie` (default) or `app_cookie`.
    #[serde(default = "lb_cookie", rename = "type")]
    pub kind: String,
    /// 1–604800 seconds (default 86400).
    #[serde(default = "day")]
    pub duration_seconds: u64,
    /// `app_cookie`: the application's cookie that starts and keeps stickiness.
    #[serde(default)]
    pub cookie_name: Option<String>,
}

fn lb_cookie() -> String {
    "lb_cookie".into()
}
fn day() -> u64 {
    86400
}

/// A target group's health check (ALB's `HealthCheck*` settings and defaults).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// Checks run (default true, as ALB for instance and IP targets; never for `lambda`).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `HTTP` (default) or `HTTPS` (not validated); gRPC groups check over HTTP/2.
    #[serde(default)]
    pub protocol: Option<Protocol>,
    /// The path asked for (default `/`).
    #[serde(default = "slash")]
    pub path: String,
    /// `traffic-port` (default) or a port number.
    #[serde(default = "traffic_port")]
    pub port: String,
    /// Seconds between checks of a target (ALB: 5–300, default 30; here from 1).
    #[serde(default = "thirty")]
    pub interval_seconds: u64,
    /// Seconds a check may take (ALB: 2–120, default 5; here from 1, and less than the interval).
    #[serde(default = "five")]
    pub timeout_seconds: u64,
    /// Consecutive passes that make an unhealthy target healthy (2–10, default 5).
    #[serde(default = "five_u32")]
    pub healthy_threshold_count: u32,
    /// Consecutive failures that make a target unhealthy (2–10, default 2).
    #[serde(default = "two")]
    pub unhealthy_threshold_count: u32,
    /// Status codes that pass: `200`, `200,202` or `200-299` (200–499; default `200`).
    #[serde(default = "ok_code")]
    pub matcher: String,
    /// gRPC groups: `grpc-status` codes that pass, in the same forms (0–99; default `12`,
    /// "unimplemented", which any gRPC server answers for ALB's `/AWS.ALB/healthcheck`).
    #[serde(default = "grpc_unimplemented")]
    pub grpc_code: String,
}

fn grpc_unimplemented() -> String {
    "12".into()
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck {
            enabled: true,
            protocol: None,
            path: slash(),
            port: traffic_port(),
            interval_seconds: 30,
            timeout_seconds: 5,
            healthy_threshold_count: 5,
            unhealthy_threshold_count: 2,
            matcher: ok_code(),
            grpc_code: grpc_unimplemented(),
        }
    }
}

fn slash() -> String {
    "/".into()
}
fn traffic_port() -> String {
    "traffic-port".into()
}
fn thirty() -> u64 {
    30
}
fn five() -> u64 {
    5
}
fn five_u32() -> u32 {
    5
}
fn two() -> u32 {
    2
}
fn ok_code() -> String {
    "200".into()
}

impl HealthCheck {
    /// Whether `status` passes the matcher (validated: codes and ranges within 200–499).
    pub fn passes(&self, status: u16) -> bool {
        code_matches(&self.matcher, status)
    }

    /// Whether a `grpc-status` passes `grpc_code`.
    pub fn passes_grpc(&self, status: u16) -> bool {
        code_matches(&self.grpc_code, status)
    }
}

/// Whether `code` is in a matcher list such as `200`, `200,202` or `200-299`.
pub fn code_matches(list: &str, code: u16) -> bool {
    list.split(',')
        .any(|part| match part.trim().split_once('-') {
            Some((a, b)) => match (a.trim().parse::<u16>(), b.trim().parse::<u16>()) {
                (Ok(a), Ok(b)) => (a..=b).contains(&code),
                _ => false,
            },
            None => part.trim().parse::<u16>() == Ok(code),
        })
}

/// One target.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// An IP address or host name.
    pub id: String,
    /// Port, or the group's.
    #[serde(default)]
    pub port: Option<u16>,
}
