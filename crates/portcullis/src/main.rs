//! The `portcullis` command line.

use anyhow::{Context, Result, anyhow};
use clap::{Parser, Subcommand};
use portcullis::admin_cli::{
    self, ClientsCommand, GroupsCommand, KeysCommand, PoolArgs, UsersCommand,
};
use portcullis::{app, demo, tasks_app};
use std::path::PathBuf;
use std::process::ExitCode;

/// jemalloc, whose background thread gives freed memory back to the system (closed connections,
/// idle argon2 blocks); glibc's malloc kept it (bench/README.md, "Memory").
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// An authenticating application load balancer and a Cognito-shaped identity provider.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the load balancer and user pools a config file describes.
    Serve {
        /// The TOML config.
        #[arg(long, short)]
        config: PathBuf,
        #[command(flatten)]
        log: LogArgs,
    },
    /// Work with config files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Run the demo: load balancer, hosted UI and a tasks app, with nothing to prepare.
    Demo {
        #[command(flatten)]
        log: LogArgs,
    },
    /// Manage a user pool's users (on its store; no server needed).
    Users {
        #[command(flatten)]
        pool: PoolArgs,
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Manage a user pool's groups.
    Groups {
        #[command(flatten)]
        pool: PoolArgs,
        #[command(subcommand)]
        command: GroupsCommand,
    },
    /// Manage a user pool's app clients.
    Clients {
        #[command(flatten)]
        pool: PoolArgs,
        #[command(subcommand)]
        command: ClientsCommand,
    },
    /// Rotate the load balancer's cookie and claims-signing keys (in the state dir; takes effect
    /// at the next start; sessions and signed headers stay valid).
    LbKeys {
        /// The TOML config.
        #[arg(long, short)]
        config: PathBuf,
        #[command(subcommand)]
        command: LbKeysCommand,
    },
    /// Rotate and list a user pool's token-signing keys.
    Keys {
        #[command(flatten)]
        pool: PoolArgs,
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Run the demo's tasks app as a separate backend for `serve --config examples/demo.toml`.
    TasksApp {
        /// The config Portcullis runs (the app trusts its load balancer and user pool).
        #[arg(long, short)]
        config: PathBuf,
        /// Where to listen (defaults to the first target of the first target group).
        #[arg(long)]
        listen: Option<String>,
    },
}

#[derive(Subcommand)]
enum LbKeysCommand {
    /// Add a new cookie key and a new claims-signing key (or only one of them).
    Rotate {
        /// Only the cookie key.
        #[arg(long, conflicts_with = "claims_only")]
        cookie_only: bool,
        /// Only the claims-signing key.
        #[arg(long)]
        claims_only: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a config file; exit 1 and name file, field and reason for every problem.
    Check {
        /// The TOML config.
        file: PathBuf,
    },
}

fn load(file: &std::path::Path) -> Result<portcullis_config::Config> {
    portcullis_config::load(file)
        .map(|l| l.config)
        .map_err(|e| anyhow!("{e}"))
}

async fn serve(config: PathBuf) -> Result<()> {
    let cfg = load(&config)?;
    let running = app::start(&cfg, app::Prebound::default())
        .await
        .with_context(|| config.display().to_string())?;
    for (i, a) in running.lb.listeners.iter().enumerate() {
        let proto = if cfg.listeners[i].protocol == portcullis_config::Protocol::HTTPS {
            "https"
        } else {
            "http"
        };
        tracing::info!("listener {i}: {proto}://{a}");
    }
    for (p, a) in &running.pools {
        let tls = cfg
            .user_pools
            .iter()
            .any(|c| c.name == p.name && !c.domain.certificates.is_empty());
        let scheme = if tls { "https" } else { "http" };
        tracing::info!(
            "user pool {} ({}) on {scheme}://{a}, issuer {}",
            p.name,
            p.id,
            p.issuer
        );
    }
    if let Some(a) = running.lb.admin {
        tracing::info!(
            "public key for x-amzn-oidc-data: http://{a}/public-keys/{}",
            running.lb.kid
        );
    }
    tracing::info!("signer ARN {}", running.lb.signer_arn);
    // Reload on SIGHUP and when the file changes; a config that does not load or compile is
    // reported and the running one stays.
    let stamp = |p: &std::path::Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.modified().ok(), m.len()))
    };
    let mut seen = stamp(&config);
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot watch SIGHUP")?;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = demo::shutdown_signal();
    tokio::pin!(stop);
    loop {
        let why = tokio::select! {
            _ = &mut stop => break,
            _ = hup.recv() => "SIGHUP",
            _ = tick.tick() => {
                if stamp(&config) == seen { continue; }
                "the file changed"
            }
        };
        match portcullis_config::load(&config) {
            Ok(l) => match running.reload(&l.config).await {
                Ok(()) => tracing::info!(file = %config.display(), "config reloaded ({why})"),
                Err(e) => {
                    tracing::error!(file = %config.display(), error = %e, "reload refused; the running config stays")
                }
            },
            Err(e) => tracing::error!(error = %e, "reload refused; the running config stays"),
        }
        seen = stamp(&config);
    }
    tracing::info!("shutting down; draining in-flight requests");
    running.shutdown().await;
    Ok(())
}

async fn run_tasks_app(config: PathBuf, listen: Option<String>) -> Result<()> {
    let cfg = load(&config)?;
    let identity = portcullis_lb::identity(&cfg)?;
    let (pool_name, client) = demo::first_cognito_client(&cfg)
        .ok_or_else(|| anyhow!("{}: no authenticate-cognito action", config.display()))?;
    let pool = cfg
        .user_pools
        .iter()
        .find(|p| p.name == pool_name)
        .ok_or_else(|| anyhow!("no user pool {pool_name}"))?;
    let pool_id = pool.id.clone().unwrap_or_else(|| {
        portcullis_idp::domain::pool::derived_pool_id(&cfg.load_balancer.region, &pool.name)
    });
    let issuer = format!("{}/{pool_id}", pool.domain.base_url.trim_end_matches('/'));
    let admin = cfg
        .load_balancer
        .admin
        .as_ref()
        .ok_or_else(|| anyhow!("load_balancer.admin is needed for the public keys"))?;
    let admin_base = admin
        .base_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", admin.listen));
    let listen = match listen {
        Some(l) => l,
        None => {
            let t = cfg
                .target_groups
                .first()
                .and_then(|g| g.targets.first().map(|t| (t.clone(), g.port)))
                .ok_or_else(|| anyhow!("no targets"))?;
            format!("{}:{}", t.0.id, t.0.port.or(t.1).unwrap_or(80))
        }
    };
    let app = std::sync::Arc::new(tasks_app::TasksApp::new(
        &identity.arn(),
        &client,
        admin_base,
        format!("{issuer}/.well-known/jwks.json"),
        issuer,
    ));
    let tcp = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!("tasks app on http://{listen}, trusting {}", identity.arn());
    tasks_app::serve(tcp, app, demo::shutdown_signal()).await?;
    Ok(())
}

fn print(r: Result<serde_json::Value>) -> Result<()> {
    let v = r?;
    println!(
        "{}",
        serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string())
    );
    Ok(())
}

/// How the long-running commands write their log lines, so operators can feed them to a collector.
#[derive(clap::Args)]
struct LogArgs {
    /// Log line format on stderr; `RUST_LOG` picks the levels (default `info`).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// The log line formats `--log-format` offers.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per event (tracing-subscriber's JSON formatter).
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The admin commands print JSON on stdout: their log lines go to stderr, warnings only.
    let admin = matches!(
        cli.command,
        Command::Users { .. }
            | Command::Groups { .. }
            | Command::Clients { .. }
            | Command::Keys { .. }
    );
    let default_level = if admin { "warn" } else { "info" };
    let format = match &cli.command {
        Command::Serve { log, .. } | Command::Demo { log } => log.log_format,
        _ => LogFormat::Text,
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_level.into()),
        )
        .with_target(false)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    if let Command::Config {
        command: ConfigCommand::Check { file },
    } = &cli.command
    {
        return match portcullis_config::load(file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }
    // On one CPU (say, pinned with taskset or a one-CPU container) a single-threaded runtime
    // forwards about a quarter faster than a work-stealing one with one worker (bench/README.md);
    // with more CPUs, one worker per CPU.
    let one_cpu = std::thread::available_parallelism().map_or(true, |n| n.get() == 1);
    let mut builder = if one_cpu {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Serve { config, .. } => serve(config).await,
            Command::Demo { .. } => demo::run().await,
            Command::TasksApp { config, listen } => run_tasks_app(config, listen).await,
            Command::Config { .. } => Ok(()),
            Command::Users { pool, command } => print(admin_cli::users(pool, command).await),
            Command::Groups { pool, command } => print(admin_cli::groups(pool, command).await),
            Command::Clients { pool, command } => print(admin_cli::clients(pool, command).await),
            Command::Keys { pool, command } => print(admin_cli::keys(pool, command).await),
            Command::LbKeys {
                config,
                command:
                    LbKeysCommand::Rotate {
                        cookie_only,
                        claims_only,
                    },
            } => {
                let cfg = load(&config)?;
                portcullis_config::state_dir::secure(&cfg.load_balancer.state_dir)
                    .with_context(|| config.display().to_string())?;
                let dir = cfg.load_balancer.state_dir.join("lb");
                let done = portcullis_auth::keys::rotate(&dir, !claims_only, !cookie_only)?;
                for line in done {
                    println!("{line}");
                }
                println!(
                    "Restart Portcullis (every node, with the same state dir keys) to use them."
                );
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
