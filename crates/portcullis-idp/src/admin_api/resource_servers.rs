//! Resource servers (custom scopes): `CreateResourceServer`, `UpdateResourceServer`,
//! `DescribeResourceServer`, `ListResourceServers` and `DeleteResourceServer`.

use super::request::Req;
use crate::domain::catalog;
use crate::domain::pool::Pool;
use crate::error::IdpError;
use crate::store::Put;
use portcullis_config::{ResourceServer, ResourceServerScope};
use serde_json::{Value, json};

/// Cognito's `ResourceServerType`.
fn resource_server_type(pool: &Pool, rs: &ResourceServer) -> Value {
    json!({
        "UserPoolId": pool.id,
        "Identifier": rs.identifier,
        "Name": rs.name.clone().unwrap_or_else(|| rs.identifier.clone()),
        "Scopes": rs.scopes.iter().map(|s| json!({"ScopeName": s.name, "ScopeDescription": s.description.clone().unwrap_or_default()})).collect::<Vec<_>>(),
    })
}

/// `CreateResourceServer` (`Put::Insert`) and `UpdateResourceServer` (`Put::Update`).
pub(super) async fn put_resource_server(
    pool: &Pool,
    r: &Req<'_>,
    mode: Put,
) -> Result<Value, IdpError> {
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

/// `DescribeResourceServer`.
pub(super) fn describe_resource_server(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let id = r.str("Identifier")?;
    let c = pool.catalog();
    let rs = c
        .resource_servers
        .iter()
        .find(|rs| rs.identifier == id)
        .ok_or_else(|| IdpError::ResourceNotFound("The resource server does not exist.".into()))?;
    Ok(json!({"ResourceServer": resource_server_type(pool, rs)}))
}

/// `ListResourceServers`.
pub(super) fn list_resource_servers(pool: &Pool) -> Value {
    let c = pool.catalog();
    json!({"ResourceServers": c.resource_servers.iter().map(|rs| resource_server_type(pool, rs)).collect::<Vec<_>>()})
}

/// `DeleteResourceServer`.
pub(super) async fn delete_resource_server(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
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
