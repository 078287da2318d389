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

/// The group named `name`.
async fn find_group(pool: &Pool, name: &str) -> Result<GroupRecord, IdpError> {
    pool.store
        .groups(&pool.id)
        .await?
        .into_iter()
        .find(|g| g.name == name)
        .ok_or_else(|| IdpError::ResourceNotFound("Group not found.".into()))
}

/// `CreateGroup`.
pub(super) async fn create_group(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let g = group_input(r)?;
    if !pool.store.insert_group(&pool.id, g.clone()).await? {
        return Err(IdpError::GroupExists(g.name));
    }
    Ok(json!({"Group": group_type(pool, &g)}))
}

/// `GetGroup`.
pub(super) async fn get_group(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let g = find_group(pool, r.str("GroupName")?).await?;
    Ok(json!({"Group": group_type(pool, &g)}))
}

/// `UpdateGroup`: only the members given change.
pub(super) async fn update_group(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
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

/// `DeleteGroup`.
pub(super) async fn delete_group(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    if !pool
        .store
        .delete_group(&pool.id, r.str("GroupName")?)
        .await?
    {
        return Err(IdpError::ResourceNotFound("Group not found.".into()));
    }
    Ok(json!({}))
}

/// `ListGroups`.
pub(super) async fn list_groups(pool: &Pool) -> Result<Value, IdpError> {
    let groups = pool.store.groups(&pool.id).await?;
    Ok(json!({"Groups": groups.iter().map(|g| group_type(pool, g)).collect::<Vec<_>>()}))
}

/// `ListUsersInGroup`.
pub(super) async fn list_users_in_group(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let g = find_group(pool, r.str("GroupName")?).await?;
    let mut users = Vec::new();
    for sub in pool.store.group_members(&pool.id, &g.name).await? {
        if let Some(u) = pool.store.user_by_sub(&pool.id, &sub).await? {
            users.push(user_type(&u));
        }
    }
    Ok(json!({"Users": users}))
}

/// `AdminAddUserToGroup` (`add`) and `AdminRemoveUserFromGroup`.
pub(super) async fn add_to_group(pool: &Pool, r: &Req<'_>, add: bool) -> Result<Value, IdpError> {
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

/// `AdminListGroupsForUser`.
pub(super) async fn groups_for_user(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
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
