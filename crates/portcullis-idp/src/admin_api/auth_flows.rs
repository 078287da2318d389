//! Signing in, up and out through the API: `InitiateAuth` and `AdminInitiateAuth` (password and
//! refresh flows), `RespondToAuthChallenge`, sign-up and its confirmation, forgotten and changed
//! passwords, `GlobalSignOut` and `RevokeToken`. Each checks the client's `SECRET_HASH` where
//! Cognito does, then calls `Pool`.

use super::request::{Req, client_of, unit};
use super::users::delivery;
use crate::domain::accounts::AuthOutcome;
use crate::domain::catalog::StoredClient;
use crate::domain::grants::Tokens;
use crate::domain::mfa;
use crate::domain::pool::Pool;
use crate::error::IdpError;
use serde_json::{Map, Value, json};

/// Cognito's `AuthenticationResultType` answer.
fn auth_result(t: &Tokens) -> Value {
    let mut a = json!({
        "AccessToken": t.access_token,
        "ExpiresIn": t.expires_in,
        "TokenType": "Bearer",
    });
    if let Some(id) = &t.id_token {
        a["IdToken"] = id.clone().into();
    }
    if let Some(rt) = &t.refresh_token {
        a["RefreshToken"] = rt.clone().into();
    }
    json!({"AuthenticationResult": a, "ChallengeParameters": {}})
}

/// `InitiateAuth` and (`admin`) `AdminInitiateAuth`: the flows the client allows.
pub(super) async fn initiate_auth(
    pool: &Pool,
    r: &Req<'_>,
    admin: bool,
) -> Result<Value, IdpError> {
    let client = client_of(pool, r)?;
    let client_id = client.client.client_id.as_str();
    let flow = r.str("AuthFlow")?;
    let params = r.map("AuthParameters");
    let p = |k: &str| params.get(k).and_then(Value::as_str);
    let not_enabled =
        || IdpError::InvalidParameter(format!("{flow} flow not enabled for this client"));
    match flow {
        "USER_PASSWORD_AUTH" if !admin => {
            if !client.client.allows_auth_flow("ALLOW_USER_PASSWORD_AUTH") {
                return Err(not_enabled());
            }
        }
        "ADMIN_USER_PASSWORD_AUTH" | "ADMIN_NO_SRP_AUTH" if admin => {
            if !client
                .client
                .allows_auth_flow("ALLOW_ADMIN_USER_PASSWORD_AUTH")
                && !client.client.allows_auth_flow("ADMIN_NO_SRP_AUTH")
            {
                return Err(not_enabled());
            }
        }
        "REFRESH_TOKEN_AUTH" | "REFRESH_TOKEN" => {
            if !client.client.allows_auth_flow("ALLOW_REFRESH_TOKEN_AUTH") {
                return Err(not_enabled());
            }
            let token = p("REFRESH_TOKEN").ok_or_else(|| {
                IdpError::InvalidParameter("Missing required parameter REFRESH_TOKEN".into())
            })?;
            return refresh_auth(pool, &client, token, p("SECRET_HASH")).await;
        }
        "USER_SRP_AUTH" | "CUSTOM_AUTH" | "USER_AUTH" => {
            return Err(IdpError::Unsupported(format!(
                "{flow} is not supported by Portcullis; use USER_PASSWORD_AUTH"
            )));
        }
        _ => {
            return Err(IdpError::InvalidParameter(format!(
                "Invalid AuthFlow {}",
                flow.chars().take(64).collect::<String>()
            )));
        }
    }
    let username = p("USERNAME")
        .filter(|u| !u.is_empty())
        .ok_or_else(|| IdpError::InvalidParameter("Missing required parameter USERNAME".into()))?;
    let password = p("PASSWORD")
        .ok_or_else(|| IdpError::InvalidParameter("Missing required parameter PASSWORD".into()))?;
    pool.check_secret_hash(client_id, username, p("SECRET_HASH"))?;
    outcome_json(pool.password_auth(client_id, username, password).await?)
}

/// `AuthenticationResult`, or the challenge with its parameters.
fn outcome_json(o: AuthOutcome) -> Result<Value, IdpError> {
    match o {
        AuthOutcome::Tokens(t) => Ok(auth_result(&t)),
        AuthOutcome::Challenge {
            name,
            session,
            user,
        } => {
            let params = match name {
                "NEW_PASSWORD_REQUIRED" => {
                    let mut shown = user.attributes.clone();
                    shown.remove("email_verified");
                    shown.remove("phone_number_verified");
                    json!({
                        "USER_ID_FOR_SRP": user.username,
                        "requiredAttributes": "[]",
                        "userAttributes": Value::Object(shown).to_string(),
                    })
                }
                "MFA_SETUP" => {
                    json!({"MFAS_CAN_SETUP": "[\"SOFTWARE_TOKEN_MFA\"]", "USER_ID_FOR_SRP": user.username})
                }
                _ => json!({"USER_ID_FOR_SRP": user.username}),
            };
            Ok(json!({"ChallengeName": name, "Session": session, "ChallengeParameters": params}))
        }
    }
}

/// `REFRESH_TOKEN_AUTH`: new tokens for a refresh token, its `SECRET_HASH` over the user name or `sub`.
async fn refresh_auth(
    pool: &Pool,
    client: &StoredClient,
    token: &str,
    hash: Option<&str>,
) -> Result<Value, IdpError> {
    let client_id = client.client.client_id.as_str();
    let invalid = || IdpError::NotAuthorized("Invalid Refresh Token".into());
    if !client.secrets.is_empty() {
        // The hash may be over the user name or the sub (Cognito accepts either).
        let user = pool.refresh_owner(token).await.ok_or_else(invalid)?;
        if pool
            .check_secret_hash(client_id, &user.username, hash)
            .is_err()
        {
            pool.check_secret_hash(client_id, &user.sub, hash)?;
        }
    }
    let t = pool
        .refresh(client_id, token)
        .await
        .map_err(|_| invalid())?;
    Ok(auth_result(&t))
}

/// `RespondToAuthChallenge` and `AdminRespondToAuthChallenge`.
pub(super) async fn respond_to_challenge(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let client = client_of(pool, r)?;
    let client_id = client.client.client_id.as_str();
    let name = r.str("ChallengeName")?;
    let session = r.str("Session")?;
    let responses = r.map("ChallengeResponses");
    let get = |k: &str| responses.get(k).and_then(Value::as_str);
    let required = |k: &str| {
        get(k).ok_or_else(|| IdpError::InvalidParameter(format!("Missing required parameter {k}")))
    };
    let username = required("USERNAME")?;
    pool.check_secret_hash(client_id, username, get("SECRET_HASH"))?;
    let user = match name {
        "NEW_PASSWORD_REQUIRED" => {
            let mut attrs = Map::new();
            for (k, v) in &responses {
                if let Some(a) = k.strip_prefix("userAttributes.") {
                    attrs.insert(a.to_string(), v.clone());
                }
            }
            let user = pool
                .complete_new_password(
                    session,
                    client_id,
                    Some(username),
                    required("NEW_PASSWORD")?,
                    attrs,
                )
                .await?;
            // A second factor may still be owed.
            return outcome_json(pool.outcome(user, client_id).await?);
        }
        mfa::SOFTWARE_TOKEN_MFA => {
            pool.answer_mfa(
                session,
                client_id,
                Some(username),
                required("SOFTWARE_TOKEN_MFA_CODE")?,
            )
            .await?
        }
        mfa::MFA_SETUP => {
            pool.finish_setup(session, client_id, Some(username))
                .await?
        }
        other => {
            return Err(IdpError::Unsupported(format!(
                "Challenge {} is not supported by Portcullis",
                other.chars().take(64).collect::<String>()
            )));
        }
    };
    let t = pool.api_tokens(&user, client_id).await?;
    Ok(auth_result(&t))
}

/// `SignUp`: an unconfirmed user and the code to confirm it.
pub(super) async fn sign_up(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let client = client_of(pool, r)?;
    let username = r.str("Username")?;
    pool.check_secret_hash(&client.client.client_id, username, r.opt("SecretHash"))?;
    let (u, d) = pool
        .sign_up(
            &client.client.client_id,
            username,
            r.str("Password")?,
            r.attributes("UserAttributes")?,
        )
        .await?;
    let mut out = json!({"UserConfirmed": false, "UserSub": u.sub});
    if let Some(d) = d {
        out["CodeDeliveryDetails"] = delivery(&d);
    }
    Ok(out)
}

/// `ConfirmSignUp`.
pub(super) async fn confirm_sign_up(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let client = client_of(pool, r)?;
    let username = r.str("Username")?;
    pool.check_secret_hash(&client.client.client_id, username, r.opt("SecretHash"))?;
    unit(
        pool.confirm_sign_up(username, r.str("ConfirmationCode")?, reveals(&client))
            .await,
    )
}

/// `ResendConfirmationCode`.
pub(super) async fn resend(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let client = client_of(pool, r)?;
    let username = r.str("Username")?;
    pool.check_secret_hash(&client.client.client_id, username, r.opt("SecretHash"))?;
    let d = pool.resend_confirmation(username, reveals(&client)).await?;
    Ok(d.map_or(json!({}), |d| json!({"CodeDeliveryDetails": delivery(&d)})))
}

/// `ForgotPassword`: sends a reset code.
pub(super) async fn forgot_password(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let client = client_of(pool, r)?;
    let username = r.str("Username")?;
    pool.check_secret_hash(&client.client.client_id, username, r.opt("SecretHash"))?;
    let d = pool.forgot_password(username, reveals(&client)).await?;
    Ok(json!({"CodeDeliveryDetails": delivery(&d)}))
}

/// `ConfirmForgotPassword`: the code and a new password.
pub(super) async fn confirm_forgot_password(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let client = client_of(pool, r)?;
    let username = r.str("Username")?;
    pool.check_secret_hash(&client.client.client_id, username, r.opt("SecretHash"))?;
    unit(
        pool.confirm_forgot_password(username, r.str("ConfirmationCode")?, r.str("Password")?)
            .await,
    )
}

/// `ChangePassword`: by access token and the previous password.
pub(super) async fn change_password(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    unit(
        pool.change_password(
            r.str("AccessToken")?,
            r.str("PreviousPassword")?,
            r.str("ProposedPassword")?,
        )
        .await,
    )
}

/// `GlobalSignOut`: the user of an access token signs out everywhere.
pub(super) async fn global_sign_out(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let (u, _) = pool.user_of_access_token(r.str("AccessToken")?).await?;
    unit(pool.global_sign_out(&u.sub).await)
}

/// Whether a client reveals which users exist (`PreventUserExistenceErrors = LEGACY`).
fn reveals(client: &StoredClient) -> bool {
    client.client.prevent_user_existence_errors == "LEGACY"
}

/// `RevokeToken`'s answer to a wrong or missing client secret (counted by [`handle`]).
pub(super) fn client_auth_failed() -> IdpError {
    IdpError::NotAuthorized("Client authentication failed".into())
}

/// `RevokeToken`: a refresh token and its family, for an authenticated client.
pub(super) async fn revoke_token(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let client = client_of(pool, r)?;
    let client_id = client.client.client_id.as_str();
    if !client.client.enable_token_revocation {
        return Err(IdpError::Unsupported(
            "Token revocation is not enabled for this client".into(),
        ));
    }
    pool.authenticate_client(client_id, r.opt("ClientSecret"))
        .map_err(|_| client_auth_failed())?;
    match pool.revoke(client_id, r.str("Token")?).await {
        Ok(()) => Ok(json!({})),
        Err(e) if e.error == "unsupported_token_type" => Err(IdpError::InvalidParameter(
            "Only refresh tokens can be revoked".into(),
        )),
        Err(_) => Err(IdpError::Internal),
    }
}
