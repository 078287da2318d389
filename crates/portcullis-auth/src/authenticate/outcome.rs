//! What the authenticate action decides for a request: forward with headers, or answer.

use crate::error::AuthError;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response};
use std::sync::Arc;

/// The identity headers added for a target: one allocation per session, shared by its requests
/// (`Arc::default()`, empty, allocates nothing).
pub type ClaimHeaders = Arc<[(HeaderName, HeaderValue)]>;

/// What to do with the request.
#[derive(Debug)]
pub enum Outcome {
    /// Continue to the terminal action.
    Forward {
        /// Headers to add to the upstream request (claims, or none for `allow`).
        headers: ClaimHeaders,
        /// `Set-Cookie` values for the response (refreshed or cleared session).
        set_cookies: Vec<String>,
        /// Logged as `error_reason` (an invalid cookie under `allow`).
        error: Option<AuthError>,
        /// Whether claims were added.
        authenticated: bool,
    },
    /// Answer without reaching a target.
    Respond {
        /// The answer.
        response: Response<Bytes>,
        /// Logged as `error_reason`.
        error: Option<AuthError>,
    },
    /// Answer with the balancer's own error page for `status` (the load balancer renders it).
    Error {
        /// 401, 403, 500 or 561.
        status: u16,
        /// Logged as `error_reason`.
        error: Option<AuthError>,
        /// `Set-Cookie` values for the answer (shards of an unusable session cleared).
        set_cookies: Vec<String>,
    },
}
