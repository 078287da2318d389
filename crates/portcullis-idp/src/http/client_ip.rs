//! The client address of a request, for the rate limits.

use crate::domain::pool::Pool;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// The client address of a request: the TCP peer of the pool's listener, or, when that peer is
/// one of `rate_limits.trusted_proxies`, the last address in `X-Forwarded-For` that is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<Arc<Pool>> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        pool: &Arc<Pool>,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let Some(peer) = peer else {
            // Served without connection info (see `serve`): every client shares one bucket.
            return Ok(ClientIp(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        };
        let trusted = &pool.limits.config.trusted_proxies;
        let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
        if !is_trusted(&peer) {
            return Ok(ClientIp(peer));
        }
        let forwarded: Vec<IpAddr> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .map(|a| a.parse::<IpAddr>().ok())
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default();
        Ok(ClientIp(
            forwarded
                .into_iter()
                .rev()
                .find(|ip| !is_trusted(ip))
                .unwrap_or(peer),
        ))
    }
}
