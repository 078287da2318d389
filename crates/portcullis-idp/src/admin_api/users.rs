//! Users: the admin operations (`AdminCreateUser`, `AdminGetUser`, `ListUsers`, `AdminDelete…`,
//! `AdminSet…`, …) and the user's own by access token (`GetUser`, `UpdateUserAttributes`,
//! `DeleteUser`, attribute verification), with Cognito's `UserType` shape.

use super::filter::{filter_matches, parse_filter};
use super::mfa::mfa_fields;
use super::request::{Req, unit};
use crate::domain::accounts::{Delivery, Writer};
use crate::domain::pool::Pool;
use crate::error::IdpError;
use crate::store::UserRecord;
use serde_json::{Map, Value, json};

/// A user's attributes as Cognito's `[{Name, Value}]`, `sub` first.
fn attribute_list(u: &UserRecord) -> Value {
    let mut v = vec![json!({"Name": "sub", "Value": u.sub})];
    for (k, val) in &u.attributes {
        v.push(json!({"Name": k, "Value": val}));
    }
    Value::Array(v)
}

/// Cognito's `UserType`.
pub(super) fn user_type(u: &UserRecord) -> Value {
    json!({
        "Username": u.username,
        "Attributes": attribute_list(u),
        "UserCreateDate": u.created_at,
        "UserLastModifiedDate": u.updated_at,
        "Enabled": u.enabled,
        "UserStatus": u.status,
    })
}

/// Cognito's `CodeDeliveryDetailsType`: where a code went.
pub(super) fn delivery(d: &Delivery) -> Value {
    json!({"Destination": d.destination, "DeliveryMedium": d.medium, "AttributeName": d.attribute})
}

/// `AdminCreateUser`: with a temporary password, sent unless `SUPPRESS`.
pub(super) async fn admin_create_user(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let action = r.opt("MessageAction");
    if action == Some("RESEND") {
        return Err(IdpError::Unsupported(
            "MessageAction RESEND is not supported; use AdminSetUserPassword".into(),
        ));
    }
    let u = pool
        .admin_create_user(
            r.str("Username")?,
            r.attributes("UserAttributes")?,
            r.opt("TemporaryPassword"),
            action == Some("SUPPRESS"),
        )
        .await?;
    Ok(json!({"User": user_type(&u)}))
}

/// `AdminGetUser`.
pub(super) async fn admin_get_user(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let u = pool.user(r.str("Username")?).await?;
    let mut v = json!({
        "Username": u.username,
        "UserAttributes": attribute_list(&u),
        "UserCreateDate": u.created_at,
        "UserLastModifiedDate": u.updated_at,
        "Enabled": u.enabled,
        "UserStatus": u.status,
        "MFAOptions": [],
    });
    mfa_fields(pool, &u, &mut v).await?;
    Ok(v)
}

/// The `PaginationToken` after the user named `last`.
fn page_token(last: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last)
}

/// The user name a `PaginationToken` continues after.
fn after_token(t: Option<&str>) -> Result<Option<String>, IdpError> {
    use base64::Engine;
    match t {
        None => Ok(None),
        Some(t) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .map(Some)
            .ok_or_else(|| IdpError::InvalidParameter("Invalid pagination token".into())),
    }
}

/// `ListUsers`: a page of users matching `Filter`, in user name order.
pub(super) async fn list_users(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let limit = r.int("Limit").unwrap_or(60);
    if !(1..=60).contains(&limit) {
        return Err(IdpError::InvalidParameter("Limit must be 1-60".into()));
    }
    let filter = parse_filter(r.opt("Filter").unwrap_or(""))?;
    let wanted = r.strings("AttributesToGet");
    let mut after = after_token(r.opt("PaginationToken"))?;
    let mut found: Vec<UserRecord> = Vec::new();
    let mut more = false;
    'scan: loop {
        const BATCH: i64 = 200;
        let batch = pool
            .store
            .list_users(&pool.id, after.clone(), BATCH)
            .await?;
        let n = batch.len() as i64;
        for u in batch {
            after = Some(u.username.clone());
            if filter.as_ref().is_none_or(|f| filter_matches(f, &u)) {
                if found.len() as i64 == limit {
                    more = true;
                    break 'scan;
                }
                found.push(u);
            }
        }
        if n < BATCH {
            break;
        }
    }
    let users: Vec<Value> = found
        .iter()
        .map(|u| {
            let mut v = user_type(u);
            if !wanted.is_empty()
                && let Some(Value::Array(attrs)) = v.get_mut("Attributes")
            {
                attrs.retain(|a| {
                    a["Name"]
                        .as_str()
                        .is_some_and(|n| wanted.iter().any(|w| w == n))
                });
            }
            v
        })
        .collect();
    let mut out = json!({"Users": users});
    if more && let Some(last) = found.last() {
        out["PaginationToken"] = page_token(&last.username).into();
    }
    Ok(out)
}

/// `GetUser`: the user of an access token.
pub(super) async fn get_user(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let (u, _) = pool.user_of_access_token(r.str("AccessToken")?).await?;
    let mut v = json!({
        "Username": u.username,
        "UserAttributes": attribute_list(&u),
        "MFAOptions": [],
    });
    mfa_fields(pool, &u, &mut v).await?;
    Ok(v)
}

/// `UpdateUserAttributes`: the user's own change, within the client's `write_attributes`; a
/// changed email or phone becomes unverified and gets a code.
pub(super) async fn update_own_attributes(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let (u, client_id) = pool.user_of_access_token(r.str("AccessToken")?).await?;
    let attrs = r.attributes("UserAttributes")?;
    let sent = pool
        .update_attributes(&u.username, attrs, &[], Writer::User(&client_id))
        .await?;
    let list: Vec<Value> = sent.iter().map(delivery).collect();
    Ok(json!({"CodeDeliveryDetailsList": list}))
}

/// `DeleteUserAttributes`: the user's own, within the client's `write_attributes`.
pub(super) async fn delete_own_attributes(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let (u, client_id) = pool.user_of_access_token(r.str("AccessToken")?).await?;
    pool.update_attributes(
        &u.username,
        Map::new(),
        &r.strings("UserAttributeNames"),
        Writer::User(&client_id),
    )
    .await?;
    Ok(json!({}))
}

/// `DeleteUser`: the user of an access token deletes itself.
pub(super) async fn delete_self(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let (u, _) = pool.user_of_access_token(r.str("AccessToken")?).await?;
    unit(pool.delete_user(&u.username).await)
}

/// `GetUserAttributeVerificationCode`: a code to the user's own email or phone number.
pub(super) async fn attribute_verification_code(
    pool: &Pool,
    r: &Req<'_>,
) -> Result<Value, IdpError> {
    let (u, _) = pool.user_of_access_token(r.str("AccessToken")?).await?;
    let d = pool
        .attribute_verification_code(&u.username, r.str("AttributeName")?)
        .await?;
    Ok(json!({"CodeDeliveryDetails": delivery(&d)}))
}

/// `VerifyUserAttribute`: the code sent to the user's own email or phone number.
pub(super) async fn verify_attribute(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let (u, _) = pool.user_of_access_token(r.str("AccessToken")?).await?;
    unit(
        pool.verify_attribute(&u.username, r.str("AttributeName")?, r.str("Code")?)
            .await,
    )
}

/// `AdminDeleteUser`.
pub(super) async fn admin_delete_user(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    unit(pool.delete_user(r.str("Username")?).await)
}

/// `AdminSetUserPassword`: temporary, or permanent with `Permanent`.
pub(super) async fn admin_set_password(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    unit(
        pool.admin_set_password(
            r.str("Username")?,
            r.str("Password")?,
            r.bool("Permanent").unwrap_or(false),
        )
        .await,
    )
}

/// `AdminUpdateUserAttributes`.
pub(super) async fn admin_update_attributes(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    pool.update_attributes(
        r.str("Username")?,
        r.attributes("UserAttributes")?,
        &[],
        Writer::Admin,
    )
    .await
    .map(|_| json!({}))
}

/// `AdminDeleteUserAttributes`.
pub(super) async fn admin_delete_attributes(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    pool.update_attributes(
        r.str("Username")?,
        Map::new(),
        &r.strings("UserAttributeNames"),
        Writer::Admin,
    )
    .await
    .map(|_| json!({}))
}

/// `AdminEnableUser` (`enabled`) and `AdminDisableUser`.
pub(super) async fn admin_set_enabled(
    pool: &Pool,
    r: &Req<'_>,
    enabled: bool,
) -> Result<Value, IdpError> {
    unit(pool.set_enabled(r.str("Username")?, enabled).await)
}

/// `AdminConfirmSignUp`.
pub(super) async fn admin_confirm(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    unit(pool.admin_confirm(r.str("Username")?).await)
}

/// `AdminResetUserPassword`.
pub(super) async fn admin_reset_password(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    unit(pool.admin_reset_password(r.str("Username")?).await)
}

/// `AdminUserGlobalSignOut`: ends every session and refresh token of the user.
pub(super) async fn admin_global_sign_out(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let u = pool.user(r.str("Username")?).await?;
    unit(pool.global_sign_out(&u.sub).await)
}
