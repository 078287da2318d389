//! One running user pool: the [`Pool`] and the state its operations share (clients, keys, store,
//! clock, limits), opening it from config, and the directory of a process's pools. The operations
//! live by topic in `authorize`, `grants`, `claims`, `sessions`, `accounts`, `admission`,
//! `external_sign_in` and `pool_description`; the HTTP layer (`http`) only parses and renders.

use crate::domain::backchannel;
use crate::domain::catalog::{self, Catalog, ClientSecret, StoredClient};
use crate::domain::federation::{self, Federation, SeedProviderError};
use crate::domain::hashing::{HashError, Hasher};
use crate::domain::messages;
use crate::domain::mfa::MfaMode;
use crate::domain::rate_limit::Limiter;
use crate::domain::revocation::Feed;
use crate::domain::secrets::random_token;
use crate::domain::tokens::PoolKeys;
use crate::error::IdpError;
use crate::metrics::IdpMetrics;
use crate::store::{Put, Store, StoreError};
use arc_swap::ArcSwap;
use aws_lc_rs::digest::{SHA256, digest};
use portcullis_config::{CustomAttribute, PasswordPolicy, SeedUser, UserPool};
use portcullis_core::Clock;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};

/// Why a pool cannot be opened from its config.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The store refused a read or write.
    #[error("user pool `{pool}`: {source}")]
    Store {
        /// Config name of the pool.
        pool: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The SMTP relay's password names an environment variable that is not set.
    #[error(transparent)]
    SmtpPassword(#[from] portcullis_core::secret::SecretError),
    /// A configured identity provider cannot be written.
    #[error(transparent)]
    Provider(#[from] SeedProviderError),
    /// The system random source failed.
    #[error("{what}")]
    Randomness {
        /// What the randomness was for.
        what: &'static str,
        /// The failure.
        #[source]
        source: IdpError,
    },
    /// The dummy password hash could not be made.
    #[error("argon2 failed")]
    Hashing(#[source] HashError),
}

/// Why the config's groups and seed users cannot be created.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The store refused a read or write.
    #[error("user pool `{pool}`: {source}")]
    Store {
        /// Config name of the pool.
        pool: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// A seed user's password cannot be resolved.
    #[error("user_pools[{pool}].users[{index}]: {source}")]
    Password {
        /// Config name of the pool.
        pool: String,
        /// Index of the user in the config.
        index: usize,
        /// What the resolver said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A user pool, ready to serve.
pub struct Pool {
    /// Config name.
    pub name: String,
    /// Cognito-style id (`us-east-1_AbC123`).
    pub id: String,
    /// `<base_url>/<id>`.
    pub issuer: String,
    /// Where it is served.
    pub base_url: String,
    catalog: ArcSwap<Catalog>,
    pub(crate) token_validity: u64,
    pub(crate) store: Arc<dyn Store>,
    /// Admin API keys: access key id → secret.
    pub(crate) access_keys: HashMap<String, String>,
    /// Region admin API signatures are scoped to.
    pub region: String,
    /// Password rules.
    pub policy: PasswordPolicy,
    /// Whether `SignUp` and the hosted sign-up page are open.
    pub allow_self_sign_up: bool,
    /// `custom:` attribute names and whether each is mutable.
    pub(crate) custom_attributes: HashMap<String, bool>,
    /// Where codes are delivered.
    pub(crate) sender: messages::Sender,
    /// Whether a second factor is asked.
    pub mfa: MfaMode,
    pub(crate) keys: ArcSwap<PoolKeys>,
    /// argon2id workers, their memory and their bounded queue.
    pub hasher: Hasher,
    /// Rate limits and the clock lockouts read.
    pub(crate) limits: Limiter,
    /// Counters served at `<admin>/metrics`.
    pub(crate) metrics: Arc<IdpMetrics>,
    /// Users whose password is being checked on this node (at most one check each).
    pub(crate) checking: Mutex<HashSet<String>>,
    pub(crate) dummy_hash: String,
    /// The pool's time (tests pass time in instead of sleeping).
    clock: Arc<Clock>,
    /// Held by one catalog reload at a time (see [`Pool::reload_catalog`]).
    reloading: tokio::sync::Mutex<()>,
    /// What `DescribeUserPool` reads of the config, and the pool's siblings in this process.
    pub(crate) about: About,
    /// Relying parties of the pool's external identity providers.
    pub(crate) federation: Federation,
    /// Ended sign-in sessions, for load balancers in this process (and, on PostgreSQL, others).
    pub(crate) session_ends: Arc<Feed>,
    /// Back-channel logout tokens on their way to clients.
    pub(crate) backchannel: backchannel::Sender,
}

/// A pool id derived from the pool name when the config gives none (stable across restarts).
pub fn derived_pool_id(region: &str, name: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let d = digest(&SHA256, name.as_bytes());
    let suffix: String = d.as_ref()[..9]
        .iter()
        .map(|b| ALPHABET[*b as usize % 62] as char)
        .collect();
    format!("{region}_{suffix}")
}

/// The settings of a pool's config that only its description reads, and the directory of its
/// siblings.
#[derive(Default)]
pub struct About {
    /// `custom:` attributes with their types, in config order.
    pub(crate) custom_attributes: Vec<CustomAttribute>,
    /// The sender address when email goes through the pool's own SMTP relay.
    pub(crate) email_from: Option<String>,
    /// The pools of this process (set once at start; none for a pool used alone).
    pub(crate) directory: OnceLock<Arc<Directory>>,
}

impl About {
    /// What `cfg` says that the description needs.
    pub fn of(cfg: &UserPool) -> About {
        About {
            custom_attributes: cfg.custom_attributes.clone(),
            email_from: cfg.messages.smtp.as_ref().map(|s| s.from.clone()),
            directory: OnceLock::new(),
        }
    }
}

/// The pools of one process, registered as they start (held weakly: a pool lives as long as its
/// server). Which of them a caller may see is `directory`'s business.
#[derive(Default)]
pub struct Directory {
    pools: RwLock<Vec<Weak<Pool>>>,
}

impl Directory {
    /// An empty directory to register a process's pools in.
    pub fn new() -> Arc<Directory> {
        Arc::new(Directory::default())
    }

    /// Adds `pool` and tells it where its siblings are (a pool joins one directory, once).
    pub fn register(self: &Arc<Self>, pool: &Arc<Pool>) {
        if pool.about.directory.set(self.clone()).is_err() {
            return;
        }
        self.pools
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(Arc::downgrade(pool));
    }

    /// The registered pools still served.
    pub(crate) fn live(&self) -> Vec<Arc<Pool>> {
        self.pools
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    }
}

/// Writes the config's resource servers and clients to the store (idempotently): a client keeps
/// its creation date and the secrets added through the API; a generated secret is made once.
async fn seed_clients(
    cfg: &UserPool,
    store: &dyn Store,
    id: &str,
    now: i64,
) -> Result<(), OpenError> {
    let err = |source| OpenError::Store {
        pool: cfg.name.clone(),
        source,
    };
    for rs in &cfg.resource_servers {
        catalog::put_resource_server(store, id, rs, Put::Upsert)
            .await
            .map_err(err)?;
    }
    for c in &cfg.clients {
        let existing = store
            .object(id, catalog::CLIENT, &c.client_id)
            .await
            .map_err(err)?
            .and_then(|b| serde_json::from_str::<StoredClient>(&b).ok());
        let secrets = match (&c.client_secret, c.generate_secret, &existing) {
            (Some(s), _, _) => vec![ClientSecret {
                id: "config".into(),
                value: s.clone(),
                created_at: now,
            }],
            // Secrets added through the API (rotation) survive a restart.
            (None, true, Some(e)) if !e.secrets.is_empty() => e.secrets.clone(),
            (None, true, _) => {
                let fresh = random_token(38).map_err(|source| OpenError::Randomness {
                    what: "system random failed",
                    source,
                })?;
                vec![ClientSecret {
                    id: "generated".into(),
                    value: store
                        .client_secret_or_insert(id, &c.client_id, fresh)
                        .await
                        .map_err(err)?,
                    created_at: now,
                }]
            }
            (None, false, _) => Vec::new(),
        };
        let stored = StoredClient {
            client: c.clone(),
            secrets,
            created_at: existing.as_ref().map_or(now, |e| e.created_at),
            updated_at: now,
        };
        catalog::put_client(store, id, &stored, Put::Upsert)
            .await
            .map_err(err)?;
    }
    Ok(())
}

/// Where the pool's codes go: its SMTP relay, or the outbox file (`state_dir/outbox/<pool>.jsonl`
/// unless the config names one).
fn message_sender(
    cfg: &UserPool,
    state_dir: &std::path::Path,
) -> Result<messages::Sender, OpenError> {
    Ok(match &cfg.messages.smtp {
        Some(smtp) => {
            let password = portcullis_core::secret::literal_or_env(
                smtp.password.as_deref(),
                smtp.password_env.as_deref(),
                "messages.smtp.password_env",
            )?;
            messages::Sender::Smtp(Arc::new(messages::SmtpRelay::new(smtp.clone(), password)))
        }
        None => messages::Sender::Outbox(messages::Outbox::new(
            cfg.messages
                .outbox
                .clone()
                .unwrap_or_else(|| state_dir.join("outbox").join(format!("{}.jsonl", cfg.name))),
        )),
    })
}

/// The hash unknown users are checked against. Made through the workers, so that its memory is
/// theirs (and released with theirs). Of a random secret: it is also the password hash of
/// federated users, which nothing may match.
async fn dummy_hash(hasher: &Hasher) -> Result<String, OpenError> {
    let secret = random_token(32).map_err(|source| OpenError::Randomness {
        what: "no randomness for the dummy hash",
        source,
    })?;
    hasher.hash(&secret).await.map_err(OpenError::Hashing)
}

impl Pool {
    /// Opens a pool from config: its clients and resource servers are written to the store and
    /// its keys created once, idempotently (seed users: [`Pool::seed_users`]).
    pub async fn open(
        cfg: &UserPool,
        region: &str,
        store: Arc<dyn Store>,
        access_keys: HashMap<String, String>,
        state_dir: &std::path::Path,
    ) -> Result<Pool, OpenError> {
        let metrics = Arc::new(IdpMetrics::new());
        Pool::open_with(cfg, region, store, access_keys, state_dir, metrics).await
    }

    /// As [`Pool::open`], counting into the process's shared `metrics`.
    pub async fn open_with(
        cfg: &UserPool,
        region: &str,
        store: Arc<dyn Store>,
        access_keys: HashMap<String, String>,
        state_dir: &std::path::Path,
        metrics: Arc<IdpMetrics>,
    ) -> Result<Pool, OpenError> {
        let id = cfg
            .id
            .clone()
            .unwrap_or_else(|| derived_pool_id(region, &cfg.name));
        let base_url = cfg.domain.base_url.trim_end_matches('/').to_string();
        let err = |source| OpenError::Store {
            pool: cfg.name.clone(),
            source,
        };
        let clock = Arc::new(Clock::default());
        seed_clients(cfg, store.as_ref(), &id, clock.now()).await?;
        federation::seed_providers(cfg, store.as_ref(), &id, clock.now()).await?;
        let loaded = Catalog::load(store.as_ref(), &id).await.map_err(err)?;
        let sender = message_sender(cfg, state_dir)?;
        let keys = PoolKeys::load_or_generate(store.as_ref(), &id, clock.clone())
            .await
            .map_err(err)?;
        let hasher = Hasher::new(
            cfg.rate_limits.hash_workers,
            cfg.rate_limits.hash_queue,
            metrics.shed(&cfg.name),
            metrics.verifications(&cfg.name),
            clock.clone(),
        );
        let dummy_hash = dummy_hash(&hasher).await?;
        let session_ends = Arc::new(Feed::default());
        // Sessions other nodes end reach this process's feed through the store.
        store.watch_session_ends(
            &id,
            &format!("{base_url}/{id}"),
            Arc::downgrade(&session_ends),
        );
        let backchannel = backchannel::Sender::start(&cfg.name, metrics.backchannel(&cfg.name));
        let pool = Pool {
            name: cfg.name.clone(),
            issuer: format!("{base_url}/{id}"),
            id,
            base_url,
            catalog: ArcSwap::from_pointee(loaded),
            token_validity: cfg.token_validity_seconds,
            store,
            access_keys,
            region: region.to_string(),
            policy: cfg.password_policy.clone(),
            allow_self_sign_up: cfg.allow_self_sign_up,
            custom_attributes: cfg
                .custom_attributes
                .iter()
                .map(|a| (format!("custom:{}", a.name), a.mutable))
                .collect(),
            sender,
            mfa: MfaMode::parse(&cfg.mfa_configuration),
            keys: ArcSwap::from_pointee(keys),
            hasher,
            limits: Limiter::new(cfg.rate_limits.clone(), clock.clone()),
            metrics,
            checking: Mutex::new(HashSet::new()),
            dummy_hash,
            clock,
            reloading: tokio::sync::Mutex::new(()),
            about: About::of(cfg),
            federation: Federation::default(),
            session_ends,
            backchannel,
        };
        pool.record_description().await.map_err(err)?;
        Ok(pool)
    }

    /// Creates the config's groups and seed users once (idempotent); `password_of` resolves a seed
    /// user's password (config value or environment variable), with any error type.
    pub async fn seed_users<E>(
        &self,
        cfg: &UserPool,
        password_of: impl Fn(&SeedUser) -> Result<String, E>,
    ) -> Result<(), SeedError>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let err = |source| SeedError::Store {
            pool: cfg.name.clone(),
            source,
        };
        for g in &cfg.groups {
            self.store
                .upsert_group(
                    &self.id,
                    &g.name,
                    g.precedence.map(i64::from),
                    g.description.as_deref(),
                )
                .await
                .map_err(err)?;
        }
        for (index, u) in cfg.users.iter().enumerate() {
            let pw = password_of(u).map_err(|e| SeedError::Password {
                pool: self.name.clone(),
                index,
                source: e.into(),
            })?;
            self.create_user(&u.username, &pw, &u.attributes)
                .await
                .map_err(err)?;
            if !u.groups.is_empty() {
                let sub = self
                    .store
                    .user_by_username(&self.id, &u.username)
                    .await
                    .map_err(err)?
                    .map(|u| u.sub);
                for g in &u.groups {
                    if let Some(sub) = &sub {
                        self.store
                            .add_to_group(&self.id, g, sub)
                            .await
                            .map_err(err)?;
                    }
                }
            }
        }
        Ok(())
    }

    pub async fn rotate_keys(&self, activate_in: i64) -> Result<Vec<String>, StoreError> {
        let kids = PoolKeys::rotate(self.store.as_ref(), &self.id, activate_in, self.now()).await?;
        self.reload_catalog().await?;
        Ok(kids)
    }

    /// Every signing key: `{kid, use, activates_at, state}` with state `signing`, `pending`,
    /// `published` (verifying tokens it signed) or `retired`.
    pub async fn key_report(&self) -> Result<Value, StoreError> {
        let keys = self.keys.load();
        let now = self.now();
        let published: BTreeSet<String> = keys.jwks()["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k["kid"].as_str().map(str::to_string))
            .collect();
        let mut out = Vec::new();
        for purpose in ["id", "access"] {
            let rows = self.store.signing_keys(&self.id, purpose).await?;
            let signer = rows
                .iter()
                .rposition(|r| r.activates_at <= now)
                .unwrap_or(0);
            for (i, r) in rows.iter().enumerate() {
                let state = if i == signer {
                    "signing"
                } else if r.activates_at > now {
                    "pending"
                } else if published.contains(&r.kid) {
                    "published"
                } else {
                    "retired"
                };
                out.push(
                    json!({"kid": r.kid, "use": purpose, "generation": r.generation,
                    "activates_at": r.activates_at, "state": state}),
                );
            }
        }
        Ok(json!({"Keys": out}))
    }

    /// The pool's time, in seconds since the epoch: what lockouts, TOTP steps, attempt windows,
    /// rate limits and refresh-token grace periods are measured with.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The pool's clock, which tests stop and move instead of sleeping.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Moves the pool's clock forward, so tests can end a lockout without sleeping.
    pub fn advance_clock(&self, seconds: i64) {
        self.clock.advance_ms(seconds * 1000);
    }

    /// Where this pool's codes are written.
    pub fn outbox_path(&self) -> Option<&std::path::Path> {
        self.sender.outbox_path()
    }

    /// The client's first secret, for an `authenticate-cognito` action of this process.
    pub fn client_secret(&self, client_id: &str) -> Option<String> {
        self.client(client_id)?
            .secrets
            .first()
            .map(|s| s.value.clone())
    }

    /// The client's display name.
    pub fn client_name(&self, client_id: &str) -> String {
        self.client(client_id)
            .and_then(|c| c.client.client_name.clone())
            .unwrap_or_else(|| client_id.to_string())
    }

    /// A client of the current catalog snapshot.
    pub fn client(&self, client_id: &str) -> Option<Arc<StoredClient>> {
        self.catalog.load().clients.get(client_id).cloned()
    }

    /// The current catalog snapshot.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.load_full()
    }

    /// Reads clients and resource servers again (after a write, and periodically for writes made
    /// by other nodes).
    pub async fn reload_catalog(&self) -> Result<(), StoreError> {
        // One at a time: a periodic reload that read the store before a local write must not
        // store its older catalog after the write's own reload stored the new one.
        let _one = self.reloading.lock().await;
        let c = Catalog::load(self.store.as_ref(), &self.id).await?;
        self.catalog.store(Arc::new(c));
        // Keys rotated elsewhere (another node, `portcullis keys rotate`) are picked up too.
        let stored = crate::domain::tokens::key_fingerprint(self.store.as_ref(), &self.id).await?;
        if stored != self.keys.load().fingerprint() {
            let k = PoolKeys::load(self.store.as_ref(), &self.id, self.clock.clone()).await?;
            self.keys.store(Arc::new(k));
        }
        Ok(())
    }

    /// The pool's JWKS.
    pub fn jwks(&self) -> Value {
        self.keys.load().jwks()
    }

    /// The discovery document.
    pub fn discovery(&self) -> Value {
        let b = &self.base_url;
        let mut scopes: BTreeSet<&str> = ["openid", "email", "phone", "profile"].into();
        let catalog = self.catalog.load();
        for c in catalog.clients.values() {
            scopes.extend(c.client.allowed_oauth_scopes.iter().map(String::as_str));
        }
        json!({
            "authorization_endpoint": format!("{b}/oauth2/authorize"),
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "issuer": self.issuer,
            "jwks_uri": format!("{}/.well-known/jwks.json", self.issuer),
            "response_types_supported": ["code"],
            "scopes_supported": scopes,
            "subject_types_supported": ["public"],
            "token_endpoint": format!("{b}/oauth2/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "userinfo_endpoint": format!("{b}/oauth2/userInfo"),
            "end_session_endpoint": format!("{b}/logout"),
            "revocation_endpoint": format!("{b}/oauth2/revoke"),
            "backchannel_logout_supported": true,
            "backchannel_logout_session_supported": true,
        })
    }

    /// Hashes a new password on the pool's workers (`Busy` when the queue is full).
    pub(crate) async fn hash(&self, password: &str) -> Result<String, HashError> {
        self.hasher.hash(password).await
    }
}
