//! Test kit: starts a real Portcullis (load balancer, user pool, admin listener) and real backends
//! on port 0 for each test, with a config written for the ports the OS gave. By topic: the
//! servers ([`Kit`], [`KitBuilder`]), the sign-in flows, the clients and the backends.

mod backends;
mod clients;
mod login;
mod servers;

pub use backends::*;
pub use clients::*;
pub use login::*;
pub use servers::*;

/// The password of the seeded users (`alice`, and `bob` on a node).
pub const PASSWORD: &str = "Correct-horse-9!";
/// The secret of client `oidc-web`, which the `/oidc/*` and `/disc/*` rules use.
pub const OIDC_SECRET: &str = "oidc-web-secret-0123456789abcdef";
/// The pool's access key for signed (admin) API calls.
pub const ACCESS_KEY_ID: &str = "AKIAPORTCULLISTEST01";
/// The secret of [`ACCESS_KEY_ID`].
pub const ACCESS_SECRET: &str = "kit-secret-access-key-0123456789abcdefgh";
/// Rate limits so high that tests of something else, from one address, never meet them.
pub const NO_RATE_LIMITS: &str = "rate_limits = { per_ip = { burst = 10000, per_minute = 60000 }, \
    per_user = { burst = 10000, per_minute = 60000 } }";
