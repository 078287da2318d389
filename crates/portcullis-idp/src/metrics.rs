//! The identity provider's Prometheus counters (what was shed, throttled and hashed), shared by
//! every pool of a process and served with the balancer's at `<admin>/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// One pool.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// The pool's config name.
    pub pool: String,
}

/// One pool and the limit that refused.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    /// The pool's config name.
    pub pool: String,
    /// `per_ip`, `per_user` or `failed_client_auth`.
    pub limit: String,
}

/// Counters of every pool of the process.
pub struct IdpMetrics {
    registry: Registry,
    shed: Family<PoolLabels, Counter>,
    limited: Family<LimitLabels, Counter>,
    verifications: Family<PoolLabels, Counter>,
    backchannel: [Family<PoolLabels, Counter>; 3],
}

impl Default for IdpMetrics {
    fn default() -> Self {
        IdpMetrics::new()
    }
}

impl IdpMetrics {
    /// Registers the counters.
    pub fn new() -> IdpMetrics {
        let mut registry = Registry::default();
        let shed = Family::<PoolLabels, Counter>::default();
        let limited = Family::<LimitLabels, Counter>::default();
        let verifications = Family::<PoolLabels, Counter>::default();
        registry.register(
            "portcullis_idp_shed",
            "Requests refused at once because the password-hashing queue was full (503, TooManyRequestsException)",
            shed.clone(),
        );
        registry.register(
            "portcullis_idp_rate_limited",
            "Requests refused by a rate limit of secret checks, by limit",
            limited.clone(),
        );
        registry.register(
            "portcullis_idp_password_verifications",
            "Passwords checked against a stored argon2id hash",
            verifications.clone(),
        );
        let backchannel: [Family<PoolLabels, Counter>; 3] = Default::default();
        for (f, (name, help)) in backchannel.iter().zip([
            (
                "portcullis_idp_backchannel_logout_sent",
                "Logout tokens a client accepted (2xx)",
            ),
            (
                "portcullis_idp_backchannel_logout_failed",
                "Logout tokens given up after every attempt",
            ),
            (
                "portcullis_idp_backchannel_logout_dropped",
                "Logout tokens dropped because the sending queue was full",
            ),
        ]) {
            registry.register(name, help, f.clone());
        }
        IdpMetrics {
            registry,
            backchannel,
            shed,
            limited,
            verifications,
        }
    }

    /// The shed counter of a pool.
    pub fn shed(&self, pool: &str) -> Counter {
        self.shed
            .get_or_create(&PoolLabels { pool: pool.into() })
            .clone()
    }

    /// The password-verification counter of a pool.
    pub fn verifications(&self, pool: &str) -> Counter {
        self.verifications
            .get_or_create(&PoolLabels { pool: pool.into() })
            .clone()
    }

    /// The back-channel logout counters of a pool.
    pub fn backchannel(&self, pool: &str) -> crate::domain::backchannel::Counters {
        let get = |i: usize| {
            self.backchannel[i]
                .get_or_create(&PoolLabels { pool: pool.into() })
                .clone()
        };
        crate::domain::backchannel::Counters {
            sent: get(0),
            failed: get(1),
            dropped: get(2),
        }
    }

    /// Counts a request refused by `limit`.
    pub fn limited(&self, pool: &str, limit: &str) {
        self.limited
            .get_or_create(&LimitLabels {
                pool: pool.into(),
                limit: limit.into(),
            })
            .inc();
    }

    /// Appends the counters in the text format, without the closing `# EOF` (the caller
    /// encodes it after every registry it serves).
    pub fn encode(&self, out: &mut String) -> std::fmt::Result {
        prometheus_client::encoding::text::encode_registry(out, &self.registry)
    }
}
