//! Authorization of a signed-in user by a rule's `require_scopes`, `require_groups` and
//! `require_claims`, from the grants derived once per session.

use crate::revocation::SessionRef;
use crate::session_cookie::Session;
use portcullis_config::SessionSettings;

/// Scopes (`scope` string or `scp` list) and groups (`cognito:groups` or `groups`) of an access
/// token. It came from the token endpoint over TLS, so its payload is read, not re-verified; a token
/// that is not a JWT has none.
pub fn token_scopes_and_groups(access_token: &str) -> (Vec<String>, Vec<String>) {
    let claims: serde_json::Map<String, serde_json::Value> =
        jsonwebtoken::dangerous::insecure_decode_claims(access_token).unwrap_or_default();
    let list = |v: Option<&serde_json::Value>| -> Vec<String> {
        match v {
            Some(serde_json::Value::String(s)) => s
                .split(' ')
                .filter(|x| !x.is_empty())
                .map(str::to_owned)
                .collect(),
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    let scopes = list(claims.get("scope").or_else(|| claims.get("scp")));
    let groups = list(
        claims
            .get("cognito:groups")
            .or_else(|| claims.get("groups")),
    );
    (scopes, groups)
}

/// What authorization looks at, derived from a session when it is parsed (not stored in the
/// cookie): the userinfo claims, and the scopes and groups of the access token; and what the
/// revocation check looks at, so a cached session is checked on every request too.
#[derive(Debug)]
pub struct Grants {
    /// Userinfo claims.
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// Access-token scopes.
    pub scopes: Vec<String>,
    /// The user's groups.
    pub groups: Vec<String>,
    /// The session's `sub`.
    pub sub: String,
    /// The provider's session id, if any.
    pub sid: Option<String>,
    /// When the session began (provider clock; 0 if unknown).
    pub began: u64,
}

impl Grants {
    /// From a parsed session.
    pub fn of(s: &Session) -> Grants {
        let (scopes, groups) = token_scopes_and_groups(&s.access_token);
        Grants {
            claims: s.claims.clone(),
            scopes,
            groups,
            sub: s.sub.clone(),
            sid: s.sid.clone(),
            began: s.began,
        }
    }

    /// The session as the revocation check names it.
    pub(super) fn session_ref<'a>(&'a self, issuer: &'a str) -> SessionRef<'a> {
        SessionRef {
            issuer,
            sid: self.sid.as_deref(),
            sub: &self.sub,
            began: self.began,
        }
    }
}

/// Why a signed-in user is not admitted by a rule (the 403's message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// `require_scopes`: the access token lacks this scope.
    #[error("the access token lacks scope {0}")]
    MissingScope(String),
    /// `require_groups`: the user is in none of them.
    #[error("the user is in none of the groups {}", .0.join(", "))]
    NoGroup(Vec<String>),
    /// `require_claims`: this claim has none of the accepted values.
    #[error("claim {0} has none of the accepted values")]
    Claim(String),
}

/// Whether the grants meet the rule's `require_*` settings; the reason when they do not.
pub fn authorize(settings: &SessionSettings, s: &Grants) -> Result<(), Denied> {
    if let Some(missing) = settings
        .require_scopes
        .iter()
        .find(|r| !s.scopes.contains(r))
    {
        return Err(Denied::MissingScope(missing.clone()));
    }
    if !settings.require_groups.is_empty()
        && !settings.require_groups.iter().any(|g| s.groups.contains(g))
    {
        return Err(Denied::NoGroup(settings.require_groups.clone()));
    }
    for (claim, accepted) in &settings.require_claims {
        let ok = match s.claims.get(claim) {
            Some(serde_json::Value::String(v)) => accepted.contains(v),
            Some(serde_json::Value::Array(vs)) => vs
                .iter()
                .any(|v| v.as_str().is_some_and(|v| accepted.iter().any(|a| a == v))),
            Some(v) => accepted.contains(&v.to_string()),
            None => false,
        };
        if !ok {
            return Err(Denied::Claim(claim.clone()));
        }
    }
    Ok(())
}
