//! What administrators do to accounts: create users (with a temporary password), set passwords,
//! confirm, enable, disable, delete and reset them.

use super::*;
use crate::store::StoreError;
use serde_json::{Map, Value};

impl Pool {
    /// `AdminCreateUser`: a user in `FORCE_CHANGE_PASSWORD` with a temporary password (generated
    /// when not given), valid for the policy's days; the invitation goes to the outbox unless
    /// suppressed.
    pub async fn admin_create_user(
        &self,
        username: &str,
        attrs: Map<String, Value>,
        temporary: Option<&str>,
        suppress: bool,
    ) -> Result<UserRecord, IdpError> {
        Self::check_username(username)?;
        self.check_attributes(&attrs, true)?;
        let temp = match temporary {
            Some(t) => {
                self.check_password(t)?;
                t.to_string()
            }
            None => temporary_password(self.policy.minimum_length)?,
        };
        let hash = self.hash_pw(&temp).await?;
        let rec = new_user(username, hash, "FORCE_CHANGE_PASSWORD", attrs);
        if !self.store.insert_user(&self.id, rec).await? {
            return Err(IdpError::UsernameExists);
        }
        self.mark_temporary(username).await?;
        let user = self.user(username).await?;
        if !suppress && let Some((_, to)) = delivery_of(&user) {
            self.sender.send(Message {
                pool: self.name.clone(),
                purpose: Purpose::Invitation,
                username: username.to_string(),
                destination: to,
                code: temp,
            });
        }
        Ok(user)
    }

    pub(super) async fn mark_temporary(&self, username: &str) -> Result<(), IdpError> {
        let days = self.policy.temporary_password_validity_days.max(1) as i64;
        self.store
            .put_ticket(
                &self.id,
                TICKET_TEMPORARY,
                username,
                String::new(),
                self.now() + days * 86400,
            )
            .await?;
        Ok(())
    }

    /// Whether a `FORCE_CHANGE_PASSWORD` user's temporary password is too old.
    pub(crate) async fn temporary_password_expired(&self, u: &UserRecord) -> bool {
        matches!(
            self.store
                .ticket(&self.id, TICKET_TEMPORARY, &u.username)
                .await,
            Ok(None)
        )
    }

    /// `AdminSetUserPassword`: permanent → `CONFIRMED`, else `FORCE_CHANGE_PASSWORD`.
    pub async fn admin_set_password(
        &self,
        username: &str,
        password: &str,
        permanent: bool,
    ) -> Result<(), IdpError> {
        let mut u = self.user(username).await?;
        refuse_federated(&u)?;
        self.check_password(password)?;
        u.password_hash = self.hash_pw(password).await?;
        u.status = if permanent {
            "CONFIRMED"
        } else {
            "FORCE_CHANGE_PASSWORD"
        }
        .into();
        if !permanent {
            self.mark_temporary(username).await?;
        }
        let sub = u.sub.clone();
        self.store.save_user(&self.id, u).await?;
        self.store.clear_failures(&self.id, username).await?;
        self.password_changed(&sub).await
    }

    /// `AdminEnableUser` / `AdminDisableUser`; disabling also signs the user out everywhere.
    pub async fn set_enabled(&self, username: &str, enabled: bool) -> Result<(), IdpError> {
        let mut u = self.user(username).await?;
        u.enabled = enabled;
        let sub = u.sub.clone();
        self.store.save_user(&self.id, u).await?;
        if !enabled {
            self.store.revoke_user_tokens(&self.id, &sub).await?;
            self.end_user_sessions(&sub).await?;
        }
        Ok(())
    }

    /// `AdminDeleteUser`.
    pub async fn delete_user(&self, username: &str) -> Result<(), IdpError> {
        let u = self.user(username).await?;
        self.end_user_sessions(&u.sub).await?;
        self.store.delete_user(&self.id, &u.sub).await?;
        Ok(())
    }

    /// `AdminConfirmSignUp`.
    pub async fn admin_confirm(&self, username: &str) -> Result<(), IdpError> {
        let mut u = self.user(username).await?;
        if u.status != "UNCONFIRMED" {
            return Err(IdpError::NotAuthorized(format!(
                "User cannot be confirmed. Current status is {}",
                u.status
            )));
        }
        u.status = "CONFIRMED".into();
        self.store.save_user(&self.id, u).await?;
        let _ = self
            .store
            .take_ticket(&self.id, TICKET_SIGN_UP, username)
            .await?;
        Ok(())
    }

    /// `AdminUserGlobalSignOut` / `GlobalSignOut`: every refresh token and hosted-UI session of
    /// the user ends, and the access tokens minted from them stop working at userInfo and GetUser.
    pub async fn global_sign_out(&self, sub: &str) -> Result<(), IdpError> {
        self.store.revoke_user_tokens(&self.id, sub).await?;
        self.end_user_sessions(sub).await?;
        Ok(())
    }

    /// `AdminResetUserPassword`: `RESET_REQUIRED` and a reset code in the outbox.
    pub async fn admin_reset_password(&self, username: &str) -> Result<(), IdpError> {
        let mut u = self.user(username).await?;
        refuse_federated(&u)?;
        u.status = "RESET_REQUIRED".into();
        self.store.save_user(&self.id, u.clone()).await?;
        // Ours (Cognito keeps the tokens): a reset ends every session of the user.
        self.store.revoke_user_tokens(&self.id, &u.sub).await?;
        self.end_user_sessions(&u.sub).await?;
        self.send_code(
            &u,
            TICKET_RESET,
            RESET_CODE_LIFETIME,
            Purpose::ForgotPassword,
        )
        .await?;
        Ok(())
    }

    /// Creates a user in `CONFIRMED` state unless the name exists; returns whether it was created.
    pub async fn create_user(
        &self,
        username: &str,
        password: &str,
        attributes: &std::collections::BTreeMap<String, String>,
    ) -> Result<bool, StoreError> {
        if self
            .store
            .user_by_username(&self.id, username)
            .await?
            .is_some()
        {
            return Ok(false);
        }
        let hash = self.hash(password).await.map_err(|_| StoreError::Join)?;
        let mut attrs: Map<String, Value> = attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into()))
            .collect();
        if attrs.contains_key("email") && !attrs.contains_key("email_verified") {
            attrs.insert("email_verified".into(), "true".into());
        }
        let rec = new_user(username, hash, "CONFIRMED", attrs);
        self.store.insert_user(&self.id, rec).await
    }

    /// Sets a permanent password (`CONFIRMED`).
    pub async fn set_password(&self, username: &str, password: &str) -> Result<bool, StoreError> {
        let hash = self.hash(password).await.map_err(|_| StoreError::Join)?;
        self.store
            .set_password(&self.id, username, hash, "CONFIRMED")
            .await
    }
}
