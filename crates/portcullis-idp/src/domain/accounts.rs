//! The life of a user: admin creation with a temporary password, sign-up and confirmation, forgot
//! password, the `NEW_PASSWORD_REQUIRED` challenge, attribute changes, global sign-out, and the
//! API sign-ins (`USER_PASSWORD_AUTH`, `REFRESH_TOKEN_AUTH`). Shared by the admin API and the
//! hosted UI; every rule (policy, statuses, code expiry and attempts) is enforced here.

use crate::domain::federation::EXTERNAL_PROVIDER;
use crate::domain::grants::Tokens;
use crate::domain::messages::{Message, Purpose, mask};
use crate::domain::pool::Pool;
use crate::domain::scopes::PROFILE_ATTRIBUTES;
use crate::domain::secrets::{constant_time_eq, random_token, sha256_hex};
use crate::error::IdpError;
use crate::store::{RefreshRecord, UserRecord};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use serde_json::{Map, Value};

mod admin;
mod attributes;
mod challenges;
mod codes;
mod mfa;
mod passwords;
mod sign_in;
mod sign_up;

pub use mfa::SetupRefused;

/// Sign-up confirmation codes live 24 hours (Cognito).
pub const SIGN_UP_CODE_LIFETIME: i64 = 24 * 3600;
/// Forgot-password codes live 1 hour (Cognito).
pub const RESET_CODE_LIFETIME: i64 = 3600;
/// Guesses a code allows before it is void; also the attempts a user has per kind of code in a
/// [`CODE_ATTEMPT_WINDOW`], however often the code is re-issued.
pub const MAX_CODE_ATTEMPTS: i64 = 5;
/// The window of a user's code-attempt budget (1 hour): re-issuing a code does not restore it.
pub const CODE_ATTEMPT_WINDOW: i64 = 3600;
/// Attribute verification codes live 24 hours (Cognito).
pub const VERIFY_CODE_LIFETIME: i64 = 24 * 3600;
/// Largest attribute value (Cognito: 2048 bytes).
pub const MAX_ATTRIBUTE_VALUE: usize = 2048;

const TICKET_SIGN_UP: &str = "sign_up";
const TICKET_RESET: &str = "reset";
const TICKET_CHALLENGE: &str = "challenge";
const TICKET_TEMPORARY: &str = "temporary_password";
/// The verification code of a changed `email` or `phone_number`.
const TICKET_VERIFY_EMAIL: &str = "verify:email";
const TICKET_VERIFY_PHONE: &str = "verify:phone_number";
/// The document holding the key simulated deliveries are derived from.
const DECOY_KEY_KIND: &str = "secret";
const DECOY_KEY_ID: &str = "simulated_delivery";

/// The addresses a user can verify, with their flag and the ticket of their code.
const VERIFIABLE: [(&str, &str, &str); 2] = [
    ("email", "email_verified", TICKET_VERIFY_EMAIL),
    ("phone_number", "phone_number_verified", TICKET_VERIFY_PHONE),
];

/// The budget row counting a user's attempts at one kind of one-time secret.
pub(crate) fn attempts_key(ticket: &str) -> String {
    format!("attempts:{ticket}")
}

/// Cognito's answer when a user's attempt budget is spent.
pub(crate) fn attempt_limit() -> IdpError {
    IdpError::LimitExceeded("Attempt limit exceeded, please try after some time.".into())
}

/// How a code is stored: its hash, bound to the address it was sent to when there is one.
fn code_digest(code: &str, bound: &str) -> String {
    if bound.is_empty() {
        sha256_hex(code.trim())
    } else {
        sha256_hex(&format!("{}\n{bound}", code.trim()))
    }
}

/// Who writes attributes: an administrator (may set `*_verified`), or the user through an app
/// client (never `*_verified`, only the client's `write_attributes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer<'a> {
    /// `AdminUpdateUserAttributes`, `AdminDeleteUserAttributes`, the CLI.
    Admin,
    /// The user, through this app client.
    User(&'a str),
}

/// Standard attributes a user may have (OIDC's, as Cognito's schema): the profile attributes,
/// then these six.
pub const STANDARD_ATTRIBUTES: [&str; 20] = {
    let rest = [
        "address",
        "email",
        "phone_number",
        "email_verified",
        "phone_number_verified",
        "sub",
    ];
    let mut all = [""; 20];
    assert!(PROFILE_ATTRIBUTES.len() + rest.len() == all.len());
    let mut i = 0;
    while i < all.len() {
        all[i] = if i < PROFILE_ATTRIBUTES.len() {
            PROFILE_ATTRIBUTES[i]
        } else {
            rest[i - PROFILE_ATTRIBUTES.len()]
        };
        i += 1;
    }
    all
};

/// Where a code was sent (`CodeDeliveryDetails`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Masked address.
    pub destination: String,
    /// `EMAIL` or `SMS`.
    pub medium: &'static str,
    /// `email` or `phone_number`.
    pub attribute: &'static str,
}

/// What a password sign-in through the API leads to.
#[derive(Debug)]
pub enum AuthOutcome {
    /// Signed in.
    Tokens(Tokens),
    /// A challenge (`NEW_PASSWORD_REQUIRED`, `SOFTWARE_TOKEN_MFA`, `MFA_SETUP`) with its session.
    Challenge {
        /// The challenge name.
        name: &'static str,
        /// The opaque `Session`.
        session: String,
        /// The user (for `ChallengeParameters`).
        user: Box<UserRecord>,
    },
}

/// A six-digit code; fails (`Internal`) only if the system random source does.
fn numeric_code() -> Result<String, IdpError> {
    let mut b = [0u8; 4];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| IdpError::Internal)?;
    Ok(format!("{:06}", u32::from_le_bytes(b) % 1_000_000))
}

/// A temporary password that satisfies any policy Cognito allows (≤ 99 characters).
fn temporary_password(min: usize) -> Result<String, IdpError> {
    let body = random_token(12)?;
    let mut pw = format!("Aa1!{body}");
    while pw.len() < min {
        pw.push_str(&random_token(6)?);
    }
    Ok(pw)
}

/// A user as the pool creates one: a fresh `sub`, enabled (the store dates it).
pub(crate) fn new_user(
    username: &str,
    password_hash: String,
    status: &str,
    attributes: Map<String, Value>,
) -> UserRecord {
    UserRecord {
        sub: uuid::Uuid::new_v4().to_string(),
        username: username.to_string(),
        password_hash,
        status: status.into(),
        enabled: true,
        attributes,
        created_at: 0,
        updated_at: 0,
    }
}

/// Where a reset code may go: only a verified address (as Cognito), so an address a user set (or
/// an attacker holding the user's session set) cannot receive the keys to the account.
fn verified_delivery_of(user: &UserRecord) -> Option<(Delivery, String)> {
    let verified = |flag: &str| user.attributes.get(flag).and_then(Value::as_str) == Some("true");
    let mut u = user.clone();
    if !verified("email_verified") {
        u.attributes.remove("email");
    }
    if !verified("phone_number_verified") {
        u.attributes.remove("phone_number");
    }
    delivery_of(&u)
}

/// Where a confirmation code goes: the address it will verify (email first).
fn delivery_of(user: &UserRecord) -> Option<(Delivery, String)> {
    let s = |k: &str| {
        user.attributes
            .get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    if let Some(email) = s("email") {
        return Some((
            Delivery {
                destination: mask(&email),
                medium: "EMAIL",
                attribute: "email",
            },
            email,
        ));
    }
    s("phone_number").map(|p| {
        (
            Delivery {
                destination: mask(&p),
                medium: "SMS",
                attribute: "phone_number",
            },
            p,
        )
    })
}

/// The current value of an address a user can verify (`email`, `phone_number`).
fn verifiable_value(u: &UserRecord, attr: &str) -> Result<String, IdpError> {
    if !VERIFIABLE.iter().any(|(a, _, _)| *a == attr) {
        return Err(IdpError::InvalidParameter(
            "Invalid attribute name: only email and phone_number can be verified".into(),
        ));
    }
    u.attributes
        .get(attr)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| IdpError::InvalidParameter(format!("The user has no {attr}")))
}

/// `SECRET_HASH`: Base64(HMAC-SHA256(client secret, username + client id)).
pub fn secret_hash(secret: &str, username: &str, client_id: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = aws_lc_rs::hmac::sign(&key, format!("{username}{client_id}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// Failures older than this are forgotten (Cognito: 15 minutes without attempts).
pub const LOCKOUT_RESET: i64 = 15 * 60;

/// The longest lockout (Cognito: about 15 minutes).
pub const LOCKOUT_MAX: i64 = 15 * 60;

/// Longest accepted password (Cognito: 256).
pub const MAX_PASSWORD_LEN: usize = 256;

/// How long a password check holds its user's in-flight mark in the store (seconds): it is
/// released when the check ends, so this only matters when a node dies mid-check.
pub const CHECK_LEASE: i64 = 60;

/// Why a sign-in failed (the page shows one generic message for all of them).
#[derive(Debug, PartialEq, Eq)]
pub enum SignInError {
    /// Wrong password (or, with existence errors prevented, an unknown user).
    NotAuthorized,
    /// No such user (shown only to clients with `prevent_user_existence_errors = LEGACY`).
    UnknownUser,
    /// Locked after repeated failures ("Password attempts exceeded"); the password was not checked.
    Locked,
    /// Right password, but the user is disabled.
    Disabled,
    /// Right password, sign-up not confirmed.
    NotConfirmed,
    /// Right password, but an admin required a reset.
    ResetRequired,
    /// Right temporary password: a new one must be chosen (`NEW_PASSWORD_REQUIRED`).
    NewPasswordRequired(Box<UserRecord>),
    /// The temporary password is older than the policy allows.
    TemporaryPasswordExpired,
    /// Refused without checking: the hashing queue is full, or another check of this user is in
    /// flight (503 / `TooManyRequestsException`).
    Busy,
    /// Storage failed.
    Internal,
}

impl Pool {
    fn check_password(&self, pw: &str) -> Result<(), IdpError> {
        if pw.len() > MAX_PASSWORD_LEN {
            return Err(IdpError::InvalidPassword(
                "Password is longer than 256 characters".into(),
            ));
        }
        match self.policy.problem(pw) {
            Some(p) => Err(IdpError::InvalidPassword(p)),
            None => Ok(()),
        }
    }

    fn check_username(username: &str) -> Result<(), IdpError> {
        if username.is_empty()
            || username.len() > 128
            || username
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(IdpError::InvalidParameter(
                "Username must be 1-128 characters without spaces".into(),
            ));
        }
        Ok(())
    }

    /// Refuses a self-chosen name `<ProviderName>_...` of one of the pool's identity providers:
    /// that name belongs to the provider's user, who would be refused sign-in once it is taken.
    fn refuse_provider_prefix(&self, username: &str) -> Result<(), IdpError> {
        let taken = username
            .split_once('_')
            .is_some_and(|(p, _)| self.catalog().identity_providers.contains_key(p));
        if taken {
            return Err(IdpError::InvalidParameter(
                "Username cannot start with the name of an identity provider of this pool".into(),
            ));
        }
        Ok(())
    }

    /// A user by name, or `UserNotFoundException`.
    pub async fn user(&self, username: &str) -> Result<UserRecord, IdpError> {
        if username.is_empty() || username.len() > 128 {
            return Err(IdpError::UserNotFound);
        }
        self.store
            .user_by_username(&self.id, username)
            .await?
            .ok_or(IdpError::UserNotFound)
    }

    async fn hash_pw(&self, pw: &str) -> Result<String, IdpError> {
        if pw.len() > MAX_PASSWORD_LEN {
            return Err(IdpError::InvalidPassword(
                "Password is longer than 256 characters".into(),
            ));
        }
        self.hash(pw).await.map_err(|e| match e {
            crate::domain::hashing::HashError::Busy => IdpError::TooManyRequests,
            crate::domain::hashing::HashError::Failed => IdpError::Internal,
        })
    }
}

/// The refusal of a password operation on a federated user.
fn federated_password() -> IdpError {
    IdpError::InvalidParameter(
        "The user signs in at its identity provider (EXTERNAL_PROVIDER) and has no password".into(),
    )
}

/// Federated users never get a password (they would sign in without their provider).
fn refuse_federated(u: &UserRecord) -> Result<(), IdpError> {
    if u.status == EXTERNAL_PROVIDER {
        return Err(federated_password());
    }
    Ok(())
}

/// A live challenge session.
pub(crate) struct Challenge {
    key: String,
    /// Whose sign-in it continues.
    pub username: String,
    /// The app client the sign-in is for.
    pub client_id: String,
}

fn challenge_expired() -> IdpError {
    IdpError::NotAuthorized("Invalid session for the user, session is expired.".into())
}

/// The API's answer to a failed password sign-in; `reveal_unknown` for `LEGACY` clients (and
/// callers who already know the user).
pub fn sign_in_error(e: SignInError, reveal_unknown: bool) -> IdpError {
    match e {
        SignInError::NotAuthorized => IdpError::bad_credentials(),
        SignInError::UnknownUser if reveal_unknown => IdpError::UserNotFound,
        SignInError::UnknownUser => IdpError::bad_credentials(),
        // Unknown names are counted and locked exactly like real ones, so Cognito's message
        // reveals nobody.
        SignInError::Locked => IdpError::NotAuthorized("Password attempts exceeded".into()),
        SignInError::Disabled => IdpError::NotAuthorized("User is disabled.".into()),
        SignInError::NotConfirmed => IdpError::UserNotConfirmed,
        SignInError::ResetRequired => IdpError::PasswordResetRequired,
        SignInError::TemporaryPasswordExpired => IdpError::NotAuthorized(
            "Temporary password has expired and must be reset by an administrator.".into(),
        ),
        SignInError::NewPasswordRequired(_) => IdpError::bad_credentials(),
        SignInError::Busy => IdpError::TooManyRequests,
        SignInError::Internal => IdpError::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_hash_matches_cognitos_definition() {
        // Computed with Python: base64(hmac.new(b"secret", b"aliceclient", sha256).digest()).
        assert_eq!(
            secret_hash("secret", "alice", "client"),
            "RTsve+FQ659UKyESgvLg9GYmZEL+QjzQsW/OjL77/b0="
        );
    }

    #[test]
    fn temporary_passwords_meet_the_strictest_policy() {
        let p = portcullis_config::PasswordPolicy {
            minimum_length: 99,
            ..Default::default()
        };
        for _ in 0..20 {
            assert_eq!(p.problem(&temporary_password(99).unwrap()), None);
        }
        let code = numeric_code().unwrap();
        assert_eq!(code.len(), 6);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
    }
}
