//! Authentication errors, named after ALB's access-log `error_reason` codes and mapped to status
//! codes in one place.

/// Which ALB metric an error counts toward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMetric {
    /// `ELBAuthError`: misconfiguration, IdP unreachable, internal error.
    Error,
    /// `ELBAuthFailure`: the IdP or the browser sent something invalid.
    Failure,
    /// `ELBAuthUserClaimsSizeExceeded`.
    ClaimsSizeExceeded,
}

/// Why an authenticate action did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// No Host header, so no `redirect_uri` can be built.
    MissingHostHeader,
    /// Callback without the `AWSALBAuthNonce` cookie.
    MissingNonce,
    /// Callback whose nonce cookie is not the one `state` was made for.
    InvalidNonce,
    /// Callback without `state`.
    MissingStateParam,
    /// `state` tampered, unreadable, for another rule, or older than 15 minutes.
    InvalidStateParam,
    /// Callback without `code`.
    MissingCodeParam,
    /// The IdP redirected back with `error=`.
    IdpDenied,
    /// The session cookie could not be used (treated as no session).
    InvalidCookie,
    /// The token endpoint could not be reached in time.
    TokenEpRequestTimeout,
    /// The token endpoint answered non-2xx.
    TokenEpRequestFailed,
    /// The token endpoint said the code or refresh token is invalid or used.
    InvalidGrant,
    /// The token response is malformed or has no ID token.
    InvalidTokenResponse,
    /// The ID token failed its checks.
    InvalidIdToken,
    /// The userinfo endpoint could not be reached in time.
    UserinfoEpRequestTimeout,
    /// The userinfo endpoint answered non-2xx.
    UserinfoEpRequestFailed,
    /// The userinfo response is not a JSON object with `sub`.
    InvalidUserinfoResponse,
    /// Claims plus access token exceed 11 KB.
    UserinfoResponseSizeExceeded,
    /// Signed in, but the rule's `require_*` settings do not admit the user (403).
    Forbidden,
    /// The session was ended at the provider (sign-out, disable, back-channel logout): treated
    /// as no session.
    SessionRevoked,
    /// A back-channel logout token was refused (400).
    InvalidLogoutToken,
    /// Anything else.
    Unhandled,
}

impl AuthError {
    /// The access-log `error_reason`, or `None` where ALB logs `-`.
    pub fn reason(self) -> Option<&'static str> {
        use AuthError::*;
        Some(match self {
            MissingHostHeader => "AuthMissingHostHeader",
            MissingNonce => "AuthMissingAWSALBAuthNonce",
            InvalidNonce => "AuthInvalidAWSALBAuthNonce",
            MissingStateParam => "AuthMissingStateParam",
            InvalidStateParam => "AuthInvalidStateParam",
            MissingCodeParam => "AuthMissingCodeParam",
            IdpDenied | Forbidden => return None,
            InvalidCookie => "AuthInvalidCookie",
            SessionRevoked => "AuthSessionRevoked",
            InvalidLogoutToken => "AuthInvalidLogoutToken",
            TokenEpRequestTimeout => "AuthTokenEpRequestTimeout",
            TokenEpRequestFailed => "AuthTokenEpRequestFailed",
            InvalidGrant => "AuthInvalidGrantError",
            InvalidTokenResponse => "AuthInvalidTokenResponse",
            InvalidIdToken => "AuthInvalidIdToken",
            UserinfoEpRequestTimeout => "AuthUserinfoEpRequestTimeout",
            UserinfoEpRequestFailed => "AuthUserinfoEpRequestFailed",
            InvalidUserinfoResponse => "AuthInvalidUserinfoResponse",
            UserinfoResponseSizeExceeded => "AuthUserinfoResponseSizeExceeded",
            Unhandled => "AuthUnhandledException",
        })
    }

    /// The status the client gets (spec §2.10 and the design's decisions).
    pub fn status(self) -> u16 {
        use AuthError::*;
        match self {
            MissingHostHeader
            | MissingNonce
            | InvalidNonce
            | MissingStateParam
            | InvalidStateParam
            | MissingCodeParam
            | IdpDenied
            | InvalidCookie
            | SessionRevoked
            | InvalidTokenResponse
            | InvalidIdToken
            | InvalidUserinfoResponse => 401,
            Forbidden => 403,
            InvalidLogoutToken => 400,
            TokenEpRequestFailed | InvalidGrant | UserinfoEpRequestFailed => 561,
            TokenEpRequestTimeout
            | UserinfoEpRequestTimeout
            | UserinfoResponseSizeExceeded
            | Unhandled => 500,
        }
    }

    /// The metric it counts toward.
    pub fn metric(self) -> AuthMetric {
        use AuthError::*;
        match self {
            MissingHostHeader
            | TokenEpRequestTimeout
            | TokenEpRequestFailed
            | UserinfoEpRequestTimeout
            | UserinfoEpRequestFailed
            | Unhandled => AuthMetric::Error,
            UserinfoResponseSizeExceeded => AuthMetric::ClaimsSizeExceeded,
            _ => AuthMetric::Failure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AuthError::*;

    #[test]
    fn statuses_follow_the_spec_table() {
        assert_eq!(MissingHostHeader.status(), 401);
        assert_eq!(InvalidStateParam.status(), 401);
        assert_eq!(TokenEpRequestFailed.status(), 561);
        assert_eq!(TokenEpRequestTimeout.status(), 500);
        assert_eq!(UserinfoResponseSizeExceeded.status(), 500);
        assert_eq!(MissingNonce.reason(), Some("AuthMissingAWSALBAuthNonce"));
        assert_eq!(IdpDenied.reason(), None);
    }
}
