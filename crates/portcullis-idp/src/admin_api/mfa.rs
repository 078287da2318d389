//! TOTP: `AssociateSoftwareToken` and `VerifySoftwareToken` (by access token or in an `MFA_SETUP`
//! challenge), `SetUserMFAPreference` and its admin form, and the MFA fields of a user.

use super::request::Req;
use crate::domain::pool::Pool;
use crate::error::IdpError;
use crate::store::UserRecord;
use serde_json::{Value, json};

/// `AssociateSoftwareToken` with an access token or an `MFA_SETUP` session.
pub(super) async fn associate_software_token(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    if let Some(token) = r.opt("AccessToken") {
        let (u, _) = pool.user_of_access_token(token).await?;
        let secret = pool.associate_token(&u.username).await?;
        return Ok(json!({"SecretCode": secret}));
    }
    let session = r.str("Session")?;
    let (c, _) = setup_session(pool, session).await?;
    let secret = pool.associate_token(&c.username).await?;
    Ok(json!({"SecretCode": secret, "Session": session}))
}

/// The `MFA_SETUP` challenge of `session`, and the client it names.
async fn setup_session(
    pool: &Pool,
    session: &str,
) -> Result<(crate::domain::accounts::Challenge, String), IdpError> {
    // The session names its client.
    let c = pool.setup_challenge(session, None).await?;
    let client_id = c.client_id.clone();
    Ok((c, client_id))
}

/// `VerifySoftwareToken` with an access token or an `MFA_SETUP` session.
pub(super) async fn verify_software_token(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let code = r.str("UserCode")?;
    if let Some(token) = r.opt("AccessToken") {
        let (u, _) = pool.user_of_access_token(token).await?;
        pool.verify_token(&u.username, code).await?;
        return Ok(json!({"Status": "SUCCESS"}));
    }
    let (c, client_id) = setup_session(pool, r.str("Session")?).await?;
    pool.verify_token(&c.username, code).await?;
    let next = pool.setup_verified(&c, &client_id).await?;
    Ok(json!({"Status": "SUCCESS", "Session": next}))
}

/// `SetUserMFAPreference` / `AdminSetUserMFAPreference` (TOTP only).
async fn set_mfa_preference(pool: &Pool, r: &Req<'_>, username: &str) -> Result<Value, IdpError> {
    if r.0.contains_key("SMSMfaSettings") || r.0.contains_key("EmailMfaSettings") {
        return Err(IdpError::Unsupported(
            "Only software token (TOTP) MFA is supported by Portcullis".into(),
        ));
    }
    if let Some(s) = r.0.get("SoftwareTokenMfaSettings") {
        let enabled = s.get("Enabled").and_then(Value::as_bool).unwrap_or(false);
        pool.set_totp_enabled(username, enabled).await?;
    }
    Ok(json!({}))
}

/// Adds `UserMFASettingList` and `PreferredMfaSetting` to a user's answer when it has TOTP.
pub(super) async fn mfa_fields(pool: &Pool, u: &UserRecord, v: &mut Value) -> Result<(), IdpError> {
    if pool.has_totp(&u.username).await? {
        v["UserMFASettingList"] = json!(["SOFTWARE_TOKEN_MFA"]);
        v["PreferredMfaSetting"] = "SOFTWARE_TOKEN_MFA".into();
    }
    Ok(())
}

/// `SetUserMFAPreference`: the user's own, by access token.
pub(super) async fn set_own_preference(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let (u, _) = pool.user_of_access_token(r.str("AccessToken")?).await?;
    set_mfa_preference(pool, r, &u.username).await
}

/// `AdminSetUserMFAPreference`.
pub(super) async fn admin_set_preference(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let u = pool.user(r.str("Username")?).await?;
    set_mfa_preference(pool, r, &u.username).await
}
