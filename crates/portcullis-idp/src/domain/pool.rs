//! One running user pool: its clients, scopes, keys and store, and the OAuth operations on them.
//! The HTTP layer (`web`) only parses and renders; every decision is made here.

use crate::domain::catalog::{self, Catalog, ClientSecret, StoredClient};
use crate::domain::hashing::{HashError, Hasher};
use crate::domain::rate_limit::Limiter;
use crate::domain::tokens::PoolKeys;
use crate::error::IdpError;
use crate::metrics::IdpMetrics;
use crate::store::{
    CodeRecord, Put, RefreshRecord, RefreshUse, Reservation, Store, StoreError, UserRecord,
};
use arc_swap::ArcSwap;
use argon2::Argon2;
use argon2::password_hash::PasswordHasher;
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_config::{PasswordPolicy, RESERVED_SCOPES, UserPool};
use portcullis_core::Clock;
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Failures older than this are forgotten (Cognito: 15 minutes without attempts).
pub const LOCKOUT_RESET: i64 = 15 * 60;
/// The longest lockout (Cognito: about 15 minutes).
pub const LOCKOUT_MAX: i64 = 15 * 60;
/// The ticket purpose that keeps an authorization code's sign-in session.
const CODE_SESSION: &str = "code_sid";
/// Codes live 5 minutes, as Cognito's.
pub const CODE_LIFETIME: i64 = 300;
/// Refresh tokens live 30 days unless the client says otherwise (Cognito's default).
pub const REFRESH_LIFETIME: i64 = 30 * 86400;
/// Longest accepted parameter value.
pub const MAX_PARAM_LEN: usize = 2048;
/// Longest accepted password (Cognito: 256).
pub const MAX_PASSWORD_LEN: usize = 256;
/// How long a password check holds its user's in-flight mark in the store (seconds): it is
/// released when the check ends, so this only matters when a node dies mid-check.
pub const CHECK_LEASE: i64 = 60;

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
    fn no_randomness(_: IdpError) -> Self {
        tracing::error!("the system random source failed");
        OAuthError {
            error: "server_error",
            description: "internal error".into(),
            status: 500,
        }
    }
    fn server(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        OAuthError {
            error: "server_error",
            description: "internal error".into(),
            status: 500,
        }
    }
}

/// Why `/oauth2/authorize` or `/login` cannot continue.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthorizeProblem {
    /// Client or redirect URI is not trustworthy: show an error page, never redirect.
    Page(&'static str, String),
    /// Tell the client through its redirect URI.
    Redirect {
        /// Where to send the error.
        redirect_uri: String,
        /// `error` parameter.
        error: &'static str,
        /// Echoed `state`.
        state: Option<String>,
    },
}

/// A validated authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// The client.
    pub client_id: String,
    /// Registered redirect URI.
    pub redirect_uri: String,
    /// Echoed back.
    pub state: Option<String>,
    /// Granted scopes (requested ∩ allowed; all allowed when none requested).
    pub scopes: Vec<String>,
    /// Copied into the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// `response_type=token`: tokens in the fragment instead of a code.
    pub implicit: bool,
    /// The external provider `identity_provider=` or `idp_identifier=` chose (federation).
    pub federate: Option<String>,
}

/// Why a sign-in failed (the page shows one generic message for all of them).
#[derive(Debug, PartialEq, Eq)]
pub enum SignInError {
    /// Wrong password (or, with existence errors prevented, an unknown user).
    NotAuthorized,
    /// No such user (shown only to clients with `prevent_user_existence_errors = LEGACY`).
    UnknownUser,
    /// Locked after repeated failures ("Password attempts exceeded"); the password was not checked.
    Locked,
    /// Right password, but the user is disabled.
    Disabled,
    /// Right password, sign-up not confirmed.
    NotConfirmed,
    /// Right password, but an admin required a reset.
    ResetRequired,
    /// Right temporary password: a new one must be chosen (`NEW_PASSWORD_REQUIRED`).
    NewPasswordRequired(Box<UserRecord>),
    /// The temporary password is older than the policy allows.
    TemporaryPasswordExpired,
    /// Refused without checking: the hashing queue is full, or another check of this user is in
    /// flight (503 / `TooManyRequestsException`).
    Busy,
    /// Storage failed.
    Internal,
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
    pub(crate) sender: crate::domain::messages::Sender,
    /// Whether a second factor is asked.
    pub mfa: crate::domain::mfa::MfaMode,
    pub(crate) keys: ArcSwap<PoolKeys>,
    /// argon2id workers, their memory and their bounded queue.
    pub hasher: Hasher,
    /// Rate limits and the clock lockouts read.
    pub(crate) limits: Limiter,
    /// Counters served at `<admin>/metrics`.
    pub(crate) metrics: Arc<IdpMetrics>,
    /// Users whose password is being checked on this node (at most one check each).
    checking: Mutex<HashSet<String>>,
    pub(crate) dummy_hash: String,
    /// The pool's time (tests pass time in instead of sleeping).
    clock: Arc<Clock>,
    /// Held by one catalog reload at a time (see [`Pool::reload_catalog`]).
    reloading: tokio::sync::Mutex<()>,
    /// What `DescribeUserPool` reads of the config, and the pool's siblings in this process.
    pub(crate) about: crate::domain::pool_description::About,
    /// Relying parties of the pool's external identity providers.
    pub(crate) federation: crate::domain::federation::Federation,
    /// Ended sign-in sessions, for load balancers in this process (and, on PostgreSQL, others).
    pub(crate) session_ends: Arc<crate::domain::revocation::Feed>,
    /// Back-channel logout tokens on their way to clients.
    pub(crate) backchannel: crate::domain::backchannel::Sender,
}

/// A user's mark in [`Pool::checking`], removed when the check ends.
struct Checking<'a> {
    set: &'a Mutex<HashSet<String>>,
    username: String,
}

impl<'a> Checking<'a> {
    /// Marks `username`, unless a check of theirs is in flight already.
    fn enter(set: &'a Mutex<HashSet<String>>, username: &str) -> Option<Checking<'a>> {
        let fresh = set
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(username.to_string());
        fresh.then(|| Checking {
            set,
            username: username.to_string(),
        })
    }
}

impl Drop for Checking<'_> {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.username);
    }
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

/// Random bytes, base64url; fails (`Internal`) only if the system random source does.
pub fn random_token(bytes: usize) -> Result<String, IdpError> {
    let mut b = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| IdpError::Internal)?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

/// SHA-256 in hex: how codes, tokens and sessions are stored.
pub(crate) fn sha256_hex(s: &str) -> String {
    hex::encode(digest(&SHA256, s.as_bytes()).as_ref())
}

/// Hashes a password with argon2id at the OWASP defaults (m=19456 KiB, t=2, p=1).
pub fn hash_password(password: &str) -> Option<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .ok()
        .map(|h| h.to_string())
}

/// Whether tokens for these (space-separated) scopes include an ID token: `openid`, or the API's
/// `aws.cognito.signin.user.admin`.
fn gives_id_token(scope: &str) -> bool {
    scope
        .split(' ')
        .any(|s| s == "openid" || s == crate::domain::accounts::ADMIN_SCOPE)
}

/// Whether `v` is a PKCE verifier as RFC 7636 §4.1 defines it: 43 to 128 unreserved characters.
fn is_pkce_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Compares secrets without leaking where they differ.
pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
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
    ) -> Result<Pool, String> {
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
    ) -> Result<Pool, String> {
        let id = cfg
            .id
            .clone()
            .unwrap_or_else(|| derived_pool_id(region, &cfg.name));
        let base_url = cfg.domain.base_url.trim_end_matches('/').to_string();
        let err = |e: StoreError| format!("user pool `{}`: {e}", cfg.name);
        for rs in &cfg.resource_servers {
            catalog::put_resource_server(store.as_ref(), &id, rs, Put::Upsert)
                .await
                .map_err(err)?;
        }
        for c in &cfg.clients {
            let existing = store
                .object(&id, catalog::CLIENT, &c.client_id)
                .await
                .map_err(err)?
                .and_then(|b| serde_json::from_str::<StoredClient>(&b).ok());
            let now = crate::now() as i64;
            let secrets = match (&c.client_secret, c.generate_secret, &existing) {
                (Some(s), _, _) => vec![ClientSecret {
                    id: "config".into(),
                    value: s.clone(),
                    created_at: now,
                }],
                // Secrets added through the API (rotation) survive a restart.
                (None, true, Some(e)) if !e.secrets.is_empty() => e.secrets.clone(),
                (None, true, _) => vec![ClientSecret {
                    id: "generated".into(),
                    value: store
                        .client_secret_or_insert(
                            &id,
                            &c.client_id,
                            random_token(38).map_err(|_| "system random failed")?,
                        )
                        .await
                        .map_err(err)?,
                    created_at: now,
                }],
                (None, false, _) => Vec::new(),
            };
            let stored = StoredClient {
                client: c.clone(),
                secrets,
                created_at: existing.as_ref().map_or(now, |e| e.created_at),
                updated_at: now,
            };
            catalog::put_client(store.as_ref(), &id, &stored, Put::Upsert)
                .await
                .map_err(err)?;
        }
        crate::domain::federation::seed_providers(cfg, store.as_ref(), &id).await?;
        let loaded = Catalog::load(store.as_ref(), &id).await.map_err(err)?;
        let sender = match &cfg.messages.smtp {
            Some(smtp) => {
                let password = match (&smtp.password_env, &smtp.password) {
                    (Some(var), _) => Some(std::env::var(var).map_err(|_| {
                        format!("messages.smtp.password_env: environment variable {var} is not set")
                    })?),
                    (None, p) => p.clone(),
                };
                crate::domain::messages::Sender::Smtp(Arc::new(
                    crate::domain::messages::SmtpRelay::new(smtp.clone(), password),
                ))
            }
            None => crate::domain::messages::Sender::Outbox(crate::domain::messages::Outbox::new(
                cfg.messages.outbox.clone().unwrap_or_else(|| {
                    state_dir.join("outbox").join(format!("{}.jsonl", cfg.name))
                }),
            )),
        };
        let keys = PoolKeys::load_or_generate(store.as_ref(), &id)
            .await
            .map_err(err)?;
        let clock = Arc::new(Clock::default());
        let hasher = Hasher::new(
            cfg.rate_limits.hash_workers,
            cfg.rate_limits.hash_queue,
            metrics.shed(&cfg.name),
            metrics.verifications(&cfg.name),
            clock.clone(),
        );
        // Through the workers, so that its memory is theirs (and released with theirs). Of a
        // random secret: it is also the password hash of federated users, which nothing may match.
        let secret = random_token(32).map_err(|_| "no randomness for the dummy hash")?;
        let dummy_hash = hasher.hash(&secret).await.map_err(|_| "argon2 failed")?;
        let session_ends = Arc::new(crate::domain::revocation::Feed::default());
        // Sessions other nodes end reach this process's feed through the store.
        store.watch_session_ends(
            &id,
            &format!("{base_url}/{id}"),
            Arc::downgrade(&session_ends),
        );
        let backchannel =
            crate::domain::backchannel::Sender::start(&cfg.name, metrics.backchannel(&cfg.name));
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
            mfa: crate::domain::mfa::MfaMode::parse(&cfg.mfa_configuration),
            keys: ArcSwap::from_pointee(keys),
            hasher,
            limits: Limiter::new(cfg.rate_limits.clone(), clock.clone()),
            metrics,
            checking: Mutex::new(HashSet::new()),
            dummy_hash,
            clock,
            reloading: tokio::sync::Mutex::new(()),
            about: crate::domain::pool_description::About::of(cfg),
            federation: crate::domain::federation::Federation::default(),
            session_ends,
            backchannel,
        };
        crate::domain::pool_description::record(&pool)
            .await
            .map_err(err)?;
        Ok(pool)
    }

    /// Creates the config's groups and seed users once (idempotent); `password_of` resolves a seed
    /// user's password (config value or environment variable).
    pub async fn seed_users(
        &self,
        cfg: &UserPool,
        password_of: impl Fn(&portcullis_config::SeedUser) -> Result<String, String>,
    ) -> Result<(), String> {
        let err = |e: StoreError| format!("user pool `{}`: {e}", cfg.name);
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
        for (i, u) in cfg.users.iter().enumerate() {
            let pw =
                password_of(u).map_err(|e| format!("user_pools[{}].users[{i}]: {e}", self.name))?;
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

    /// Adds new ID and access signing keys that start signing in `activate_in` seconds; older keys
    /// stay published until every token they signed has expired. Returns the new kids.
    pub async fn rotate_keys(&self, activate_in: i64) -> Result<Vec<String>, StoreError> {
        let kids = PoolKeys::rotate(self.store.as_ref(), &self.id, activate_in).await?;
        self.reload_catalog().await?;
        Ok(kids)
    }

    /// Every signing key: `{kid, use, activates_at, state}` with state `signing`, `pending`,
    /// `published` (verifying tokens it signed) or `retired`.
    pub async fn key_report(&self) -> Result<Value, StoreError> {
        let keys = self.keys.load();
        let now = crate::now() as i64;
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
            let k = PoolKeys::load(self.store.as_ref(), &self.id).await?;
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

    /// Creates a user in `CONFIRMED` state unless the name exists; returns whether it was created.
    pub async fn create_user(
        &self,
        username: &str,
        password: &str,
        attributes: &std::collections::BTreeMap<String, String>,
    ) -> Result<bool, StoreError> {
        if self
            .store
            .user_by_username(&self.id, username)
            .await?
            .is_some()
        {
            return Ok(false);
        }
        let hash = self.hash(password).await.map_err(|_| StoreError::Join)?;
        let mut attrs: Map<String, Value> = attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into()))
            .collect();
        if attrs.contains_key("email") && !attrs.contains_key("email_verified") {
            attrs.insert("email_verified".into(), "true".into());
        }
        let rec = UserRecord {
            sub: uuid::Uuid::new_v4().to_string(),
            username: username.to_string(),
            password_hash: hash,
            status: "CONFIRMED".into(),
            enabled: true,
            attributes: attrs,
            created_at: 0,
            updated_at: 0,
        };
        self.store.insert_user(&self.id, rec).await
    }

    /// Sets a permanent password (`CONFIRMED`).
    pub async fn set_password(&self, username: &str, password: &str) -> Result<bool, StoreError> {
        let hash = self.hash(password).await.map_err(|_| StoreError::Join)?;
        self.store
            .set_password(&self.id, username, hash, "CONFIRMED")
            .await
    }

    /// Hashes a new password on the pool's workers (`Busy` when the queue is full).
    pub(crate) async fn hash(&self, password: &str) -> Result<String, HashError> {
        self.hasher.hash(password).await
    }

    /// Checks an authorization request (`/oauth2/authorize` and `/login` share it).
    pub fn check_authorize(
        &self,
        q: &[(String, String)],
    ) -> Result<AuthorizeRequest, AuthorizeProblem> {
        let mut seen = BTreeSet::new();
        for (k, v) in q {
            if !seen.insert(k.as_str()) {
                return Err(AuthorizeProblem::Page(
                    "invalid_request",
                    format!("parameter `{k}` is repeated"),
                ));
            }
            if v.len() > MAX_PARAM_LEN {
                return Err(AuthorizeProblem::Page(
                    "invalid_request",
                    format!("parameter `{k}` is too long"),
                ));
            }
        }
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let Some(client_id) = get("client_id") else {
            return Err(AuthorizeProblem::Page(
                "invalid_request",
                "client_id is missing".into(),
            ));
        };
        let Some(client) = self.client(&client_id) else {
            return Err(AuthorizeProblem::Page(
                "invalid_client",
                "this app is not registered with the user pool".into(),
            ));
        };
        if !client.client.oauth_enabled() {
            return Err(AuthorizeProblem::Page(
                "unauthorized_client",
                "this app is not enabled for the hosted UI and OAuth flows".into(),
            ));
        }
        let Some(redirect_uri) = get("redirect_uri") else {
            return Err(AuthorizeProblem::Page(
                "invalid_request",
                "redirect_uri is missing".into(),
            ));
        };
        if !client
            .client
            .callback_urls
            .iter()
            .any(|u| u == &redirect_uri)
        {
            return Err(AuthorizeProblem::Page(
                "redirect_mismatch",
                "redirect_uri is not one of the app's callback URLs".into(),
            ));
        }
        let state = get("state");
        let redirect = |error| AuthorizeProblem::Redirect {
            redirect_uri: redirect_uri.clone(),
            error,
            state: state.clone(),
        };
        match get("response_type").as_deref() {
            None => return Err(redirect("invalid_request")),
            Some("code")
                if client
                    .client
                    .allowed_oauth_flows
                    .iter()
                    .any(|f| f == "code") => {}
            Some("token")
                if client
                    .client
                    .allowed_oauth_flows
                    .iter()
                    .any(|f| f == "implicit") => {}
            Some("code") | Some("token") => return Err(redirect("unauthorized_client")),
            Some(_) => return Err(redirect("unsupported_response_type")),
        }
        // `identity_provider=` / `idp_identifier=`: only a provider the client supports.
        let Ok(federate) = self.federated_provider(
            &client.client,
            get("identity_provider").as_deref(),
            get("idp_identifier").as_deref(),
        ) else {
            return Err(redirect("invalid_request"));
        };
        let code_challenge = match (
            get("code_challenge_method").as_deref(),
            get("code_challenge"),
        ) {
            (None, None) => None,
            (Some("S256"), Some(c)) if (43..=128).contains(&c.len()) => Some(c),
            _ => return Err(redirect("invalid_request")),
        };
        let allowed = &client.client.allowed_oauth_scopes;
        let scopes: Vec<String> = match get("scope") {
            Some(s) => {
                let mut v: Vec<String> = Vec::new();
                for sc in s.split(' ').filter(|x| !x.is_empty()) {
                    if allowed.iter().any(|a| a == sc) && !v.iter().any(|x| x == sc) {
                        v.push(sc.to_string());
                    }
                }
                v
            }
            None => allowed.clone(),
        };
        if scopes.is_empty() {
            return Err(redirect("invalid_scope"));
        }
        let implicit = get("response_type").as_deref() == Some("token");
        let nonce = get("nonce").filter(|n| !n.is_empty());
        // An ID token handed over in the fragment is only bound to the client's login by its
        // nonce; without one, an ID token from another response can be injected (OIDC Core
        // §3.2.2.1: nonce is required in the implicit flow).
        if implicit && nonce.is_none() && gives_id_token(&scopes.join(" ")) {
            return Err(redirect("invalid_request"));
        }
        Ok(AuthorizeRequest {
            client_id,
            redirect_uri,
            state,
            scopes,
            nonce,
            code_challenge,
            implicit,
            federate,
        })
    }

    /// Ends a successful authorization outside a browser session: a sign-in session of its own,
    /// then as [`Pool::complete_authorization_in`].
    pub async fn complete_authorization(
        &self,
        req: &AuthorizeRequest,
        user: &UserRecord,
        auth_time: i64,
    ) -> Result<String, OAuthError> {
        let sid = self
            .begin_sign_in(&user.sub, auth_time, None)
            .await
            .map_err(OAuthError::server)?;
        self.complete_authorization_in(req, user, auth_time, &sid)
            .await
    }

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
            return self.issue_code(req, user, auth_time, sid).await;
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
        let t = self.mint(
            user,
            &groups,
            &req.client_id,
            &scope,
            auth_time,
            req.nonce.as_deref(),
            &origin_jti,
            Some(sid),
        )?;
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

    /// The client's display name.
    pub fn client_name(&self, client_id: &str) -> String {
        self.client(client_id)
            .and_then(|c| c.client.client_name.clone())
            .unwrap_or_else(|| client_id.to_string())
    }

    /// Checks a user name and password; the same work is done for unknown users. The attempt is
    /// reserved before the password is hashed: one check per user at a time (on this node and,
    /// through the store, on every node), counted before it runs, and none while the user is
    /// locked, whatever the concurrency. A full hashing queue refuses at once (`Busy`).
    pub async fn sign_in(&self, username: &str, password: &str) -> Result<UserRecord, SignInError> {
        // One span per sign-in, so its log lines belong together; none unless a subscriber wants it.
        let span = if tracing::enabled!(tracing::Level::INFO) {
            // The name is the client's input: bounded, and written escaped (`?`).
            let user = if username.len() <= 128 {
                username
            } else {
                "(too long)"
            };
            tracing::info_span!("sign_in", pool = %self.id, username = ?user)
        } else {
            tracing::Span::none()
        };
        tracing::Instrument::instrument(self.sign_in_unspanned(username, password), span).await
    }

    /// [`Pool::sign_in`] without its span.
    async fn sign_in_unspanned(
        &self,
        username: &str,
        password: &str,
    ) -> Result<UserRecord, SignInError> {
        if username.is_empty() || username.len() > 128 || password.len() > MAX_PASSWORD_LEN {
            return Err(SignInError::NotAuthorized);
        }
        // A shed request touches nothing else (no reservation, no failure counted).
        let admission = self.hasher.admit().map_err(|_| SignInError::Busy)?;
        let Some(_checking) = Checking::enter(&self.checking, username) else {
            return Err(SignInError::Busy);
        };
        let now = self.clock().now();
        // Known and unknown user names alike, so the answers reveal nobody.
        match self
            .store
            .reserve_sign_in(
                &self.id,
                username,
                now,
                LOCKOUT_RESET,
                LOCKOUT_MAX,
                CHECK_LEASE,
            )
            .await
            .map_err(|_| SignInError::Internal)?
        {
            Reservation::Granted => {}
            Reservation::Locked => return Err(SignInError::Locked),
            Reservation::Busy => return Err(SignInError::Busy),
        }
        let checked = self.check_reserved(admission, username, password).await;
        let release = match &checked {
            Ok((Some(_), true)) => self.store.clear_failures(&self.id, username).await,
            _ => self.store.release_sign_in(&self.id, username).await,
        };
        release.map_err(|_| SignInError::Internal)?;
        let (user, ok) = checked?;
        match user {
            Some(u) if ok => {
                if !u.enabled {
                    return Err(SignInError::Disabled);
                }
                match u.status.as_str() {
                    "CONFIRMED" => Ok(u),
                    "UNCONFIRMED" => Err(SignInError::NotConfirmed),
                    "RESET_REQUIRED" => Err(SignInError::ResetRequired),
                    "FORCE_CHANGE_PASSWORD" => {
                        if self.temporary_password_expired(&u).await {
                            Err(SignInError::TemporaryPasswordExpired)
                        } else {
                            Err(SignInError::NewPasswordRequired(Box::new(u)))
                        }
                    }
                    _ => Err(SignInError::NotAuthorized),
                }
            }
            Some(_) => Err(SignInError::NotAuthorized),
            None => Err(SignInError::UnknownUser),
        }
    }

    /// The reserved check itself: the user (if any) and whether the password matched (unknown
    /// users are checked against a dummy hash of the same cost).
    async fn check_reserved(
        &self,
        admission: crate::domain::hashing::Admission<'_>,
        username: &str,
        password: &str,
    ) -> Result<(Option<UserRecord>, bool), SignInError> {
        let user = self
            .store
            .user_by_username(&self.id, username)
            .await
            .map_err(|_| SignInError::Internal)?;
        let hash = user
            .as_ref()
            .map_or(self.dummy_hash.as_str(), |u| u.password_hash.as_str());
        let ok = admission
            .verify(password, hash)
            .await
            .map_err(|e| match e {
                HashError::Busy => SignInError::Busy,
                HashError::Failed => SignInError::Internal,
            })?;
        let known = user.is_some();
        Ok((user, ok && known))
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

    /// Issues a single-use code in sign-in session `sid` and returns the URL to send the browser
    /// to.
    pub async fn issue_code(
        &self,
        req: &AuthorizeRequest,
        user: &UserRecord,
        auth_time: i64,
        sid: &str,
    ) -> Result<String, OAuthError> {
        let code = random_token(32).map_err(OAuthError::no_randomness)?;
        let expires_at = crate::now() as i64 + CODE_LIFETIME;
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
            sub: user.sub.clone(),
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
        let mut tokens = self.mint(
            &user,
            &groups,
            client_id,
            &rec.scope,
            rec.auth_time,
            rec.nonce.as_deref(),
            &origin_jti,
            sid.as_deref(),
        )?;
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
                crate::now() as i64
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
        let now = crate::now();
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
        let mut tokens = self.mint(
            &user,
            &groups,
            client_id,
            &rec.scope,
            rec.auth_time,
            None,
            &rec.origin_jti,
            sid.as_deref(),
        )?;
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

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn mint(
        &self,
        user: &UserRecord,
        groups: &[String],
        client_id: &str,
        scope: &str,
        auth_time: i64,
        nonce: Option<&str>,
        origin_jti: &str,
        sid: Option<&str>,
    ) -> Result<Tokens, OAuthError> {
        let now = crate::now();
        let client = self.client(client_id);
        let client = client.as_ref().map(|c| &c.client);
        let access_secs = client.map_or(self.token_validity, |c| {
            c.access_seconds(self.token_validity)
        });
        let id_secs = client.map_or(self.token_validity, |c| c.id_seconds(self.token_validity));
        let exp = now + access_secs;
        let event_id = uuid::Uuid::new_v4().to_string();
        let fail = || OAuthError {
            error: "server_error",
            description: "token signing failed".into(),
            status: 500,
        };
        let mut at = Map::new();
        at.insert("sub".into(), user.sub.clone().into());
        if !groups.is_empty() {
            at.insert("cognito:groups".into(), groups.into());
        }
        at.insert("iss".into(), self.issuer.clone().into());
        at.insert("version".into(), 2.into());
        at.insert("client_id".into(), client_id.into());
        at.insert("origin_jti".into(), origin_jti.into());
        at.insert("event_id".into(), event_id.clone().into());
        at.insert("token_use".into(), "access".into());
        at.insert("scope".into(), scope.into());
        at.insert("auth_time".into(), auth_time.into());
        at.insert("exp".into(), exp.into());
        at.insert("iat".into(), now.into());
        at.insert("jti".into(), uuid::Uuid::new_v4().to_string().into());
        at.insert("username".into(), user.username.clone().into());
        // Ours: the sign-in session, so a resource server or the balancer's `jwt-validation`
        // can refuse an ended session's access token without asking the pool.
        if let Some(sid) = sid {
            at.insert("sid".into(), sid.into());
        }
        let access_token = self.keys.load().sign_access(&at).ok_or_else(fail)?;
        let id_token = if gives_id_token(scope) {
            let mut id = Map::new();
            id.insert("sub".into(), user.sub.clone().into());
            if !groups.is_empty() {
                id.insert("cognito:groups".into(), groups.into());
            }
            for (k, v) in user
                .attributes
                .iter()
                .filter(|(k, _)| self.can_read(client_id, k))
            {
                // Booleans are real booleans in tokens (strings only in userInfo).
                let v = match (k.as_str(), v.as_str()) {
                    ("email_verified" | "phone_number_verified", Some(s)) => {
                        Value::Bool(s == "true")
                    }
                    // A federated user's `identities` is a JSON array in tokens, as Cognito's.
                    ("identities", Some(s)) => {
                        serde_json::from_str(s).unwrap_or_else(|_| v.clone())
                    }
                    _ => v.clone(),
                };
                id.insert(k.clone(), v);
            }
            id.insert("aud".into(), client_id.into());
            id.insert("event_id".into(), event_id.into());
            id.insert("token_use".into(), "id".into());
            id.insert("auth_time".into(), auth_time.into());
            id.insert("iss".into(), self.issuer.clone().into());
            id.insert("cognito:username".into(), user.username.clone().into());
            if let Some(n) = nonce {
                id.insert("nonce".into(), n.into());
            }
            id.insert("exp".into(), (now + id_secs).into());
            id.insert("iat".into(), now.into());
            id.insert("jti".into(), uuid::Uuid::new_v4().to_string().into());
            id.insert("origin_jti".into(), origin_jti.into());
            // OIDC Front-/Back-Channel Logout: the session the token was given in.
            if let Some(sid) = sid {
                id.insert("sid".into(), sid.into());
            }
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

/// Where `/logout` sends the browser.
#[derive(Debug, PartialEq, Eq)]
pub enum LogoutTarget {
    /// A registered `logout_uri`.
    Uri(String),
    /// Sign in again: `/login` with these authorization parameters.
    Login(String),
}

impl Pool {
    /// Every [`SessionEnded`](crate::domain::revocation::SessionEnded) from now on, including those
    /// that other nodes on the same store publish.
    pub fn subscribe_session_ends(
        &self,
    ) -> tokio::sync::broadcast::Receiver<crate::domain::revocation::SessionEnded> {
        self.session_ends.subscribe()
    }

    /// Sessions ended recently enough that their tokens may still be alive (for a load balancer
    /// that starts after them).
    pub async fn ended_sessions(
        &self,
    ) -> Result<Vec<crate::domain::revocation::SessionEnded>, StoreError> {
        self.ended_sign_ins().await
    }

    /// Publishes `event` on this pool's feed as if a sign-out had happened (tests of
    /// subscribers).
    #[doc(hidden)]
    pub fn publish_session_end(&self, event: crate::domain::revocation::SessionEnded) {
        self.session_ends.publish(event);
    }
}

/// How long the hosted UI remembers a sign-in (Cognito: 1 hour, fixed).
pub const SESSION_LIFETIME: i64 = 3600;

impl Pool {
    /// Starts a hosted-UI session for `user`; returns the cookie value.
    pub async fn start_session(
        &self,
        user: &UserRecord,
        auth_time: i64,
    ) -> Result<String, OAuthError> {
        let token = random_token(32).map_err(OAuthError::no_randomness)?;
        // The browser session is one sign-in session; its `sid` derives from the cookie.
        self.begin_sign_in(
            &user.sub,
            auth_time,
            Some(crate::domain::sessions::browser_sid(&token)),
        )
        .await
        .map_err(OAuthError::server)?;
        self.store
            .insert_session(
                &self.id,
                sha256_hex(&token),
                &user.sub,
                auth_time,
                crate::now() as i64 + SESSION_LIFETIME,
            )
            .await
            .map_err(OAuthError::server)?;
        Ok(token)
    }

    /// The signed-in user of a session cookie, with the original authentication time.
    pub async fn session_user(&self, cookie: &str) -> Option<(UserRecord, i64)> {
        if cookie.is_empty() || cookie.len() > 128 {
            return None;
        }
        let (sub, auth_time) = self
            .store
            .session(&self.id, sha256_hex(cookie))
            .await
            .ok()??;
        let user = self.store.user_by_sub(&self.id, &sub).await.ok()??;
        // A browser session whose sign-in session ended (a revoked refresh token) is over too.
        if !self
            .sign_in_live(&crate::domain::sessions::browser_sid(cookie))
            .await
            .ok()?
        {
            return None;
        }
        (user.enabled && user.status == "CONFIRMED").then_some((user, auth_time))
    }

    /// Ends a browser session and its sign-in session (unknown values are ignored).
    pub async fn end_session(&self, cookie: &str) {
        if !cookie.is_empty() && cookie.len() <= 128 {
            let _ = self
                .store
                .delete_session(&self.id, sha256_hex(cookie))
                .await;
            if let Err(e) = self
                .end_sign_in(&crate::domain::sessions::browser_sid(cookie))
                .await
            {
                tracing::error!(pool = %self.name, error = %e, "cannot end the sign-in session");
            }
        }
    }

    /// The `sid` of a hosted-UI session cookie.
    pub fn browser_sid(&self, cookie: &str) -> String {
        crate::domain::sessions::browser_sid(cookie)
    }

    /// Checks a `/logout` request: `client_id` with a registered `logout_uri`, or `client_id` with
    /// the authorization parameters of a new sign-in.
    pub fn check_logout(
        &self,
        q: &[(String, String)],
        raw_query: &str,
    ) -> Result<LogoutTarget, AuthorizeProblem> {
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let Some(client_id) = get("client_id") else {
            return Err(AuthorizeProblem::Page(
                "invalid_request",
                "client_id is missing".into(),
            ));
        };
        let Some(client) = self.client(&client_id) else {
            return Err(AuthorizeProblem::Page(
                "invalid_client",
                "this app is not registered with the user pool".into(),
            ));
        };
        if let Some(uri) = get("logout_uri") {
            return if client.client.logout_urls.iter().any(|u| u == &uri) {
                Ok(LogoutTarget::Uri(uri))
            } else {
                Err(AuthorizeProblem::Page(
                    "invalid_request",
                    "logout_uri is not one of the app's sign-out URLs".into(),
                ))
            };
        }
        if get("redirect_uri").is_some() {
            self.check_authorize(q)?;
            return Ok(LogoutTarget::Login(raw_query.to_string()));
        }
        Err(AuthorizeProblem::Page(
            "invalid_request",
            "give logout_uri, or redirect_uri and response_type".into(),
        ))
    }
}

/// The attributes of Cognito's "basic profile information" (`profile` scope).
const PROFILE_ATTRIBUTES: [&str; 14] = [
    "name",
    "family_name",
    "given_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "updated_at",
];

/// Which attributes userInfo returns for a token's scopes, as Cognito documents it: `openid`
/// alone gives every readable attribute; with `profile`, `email` or `phone` it gives the profile
/// attributes and custom ones, plus `email`/`email_verified` for `email` and
/// `phone_number`/`phone_number_verified` for `phone`.
pub fn userinfo_scope_filter(scope: &str) -> impl Fn(&str) -> bool {
    let has = |s: &str| scope.split(' ').any(|x| x == s);
    let (email, phone, profile) = (has("email"), has("phone"), has("profile"));
    move |attr: &str| {
        if !profile && !email && !phone {
            return true;
        }
        PROFILE_ATTRIBUTES.contains(&attr)
            || attr.starts_with("custom:")
            || (email && (attr == "email" || attr == "email_verified"))
            || (phone && (attr == "phone_number" || attr == "phone_number_verified"))
    }
}

/// Whether a scope is one every pool knows.
pub fn is_reserved_scope(s: &str) -> bool {
    RESERVED_SCOPES.contains(&s)
}

#[cfg(test)]
mod scope_tests {
    use super::userinfo_scope_filter;

    #[test]
    fn userinfo_attributes_follow_scopes() {
        let all = userinfo_scope_filter("openid");
        assert!(all("email") && all("custom:team") && all("name") && all("address"));
        let email = userinfo_scope_filter("openid email");
        assert!(email("email") && email("email_verified") && email("name") && email("custom:team"));
        assert!(!email("phone_number") && !email("address"));
        let phone = userinfo_scope_filter("openid phone");
        assert!(phone("phone_number") && phone("phone_number_verified") && !phone("email"));
        let profile = userinfo_scope_filter("openid profile");
        assert!(profile("name") && profile("custom:team") && !profile("email"));
    }
}
