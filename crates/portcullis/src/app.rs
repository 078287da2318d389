//! Starts everything a config describes: each user pool on its domain listener, then the load
//! balancer, with `authenticate-cognito` resolved against the embedded pools.

use anyhow::{Context, Result, anyhow};
use portcullis_auth::ProviderConfig;
use portcullis_auth::revocation::RevocationSet;
use portcullis_config::{ClientAuthMethod, Config};
use portcullis_core::SecretError;
use portcullis_idp::Pool;
use portcullis_idp::domain::revocation::SessionEnded;
use portcullis_lb::ReloadError;
use portcullis_lb::snapshot::{CognitoError, CognitoProvider};
use portcullis_lb::tls::{self, SniResolver};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};

/// Listeners bound before start (tests bind port 0 and write the ports into the config).
#[derive(Default)]
pub struct Prebound {
    /// By listener index.
    pub listeners: Vec<Option<TcpListener>>,
    /// By pool name.
    pub pools: HashMap<String, TcpListener>,
}

/// A running Portcullis.
pub struct App {
    /// The load balancer.
    pub lb: portcullis_lb::Running,
    /// Pools with their bound addresses.
    pub pools: Vec<(Arc<Pool>, SocketAddr)>,
    /// The certificates of pools served over HTTPS, by pool name (replaced on reload).
    pool_certs: Arc<HashMap<String, Arc<SniResolver>>>,
    shutdown: watch::Sender<bool>,
    idp_tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl App {
    /// The pool called `name`.
    pub fn pool(&self, name: &str) -> Option<&Arc<Pool>> {
        self.pools.iter().map(|(p, _)| p).find(|p| p.name == name)
    }

    /// Applies a new config's load-balancer rules, actions and target groups (see
    /// [`portcullis_lb::Running::reload`]) and the certificates of pools served over HTTPS; the
    /// rest of the user pools is read at start only. Nothing changes when any of it fails.
    pub async fn reload(&self, config: &Config) -> Result<(), ReloadError> {
        // New pool certificates are staged: the balancer's clients rebuilt below trust old and
        // new, then the pools serve the new ones; a failure anywhere changes nothing.
        let mut staged: Vec<&Arc<SniResolver>> = Vec::new();
        for (i, p) in config.user_pools.iter().enumerate() {
            let Some(resolver) = self.pool_certs.get(&p.name) else {
                if !p.domain.certificates.is_empty() {
                    tracing::warn!(pool = %p.name, "user_pools[{i}].domain.certificates: the pool serves plain HTTP until the next start");
                }
                continue;
            };
            if p.domain.certificates.is_empty() {
                tracing::warn!(pool = %p.name, "user_pools[{i}].domain.certificates: removed; the pool serves HTTPS until the next start");
                continue;
            }
            let at = format!("user_pools[{i}].domain.certificates");
            let certs =
                match tls::load_certs(&config.load_balancer.state_dir, &p.domain.certificates, &at)
                {
                    Ok(c) => c,
                    Err(e) => {
                        staged.iter().for_each(|r| r.unstage());
                        return Err(portcullis_lb::BuildError::from(e).into());
                    }
                };
            resolver.stage(certs);
            staged.push(resolver);
        }
        let r = self.lb.reload(config).await;
        for resolver in staged {
            if r.is_ok() {
                resolver.commit();
            } else {
                resolver.unstage();
            }
        }
        r
    }

    /// Stops everything, draining in-flight requests.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        self.lb.shutdown().await;
        for t in self.idp_tasks {
            let _ = t.await;
        }
    }
}

/// The password a seed user gets: from the file, or from the named environment variable.
pub fn seed_password(u: &portcullis_config::SeedUser) -> Result<String, SecretError> {
    portcullis_core::secret::required(
        u.password.as_deref(),
        u.password_env.as_deref(),
        "password_env",
    )
}

/// Provider settings for `authenticate-cognito` against an embedded pool, with a client that
/// trusts the pool's own certificates when it serves HTTPS (`certs`): the balancer calls the
/// pool at its `base_url` like any provider, and a self-signed pool certificate is trusted
/// explicitly, by this in-process relying party only.
pub fn cognito_provider(
    pool: &Pool,
    certs: Option<&SniResolver>,
    client_id: &str,
) -> Result<CognitoProvider, CognitoError> {
    let http = match certs {
        Some(c) => Some(
            portcullis_verify::client::http_client_trusting(c.trust_anchors()).map_err(
                |source| CognitoError::Trust {
                    pool: pool.name.clone(),
                    source,
                },
            )?,
        ),
        None => None,
    };
    Ok(CognitoProvider {
        config: cognito_provider_config(pool, client_id)?,
        http,
    })
}

fn cognito_provider_config(pool: &Pool, client_id: &str) -> Result<ProviderConfig, CognitoError> {
    let secret = pool
        .client_secret(client_id)
        .ok_or_else(|| CognitoError::NoSecret {
            pool: pool.name.clone(),
            client: client_id.to_string(),
        })?;
    let b = &pool.base_url;
    Ok(ProviderConfig {
        issuer: pool.issuer.clone(),
        authorization_endpoint: format!("{b}/oauth2/authorize"),
        token_endpoint: format!("{b}/oauth2/token"),
        user_info_endpoint: format!("{b}/oauth2/userInfo"),
        jwks_uri: Some(format!("{}/.well-known/jwks.json", pool.issuer)),
        client_id: client_id.to_string(),
        client_secret: secret,
        auth_method: ClientAuthMethod::ClientSecretBasic,
        revocation_endpoint: Some(format!("{b}/oauth2/revoke")),
        end_session: Some(portcullis_auth::oidc::EndSession::Cognito(format!(
            "{b}/logout"
        ))),
    })
}

/// For `bench/run.sh` only: this many revoked sessions that match no real one are put in the set
/// at start, to measure what a full set costs each authenticated request.
pub const BENCH_REVOKED_ENV: &str = "PORTCULLIS_BENCH_REVOKED_SESSIONS";

/// Fills the set per [`BENCH_REVOKED_ENV`] (half single sessions, half whole users), under each
/// pool's issuer. They can only refuse more, never admit anything.
fn synthetic_revocations(set: &RevocationSet, pools: &[(Arc<Pool>, SocketAddr)]) {
    let Some(n) = std::env::var(BENCH_REVOKED_ENV)
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    else {
        return;
    };
    let now = portcullis_core::now();
    for (pool, _) in pools {
        for i in 0..n {
            let sid = format!("bench-revoked-session-{i:08}");
            let sub = format!("bench-revoked-user-{i:08}");
            let sid = (i % 2 == 0).then_some(sid.as_str());
            set.end(&pool.issuer, sid, &sub, now, now);
        }
    }
    tracing::warn!(
        sessions = n,
        "{BENCH_REVOKED_ENV}: synthetic revocations added (benchmarks only)"
    );
}

/// Puts ended sessions into the balancer's revocation set.
fn record_ended(set: &RevocationSet, ended: &[SessionEnded]) {
    let now = portcullis_core::now();
    for e in ended {
        let at = u64::try_from(e.at).unwrap_or(0);
        set.end(&e.issuer, e.sid.as_deref(), &e.sub, at, now);
    }
}

/// Feeds one embedded pool's ended sessions to the balancer until shutdown. A receiver that
/// fell behind (`Lagged`) missed events: the pool's list of ended sessions is read again, so
/// no revocation is lost.
async fn follow_session_ends(
    pool: Arc<Pool>,
    mut feed: broadcast::Receiver<SessionEnded>,
    set: Arc<RevocationSet>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let event = tokio::select! {
            _ = shutdown.changed() => return,
            e = feed.recv() => e,
        };
        match event {
            Ok(e) => record_ended(&set, std::slice::from_ref(&e)),
            Err(broadcast::error::RecvError::Closed) => return,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(pool = %pool.name, missed, "session-end feed lagged; reading the pool's ended sessions again");
                loop {
                    match pool.ended_sessions().await {
                        Ok(all) => {
                            record_ended(&set, &all);
                            break;
                        }
                        Err(e) => {
                            tracing::error!(pool = %pool.name, error = %e, "cannot read ended sessions; retrying");
                            tokio::select! {
                                _ = shutdown.changed() => return,
                                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Shares the logout tokens this node's balancer accepts with the other nodes on `store`, and
/// puts theirs in this node's set: logged and announced there, heard by every node's listener.
/// Only the node that received a token validates it; the others trust the store.
async fn share_logout_ends(
    store: Arc<dyn portcullis_idp::Store>,
    set: &Arc<RevocationSet>,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let feed = Arc::new(portcullis_idp::domain::revocation::Feed::default());
    let mut events = feed.subscribe();
    store.watch_logout_ends(Arc::downgrade(&feed));
    let backlog = store
        .logout_ends(portcullis_core::now() as i64)
        .await
        .map_err(|e| anyhow!("store: cannot read shared logout-token ends: {e}"))?;
    record_ended(set, &backlog);
    let writer = store.clone();
    set.set_sharer(Arc::new(move |issuer, sid, sub, at| {
        let end = SessionEnded {
            issuer: issuer.to_string(),
            sid: sid.map(str::to_owned),
            sub: sub.to_string(),
            at: i64::try_from(at).unwrap_or(i64::MAX),
        };
        let keep_until = end
            .at
            .saturating_add(portcullis_auth::revocation::RETENTION as i64);
        let store = writer.clone();
        tokio::spawn(async move {
            if let Err(e) = store.log_logout_end(&end, keep_until).await {
                tracing::error!(error = %e, issuer = %end.issuer, "cannot share a logout-token end with the other nodes");
            }
        });
    }));
    let set = set.clone();
    tasks.push(tokio::spawn(async move {
        let _feed = feed; // the listener holds it weakly
        loop {
            let event = tokio::select! {
                _ = shutdown.changed() => return,
                e = events.recv() => e,
            };
            match event {
                Ok(e) => record_ended(&set, std::slice::from_ref(&e)),
                Err(broadcast::error::RecvError::Closed) => return,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "logout-token feed lagged; reading the store again");
                    match store.logout_ends(portcullis_core::now() as i64).await {
                        Ok(all) => record_ended(&set, &all),
                        Err(e) => {
                            tracing::error!(error = %e, "cannot read shared logout-token ends")
                        }
                    }
                }
            }
        }
    }));
    Ok(())
}

/// Starts the pools, then the load balancer.
pub async fn start(config: &Config, mut prebound: Prebound) -> Result<App> {
    // Keys and the user store live there: refuse a directory others may write, keep it private.
    portcullis_config::state_dir::secure(&config.load_balancer.state_dir)?;
    let (tx, rx) = watch::channel(false);
    let mut pools = Vec::new();
    let mut pool_certs = HashMap::new();
    let mut idp_tasks = Vec::new();
    let idp_metrics = Arc::new(portcullis_idp::metrics::IdpMetrics::new());
    // Each pool's API endpoint answers for its siblings (`ListUserPools`), as Cognito's regional one.
    let directory = portcullis_idp::domain::directory::Directory::new();
    // The PostgreSQL store, through which nodes share the logout tokens each one accepts.
    let mut shared_store: Option<Arc<dyn portcullis_idp::Store>> = None;
    if !config.user_pools.is_empty() {
        let state_dir = &config.load_balancer.state_dir;
        let store = portcullis_idp::store::open(config.store.as_deref(), state_dir)
            .await
            .with_context(|| match &config.store {
                Some(s) if s != "sqlite" => "store: cannot open the PostgreSQL store".to_string(),
                _ => format!("{}: cannot open the user pool store", state_dir.display()),
            })?;
        if config.store.as_deref().is_some_and(|s| s != "sqlite") {
            shared_store = Some(store.clone());
        }
        for (i, p) in config.user_pools.iter().enumerate() {
            let mut keys = HashMap::new();
            for (j, k) in p.access_keys.iter().enumerate() {
                let secret = portcullis_core::secret::required(
                    k.secret_access_key.as_deref(),
                    k.secret_access_key_env.as_deref(),
                    &format!("user_pools[{i}].access_keys[{j}].secret_access_key_env"),
                )?;
                keys.insert(k.access_key_id.clone(), secret);
            }
            let pool = Pool::open_with(
                p,
                &config.load_balancer.region,
                store.clone(),
                keys,
                state_dir,
                idp_metrics.clone(),
            )
            .await
            .map_err(|e| anyhow!("user_pools[{i}]: {e}"))?;
            pool.seed_users(p, seed_password)
                .await
                .map_err(|e| anyhow!("user_pools[{i}]: {e}"))?;
            let pool = Arc::new(pool);
            directory.register(&pool);
            let tls = if p.domain.certificates.is_empty() {
                None
            } else {
                let at = format!("user_pools[{i}].domain.certificates");
                let certs = tls::load_certs(state_dir, &p.domain.certificates, &at)?;
                // HTTP/1.1 only: the pool's pages and API need nothing more.
                let (cfg, resolver) =
                    tls::server_config(certs, false).map_err(|e| anyhow!("{at}: {e}"))?;
                pool_certs.insert(p.name.clone(), resolver);
                Some(cfg)
            };
            let tcp = match prebound.pools.remove(&p.name) {
                Some(t) => t,
                None => TcpListener::bind(&p.domain.listen).await.with_context(|| {
                    format!(
                        "user_pools[{i}].domain.listen: cannot listen on {}",
                        p.domain.listen
                    )
                })?,
            };
            let addr = tcp.local_addr()?;
            let mut rx = rx.clone();
            let shutdown = async move {
                let _ = rx.changed().await;
            };
            let serving = pool.clone();
            idp_tasks.push(tokio::spawn(async move {
                if let Err(e) = portcullis_idp::serve(tcp, serving, tls, shutdown).await {
                    tracing::error!(error = %e, "user pool listener failed");
                }
            }));
            pools.push((pool, addr));
        }
    }
    let by_name: HashMap<String, Arc<Pool>> = pools
        .iter()
        .map(|(p, _)| (p.name.clone(), p.clone()))
        .collect();
    // Subscribed before the backlog is read, so no ended session falls between the two.
    let mut feeds = Vec::new();
    for (pool, _) in &pools {
        let rx = pool.subscribe_session_ends();
        let backlog = pool
            .ended_sessions()
            .await
            .map_err(|e| anyhow!("user pool `{}`: cannot read ended sessions: {e}", pool.name))?;
        feeds.push((pool.clone(), rx, backlog));
    }
    let pool_certs = Arc::new(pool_certs);
    let certs = pool_certs.clone();
    let resolver = move |a: &portcullis_config::AuthenticateCognito| {
        let pool = by_name
            .get(&a.user_pool)
            .ok_or_else(|| CognitoError::UnknownPool(a.user_pool.clone()))?;
        cognito_provider(
            pool,
            certs.get(&a.user_pool).map(|r| &**r),
            &a.user_pool_client_id,
        )
    };
    let lb = portcullis_lb::start(config, Arc::new(resolver), prebound.listeners).await?;
    let revocations = lb.shared.auth.revocations().clone();
    synthetic_revocations(&revocations, &pools);
    for (pool, feed, backlog) in feeds {
        record_ended(&revocations, &backlog);
        idp_tasks.push(tokio::spawn(follow_session_ends(
            pool,
            feed,
            revocations.clone(),
            rx.clone(),
        )));
    }
    if let Some(store) = shared_store {
        share_logout_ends(store, &revocations, &mut idp_tasks, rx.clone()).await?;
    }
    if let Some(m) = &lb.shared.metrics {
        m.add_source(Arc::new(move |out: &mut String| idp_metrics.encode(out)));
    }
    Ok(App {
        lb,
        pools,
        pool_certs,
        shutdown: tx,
        idp_tasks,
    })
}
