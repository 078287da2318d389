//! Groups and membership: `CreateGroup`, `GetGroup`, `UpdateGroup`, `DeleteGroup`, `ListGroups`,
//! `ListUsersInGroup`, `AdminAddUserToGroup`, `AdminRemoveUserFromGroup` and
//! `AdminListGroupsForUser`.

use super::request::Req;
use super::users::user_type;
use crate::domain::pool::Pool;
use crate::error::IdpError;
use crate::store::GroupRecord;
use serde_json::{Value, json};

/// Cognito's `GroupType`.
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

/// A group from a create or update request, within Cognito's limits.
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

/// `CreateGroup`.
pub(super) async fn create_group(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let g = group_input(r)?;
    pool.create_group(&g).await?;
    Ok(json!({"Group": group_type(pool, &g)}))
}

/// `GetGroup`.
pub(super) async fn get_group(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let g = pool.group(r.str("GroupName")?).await?;
    Ok(json!({"Group": group_type(pool, &g)}))
}

/// `UpdateGroup`: only the members given change.
pub(super) async fn update_group(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let mut g = pool.group(r.str("GroupName")?).await?;
    let input = group_input(r)?;
    if r.0.contains_key("Precedence") {
        g.precedence = input.precedence;
    }
    if r.0.contains_key("Description") {
        g.description = input.description;
    }
    pool.update_group(&g).await?;
    Ok(json!({"Group": group_type(pool, &g)}))
}

/// `DeleteGroup`.
pub(super) async fn delete_group(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    pool.delete_group(r.str("GroupName")?).await?;
    Ok(json!({}))
}

/// `ListGroups`.
pub(super) async fn list_groups(pool: &Pool) -> Result<Value, IdpError> {
    let groups = pool.groups().await?;
    Ok(json!({"Groups": groups.iter().map(|g| group_type(pool, g)).collect::<Vec<_>>()}))
}

/// `ListUsersInGroup`.
pub(super) async fn list_users_in_group(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let users = pool.users_in_group(r.str("GroupName")?).await?;
    Ok(json!({"Users": users.iter().map(user_type).collect::<Vec<_>>()}))
}

/// `AdminAddUserToGroup` (`add`) and `AdminRemoveUserFromGroup`.
pub(super) async fn add_to_group(pool: &Pool, r: &Req<'_>, add: bool) -> Result<Value, IdpError> {
    let u = pool.user(r.str("Username")?).await?;
    let group = r.str("GroupName")?;
    if add {
        pool.add_user_to_group(&u, group).await?;
    } else {
        pool.remove_user_from_group(&u, group).await?;
    }
    Ok(json!({}))
}

/// `AdminListGroupsForUser`.
pub(super) async fn groups_for_user(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let groups = pool.groups_for_user(r.str("Username")?).await?;
    let v: Vec<Value> = groups.iter().map(|g| group_type(pool, g)).collect();
    Ok(json!({"Groups": v}))
}
