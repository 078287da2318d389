//! One-time codes sent to users: delivering them (or simulating a delivery, so answers reveal
//! nobody), and spending them within their attempt budget.

use super::*;

impl Pool {
    pub(super) async fn send_code(
        &self,
        u: &UserRecord,
        ticket: &str,
        lifetime: i64,
        purpose: Purpose,
    ) -> Result<Option<Delivery>, IdpError> {
        let to = match purpose {
            Purpose::ForgotPassword => verified_delivery_of(u),
            _ => delivery_of(u),
        };
        let Some((delivery, to)) = to else {
            return Ok(None);
        };
        self.send_code_to(u, ticket, lifetime, purpose, &to, "")
            .await?;
        Ok(Some(delivery))
    }

    /// Issues a code under `(ticket, username)` (replacing an earlier one; the user's attempt
    /// budget is untouched) and sends it to `to`; `bound` is the address it verifies, if any.
    pub(super) async fn send_code_to(
        &self,
        u: &UserRecord,
        ticket: &str,
        lifetime: i64,
        purpose: Purpose,
        to: &str,
        bound: &str,
    ) -> Result<(), IdpError> {
        let code = numeric_code()?;
        self.store
            .put_ticket(
                &self.id,
                ticket,
                &u.username,
                code_digest(&code, bound),
                self.now() + lifetime,
            )
            .await?;
        self.sender.send(Message {
            pool: self.name.clone(),
            purpose,
            username: u.username.clone(),
            destination: to.to_string(),
            code,
        });
        Ok(())
    }

    /// What a code-sending operation answers for a user who must not be revealed (unknown,
    /// disabled, without an address): a decoy code nobody knows is stored exactly where a real
    /// one would be, so every later answer (wrong code, too many attempts, expired) is the same
    /// as for a real user; and the delivery is derived from the name, the same at every call.
    pub(super) async fn simulate_code(
        &self,
        ticket: &str,
        username: &str,
        lifetime: i64,
    ) -> Result<Delivery, IdpError> {
        if !username.is_empty() && username.len() <= 128 {
            self.put_decoy_code(ticket, username, lifetime).await?;
        }
        let key = self.decoy_key().await?;
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key.as_bytes());
        let tag = aws_lc_rs::hmac::sign(&key, username.as_bytes());
        let letter = |b: u8| (b'a' + b % 26) as char;
        Ok(Delivery {
            destination: format!(
                "{}***@{}***",
                letter(tag.as_ref()[0]),
                letter(tag.as_ref()[1])
            ),
            medium: "EMAIL",
            attribute: "email",
        })
    }

    /// Stores a code nobody knows as `username`'s `ticket` for `lifetime` seconds, so the name
    /// answers as one with a pending code would.
    async fn put_decoy_code(
        &self,
        ticket: &str,
        username: &str,
        lifetime: i64,
    ) -> Result<(), IdpError> {
        self.store
            .put_ticket(
                &self.id,
                ticket,
                username,
                sha256_hex(&random_token(32)?),
                self.now() + lifetime,
            )
            .await?;
        Ok(())
    }

    /// The pool's key for simulated deliveries, created once and shared by every node.
    pub(super) async fn decoy_key(&self) -> Result<String, IdpError> {
        if let Some(k) = self
            .store
            .object(&self.id, DECOY_KEY_KIND, DECOY_KEY_ID)
            .await?
        {
            return Ok(k);
        }
        self.store
            .put_object(
                &self.id,
                DECOY_KEY_KIND,
                DECOY_KEY_ID,
                random_token(32)?,
                crate::store::Put::Insert,
            )
            .await?;
        self.store
            .object(&self.id, DECOY_KEY_KIND, DECOY_KEY_ID)
            .await?
            .ok_or(IdpError::Internal)
    }

    /// Checks a code against the user's ticket. The attempt is reserved before the comparison,
    /// atomically, twice: from the user's budget for this kind of code (which re-issuing does not
    /// restore) and from the code's own count (the fifth guess voids it). A right code is spent
    /// once and clears the budget. Unknown users go through the same steps.
    pub(super) async fn spend_code(
        &self,
        ticket: &str,
        username: &str,
        code: &str,
        bound: &str,
        decoy: Option<i64>,
    ) -> Result<(), IdpError> {
        if username.is_empty() || username.len() > 128 {
            return Err(IdpError::ExpiredCode);
        }
        let budget = attempts_key(ticket);
        if !self
            .store
            .reserve_attempt(
                &self.id,
                &budget,
                username,
                MAX_CODE_ATTEMPTS,
                CODE_ATTEMPT_WINDOW,
                self.now(),
            )
            .await?
        {
            return Err(attempt_limit());
        }
        let mut spent = self
            .store
            .spend_ticket_attempt(&self.id, ticket, username, MAX_CODE_ATTEMPTS)
            .await?;
        // With `decoy` (the code's lifetime), a name without any code gets a decoy nobody knows,
        // so it answers as a name with a pending code would: no answer tells them apart. (A real
        // code sent in the same instant may be replaced; its owner asks for a new one.)
        if let (None, Some(lifetime)) = (&spent, decoy)
            && self
                .store
                .ticket(&self.id, ticket, username)
                .await?
                .is_none()
        {
            self.put_decoy_code(ticket, username, lifetime).await?;
            spent = self
                .store
                .spend_ticket_attempt(&self.id, ticket, username, MAX_CODE_ATTEMPTS)
                .await?;
        }
        let Some((want, n)) = spent else {
            return Err(match self.store.ticket(&self.id, ticket, username).await? {
                Some(_) => IdpError::TooManyFailedAttempts,
                None => IdpError::ExpiredCode,
            });
        };
        if code.len() > 64 || !constant_time_eq(&want, &code_digest(code, bound)) {
            return Err(if n >= MAX_CODE_ATTEMPTS {
                IdpError::TooManyFailedAttempts
            } else {
                IdpError::CodeMismatch
            });
        }
        // Single use: two concurrent confirmations cannot both win.
        match self.store.take_ticket(&self.id, ticket, username).await? {
            Some(_) => {
                self.store.take_ticket(&self.id, &budget, username).await?;
                Ok(())
            }
            None => Err(IdpError::ExpiredCode),
        }
    }
}
