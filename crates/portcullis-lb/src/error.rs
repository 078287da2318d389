//! One error type for the request path. Its `source` says who caused it (the client, a target, or
//! us); its kind decides the status code and the access-log reason, in one place.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, SERVER, SET_COOKIE};
use http::{HeaderValue, Response, StatusCode};
use portcullis_auth::AuthError;

/// One of ALB's HTML error pages, with `title` (such as `502 Bad Gateway`) as a literal.
macro_rules! alb_page {
    ($title:literal) => {
        concat!(
            "<html>\r\n<head><title>",
            $title,
            "</title></head>\r\n<body>\r\n<center><h1>",
            $title,
            "</h1></center>\r\n</body>\r\n</html>\r\n"
        )
    };
}

/// The page for each status the balancer answers with itself, as ALB words it.
fn static_page(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => alb_page!("400 Bad Request"),
        401 => alb_page!("401 Authorization Required"),
        403 => alb_page!("403 Forbidden"),
        405 => alb_page!("405 Method Not Allowed"),
        413 => alb_page!("413 Payload Too Large"),
        414 => alb_page!("414 URI Too Long"),
        463 => alb_page!("463 Error"),
        464 => alb_page!("464 Error"),
        500 => alb_page!("500 Internal Server Error"),
        502 => alb_page!("502 Bad Gateway"),
        503 => alb_page!("503 Service Unavailable"),
        504 => alb_page!("504 Gateway Timeout"),
        561 => alb_page!("561 Unauthorized"),
        _ => return None,
    })
}

/// The page for a status the balancer never sends itself (kept for completeness: built per call).
fn rendered_page(status: u16) -> String {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|c| c.canonical_reason())
        .unwrap_or("Error");
    let title = format!("{status} {reason}");
    format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n"
    )
}

/// The balancer's own answer for `status`: ALB's small HTML page, `Server: awselb/2.0`, not
/// cached. The pages are static bytes; nothing is formatted per request.
pub fn page(status: u16) -> Response<Bytes> {
    let body = match static_page(status) {
        Some(p) => Bytes::from_static(p.as_bytes()),
        None => Bytes::from(rendered_page(status)),
    };
    let mut response = Response::new(body);
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
    h.insert(SERVER, HeaderValue::from_static("awselb/2.0"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// [`page`] with `Set-Cookie` values (an authenticate action's error that clears the session);
/// a value that is not a valid header is left out.
pub fn page_with_cookies(status: u16, set_cookies: Vec<String>) -> Response<Bytes> {
    let mut response = page(status);
    for c in set_cookies {
        if let Ok(v) = HeaderValue::try_from(c) {
            response.headers_mut().append(SET_COOKIE, v);
        }
    }
    response
}

/// Who caused an error (decides blame in logs and, later, retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The client sent something we refuse.
    Downstream,
    /// A target failed.
    Upstream,
    /// Our own fault.
    Internal,
}

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// TRACE is refused (405).
    MethodNotAllowed,
    /// More than 30 addresses in `X-Forwarded-For` (463).
    TooManyForwardedFor,
    /// The request is malformed (400).
    BadRequest,
    /// The request line is over 16 KB (414).
    UriTooLong,
    /// A target's response headers are over 32 KB (502).
    ResponseHeadersTooLarge,
    /// The target group has no targets (503).
    NoTargets,
    /// The target refused or reset the connection (502).
    ConnectFailed,
    /// The connection to the target timed out (504).
    ConnectTimeout,
    /// The target did not answer within the idle timeout (504).
    TargetTimeout,
    /// The target closed the connection or answered malformed (502).
    BadTargetResponse,
    /// The request does not fit the target group's protocol version (464).
    ProtocolMismatch,
    /// The target was removed and its deregistration delay ended mid-request (502).
    Deregistered,
    /// A Lambda target failed, was sent too much, or was asked to upgrade: ALB's `Lambda*` reason.
    /// 413 for `LambdaRequestTooLarge`, 400 for `LambdaWebsocketNotSupported`, else 502.
    Lambda(&'static str),
    /// A redirect's URL would exceed 8 KB (500).
    RedirectTooLong,
    /// The authenticate action failed.
    Auth(AuthError),
    /// A bug or resource failure (500).
    Internal,
}

/// An error on the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Who caused it.
    pub source: Source,
}

impl ProxyError {
    /// A client error.
    pub fn downstream(kind: ErrorKind) -> Self {
        ProxyError {
            kind,
            source: Source::Downstream,
        }
    }
    /// A target error.
    pub fn upstream(kind: ErrorKind) -> Self {
        ProxyError {
            kind,
            source: Source::Upstream,
        }
    }
    /// Our error.
    pub fn internal(kind: ErrorKind) -> Self {
        ProxyError {
            kind,
            source: Source::Internal,
        }
    }

    /// The status the client gets.
    pub fn status(&self) -> u16 {
        match self.kind {
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::TooManyForwardedFor => 463,
            ErrorKind::BadRequest => 400,
            ErrorKind::UriTooLong => 414,
            ErrorKind::ResponseHeadersTooLarge => 502,
            ErrorKind::NoTargets => 503,
            ErrorKind::ConnectFailed | ErrorKind::BadTargetResponse | ErrorKind::Deregistered => {
                502
            }
            ErrorKind::ProtocolMismatch => 464,
            ErrorKind::Lambda("LambdaRequestTooLarge") => 413,
            ErrorKind::Lambda("LambdaWebsocketNotSupported") => 400,
            ErrorKind::Lambda(_) => 502,
            ErrorKind::ConnectTimeout | ErrorKind::TargetTimeout => 504,
            ErrorKind::RedirectTooLong | ErrorKind::Internal => 500,
            ErrorKind::Auth(a) => a.status(),
        }
    }

    /// The access-log `error_reason`, where ALB has one.
    pub fn reason(&self) -> Option<&'static str> {
        match self.kind {
            ErrorKind::Auth(a) => a.reason(),
            ErrorKind::Lambda(reason) => Some(reason),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pages as `portcullis_auth::authenticate::error_page` built them before they moved here.
    fn reference_page(status: u16) -> String {
        let title = match status {
            401 => "401 Authorization Required".to_string(),
            561 => "561 Unauthorized".to_string(),
            s => {
                let reason = StatusCode::from_u16(s)
                    .ok()
                    .and_then(|c| c.canonical_reason())
                    .unwrap_or("Error");
                format!("{s} {reason}")
            }
        };
        format!(
            "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n"
        )
    }

    #[test]
    fn pages_are_albs_byte_for_byte() {
        for status in (100..1000).chain([0, 99, 1000, 65535]) {
            let p = page(status);
            assert_eq!(p.body(), reference_page(status).as_bytes(), "{status}");
            let expected =
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(p.status(), expected);
            let headers: Vec<_> = p
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
                .collect();
            assert_eq!(
                headers,
                [
                    ("content-type", "text/html"),
                    ("server", "awselb/2.0"),
                    ("cache-control", "no-store")
                ]
            );
        }
        // Every status the balancer sends itself is a static page.
        let own = [
            400, 401, 403, 405, 413, 414, 463, 464, 500, 502, 503, 504, 561,
        ];
        assert!(own.iter().all(|s| static_page(*s).is_some()));
        let kinds = [
            ErrorKind::MethodNotAllowed,
            ErrorKind::TooManyForwardedFor,
            ErrorKind::BadRequest,
            ErrorKind::UriTooLong,
            ErrorKind::ResponseHeadersTooLarge,
            ErrorKind::NoTargets,
            ErrorKind::ConnectFailed,
            ErrorKind::ConnectTimeout,
            ErrorKind::TargetTimeout,
            ErrorKind::BadTargetResponse,
            ErrorKind::ProtocolMismatch,
            ErrorKind::Deregistered,
            ErrorKind::Lambda("LambdaRequestTooLarge"),
            ErrorKind::Lambda("LambdaWebsocketNotSupported"),
            ErrorKind::Lambda("LambdaUnhandled"),
            ErrorKind::RedirectTooLong,
            ErrorKind::Internal,
            ErrorKind::Auth(AuthError::Forbidden),
            ErrorKind::Auth(AuthError::InvalidGrant),
            ErrorKind::Auth(AuthError::Unhandled),
            ErrorKind::Auth(AuthError::InvalidCookie),
        ];
        for k in kinds {
            let status = ProxyError::internal(k).status();
            assert!(static_page(status).is_some(), "{k:?}: {status}");
        }
        let p = page_with_cookies(401, vec!["a=; Max-Age=0".into(), "bad\nvalue".into()]);
        let cookies: Vec<_> = p.headers().get_all(SET_COOKIE).iter().collect();
        assert_eq!(cookies, ["a=; Max-Age=0"]);
    }

    #[test]
    fn statuses() {
        assert_eq!(
            ProxyError::upstream(ErrorKind::ConnectTimeout).status(),
            504
        );
        assert_eq!(ProxyError::upstream(ErrorKind::ConnectFailed).status(), 502);
        assert_eq!(ProxyError::internal(ErrorKind::NoTargets).status(), 503);
        assert_eq!(
            ProxyError::downstream(ErrorKind::TooManyForwardedFor).status(),
            463
        );
        for (reason, status) in [
            ("LambdaRequestTooLarge", 413),
            ("LambdaWebsocketNotSupported", 400),
            ("LambdaUnhandled", 502),
        ] {
            let e = ProxyError::upstream(ErrorKind::Lambda(reason));
            assert_eq!((e.status(), e.reason()), (status, Some(reason)));
        }
        let a = ProxyError::downstream(ErrorKind::Auth(AuthError::InvalidStateParam));
        assert_eq!(
            (a.status(), a.reason()),
            (401, Some("AuthInvalidStateParam"))
        );
    }
}
