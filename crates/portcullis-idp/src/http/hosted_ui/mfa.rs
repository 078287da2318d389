//! The second factor of a hosted-UI sign-in (`/mfa`): the TOTP code of a user who has an
//! authenticator, or the first code of a new one (`MFA_SETUP`).

use super::page::{Admitted, Checks, Ctx, Form, Note, PageResult, unavailable};
use crate::domain::accounts::SetupRefused;
use crate::domain::mfa;
use crate::error::IdpError;
use crate::http::request::Post;
use axum::http::StatusCode;
use axum::response::Response;

/// `POST /mfa`: the code of a sign-in with TOTP, or the first code of a new authenticator.
pub(crate) async fn mfa_submit(post: Post) -> PageResult {
    let Admitted { c, f, .. } = Admitted::check(post, Checks::STEP).await?;
    Ok(answer(&c, &f).await)
}

/// Checks the posted code, then signs in, asks again or restarts the sign-in.
async fn answer(c: &Ctx, f: &Form) -> Response {
    let session = f.get("session");
    let code = f.get("code");
    let retry_or_restart = |c: &Ctx, e: IdpError, setup: Option<(&str, &str)>| match e {
        IdpError::CodeMismatch => match setup {
            Some((user, secret)) => c.mfa_setup(
                StatusCode::BAD_REQUEST,
                session,
                user,
                secret,
                Some("That code is not right. Try the current one."),
            ),
            None => c.mfa_code(
                StatusCode::BAD_REQUEST,
                session,
                Some("That code is not right. Try the current one."),
            ),
        },
        IdpError::Internal => unavailable(),
        e => c.login(StatusCode::UNAUTHORIZED, "", Note::Error(&e.message())),
    };
    if f.get("kind") == mfa::MFA_SETUP {
        return match c.pool.answer_setup(session, &c.req.client_id, code).await {
            Ok(u) => c.signed_in(&u).await,
            Err(SetupRefused { error, retry }) => retry_or_restart(
                c,
                error,
                retry.as_ref().map(|(u, s)| (u.as_str(), s.as_str())),
            ),
        };
    }
    match c
        .pool
        .answer_mfa(session, &c.req.client_id, None, code)
        .await
    {
        Ok(u) => c.signed_in(&u).await,
        Err(e) => retry_or_restart(c, e, None),
    }
}
