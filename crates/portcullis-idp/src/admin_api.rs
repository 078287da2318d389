//! Cognito's user-pool API (AWS JSON 1.1) at `POST /` of the pool's listener, so an AWS SDK pointed
//! at the pool's base URL works unchanged. Admin operations need a SigV4 signature by one of the
//! pool's access keys; public operations (`InitiateAuth`, `SignUp`, ...) need none, as at Cognito.

use crate::domain::accounts::{AuthOutcome, Delivery, Writer};
use crate::domain::catalog::{self, ClientSecret, StoredClient};
use crate::domain::grants::Tokens;
use crate::domain::mfa;
use crate::domain::pool::Pool;
use crate::domain::secrets::random_token;
use crate::domain::{directory, pool_description};
use crate::error::IdpError;
use crate::http::client_ip::ClientIp;
use crate::store::{GroupRecord, Put, UserRecord};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_config::{
    Client, RefreshTokenRotation, ResourceServer, ResourceServerScope, TimeUnit, TokenValidityUnits,
};
use serde_json::{Map, Value, json};
use std::sync::Arc;

mod identity_providers;
pub mod sigv4;

/// Largest API request body.
pub const MAX_API_BODY: usize = 128 * 1024;
const TARGET_PREFIX: &str = "AWSCognitoIdentityProviderService.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// Operations anyone may call (no signature), as at Cognito.
const PUBLIC_OPERATIONS: &[&str] = &[
    "InitiateAuth",
    "RespondToAuthChallenge",
    "SignUp",
    "ConfirmSignUp",
    "ResendConfirmationCode",
    "ForgotPassword",
    "ConfirmForgotPassword",
    "GetUser",
    "ChangePassword",
    "GlobalSignOut",
    "RevokeToken",
    "UpdateUserAttributes",
    "DeleteUserAttributes",
    "GetUserAttributeVerificationCode",
    "VerifyUserAttribute",
    "DeleteUser",
    "AssociateSoftwareToken",
    "VerifySoftwareToken",
    "SetUserMFAPreference",
];

fn reply(status: u16, body: Value) -> Response {
    let mut r = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        body.to_string(),
    )
        .into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        h.insert("x-amzn-requestid", v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn fail(status: u16, exception: &str, message: &str) -> Response {
    let mut r = reply(status, json!({"__type": exception, "message": message}));
    if let Ok(v) = HeaderValue::from_str(&format!("{exception}:")) {
        r.headers_mut().insert("x-amzn-errortype", v);
    }
    r
}

/// Public operations that check a secret (password, code, `SECRET_HASH`, challenge answer) or send
/// a code: each is admitted by the pool's rate limits first.
const LIMITED_OPERATIONS: &[&str] = &[
    "InitiateAuth",
    "RespondToAuthChallenge",
    "SignUp",
    "ConfirmSignUp",
    "ResendConfirmationCode",
    "ForgotPassword",
    "ConfirmForgotPassword",
    "ChangePassword",
    "VerifySoftwareToken",
    "GetUserAttributeVerificationCode",
    "VerifyUserAttribute",
    // Sends a code to the new address of a changed email or phone number.
    "UpdateUserAttributes",
];

/// Signed operations about the account rather than one pool (no `UserPoolId`): they see every
/// pool of this process the signing key may manage (`directory`).
const ACCOUNT_OPERATIONS: &[&str] = &["ListUserPools", "DescribeUserPoolDomain"];

/// Signed operations that check a user's password or challenge answer (limited per user).
const ADMIN_LIMITED_OPERATIONS: &[&str] = &["AdminInitiateAuth", "AdminRespondToAuthChallenge"];

/// The user a rate-limited request names: its user name, or the `sub` of a valid access token.
fn limited_subject(pool: &Pool, req: &Map<String, Value>) -> Option<String> {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    s(req.get("Username"))
        .or_else(|| s(req.get("AuthParameters").and_then(|p| p.get("USERNAME"))))
        .or_else(|| {
            s(req
                .get("ChallengeResponses")
                .and_then(|p| p.get("USERNAME")))
        })
        .or_else(|| {
            let token = req.get("AccessToken").and_then(Value::as_str)?;
            let claims = pool.keys.load().verify_access(token, &pool.issuer)?;
            s(claims.get("sub")).map(|sub| format!("sub:{sub}"))
        })
}

/// The access key id of a SigV4 `Authorization` header (for its failure bucket).
fn access_key_of(headers: &HeaderMap) -> String {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once("Credential="))
        .and_then(|(_, rest)| rest.split('/').next())
        .unwrap_or("")
        .chars()
        .take(128)
        .collect()
}

fn throttled() -> Response {
    idp_fail(IdpError::TooManyRequests)
}

fn idp_fail(e: IdpError) -> Response {
    fail(e.status(), e.exception(), &e.message())
}

/// `POST /`: dispatches on `X-Amz-Target`.
pub async fn handle(
    State(mut pool): State<Arc<Pool>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(op) = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix(TARGET_PREFIX))
        .map(str::to_string)
    else {
        return fail(
            400,
            "UnknownOperationException",
            "X-Amz-Target must be AWSCognitoIdentityProviderService.<Operation>",
        );
    };
    if body.len() > MAX_API_BODY {
        return fail(
            413,
            "RequestEntityTooLargeException",
            "request body is too large",
        );
    }
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(&body) else {
        return fail(
            400,
            "SerializationException",
            "the body must be a JSON object",
        );
    };
    let public = PUBLIC_OPERATIONS.contains(&op.as_str());
    if public
        && LIMITED_OPERATIONS.contains(&op.as_str())
        && pool
            .admit(Some(ip), limited_subject(&pool, &req).as_deref())
            .await
            .is_err()
    {
        return throttled();
    }
    if !public {
        let key = access_key_of(&headers);
        if !pool.client_auth_allowed(ip, &key).await {
            return throttled();
        }
        let signed = sigv4::SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: &body,
        };
        if let Err(e) = sigv4::verify(
            &signed,
            &pool.region,
            "cognito-idp",
            crate::now() as i64,
            |k| pool.access_keys.get(k).cloned(),
        ) {
            pool.client_auth_failed(ip, &key).await;
            let (exception, message) = e.exception();
            tracing::info!(pool = %pool.name, operation = %op, exception, "admin API request refused");
            let status = if matches!(e, sigv4::SigV4Error::UnknownKey) {
                400
            } else {
                403
            };
            return fail(status, exception, &message);
        }
        // As at Cognito's regional endpoint, a request may name any pool the key may manage.
        match (
            ACCOUNT_OPERATIONS.contains(&op.as_str()),
            req.get("UserPoolId").and_then(Value::as_str),
        ) {
            (true, _) => {
                let visible = directory::visible(&pool, &key);
                let visible: Vec<&Pool> = visible.iter().map(|p| &**p).collect();
                let answer = match op.as_str() {
                    "ListUserPools" => pool_description::list(&visible, &req).await,
                    _ => pool_description::describe_domain(&visible, &req),
                };
                return match answer {
                    Ok(v) => reply(200, v),
                    Err(e) => idp_fail(e),
                };
            }
            (false, Some(id)) => match directory::find(&pool, &key, id) {
                Some(named) => pool = named,
                None => {
                    return fail(
                        400,
                        "ResourceNotFoundException",
                        &format!(
                            "User pool {} does not exist.",
                            id.chars().take(64).collect::<String>()
                        ),
                    );
                }
            },
            (false, None) => {
                return fail(400, "InvalidParameterException", "UserPoolId is required");
            }
        }
    }
    // `RevokeToken` checks a client secret: its failures are counted as at `/oauth2/revoke`.
    let revoking: Option<String> = (op == "RevokeToken").then(|| {
        req.get("ClientId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .chars()
            .take(128)
            .collect()
    });
    if let Some(client_id) = &revoking
        && !pool.client_auth_allowed(ip, client_id).await
    {
        return throttled();
    }
    if ADMIN_LIMITED_OPERATIONS.contains(&op.as_str())
        && pool
            .admit(None, limited_subject(&pool, &req).as_deref())
            .await
            .is_err()
    {
        return throttled();
    }
    match dispatch(&pool, &op, &Req(&req)).await {
        Ok(v) => reply(200, v),
        Err(e) => {
            if e == IdpError::Internal {
                tracing::error!(pool = %pool.name, operation = %op, "admin API operation failed");
            }
            if let Some(client_id) = &revoking
                && e == client_auth_failed()
            {
                pool.client_auth_failed(ip, client_id).await;
            }
            idp_fail(e)
        }
    }
}

/// Runs one operation for a trusted local caller (the `portcullis users|groups|clients` commands):
/// the same request and answer shapes as the API, without a signature. `UserPoolId` is filled in.
pub async fn call(
    pool: &Pool,
    op: &str,
    mut request: Map<String, Value>,
) -> Result<Value, IdpError> {
    request.insert("UserPoolId".into(), pool.id.clone().into());
    dispatch(pool, op, &Req(&request)).await
}

/// Runs one operation.
async fn dispatch(pool: &Pool, op: &str, r: &Req<'_>) -> Result<Value, IdpError> {
    match op {
        // Public.
        "InitiateAuth" => initiate_auth(pool, r, false).await,
        "RespondToAuthChallenge" => respond_to_challenge(pool, r).await,
        "SignUp" => sign_up(pool, r).await,
        "ConfirmSignUp" => confirm_sign_up(pool, r).await,
        "ResendConfirmationCode" => resend(pool, r).await,
        "ForgotPassword" => forgot_password(pool, r).await,
        "ConfirmForgotPassword" => confirm_forgot_password(pool, r).await,
        "GetUser" => get_user(pool, r).await,
        "ChangePassword" => change_password(pool, r).await,
        "GlobalSignOut" => global_sign_out(pool, r).await,
        "RevokeToken" => revoke_token(pool, r).await,
        "UpdateUserAttributes" => update_own_attributes(pool, r).await,
        "DeleteUserAttributes" => delete_own_attributes(pool, r).await,
        "GetUserAttributeVerificationCode" => {
            let (u, _) = pool.user_of_access_token(r.str("AccessToken")?).await?;
            let d = pool
                .attribute_verification_code(&u.username, r.str("AttributeName")?)
                .await?;
            Ok(json!({"CodeDeliveryDetails": delivery(&d)}))
        }
        "VerifyUserAttribute" => {
            let (u, _) = pool.user_of_access_token(r.str("AccessToken")?).await?;
            unit(
                pool.verify_attribute(&u.username, r.str("AttributeName")?, r.str("Code")?)
                    .await,
            )
        }
        "DeleteUser" => delete_self(pool, r).await,
        "AssociateSoftwareToken" => associate_software_token(pool, r).await,
        "VerifySoftwareToken" => verify_software_token(pool, r).await,
        "SetUserMFAPreference" => {
            let (u, _) = pool.user_of_access_token(r.str("AccessToken")?).await?;
            set_mfa_preference(pool, r, &u.username).await
        }
        "AdminSetUserMFAPreference" => {
            let u = pool.user(r.str("Username")?).await?;
            set_mfa_preference(pool, r, &u.username).await
        }
        // Admin: the pool.
        "DescribeUserPool" => pool_description::describe(pool).await,
        "GetUserPoolMfaConfig" => Ok(pool_description::mfa_config(pool)),
        "GetSigningCertificate" => pool_description::signing_certificate(pool).await,
        // A local caller (the CLI) sees its own pool only.
        "ListUserPools" => pool_description::list(&[pool], r.0).await,
        "DescribeUserPoolDomain" => pool_description::describe_domain(&[pool], r.0),
        // Admin: clients.
        "CreateUserPoolClient" => create_client(pool, r).await,
        "DescribeUserPoolClient" => describe_client(pool, r),
        "UpdateUserPoolClient" => update_client(pool, r).await,
        "DeleteUserPoolClient" => delete_client(pool, r).await,
        "ListUserPoolClients" => Ok(list_clients(pool, r)),
        "AddUserPoolClientSecret" => add_secret(pool, r).await,
        "ListUserPoolClientSecrets" => list_secrets(pool, r),
        "DeleteUserPoolClientSecret" => delete_secret(pool, r).await,
        // Admin: resource servers.
        "CreateResourceServer" => put_resource_server(pool, r, Put::Insert).await,
        "UpdateResourceServer" => put_resource_server(pool, r, Put::Update).await,
        "DescribeResourceServer" => describe_resource_server(pool, r),
        "ListResourceServers" => Ok(list_resource_servers(pool)),
        "DeleteResourceServer" => delete_resource_server(pool, r).await,
        // Admin: groups.
        "CreateGroup" => create_group(pool, r).await,
        "GetGroup" => get_group(pool, r).await,
        "UpdateGroup" => update_group(pool, r).await,
        "DeleteGroup" => delete_group(pool, r).await,
        "ListGroups" => list_groups(pool).await,
        "ListUsersInGroup" => list_users_in_group(pool, r).await,
        "AdminAddUserToGroup" => add_to_group(pool, r, true).await,
        "AdminRemoveUserFromGroup" => add_to_group(pool, r, false).await,
        "AdminListGroupsForUser" => groups_for_user(pool, r).await,
        // Admin: users.
        "AdminCreateUser" => admin_create_user(pool, r).await,
        "AdminGetUser" => admin_get_user(pool, r).await,
        "AdminDeleteUser" => unit(pool.delete_user(r.str("Username")?).await),
        "AdminSetUserPassword" => unit(
            pool.admin_set_password(
                r.str("Username")?,
                r.str("Password")?,
                r.bool("Permanent").unwrap_or(false),
            )
            .await,
        ),
        "AdminUpdateUserAttributes" => pool
            .update_attributes(
                r.str("Username")?,
                r.attributes("UserAttributes")?,
                &[],
                Writer::Admin,
            )
            .await
            .map(|_| json!({})),
        "AdminDeleteUserAttributes" => pool
            .update_attributes(
                r.str("Username")?,
                Map::new(),
                &r.strings("UserAttributeNames"),
                Writer::Admin,
            )
            .await
            .map(|_| json!({})),
        "AdminDisableUser" => unit(pool.set_enabled(r.str("Username")?, false).await),
        "AdminEnableUser" => unit(pool.set_enabled(r.str("Username")?, true).await),
        "AdminConfirmSignUp" => unit(pool.admin_confirm(r.str("Username")?).await),
        "AdminResetUserPassword" => unit(pool.admin_reset_password(r.str("Username")?).await),
        "AdminUserGlobalSignOut" => match pool.user(r.str("Username")?).await {
            Ok(u) => unit(pool.global_sign_out(&u.sub).await),
            Err(e) => Err(e),
        },
        "AdminInitiateAuth" => initiate_auth(pool, r, true).await,
        "AdminRespondToAuthChallenge" => respond_to_challenge(pool, r).await,
        "ListUsers" => list_users(pool, r).await,
        // Admin: identity providers (federation).
        "CreateIdentityProvider"
        | "DescribeIdentityProvider"
        | "ListIdentityProviders"
        | "UpdateIdentityProvider"
        | "DeleteIdentityProvider"
        | "GetIdentityProviderByIdentifier" => identity_providers::dispatch(pool, op, r).await,
        other => Err(IdpError::Unsupported(format!(
            "Operation {} is not supported by Portcullis",
            other.chars().take(64).collect::<String>()
        ))),
    }
}

fn unit(r: Result<(), IdpError>) -> Result<Value, IdpError> {
    r.map(|()| json!({}))
}

/// Typed reads of a request's members.
struct Req<'a>(&'a Map<String, Value>);

impl Req<'_> {
    fn opt(&self, k: &str) -> Option<&str> {
        self.0.get(k).and_then(Value::as_str)
    }
    fn str(&self, k: &str) -> Result<&str, IdpError> {
        match self.opt(k) {
            Some(v) if !v.is_empty() && v.len() <= 4096 => Ok(v),
            _ => Err(IdpError::InvalidParameter(format!(
                "1 validation error detected: Value at '{}' failed to satisfy constraint: Member must not be null",
                lower_first(k)
            ))),
        }
    }
    fn bool(&self, k: &str) -> Option<bool> {
        self.0.get(k).and_then(Value::as_bool)
    }
    fn int(&self, k: &str) -> Option<i64> {
        self.0.get(k).and_then(Value::as_i64)
    }
    fn strings(&self, k: &str) -> Vec<String> {
        self.0
            .get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
    fn map(&self, k: &str) -> Map<String, Value> {
        self.0
            .get(k)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }
    /// `[{Name, Value}]` → `{name: value}`.
    fn attributes(&self, k: &str) -> Result<Map<String, Value>, IdpError> {
        let mut out = Map::new();
        let Some(list) = self.0.get(k) else {
            return Ok(out);
        };
        let Some(list) = list.as_array() else {
            return Err(IdpError::InvalidParameter(format!("{k} must be a list")));
        };
        if list.len() > 100 {
            return Err(IdpError::InvalidParameter(format!(
                "{k}: at most 100 attributes"
            )));
        }
        for a in list {
            let (Some(n), Some(v)) = (
                a.get("Name").and_then(Value::as_str),
                a.get("Value").and_then(Value::as_str),
            ) else {
                return Err(IdpError::InvalidParameter(format!(
                    "{k}: each attribute needs Name and Value"
                )));
            };
            out.insert(n.to_string(), v.into());
        }
        Ok(out)
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

// ---- users ----

fn attribute_list(u: &UserRecord) -> Value {
    let mut v = vec![json!({"Name": "sub", "Value": u.sub})];
    for (k, val) in &u.attributes {
        v.push(json!({"Name": k, "Value": val}));
    }
    Value::Array(v)
}

fn user_type(u: &UserRecord) -> Value {
    json!({
        "Username": u.username,
        "Attributes": attribute_list(u),
        "UserCreateDate": u.created_at,
        "UserLastModifiedDate": u.updated_at,
        "Enabled": u.enabled,
        "UserStatus": u.status,
    })
}

async fn admin_create_user(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
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

async fn admin_get_user(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
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

/// A parsed `ListUsers` filter: `name = "value"` or `name ^= "prefix"`.
#[derive(Debug, PartialEq, Eq)]
pub struct Filter {
    /// The attribute (`email`, `username`, `cognito:user_status`, ...).
    pub attribute: String,
    /// `^=` rather than `=`.
    pub prefix: bool,
    /// The unescaped value.
    pub value: String,
}

/// Attributes `ListUsers` can filter on (Cognito's list).
const FILTERABLE: [&str; 11] = [
    "username",
    "email",
    "phone_number",
    "name",
    "given_name",
    "family_name",
    "preferred_username",
    "cognito:user_status",
    "status",
    "sub",
    "nickname",
];

/// Parses a `ListUsers` filter (`None` for an empty one).
pub fn parse_filter(f: &str) -> Result<Option<Filter>, IdpError> {
    let bad = || IdpError::InvalidParameter(format!("Error while parsing filter: {f}"));
    let f = f.trim();
    if f.is_empty() {
        return Ok(None);
    }
    // The operator is whatever precedes the opening quote (values may contain `=` and `^=`).
    let quote = f.find('"').ok_or_else(bad)?;
    let (head, rest) = f.split_at(quote);
    let head = head.trim_end();
    let (name, prefix) = if let Some(n) = head.strip_suffix("^=") {
        (n, true)
    } else if let Some(n) = head.strip_suffix('=') {
        (n, false)
    } else {
        return Err(bad());
    };
    let name = name.trim();
    if !FILTERABLE.contains(&name) {
        return Err(IdpError::InvalidParameter(format!(
            "Invalid search attribute: {name}"
        )));
    }
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or_else(bad)?;
    let mut value = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => value.push(chars.next().ok_or_else(bad)?),
            '"' => return Err(bad()),
            c => value.push(c),
        }
    }
    Ok(Some(Filter {
        attribute: name.to_string(),
        prefix,
        value,
    }))
}

fn filter_matches(f: &Filter, u: &UserRecord) -> bool {
    let got: Option<String> = match f.attribute.as_str() {
        "username" => Some(u.username.clone()),
        "sub" => Some(u.sub.clone()),
        "cognito:user_status" => Some(u.status.clone()),
        "status" => Some(if u.enabled { "Enabled" } else { "Disabled" }.into()),
        a => u
            .attributes
            .get(a)
            .and_then(Value::as_str)
            .map(str::to_string),
    };
    match got {
        Some(g) if f.prefix => g.starts_with(&f.value),
        Some(g) => g == f.value,
        None => false,
    }
}

fn page_token(last: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last)
}

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

async fn list_users(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
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

// ---- sign-in ----

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

fn client_of(pool: &Pool, r: &Req<'_>) -> Result<Arc<StoredClient>, IdpError> {
    let id = r.str("ClientId")?;
    pool.client(id).ok_or_else(|| {
        IdpError::ResourceNotFound(format!(
            "User pool client {} does not exist.",
            id.chars().take(128).collect::<String>()
        ))
    })
}

async fn initiate_auth(pool: &Pool, r: &Req<'_>, admin: bool) -> Result<Value, IdpError> {
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

async fn respond_to_challenge(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
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

/// `AssociateSoftwareToken` with an access token or an `MFA_SETUP` session.
async fn associate_software_token(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
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
async fn verify_software_token(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
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

async fn mfa_fields(pool: &Pool, u: &UserRecord, v: &mut Value) -> Result<(), IdpError> {
    if pool.has_totp(&u.username).await? {
        v["UserMFASettingList"] = json!(["SOFTWARE_TOKEN_MFA"]);
        v["PreferredMfaSetting"] = "SOFTWARE_TOKEN_MFA".into();
    }
    Ok(())
}

fn delivery(d: &Delivery) -> Value {
    json!({"Destination": d.destination, "DeliveryMedium": d.medium, "AttributeName": d.attribute})
}

async fn sign_up(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
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

async fn confirm_sign_up(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let client = client_of(pool, r)?;
    let username = r.str("Username")?;
    pool.check_secret_hash(&client.client.client_id, username, r.opt("SecretHash"))?;
    unit(
        pool.confirm_sign_up(username, r.str("ConfirmationCode")?, reveals(&client))
            .await,
    )
}

async fn resend(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let client = client_of(pool, r)?;
    let username = r.str("Username")?;
    pool.check_secret_hash(&client.client.client_id, username, r.opt("SecretHash"))?;
    let d = pool.resend_confirmation(username, reveals(&client)).await?;
    Ok(d.map_or(json!({}), |d| json!({"CodeDeliveryDetails": delivery(&d)})))
}

async fn forgot_password(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let client = client_of(pool, r)?;
    let username = r.str("Username")?;
    pool.check_secret_hash(&client.client.client_id, username, r.opt("SecretHash"))?;
    let d = pool.forgot_password(username, reveals(&client)).await?;
    Ok(json!({"CodeDeliveryDetails": delivery(&d)}))
}

async fn confirm_forgot_password(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let client = client_of(pool, r)?;
    let username = r.str("Username")?;
    pool.check_secret_hash(&client.client.client_id, username, r.opt("SecretHash"))?;
    unit(
        pool.confirm_forgot_password(username, r.str("ConfirmationCode")?, r.str("Password")?)
            .await,
    )
}

async fn get_user(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let (u, _) = pool.user_of_access_token(r.str("AccessToken")?).await?;
    let mut v = json!({
        "Username": u.username,
        "UserAttributes": attribute_list(&u),
        "MFAOptions": [],
    });
    mfa_fields(pool, &u, &mut v).await?;
    Ok(v)
}

async fn change_password(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    unit(
        pool.change_password(
            r.str("AccessToken")?,
            r.str("PreviousPassword")?,
            r.str("ProposedPassword")?,
        )
        .await,
    )
}

async fn global_sign_out(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let (u, _) = pool.user_of_access_token(r.str("AccessToken")?).await?;
    unit(pool.global_sign_out(&u.sub).await)
}

/// Whether a client reveals which users exist (`PreventUserExistenceErrors = LEGACY`).
fn reveals(client: &StoredClient) -> bool {
    client.client.prevent_user_existence_errors == "LEGACY"
}

/// `UpdateUserAttributes`: the user's own change, within the client's `write_attributes`; a
/// changed email or phone becomes unverified and gets a code.
async fn update_own_attributes(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let (u, client_id) = pool.user_of_access_token(r.str("AccessToken")?).await?;
    let attrs = r.attributes("UserAttributes")?;
    let sent = pool
        .update_attributes(&u.username, attrs, &[], Writer::User(&client_id))
        .await?;
    let list: Vec<Value> = sent.iter().map(delivery).collect();
    Ok(json!({"CodeDeliveryDetailsList": list}))
}

/// `DeleteUserAttributes`: the user's own, within the client's `write_attributes`.
async fn delete_own_attributes(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
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

async fn delete_self(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let (u, _) = pool.user_of_access_token(r.str("AccessToken")?).await?;
    unit(pool.delete_user(&u.username).await)
}

/// `RevokeToken`'s answer to a wrong or missing client secret (counted by [`handle`]).
fn client_auth_failed() -> IdpError {
    IdpError::NotAuthorized("Client authentication failed".into())
}

async fn revoke_token(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
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

// ---- the pool ----

// ---- clients ----

fn unit_name(u: TimeUnit) -> &'static str {
    match u {
        TimeUnit::Seconds => "seconds",
        TimeUnit::Minutes => "minutes",
        TimeUnit::Hours => "hours",
        TimeUnit::Days => "days",
    }
}

fn parse_unit(v: Option<&Value>, default: TimeUnit) -> Result<TimeUnit, IdpError> {
    match v.and_then(Value::as_str) {
        None => Ok(default),
        Some("seconds") => Ok(TimeUnit::Seconds),
        Some("minutes") => Ok(TimeUnit::Minutes),
        Some("hours") => Ok(TimeUnit::Hours),
        Some("days") => Ok(TimeUnit::Days),
        Some(_) => Err(IdpError::InvalidParameter(
            "TokenValidityUnits must be seconds, minutes, hours or days".into(),
        )),
    }
}

fn client_type(pool: &Pool, c: &StoredClient, with_secret: bool) -> Value {
    let cl = &c.client;
    let u = cl.token_validity_units;
    let mut v = json!({
        "UserPoolId": pool.id,
        "ClientName": cl.client_name.clone().unwrap_or_else(|| cl.client_id.clone()),
        "ClientId": cl.client_id,
        "CreationDate": c.created_at,
        "LastModifiedDate": c.updated_at,
        "RefreshTokenValidity": cl.refresh_token_validity.unwrap_or(30),
        "AccessTokenValidity": cl.access_token_validity.unwrap_or(60),
        "IdTokenValidity": cl.id_token_validity.unwrap_or(60),
        "TokenValidityUnits": {
            "AccessToken": unit_name(u.access_token),
            "IdToken": unit_name(u.id_token),
            "RefreshToken": unit_name(u.refresh_token),
        },
        "ExplicitAuthFlows": cl.explicit_auth_flows.clone().unwrap_or_else(|| portcullis_config::DEFAULT_EXPLICIT_AUTH_FLOWS.iter().map(|s| s.to_string()).collect()),
        "SupportedIdentityProviders": cl.identity_providers(),
        "CallbackURLs": cl.callback_urls,
        "LogoutURLs": cl.logout_urls,
        "AllowedOAuthFlows": cl.allowed_oauth_flows,
        "AllowedOAuthScopes": cl.allowed_oauth_scopes,
        "AllowedOAuthFlowsUserPoolClient": cl.oauth_enabled(),
        "PreventUserExistenceErrors": cl.prevent_user_existence_errors,
        "EnableTokenRevocation": cl.enable_token_revocation,
        "AuthSessionValidity": cl.auth_session_validity,
    });
    if let Some(d) = &cl.default_redirect_uri {
        v["DefaultRedirectURI"] = d.clone().into();
    }
    // Ours, not Cognito's (see BACKCHANNEL_LOGOUT_URI).
    if let Some(u) = &cl.backchannel_logout_uri {
        v[BACKCHANNEL_LOGOUT_URI] = u.clone().into();
        v[BACKCHANNEL_LOGOUT_SESSION_REQUIRED] = cl.backchannel_logout_session_required.into();
    }
    if let Some(ra) = &cl.read_attributes {
        v["ReadAttributes"] = ra.clone().into();
    }
    if let Some(wa) = &cl.write_attributes {
        v["WriteAttributes"] = wa.clone().into();
    }
    if let Some(rot) = &cl.refresh_token_rotation {
        v["RefreshTokenRotation"] = json!({"Feature": rot.feature, "RetryGracePeriodSeconds": rot.retry_grace_period_seconds});
    }
    if with_secret && let Some(s) = c.secrets.first() {
        v["ClientSecret"] = s.value.clone().into();
    }
    v
}

/// Our extension field of `Create/Update/DescribeUserPoolClient` (Cognito has none): the
/// client's OIDC Back-Channel Logout URI.
pub const BACKCHANNEL_LOGOUT_URI: &str = "PortcullisBackchannelLogoutURI";
/// Our extension field: the client needs `sid` in logout tokens (they always carry it).
pub const BACKCHANNEL_LOGOUT_SESSION_REQUIRED: &str = "PortcullisBackchannelLogoutSessionRequired";

/// Builds a client from a create/update request (`base` holds the current settings on update;
/// Cognito's update replaces every setting not given with its default, and so does this).
fn client_from_request(r: &Req<'_>, client_id: &str) -> Result<Client, IdpError> {
    let units = r.map("TokenValidityUnits");
    let name = r.str("ClientName")?;
    if name.len() > 128 {
        return Err(IdpError::InvalidParameter(
            "ClientName is at most 128 characters".into(),
        ));
    }
    let rotation =
        r.0.get("RefreshTokenRotation")
            .map(|v| RefreshTokenRotation {
                feature: v
                    .get("Feature")
                    .and_then(Value::as_str)
                    .unwrap_or("DISABLED")
                    .to_string(),
                retry_grace_period_seconds: v
                    .get("RetryGracePeriodSeconds")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
            });
    let num = |k: &str| -> Result<Option<u64>, IdpError> {
        match r.0.get(k) {
            None => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                IdpError::InvalidParameter(format!("{k} must be a positive number"))
            }),
        }
    };
    let explicit = r.strings("ExplicitAuthFlows");
    let read = r.strings("ReadAttributes");
    let write = r.strings("WriteAttributes");
    Ok(Client {
        client_id: client_id.to_string(),
        client_name: Some(name.to_string()),
        generate_secret: false,
        client_secret: None,
        allowed_oauth_flows: r.strings("AllowedOAuthFlows"),
        allowed_oauth_scopes: r.strings("AllowedOAuthScopes"),
        callback_urls: r.strings("CallbackURLs"),
        logout_urls: r.strings("LogoutURLs"),
        access_token_validity: num("AccessTokenValidity")?,
        id_token_validity: num("IdTokenValidity")?,
        refresh_token_validity: num("RefreshTokenValidity")?,
        token_validity_units: TokenValidityUnits {
            access_token: parse_unit(units.get("AccessToken"), TimeUnit::Hours)?,
            id_token: parse_unit(units.get("IdToken"), TimeUnit::Hours)?,
            refresh_token: parse_unit(units.get("RefreshToken"), TimeUnit::Days)?,
        },
        read_attributes: (!read.is_empty()).then_some(read),
        refresh_token_rotation: rotation,
        explicit_auth_flows: (!explicit.is_empty()).then_some(explicit),
        prevent_user_existence_errors: r
            .opt("PreventUserExistenceErrors")
            .unwrap_or("LEGACY")
            .to_string(),
        enable_token_revocation: r.bool("EnableTokenRevocation").unwrap_or(true),
        auth_session_validity: r.int("AuthSessionValidity").unwrap_or(3).max(0) as u64,
        write_attributes: (!write.is_empty()).then_some(write),
        logo_url: None,
        css: None,
        allowed_oauth_flows_user_pool_client: Some(
            r.bool("AllowedOAuthFlowsUserPoolClient").unwrap_or(false),
        ),
        default_redirect_uri: r.opt("DefaultRedirectURI").map(str::to_string),
        supported_identity_providers: r
            .0
            .get("SupportedIdentityProviders")
            .map(|_| r.strings("SupportedIdentityProviders")),
        backchannel_logout_uri: r.opt(BACKCHANNEL_LOGOUT_URI).map(str::to_string),
        backchannel_logout_session_required: r
            .bool(BACKCHANNEL_LOGOUT_SESSION_REQUIRED)
            .unwrap_or(false),
    })
}

fn check_client(pool: &Pool, c: &Client, has_secret: bool) -> Result<(), IdpError> {
    identity_providers::check_supported(pool, c)?;
    let mut c = c.clone();
    // The secret is handled apart; the shared rules need to know whether there is one.
    c.generate_secret = has_secret;
    let problems = portcullis_config::client_problems(&c, &pool.catalog().custom_scopes());
    if let Some((field, reason)) = problems.into_iter().next() {
        return Err(if field.starts_with("allowed_oauth_scopes") {
            IdpError::ScopeDoesNotExist(format!("{field}: {reason}"))
        } else if field.starts_with("allowed_oauth_flows") {
            IdpError::InvalidOAuthFlow(format!("{field}: {reason}"))
        } else {
            IdpError::InvalidParameter(format!(
                "{}: {reason}",
                if field.is_empty() { "client" } else { &field }
            ))
        });
    }
    if c.oauth_enabled() && c.allowed_oauth_flows.is_empty() {
        return Err(IdpError::InvalidOAuthFlow(
            "AllowedOAuthFlows is required when AllowedOAuthFlowsUserPoolClient is true".into(),
        ));
    }
    Ok(())
}

fn new_client_id() -> Result<String, IdpError> {
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut b = [0u8; 26];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| IdpError::Internal)?;
    Ok(b.iter()
        .map(|x| ALPHABET[*x as usize % 36] as char)
        .collect())
}

fn new_secret(value: Option<&str>) -> Result<ClientSecret, IdpError> {
    let value = match value {
        Some(v) if (24..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic()) => {
            v.to_string()
        }
        Some(_) => {
            return Err(IdpError::InvalidParameter(
                "ClientSecret must be 24-64 printable characters".into(),
            ));
        }
        None => random_token(38)?,
    };
    Ok(ClientSecret {
        id: format!("{}--{}", uuid::Uuid::new_v4().simple(), crate::now()),
        value,
        created_at: crate::now() as i64,
    })
}

async fn create_client(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let id = new_client_id()?;
    let client = client_from_request(r, &id)?;
    let given = r.opt("ClientSecret");
    let generate = r.bool("GenerateSecret").unwrap_or(false);
    if given.is_some() && generate {
        return Err(IdpError::InvalidParameter(
            "Give ClientSecret or GenerateSecret, not both".into(),
        ));
    }
    let secrets = if generate || given.is_some() {
        vec![new_secret(given)?]
    } else {
        Vec::new()
    };
    check_client(pool, &client, !secrets.is_empty())?;
    if pool.catalog().clients.len() >= 1000 {
        return Err(IdpError::LimitExceeded(
            "A pool has at most 1000 app clients".into(),
        ));
    }
    let now = crate::now() as i64;
    let stored = StoredClient {
        client,
        secrets,
        created_at: now,
        updated_at: now,
    };
    catalog::put_client(pool.store.as_ref(), &pool.id, &stored, Put::Insert).await?;
    pool.reload_catalog().await?;
    Ok(json!({"UserPoolClient": client_type(pool, &stored, true)}))
}

fn existing_client(pool: &Pool, r: &Req<'_>) -> Result<Arc<StoredClient>, IdpError> {
    client_of(pool, r)
}

fn describe_client(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let c = existing_client(pool, r)?;
    Ok(json!({"UserPoolClient": client_type(pool, &c, true)}))
}

async fn update_client(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let old = existing_client(pool, r)?;
    let mut client = client_from_request(r, &old.client.client_id).or_else(|e| {
        // ClientName is optional on update.
        if r.opt("ClientName").is_none() {
            let mut m = r.0.clone();
            m.insert(
                "ClientName".into(),
                old.client.client_name.clone().unwrap_or_default().into(),
            );
            client_from_request(&Req(&m), &old.client.client_id)
        } else {
            Err(e)
        }
    })?;
    client.logo_url = old.client.logo_url.clone();
    client.css = old.client.css.clone();
    check_client(pool, &client, !old.secrets.is_empty())?;
    let stored = StoredClient {
        client,
        secrets: old.secrets.clone(),
        created_at: old.created_at,
        updated_at: crate::now() as i64,
    };
    catalog::put_client(pool.store.as_ref(), &pool.id, &stored, Put::Update).await?;
    pool.reload_catalog().await?;
    Ok(json!({"UserPoolClient": client_type(pool, &stored, true)}))
}

async fn delete_client(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let c = existing_client(pool, r)?;
    pool.store
        .delete_object(&pool.id, catalog::CLIENT, &c.client.client_id)
        .await?;
    pool.reload_catalog().await?;
    Ok(json!({}))
}

fn list_clients(pool: &Pool, _r: &Req<'_>) -> Value {
    let catalog = pool.catalog();
    let mut v: Vec<Value> = catalog
        .clients
        .values()
        .map(|c| {
            json!({
                "ClientId": c.client.client_id,
                "UserPoolId": pool.id,
                "ClientName": c.client.client_name.clone().unwrap_or_else(|| c.client.client_id.clone()),
            })
        })
        .collect();
    v.sort_by(|a, b| a["ClientId"].as_str().cmp(&b["ClientId"].as_str()));
    json!({"UserPoolClients": v})
}

async fn add_secret(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let c = existing_client(pool, r)?;
    if c.secrets.is_empty() {
        return Err(IdpError::InvalidParameter(
            "A secret can only be added to a confidential client".into(),
        ));
    }
    if c.secrets.len() >= catalog::MAX_SECRETS {
        return Err(IdpError::LimitExceeded(
            "A client has at most two secrets; delete one first".into(),
        ));
    }
    let s = new_secret(r.opt("ClientSecret"))?;
    let mut stored = (*c).clone();
    stored.secrets.push(s.clone());
    stored.updated_at = crate::now() as i64;
    catalog::put_client(pool.store.as_ref(), &pool.id, &stored, Put::Update).await?;
    pool.reload_catalog().await?;
    Ok(json!({"ClientSecretDescriptor": {
        "ClientSecretId": s.id,
        "ClientSecretValue": s.value,
        "ClientSecretCreateDate": s.created_at,
    }}))
}

fn list_secrets(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let c = existing_client(pool, r)?;
    let v: Vec<Value> = c
        .secrets
        .iter()
        .map(|s| json!({"ClientSecretId": s.id, "ClientSecretCreateDate": s.created_at}))
        .collect();
    Ok(json!({"ClientSecrets": v}))
}

async fn delete_secret(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let c = existing_client(pool, r)?;
    let id = r.str("ClientSecretId")?;
    if !c.secrets.iter().any(|s| s.id == id) {
        return Err(IdpError::ResourceNotFound(
            "The client secret does not exist.".into(),
        ));
    }
    if c.secrets.len() == 1 {
        return Err(IdpError::InvalidParameter(
            "The last secret of a client cannot be deleted".into(),
        ));
    }
    let mut stored = (*c).clone();
    stored.secrets.retain(|s| s.id != id);
    stored.updated_at = crate::now() as i64;
    catalog::put_client(pool.store.as_ref(), &pool.id, &stored, Put::Update).await?;
    pool.reload_catalog().await?;
    Ok(json!({}))
}

// ---- resource servers ----

fn resource_server_type(pool: &Pool, rs: &ResourceServer) -> Value {
    json!({
        "UserPoolId": pool.id,
        "Identifier": rs.identifier,
        "Name": rs.name.clone().unwrap_or_else(|| rs.identifier.clone()),
        "Scopes": rs.scopes.iter().map(|s| json!({"ScopeName": s.name, "ScopeDescription": s.description.clone().unwrap_or_default()})).collect::<Vec<_>>(),
    })
}

async fn put_resource_server(pool: &Pool, r: &Req<'_>, mode: Put) -> Result<Value, IdpError> {
    let identifier = r.str("Identifier")?;
    if identifier.len() > 256 || identifier.contains(char::is_whitespace) {
        return Err(IdpError::InvalidParameter(
            "Identifier is 1-256 characters without spaces".into(),
        ));
    }
    let mut scopes = Vec::new();
    for s in
        r.0.get("Scopes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    {
        let name = s.get("ScopeName").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() || name.len() > 256 || name.contains([' ', '/']) {
            return Err(IdpError::InvalidParameter(
                "ScopeName is 1-256 characters without spaces or '/'".into(),
            ));
        }
        scopes.push(ResourceServerScope {
            name: name.to_string(),
            description: s
                .get("ScopeDescription")
                .and_then(Value::as_str)
                .map(str::to_string),
        });
    }
    if scopes.len() > 100 {
        return Err(IdpError::LimitExceeded(
            "at most 100 scopes per resource server".into(),
        ));
    }
    let rs = ResourceServer {
        identifier: identifier.to_string(),
        name: Some(r.str("Name")?.to_string()),
        scopes,
    };
    if mode == Put::Insert && pool.catalog().resource_servers.len() >= 25 {
        return Err(IdpError::LimitExceeded(
            "A pool has at most 25 resource servers".into(),
        ));
    }
    if !catalog::put_resource_server(pool.store.as_ref(), &pool.id, &rs, mode).await? {
        return Err(if mode == Put::Insert {
            IdpError::InvalidParameter(format!("{identifier} already exists in this user pool"))
        } else {
            IdpError::ResourceNotFound("The resource server does not exist.".into())
        });
    }
    pool.reload_catalog().await?;
    Ok(json!({"ResourceServer": resource_server_type(pool, &rs)}))
}

fn describe_resource_server(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let id = r.str("Identifier")?;
    let c = pool.catalog();
    let rs = c
        .resource_servers
        .iter()
        .find(|rs| rs.identifier == id)
        .ok_or_else(|| IdpError::ResourceNotFound("The resource server does not exist.".into()))?;
    Ok(json!({"ResourceServer": resource_server_type(pool, rs)}))
}

fn list_resource_servers(pool: &Pool) -> Value {
    let c = pool.catalog();
    json!({"ResourceServers": c.resource_servers.iter().map(|rs| resource_server_type(pool, rs)).collect::<Vec<_>>()})
}

async fn delete_resource_server(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let id = r.str("Identifier")?;
    if !pool
        .store
        .delete_object(&pool.id, catalog::RESOURCE_SERVER, id)
        .await?
    {
        return Err(IdpError::ResourceNotFound(
            "The resource server does not exist.".into(),
        ));
    }
    pool.reload_catalog().await?;
    Ok(json!({}))
}

// ---- groups ----

fn group_type(pool: &Pool, g: &GroupRecord) -> Value {
    let mut v = json!({"GroupName": g.name, "UserPoolId": pool.id});
    if let Some(p) = g.precedence {
        v["Precedence"] = p.into();
    }
    if let Some(d) = &g.description {
        v["Description"] = d.clone().into();
    }
    v
}

fn group_input(r: &Req<'_>) -> Result<GroupRecord, IdpError> {
    let name = r.str("GroupName")?;
    if name.len() > 128 || name.chars().any(char::is_control) {
        return Err(IdpError::InvalidParameter(
            "GroupName is 1-128 characters".into(),
        ));
    }
    let precedence = r.int("Precedence");
    if precedence.is_some_and(|p| p < 0) {
        return Err(IdpError::InvalidParameter(
            "Precedence must be 0 or more".into(),
        ));
    }
    let description = r.opt("Description").map(str::to_string);
    if description.as_ref().is_some_and(|d| d.len() > 2048) {
        return Err(IdpError::InvalidParameter(
            "Description is at most 2048 characters".into(),
        ));
    }
    Ok(GroupRecord {
        name: name.to_string(),
        precedence,
        description,
    })
}

async fn find_group(pool: &Pool, name: &str) -> Result<GroupRecord, IdpError> {
    pool.store
        .groups(&pool.id)
        .await?
        .into_iter()
        .find(|g| g.name == name)
        .ok_or_else(|| IdpError::ResourceNotFound("Group not found.".into()))
}

async fn create_group(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let g = group_input(r)?;
    if !pool.store.insert_group(&pool.id, g.clone()).await? {
        return Err(IdpError::GroupExists(g.name));
    }
    Ok(json!({"Group": group_type(pool, &g)}))
}

async fn get_group(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let g = find_group(pool, r.str("GroupName")?).await?;
    Ok(json!({"Group": group_type(pool, &g)}))
}

async fn update_group(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let mut g = find_group(pool, r.str("GroupName")?).await?;
    let input = group_input(r)?;
    if r.0.contains_key("Precedence") {
        g.precedence = input.precedence;
    }
    if r.0.contains_key("Description") {
        g.description = input.description;
    }
    pool.store
        .upsert_group(&pool.id, &g.name, g.precedence, g.description.as_deref())
        .await?;
    Ok(json!({"Group": group_type(pool, &g)}))
}

async fn delete_group(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    if !pool
        .store
        .delete_group(&pool.id, r.str("GroupName")?)
        .await?
    {
        return Err(IdpError::ResourceNotFound("Group not found.".into()));
    }
    Ok(json!({}))
}

async fn list_groups(pool: &Pool) -> Result<Value, IdpError> {
    let groups = pool.store.groups(&pool.id).await?;
    Ok(json!({"Groups": groups.iter().map(|g| group_type(pool, g)).collect::<Vec<_>>()}))
}

async fn list_users_in_group(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let g = find_group(pool, r.str("GroupName")?).await?;
    let mut users = Vec::new();
    for sub in pool.store.group_members(&pool.id, &g.name).await? {
        if let Some(u) = pool.store.user_by_sub(&pool.id, &sub).await? {
            users.push(user_type(&u));
        }
    }
    Ok(json!({"Users": users}))
}

async fn add_to_group(pool: &Pool, r: &Req<'_>, add: bool) -> Result<Value, IdpError> {
    let u = pool.user(r.str("Username")?).await?;
    let g = find_group(pool, r.str("GroupName")?).await?;
    if add {
        if pool.store.groups_of(&pool.id, &u.sub).await?.len() >= 100 {
            return Err(IdpError::LimitExceeded(
                "A user is in at most 100 groups".into(),
            ));
        }
        pool.store.add_to_group(&pool.id, &g.name, &u.sub).await?;
    } else {
        pool.store
            .remove_from_group(&pool.id, &g.name, &u.sub)
            .await?;
    }
    Ok(json!({}))
}

async fn groups_for_user(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let u = pool.user(r.str("Username")?).await?;
    let names = pool.store.groups_of(&pool.id, &u.sub).await?;
    let all = pool.store.groups(&pool.id).await?;
    let v: Vec<Value> = names
        .iter()
        .filter_map(|n| all.iter().find(|g| &g.name == n))
        .map(|g| group_type(pool, g))
        .collect();
    Ok(json!({"Groups": v}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_like_cognitos() {
        assert_eq!(
            parse_filter(r#"email = "a@example.com""#).unwrap(),
            Some(Filter {
                attribute: "email".into(),
                prefix: false,
                value: "a@example.com".into()
            })
        );
        assert_eq!(
            parse_filter(r#"username ^= "al\"x""#).unwrap(),
            Some(Filter {
                attribute: "username".into(),
                prefix: true,
                value: "al\"x".into()
            })
        );
        assert_eq!(parse_filter("  ").unwrap(), None);
        assert_eq!(
            parse_filter(r#"name = "a ^= b = c""#)
                .unwrap()
                .unwrap()
                .value,
            "a ^= b = c"
        );
        for bad in [
            "email",
            r#"email = a"#,
            r#"password = "x""#,
            r#"email = "a"b""#,
            r#"email = "a\"#,
        ] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn client_ids_look_like_cognitos() {
        let id = new_client_id().unwrap();
        assert_eq!(id.len(), 26);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
    }

    proptest::proptest! {
        /// Any value, quoted with `\` escapes, parses back to itself, for both operators.
        #[test]
        fn filter_values_round_trip(value in "[^\u{0}]{0,40}", prefix in proptest::bool::ANY) {
            let quoted: String = value
                .chars()
                .flat_map(|c| if c == '"' || c == '\\' { vec!['\\', c] } else { vec![c] })
                .collect();
            let op = if prefix { "^=" } else { "=" };
            let f = parse_filter(&format!("email {op} \"{quoted}\"")).unwrap().unwrap();
            proptest::prop_assert_eq!(f.value, value);
            proptest::prop_assert_eq!(f.prefix, prefix);
        }

        /// Arbitrary text never panics the parser.
        #[test]
        fn filter_parser_never_panics(s in ".{0,80}") {
            let _ = parse_filter(&s);
        }
    }
}
