//! User attributes: who may write which, their checks, and verifying a changed email or phone
//! number with a code.

use super::*;

impl Pool {
    /// Refuses attribute names outside the schema, `sub`, oversized values and immutable changes.
    pub fn check_attributes(
        &self,
        attrs: &Map<String, Value>,
        creating: bool,
    ) -> Result<(), IdpError> {
        for (k, v) in attrs {
            let Some(v) = v.as_str() else {
                return Err(IdpError::InvalidParameter(format!(
                    "Attribute {k} must be a string"
                )));
            };
            if k == "sub" {
                return Err(IdpError::InvalidParameter(
                    "Cannot modify the non-mutable attribute sub".into(),
                ));
            }
            if k.starts_with("custom:") {
                match self.custom_attributes.get(k) {
                    None => {
                        return Err(IdpError::InvalidParameter(format!(
                            "Attributes did not conform to the schema: {k}: Attribute does not exist in the schema."
                        )));
                    }
                    Some(false) if !creating => {
                        return Err(IdpError::InvalidParameter(format!(
                            "Cannot modify the non-mutable attribute {k}"
                        )));
                    }
                    _ => {}
                }
            } else if !STANDARD_ATTRIBUTES.contains(&k.as_str()) {
                return Err(IdpError::InvalidParameter(format!(
                    "Attributes did not conform to the schema: {k}: Attribute does not exist in the schema."
                )));
            }
            if v.len() > MAX_ATTRIBUTE_VALUE {
                return Err(IdpError::InvalidParameter(format!(
                    "Attribute {k} is longer than 2048 bytes"
                )));
            }
            if k == "email" && (!v.contains('@') || v.contains(char::is_whitespace)) {
                return Err(IdpError::InvalidParameter(
                    "Invalid email address format.".into(),
                ));
            }
            if (k == "email_verified" || k == "phone_number_verified")
                && v != "true"
                && v != "false"
            {
                return Err(IdpError::InvalidParameter(format!(
                    "{k} must be \"true\" or \"false\""
                )));
            }
        }
        Ok(())
    }

    /// Refuses what a user may not write through `client_id`: any `*_verified` flag, and any
    /// attribute outside the client's `write_attributes` (when it has the list).
    pub fn check_writable<'k>(
        &self,
        client_id: &str,
        names: impl IntoIterator<Item = &'k String>,
    ) -> Result<(), IdpError> {
        let allowed = self
            .client(client_id)
            .and_then(|c| c.client.write_attributes.clone());
        for k in names {
            if k == "email_verified" || k == "phone_number_verified" {
                return Err(IdpError::InvalidParameter(
                    "A user cannot mark their own address verified".into(),
                ));
            }
            if let Some(w) = &allowed
                && !w.contains(k)
            {
                return Err(IdpError::NotAuthorized(format!(
                    "A client attempted to write unauthorized attribute {k}"
                )));
            }
        }
        Ok(())
    }

    /// Applies attribute changes to `u`: a changed `email` or `phone_number` becomes unverified
    /// (an administrator may verify it in the same call). Returns the addresses that now need a
    /// verification code, as `(attribute, value)`.
    pub(super) fn apply_attributes(
        u: &mut UserRecord,
        changes: Map<String, Value>,
        by: Writer<'_>,
    ) -> Vec<(&'static str, String)> {
        let mut pending = Vec::new();
        for (attr, flag, _) in VERIFIABLE {
            let Some(new) = changes.get(attr).and_then(Value::as_str) else {
                continue;
            };
            if u.attributes.get(attr).and_then(Value::as_str) == Some(new) {
                continue;
            }
            let admin_verifies =
                by == Writer::Admin && changes.get(flag).and_then(Value::as_str) == Some("true");
            if !admin_verifies {
                u.attributes.insert(flag.into(), "false".into());
                pending.push((attr, new.to_string()));
            }
        }
        for (k, v) in changes {
            if by == Writer::Admin || (k != "email_verified" && k != "phone_number_verified") {
                u.attributes.insert(k, v);
            }
        }
        pending
    }

    /// Replaces or removes attributes. A changed `email` or `phone_number` becomes unverified and
    /// a code goes to the new address (returned); users never write `*_verified` and only write
    /// what their client's `write_attributes` allows.
    pub async fn update_attributes(
        &self,
        username: &str,
        changes: Map<String, Value>,
        remove: &[String],
        by: Writer<'_>,
    ) -> Result<Vec<Delivery>, IdpError> {
        self.check_attributes(&changes, false)?;
        if let Writer::User(client_id) = by {
            self.check_writable(client_id, changes.keys().chain(remove.iter()))?;
        }
        let mut u = self.user(username).await?;
        for k in remove {
            // `identities` is the pool's record of a federated user's provider, never the user's.
            if k == "sub"
                || k == "identities"
                || k == "email_verified" && u.attributes.contains_key("email")
            {
                return Err(IdpError::InvalidParameter(format!(
                    "Cannot delete the attribute {k}"
                )));
            }
            u.attributes.remove(k);
            if let Some((_, flag, _)) = VERIFIABLE.iter().find(|(a, _, _)| a == k) {
                u.attributes.remove(*flag);
            }
        }
        let pending = Self::apply_attributes(&mut u, changes, by);
        self.store.save_user(&self.id, u.clone()).await?;
        let mut out = Vec::new();
        for (attr, value) in pending {
            out.push(self.send_verification(&u, attr, &value).await?);
        }
        Ok(out)
    }

    /// Sends a code verifying `value` of `attr` (`email` or `phone_number`); the code verifies
    /// only that value, so a code sent before a change verifies nothing after it.
    pub(super) async fn send_verification(
        &self,
        u: &UserRecord,
        attr: &str,
        value: &str,
    ) -> Result<Delivery, IdpError> {
        let (medium, attribute, ticket) = match attr {
            "email" => ("EMAIL", "email", TICKET_VERIFY_EMAIL),
            _ => ("SMS", "phone_number", TICKET_VERIFY_PHONE),
        };
        let delivery = Delivery {
            destination: mask(value),
            medium,
            attribute,
        };
        self.send_code_to(
            u,
            ticket,
            VERIFY_CODE_LIFETIME,
            Purpose::VerifyAttribute,
            value,
            value,
        )
        .await?;
        Ok(delivery)
    }

    /// `GetUserAttributeVerificationCode`: a code to the user's current `email` or `phone_number`.
    pub async fn attribute_verification_code(
        &self,
        username: &str,
        attr: &str,
    ) -> Result<Delivery, IdpError> {
        let u = self.user(username).await?;
        let value = verifiable_value(&u, attr)?;
        self.send_verification(&u, attr, &value).await
    }

    /// `VerifyUserAttribute`: the code sent to the current value of `attr` marks it verified.
    pub async fn verify_attribute(
        &self,
        username: &str,
        attr: &str,
        code: &str,
    ) -> Result<(), IdpError> {
        let u = self.user(username).await?;
        let value = verifiable_value(&u, attr)?;
        let (_, flag, ticket) = VERIFIABLE
            .iter()
            .find(|(a, _, _)| *a == attr)
            .copied()
            .ok_or_else(|| IdpError::InvalidParameter("Invalid attribute name".into()))?;
        self.spend_code(ticket, username, code, &value, None)
            .await?;
        // Read again: the value may have changed while the code was checked.
        let mut u = self.user(username).await?;
        if u.attributes.get(attr).and_then(Value::as_str) != Some(value.as_str()) {
            return Err(IdpError::ExpiredCode);
        }
        u.attributes.insert(flag.into(), "true".into());
        self.store.save_user(&self.id, u).await?;
        Ok(())
    }
}
