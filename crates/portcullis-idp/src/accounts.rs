//! The life of a user: admin creation with a temporary password, sign-up and confirmation, forgot
//! password, the `NEW_PASSWORD_REQUIRED` challenge, attribute changes, global sign-out, and the
//! API sign-ins (`USER_PASSWORD_AUTH`, `REFRESH_TOKEN_AUTH`). Shared by the admin API and the
//! hosted UI; every rule (policy, statuses, code expiry and attempts) is enforced here.

use crate::error::IdpError;
use crate::messages::{Purpose, mask};
use crate::pool::{Pool, SignInError, Tokens, constant_time_eq, random_token, sha256_hex};
use crate::store::{RefreshRecord, UserRecord};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use serde_json::{Map, Value};

/// The scope of tokens minted by the user-pool API (as Cognito's).
pub const ADMIN_SCOPE: &str = "aws.cognito.signin.user.admin";
/// Sign-up confirmation codes live 24 hours (Cognito).
pub const SIGN_UP_CODE_LIFETIME: i64 = 24 * 3600;
/// Forgot-password codes live 1 hour (Cognito).
pub const RESET_CODE_LIFETIME: i64 = 3600;
/// Wrong guesses before a code is void.
pub const MAX_CODE_ATTEMPTS: i64 = 5;
/// Largest attribute value (Cognito: 2048 bytes).
pub const MAX_ATTRIBUTE_VALUE: usize = 2048;

const TICKET_SIGN_UP: &str = "sign_up";
const TICKET_RESET: &str = "reset";
const TICKET_CHALLENGE: &str = "challenge";
const TICKET_TEMPORARY: &str = "temporary_password";

/// Standard attributes a user may have (OIDC's, as Cognito's schema).
pub const STANDARD_ATTRIBUTES: [&str; 20] = [
    "name",
    "family_name",
    "given_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "updated_at",
    "address",
    "email",
    "phone_number",
    "email_verified",
    "phone_number_verified",
    "sub",
];

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

/// `SECRET_HASH`: Base64(HMAC-SHA256(client secret, username + client id)).
pub fn secret_hash(secret: &str, username: &str, client_id: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = aws_lc_rs::hmac::sign(&key, format!("{username}{client_id}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

impl Pool {
    /// Refuses attribute names outside the schema, `sub`, oversized values and immutable changes.
    pub fn check_attributes(
        &self,
        attrs: &Map<String, Value>,
        creating: bool,
    ) -> Result<(), IdpError> {
        for (k, v) in attrs {
            let Some(v) = v.as_str() else {
                return Err(IdpError::InvalidParameter(format!(
                    "Attribute {k} must be a string"
                )));
            };
            if k == "sub" {
                return Err(IdpError::InvalidParameter(
                    "Cannot modify the non-mutable attribute sub".into(),
                ));
            }
            if k.starts_with("custom:") {
                match self.custom_attributes.get(k) {
                    None => {
                        return Err(IdpError::InvalidParameter(format!(
                            "Attributes did not conform to the schema: {k}: Attribute does not exist in the schema."
                        )));
                    }
                    Some(false) if !creating => {
                        return Err(IdpError::InvalidParameter(format!(
                            "Cannot modify the non-mutable attribute {k}"
                        )));
                    }
                    _ => {}
                }
            } else if !STANDARD_ATTRIBUTES.contains(&k.as_str()) {
                return Err(IdpError::InvalidParameter(format!(
                    "Attributes did not conform to the schema: {k}: Attribute does not exist in the schema."
                )));
            }
            if v.len() > MAX_ATTRIBUTE_VALUE {
                return Err(IdpError::InvalidParameter(format!(
                    "Attribute {k} is longer than 2048 bytes"
                )));
            }
            if k == "email" && (!v.contains('@') || v.contains(char::is_whitespace)) {
                return Err(IdpError::InvalidParameter(
                    "Invalid email address format.".into(),
                ));
            }
            if (k == "email_verified" || k == "phone_number_verified")
                && v != "true"
                && v != "false"
            {
                return Err(IdpError::InvalidParameter(format!(
                    "{k} must be \"true\" or \"false\""
                )));
            }
        }
        Ok(())
    }

    fn check_password(&self, pw: &str) -> Result<(), IdpError> {
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

    /// `AdminCreateUser`: a user in `FORCE_CHANGE_PASSWORD` with a temporary password (generated
    /// when not given), valid for the policy's days; the invitation goes to the outbox unless
    /// suppressed.
    pub async fn admin_create_user(
        &self,
        username: &str,
        attrs: Map<String, Value>,
        temporary: Option<&str>,
        suppress: bool,
    ) -> Result<UserRecord, IdpError> {
        Self::check_username(username)?;
        self.check_attributes(&attrs, true)?;
        let temp = match temporary {
            Some(t) => {
                self.check_password(t)?;
                t.to_string()
            }
            None => temporary_password(self.policy.minimum_length)?,
        };
        let hash = self.hash_pw(&temp).await?;
        let rec = UserRecord {
            sub: uuid::Uuid::new_v4().to_string(),
            username: username.to_string(),
            password_hash: hash,
            status: "FORCE_CHANGE_PASSWORD".into(),
            enabled: true,
            attributes: attrs,
            created_at: 0,
            updated_at: 0,
        };
        if !self.store.insert_user(&self.id, rec).await? {
            return Err(IdpError::UsernameExists);
        }
        self.mark_temporary(username).await?;
        let user = self.user(username).await?;
        if !suppress && let Some((_, to)) = delivery_of(&user) {
            self.sender
                .send(&self.name, Purpose::Invitation, username, &to, &temp);
        }
        Ok(user)
    }

    async fn mark_temporary(&self, username: &str) -> Result<(), IdpError> {
        let days = self.policy.temporary_password_validity_days.max(1) as i64;
        self.store
            .put_ticket(
                &self.id,
                TICKET_TEMPORARY,
                username,
                String::new(),
                crate::now() as i64 + days * 86400,
            )
            .await?;
        Ok(())
    }

    /// Whether a `FORCE_CHANGE_PASSWORD` user's temporary password is too old.
    pub(crate) async fn temporary_password_expired(&self, u: &UserRecord) -> bool {
        matches!(
            self.store
                .ticket(&self.id, TICKET_TEMPORARY, &u.username)
                .await,
            Ok(None)
        )
    }

    async fn hash_pw(&self, pw: &str) -> Result<String, IdpError> {
        if pw.len() > crate::pool::MAX_PASSWORD_LEN {
            return Err(IdpError::InvalidPassword(
                "Password is longer than 256 characters".into(),
            ));
        }
        self.hash(pw).await.map_err(|e| match e {
            crate::hashing::HashError::Busy => IdpError::TooManyRequests,
            crate::hashing::HashError::Failed => IdpError::Internal,
        })
    }

    /// `AdminSetUserPassword`: permanent → `CONFIRMED`, else `FORCE_CHANGE_PASSWORD`.
    pub async fn admin_set_password(
        &self,
        username: &str,
        password: &str,
        permanent: bool,
    ) -> Result<(), IdpError> {
        let mut u = self.user(username).await?;
        self.check_password(password)?;
        u.password_hash = self.hash_pw(password).await?;
        u.status = if permanent {
            "CONFIRMED"
        } else {
            "FORCE_CHANGE_PASSWORD"
        }
        .into();
        if !permanent {
            self.mark_temporary(username).await?;
        }
        self.store.save_user(&self.id, u).await?;
        self.store.clear_failures(&self.id, username).await?;
        Ok(())
    }

    /// Replaces (or with `None` values removes) attributes; changing `email` unverifies it.
    pub async fn update_attributes(
        &self,
        username: &str,
        changes: Map<String, Value>,
        remove: &[String],
    ) -> Result<(), IdpError> {
        self.check_attributes(&changes, false)?;
        let mut u = self.user(username).await?;
        for k in remove {
            if k == "sub" || k == "email_verified" && u.attributes.contains_key("email") {
                return Err(IdpError::InvalidParameter(format!(
                    "Cannot delete the attribute {k}"
                )));
            }
            u.attributes.remove(k);
        }
        let email_changed = changes
            .get("email")
            .is_some_and(|e| u.attributes.get("email") != Some(e));
        for (k, v) in changes {
            u.attributes.insert(k, v);
        }
        if email_changed && !u.attributes.contains_key("email_verified") {
            u.attributes.insert("email_verified".into(), "false".into());
        }
        self.store.save_user(&self.id, u).await?;
        Ok(())
    }

    /// `AdminEnableUser` / `AdminDisableUser`; disabling also signs the user out everywhere.
    pub async fn set_enabled(&self, username: &str, enabled: bool) -> Result<(), IdpError> {
        let mut u = self.user(username).await?;
        u.enabled = enabled;
        let sub = u.sub.clone();
        self.store.save_user(&self.id, u).await?;
        if !enabled {
            self.store.revoke_user_tokens(&self.id, &sub).await?;
        }
        Ok(())
    }

    /// `AdminDeleteUser`.
    pub async fn delete_user(&self, username: &str) -> Result<(), IdpError> {
        let u = self.user(username).await?;
        self.store.delete_user(&self.id, &u.sub).await?;
        Ok(())
    }

    /// `AdminConfirmSignUp`.
    pub async fn admin_confirm(&self, username: &str) -> Result<(), IdpError> {
        let mut u = self.user(username).await?;
        if u.status != "UNCONFIRMED" {
            return Err(IdpError::NotAuthorized(format!(
                "User cannot be confirmed. Current status is {}",
                u.status
            )));
        }
        u.status = "CONFIRMED".into();
        self.store.save_user(&self.id, u).await?;
        let _ = self
            .store
            .take_ticket(&self.id, TICKET_SIGN_UP, username)
            .await?;
        Ok(())
    }

    /// `AdminUserGlobalSignOut` / `GlobalSignOut`: every refresh token and hosted-UI session of
    /// the user ends, and the access tokens minted from them stop working at userInfo and GetUser.
    pub async fn global_sign_out(&self, sub: &str) -> Result<(), IdpError> {
        self.store.revoke_user_tokens(&self.id, sub).await?;
        Ok(())
    }

    /// `AdminResetUserPassword`: `RESET_REQUIRED` and a reset code in the outbox.
    pub async fn admin_reset_password(&self, username: &str) -> Result<(), IdpError> {
        let mut u = self.user(username).await?;
        u.status = "RESET_REQUIRED".into();
        self.store.save_user(&self.id, u.clone()).await?;
        self.send_code(
            &u,
            TICKET_RESET,
            RESET_CODE_LIFETIME,
            Purpose::ForgotPassword,
        )
        .await?;
        Ok(())
    }

    async fn send_code(
        &self,
        u: &UserRecord,
        ticket: &str,
        lifetime: i64,
        purpose: Purpose,
    ) -> Result<Option<Delivery>, IdpError> {
        let Some((delivery, to)) = delivery_of(u) else {
            return Ok(None);
        };
        let code = numeric_code()?;
        self.store
            .put_ticket(
                &self.id,
                ticket,
                &u.username,
                sha256_hex(&code),
                crate::now() as i64 + lifetime,
            )
            .await?;
        self.sender
            .send(&self.name, purpose, &u.username, &to, &code);
        Ok(Some(delivery))
    }

    /// Checks a code against the user's ticket: wrong codes count, the fifth voids it; a right
    /// code is spent.
    async fn spend_code(&self, ticket: &str, username: &str, code: &str) -> Result<(), IdpError> {
        let Some((want, attempts)) = self.store.ticket(&self.id, ticket, username).await? else {
            return Err(IdpError::ExpiredCode);
        };
        if attempts >= MAX_CODE_ATTEMPTS {
            return Err(IdpError::TooManyFailedAttempts);
        }
        let got = sha256_hex(code.trim());
        if !constant_time_eq(&want, &got) {
            let n = self.store.bump_ticket(&self.id, ticket, username).await?;
            return Err(if n >= MAX_CODE_ATTEMPTS {
                IdpError::TooManyFailedAttempts
            } else {
                IdpError::CodeMismatch
            });
        }
        // Single use: two concurrent confirmations cannot both win.
        match self.store.take_ticket(&self.id, ticket, username).await? {
            Some(_) => Ok(()),
            None => Err(IdpError::ExpiredCode),
        }
    }

    /// `SignUp`: an `UNCONFIRMED` user and a confirmation code (24 h) in the outbox.
    pub async fn sign_up(
        &self,
        username: &str,
        password: &str,
        attrs: Map<String, Value>,
    ) -> Result<(UserRecord, Option<Delivery>), IdpError> {
        if !self.allow_self_sign_up {
            return Err(IdpError::NotAuthorized(
                "SignUp is not permitted for this user pool".into(),
            ));
        }
        Self::check_username(username)?;
        self.check_attributes(&attrs, true)?;
        if attrs.contains_key("email_verified") || attrs.contains_key("phone_number_verified") {
            return Err(IdpError::InvalidParameter(
                "A user cannot mark their own address verified".into(),
            ));
        }
        self.check_password(password)?;
        let rec = UserRecord {
            sub: uuid::Uuid::new_v4().to_string(),
            username: username.to_string(),
            password_hash: self.hash_pw(password).await?,
            status: "UNCONFIRMED".into(),
            enabled: true,
            attributes: attrs,
            created_at: 0,
            updated_at: 0,
        };
        if !self.store.insert_user(&self.id, rec).await? {
            return Err(IdpError::UsernameExists);
        }
        let u = self.user(username).await?;
        let d = self
            .send_code(&u, TICKET_SIGN_UP, SIGN_UP_CODE_LIFETIME, Purpose::SignUp)
            .await?;
        Ok((u, d))
    }

    /// `ConfirmSignUp`: the code confirms the user and verifies the address it went to.
    pub async fn confirm_sign_up(&self, username: &str, code: &str) -> Result<(), IdpError> {
        let mut u = self.user(username).await?;
        if u.status != "UNCONFIRMED" {
            return Err(IdpError::NotAuthorized(format!(
                "User cannot be confirmed. Current status is {}",
                u.status
            )));
        }
        self.spend_code(TICKET_SIGN_UP, username, code).await?;
        u.status = "CONFIRMED".into();
        let verified = if u.attributes.contains_key("email") {
            "email_verified"
        } else {
            "phone_number_verified"
        };
        u.attributes.insert(verified.into(), "true".into());
        self.store.save_user(&self.id, u).await?;
        Ok(())
    }

    /// `ResendConfirmationCode`.
    pub async fn resend_confirmation(&self, username: &str) -> Result<Option<Delivery>, IdpError> {
        let u = self.user(username).await?;
        if u.status != "UNCONFIRMED" {
            return Err(IdpError::InvalidParameter(
                "User is already confirmed.".into(),
            ));
        }
        self.send_code(&u, TICKET_SIGN_UP, SIGN_UP_CODE_LIFETIME, Purpose::SignUp)
            .await
    }

    /// `ForgotPassword`: a reset code (1 h) for a user with an address. With existence errors
    /// prevented, an unknown user gets the same answer and nothing is sent.
    pub async fn forgot_password(
        &self,
        username: &str,
        reveal_unknown: bool,
    ) -> Result<Delivery, IdpError> {
        let fake = || Delivery {
            destination: "u***@e***".into(),
            medium: "EMAIL",
            attribute: "email",
        };
        let u = match self.user(username).await {
            Ok(u) => u,
            Err(IdpError::UserNotFound) if !reveal_unknown => return Ok(fake()),
            Err(e) => return Err(e),
        };
        if !u.enabled {
            return Err(IdpError::NotAuthorized("User is disabled.".into()));
        }
        match self
            .send_code(&u, TICKET_RESET, RESET_CODE_LIFETIME, Purpose::ForgotPassword)
            .await?
        {
            Some(d) => Ok(d),
            None => Err(IdpError::InvalidParameter(
                "Cannot reset password for the user as there is no registered/verified email or phone_number".into(),
            )),
        }
    }

    /// `ConfirmForgotPassword`: the code sets a new password and confirms the user.
    pub async fn confirm_forgot_password(
        &self,
        username: &str,
        code: &str,
        password: &str,
    ) -> Result<(), IdpError> {
        let mut u = match self.user(username).await {
            Ok(u) => u,
            // Same answer as a wrong code, so the form does not reveal who exists.
            Err(IdpError::UserNotFound) => return Err(IdpError::CodeMismatch),
            Err(e) => return Err(e),
        };
        self.check_password(password)?;
        self.spend_code(TICKET_RESET, username, code).await?;
        u.password_hash = self.hash_pw(password).await?;
        u.status = "CONFIRMED".into();
        self.store.save_user(&self.id, u).await?;
        self.store.clear_failures(&self.id, username).await?;
        Ok(())
    }

    /// Starts a challenge (`NEW_PASSWORD_REQUIRED`, `SOFTWARE_TOKEN_MFA`, `MFA_SETUP`) for
    /// `client_id`; returns the session, valid for the client's `auth_session_validity`.
    pub async fn start_challenge(
        &self,
        user: &UserRecord,
        client_id: &str,
        kind: &str,
    ) -> Result<String, IdpError> {
        let minutes = self
            .client(client_id)
            .map_or(3, |c| c.client.auth_session_validity) as i64;
        let session = random_token(48)?;
        let value =
            serde_json::json!({"username": user.username, "client_id": client_id, "kind": kind})
                .to_string();
        self.store
            .put_ticket(
                &self.id,
                TICKET_CHALLENGE,
                &sha256_hex(&session),
                value,
                crate::now() as i64 + minutes * 60,
            )
            .await?;
        Ok(session)
    }

    /// Answers `NEW_PASSWORD_REQUIRED`: the session is spent, the password must meet the policy,
    /// and the user becomes `CONFIRMED`. Returns the user.
    pub async fn complete_new_password(
        &self,
        session: &str,
        client_id: &str,
        username: Option<&str>,
        password: &str,
        attrs: Map<String, Value>,
    ) -> Result<UserRecord, IdpError> {
        self.check_password(password)?;
        self.check_attributes(&attrs, false)?;
        let c = self
            .challenge(session, Some(client_id), username, "NEW_PASSWORD_REQUIRED")
            .await?;
        self.end_challenge(&c).await?;
        let who = c.username;
        let invalid = challenge_expired;
        let mut u = self.user(&who).await?;
        if u.status != "FORCE_CHANGE_PASSWORD" {
            return Err(invalid());
        }
        u.password_hash = self.hash_pw(password).await?;
        u.status = "CONFIRMED".into();
        for (k, val) in attrs {
            u.attributes.insert(k, val);
        }
        self.store.save_user(&self.id, u).await?;
        let _ = self
            .store
            .take_ticket(&self.id, TICKET_TEMPORARY, &who)
            .await;
        self.user(&who).await
    }

    /// A live challenge session of `kind` for this client (any client when `None`, as for
    /// `AssociateSoftwareToken`, which names none), and user when named.
    pub(crate) async fn challenge(
        &self,
        session: &str,
        client_id: Option<&str>,
        username: Option<&str>,
        kind: &str,
    ) -> Result<Challenge, IdpError> {
        if session.is_empty() || session.len() > 256 {
            return Err(challenge_expired());
        }
        let key = sha256_hex(session);
        let (value, _) = self
            .store
            .ticket(&self.id, TICKET_CHALLENGE, &key)
            .await?
            .ok_or_else(challenge_expired)?;
        let v: Value = serde_json::from_str(&value).map_err(|_| challenge_expired())?;
        let who = v["username"].as_str().unwrap_or_default().to_string();
        let client = v["client_id"].as_str().unwrap_or_default().to_string();
        if client_id.is_some_and(|c| c != client)
            || v["kind"].as_str() != Some(kind)
            || username.is_some_and(|u| u != who)
        {
            return Err(challenge_expired());
        }
        Ok(Challenge {
            key,
            username: who,
            client_id: client,
        })
    }

    /// Spends a challenge session (single use, even under races).
    pub(crate) async fn end_challenge(&self, c: &Challenge) -> Result<(), IdpError> {
        self.store
            .take_ticket(&self.id, TICKET_CHALLENGE, &c.key)
            .await?
            .map(|_| ())
            .ok_or_else(challenge_expired)
    }

    /// Counts a wrong answer to a challenge; the fifth ends it.
    pub(crate) async fn fail_challenge(&self, c: &Challenge) -> Result<IdpError, IdpError> {
        let n = self
            .store
            .bump_ticket(&self.id, TICKET_CHALLENGE, &c.key)
            .await?;
        if n >= MAX_CODE_ATTEMPTS {
            let _ = self
                .store
                .take_ticket(&self.id, TICKET_CHALLENGE, &c.key)
                .await;
            return Ok(IdpError::NotAuthorized(
                "Too many invalid codes; sign in again.".into(),
            ));
        }
        Ok(IdpError::CodeMismatch)
    }

    /// Checks `SECRET_HASH` for a client with secrets (any of its secrets).
    pub fn check_secret_hash(
        &self,
        client_id: &str,
        username: &str,
        hash: Option<&str>,
    ) -> Result<(), IdpError> {
        let client = self
            .client(client_id)
            .ok_or_else(|| IdpError::ResourceNotFound("User pool client does not exist.".into()))?;
        if client.secrets.is_empty() {
            return Ok(());
        }
        let bad = || {
            IdpError::NotAuthorized(format!(
                "Unable to verify secret hash for client {client_id}"
            ))
        };
        let got = hash.ok_or_else(bad)?;
        let mut ok = false;
        for s in &client.secrets {
            let want = secret_hash(&s.value, username, client_id);
            ok |= constant_time_eq(&want, got);
        }
        if ok { Ok(()) } else { Err(bad()) }
    }

    /// A password sign-in through the API (`USER_PASSWORD_AUTH`, `ADMIN_USER_PASSWORD_AUTH`),
    /// with Cognito's lockout and statuses.
    pub async fn password_auth(
        &self,
        client_id: &str,
        username: &str,
        password: &str,
    ) -> Result<AuthOutcome, IdpError> {
        let client = self
            .client(client_id)
            .ok_or_else(|| IdpError::ResourceNotFound("User pool client does not exist.".into()))?;
        let legacy = client.client.prevent_user_existence_errors == "LEGACY";
        match self.sign_in(username, password).await {
            Ok(user) => self.outcome(user, client_id).await,
            Err(SignInError::NewPasswordRequired(user)) => {
                let session = self
                    .start_challenge(&user, client_id, "NEW_PASSWORD_REQUIRED")
                    .await?;
                Ok(AuthOutcome::Challenge {
                    name: "NEW_PASSWORD_REQUIRED",
                    session,
                    user,
                })
            }
            Err(e) => Err(sign_in_error(e, legacy)),
        }
    }

    /// Tokens, or the second factor the user still owes.
    pub async fn outcome(
        &self,
        user: UserRecord,
        client_id: &str,
    ) -> Result<AuthOutcome, IdpError> {
        match self.next_step(user.clone(), client_id).await? {
            crate::mfa::Step::Done(u) => {
                Ok(AuthOutcome::Tokens(self.api_tokens(&u, client_id).await?))
            }
            crate::mfa::Step::Challenge { name, session } => Ok(AuthOutcome::Challenge {
                name,
                session,
                user: Box::new(user),
            }),
        }
    }

    /// Tokens for an API sign-in: access token with `aws.cognito.signin.user.admin`, an ID token
    /// and a refresh token.
    pub async fn api_tokens(&self, user: &UserRecord, client_id: &str) -> Result<Tokens, IdpError> {
        let now = crate::now() as i64;
        let groups = self.store.groups_of(&self.id, &user.sub).await?;
        let origin_jti = uuid::Uuid::new_v4().to_string();
        let mut t = self
            .mint(
                user,
                &groups,
                client_id,
                ADMIN_SCOPE,
                now,
                None,
                &origin_jti,
            )
            .map_err(|_| IdpError::Internal)?;
        let refresh = random_token(48)?;
        let lifetime = self
            .client(client_id)
            .map_or(crate::pool::REFRESH_LIFETIME, |c| {
                c.client.refresh_seconds() as i64
            });
        self.store
            .insert_refresh(
                &self.id,
                sha256_hex(&refresh),
                RefreshRecord {
                    client_id: client_id.into(),
                    sub: user.sub.clone(),
                    scope: ADMIN_SCOPE.into(),
                    auth_time: now,
                    origin_jti,
                },
                now + lifetime,
            )
            .await?;
        t.refresh_token = Some(refresh);
        Ok(t)
    }

    /// The user of an access token minted by the API (`GetUser`, `ChangePassword`, ...): valid,
    /// not globally signed out, with `aws.cognito.signin.user.admin`.
    pub async fn user_of_access_token(
        &self,
        token: &str,
    ) -> Result<(UserRecord, String), IdpError> {
        let invalid = || IdpError::InvalidToken("Invalid Access Token".into());
        let claims = self
            .keys
            .load()
            .verify_access(token, &self.issuer)
            .ok_or_else(invalid)?;
        let scope = claims.get("scope").and_then(Value::as_str).unwrap_or("");
        if !scope.split(' ').any(|s| s == ADMIN_SCOPE) {
            return Err(IdpError::NotAuthorized(
                "Access Token does not have required scopes".into(),
            ));
        }
        if let Some(origin) = claims.get("origin_jti").and_then(Value::as_str)
            && self.store.origin_revoked(&self.id, origin).await?
        {
            return Err(IdpError::InvalidToken(
                "Access Token has been revoked".into(),
            ));
        }
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(invalid)?;
        let u = self
            .store
            .user_by_sub(&self.id, sub)
            .await?
            .ok_or(IdpError::UserNotFound)?;
        if !u.enabled {
            return Err(IdpError::NotAuthorized("User is disabled.".into()));
        }
        let client_id = claims
            .get("client_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Ok((u, client_id))
    }

    /// The user a live refresh token belongs to.
    pub async fn refresh_owner(&self, token: &str) -> Option<UserRecord> {
        if token.is_empty() || token.len() > crate::pool::MAX_PARAM_LEN {
            return None;
        }
        let rec = self
            .store
            .refresh(&self.id, sha256_hex(token))
            .await
            .ok()??;
        self.store.user_by_sub(&self.id, &rec.sub).await.ok()?
    }

    /// `ChangePassword`.
    pub async fn change_password(&self, token: &str, old: &str, new: &str) -> Result<(), IdpError> {
        let (u, _) = self.user_of_access_token(token).await?;
        self.check_password(new)?;
        match self.sign_in(&u.username, old).await {
            Ok(_) => {}
            Err(e) => return Err(sign_in_error(e, false)),
        }
        let mut u = self.user(&u.username).await?;
        u.password_hash = self.hash_pw(new).await?;
        self.store.save_user(&self.id, u).await?;
        Ok(())
    }
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

/// The API's answer to a failed password sign-in.
pub fn sign_in_error(e: SignInError, reveal_unknown: bool) -> IdpError {
    match e {
        SignInError::NotAuthorized => IdpError::bad_credentials(),
        SignInError::UnknownUser if reveal_unknown => IdpError::UserNotFound,
        SignInError::UnknownUser => IdpError::bad_credentials(),
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
