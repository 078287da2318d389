//! What the pool's tokens say: minting the access and ID tokens of a grant, and userInfo, which
//! reads an access token back.

use crate::domain::grants::{Grant, OAuthError, Tokens};
use crate::domain::pool::Pool;
use crate::domain::scopes::{gives_id_token, userinfo_scope_filter};
use serde_json::{Map, Value};

impl Pool {
    /// Whether the client may read an attribute (`read_attributes`; all when absent).
    fn can_read(&self, client_id: &str, attribute: &str) -> bool {
        match self.client(client_id) {
            Some(c) => c
                .client
                .read_attributes
                .as_ref()
                .is_none_or(|list| list.iter().any(|a| a == attribute)),
            None => true,
        }
    }

    /// Mints the access token of `g` and, when its scopes give one, its ID token; both are dated
    /// by the pool's clock and carry the sign-in session's `sid`.
    pub(crate) fn mint(&self, g: &Grant<'_>) -> Result<Tokens, OAuthError> {
        let now = u64::try_from(self.now()).unwrap_or(0);
        let client = self.client(g.client_id);
        let client = client.as_ref().map(|c| &c.client);
        let access_secs = client.map_or(self.token_validity, |c| {
            c.access_seconds(self.token_validity)
        });
        let id_secs = client.map_or(self.token_validity, |c| c.id_seconds(self.token_validity));
        let event_id = uuid::Uuid::new_v4().to_string();
        let fail = || OAuthError {
            error: "server_error",
            description: "token signing failed".into(),
            status: 500,
        };
        let at = self.access_claims(g, &event_id, now, now + access_secs);
        let access_token = self.keys.load().sign_access(&at).ok_or_else(fail)?;
        let id_token = if gives_id_token(g.scope) {
            let id = self.id_claims(g, event_id, now, now + id_secs);
            Some(self.keys.load().sign_id(&id).ok_or_else(fail)?)
        } else {
            None
        };
        Ok(Tokens {
            id_token,
            access_token,
            refresh_token: None,
            expires_in: access_secs,
        })
    }

    /// The claims of an access token, as Cognito's (plus `sid`).
    fn access_claims(
        &self,
        g: &Grant<'_>,
        event_id: &str,
        now: u64,
        exp: u64,
    ) -> Map<String, Value> {
        let mut at = Map::new();
        at.insert("sub".into(), g.user.sub.clone().into());
        if !g.groups.is_empty() {
            at.insert("cognito:groups".into(), g.groups.into());
        }
        at.insert("iss".into(), self.issuer.clone().into());
        at.insert("version".into(), 2.into());
        at.insert("client_id".into(), g.client_id.into());
        at.insert("origin_jti".into(), g.origin_jti.into());
        at.insert("event_id".into(), event_id.into());
        at.insert("token_use".into(), "access".into());
        at.insert("scope".into(), g.scope.into());
        at.insert("auth_time".into(), g.auth_time.into());
        at.insert("exp".into(), exp.into());
        at.insert("iat".into(), now.into());
        at.insert("jti".into(), uuid::Uuid::new_v4().to_string().into());
        at.insert("username".into(), g.user.username.clone().into());
        // Ours: the sign-in session, so a resource server or the balancer's `jwt-validation`
        // can refuse an ended session's access token without asking the pool.
        if let Some(sid) = g.sid {
            at.insert("sid".into(), sid.into());
        }
        at
    }

    /// The claims of an ID token: the attributes the client may read, typed as Cognito's.
    fn id_claims(&self, g: &Grant<'_>, event_id: String, now: u64, exp: u64) -> Map<String, Value> {
        let mut id = Map::new();
        id.insert("sub".into(), g.user.sub.clone().into());
        if !g.groups.is_empty() {
            id.insert("cognito:groups".into(), g.groups.into());
        }
        for (k, v) in g
            .user
            .attributes
            .iter()
            .filter(|(k, _)| self.can_read(g.client_id, k))
        {
            // Booleans are real booleans in tokens (strings only in userInfo).
            let v = match (k.as_str(), v.as_str()) {
                ("email_verified" | "phone_number_verified", Some(s)) => Value::Bool(s == "true"),
                // A federated user's `identities` is a JSON array in tokens, as Cognito's.
                ("identities", Some(s)) => serde_json::from_str(s).unwrap_or_else(|_| v.clone()),
                _ => v.clone(),
            };
            id.insert(k.clone(), v);
        }
        id.insert("aud".into(), g.client_id.into());
        id.insert("event_id".into(), event_id.into());
        id.insert("token_use".into(), "id".into());
        id.insert("auth_time".into(), g.auth_time.into());
        id.insert("iss".into(), self.issuer.clone().into());
        id.insert("cognito:username".into(), g.user.username.clone().into());
        if let Some(n) = g.nonce {
            id.insert("nonce".into(), n.into());
        }
        id.insert("exp".into(), exp.into());
        id.insert("iat".into(), now.into());
        id.insert("jti".into(), uuid::Uuid::new_v4().to_string().into());
        id.insert("origin_jti".into(), g.origin_jti.into());
        // OIDC Front-/Back-Channel Logout: the session the token was given in.
        if let Some(sid) = g.sid {
            id.insert("sid".into(), sid.into());
        }
        id
    }

    /// `/oauth2/userInfo`: the user's attributes for a valid access token with `openid`.
    pub async fn userinfo(&self, access_token: &str) -> Result<Map<String, Value>, OAuthError> {
        let invalid = || {
            OAuthError {
            error: "invalid_token",
            description: "Access token is expired, disabled, or deleted, or the user has globally signed out.".into(),
            status: 401,
        }
        };
        let claims = self
            .keys
            .load()
            .verify_access(access_token, &self.issuer)
            .ok_or_else(invalid)?;
        let scope = claims.get("scope").and_then(Value::as_str).unwrap_or("");
        if !scope.split(' ').any(|s| s == "openid") {
            return Err(invalid());
        }
        // Access tokens minted from a revoked refresh token are dead here, on every node.
        if let Some(origin) = claims.get("origin_jti").and_then(Value::as_str)
            && self
                .store
                .origin_revoked(&self.id, origin)
                .await
                .map_err(OAuthError::server)?
        {
            return Err(invalid());
        }
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(invalid)?;
        let user = self
            .store
            .user_by_sub(&self.id, sub)
            .await
            .map_err(OAuthError::server)?;
        let user = user.filter(|u| u.enabled).ok_or_else(invalid)?;
        let client_id = claims
            .get("client_id")
            .and_then(Value::as_str)
            .unwrap_or("");
        let mut out = Map::new();
        out.insert("sub".into(), user.sub.clone().into());
        let by_scope = userinfo_scope_filter(scope);
        for (k, v) in user
            .attributes
            .iter()
            .filter(|(k, _)| self.can_read(client_id, k) && by_scope(k))
        {
            out.insert(k.clone(), v.clone());
        }
        out.insert("username".into(), user.username.clone().into());
        Ok(out)
    }
}
