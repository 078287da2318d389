//! Starts everything a config describes: each user pool on its domain listener, then the load
//! balancer, with `authenticate-cognito` resolved against the embedded pools.

use anyhow::{Context, Result, anyhow};
use portcullis_auth::ProviderConfig;
use portcullis_config::{ClientAuthMethod, Config};
use portcullis_idp::Pool;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

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
    shutdown: watch::Sender<bool>,
    idp_tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl App {
    /// The pool called `name`.
    pub fn pool(&self, name: &str) -> Option<&Arc<Pool>> {
        self.pools.iter().map(|(p, _)| p).find(|p| p.name == name)
    }

    /// Applies a new config's load-balancer rules, actions and target groups (see
    /// [`portcullis_lb::Running::reload`]); user pools are read at start only.
    pub async fn reload(&self, config: &Config) -> Result<(), String> {
        self.lb.reload(config).await
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
pub fn seed_password(u: &portcullis_config::SeedUser) -> Result<String, String> {
    match (&u.password, &u.password_env) {
        (Some(p), _) => Ok(p.clone()),
        (None, Some(var)) => std::env::var(var)
            .map_err(|_| format!("password_env: environment variable {var} is not set")),
        (None, None) => Err("no password".into()),
    }
}

/// A secret from the file or from the named environment variable.
pub fn value_or_env(value: Option<&String>, env: Option<&String>) -> Result<String, String> {
    match (value, env) {
        (Some(v), _) => Ok(v.clone()),
        (None, Some(var)) => {
            std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))
        }
        (None, None) => Err("no value".into()),
    }
}

/// Provider settings for `authenticate-cognito` against an embedded pool.
pub fn cognito_provider(pool: &Pool, client_id: &str) -> Result<ProviderConfig, String> {
    let secret = pool.client_secret(client_id).ok_or_else(|| {
        format!(
            "client `{client_id}` of user pool `{}` has no secret",
            pool.name
        )
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

/// Starts the pools, then the load balancer.
pub async fn start(config: &Config, mut prebound: Prebound) -> Result<App> {
    // Keys and the user store live there: refuse a directory others may write, keep it private.
    portcullis_config::state_dir::secure(&config.load_balancer.state_dir)?;
    let (tx, rx) = watch::channel(false);
    let mut pools = Vec::new();
    let mut idp_tasks = Vec::new();
    if !config.user_pools.is_empty() {
        let state_dir = &config.load_balancer.state_dir;
        let store = portcullis_idp::store::open(config.store.as_deref(), state_dir)
            .await
            .with_context(|| match &config.store {
                Some(s) if s != "sqlite" => "store: cannot open the PostgreSQL store".to_string(),
                _ => format!("{}: cannot open the user pool store", state_dir.display()),
            })?;
        for (i, p) in config.user_pools.iter().enumerate() {
            let mut keys = HashMap::new();
            for (j, k) in p.access_keys.iter().enumerate() {
                let secret = value_or_env(
                    k.secret_access_key.as_ref(),
                    k.secret_access_key_env.as_ref(),
                )
                .map_err(|e| {
                    anyhow!("user_pools[{i}].access_keys[{j}].secret_access_key_env: {e}")
                })?;
                keys.insert(k.access_key_id.clone(), secret);
            }
            let pool = Pool::open(
                p,
                &config.load_balancer.region,
                store.clone(),
                keys,
                state_dir,
            )
            .await
            .map_err(|e| anyhow!("user_pools[{i}]: {e}"))?;
            pool.seed_users(p, seed_password)
                .await
                .map_err(|e| anyhow!("user_pools[{i}]: {e}"))?;
            let pool = Arc::new(pool);
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
                if let Err(e) = portcullis_idp::serve(tcp, serving, shutdown).await {
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
    let resolver = move |a: &portcullis_config::AuthenticateCognito| {
        let pool = by_name
            .get(&a.user_pool)
            .ok_or_else(|| format!("unknown user pool `{}`", a.user_pool))?;
        cognito_provider(pool, &a.user_pool_client_id)
    };
    let lb = portcullis_lb::start(config, Arc::new(resolver), prebound.listeners).await?;
    Ok(App {
        lb,
        pools,
        shutdown: tx,
        idp_tasks,
    })
}
