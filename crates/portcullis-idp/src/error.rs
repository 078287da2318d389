//! The errors of user and client management, named after Cognito's exceptions so the admin API
//! answers as Cognito does; the hosted UI shows [`IdpError::message`].

use crate::store::StoreError;

/// A failed user-pool operation. The variant is the stable code (Cognito's exception name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdpError {
    /// Wrong credentials, disabled user, forbidden operation.
    #[error("{0}")]
    NotAuthorized(String),
    /// No such user (only when the client's `prevent_user_existence_errors` is `LEGACY`, or for
    /// admin operations).
    #[error("User does not exist.")]
    UserNotFound,
    /// The user name is taken.
    #[error("User account already exists")]
    UsernameExists,
    /// The password breaks the policy.
    #[error("Password does not conform to policy: {0}")]
    InvalidPassword(String),
    /// A parameter is missing or malformed.
    #[error("{0}")]
    InvalidParameter(String),
    /// A named resource (pool, client, group, resource server) does not exist.
    #[error("{0}")]
    ResourceNotFound(String),
    /// The group exists already.
    #[error("A group with the name {0} already exists.")]
    GroupExists(String),
    /// A client asked for a scope no resource server defines.
    #[error("{0}")]
    ScopeDoesNotExist(String),
    /// The OAuth flows of a client are inconsistent.
    #[error("{0}")]
    InvalidOAuthFlow(String),
    /// A quota was reached (second secret, ...).
    #[error("{0}")]
    LimitExceeded(String),
    /// The confirmation code is wrong.
    #[error("Invalid verification code provided, please try again.")]
    CodeMismatch,
    /// The confirmation code expired (or was used).
    #[error("Invalid code provided, please request a code again.")]
    ExpiredCode,
    /// Too many wrong codes.
    #[error("Too many failed attempts.")]
    TooManyFailedAttempts,
    /// The user has not confirmed the sign-up.
    #[error("User is not confirmed.")]
    UserNotConfirmed,
    /// An admin reset the password; the user must set a new one with a code.
    #[error("Password reset required for the user")]
    PasswordResetRequired,
    /// The access token is not valid for this call.
    #[error("{0}")]
    InvalidToken(String),
    /// Refused before any secret was checked: a rate limit, a full hashing queue, or another
    /// check of the same user in flight (Cognito's `TooManyRequestsException`, HTTP 400).
    #[error("Too many requests. Try again shortly.")]
    TooManyRequests,
    /// An identity provider of that name (or with that identifier) exists already.
    #[error("{0}")]
    DuplicateProvider(String),
    /// The operation exists in Cognito but not here.
    #[error("{0}")]
    Unsupported(String),
    /// Storage failed (details are logged, not returned).
    #[error("Internal error")]
    Internal,
}

impl IdpError {
    /// Cognito's exception name (`__type`).
    pub fn exception(&self) -> &'static str {
        match self {
            IdpError::NotAuthorized(_) | IdpError::InvalidToken(_) => "NotAuthorizedException",
            IdpError::UserNotFound => "UserNotFoundException",
            IdpError::UsernameExists => "UsernameExistsException",
            IdpError::InvalidPassword(_) => "InvalidPasswordException",
            IdpError::InvalidParameter(_) => "InvalidParameterException",
            IdpError::ResourceNotFound(_) => "ResourceNotFoundException",
            IdpError::GroupExists(_) => "GroupExistsException",
            IdpError::ScopeDoesNotExist(_) => "ScopeDoesNotExistException",
            IdpError::InvalidOAuthFlow(_) => "InvalidOAuthFlowException",
            IdpError::LimitExceeded(_) => "LimitExceededException",
            IdpError::CodeMismatch => "CodeMismatchException",
            IdpError::ExpiredCode => "ExpiredCodeException",
            IdpError::TooManyFailedAttempts => "TooManyFailedAttemptsException",
            IdpError::UserNotConfirmed => "UserNotConfirmedException",
            IdpError::PasswordResetRequired => "PasswordResetRequiredException",
            IdpError::DuplicateProvider(_) => "DuplicateProviderException",
            IdpError::Unsupported(_) => "UnsupportedOperationException",
            IdpError::TooManyRequests => "TooManyRequestsException",
            IdpError::Internal => "InternalErrorException",
        }
    }

    /// The HTTP status of the JSON answer (AWS JSON 1.1: 400 for the caller's errors).
    pub fn status(&self) -> u16 {
        match self {
            IdpError::Internal => 500,
            _ => 400,
        }
    }

    /// The message shown to people.
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// `NotAuthorizedException` with Cognito's wording for bad credentials.
    pub fn bad_credentials() -> IdpError {
        IdpError::NotAuthorized("Incorrect username or password.".into())
    }
}

impl From<StoreError> for IdpError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        IdpError::Internal
    }
}
