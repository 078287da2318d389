//! Self-service sign-up: registering, confirming with a code and re-sending it.

use super::*;

impl Pool {
    /// `SignUp`: an `UNCONFIRMED` user and a confirmation code (24 h) in the outbox.
    pub async fn sign_up(
        &self,
        client_id: &str,
        username: &str,
        password: &str,
        attrs: Map<String, Value>,
    ) -> Result<(UserRecord, Option<Delivery>), IdpError> {
        if !self.allow_self_sign_up {
            return Err(IdpError::NotAuthorized(
                "SignUp is not permitted for this user pool".into(),
            ));
        }
        Self::check_username(username)?;
        self.refuse_provider_prefix(username)?;
        self.check_attributes(&attrs, true)?;
        self.check_writable(client_id, attrs.keys())?;
        self.check_password(password)?;
        let rec = new_user(
            username,
            self.hash_pw(password).await?,
            "UNCONFIRMED",
            attrs,
        );
        if !self.store.insert_user(&self.id, rec).await? {
            return Err(IdpError::UsernameExists);
        }
        let u = self.user(username).await?;
        let d = self
            .send_code(&u, TICKET_SIGN_UP, SIGN_UP_CODE_LIFETIME, Purpose::SignUp)
            .await?;
        Ok((u, d))
    }

    /// `ConfirmSignUp`: the code confirms the user and verifies the address it went to. Unless
    /// `reveal` (a `LEGACY` client), unknown and already confirmed users get the answers of a
    /// user whose code expired (or of the decoy `ResendConfirmationCode` left them).
    pub async fn confirm_sign_up(
        &self,
        username: &str,
        code: &str,
        reveal: bool,
    ) -> Result<(), IdpError> {
        if reveal {
            let u = self.user(username).await?;
            if u.status != "UNCONFIRMED" {
                return Err(IdpError::NotAuthorized(format!(
                    "User cannot be confirmed. Current status is {}",
                    u.status
                )));
            }
        }
        let decoy = (!reveal).then_some(SIGN_UP_CODE_LIFETIME);
        self.spend_code(TICKET_SIGN_UP, username, code, "", decoy)
            .await?;
        let mut u = self
            .user(username)
            .await
            .map_err(|_| IdpError::ExpiredCode)?;
        if u.status != "UNCONFIRMED" {
            return Err(IdpError::ExpiredCode);
        }
        u.status = "CONFIRMED".into();
        let verified = if u.attributes.contains_key("email") {
            "email_verified"
        } else {
            "phone_number_verified"
        };
        u.attributes.insert(verified.into(), "true".into());
        self.store.save_user(&self.id, u).await?;
        Ok(())
    }

    /// `ResendConfirmationCode`. Unless `reveal`, unknown and confirmed users get a simulated
    /// delivery, the same as a real one.
    pub async fn resend_confirmation(
        &self,
        username: &str,
        reveal: bool,
    ) -> Result<Option<Delivery>, IdpError> {
        let u = match self.user(username).await {
            Ok(u) => Some(u),
            Err(IdpError::UserNotFound) if !reveal => None,
            Err(e) => return Err(e),
        };
        match u {
            Some(u) if u.status == "UNCONFIRMED" => {
                match self
                    .send_code(&u, TICKET_SIGN_UP, SIGN_UP_CODE_LIFETIME, Purpose::SignUp)
                    .await?
                {
                    Some(d) => Ok(Some(d)),
                    None if reveal => Ok(None),
                    None => self
                        .simulate_code(TICKET_SIGN_UP, username, SIGN_UP_CODE_LIFETIME)
                        .await
                        .map(Some),
                }
            }
            Some(_) if reveal => Err(IdpError::InvalidParameter(
                "User is already confirmed.".into(),
            )),
            _ => self
                .simulate_code(TICKET_SIGN_UP, username, SIGN_UP_CODE_LIFETIME)
                .await
                .map(Some),
        }
    }
}
