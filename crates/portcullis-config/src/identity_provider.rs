//! External identity providers of a user pool (Cognito's `IdentityProviderType` of type `OIDC`):
//! the config shape, shared with the admin API, and the rules both must keep.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The provider name every pool has: its own users.
pub const COGNITO_PROVIDER: &str = "COGNITO";
/// Most external providers a pool may have (Cognito: 300; a hosted-UI page must stay usable).
pub const MAX_IDENTITY_PROVIDERS: usize = 50;
/// Most `idp_identifiers` per provider (Cognito: 50).
pub const MAX_IDP_IDENTIFIERS: usize = 50;
/// Most attribute mappings per provider.
pub const MAX_ATTRIBUTE_MAPPINGS: usize = 50;

/// One external OIDC provider whose users may sign in to the pool (`[[user_pools.identity_providers]]`).
#[derive(Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IdentityProvider {
    /// Cognito's `ProviderName`: shown on the hosted UI's button, named by clients'
    /// `supported_identity_providers` and `identity_provider=`, and the prefix of its users' names.
    pub name: String,
    /// `OIDC` (the only type supported).
    #[serde(rename = "type")]
    pub provider_type: String,
    /// The pool's client id at the provider.
    pub client_id: String,
    /// The pool's client secret at the provider (tests; prefer `client_secret_env`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Or read it from this environment variable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_env: Option<String>,
    /// Scopes asked of the provider, space separated (Cognito's string form); must hold `openid`.
    #[serde(default = "openid")]
    pub authorize_scopes: String,
    /// The provider's issuer; its endpoints are discovered at
    /// `<oidc_issuer>/.well-known/openid-configuration` unless all four are given.
    pub oidc_issuer: String,
    /// Where the browser is sent to sign in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorize_url: Option<String>,
    /// Where the code is exchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    /// The userinfo endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes_url: Option<String>,
    /// The provider's signing keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// `GET` (default) or `POST` for the userinfo request.
    #[serde(default = "get_method")]
    pub attributes_request_method: String,
    /// Pool attribute → provider claim (Cognito's `AttributeMapping`); `username` is `sub` unless
    /// mapped.
    #[serde(default)]
    pub attribute_mapping: BTreeMap<String, String>,
    /// Identifiers (e.g. e-mail domains) that `idp_identifier=` matches.
    #[serde(default)]
    pub idp_identifiers: Vec<String>,
}

impl std::fmt::Debug for IdentityProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityProvider")
            .field("name", &self.name)
            .field("oidc_issuer", &self.oidc_issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

fn openid() -> String {
    "openid".into()
}
fn get_method() -> String {
    "GET".into()
}

/// Standard attributes a provider's claims may be mapped onto (Cognito's list, plus `username`).
pub const MAPPABLE_ATTRIBUTES: [&str; 20] = [
    "username",
    "address",
    "birthdate",
    "email",
    "email_verified",
    "family_name",
    "gender",
    "given_name",
    "locale",
    "middle_name",
    "name",
    "nickname",
    "phone_number",
    "phone_number_verified",
    "picture",
    "preferred_username",
    "profile",
    "updated_at",
    "website",
    "zoneinfo",
];

/// Whether `name` may be a `ProviderName`: 1–32 letters, digits, `-` or `.`, and not `COGNITO`.
/// `_` is refused (stricter than Cognito) because users are named `<ProviderName>_<sub>`: with an
/// `_` in a name, provider `a_b`'s user `c` and provider `a`'s user `b_c` would be one user.
pub fn is_provider_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && name != COGNITO_PROVIDER
}

fn is_url(u: &str) -> bool {
    u.len() <= 2048
        && crate::parse_url(u).is_some_and(|(scheme, host, _)| {
            scheme == "https" || (scheme == "http" && crate::is_loopback_host(&host))
        })
}

/// Every problem of a provider (config or admin API): `(field, reason)`; `custom` holds the pool's
/// `custom:` attribute names (with the prefix).
pub fn identity_provider_problems(
    p: &IdentityProvider,
    custom: &BTreeSet<String>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut fail = |f: &str, r: String| out.push((f.to_string(), r));
    if !is_provider_name(&p.name) {
        fail(
            "name",
            "1-32 letters, digits, '-' or '.' (no '_': user names are <name>_<sub>), and not COGNITO".into(),
        );
    }
    if p.provider_type != "OIDC" {
        fail(
            "type",
            "must be OIDC (the only provider type supported)".into(),
        );
    }
    if p.client_id.is_empty()
        || p.client_id.len() > 255
        || p.client_id.chars().any(char::is_control)
    {
        fail("client_id", "1-255 characters".into());
    }
    match (&p.client_secret, &p.client_secret_env) {
        (Some(_), Some(_)) => fail(
            "client_secret",
            "give client_secret or client_secret_env, not both".into(),
        ),
        (Some(s), None) if s.is_empty() || s.len() > 512 => {
            fail("client_secret", "1-512 characters".into())
        }
        (None, None) => fail(
            "client_secret",
            "required (or client_secret_env): the pool is a confidential client of the provider"
                .into(),
        ),
        _ => {}
    }
    let scopes: Vec<&str> = p
        .authorize_scopes
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    if !scopes.contains(&"openid")
        || p.authorize_scopes.len() > 2048
        || p.authorize_scopes
            .chars()
            .any(|c| c.is_control() || c == '"')
    {
        fail(
            "authorize_scopes",
            "space-separated scopes that include openid (at most 2048 characters)".into(),
        );
    }
    if !is_url(&p.oidc_issuer) {
        fail(
            "oidc_issuer",
            "must be an https URL (http only for localhost)".into(),
        );
    }
    for (f, v) in [
        ("authorize_url", &p.authorize_url),
        ("token_url", &p.token_url),
        ("attributes_url", &p.attributes_url),
        ("jwks_uri", &p.jwks_uri),
    ] {
        if let Some(u) = v
            && !is_url(u)
        {
            fail(f, "must be an https URL (http only for localhost)".into());
        }
    }
    let given = [
        &p.authorize_url,
        &p.token_url,
        &p.attributes_url,
        &p.jwks_uri,
    ]
    .iter()
    .filter(|v| v.is_some())
    .count();
    if given != 0 && given != 4 {
        fail(
            "authorize_url",
            "give all four of authorize_url, token_url, attributes_url and jwks_uri, or none (discovery)".into(),
        );
    }
    if p.attributes_request_method != "GET" && p.attributes_request_method != "POST" {
        fail("attributes_request_method", "must be GET or POST".into());
    }
    if p.attribute_mapping.len() > MAX_ATTRIBUTE_MAPPINGS {
        fail(
            "attribute_mapping",
            format!("at most {MAX_ATTRIBUTE_MAPPINGS} mappings"),
        );
    }
    for (attr, claim) in &p.attribute_mapping {
        if !MAPPABLE_ATTRIBUTES.contains(&attr.as_str()) && !custom.contains(attr) {
            fail(
                &format!("attribute_mapping.{attr}"),
                "not a standard attribute nor a custom attribute of this pool (sub, identities and cognito:* cannot be mapped)".into(),
            );
        }
        if claim.is_empty() || claim.len() > 128 || claim.chars().any(char::is_control) {
            fail(
                &format!("attribute_mapping.{attr}"),
                "the provider claim must be 1-128 characters".into(),
            );
        }
    }
    if p.idp_identifiers.len() > MAX_IDP_IDENTIFIERS {
        fail("idp_identifiers", format!("at most {MAX_IDP_IDENTIFIERS}"));
    }
    let mut seen = BTreeSet::new();
    for (k, id) in p.idp_identifiers.iter().enumerate() {
        if !is_idp_identifier(id) {
            fail(
                &format!("idp_identifiers[{k}]"),
                "1-40 letters, digits, '.', '_' or '-'".into(),
            );
        } else if !seen.insert(id.to_ascii_lowercase()) {
            fail(&format!("idp_identifiers[{k}]"), "listed twice".into());
        }
    }
    out
}

/// Cognito's `IdpIdentifier` pattern: 1–40 of `[\w\s+=.@-]`; here without spaces.
pub fn is_idp_identifier(id: &str) -> bool {
    (1..=40).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+=@".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> IdentityProvider {
        IdentityProvider {
            name: "Partner".into(),
            provider_type: "OIDC".into(),
            client_id: "pool".into(),
            client_secret: Some("s3cret".into()),
            client_secret_env: None,
            authorize_scopes: "openid email".into(),
            oidc_issuer: "https://idp.example".into(),
            authorize_url: None,
            token_url: None,
            attributes_url: None,
            jwks_uri: None,
            attributes_request_method: "GET".into(),
            attribute_mapping: [("email".to_string(), "email".to_string())].into(),
            idp_identifiers: vec!["example.com".into()],
        }
    }

    fn fields(p: &IdentityProvider) -> Vec<String> {
        identity_provider_problems(p, &BTreeSet::new())
            .into_iter()
            .map(|(f, _)| f)
            .collect()
    }

    #[test]
    fn a_good_provider_passes() {
        assert!(fields(&good()).is_empty());
    }

    #[test]
    fn names_that_could_collide_are_refused() {
        for bad in ["", "a_b", "COGNITO", "has space", &"x".repeat(33), "é"] {
            let mut p = good();
            p.name = bad.into();
            assert_eq!(fields(&p), ["name"], "{bad:?}");
        }
    }

    #[test]
    fn mapping_onto_reserved_or_unknown_attributes_is_refused() {
        for bad in ["sub", "identities", "cognito:groups", "custom:team"] {
            let mut p = good();
            p.attribute_mapping.insert(bad.into(), "x".into());
            assert_eq!(fields(&p), [format!("attribute_mapping.{bad}")], "{bad}");
        }
        let mut p = good();
        p.attribute_mapping
            .insert("custom:team".into(), "team".into());
        let custom: BTreeSet<String> = ["custom:team".to_string()].into();
        assert!(identity_provider_problems(&p, &custom).is_empty());
    }

    #[test]
    fn endpoints_are_all_or_none_and_https() {
        let mut p = good();
        p.token_url = Some("https://idp.example/token".into());
        assert_eq!(fields(&p), ["authorize_url"]);
        let mut p = good();
        p.oidc_issuer = "http://idp.example".into();
        assert_eq!(fields(&p), ["oidc_issuer"]);
        p.oidc_issuer = "http://localhost:3000".into();
        assert!(fields(&p).is_empty());
    }

    #[test]
    fn scopes_need_openid_and_a_secret_is_required() {
        let mut p = good();
        p.authorize_scopes = "email".into();
        p.client_secret = None;
        assert_eq!(fields(&p), ["client_secret", "authorize_scopes"]);
    }
}
