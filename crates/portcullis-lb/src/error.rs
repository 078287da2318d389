//! One error type for the request path. Its `source` says who caused it (the client, a target, or
//! us); its kind decides the status code and the access-log reason, in one place.

use portcullis_auth::AuthError;

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
