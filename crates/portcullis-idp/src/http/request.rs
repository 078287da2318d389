//! What the OAuth endpoints and the hosted UI both read from a request: its query, and a posted
//! form with the client's address ([`Post`]). Of `http` it imports only `responses` and
//! `client_ip`, leaves.

use super::responses::error_page;
use crate::domain::pool::Pool;
use crate::http::client_ip::ClientIp;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use std::sync::Arc;

/// Longest query string accepted.
pub const MAX_QUERY: usize = 8 * 1024;

/// A query's pairs, or the 414 page for one over [`MAX_QUERY`].
pub(crate) fn parse_query(raw: Option<&str>) -> Result<Vec<(String, String)>, Box<Response>> {
    let raw = raw.unwrap_or("");
    if raw.len() > MAX_QUERY {
        return Err(Box::new(error_page(
            StatusCode::URI_TOO_LONG,
            "invalid_request",
            "the request is too long",
        )));
    }
    Ok(form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect())
}

/// A query's raw text and its pairs, as the OAuth endpoints take it: refused with the 414 page
/// over [`MAX_QUERY`].
pub(crate) struct Query {
    /// The raw query string.
    pub(crate) raw: Option<String>,
    /// Its pairs, decoded.
    pub(crate) pairs: Vec<(String, String)>,
}

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Query, Response> {
        let raw = parts.uri.query().map(str::to_string);
        let pairs = parse_query(raw.as_deref()).map_err(|r| *r)?;
        Ok(Query { raw, pairs })
    }
}

/// A POST as the form handlers read it, extracted in the order the handlers once listed it:
/// the client's address, the query, the headers, then the body (within the body limit).
pub(crate) struct Post {
    /// The pool it was sent to.
    pub(crate) pool: Arc<Pool>,
    /// The client's address (`client_ip::ClientIp`).
    pub(crate) ip: IpAddr,
    /// The raw query string.
    pub(crate) query: Option<String>,
    /// The request headers.
    pub(crate) headers: HeaderMap,
    /// The body.
    pub(crate) body: Bytes,
}

impl FromRequest<Arc<Pool>> for Post {
    type Rejection = Response;

    async fn from_request(req: Request, pool: &Arc<Pool>) -> Result<Post, Response> {
        let (mut parts, body) = req.into_parts();
        let Ok(ClientIp(ip)) = ClientIp::from_request_parts(&mut parts, pool).await;
        let query = parts.uri.query().map(str::to_string);
        let headers = parts.headers.clone();
        let body = Bytes::from_request(Request::from_parts(parts, body), pool)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Post {
            pool: pool.clone(),
            ip,
            query,
            headers,
            body,
        })
    }
}
