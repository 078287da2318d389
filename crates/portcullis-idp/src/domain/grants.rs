//! The OAuth grants: a code (or implicit tokens) at the end of an authorization, then the token
//! endpoint's authorization code, refresh token and client credentials grants, and revocation.

use crate::domain::authorize::{AuthorizeRequest, MAX_PARAM_LEN};
use crate::domain::pool::Pool;
use crate::domain::scopes::is_reserved_scope;
use crate::domain::secrets::{constant_time_eq, random_token, sha256_hex};
use crate::error::IdpError;
use crate::store::{CodeRecord, RefreshRecord, RefreshUse, StoreError, UserRecord};
use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Map;

/// The ticket purpose that keeps an authorization code's sign-in session.
const CODE_SESSION: &str = "code_sid";

/// Codes live 5 minutes, as Cognito's.
pub const CODE_LIFETIME: i64 = 300;

/// Refresh tokens live 30 days unless the client says otherwise (Cognito's default).
pub const REFRESH_LIFETIME: i64 = 30 * 86400;

/// An OAuth error as JSON or as a redirect parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// RFC 6749 `error` code.
    pub error: &'static str,
    /// Human-readable detail (never secrets).
    pub description: String,
    /// HTTP status.
    pub status: u16,
}

impl OAuthError {
    /// A 400 with this code.
    pub fn bad(error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            error,
            description: description.into(),
            status: 400,
        }
    }
    /// A 500 `server_error` when the system random source fails.
    pub(crate) fn no_randomness(_: IdpError) -> Self {
        tracing::error!("the system random source failed");
        OAuthError {
            error: "server_error",
            description: "internal error".into(),
            status: 500,
        }
    }
    pub(crate) fn server(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        OAuthError {
            error: "server_error",
            description: "internal error".into(),
            status: 500,
        }
    }
}

/// Tokens from a grant.
#[derive(Debug)]
pub struct Tokens {
    /// Present when `openid` was granted.
    pub id_token: Option<String>,
    /// Always.
    pub access_token: String,
    /// For the code grant.
    pub refresh_token: Option<String>,
    /// Seconds.
    pub expires_in: u64,
}

/// Whether `v` is a PKCE verifier as RFC 7636 §4.1 defines it: 43 to 128 unreserved characters.
fn is_pkce_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// What a token family is minted for: the user and their groups, the client and its scopes, and
/// the sign-in (when, its nonce, its family and its session).
pub(crate) struct Grant<'a> {
    /// The user.
    pub user: &'a UserRecord,
    /// Their groups (`cognito:groups`).
    pub groups: &'a [String],
    /// The client (`client_id`, `aud`).
    pub client_id: &'a str,
    /// Space-separated granted scopes.
    pub scope: &'a str,
    /// When the user authenticated.
    pub auth_time: i64,
    /// The authorization request's nonce (ID token only).
    pub nonce: Option<&'a str>,
    /// The token family (`origin_jti`).
    pub origin_jti: &'a str,
    /// The sign-in session (`sid`).
    pub sid: Option<&'a str>,
}

impl Pool {
    /// Ends a successful authorization in sign-in session `sid`: a code, or for the implicit flow
    /// the tokens themselves in the URL fragment (`access_token`, `id_token` with `openid`, never
    /// a refresh token).
    pub async fn complete_authorization_in(
        &self,
        req: &AuthorizeRequest,
        user: &UserRecord,
        auth_time: i64,
        sid: &str,
    ) -> Result<String, OAuthError> {
        if !req.implicit {
            return self.issue_code(req, &user.sub, auth_time, sid).await;
        }
        let groups = self
            .store
            .groups_of(&self.id, &user.sub)
            .await
            .map_err(OAuthError::server)?;
        let origin_jti = uuid::Uuid::new_v4().to_string();
        self.grant_or_refuse(sid, &req.client_id, &origin_jti)
            .await?;
        let scope = req.scopes.join(" ");
        let t = self.mint(&Grant {
            user,
            groups: &groups,
            client_id: &req.client_id,
            scope: &scope,
            auth_time,
            nonce: req.nonce.as_deref(),
            origin_jti: &origin_jti,
            sid: Some(sid),
        })?;
        let mut f = form_urlencoded::Serializer::new(String::new());
        if let Some(id) = &t.id_token {
            f.append_pair("id_token", id);
        }
        f.append_pair("access_token", &t.access_token)
            .append_pair("token_type", "Bearer")
            .append_pair("expires_in", &t.expires_in.to_string());
        if let Some(s) = &req.state {
            f.append_pair("state", s);
        }
        Ok(format!("{}#{}", req.redirect_uri, f.finish()))
    }

    /// Records a token family in sign-in session `sid`; `invalid_grant` when the session ended.
    pub(crate) async fn grant_or_refuse(
        &self,
        sid: &str,
        client_id: &str,
        origin_jti: &str,
    ) -> Result<(), OAuthError> {
        if self
            .grant_in_session(sid, client_id, origin_jti)
            .await
            .map_err(OAuthError::server)?
        {
            Ok(())
        } else {
            Err(OAuthError::bad(
                "invalid_grant",
                "the sign-in session has ended",
            ))
        }
    }

    /// Issues a single-use code for user `sub` in sign-in session `sid` and returns the URL to
    /// send the browser to.
    async fn issue_code(
        &self,
        req: &AuthorizeRequest,
        sub: &str,
        auth_time: i64,
        sid: &str,
    ) -> Result<String, OAuthError> {
        let code = random_token(32).map_err(OAuthError::no_randomness)?;
        let expires_at = self.now() + CODE_LIFETIME;
        // The code's session, kept beside it (spent with it) so the code row needs no column.
        self.store
            .put_ticket(
                &self.id,
                CODE_SESSION,
                &sha256_hex(&code),
                sid.to_string(),
                expires_at,
            )
            .await
            .map_err(OAuthError::server)?;
        let rec = CodeRecord {
            client_id: req.client_id.clone(),
            sub: sub.to_string(),
            redirect_uri: req.redirect_uri.clone(),
            scope: req.scopes.join(" "),
            nonce: req.nonce.clone(),
            code_challenge: req.code_challenge.clone(),
            auth_time,
        };
        self.store
            .insert_code(&self.id, sha256_hex(&code), rec, expires_at)
            .await
            .map_err(OAuthError::server)?;
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("code", &code);
        if let Some(s) = &req.state {
            q.append_pair("state", s);
        }
        let sep = if req.redirect_uri.contains('?') {
            '&'
        } else {
            '?'
        };
        Ok(format!("{}{sep}{}", req.redirect_uri, q.finish()))
    }

    /// Authenticates a client at the token endpoint (secrets compared in constant time).
    pub fn authenticate_client(
        &self,
        client_id: &str,
        secret: Option<&str>,
    ) -> Result<(), OAuthError> {
        let invalid = || OAuthError {
            error: "invalid_client",
            description: "client authentication failed".into(),
            status: 401,
        };
        let client = self.client(client_id).ok_or_else(invalid)?;
        match secret {
            Some(got) if client.secret_matches(got) => Ok(()),
            None if client.secrets.is_empty() => Ok(()),
            _ => Err(invalid()),
        }
    }

    /// `grant_type=authorization_code`.
    pub async fn redeem_code(
        &self,
        client_id: &str,
        code: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
    ) -> Result<Tokens, OAuthError> {
        let invalid = |d: &str| OAuthError::bad("invalid_grant", d);
        if code.is_empty() || code.len() > MAX_PARAM_LEN {
            return Err(OAuthError::bad("invalid_request", "code is missing"));
        }
        let origin_jti = uuid::Uuid::new_v4().to_string();
        let Some(rec) = self
            .store
            .take_code(&self.id, sha256_hex(code), &origin_jti)
            .await
            .map_err(OAuthError::server)?
        else {
            // A code presented twice was copied: the tokens its first use gave are revoked
            // (RFC 6749 §4.1.2, RFC 9700 §4.5).
            if let Some(family) = self
                .store
                .spent_code_family(&self.id, sha256_hex(code))
                .await
                .map_err(OAuthError::server)?
            {
                tracing::warn!(pool = %self.name, "authorization code replayed; its tokens are revoked");
                self.store
                    .revoke_family(&self.id, &family)
                    .await
                    .map_err(OAuthError::server)?;
            }
            return Err(invalid("the code is unknown, expired or already used"));
        };
        if rec.client_id != client_id {
            return Err(invalid("the code was issued to another client"));
        }
        if redirect_uri != Some(rec.redirect_uri.as_str()) {
            return Err(invalid(
                "redirect_uri does not match the authorization request",
            ));
        }
        // PKCE both ways (RFC 9700 §2.1.1): a code with a challenge needs its verifier, and a
        // verifier for a code issued without a challenge means the request was downgraded on the
        // way (an attacker's code injected into a PKCE client's session).
        match (&rec.code_challenge, verifier) {
            (None, None) => {}
            (None, Some(_)) => {
                return Err(invalid(
                    "code_verifier given for a code issued without code_challenge",
                ));
            }
            (Some(_), None) => return Err(invalid("code_verifier is missing")),
            (Some(challenge), Some(v)) => {
                let computed = URL_SAFE_NO_PAD.encode(digest(&SHA256, v.as_bytes()).as_ref());
                if !is_pkce_verifier(v) || !constant_time_eq(&computed, challenge) {
                    return Err(invalid("code_verifier does not match"));
                }
            }
        }
        let (user, groups) = self.live_user(&rec.sub).await?;
        let sid = self
            .store
            .take_ticket(&self.id, CODE_SESSION, &sha256_hex(code))
            .await
            .map_err(OAuthError::server)?;
        if let Some(sid) = &sid {
            self.grant_or_refuse(sid, client_id, &origin_jti).await?;
        }
        let mut tokens = self.mint(&Grant {
            user: &user,
            groups: &groups,
            client_id,
            scope: &rec.scope,
            auth_time: rec.auth_time,
            nonce: rec.nonce.as_deref(),
            origin_jti: &origin_jti,
            sid: sid.as_deref(),
        })?;
        let refresh = random_token(48).map_err(OAuthError::no_randomness)?;
        let r = RefreshRecord {
            client_id: client_id.into(),
            sub: user.sub.clone(),
            scope: rec.scope.clone(),
            auth_time: rec.auth_time,
            origin_jti,
        };
        self.store
            .insert_refresh(
                &self.id,
                sha256_hex(&refresh),
                r,
                self.now()
                    + self
                        .client(client_id)
                        .map_or(REFRESH_LIFETIME, |c| c.client.refresh_seconds() as i64),
            )
            .await
            .map_err(OAuthError::server)?;
        tokens.refresh_token = Some(refresh);
        Ok(tokens)
    }

    /// `grant_type=client_credentials`: an access token for the client itself, with custom scopes
    /// only (all the client's when `scope` is absent; a scope it may not have is `invalid_scope`).
    pub fn client_credentials(
        &self,
        client_id: &str,
        scope: Option<&str>,
    ) -> Result<Tokens, OAuthError> {
        let client = self
            .client(client_id)
            .filter(|c| {
                !c.secrets.is_empty()
                    && c.client.oauth_enabled()
                    && c.client
                        .allowed_oauth_flows
                        .iter()
                        .any(|f| f == "client_credentials")
            })
            .ok_or_else(|| {
                OAuthError::bad(
                    "unauthorized_client",
                    "the client may not use client_credentials",
                )
            })?;
        let allowed: Vec<&str> = client
            .client
            .allowed_oauth_scopes
            .iter()
            .map(String::as_str)
            .filter(|s| !is_reserved_scope(s))
            .collect();
        let scopes: Vec<&str> = match scope {
            None => allowed.clone(),
            Some(s) => {
                let mut v: Vec<&str> = Vec::new();
                for sc in s.split(' ').filter(|x| !x.is_empty()) {
                    if !allowed.contains(&sc) {
                        return Err(OAuthError::bad(
                            "invalid_scope",
                            format!("the client may not have scope `{sc}`"),
                        ));
                    }
                    if !v.contains(&sc) {
                        v.push(sc);
                    }
                }
                v
            }
        };
        if scopes.is_empty() {
            return Err(OAuthError::bad(
                "invalid_scope",
                "no custom scope is allowed for this client",
            ));
        }
        let now = u64::try_from(self.now()).unwrap_or(0);
        let mut at = Map::new();
        at.insert("sub".into(), client_id.into());
        at.insert("token_use".into(), "access".into());
        at.insert("scope".into(), scopes.join(" ").into());
        at.insert("auth_time".into(), now.into());
        at.insert("iss".into(), self.issuer.clone().into());
        let access_secs = client.client.access_seconds(self.token_validity);
        at.insert("exp".into(), (now + access_secs).into());
        at.insert("iat".into(), now.into());
        at.insert("version".into(), 2.into());
        at.insert("jti".into(), uuid::Uuid::new_v4().to_string().into());
        at.insert("client_id".into(), client_id.into());
        let access_token = self.keys.load().sign_access(&at).ok_or(OAuthError {
            error: "server_error",
            description: "token signing failed".into(),
            status: 500,
        })?;
        Ok(Tokens {
            id_token: None,
            access_token,
            refresh_token: None,
            expires_in: access_secs,
        })
    }

    /// `grant_type=refresh_token`; with the client's rotation on, a new refresh token replaces the old.
    pub async fn refresh(
        &self,
        client_id: &str,
        refresh_token: &str,
    ) -> Result<Tokens, OAuthError> {
        if refresh_token.is_empty() || refresh_token.len() > MAX_PARAM_LEN {
            return Err(OAuthError::bad(
                "invalid_request",
                "refresh_token is missing",
            ));
        }
        let rotation = self.client(client_id).and_then(|c| {
            c.client
                .refresh_token_rotation
                .as_ref()
                .filter(|r| r.enabled())
                .map(|r| (r.retry_grace_period_seconds, c.client.refresh_seconds()))
        });
        let now = self.now();
        let invalid = || {
            OAuthError::bad(
                "invalid_grant",
                "the refresh token is invalid, expired or revoked",
            )
        };
        // With rotation the store retires the token as it finds it; the old token keeps working
        // for the grace period (clients that retry), and after it, presenting it again means a
        // copy is in other hands: the store has revoked the whole family (RFC 9700 §4.14.2).
        let rec = match self
            .store
            .use_refresh(
                &self.id,
                sha256_hex(refresh_token),
                client_id,
                now,
                rotation.map(|(grace, _)| now + grace as i64),
            )
            .await
            .map_err(OAuthError::server)?
        {
            RefreshUse::Live(rec) => rec,
            RefreshUse::Invalid => return Err(invalid()),
            RefreshUse::Reused => {
                tracing::warn!(pool = %self.name, client = %client_id, "rotated refresh token reused after its grace period; its family is revoked");
                return Err(invalid());
            }
        };
        let (user, groups) = self.live_user(&rec.sub).await?;
        // The session's `sid` stays in refreshed tokens (ending it revoked the family already).
        let sid = self
            .sid_of_family(&rec.origin_jti)
            .await
            .map_err(OAuthError::server)?;
        let mut tokens = self.mint(&Grant {
            user: &user,
            groups: &groups,
            client_id,
            scope: &rec.scope,
            auth_time: rec.auth_time,
            nonce: None,
            origin_jti: &rec.origin_jti,
            sid: sid.as_deref(),
        })?;
        if let Some((_, lifetime)) = rotation {
            // A new token of the same family: revoking any of the family revokes it too.
            let next = random_token(48).map_err(OAuthError::no_randomness)?;
            self.store
                .insert_refresh(&self.id, sha256_hex(&next), rec, now + lifetime as i64)
                .await
                .map_err(OAuthError::server)?;
            tokens.refresh_token = Some(next);
        }
        Ok(tokens)
    }

    /// `/oauth2/revoke`: revokes a refresh token of this client and every access token minted from
    /// it (for the pool's own checks). Unknown tokens succeed silently, as Cognito.
    pub async fn revoke(&self, client_id: &str, token: &str) -> Result<(), OAuthError> {
        if token.is_empty() || token.len() > MAX_PARAM_LEN {
            return Err(OAuthError::bad("invalid_request", "token is missing"));
        }
        if token.contains('.') {
            return Err(OAuthError::bad(
                "unsupported_token_type",
                "only refresh tokens can be revoked",
            ));
        }
        let origin = self
            .store
            .revoke_refresh(&self.id, sha256_hex(token), client_id)
            .await
            .map_err(OAuthError::server)?;
        // Revoking a refresh token ends the sign-in session it was given in.
        if let Some(origin) = origin
            && let Some(sid) = self
                .sid_of_family(&origin)
                .await
                .map_err(OAuthError::server)?
        {
            self.end_sign_in(&sid).await.map_err(OAuthError::server)?;
        }
        Ok(())
    }

    /// An enabled user and their groups (tokens are minted from both).
    async fn live_user(&self, sub: &str) -> Result<(UserRecord, Vec<String>), OAuthError> {
        match self
            .store
            .user_by_sub(&self.id, sub)
            .await
            .map_err(OAuthError::server)?
        {
            Some(u) if u.enabled => {
                let groups = self
                    .store
                    .groups_of(&self.id, &u.sub)
                    .await
                    .map_err(OAuthError::server)?;
                Ok((u, groups))
            }
            _ => Err(OAuthError::bad(
                "invalid_grant",
                "the user is disabled or deleted",
            )),
        }
    }
}
