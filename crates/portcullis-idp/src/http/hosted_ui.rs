//! The hosted UI's pages at Cognito's paths: sign-in (`/login`), sign-up and confirmation
//! (`/signup`, `/confirmUser`), forgot password (`/forgotPassword`, `/confirmForgotPassword`),
//! the new password an admin-created user must choose (`/forceChangePassword`) and the second
//! factor (`/mfa`). Every page carries the authorization request it serves in its query, every
//! form a CSRF token bound to a cookie, and each works without JavaScript. Decisions are made in
//! `accounts` and `pool`; this renders.
//!
//! `page` is what every page shares and `views` the pages several flows show; the flows
//! (`sign_in`, `sign_up`, `password_reset`, `mfa`) use those two and, for `mfa`, `sign_in`.

pub(crate) mod mfa;
mod page;
pub(crate) mod password_reset;
pub(crate) mod sign_in;
pub(crate) mod sign_up;
mod views;

use crate::domain::pool::Pool;
use crate::http::responses::{not_found, stylesheet};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::Response;
use std::sync::Arc;

/// `GET /static/hosted-ui.css`: the pages' own stylesheet.
pub(crate) async fn css() -> Response {
    stylesheet(
        include_str!("../../static/hosted-ui.css"),
        &[(header::CACHE_CONTROL, "public, max-age=3600")],
    )
}

/// `GET /static/client/<client_id>.css`: a client's own CSS for its pages.
pub(crate) async fn client_css(
    State(pool): State<Arc<Pool>>,
    Path(file): Path<String>,
) -> Response {
    let css = file
        .strip_suffix(".css")
        .and_then(|id| pool.client(id))
        .and_then(|c| c.client.css.clone());
    match css {
        Some(css) => stylesheet(css, &[(header::X_CONTENT_TYPE_OPTIONS, "nosniff")]),
        None => not_found(),
    }
}
