//! Passwords a user changes: forgot-password codes and their confirmation, and a change with
//! the old password.

use super::*;

impl Pool {
    /// `ForgotPassword`: a reset code (1 h) for an enabled user with an address. Unless
    /// `reveal_unknown` (a `LEGACY` client), unknown and disabled users and users without an
    /// address get a simulated delivery, the same as a real one, and nothing is sent.
    pub async fn forgot_password(
        &self,
        username: &str,
        reveal_unknown: bool,
    ) -> Result<Delivery, IdpError> {
        let u = match self.user(username).await {
            Ok(u) => Some(u),
            Err(IdpError::UserNotFound) if !reveal_unknown => None,
            Err(e) => return Err(e),
        };
        match u {
            Some(u) if u.enabled && u.status == EXTERNAL_PROVIDER && reveal_unknown => {
                Err(federated_password())
            }
            // A federated user has no password to reset: answered as a user without an address.
            Some(u) if u.enabled && u.status != EXTERNAL_PROVIDER => match self
                .send_code(&u, TICKET_RESET, RESET_CODE_LIFETIME, Purpose::ForgotPassword)
                .await?
            {
                Some(d) => Ok(d),
                None if reveal_unknown => Err(IdpError::InvalidParameter(
                    "Cannot reset password for the user as there is no registered/verified email or phone_number".into(),
                )),
                None => {
                    self.simulate_code(TICKET_RESET, username, RESET_CODE_LIFETIME)
                        .await
                }
            },
            Some(u) if reveal_unknown && !u.enabled => {
                Err(IdpError::NotAuthorized("User is disabled.".into()))
            }
            _ => {
                self.simulate_code(TICKET_RESET, username, RESET_CODE_LIFETIME)
                    .await
            }
        }
    }

    /// `ConfirmForgotPassword`: the code sets a new password and confirms the user. Unknown users
    /// take the same steps (budget, decoy code), so every answer matches a real user's.
    pub async fn confirm_forgot_password(
        &self,
        username: &str,
        code: &str,
        password: &str,
    ) -> Result<(), IdpError> {
        self.check_password(password)?;
        self.spend_code(TICKET_RESET, username, code, "", Some(RESET_CODE_LIFETIME))
            .await?;
        let mut u = self
            .user(username)
            .await
            .map_err(|_| IdpError::ExpiredCode)?;
        refuse_federated(&u)?;
        u.password_hash = self.hash_pw(password).await?;
        u.status = "CONFIRMED".into();
        let sub = u.sub.clone();
        self.store.save_user(&self.id, u).await?;
        self.store.clear_failures(&self.id, username).await?;
        self.password_changed(&sub).await
    }

    /// `ChangePassword`.
    pub async fn change_password(&self, token: &str, old: &str, new: &str) -> Result<(), IdpError> {
        let (u, _) = self.user_of_access_token(token).await?;
        self.check_password(new)?;
        match self.sign_in(&u.username, old).await {
            Ok(_) => {}
            Err(e) => return Err(sign_in_error(e, true)),
        }
        let mut u = self.user(&u.username).await?;
        u.password_hash = self.hash_pw(new).await?;
        let sub = u.sub.clone();
        self.store.save_user(&self.id, u).await?;
        self.password_changed(&sub).await
    }

    /// After a password change (`ChangePassword`, `ConfirmForgotPassword`,
    /// `AdminSetUserPassword`): every session of the user ends, the caller's included. Ours:
    /// Cognito keeps tokens across all three; a changed password usually means a leaked one.
    pub(super) async fn password_changed(&self, sub: &str) -> Result<(), IdpError> {
        self.store.revoke_user_tokens(&self.id, sub).await?;
        self.end_user_sessions(sub).await?;
        Ok(())
    }
}
