//! Signing up on the hosted UI: the sign-up page (`/signup`), then the confirmation of the new
//! account with the code it was sent (`/confirmUser`).

use super::page::{
    Admitted, Checks, Ctx, Field, Note, PageResult, Spec, busy, policy_hint, unavailable,
};
use crate::domain::pool::Pool;
use crate::error::IdpError;
use crate::http::request::Post;
use crate::http::responses::error_page;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Map;
use std::sync::Arc;

/// `GET /signup`.
pub(crate) async fn sign_up_page(
    State(pool): State<Arc<Pool>>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let c = Ctx::new(pool, raw.as_deref())?;
    c.password_sign_in()?;
    if !c.pool.allow_self_sign_up {
        return Ok(error_page(
            StatusCode::FORBIDDEN,
            "sign_up_disabled",
            "This app does not allow signing up. Ask its administrator for an account.",
        ));
    }
    Ok(sign_up_form(&c, StatusCode::OK, "", "", None))
}

/// The sign-up page.
fn sign_up_form(
    c: &Ctx,
    status: StatusCode,
    username: &str,
    email: &str,
    error: Option<&str>,
) -> Response {
    let mut spec = Spec::new("Sign up", "/signup", "Sign up", None, error);
    spec.fields = vec![
        Field::new("User name", "username", "text", "username")
            .value(username)
            .focus(),
        Field::new("Email", "email", "email", "email").value(email),
        Field::new("Password", "password", "password", "new-password").hint(policy_hint(&c.pool)),
    ];
    spec.links
        .push((c.link("/login"), "Already have an account? Sign in"));
    c.render(status, spec)
}

/// `POST /signup`: creates an unconfirmed user and sends a code.
pub(crate) async fn sign_up_submit(post: Post) -> PageResult {
    let Admitted { c, f, username } = Admitted::check(post, Checks::PASSWORD).await?;
    let email = f.get("email").trim().to_string();
    let mut attrs = Map::new();
    attrs.insert("email".into(), email.clone().into());
    Ok(
        match c
            .pool
            .sign_up(&c.req.client_id, &username, f.get("password"), attrs)
            .await
        {
            Ok((_, delivery)) => {
                let notice = match delivery {
                    Some(d) => format!(
                        "We sent a code to {}. Enter it to confirm your account.",
                        d.destination
                    ),
                    None => "Enter the confirmation code to confirm your account.".into(),
                };
                c.confirm(StatusCode::OK, &username, Note::Notice(&notice))
            }
            Err(IdpError::Internal) => unavailable(),
            Err(IdpError::TooManyRequests) => busy(),
            Err(IdpError::NotAuthorized(m)) => {
                error_page(StatusCode::FORBIDDEN, "sign_up_disabled", &m)
            }
            Err(e) => sign_up_form(
                &c,
                StatusCode::BAD_REQUEST,
                &username,
                &email,
                Some(&e.message()),
            ),
        },
    )
}

/// `GET /confirmUser`.
pub(crate) async fn confirm_page(
    State(pool): State<Arc<Pool>>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let c = Ctx::new(pool, raw.as_deref())?;
    let user = c.username.clone().unwrap_or_default();
    Ok(c.confirm(StatusCode::OK, &user, Note::Blank))
}

/// `POST /confirmUser`: confirms with the code, or sends a new one.
pub(crate) async fn confirm_submit(post: Post) -> PageResult {
    let Admitted { c, f, username } = Admitted::check(post, Checks::USER_CODE).await?;
    if f.get("action") == "resend" {
        return Ok(
            match c.pool.resend_confirmation(&username, c.reveal()).await {
                Ok(_) | Err(IdpError::UserNotFound) => c.confirm(
                    StatusCode::OK,
                    &username,
                    Note::Notice(
                        "If that account waits for confirmation, a new code is on its way.",
                    ),
                ),
                Err(IdpError::Internal) => unavailable(),
                Err(e) => c.confirm(
                    StatusCode::BAD_REQUEST,
                    &username,
                    Note::Error(&e.message()),
                ),
            },
        );
    }
    Ok(
        match c
            .pool
            .confirm_sign_up(&username, f.get("code"), c.reveal())
            .await
        {
            Ok(()) => c.login(
                StatusCode::OK,
                &username,
                Note::Notice("Your account is confirmed. Sign in."),
            ),
            Err(IdpError::Internal) => unavailable(),
            // Unknown users get the wrong-code answer, so the form reveals nobody.
            Err(IdpError::UserNotFound) => c.confirm(
                StatusCode::BAD_REQUEST,
                &username,
                Note::Error(&IdpError::CodeMismatch.message()),
            ),
            Err(e) => c.confirm(
                StatusCode::BAD_REQUEST,
                &username,
                Note::Error(&e.message()),
            ),
        },
    )
}
