//! Signing in with a password: the sign-in page (`/login`), its form, the new password an
//! admin-created user must choose (`/forceChangePassword`), and what follows a right password
//! (a second factor, or the hosted-UI session and the redirect to the app with a code).

use super::page::{Admitted, Checks, Ctx, Note, PageResult, busy, unavailable};
use crate::domain::accounts::SignInError;
use crate::domain::mfa::{self, Step};
use crate::domain::pool::Pool;
use crate::error::IdpError;
use crate::http::request::Post;
use crate::http::responses::{HostedCookie, error_page, redirect, session_cookie};
use crate::store::UserRecord;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::Map;
use std::sync::Arc;

/// `GET /login`: the sign-in form.
pub(crate) async fn login_page(
    State(pool): State<Arc<Pool>>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let c = Ctx::new(pool, raw.as_deref())?;
    if c.req.federate.is_some() {
        return Ok(redirect(&format!(
            "/oauth2/authorize?{}",
            raw.unwrap_or_default()
        )));
    }
    let user = c.username.clone().unwrap_or_default();
    Ok(c.login(StatusCode::OK, &user, Note::Blank))
}

/// `POST /login`: checks the password, then signs in, or continues with the step the user's
/// status requires (new password, confirmation, reset).
pub(crate) async fn login_submit(post: Post) -> PageResult {
    let Admitted { c, f, username } = Admitted::check(post, Checks::PASSWORD).await?;
    Ok(match c.pool.sign_in(&username, f.get("password")).await {
        Ok(user) => c.after_password(user).await,
        Err(SignInError::NewPasswordRequired(user)) => {
            match c
                .pool
                .start_challenge(&user, &c.req.client_id, "NEW_PASSWORD_REQUIRED")
                .await
            {
                Ok(session) => c.new_password(StatusCode::OK, &session, None),
                Err(_) => unavailable(),
            }
        }
        Err(SignInError::NotConfirmed) => c.confirm(
            StatusCode::OK,
            &username,
            Note::Notice("Confirm your account with the code we sent you, then sign in."),
        ),
        Err(SignInError::ResetRequired) => c.reset(
            StatusCode::OK,
            &username,
            Note::Notice(
                "Your password must be reset. Enter the code we sent you and choose a new password.",
            ),
        ),
        Err(SignInError::Internal) => unavailable(),
        Err(SignInError::Busy) => busy(),
        Err(e) => {
            // Unknown users get the wrong-password message even from LEGACY clients: the page
            // never shows "User does not exist".
            let message = crate::domain::accounts::sign_in_error(e, false).message();
            c.login(StatusCode::UNAUTHORIZED, &username, Note::Error(&message))
        }
    })
}

/// `POST /forceChangePassword`: the new password of an admin-created user.
pub(crate) async fn new_password_submit(post: Post) -> PageResult {
    let Admitted { c, f, .. } = Admitted::check(post, Checks::STEP).await?;
    let session = f.get("session");
    if f.get("password") != f.get("confirm") {
        return Ok(c.new_password(
            StatusCode::BAD_REQUEST,
            session,
            Some("The passwords do not match."),
        ));
    }
    Ok(
        match c
            .pool
            .complete_new_password(
                session,
                &c.req.client_id,
                None,
                f.get("password"),
                Map::new(),
            )
            .await
        {
            Ok(user) => c.after_password(user).await,
            Err(IdpError::TooManyRequests) => busy(),
            Err(e @ IdpError::InvalidPassword(_)) => {
                c.new_password(StatusCode::BAD_REQUEST, session, Some(&e.message()))
            }
            Err(IdpError::Internal) => unavailable(),
            Err(_) => c.login(
                StatusCode::UNAUTHORIZED,
                "",
                Note::Error("This step expired. Sign in again with your temporary password."),
            ),
        },
    )
}

impl Ctx {
    /// After a right password: a second factor when the pool asks one, else signed in.
    async fn after_password(&self, user: UserRecord) -> Response {
        let username = user.username.clone();
        match self.pool.next_step(user, &self.req.client_id).await {
            Ok(Step::Done(u)) => self.signed_in(&u).await,
            Ok(Step::Challenge { name, session }) if name == mfa::MFA_SETUP => {
                match self.pool.associate_token(&username).await {
                    Ok(secret) => {
                        self.mfa_setup(StatusCode::OK, &session, &username, &secret, None)
                    }
                    Err(_) => unavailable(),
                }
            }
            Ok(Step::Challenge { session, .. }) => self.mfa_code(StatusCode::OK, &session, None),
            Err(_) => unavailable(),
        }
    }

    /// Signs the user in: a hosted-UI session and the redirect to the app with a code.
    pub(super) async fn signed_in(&self, user: &UserRecord) -> Response {
        let now = self.pool.now();
        let session = match self.pool.start_session(user, now).await {
            Ok(s) => s,
            Err(e) => {
                return error_page(StatusCode::INTERNAL_SERVER_ERROR, e.error, &e.description);
            }
        };
        let sid = self.pool.browser_sid(&session);
        let location = match self
            .pool
            .complete_authorization_in(&self.req, user, now, &sid)
            .await
        {
            Ok(l) => l,
            Err(e) => {
                return error_page(StatusCode::INTERNAL_SERVER_ERROR, e.error, &e.description);
            }
        };
        let mut r = redirect(&location);
        if let Some(v) = session_cookie(
            &self.pool,
            &session,
            crate::domain::sessions::SESSION_LIFETIME,
        ) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
        if let Some(v) = HostedCookie::Csrf.set(&self.pool, "", Some(0)) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
        r
    }
}
