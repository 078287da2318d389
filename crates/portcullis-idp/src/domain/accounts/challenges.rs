//! Sign-in challenges after a right password: the challenge session, a new password for a
//! temporary one, and the attempts a challenge allows.

use super::*;

impl Pool {
    /// Starts a challenge (`NEW_PASSWORD_REQUIRED`, `SOFTWARE_TOKEN_MFA`, `MFA_SETUP`) for
    /// `client_id`; returns the session, valid for the client's `auth_session_validity`.
    pub async fn start_challenge(
        &self,
        user: &UserRecord,
        client_id: &str,
        kind: &str,
    ) -> Result<String, IdpError> {
        let minutes = self
            .client(client_id)
            .map_or(3, |c| c.client.auth_session_validity) as i64;
        let session = random_token(48)?;
        let value =
            serde_json::json!({"username": user.username, "client_id": client_id, "kind": kind})
                .to_string();
        self.store
            .put_ticket(
                &self.id,
                TICKET_CHALLENGE,
                &sha256_hex(&session),
                value,
                self.now() + minutes * 60,
            )
            .await?;
        Ok(session)
    }

    /// Answers `NEW_PASSWORD_REQUIRED`: the session is spent, the password must meet the policy,
    /// and the user becomes `CONFIRMED`. Returns the user.
    pub async fn complete_new_password(
        &self,
        session: &str,
        client_id: &str,
        username: Option<&str>,
        password: &str,
        attrs: Map<String, Value>,
    ) -> Result<UserRecord, IdpError> {
        self.check_password(password)?;
        self.check_attributes(&attrs, false)?;
        self.check_writable(client_id, attrs.keys())?;
        let c = self
            .challenge(session, Some(client_id), username, "NEW_PASSWORD_REQUIRED")
            .await?;
        self.end_challenge(&c).await?;
        let who = c.username;
        let invalid = challenge_expired;
        let mut u = self.user(&who).await?;
        if u.status != "FORCE_CHANGE_PASSWORD" {
            return Err(invalid());
        }
        u.password_hash = self.hash_pw(password).await?;
        u.status = "CONFIRMED".into();
        let pending = Self::apply_attributes(&mut u, attrs, Writer::User(client_id));
        self.store.save_user(&self.id, u.clone()).await?;
        for (attr, value) in pending {
            self.send_verification(&u, attr, &value).await?;
        }
        let _ = self
            .store
            .take_ticket(&self.id, TICKET_TEMPORARY, &who)
            .await;
        self.user(&who).await
    }

    /// A live challenge session of `kind` for this client (any client when `None`, as for
    /// `AssociateSoftwareToken`, which names none), and user when named.
    pub(crate) async fn challenge(
        &self,
        session: &str,
        client_id: Option<&str>,
        username: Option<&str>,
        kind: &str,
    ) -> Result<Challenge, IdpError> {
        if session.is_empty() || session.len() > 256 {
            return Err(challenge_expired());
        }
        let key = sha256_hex(session);
        let (value, _) = self
            .store
            .ticket(&self.id, TICKET_CHALLENGE, &key)
            .await?
            .ok_or_else(challenge_expired)?;
        let v: Value = serde_json::from_str(&value).map_err(|_| challenge_expired())?;
        let who = v["username"].as_str().unwrap_or_default().to_string();
        let client = v["client_id"].as_str().unwrap_or_default().to_string();
        if client_id.is_some_and(|c| c != client)
            || v["kind"].as_str() != Some(kind)
            || username.is_some_and(|u| u != who)
        {
            return Err(challenge_expired());
        }
        Ok(Challenge {
            key,
            username: who,
            client_id: client,
        })
    }

    /// Spends a challenge session (single use, even under races).
    pub(crate) async fn end_challenge(&self, c: &Challenge) -> Result<(), IdpError> {
        self.store
            .take_ticket(&self.id, TICKET_CHALLENGE, &c.key)
            .await?
            .map(|_| ())
            .ok_or_else(challenge_expired)
    }

    /// Reserves one answer to a challenge before it is checked (atomic: concurrent answers never
    /// exceed [`MAX_CODE_ATTEMPTS`]); returns the count to pass to [`Pool::fail_challenge`].
    pub(crate) async fn challenge_attempt(&self, c: &Challenge) -> Result<i64, IdpError> {
        self.store
            .spend_ticket_attempt(&self.id, TICKET_CHALLENGE, &c.key, MAX_CODE_ATTEMPTS)
            .await?
            .map(|(_, n)| n)
            .ok_or_else(challenge_expired)
    }

    /// The answer to a wrong code on the `n`th reserved attempt; the fifth ends the challenge.
    pub(crate) async fn fail_challenge(&self, c: &Challenge, n: i64) -> Result<IdpError, IdpError> {
        if n >= MAX_CODE_ATTEMPTS {
            let _ = self
                .store
                .take_ticket(&self.id, TICKET_CHALLENGE, &c.key)
                .await;
            return Ok(IdpError::NotAuthorized(
                "Too many invalid codes; sign in again.".into(),
            ));
        }
        Ok(IdpError::CodeMismatch)
    }
}
