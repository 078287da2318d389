//! The pages more than one flow shows: sign-in, confirmation, password reset, the new password of
//! an admin-created user, and the two MFA steps. Each renders; none decides.

use super::page::{Ctx, Field, Note, Spec, policy_hint};
use crate::domain::mfa;
use axum::http::StatusCode;
use axum::response::Response;

impl Ctx {
    /// The sign-in page (`/login`): the password form when the client allows it, and a button
    /// per external provider.
    pub(super) fn login(&self, status: StatusCode, username: &str, note: Note<'_>) -> Response {
        let mut spec = Spec::new("Sign in", "/login", "Sign in", note.notice(), note.error());
        spec.fields = vec![
            Field::new("User name", "username", "text", "username")
                .value(username)
                .focus(),
            Field::new("Password", "password", "password", "current-password"),
        ];
        let client = self.pool.client(&self.req.client_id);
        let cognito = client.as_ref().is_none_or(|c| c.client.supports_cognito());
        spec.providers = self.provider_buttons();
        spec.show_form = cognito;
        if cognito {
            spec.links
                .push((self.link("/forgotPassword"), "Forgot your password?"));
            if self.pool.allow_self_sign_up {
                spec.links
                    .push((self.link("/signup"), "Need an account? Sign up"));
            }
        }
        self.render(status, spec)
    }

    /// A button per external provider the client supports, each to `/oauth2/authorize` with the
    /// same request and `identity_provider=<name>`.
    fn provider_buttons(&self) -> Vec<(String, String)> {
        let Some(client) = self.pool.client(&self.req.client_id) else {
            return Vec::new();
        };
        let catalog = self.pool.catalog();
        let base: Vec<(String, String)> = form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .filter(|(k, _)| k != "identity_provider" && k != "idp_identifier")
            .collect();
        client
            .client
            .identity_providers()
            .into_iter()
            .filter(|p| catalog.identity_providers.contains_key(p))
            .map(|p| {
                let mut ser = form_urlencoded::Serializer::new(String::new());
                for (k, v) in &base {
                    ser.append_pair(k, v);
                }
                ser.append_pair("identity_provider", &p);
                (format!("/oauth2/authorize?{}", ser.finish()), p)
            })
            .collect()
    }

    /// The sign-up confirmation page (`/confirmUser`), with "Send a new code".
    pub(super) fn confirm(&self, status: StatusCode, username: &str, note: Note<'_>) -> Response {
        let mut spec = Spec::new(
            "Confirm your account",
            "/confirmUser",
            "Confirm account",
            note.notice(),
            note.error(),
        );
        spec.secondary = Some(("action", "resend", "Send a new code"));
        self.code_form(status, spec, username, "Confirmation code", Vec::new())
    }

    /// The reset page (`/confirmForgotPassword`): the code and a new password.
    pub(super) fn reset(&self, status: StatusCode, username: &str, note: Note<'_>) -> Response {
        let spec = Spec::new(
            "Choose a new password",
            "/confirmForgotPassword",
            "Change password",
            note.notice(),
            note.error(),
        );
        let password = self.new_password_fields(false);
        self.code_form(status, spec, username, "Code", password)
    }

    /// `spec` with the user name, a code and `more` fields, and the way back to sign-in.
    fn code_form(
        &self,
        status: StatusCode,
        mut spec: Spec<'_>,
        username: &str,
        code_label: &'static str,
        more: Vec<Field>,
    ) -> Response {
        spec.fields = vec![
            Field::new("User name", "username", "text", "username").value(username),
            Field::new(code_label, "code", "text", "one-time-code").focus(),
        ];
        spec.fields.extend(more);
        spec.links.push((self.link("/login"), "Back to sign in"));
        self.render(status, spec)
    }

    /// The page where an admin-created user chooses a password (`/forceChangePassword`).
    pub(super) fn new_password(
        &self,
        status: StatusCode,
        session: &str,
        error: Option<&str>,
    ) -> Response {
        let notice =
            Some("Your temporary password worked. Choose the password you will use from now on.");
        let mut spec = Spec::new(
            "Choose a new password",
            "/forceChangePassword",
            "Set password",
            notice,
            error,
        );
        spec.hidden = vec![("session", session.to_string())];
        spec.fields = self.new_password_fields(true);
        self.render(status, spec)
    }

    /// A new password with the policy's hint, then its confirmation.
    fn new_password_fields(&self, focus: bool) -> Vec<Field> {
        let mut password = Field::new("New password", "password", "password", "new-password");
        if focus {
            password = password.focus();
        }
        vec![
            password.hint(policy_hint(&self.pool)),
            Field::new(
                "Confirm new password",
                "confirm",
                "password",
                "new-password",
            ),
        ]
    }

    /// The TOTP code of a sign-in (`/mfa`).
    pub(super) fn mfa_code(
        &self,
        status: StatusCode,
        session: &str,
        error: Option<&str>,
    ) -> Response {
        let mut spec = Spec::new(
            "Enter your code",
            "/mfa",
            "Sign in",
            Some("Open your authenticator app and enter the 6-digit code for this account."),
            error,
        );
        spec.links.push((self.link("/login"), "Back to sign in"));
        self.mfa_form(status, spec, session, mfa::SOFTWARE_TOKEN_MFA)
    }

    /// A new authenticator's key and its first code (`/mfa`, `MFA_SETUP`).
    pub(super) fn mfa_setup(
        &self,
        status: StatusCode,
        session: &str,
        username: &str,
        secret: &str,
        error: Option<&str>,
    ) -> Response {
        let uri = mfa::otpauth_uri(&self.pool.name, username, secret);
        let notice = format!(
            "This app requires a second step at sign-in. Add this key to your authenticator app, then enter the 6-digit code it shows. Key: {}",
            grouped(secret)
        );
        let mut spec = Spec::new(
            "Set up your authenticator",
            "/mfa",
            "Verify and sign in",
            Some(&notice),
            error,
        );
        spec.links
            .push((uri, "Open in an authenticator app on this device"));
        self.mfa_form(status, spec, session, mfa::MFA_SETUP)
    }

    /// `spec` with the code field of `/mfa`, answering challenge `kind` of `session`.
    fn mfa_form(
        &self,
        status: StatusCode,
        mut spec: Spec<'_>,
        session: &str,
        kind: &'static str,
    ) -> Response {
        spec.hidden = vec![("session", session.to_string()), ("kind", kind.into())];
        spec.fields = vec![Field::new("Code", "code", "text", "one-time-code").focus()];
        self.render(status, spec)
    }
}

/// A TOTP key in groups of four, easier to type.
fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
