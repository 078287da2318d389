//! What every connection and request of a running balancer shares: the current snapshot, keys,
//! clients, log and clock.

use crate::access_log::AccessLog;
use crate::metrics::Metrics;
use crate::snapshot::{Identity, Snapshot};
use crate::upstream::Upstreams;
use arc_swap::ArcSwap;
use portcullis_auth::Authenticator;
use std::sync::Arc;
use std::time::Duration;

/// What the request path shares.
pub struct Shared {
    /// The current config, swapped whole.
    pub snapshot: ArcSwap<Snapshot>,
    /// Authenticate actions' keys and signer.
    pub auth: Arc<Authenticator>,
    /// The key of the stickiness cookies (`state_dir/lb/mac-key`).
    pub sticky_key: portcullis_auth::keys::MacKey,
    /// Pooled connections to targets.
    pub upstream: Upstreams,
    /// ALB-format access log.
    pub access_log: AccessLog,
    /// Names and ARNs.
    pub identity: Identity,
    /// `idle_timeout.timeout_seconds`.
    pub idle_timeout: Duration,
    /// `client_keep_alive.seconds`: a client connection's longest life.
    pub client_keep_alive: Duration,
    /// `routing.http2.enabled`: HTTP/2 offered on HTTPS listeners.
    pub http2: bool,
    /// ALB's metrics, when an admin listener serves them.
    pub metrics: Option<Arc<Metrics>>,
    /// The balancer's clock (slow start, draining, stickiness, health-check intervals): the
    /// system clock, which tests move instead of sleeping.
    pub clock: Arc<portcullis_core::Clock>,
}
