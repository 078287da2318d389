//! A forgotten password on the hosted UI: the page that sends a code (`/forgotPassword`), then
//! the page that takes it with a new password (`/confirmForgotPassword`).

use super::page::{Admitted, Checks, Ctx, Field, Note, PageResult, Spec, busy, unavailable};
use crate::domain::pool::Pool;
use crate::error::IdpError;
use crate::http::request::Post;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use std::sync::Arc;

/// `GET /forgotPassword`.
pub(crate) async fn forgot_page(
    State(pool): State<Arc<Pool>>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let c = Ctx::new(pool, raw.as_deref())?;
    c.password_sign_in()?;
    let user = c.username.clone().unwrap_or_default();
    Ok(forgot_form(&c, StatusCode::OK, &user, None))
}

/// The page that asks for the user name to send a code to.
fn forgot_form(c: &Ctx, status: StatusCode, username: &str, error: Option<&str>) -> Response {
    let notice = Some("Enter your user name. We will send a code to reset your password.");
    let mut spec = Spec::new(
        "Forgot your password?",
        "/forgotPassword",
        "Send code",
        notice,
        error,
    );
    spec.fields = vec![
        Field::new("User name", "username", "text", "username")
            .value(username)
            .focus(),
    ];
    spec.links.push((c.link("/login"), "Back to sign in"));
    c.render(status, spec)
}

/// `POST /forgotPassword`: sends a reset code (the answer is the same for unknown users).
pub(crate) async fn forgot_submit(post: Post) -> PageResult {
    let Admitted { c, username, .. } = Admitted::check(post, Checks::PASSWORD).await?;
    if username.is_empty() {
        return Ok(forgot_form(
            &c,
            StatusCode::BAD_REQUEST,
            "",
            Some("Enter your user name."),
        ));
    }
    Ok(match c.pool.forgot_password(&username, c.reveal()).await {
        Ok(d) => {
            let notice = format!(
                "If {username} has an account, we sent a code to {}. Enter it below.",
                d.destination
            );
            c.reset(StatusCode::OK, &username, Note::Notice(&notice))
        }
        Err(IdpError::Internal) => unavailable(),
        Err(e) => forgot_form(&c, StatusCode::BAD_REQUEST, &username, Some(&e.message())),
    })
}

/// `GET /confirmForgotPassword`.
pub(crate) async fn reset_page(
    State(pool): State<Arc<Pool>>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let c = Ctx::new(pool, raw.as_deref())?;
    let user = c.username.clone().unwrap_or_default();
    Ok(c.reset(StatusCode::OK, &user, Note::Blank))
}

/// `POST /confirmForgotPassword`: the code and a new password.
pub(crate) async fn reset_submit(post: Post) -> PageResult {
    let Admitted { c, f, username } = Admitted::check(post, Checks::USER_CODE).await?;
    if f.get("password") != f.get("confirm") {
        return Ok(c.reset(
            StatusCode::BAD_REQUEST,
            &username,
            Note::Error("The passwords do not match."),
        ));
    }
    Ok(
        match c
            .pool
            .confirm_forgot_password(&username, f.get("code"), f.get("password"))
            .await
        {
            Ok(()) => c.login(
                StatusCode::OK,
                &username,
                Note::Notice("Your password is changed. Sign in with the new one."),
            ),
            Err(IdpError::Internal) => unavailable(),
            Err(IdpError::TooManyRequests) => busy(),
            Err(e) => c.reset(
                StatusCode::BAD_REQUEST,
                &username,
                Note::Error(&e.message()),
            ),
        },
    )
}
