//! A pool's app clients and resource servers. They live in the store (declared in the config or
//! created through the admin API) and each node serves from an immutable snapshot that is reloaded
//! after its own writes and every [`RELOAD_INTERVAL`], so requests never wait on the store for them.

use crate::store::{Put, Store, StoreError};
use portcullis_config::{Client, ResourceServer};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// How often a node picks up clients and resource servers that another node changed.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);
/// Store kind of app clients.
pub const CLIENT: &str = "client";
/// Store kind of resource servers.
pub const RESOURCE_SERVER: &str = "resource_server";
/// A confidential client has at most two secrets at a time (rotation).
pub const MAX_SECRETS: usize = 2;

/// One client secret; the value is never listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientSecret {
    /// `ClientSecretId`.
    pub id: String,
    /// The secret.
    pub value: String,
    /// Epoch seconds.
    pub created_at: i64,
}

/// An app client as stored: its settings and secrets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredClient {
    /// Settings (the config's shape).
    pub client: Client,
    /// Newest last; empty for a public client.
    pub secrets: Vec<ClientSecret>,
    /// Epoch seconds.
    pub created_at: i64,
    /// Epoch seconds.
    pub updated_at: i64,
}

impl StoredClient {
    /// Whether `got` is one of the client's secrets (constant time per secret).
    pub fn secret_matches(&self, got: &str) -> bool {
        let mut ok = false;
        for s in &self.secrets {
            ok |= crate::domain::secrets::constant_time_eq(&s.value, got);
        }
        ok
    }
}

/// A resource server as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredResourceServer {
    /// Identifier, name and scopes.
    pub server: ResourceServer,
}

/// An immutable view of a pool's clients and resource servers.
#[derive(Debug, Default)]
pub struct Catalog {
    /// By client id.
    pub clients: HashMap<String, Arc<StoredClient>>,
    /// By identifier.
    pub resource_servers: Vec<ResourceServer>,
    /// External identity providers, by name.
    pub identity_providers: HashMap<String, Arc<crate::domain::federation::StoredProvider>>,
}

impl Catalog {
    /// Every `identifier/scope` the resource servers define.
    pub fn custom_scopes(&self) -> BTreeSet<String> {
        self.resource_servers
            .iter()
            .flat_map(|rs| {
                rs.scopes
                    .iter()
                    .map(move |s| format!("{}/{}", rs.identifier, s.name))
            })
            .collect()
    }

    /// The provider one of whose `IdpIdentifiers` is `id` (case-insensitive), for
    /// `idp_identifier=` at `/oauth2/authorize` and `GetIdentityProviderByIdentifier`.
    pub fn provider_by_identifier(
        &self,
        id: &str,
    ) -> Option<&Arc<crate::domain::federation::StoredProvider>> {
        self.identity_providers.values().find(|p| {
            p.provider
                .idp_identifiers
                .iter()
                .any(|i| i.eq_ignore_ascii_case(id))
        })
    }

    /// Reads the catalog of `pool` from the store; a document that no longer parses is skipped
    /// and logged, never fatal.
    pub async fn load(store: &dyn Store, pool: &str) -> Result<Catalog, StoreError> {
        let mut clients = HashMap::new();
        for (id, body) in store.objects(pool, CLIENT).await? {
            match serde_json::from_str::<StoredClient>(&body) {
                Ok(c) => {
                    clients.insert(id, Arc::new(c));
                }
                Err(e) => {
                    tracing::error!(pool, client = %id, error = %e, "stored client is unreadable; skipped")
                }
            }
        }
        let mut resource_servers = Vec::new();
        for (id, body) in store.objects(pool, RESOURCE_SERVER).await? {
            match serde_json::from_str::<StoredResourceServer>(&body) {
                Ok(r) => resource_servers.push(r.server),
                Err(e) => {
                    tracing::error!(pool, resource_server = %id, error = %e, "stored resource server is unreadable; skipped")
                }
            }
        }
        let identity_providers = crate::domain::federation::load_providers(store, pool).await?;
        Ok(Catalog {
            clients,
            resource_servers,
            identity_providers,
        })
    }
}

/// Writes a client document.
pub async fn put_client(
    store: &dyn Store,
    pool: &str,
    c: &StoredClient,
    mode: Put,
) -> Result<bool, StoreError> {
    let body = serde_json::to_string(c).unwrap_or_default();
    store
        .put_object(pool, CLIENT, &c.client.client_id, body, mode)
        .await
}

/// Writes a resource server document.
pub async fn put_resource_server(
    store: &dyn Store,
    pool: &str,
    rs: &ResourceServer,
    mode: Put,
) -> Result<bool, StoreError> {
    let body =
        serde_json::to_string(&StoredResourceServer { server: rs.clone() }).unwrap_or_default();
    store
        .put_object(pool, RESOURCE_SERVER, &rs.identifier, body, mode)
        .await
}
