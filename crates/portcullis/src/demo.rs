//! `portcullis demo`: the seed scenario with nothing to prepare — the load balancer, the user pool's
//! hosted UI and the bundled tasks app, from `examples/demo.toml`.

use crate::app;
use crate::tasks_app::{self, TasksApp};
use anyhow::{Context, Result, anyhow};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use portcullis_config::{Action, Config};
use std::path::Path;
use std::sync::Arc;

/// The demo's config, the same file `serve` runs.
pub const DEMO_CONFIG: &str = include_str!("../../../examples/demo.toml");
/// Where the demo user's password can be given.
pub const PASSWORD_ENV: &str = "PORTCULLIS_DEMO_PASSWORD";
/// Where the admin API's access key id can be given.
pub const ACCESS_KEY_ID_ENV: &str = "PORTCULLIS_DEMO_ACCESS_KEY_ID";
/// Where the admin API's secret access key can be given.
pub const SECRET_ACCESS_KEY_ENV: &str = "PORTCULLIS_DEMO_SECRET_ACCESS_KEY";

/// The admin API key pair of a demo run.
#[derive(Debug, Clone)]
pub struct DemoKeys {
    /// `AKIA...`.
    pub access_key_id: String,
    /// The secret.
    pub secret_access_key: String,
    /// Whether it was made for this run (and so is printed).
    pub generated: bool,
}

fn random_from(alphabet: &[u8], n: usize) -> String {
    let mut raw = vec![0u8; n];
    SystemRandom::new().fill(&mut raw).expect("system random");
    raw.iter()
        .map(|b| alphabet[*b as usize % alphabet.len()] as char)
        .collect()
}

impl DemoKeys {
    /// From the environment, or a new pair.
    pub fn from_env_or_generate() -> DemoKeys {
        let id = std::env::var(ACCESS_KEY_ID_ENV)
            .ok()
            .filter(|v| !v.is_empty());
        let secret = std::env::var(SECRET_ACCESS_KEY_ENV)
            .ok()
            .filter(|v| !v.is_empty());
        match (id, secret) {
            (Some(access_key_id), Some(secret_access_key)) => DemoKeys {
                access_key_id,
                secret_access_key,
                generated: false,
            },
            _ => DemoKeys {
                access_key_id: format!(
                    "AKIA{}",
                    random_from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
                ),
                secret_access_key: random_from(
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                    40,
                ),
                generated: true,
            },
        }
    }
}

/// A readable random password that meets Cognito's default policy.
pub fn generate_password() -> String {
    const WORDS: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut raw = [0u8; 12];
    SystemRandom::new().fill(&mut raw).expect("system random");
    let body: String = raw
        .iter()
        .map(|b| WORDS[*b as usize % WORDS.len()] as char)
        .collect();
    format!("{}-{}-{}!A1", &body[..4], &body[4..8], &body[8..])
}

/// Loads the demo config with the given password for the `demo` user and the admin API keys.
pub fn config(password: &str, keys: &DemoKeys) -> Result<Config> {
    let loaded =
        portcullis_config::load_str(DEMO_CONFIG, Path::new("examples/demo.toml"), Path::new("."))
            .map_err(|e| anyhow!("{e}"))?;
    let mut config = loaded.config;
    for pool in &mut config.user_pools {
        pool.access_keys = vec![portcullis_config::AccessKey {
            access_key_id: keys.access_key_id.clone(),
            secret_access_key: Some(keys.secret_access_key.clone()),
            secret_access_key_env: None,
        }];
        for u in &mut pool.users {
            u.password = Some(password.to_string());
            u.password_env = None;
        }
    }
    Ok(config)
}

/// The client id of the first `authenticate-cognito` action.
pub fn first_cognito_client(config: &Config) -> Option<(String, String)> {
    config
        .listeners
        .iter()
        .flat_map(|l| {
            l.rules
                .iter()
                .flat_map(|r| r.actions.iter())
                .chain(l.default_actions.iter())
        })
        .find_map(|a| match a {
            Action::AuthenticateCognito(c) => {
                Some((c.user_pool.clone(), c.user_pool_client_id.clone()))
            }
            _ => None,
        })
}

/// Builds the tasks app for a running Portcullis.
pub fn tasks_app_for(
    config: &Config,
    running: &app::App,
    admin_base: &str,
) -> Result<Arc<TasksApp>> {
    let (pool_name, client) =
        first_cognito_client(config).ok_or_else(|| anyhow!("no authenticate-cognito action"))?;
    let pool = running
        .pool(&pool_name)
        .ok_or_else(|| anyhow!("no user pool {pool_name}"))?;
    Ok(Arc::new(TasksApp::new(
        &running.lb.signer_arn,
        &client,
        admin_base.to_string(),
        format!("{}/.well-known/jwks.json", pool.issuer),
        pool.issuer.clone(),
    )))
}

/// The first pool's external providers that the demo itself serves (another pool of the config),
/// each with a user to sign in as there: `(provider, user, that pool's sign-in page)`.
pub fn federation_hints(config: &Config, running: &app::App) -> Vec<(String, String, String)> {
    let Some(first) = config.user_pools.first() else {
        return Vec::new();
    };
    first
        .identity_providers
        .iter()
        .filter_map(|ip| {
            let (pool, _) = running
                .pools
                .iter()
                .find(|(p, _)| p.issuer == ip.oidc_issuer)?;
            let user = config
                .user_pools
                .iter()
                .find(|p| p.name == pool.name)?
                .users
                .first()?;
            Some((
                ip.name.clone(),
                user.username.clone(),
                pool.base_url.clone(),
            ))
        })
        .collect()
}

/// Runs the demo until Ctrl-C.
pub async fn run() -> Result<()> {
    let (password, generated) = match std::env::var(PASSWORD_ENV) {
        Ok(p) if !p.is_empty() => (p, false),
        _ => (generate_password(), true),
    };
    let keys = DemoKeys::from_env_or_generate();
    let config = config(&password, &keys)?;
    let target = config.target_groups[0].targets[0].clone();
    let target_addr = format!("{}:{}", target.id, target.port.unwrap_or(80));
    // Bind the app's port first so a busy port fails before anything else starts.
    let tasks_listener = tokio::net::TcpListener::bind(&target_addr)
        .await
        .with_context(|| {
            format!("cannot listen on {target_addr} for the tasks app (is another demo running?)")
        })?;
    let running = app::start(&config, app::Prebound::default())
        .await
        .context("starting Portcullis (is another demo running?)")?;
    for (pool, _) in &running.pools {
        for u in config
            .user_pools
            .iter()
            .filter(|p| p.name == pool.name)
            .flat_map(|p| &p.users)
        {
            pool.set_password(&u.username, &password)
                .await
                .context("setting the demo password")?;
        }
    }
    let admin = running
        .lb
        .admin
        .ok_or_else(|| anyhow!("the demo config has an admin listener"))?;
    let admin_base = format!("http://{admin}");
    let tasks = tasks_app_for(&config, &running, &admin_base)?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let tasks_task = tokio::spawn(tasks_app::serve(tasks_listener, tasks, async {
        let _ = stop_rx.await;
    }));

    let pool = &running.pools[0].0;
    let https = running.lb.listeners.get(1).map_or(8443, |a| a.port());
    println!();
    println!("Portcullis demo is running. Open the protected app in a browser:");
    println!();
    println!(
        "  App, behind the load balancer   https://localhost:{https}/tasks   (self-signed certificate: accept it once)"
    );
    println!(
        "  Sign in as                      demo / {password}{}",
        if generated {
            ""
        } else {
            "   (from PORTCULLIS_DEMO_PASSWORD)"
        }
    );
    println!();
    println!(
        "  Hosted UI of user pool \"{}\"   {}/login",
        pool.name, pool.base_url
    );
    println!(
        "  OpenID discovery                {}/.well-known/openid-configuration",
        pool.issuer
    );
    println!(
        "  JWKS (ID and access tokens)     {}/.well-known/jwks.json",
        pool.issuer
    );
    println!(
        "  x-amzn-oidc-data public key     {admin_base}/public-keys/{}",
        running.lb.kid
    );
    println!(
        "  Signer ARN (pin it in backends) {}",
        running.lb.signer_arn
    );
    println!(
        "  Tasks app, direct (no login)    http://{target_addr}/tasks   (answers 401: no verified identity)"
    );
    if let Some(outbox) = pool.outbox_path() {
        println!("  Sign-up and reset codes         {}", outbox.display());
    }
    for (name, user, at) in federation_hints(&config, &running) {
        println!(
            "  Or sign in with {name:<15} choose \"Sign in with {name}\" on the sign-in page, then {user} / {password} at {at}"
        );
        println!(
            "                                  (an external OIDC provider; you come back as user {name}_<sub>, status EXTERNAL_PROVIDER)"
        );
    }
    println!();
    println!(
        "  Admin API (Cognito's, SigV4)    endpoint {}   region {}   pool {}",
        pool.base_url, pool.region, pool.id
    );
    if keys.generated {
        println!(
            "  Access key                      {} / {}   (set {ACCESS_KEY_ID_ENV} and {SECRET_ACCESS_KEY_ENV} to choose)",
            keys.access_key_id, keys.secret_access_key
        );
    } else {
        println!(
            "  Access key                      {}   (secret from {SECRET_ACCESS_KEY_ENV})",
            keys.access_key_id
        );
    }
    println!(
        "  Try                             AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY=... aws cognito-idp list-users --endpoint-url {} --region {} --user-pool-id {}",
        keys.access_key_id, pool.base_url, pool.region, pool.id
    );
    println!(
        "  HTTP listener                   http://localhost:{}/   (redirects to HTTPS)",
        running.lb.listeners[0].port()
    );
    println!();
    println!(
        "  JSON: curl -k -H 'Accept: application/json' --cookie <session cookie> https://localhost:{https}/tasks"
    );
    println!("Press Ctrl-C to stop.");

    shutdown_signal().await;
    println!("Stopping…");
    let _ = stop_tx.send(());
    running.shutdown().await;
    let _ = tasks_task.await;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
