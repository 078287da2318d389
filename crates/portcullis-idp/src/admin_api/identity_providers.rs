//! Cognito's identity-provider operations: `CreateIdentityProvider`, `DescribeIdentityProvider`,
//! `ListIdentityProviders`, `UpdateIdentityProvider`, `DeleteIdentityProvider` and
//! `GetIdentityProviderByIdentifier`, with Cognito's shapes and exceptions.

use super::request::Req;
use crate::domain::federation::{self, StoredProvider};
use crate::domain::pool::Pool;
use crate::error::IdpError;
use crate::store::Put;
use portcullis_config::{COGNITO_PROVIDER, Client, IdentityProvider};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The `ProviderDetails` keys of an `OIDC` provider.
const DETAIL_KEYS: [&str; 10] = [
    "client_id",
    "client_secret",
    "authorize_scopes",
    "oidc_issuer",
    "authorize_url",
    "token_url",
    "attributes_url",
    "jwks_uri",
    "attributes_request_method",
    // Cognito returns it (discovered); accepted and ignored on input.
    "attributes_url_add_attributes",
];

/// Runs one identity-provider operation.
pub(super) async fn dispatch(pool: &Pool, op: &str, r: &Req<'_>) -> Result<Value, IdpError> {
    match op {
        "CreateIdentityProvider" => create(pool, r).await,
        "DescribeIdentityProvider" => {
            let p = existing(pool, r.str("ProviderName")?)?;
            Ok(json!({"IdentityProvider": provider_type(pool, &p)}))
        }
        "ListIdentityProviders" => list(pool, r),
        "UpdateIdentityProvider" => update(pool, r).await,
        "DeleteIdentityProvider" => delete(pool, r).await,
        "GetIdentityProviderByIdentifier" => {
            let id = r.str("IdpIdentifier")?;
            let catalog = pool.catalog();
            let p = catalog.provider_by_identifier(id).ok_or_else(|| {
                IdpError::ResourceNotFound("Identity provider does not exist.".into())
            })?;
            Ok(json!({"IdentityProvider": provider_type(pool, p)}))
        }
        _ => Err(IdpError::Unsupported(op.chars().take(64).collect())),
    }
}

/// Each name of a client's `SupportedIdentityProviders` is `COGNITO` or one of the pool's providers.
pub(super) fn check_supported(pool: &Pool, c: &Client) -> Result<(), IdpError> {
    let catalog = pool.catalog();
    for name in c.supported_identity_providers.iter().flatten() {
        if name != COGNITO_PROVIDER && !catalog.identity_providers.contains_key(name) {
            return Err(IdpError::InvalidParameter(format!(
                "The provider {} does not exist for User Pool {}",
                name.chars().take(64).collect::<String>(),
                pool.id
            )));
        }
    }
    Ok(())
}

fn existing(pool: &Pool, name: &str) -> Result<std::sync::Arc<StoredProvider>, IdpError> {
    pool.catalog()
        .identity_providers
        .get(name)
        .cloned()
        .ok_or_else(|| {
            IdpError::ResourceNotFound(format!(
                "Identity provider {} does not exist.",
                name.chars().take(64).collect::<String>()
            ))
        })
}

/// Cognito's `IdentityProviderType`. The client secret is returned, as Cognito does (never logged).
fn provider_type(pool: &Pool, s: &StoredProvider) -> Value {
    let p = &s.provider;
    let mut details = Map::new();
    let mut put = |k: &str, v: Option<&String>| {
        if let Some(v) = v {
            details.insert(k.into(), v.clone().into());
        }
    };
    let resolved = pool.federation.resolved_endpoints(&p.name);
    let discovered = |explicit: &Option<String>, found: Option<String>| explicit.clone().or(found);
    put("client_id", Some(&p.client_id));
    put("client_secret", p.client_secret.as_ref());
    put("authorize_scopes", Some(&p.authorize_scopes));
    put("oidc_issuer", Some(&p.oidc_issuer));
    put(
        "attributes_request_method",
        Some(&p.attributes_request_method),
    );
    put(
        "authorize_url",
        discovered(
            &p.authorize_url,
            resolved.as_ref().map(|c| c.authorization_endpoint.clone()),
        )
        .as_ref(),
    );
    put(
        "token_url",
        discovered(
            &p.token_url,
            resolved.as_ref().map(|c| c.token_endpoint.clone()),
        )
        .as_ref(),
    );
    put(
        "attributes_url",
        discovered(
            &p.attributes_url,
            resolved.as_ref().map(|c| c.user_info_endpoint.clone()),
        )
        .as_ref(),
    );
    put(
        "jwks_uri",
        discovered(
            &p.jwks_uri,
            resolved.as_ref().and_then(|c| c.jwks_uri.clone()),
        )
        .as_ref(),
    );
    put("attributes_url_add_attributes", Some(&"false".to_string()));
    let mut mapping: Map<String, Value> = p
        .attribute_mapping
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into()))
        .collect();
    mapping.entry("username").or_insert_with(|| "sub".into());
    json!({
        "UserPoolId": pool.id,
        "ProviderName": p.name,
        "ProviderType": p.provider_type,
        "ProviderDetails": details,
        "AttributeMapping": mapping,
        "IdpIdentifiers": p.idp_identifiers,
        "LastModifiedDate": s.updated_at,
        "CreationDate": s.created_at,
    })
}

fn string_map(r: &Req<'_>, k: &str) -> Result<Option<BTreeMap<String, String>>, IdpError> {
    let Some(v) = r.0.get(k) else {
        return Ok(None);
    };
    let obj = v
        .as_object()
        .ok_or_else(|| IdpError::InvalidParameter(format!("{k} must be a map of strings")))?;
    if obj.len() > 100 {
        return Err(IdpError::InvalidParameter(format!("{k}: too many entries")));
    }
    obj.iter()
        .map(|(name, v)| match v.as_str() {
            Some(s) if s.len() <= 2048 => Ok((name.clone(), s.to_string())),
            _ => Err(IdpError::InvalidParameter(format!(
                "{k}.{}: must be a string of at most 2048 characters",
                name.chars().take(64).collect::<String>()
            ))),
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

/// Applies `ProviderDetails` onto `p` (all of them on create; those given on update).
fn apply_details(
    p: &mut IdentityProvider,
    details: &BTreeMap<String, String>,
) -> Result<(), IdpError> {
    for (k, v) in details {
        let v = v.clone();
        match k.as_str() {
            "client_id" => p.client_id = v,
            "client_secret" => p.client_secret = Some(v),
            "authorize_scopes" => p.authorize_scopes = v,
            "oidc_issuer" => p.oidc_issuer = v,
            "authorize_url" => p.authorize_url = Some(v),
            "token_url" => p.token_url = Some(v),
            "attributes_url" => p.attributes_url = Some(v),
            "jwks_uri" => p.jwks_uri = Some(v),
            "attributes_request_method" => p.attributes_request_method = v,
            "attributes_url_add_attributes" => {}
            other => {
                return Err(IdpError::InvalidParameter(format!(
                    "ProviderDetails: unknown key {} (known: {})",
                    other.chars().take(64).collect::<String>(),
                    DETAIL_KEYS.join(", ")
                )));
            }
        }
    }
    Ok(())
}

/// The provider's rules (shared with the config), and identifiers unique in the pool.
fn check(pool: &Pool, p: &IdentityProvider) -> Result<(), IdpError> {
    let custom: BTreeSet<String> = pool.custom_attributes.keys().cloned().collect();
    let problems = portcullis_config::identity_provider_problems(p, &custom);
    if let Some((field, reason)) = problems.into_iter().next() {
        let field = match field.as_str() {
            "name" => "ProviderName".to_string(),
            "type" => "ProviderType".to_string(),
            f if f.starts_with("attribute_mapping") => format!("AttributeMapping{}", &f[17..]),
            f if f.starts_with("idp_identifiers") => format!("IdpIdentifiers{}", &f[15..]),
            f => format!("ProviderDetails.{f}"),
        };
        return Err(IdpError::InvalidParameter(format!("{field}: {reason}")));
    }
    let catalog = pool.catalog();
    for other in catalog.identity_providers.values() {
        if other.provider.name == p.name {
            continue;
        }
        if let Some(id) = p.idp_identifiers.iter().find(|i| {
            other
                .provider
                .idp_identifiers
                .iter()
                .any(|o| o.eq_ignore_ascii_case(i))
        }) {
            return Err(IdpError::DuplicateProvider(format!(
                "Identifier {id} is already used by provider {}",
                other.provider.name
            )));
        }
    }
    Ok(())
}

async fn create(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let name = r.str("ProviderName")?;
    let kind = r.str("ProviderType")?;
    if kind != "OIDC" {
        return Err(IdpError::InvalidParameter(format!(
            "ProviderType {} is not supported (OIDC only)",
            kind.chars().take(32).collect::<String>()
        )));
    }
    let details = string_map(r, "ProviderDetails")?
        .ok_or_else(|| IdpError::InvalidParameter("ProviderDetails is required".into()))?;
    let mut p = IdentityProvider {
        name: name.to_string(),
        provider_type: kind.to_string(),
        client_id: String::new(),
        client_secret: None,
        client_secret_env: None,
        authorize_scopes: "openid".into(),
        oidc_issuer: String::new(),
        authorize_url: None,
        token_url: None,
        attributes_url: None,
        jwks_uri: None,
        attributes_request_method: "GET".into(),
        attribute_mapping: string_map(r, "AttributeMapping")?.unwrap_or_default(),
        idp_identifiers: r.strings("IdpIdentifiers"),
    };
    apply_details(&mut p, &details)?;
    if pool.catalog().identity_providers.contains_key(name) {
        return Err(IdpError::DuplicateProvider(format!(
            "A provider with the name {name} already exists in this user pool."
        )));
    }
    if pool.catalog().identity_providers.len()
        >= portcullis_config::identity_provider::MAX_IDENTITY_PROVIDERS
    {
        return Err(IdpError::LimitExceeded(
            "A pool has at most 50 identity providers".into(),
        ));
    }
    check(pool, &p)?;
    let now = pool.now();
    let stored = StoredProvider {
        provider: p,
        created_at: now,
        updated_at: now,
    };
    if !federation::put_provider(pool.store.as_ref(), &pool.id, &stored, Put::Insert).await? {
        return Err(IdpError::DuplicateProvider(format!(
            "A provider with the name {name} already exists in this user pool."
        )));
    }
    pool.reload_catalog().await?;
    Ok(json!({"IdentityProvider": provider_type(pool, &stored)}))
}

async fn update(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let old = existing(pool, r.str("ProviderName")?)?;
    let mut p = old.provider.clone();
    if let Some(details) = string_map(r, "ProviderDetails")? {
        // Cognito's update replaces the details; a secret left out is kept.
        let secret = p.client_secret.take();
        let mut fresh = IdentityProvider {
            client_secret: None,
            authorize_url: None,
            token_url: None,
            attributes_url: None,
            jwks_uri: None,
            attributes_request_method: "GET".into(),
            ..p.clone()
        };
        apply_details(&mut fresh, &details)?;
        if fresh.client_secret.is_none() {
            fresh.client_secret = secret;
        }
        p = fresh;
    }
    if let Some(m) = string_map(r, "AttributeMapping")? {
        p.attribute_mapping = m;
    }
    if r.0.contains_key("IdpIdentifiers") {
        p.idp_identifiers = r.strings("IdpIdentifiers");
    }
    check(pool, &p)?;
    let stored = StoredProvider {
        provider: p,
        created_at: old.created_at,
        // Strictly later, so nodes re-resolve the provider even within one second.
        updated_at: (pool.now()).max(old.updated_at + 1),
    };
    if !federation::put_provider(pool.store.as_ref(), &pool.id, &stored, Put::Update).await? {
        return Err(IdpError::ResourceNotFound(
            "Identity provider does not exist.".into(),
        ));
    }
    pool.reload_catalog().await?;
    Ok(json!({"IdentityProvider": provider_type(pool, &stored)}))
}

async fn delete(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let p = existing(pool, r.str("ProviderName")?)?;
    pool.store
        .delete_object(&pool.id, federation::IDENTITY_PROVIDER, &p.provider.name)
        .await?;
    pool.reload_catalog().await?;
    Ok(json!({}))
}

fn list(pool: &Pool, r: &Req<'_>) -> Result<Value, IdpError> {
    let max = match r.int("MaxResults") {
        None => 60,
        Some(n) if (1..=60).contains(&n) => n as usize,
        Some(_) => {
            return Err(IdpError::InvalidParameter("MaxResults must be 1-60".into()));
        }
    };
    let after = r.opt("NextToken").map(str::to_string);
    let catalog = pool.catalog();
    let mut names: Vec<&String> = catalog.identity_providers.keys().collect();
    names.sort();
    let start = match &after {
        None => 0,
        Some(t) => names
            .iter()
            .position(|n| n.as_str() > t.as_str())
            .unwrap_or(names.len()),
    };
    let page: Vec<Value> = names[start..]
        .iter()
        .take(max)
        .filter_map(|n| catalog.identity_providers.get(*n))
        .map(|s| {
            json!({
                "ProviderName": s.provider.name,
                "ProviderType": s.provider.provider_type,
                "LastModifiedDate": s.updated_at,
                "CreationDate": s.created_at,
            })
        })
        .collect();
    let mut v = json!({"Providers": page});
    if start + max < names.len() {
        v["NextToken"] = names[start + max - 1].clone().into();
    }
    Ok(v)
}
