//! The config model: one TOML file whose names follow the ELBv2 and Cognito APIs in snake_case.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

mod actions;
mod listeners;
mod target_groups;
mod user_pools;

pub use actions::*;
pub use listeners::*;
pub use target_groups::*;
pub use user_pools::*;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the user pools keep their state: `"sqlite"` (default, `<state_dir>/idp.sqlite3`) or a
    /// `postgres://` URL shared by several nodes.
    #[serde(default)]
    pub store: Option<String>,
    /// Load-balancer-wide settings.
    pub load_balancer: LoadBalancer,
    /// Listeners, each with its rules.
    #[serde(default)]
    pub listeners: Vec<Listener>,
    /// Target groups that `forward` actions name.
    #[serde(default)]
    pub target_groups: Vec<TargetGroup>,
    /// Embedded Cognito-shaped user pools.
    #[serde(default)]
    pub user_pools: Vec<UserPool>,
}

/// Settings that apply to the whole load balancer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancer {
    /// The name in `app/<name>/<id>` and in the signer ARN.
    pub name: String,
    /// Where generated keys, certificates and the embedded database live (relative to the config file).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Region used in ARNs and issuers (`arn:aws:elasticloadbalancing:<region>:...`).
    #[serde(default = "default_region")]
    pub region: String,
    /// Account id used in ARNs.
    #[serde(default = "default_account_id")]
    pub account_id: String,
    /// The 16-hex-digit id in `app/<name>/<id>`; generated once into the state dir when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// The admin listener: public keys for `x-amzn-oidc-data`, health.
    #[serde(default)]
    pub admin: Option<Admin>,
    /// Where the ALB-format access log goes: `"stdout"`, a file path, or absent for none.
    #[serde(default)]
    pub access_log: Option<String>,
    /// `idle_timeout.timeout_seconds`: how long a target, or a client connection between
    /// requests, may stay silent (1–4000).
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_seconds: u64,
    /// `client_keep_alive.seconds`: the longest a client connection is kept, busy or not; then it
    /// is closed after the request in progress (ALB: 60–604800, default 3600; here from 1).
    #[serde(default = "default_client_keep_alive")]
    pub client_keep_alive_seconds: u64,
    /// Pass the balancer's own cookies (`<session cookie>-N`, `AWSALBAuthNonce`) on to targets, as
    /// ALB does. Off by default: a target never holds a replayable session.
    #[serde(default)]
    pub forward_auth_cookies: bool,
    /// `routing.http.xff_header_processing.mode`: `append` (default), `preserve` or `remove`.
    #[serde(default = "append")]
    pub xff_header_processing_mode: String,
    /// `routing.http.xff_client_port.enabled`: append `ip:port` (`[ip]:port` for IPv6).
    #[serde(default)]
    pub xff_client_port: bool,
    /// `routing.http.preserve_host_header.enabled`: pass `Host` exactly as received.
    #[serde(default)]
    pub preserve_host_header: bool,
    /// `routing.http.drop_invalid_header_fields.enabled`: drop headers whose names are not
    /// `[-A-Za-z0-9]+`.
    #[serde(default)]
    pub drop_invalid_header_fields: bool,
    /// `routing.http.desync_mitigation_mode`: only `defensive` (ALB's default) is offered.
    #[serde(default = "defensive")]
    pub desync_mitigation_mode: String,
    /// `routing.http2.enabled` (default true): offer HTTP/2 (ALPN `h2`) on HTTPS listeners.
    #[serde(default = "yes")]
    pub http2_enabled: bool,
    /// `routing.http.x_amzn_tls_version_and_cipher_suite.enabled`: send targets
    /// `x-amzn-tls-version` and `x-amzn-tls-cipher-suite` for HTTPS requests.
    #[serde(default)]
    pub tls_version_and_cipher_suite_headers: bool,
}

fn defensive() -> String {
    "defensive".into()
}
fn append() -> String {
    "append".into()
}

/// The admin listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// `host:port` to bind.
    pub listen: String,
    /// Base URL backends use to reach it (defaults to `http://<listen>`).
    #[serde(default)]
    pub base_url: Option<String>,
}

fn yes() -> bool {
    true
}
fn default_state_dir() -> PathBuf {
    PathBuf::from(".portcullis")
}
fn default_region() -> String {
    "us-east-1".into()
}
fn default_account_id() -> String {
    "000000000000".into()
}
fn default_bind() -> String {
    "0.0.0.0".into()
}
fn default_client_keep_alive() -> u64 {
    3600
}
fn default_idle_timeout() -> u64 {
    60
}
fn default_session_cookie_name() -> String {
    "AWSELBAuthSessionCookie".into()
}
fn default_scope() -> String {
    "openid".into()
}
fn default_session_timeout() -> u64 {
    604_800
}
fn default_tg_protocol() -> Protocol {
    Protocol::HTTP
}
fn default_token_validity() -> u64 {
    3600
}
