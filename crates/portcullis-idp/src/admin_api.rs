//! Cognito's user-pool API (AWS JSON 1.1) at `POST /` of the pool's listener, so an AWS SDK pointed
//! at the pool's base URL works unchanged. Admin operations need a SigV4 signature by one of the
//! pool's access keys; public operations (`InitiateAuth`, `SignUp`, ...) need none, as at Cognito.
//!
//! This file is the front door: the rate limits and signature each operation needs, the
//! dispatch from operation name to its handler, and Cognito's error shape. The handlers live one
//! module per resource (`users`, `auth_flows`, `mfa`, `clients`, `resource_servers`, `groups`,
//! `identity_providers`), read requests with `request` and call `Pool`; `filter` is the
//! `ListUsers` filter language and `sigv4` the signature check.

use crate::domain::pool::Pool;
use crate::domain::{directory, pool_description};
use crate::error::IdpError;
use crate::http::client_ip::ClientIp;
use crate::store::Put;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use request::Req;
use serde_json::{Map, Value, json};
use std::sync::Arc;

mod auth_flows;
mod clients;
pub mod filter;
mod groups;
mod identity_providers;
mod mfa;
mod request;
mod resource_servers;
pub mod sigv4;
mod users;

pub use clients::{BACKCHANNEL_LOGOUT_SESSION_REQUIRED, BACKCHANNEL_LOGOUT_URI};
pub use filter::{Filter, parse_filter};

/// Largest API request body.
pub const MAX_API_BODY: usize = 128 * 1024;
const TARGET_PREFIX: &str = "AWSCognitoIdentityProviderService.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// What a public operation must pass before it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Limit {
    /// It checks a secret (password, code, `SECRET_HASH`, challenge answer) or sends a code: the
    /// pool's rate limits admit it first.
    Admitted,
    /// Nothing.
    Free,
}

/// Operations anyone may call (no signature), as at Cognito, with what each must pass.
const PUBLIC_OPERATIONS: &[(&str, Limit)] = &[
    ("InitiateAuth", Limit::Admitted),
    ("RespondToAuthChallenge", Limit::Admitted),
    ("SignUp", Limit::Admitted),
    ("ConfirmSignUp", Limit::Admitted),
    ("ResendConfirmationCode", Limit::Admitted),
    ("ForgotPassword", Limit::Admitted),
    ("ConfirmForgotPassword", Limit::Admitted),
    ("GetUser", Limit::Free),
    ("ChangePassword", Limit::Admitted),
    ("GlobalSignOut", Limit::Free),
    ("RevokeToken", Limit::Free),
    // Sends a code to the new address of a changed email or phone number.
    ("UpdateUserAttributes", Limit::Admitted),
    ("DeleteUserAttributes", Limit::Free),
    ("GetUserAttributeVerificationCode", Limit::Admitted),
    ("VerifyUserAttribute", Limit::Admitted),
    ("DeleteUser", Limit::Free),
    ("AssociateSoftwareToken", Limit::Free),
    ("VerifySoftwareToken", Limit::Admitted),
    ("SetUserMFAPreference", Limit::Free),
];

/// What public operation `op` must pass; `None` for an operation that needs a signature.
fn public_operation(op: &str) -> Option<Limit> {
    PUBLIC_OPERATIONS
        .iter()
        .find(|(name, _)| *name == op)
        .map(|(_, limit)| *limit)
}

/// Signed operations about the account rather than one pool (no `UserPoolId`): they see every
/// pool of this process the signing key may manage (`directory`).
const ACCOUNT_OPERATIONS: &[&str] = &["ListUserPools", "DescribeUserPoolDomain"];

/// Signed operations that check a user's password or challenge answer (limited per user).
const ADMIN_LIMITED_OPERATIONS: &[&str] = &["AdminInitiateAuth", "AdminRespondToAuthChallenge"];

/// An answer in the AWS JSON 1.1 shape, with a request id.
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

/// Cognito's error answer: `__type` and `message`, and `x-amzn-errortype`.
fn fail(status: u16, exception: &str, message: &str) -> Response {
    let mut r = reply(status, json!({"__type": exception, "message": message}));
    if let Ok(v) = HeaderValue::from_str(&format!("{exception}:")) {
        r.headers_mut().insert("x-amzn-errortype", v);
    }
    r
}

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

/// 400 `TooManyRequestsException`: a rate limit refused the request.
fn throttled() -> Response {
    idp_fail(IdpError::TooManyRequests)
}

/// Cognito's answer to an `IdpError`.
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
    let public = public_operation(&op);
    if public == Some(Limit::Admitted)
        && pool
            .admit(Some(ip), limited_subject(&pool, &req).as_deref())
            .await
            .is_err()
    {
        return throttled();
    }
    if public.is_none() {
        pool = match signed_pool(pool, ip, &op, &headers, &body, &req).await {
            Ok(named) => named,
            Err(answer) => return *answer,
        };
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
                && e == auth_flows::client_auth_failed()
            {
                pool.client_auth_failed(ip, client_id).await;
            }
            idp_fail(e)
        }
    }
}

/// The pool a signed request acts on: the SigV4 signature checked (its failures counted per
/// access key), then, as at Cognito's regional endpoint, the pool it names among those the key
/// may manage. `Err` is the answer instead: a refusal, or an account operation's result.
async fn signed_pool(
    pool: Arc<Pool>,
    ip: std::net::IpAddr,
    op: &str,
    headers: &HeaderMap,
    body: &Bytes,
    req: &Map<String, Value>,
) -> Result<Arc<Pool>, Box<Response>> {
    let key = access_key_of(headers);
    if !pool.client_auth_allowed(ip, &key).await {
        return Err(Box::new(throttled()));
    }
    let signed = sigv4::SignedRequest::api_post(headers, body);
    if let Err(e) = sigv4::verify(
        &signed,
        &pool.region,
        "cognito-idp",
        portcullis_core::now() as i64,
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
        return Err(Box::new(fail(status, exception, &message)));
    }
    // As at Cognito's regional endpoint, a request may name any pool the key may manage.
    match (
        ACCOUNT_OPERATIONS.contains(&op),
        req.get("UserPoolId").and_then(Value::as_str),
    ) {
        (true, _) => {
            let visible = directory::visible(&pool, &key);
            let visible: Vec<&Pool> = visible.iter().map(|p| &**p).collect();
            let answer = match op {
                "ListUserPools" => pool_description::list(&visible, req).await,
                _ => pool_description::describe_domain(&visible, req),
            };
            Err(Box::new(match answer {
                Ok(v) => reply(200, v),
                Err(e) => idp_fail(e),
            }))
        }
        (false, Some(id)) => directory::find(&pool, &key, id).ok_or_else(|| {
            Box::new(fail(
                400,
                "ResourceNotFoundException",
                &format!(
                    "User pool {} does not exist.",
                    id.chars().take(64).collect::<String>()
                ),
            ))
        }),
        (false, None) => Err(Box::new(fail(
            400,
            "InvalidParameterException",
            "UserPoolId is required",
        ))),
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
        "InitiateAuth" => auth_flows::initiate_auth(pool, r, false).await,
        "RespondToAuthChallenge" => auth_flows::respond_to_challenge(pool, r).await,
        "SignUp" => auth_flows::sign_up(pool, r).await,
        "ConfirmSignUp" => auth_flows::confirm_sign_up(pool, r).await,
        "ResendConfirmationCode" => auth_flows::resend(pool, r).await,
        "ForgotPassword" => auth_flows::forgot_password(pool, r).await,
        "ConfirmForgotPassword" => auth_flows::confirm_forgot_password(pool, r).await,
        "GetUser" => users::get_user(pool, r).await,
        "ChangePassword" => auth_flows::change_password(pool, r).await,
        "GlobalSignOut" => auth_flows::global_sign_out(pool, r).await,
        "RevokeToken" => auth_flows::revoke_token(pool, r).await,
        "UpdateUserAttributes" => users::update_own_attributes(pool, r).await,
        "DeleteUserAttributes" => users::delete_own_attributes(pool, r).await,
        "GetUserAttributeVerificationCode" => users::attribute_verification_code(pool, r).await,
        "VerifyUserAttribute" => users::verify_attribute(pool, r).await,
        "DeleteUser" => users::delete_self(pool, r).await,
        "AssociateSoftwareToken" => mfa::associate_software_token(pool, r).await,
        "VerifySoftwareToken" => mfa::verify_software_token(pool, r).await,
        "SetUserMFAPreference" => mfa::set_own_preference(pool, r).await,
        "AdminSetUserMFAPreference" => mfa::admin_set_preference(pool, r).await,
        // Admin: the pool.
        "DescribeUserPool" => pool_description::describe(pool).await,
        "GetUserPoolMfaConfig" => Ok(pool_description::mfa_config(pool)),
        "GetSigningCertificate" => pool_description::signing_certificate(pool).await,
        // A local caller (the CLI) sees its own pool only.
        "ListUserPools" => pool_description::list(&[pool], r.0).await,
        "DescribeUserPoolDomain" => pool_description::describe_domain(&[pool], r.0),
        // Admin: clients.
        "CreateUserPoolClient" => clients::create_client(pool, r).await,
        "DescribeUserPoolClient" => clients::describe_client(pool, r),
        "UpdateUserPoolClient" => clients::update_client(pool, r).await,
        "DeleteUserPoolClient" => clients::delete_client(pool, r).await,
        "ListUserPoolClients" => Ok(clients::list_clients(pool, r)),
        "AddUserPoolClientSecret" => clients::add_secret(pool, r).await,
        "ListUserPoolClientSecrets" => clients::list_secrets(pool, r),
        "DeleteUserPoolClientSecret" => clients::delete_secret(pool, r).await,
        // Admin: resource servers.
        "CreateResourceServer" => resource_servers::put_resource_server(pool, r, Put::Insert).await,
        "UpdateResourceServer" => resource_servers::put_resource_server(pool, r, Put::Update).await,
        "DescribeResourceServer" => resource_servers::describe_resource_server(pool, r),
        "ListResourceServers" => Ok(resource_servers::list_resource_servers(pool)),
        "DeleteResourceServer" => resource_servers::delete_resource_server(pool, r).await,
        // Admin: groups.
        "CreateGroup" => groups::create_group(pool, r).await,
        "GetGroup" => groups::get_group(pool, r).await,
        "UpdateGroup" => groups::update_group(pool, r).await,
        "DeleteGroup" => groups::delete_group(pool, r).await,
        "ListGroups" => groups::list_groups(pool).await,
        "ListUsersInGroup" => groups::list_users_in_group(pool, r).await,
        "AdminAddUserToGroup" => groups::add_to_group(pool, r, true).await,
        "AdminRemoveUserFromGroup" => groups::add_to_group(pool, r, false).await,
        "AdminListGroupsForUser" => groups::groups_for_user(pool, r).await,
        // Admin: users.
        "AdminCreateUser" => users::admin_create_user(pool, r).await,
        "AdminGetUser" => users::admin_get_user(pool, r).await,
        "AdminDeleteUser" => users::admin_delete_user(pool, r).await,
        "AdminSetUserPassword" => users::admin_set_password(pool, r).await,
        "AdminUpdateUserAttributes" => users::admin_update_attributes(pool, r).await,
        "AdminDeleteUserAttributes" => users::admin_delete_attributes(pool, r).await,
        "AdminDisableUser" => users::admin_set_enabled(pool, r, false).await,
        "AdminEnableUser" => users::admin_set_enabled(pool, r, true).await,
        "AdminConfirmSignUp" => users::admin_confirm(pool, r).await,
        "AdminResetUserPassword" => users::admin_reset_password(pool, r).await,
        "AdminUserGlobalSignOut" => users::admin_global_sign_out(pool, r).await,
        "AdminInitiateAuth" => auth_flows::initiate_auth(pool, r, true).await,
        "AdminRespondToAuthChallenge" => auth_flows::respond_to_challenge(pool, r).await,
        "ListUsers" => users::list_users(pool, r).await,
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
