//! The pool's HTTP front-end at Cognito's paths. [`router`] maps each path to its handler:
//! `oauth` (discovery, JWKS and the OAuth endpoints), `hosted_ui` (the sign-in pages) and
//! `admin_api` (Cognito's JSON API at `POST /`). `request` and `responses` hold what the first two
//! share (reading queries and forms; pages, errors, cookies) and import neither;
//! `tls_listener` completes HTTPS handshakes.

pub mod client_ip;
pub(crate) mod federation;
pub(crate) mod hosted_ui;
pub(crate) mod oauth;
pub(crate) mod request;
pub(crate) mod responses;
pub mod tls_listener;

use crate::domain::pool::Pool;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::Response;
use axum::routing::{get, post};
use hosted_ui::{mfa, password_reset, sign_in, sign_up};
use std::sync::Arc;

/// Largest request body any endpoint reads.
pub const MAX_BODY: usize = 16 * 1024;

/// The router of one pool.
pub fn router(pool: Arc<Pool>) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(oauth::discovery))
        .route("/.well-known/jwks.json", get(oauth::jwks))
        .route(
            "/{pool_id}/.well-known/openid-configuration",
            get(oauth::discovery_for),
        )
        .route("/{pool_id}/.well-known/jwks.json", get(oauth::jwks_for))
        .route("/oauth2/authorize", get(oauth::authorize))
        .route(
            "/oauth2/idpresponse",
            get(crate::http::federation::idp_response),
        )
        .route(
            "/login",
            get(sign_in::login_page).post(sign_in::login_submit),
        )
        .route(
            "/signup",
            get(sign_up::sign_up_page).post(sign_up::sign_up_submit),
        )
        .route(
            "/confirmUser",
            get(sign_up::confirm_page).post(sign_up::confirm_submit),
        )
        .route(
            "/forgotPassword",
            get(password_reset::forgot_page).post(password_reset::forgot_submit),
        )
        .route(
            "/confirmForgotPassword",
            get(password_reset::reset_page).post(password_reset::reset_submit),
        )
        .route("/forceChangePassword", post(sign_in::new_password_submit))
        .route("/mfa", post(mfa::mfa_submit))
        .route("/static/client/{file}", get(hosted_ui::client_css))
        .route("/oauth2/token", post(oauth::token))
        .route(
            "/oauth2/userInfo",
            get(oauth::userinfo).post(oauth::userinfo),
        )
        .route("/oauth2/revoke", post(oauth::revoke))
        .route("/logout", get(oauth::logout))
        .route("/static/hosted-ui.css", get(hosted_ui::css))
        .route(
            "/",
            post(crate::admin_api::handle)
                .layer(DefaultBodyLimit::max(crate::admin_api::MAX_API_BODY)),
        )
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(pool)
}

/// Every other path.
async fn not_found() -> Response {
    responses::not_found()
}
