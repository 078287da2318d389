//! The load balancer's authentication: `authenticate-cognito` / `authenticate-oidc` as ALB does
//! them. It takes request parts and returns "forward with these headers" or "answer with this
//! response", so every path is testable without sockets.

pub mod authenticate;
pub mod backchannel;
pub mod claims_header;
pub mod error;
#[doc(hidden)]
pub mod fixture;
mod forward_cache;
pub mod jwt_validation;
pub mod keys;
pub mod oidc;
pub mod revocation;
pub mod session_cookie;
pub mod state;

pub use authenticate::{AuthAction, AuthObserver, Authenticator, Outcome};
pub use error::{AuthError, AuthMetric};
pub use keys::AuthKeys;
pub use oidc::{Provider, ProviderConfig};
