//! App clients: `CreateUserPoolClient`, `DescribeUserPoolClient`, `UpdateUserPoolClient`,
//! `DeleteUserPoolClient`, `ListUserPoolClients` and the secret rotation operations, with
//! Cognito's `UserPoolClientType` shape and our back-channel logout extension fields.

use super::identity_providers;
use super::request::{Req, client_of};
use crate::domain::catalog::{self, ClientSecret, StoredClient};
use crate::domain::pool::Pool;
use crate::domain::secrets::random_token;
use crate::error::IdpError;
use crate::store::Put;
use portcullis_config::{Client, RefreshTokenRotation, TimeUnit, TokenValidityUnits};
use serde_json::{Value, json};

/// The name of a token validity unit.
fn unit_name(u: TimeUnit) -> &'static str {
    match u {
        TimeUnit::Seconds => "seconds",
        TimeUnit::Minutes => "minutes",
        TimeUnit::Hours => "hours",
        TimeUnit::Days => "days",
    }
}

/// A token validity unit by name, `default` when absent.
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

/// Cognito's `UserPoolClientType`; the first secret with `with_secret`.
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

/// The rules every client obeys (shared with the config), as Cognito's exceptions.
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

/// A new client id: 26 lowercase letters and digits, as Cognito's.
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

/// A client secret: `value` when valid, else a random one; dated `now`.
fn new_secret(value: Option<&str>, now: i64) -> Result<ClientSecret, IdpError> {
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
        id: format!("{}--{}", uuid::Uuid::new_v4().simple(), now),
        value,
        created_at: now,
    })
}

/// `CreateUserPoolClient`.
pub(super) async fn create_client(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
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
        vec![new_secret(given, pool.now())?]
    } else {
        Vec::new()
    };
    check_client(pool, &client, !secrets.is_empty())?;
    if pool.catalog().clients.len() >= 1000 {
        return Err(IdpError::LimitExceeded(
            "A pool has at most 1000 app clients".into(),
        ));
    }
    let now = pool.now();
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

/// `DescribeUserPoolClient`.
pub(super) fn describe_client(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let c = client_of(pool, r)?;
    Ok(json!({"UserPoolClient": client_type(pool, &c, true)}))
}

/// `UpdateUserPoolClient`: every setting not given returns to its default, as at Cognito.
pub(super) async fn update_client(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let old = client_of(pool, r)?;
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
        updated_at: pool.now(),
    };
    catalog::put_client(pool.store.as_ref(), &pool.id, &stored, Put::Update).await?;
    pool.reload_catalog().await?;
    Ok(json!({"UserPoolClient": client_type(pool, &stored, true)}))
}

/// `DeleteUserPoolClient`.
pub(super) async fn delete_client(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let c = client_of(pool, r)?;
    pool.store
        .delete_object(&pool.id, catalog::CLIENT, &c.client.client_id)
        .await?;
    pool.reload_catalog().await?;
    Ok(json!({}))
}

/// `ListUserPoolClients`.
pub(super) fn list_clients(pool: &Pool, _r: &Req<'_>) -> Value {
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

/// `AddUserPoolClientSecret`: a second secret, for rotation.
pub(super) async fn add_secret(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let c = client_of(pool, r)?;
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
    let s = new_secret(r.opt("ClientSecret"), pool.now())?;
    let mut stored = (*c).clone();
    stored.secrets.push(s.clone());
    stored.updated_at = pool.now();
    catalog::put_client(pool.store.as_ref(), &pool.id, &stored, Put::Update).await?;
    pool.reload_catalog().await?;
    Ok(json!({"ClientSecretDescriptor": {
        "ClientSecretId": s.id,
        "ClientSecretValue": s.value,
        "ClientSecretCreateDate": s.created_at,
    }}))
}

/// `ListUserPoolClientSecrets`: ids and dates, never values.
pub(super) fn list_secrets(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let c = client_of(pool, r)?;
    let v: Vec<Value> = c
        .secrets
        .iter()
        .map(|s| json!({"ClientSecretId": s.id, "ClientSecretCreateDate": s.created_at}))
        .collect();
    Ok(json!({"ClientSecrets": v}))
}

/// `DeleteUserPoolClientSecret`: never the last one.
pub(super) async fn delete_secret(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let c = client_of(pool, r)?;
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
    stored.updated_at = pool.now();
    catalog::put_client(pool.store.as_ref(), &pool.id, &stored, Put::Update).await?;
    pool.reload_catalog().await?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_look_like_cognitos() {
        let id = new_client_id().unwrap();
        assert_eq!(id.len(), 26);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
    }
}
