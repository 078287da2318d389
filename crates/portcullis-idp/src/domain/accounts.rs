//! The life of a user: admin creation with a temporary password, sign-up and confirmation, forgot
//! password, the `NEW_PASSWORD_REQUIRED` challenge, attribute changes, global sign-out, and the
//! API sign-ins (`USER_PASSWORD_AUTH`, `REFRESH_TOKEN_AUTH`). Shared by the admin API and the
//! hosted UI; every rule (policy, statuses, code expiry and attempts) is enforced here.

use crate::domain::federation::EXTERNAL_PROVIDER;
use crate::domain::messages::{Purpose, mask};
use crate::domain::pool::{Pool, SignInError, Tokens, constant_time_eq, random_token, sha256_hex};
use crate::error::IdpError;
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
        if pw.len() > crate::domain::pool::MAX_PASSWORD_LEN {
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
        if pw.len() > crate::domain::pool::MAX_PASSWORD_LEN {
            return Err(IdpError::InvalidPassword(
                "Password is longer than 256 characters".into(),
            ));
        }
        self.hash(pw).await.map_err(|e| match e {
            crate::domain::hashing::HashError::Busy => IdpError::TooManyRequests,
            crate::domain::hashing::HashError::Failed => IdpError::Internal,
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
        refuse_federated(&u)?;
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
        let sub = u.sub.clone();
        self.store.save_user(&self.id, u).await?;
        self.store.clear_failures(&self.id, username).await?;
        self.password_changed(&sub).await
    }

    /// Refuses what a user may not write through `client_id`: any `*_verified` flag, and any
    /// attribute outside the client's `write_attributes` (when it has the list).
    pub fn check_writable<'k>(
        &self,
        client_id: &str,
        names: impl IntoIterator<Item = &'k String>,
    ) -> Result<(), IdpError> {
        let allowed = self
            .client(client_id)
            .and_then(|c| c.client.write_attributes.clone());
        for k in names {
            if k == "email_verified" || k == "phone_number_verified" {
                return Err(IdpError::InvalidParameter(
                    "A user cannot mark their own address verified".into(),
                ));
            }
            if let Some(w) = &allowed
                && !w.contains(k)
            {
                return Err(IdpError::NotAuthorized(format!(
                    "A client attempted to write unauthorized attribute {k}"
                )));
            }
        }
        Ok(())
    }

    /// Applies attribute changes to `u`: a changed `email` or `phone_number` becomes unverified
    /// (an administrator may verify it in the same call). Returns the addresses that now need a
    /// verification code, as `(attribute, value)`.
    fn apply_attributes(
        u: &mut UserRecord,
        changes: Map<String, Value>,
        by: Writer<'_>,
    ) -> Vec<(&'static str, String)> {
        let mut pending = Vec::new();
        for (attr, flag, _) in VERIFIABLE {
            let Some(new) = changes.get(attr).and_then(Value::as_str) else {
                continue;
            };
            if u.attributes.get(attr).and_then(Value::as_str) == Some(new) {
                continue;
            }
            let admin_verifies =
                by == Writer::Admin && changes.get(flag).and_then(Value::as_str) == Some("true");
            if !admin_verifies {
                u.attributes.insert(flag.into(), "false".into());
                pending.push((attr, new.to_string()));
            }
        }
        for (k, v) in changes {
            if by == Writer::Admin || (k != "email_verified" && k != "phone_number_verified") {
                u.attributes.insert(k, v);
            }
        }
        pending
    }

    /// Replaces or removes attributes. A changed `email` or `phone_number` becomes unverified and
    /// a code goes to the new address (returned); users never write `*_verified` and only write
    /// what their client's `write_attributes` allows.
    pub async fn update_attributes(
        &self,
        username: &str,
        changes: Map<String, Value>,
        remove: &[String],
        by: Writer<'_>,
    ) -> Result<Vec<Delivery>, IdpError> {
        self.check_attributes(&changes, false)?;
        if let Writer::User(client_id) = by {
            self.check_writable(client_id, changes.keys().chain(remove.iter()))?;
        }
        let mut u = self.user(username).await?;
        for k in remove {
            // `identities` is the pool's record of a federated user's provider, never the user's.
            if k == "sub"
                || k == "identities"
                || k == "email_verified" && u.attributes.contains_key("email")
            {
                return Err(IdpError::InvalidParameter(format!(
                    "Cannot delete the attribute {k}"
                )));
            }
            u.attributes.remove(k);
            if let Some((_, flag, _)) = VERIFIABLE.iter().find(|(a, _, _)| a == k) {
                u.attributes.remove(*flag);
            }
        }
        let pending = Self::apply_attributes(&mut u, changes, by);
        self.store.save_user(&self.id, u.clone()).await?;
        let mut out = Vec::new();
        for (attr, value) in pending {
            out.push(self.send_verification(&u, attr, &value).await?);
        }
        Ok(out)
    }

    /// Sends a code verifying `value` of `attr` (`email` or `phone_number`); the code verifies
    /// only that value, so a code sent before a change verifies nothing after it.
    async fn send_verification(
        &self,
        u: &UserRecord,
        attr: &str,
        value: &str,
    ) -> Result<Delivery, IdpError> {
        let (medium, attribute, ticket) = match attr {
            "email" => ("EMAIL", "email", TICKET_VERIFY_EMAIL),
            _ => ("SMS", "phone_number", TICKET_VERIFY_PHONE),
        };
        let delivery = Delivery {
            destination: mask(value),
            medium,
            attribute,
        };
        self.send_code_to(
            u,
            ticket,
            VERIFY_CODE_LIFETIME,
            Purpose::VerifyAttribute,
            value,
            value,
        )
        .await?;
        Ok(delivery)
    }

    /// `GetUserAttributeVerificationCode`: a code to the user's current `email` or `phone_number`.
    pub async fn attribute_verification_code(
        &self,
        username: &str,
        attr: &str,
    ) -> Result<Delivery, IdpError> {
        let u = self.user(username).await?;
        let value = verifiable_value(&u, attr)?;
        self.send_verification(&u, attr, &value).await
    }

    /// `VerifyUserAttribute`: the code sent to the current value of `attr` marks it verified.
    pub async fn verify_attribute(
        &self,
        username: &str,
        attr: &str,
        code: &str,
    ) -> Result<(), IdpError> {
        let u = self.user(username).await?;
        let value = verifiable_value(&u, attr)?;
        let (_, flag, ticket) = VERIFIABLE
            .iter()
            .find(|(a, _, _)| *a == attr)
            .copied()
            .ok_or_else(|| IdpError::InvalidParameter("Invalid attribute name".into()))?;
        self.spend_code(ticket, username, code, &value, None)
            .await?;
        // Read again: the value may have changed while the code was checked.
        let mut u = self.user(username).await?;
        if u.attributes.get(attr).and_then(Value::as_str) != Some(value.as_str()) {
            return Err(IdpError::ExpiredCode);
        }
        u.attributes.insert(flag.into(), "true".into());
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
            self.end_user_sessions(&sub).await?;
        }
        Ok(())
    }

    /// `AdminDeleteUser`.
    pub async fn delete_user(&self, username: &str) -> Result<(), IdpError> {
        let u = self.user(username).await?;
        self.end_user_sessions(&u.sub).await?;
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
        self.end_user_sessions(sub).await?;
        Ok(())
    }

    /// `AdminResetUserPassword`: `RESET_REQUIRED` and a reset code in the outbox.
    pub async fn admin_reset_password(&self, username: &str) -> Result<(), IdpError> {
        let mut u = self.user(username).await?;
        refuse_federated(&u)?;
        u.status = "RESET_REQUIRED".into();
        self.store.save_user(&self.id, u.clone()).await?;
        // Ours (Cognito keeps the tokens): a reset ends every session of the user.
        self.store.revoke_user_tokens(&self.id, &u.sub).await?;
        self.end_user_sessions(&u.sub).await?;
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
        let to = match purpose {
            Purpose::ForgotPassword => verified_delivery_of(u),
            _ => delivery_of(u),
        };
        let Some((delivery, to)) = to else {
            return Ok(None);
        };
        self.send_code_to(u, ticket, lifetime, purpose, &to, "")
            .await?;
        Ok(Some(delivery))
    }

    /// Issues a code under `(ticket, username)` (replacing an earlier one; the user's attempt
    /// budget is untouched) and sends it to `to`; `bound` is the address it verifies, if any.
    async fn send_code_to(
        &self,
        u: &UserRecord,
        ticket: &str,
        lifetime: i64,
        purpose: Purpose,
        to: &str,
        bound: &str,
    ) -> Result<(), IdpError> {
        let code = numeric_code()?;
        self.store
            .put_ticket(
                &self.id,
                ticket,
                &u.username,
                code_digest(&code, bound),
                crate::now() as i64 + lifetime,
            )
            .await?;
        self.sender
            .send(&self.name, purpose, &u.username, to, &code);
        Ok(())
    }

    /// What a code-sending operation answers for a user who must not be revealed (unknown,
    /// disabled, without an address): a decoy code nobody knows is stored exactly where a real
    /// one would be, so every later answer (wrong code, too many attempts, expired) is the same
    /// as for a real user; and the delivery is derived from the name, the same at every call.
    async fn simulate_code(
        &self,
        ticket: &str,
        username: &str,
        lifetime: i64,
    ) -> Result<Delivery, IdpError> {
        if !username.is_empty() && username.len() <= 128 {
            self.store
                .put_ticket(
                    &self.id,
                    ticket,
                    username,
                    sha256_hex(&random_token(32)?),
                    crate::now() as i64 + lifetime,
                )
                .await?;
        }
        let key = self.decoy_key().await?;
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key.as_bytes());
        let tag = aws_lc_rs::hmac::sign(&key, username.as_bytes());
        let letter = |b: u8| (b'a' + b % 26) as char;
        Ok(Delivery {
            destination: format!(
                "{}***@{}***",
                letter(tag.as_ref()[0]),
                letter(tag.as_ref()[1])
            ),
            medium: "EMAIL",
            attribute: "email",
        })
    }

    /// The pool's key for simulated deliveries, created once and shared by every node.
    async fn decoy_key(&self) -> Result<String, IdpError> {
        if let Some(k) = self
            .store
            .object(&self.id, DECOY_KEY_KIND, DECOY_KEY_ID)
            .await?
        {
            return Ok(k);
        }
        self.store
            .put_object(
                &self.id,
                DECOY_KEY_KIND,
                DECOY_KEY_ID,
                random_token(32)?,
                crate::store::Put::Insert,
            )
            .await?;
        self.store
            .object(&self.id, DECOY_KEY_KIND, DECOY_KEY_ID)
            .await?
            .ok_or(IdpError::Internal)
    }

    /// Checks a code against the user's ticket. The attempt is reserved before the comparison,
    /// atomically, twice: from the user's budget for this kind of code (which re-issuing does not
    /// restore) and from the code's own count (the fifth guess voids it). A right code is spent
    /// once and clears the budget. Unknown users go through the same steps.
    async fn spend_code(
        &self,
        ticket: &str,
        username: &str,
        code: &str,
        bound: &str,
        decoy: Option<i64>,
    ) -> Result<(), IdpError> {
        if username.is_empty() || username.len() > 128 {
            return Err(IdpError::ExpiredCode);
        }
        let budget = attempts_key(ticket);
        if !self
            .store
            .reserve_attempt(
                &self.id,
                &budget,
                username,
                MAX_CODE_ATTEMPTS,
                CODE_ATTEMPT_WINDOW,
                self.now(),
            )
            .await?
        {
            return Err(attempt_limit());
        }
        let mut spent = self
            .store
            .spend_ticket_attempt(&self.id, ticket, username, MAX_CODE_ATTEMPTS)
            .await?;
        // With `decoy` (the code's lifetime), a name without any code gets a decoy nobody knows,
        // so it answers as a name with a pending code would: no answer tells them apart. (A real
        // code sent in the same instant may be replaced; its owner asks for a new one.)
        if let (None, Some(lifetime)) = (&spent, decoy)
            && self
                .store
                .ticket(&self.id, ticket, username)
                .await?
                .is_none()
        {
            self.store
                .put_ticket(
                    &self.id,
                    ticket,
                    username,
                    sha256_hex(&random_token(32)?),
                    crate::now() as i64 + lifetime,
                )
                .await?;
            spent = self
                .store
                .spend_ticket_attempt(&self.id, ticket, username, MAX_CODE_ATTEMPTS)
                .await?;
        }
        let Some((want, n)) = spent else {
            return Err(match self.store.ticket(&self.id, ticket, username).await? {
                Some(_) => IdpError::TooManyFailedAttempts,
                None => IdpError::ExpiredCode,
            });
        };
        if code.len() > 64 || !constant_time_eq(&want, &code_digest(code, bound)) {
            return Err(if n >= MAX_CODE_ATTEMPTS {
                IdpError::TooManyFailedAttempts
            } else {
                IdpError::CodeMismatch
            });
        }
        // Single use: two concurrent confirmations cannot both win.
        match self.store.take_ticket(&self.id, ticket, username).await? {
            Some(_) => {
                self.store.take_ticket(&self.id, &budget, username).await?;
                Ok(())
            }
            None => Err(IdpError::ExpiredCode),
        }
    }

    /// `SignUp`: an `UNCONFIRMED` user and a confirmation code (24 h) in the outbox.
    pub async fn sign_up(
        &self,
        client_id: &str,
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
        self.refuse_provider_prefix(username)?;
        self.check_attributes(&attrs, true)?;
        self.check_writable(client_id, attrs.keys())?;
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

    /// `ConfirmSignUp`: the code confirms the user and verifies the address it went to. Unless
    /// `reveal` (a `LEGACY` client), unknown and already confirmed users get the answers of a
    /// user whose code expired (or of the decoy `ResendConfirmationCode` left them).
    pub async fn confirm_sign_up(
        &self,
        username: &str,
        code: &str,
        reveal: bool,
    ) -> Result<(), IdpError> {
        if reveal {
            let u = self.user(username).await?;
            if u.status != "UNCONFIRMED" {
                return Err(IdpError::NotAuthorized(format!(
                    "User cannot be confirmed. Current status is {}",
                    u.status
                )));
            }
        }
        let decoy = (!reveal).then_some(SIGN_UP_CODE_LIFETIME);
        self.spend_code(TICKET_SIGN_UP, username, code, "", decoy)
            .await?;
        let mut u = self
            .user(username)
            .await
            .map_err(|_| IdpError::ExpiredCode)?;
        if u.status != "UNCONFIRMED" {
            return Err(IdpError::ExpiredCode);
        }
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

    /// `ResendConfirmationCode`. Unless `reveal`, unknown and confirmed users get a simulated
    /// delivery, the same as a real one.
    pub async fn resend_confirmation(
        &self,
        username: &str,
        reveal: bool,
    ) -> Result<Option<Delivery>, IdpError> {
        let u = match self.user(username).await {
            Ok(u) => Some(u),
            Err(IdpError::UserNotFound) if !reveal => None,
            Err(e) => return Err(e),
        };
        match u {
            Some(u) if u.status == "UNCONFIRMED" => {
                match self
                    .send_code(&u, TICKET_SIGN_UP, SIGN_UP_CODE_LIFETIME, Purpose::SignUp)
                    .await?
                {
                    Some(d) => Ok(Some(d)),
                    None if reveal => Ok(None),
                    None => self
                        .simulate_code(TICKET_SIGN_UP, username, SIGN_UP_CODE_LIFETIME)
                        .await
                        .map(Some),
                }
            }
            Some(_) if reveal => Err(IdpError::InvalidParameter(
                "User is already confirmed.".into(),
            )),
            _ => self
                .simulate_code(TICKET_SIGN_UP, username, SIGN_UP_CODE_LIFETIME)
                .await
                .map(Some),
        }
    }

    /// `ForgotPassword`: a reset code (1 h) for an enabled user with an address. Unless
    /// `reveal_unknown` (a `LEGACY` client), unknown and disabled users and users without an
    /// address get a simulated delivery, the same as a real one, and nothing is sent.
    pub async fn forgot_password(
        &self,
        username: &str,
        reveal_unknown: bool,
    ) -> Result<Delivery, IdpError> {
        let u = match self.user(username).await {
            Ok(u) => Some(u),
            Err(IdpError::UserNotFound) if !reveal_unknown => None,
            Err(e) => return Err(e),
        };
        match u {
            Some(u) if u.enabled && u.status == EXTERNAL_PROVIDER && reveal_unknown => {
                Err(federated_password())
            }
            // A federated user has no password to reset: answered as a user without an address.
            Some(u) if u.enabled && u.status != EXTERNAL_PROVIDER => match self
                .send_code(&u, TICKET_RESET, RESET_CODE_LIFETIME, Purpose::ForgotPassword)
                .await?
            {
                Some(d) => Ok(d),
                None if reveal_unknown => Err(IdpError::InvalidParameter(
                    "Cannot reset password for the user as there is no registered/verified email or phone_number".into(),
                )),
                None => {
                    self.simulate_code(TICKET_RESET, username, RESET_CODE_LIFETIME)
                        .await
                }
            },
            Some(u) if reveal_unknown && !u.enabled => {
                Err(IdpError::NotAuthorized("User is disabled.".into()))
            }
            _ => {
                self.simulate_code(TICKET_RESET, username, RESET_CODE_LIFETIME)
                    .await
            }
        }
    }

    /// `ConfirmForgotPassword`: the code sets a new password and confirms the user. Unknown users
    /// take the same steps (budget, decoy code), so every answer matches a real user's.
    pub async fn confirm_forgot_password(
        &self,
        username: &str,
        code: &str,
        password: &str,
    ) -> Result<(), IdpError> {
        self.check_password(password)?;
        self.spend_code(TICKET_RESET, username, code, "", Some(RESET_CODE_LIFETIME))
            .await?;
        let mut u = self
            .user(username)
            .await
            .map_err(|_| IdpError::ExpiredCode)?;
        refuse_federated(&u)?;
        u.password_hash = self.hash_pw(password).await?;
        u.status = "CONFIRMED".into();
        let sub = u.sub.clone();
        self.store.save_user(&self.id, u).await?;
        self.store.clear_failures(&self.id, username).await?;
        self.password_changed(&sub).await
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
        self.check_writable(client_id, attrs.keys())?;
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
        let pending = Self::apply_attributes(&mut u, attrs, Writer::User(client_id));
        self.store.save_user(&self.id, u.clone()).await?;
        for (attr, value) in pending {
            self.send_verification(&u, attr, &value).await?;
        }
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

    /// Reserves one answer to a challenge before it is checked (atomic: concurrent answers never
    /// exceed [`MAX_CODE_ATTEMPTS`]); returns the count to pass to [`Pool::fail_challenge`].
    pub(crate) async fn challenge_attempt(&self, c: &Challenge) -> Result<i64, IdpError> {
        self.store
            .spend_ticket_attempt(&self.id, TICKET_CHALLENGE, &c.key, MAX_CODE_ATTEMPTS)
            .await?
            .map(|(_, n)| n)
            .ok_or_else(challenge_expired)
    }

    /// The answer to a wrong code on the `n`th reserved attempt; the fifth ends the challenge.
    pub(crate) async fn fail_challenge(&self, c: &Challenge, n: i64) -> Result<IdpError, IdpError> {
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
            crate::domain::mfa::Step::Done(u) => {
                Ok(AuthOutcome::Tokens(self.api_tokens(&u, client_id).await?))
            }
            crate::domain::mfa::Step::Challenge { name, session } => Ok(AuthOutcome::Challenge {
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
        // Each API sign-in is a sign-in session of its own.
        let sid = self.begin_sign_in(&user.sub, now, None).await?;
        if !self.grant_in_session(&sid, client_id, &origin_jti).await? {
            return Err(IdpError::Internal);
        }
        let mut t = self
            .mint(
                user,
                &groups,
                client_id,
                ADMIN_SCOPE,
                now,
                None,
                &origin_jti,
                Some(&sid),
            )
            .map_err(|_| IdpError::Internal)?;
        let refresh = random_token(48)?;
        let lifetime = self
            .client(client_id)
            .map_or(crate::domain::pool::REFRESH_LIFETIME, |c| {
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
        if token.is_empty() || token.len() > crate::domain::pool::MAX_PARAM_LEN {
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
            Err(e) => return Err(sign_in_error(e, true)),
        }
        let mut u = self.user(&u.username).await?;
        u.password_hash = self.hash_pw(new).await?;
        let sub = u.sub.clone();
        self.store.save_user(&self.id, u).await?;
        self.password_changed(&sub).await
    }

    /// After a password change (`ChangePassword`, `ConfirmForgotPassword`,
    /// `AdminSetUserPassword`): every session of the user ends, the caller's included. Ours:
    /// Cognito keeps tokens across all three; a changed password usually means a leaked one.
    async fn password_changed(&self, sub: &str) -> Result<(), IdpError> {
        self.store.revoke_user_tokens(&self.id, sub).await?;
        self.end_user_sessions(sub).await?;
        Ok(())
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
