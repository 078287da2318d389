//! Groups and membership (`cognito:groups`): creating, changing and deleting groups, and who is in
//! them, with Cognito's answers for a missing or duplicate group and its 100-group limit.

use crate::domain::pool::Pool;
use crate::error::IdpError;
use crate::store::{GroupRecord, UserRecord};

/// How many groups one user may be in (Cognito's quota).
const MAX_GROUPS_PER_USER: usize = 100;

impl Pool {
    /// Every group of the pool.
    pub async fn groups(&self) -> Result<Vec<GroupRecord>, IdpError> {
        Ok(self.store.groups(&self.id).await?)
    }

    /// The group named `name`.
    pub async fn group(&self, name: &str) -> Result<GroupRecord, IdpError> {
        self.groups()
            .await?
            .into_iter()
            .find(|g| g.name == name)
            .ok_or_else(group_not_found)
    }

    /// `CreateGroup`: `GroupExists` when the name is taken.
    pub async fn create_group(&self, g: &GroupRecord) -> Result<(), IdpError> {
        if !self.store.insert_group(&self.id, g.clone()).await? {
            return Err(IdpError::GroupExists(g.name.clone()));
        }
        Ok(())
    }

    /// `UpdateGroup`: stores the group's precedence and description.
    pub async fn update_group(&self, g: &GroupRecord) -> Result<(), IdpError> {
        self.store
            .upsert_group(&self.id, &g.name, g.precedence, g.description.as_deref())
            .await?;
        Ok(())
    }

    /// `DeleteGroup`.
    pub async fn delete_group(&self, name: &str) -> Result<(), IdpError> {
        if !self.store.delete_group(&self.id, name).await? {
            return Err(group_not_found());
        }
        Ok(())
    }

    /// `ListUsersInGroup`: the members of group `name` that still exist.
    pub async fn users_in_group(&self, name: &str) -> Result<Vec<UserRecord>, IdpError> {
        let g = self.group(name).await?;
        let mut users = Vec::new();
        for sub in self.store.group_members(&self.id, &g.name).await? {
            if let Some(u) = self.store.user_by_sub(&self.id, &sub).await? {
                users.push(u);
            }
        }
        Ok(users)
    }

    /// `AdminAddUserToGroup`: `LimitExceeded` for a user already in 100 groups.
    pub async fn add_user_to_group(&self, u: &UserRecord, group: &str) -> Result<(), IdpError> {
        let g = self.group(group).await?;
        if self.store.groups_of(&self.id, &u.sub).await?.len() >= MAX_GROUPS_PER_USER {
            return Err(IdpError::LimitExceeded(
                "A user is in at most 100 groups".into(),
            ));
        }
        self.store.add_to_group(&self.id, &g.name, &u.sub).await?;
        Ok(())
    }

    /// `AdminRemoveUserFromGroup`.
    pub async fn remove_user_from_group(
        &self,
        u: &UserRecord,
        group: &str,
    ) -> Result<(), IdpError> {
        let g = self.group(group).await?;
        self.store
            .remove_from_group(&self.id, &g.name, &u.sub)
            .await?;
        Ok(())
    }

    /// `AdminListGroupsForUser`: the user's groups that still exist.
    pub async fn groups_for_user(&self, username: &str) -> Result<Vec<GroupRecord>, IdpError> {
        let u = self.user(username).await?;
        let names = self.store.groups_of(&self.id, &u.sub).await?;
        let all = self.groups().await?;
        Ok(names
            .iter()
            .filter_map(|n| all.iter().find(|g| &g.name == n))
            .cloned()
            .collect())
    }
}

/// Cognito's answer for a group that does not exist.
fn group_not_found() -> IdpError {
    IdpError::ResourceNotFound("Group not found.".into())
}
