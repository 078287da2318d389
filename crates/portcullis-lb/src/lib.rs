//! The load balancer data plane: listeners, rules, target groups, forwarding, ALB headers, status
//! codes and access logs. The request path (`proxy`) reads an immutable `snapshot` of the config.

pub mod access_log;
pub mod admin;
pub mod body;
pub mod connection;
pub mod error;
pub mod h1;
pub mod headers;
pub mod health_check;
pub mod lambda;
pub mod listener;
pub mod metrics;
pub mod path;
pub mod proxy;
pub mod redirect;
pub mod rules;
pub mod shared;
pub mod snapshot;
pub mod stickiness;
pub mod target_group;
pub mod target_tls;
pub mod tls;
pub mod upgrade;
pub mod upstream;
pub mod wildcard;

pub use body::{Body, BoxError};
pub use connection::{ConnInfo, TlsInfo};
pub use shared::Shared;

use arc_swap::ArcSwap;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use portcullis_auth::{AuthKeys, Authenticator};
use portcullis_config::{Config, Protocol};
use snapshot::{CognitoResolver, Identity};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Why the load balancer could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not bind.
    #[error("listeners[{index}]: cannot listen on {addr}: {error}")]
    Bind {
        index: usize,
        addr: String,
        error: std::io::Error,
    },
    /// The admin listener could not bind.
    #[error("load_balancer.admin.listen: cannot listen on {addr}: {error}")]
    AdminBind { addr: String, error: std::io::Error },
    /// Keys or state could not be read or written.
    #[error("{0}")]
    State(String),
    /// The config's listeners or rules could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// What start and reload share: building the listeners' TLS and the snapshot from a config.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Certificates (a listener's, or a user pool domain's) could not be loaded.
    #[error(transparent)]
    Certificates(#[from] tls::CertsError),
    /// A listener's TLS configuration was refused.
    #[error("listeners[{index}]: {source}")]
    Tls {
        /// The listener's index.
        index: usize,
        /// Why.
        #[source]
        source: rustls::Error,
    },
    /// A provider's discovery document could not be used.
    #[error(transparent)]
    Discovery(#[from] DiscoveryFailed),
    /// The config could not be compiled.
    #[error(transparent)]
    Compile(#[from] snapshot::CompileError),
}

/// Why a reload was refused (the running config stays); the binary logs it.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// A running listener's protocol cannot change.
    #[error(
        "listeners[{index}]: changing the protocol of {address}:{port} needs a restart (or a new port)"
    )]
    Protocol {
        /// The listener's index.
        index: usize,
        /// Its address.
        address: String,
        /// Its port.
        port: u16,
    },
    /// A new listener could not bind.
    #[error("listeners[{index}]: cannot listen on {addr}: {source}")]
    Bind {
        /// The listener's index.
        index: usize,
        /// `address:port`.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A new listener's bound address could not be read.
    #[error("listeners[{index}]: {addr}: {source}")]
    LocalAddr {
        /// The listener's index.
        index: usize,
        /// `address:port`.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The new config's listeners or rules could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// An `authenticate-oidc` action's discovery failed, at start or reload.
#[derive(Debug, thiserror::Error)]
#[error(
    "listeners[{index}]: authenticate-oidc discovery for issuer {issuer} failed: {source}. Check the issuer URL, \
     or give authorization_endpoint, token_endpoint and user_info_endpoint to skip discovery"
)]
pub struct DiscoveryFailed {
    /// The listener's index.
    pub index: usize,
    /// The configured issuer.
    pub issuer: String,
    /// Why.
    #[source]
    pub source: portcullis_auth::oidc::DiscoveryError,
}

/// A started load balancer.
pub struct Running {
    /// Bound addresses, in listener order.
    pub listeners: Vec<SocketAddr>,
    /// The admin listener's address.
    pub admin: Option<SocketAddr>,
    /// `x-amzn-oidc-data` signer ARN.
    pub signer_arn: String,
    /// The claims-signing key id.
    pub kid: String,
    /// The request path's shared state.
    pub shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
    /// Listener tasks (those started by reloads too).
    listener_tasks: tokio::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// What a reload needs to compile a new snapshot.
    reload: ReloadContext,
}

/// The parts of a running balancer a reload keeps: its sockets, names and clients.
struct ReloadContext {
    identity: Identity,
    cognito: Arc<CognitoResolver>,
    http: portcullis_verify::client::HttpClient,
    state_dir: std::path::PathBuf,
    /// The listeners being served, by slot (a removed listener leaves `None`, so the slots of
    /// the others, which connections and login states name, never move).
    slots: tokio::sync::Mutex<Vec<Option<Slot>>>,
    /// Global shutdown, for listeners started by a reload.
    shutdown: watch::Receiver<bool>,
}

/// A listener being served.
struct Slot {
    protocol: Protocol,
    address: String,
    /// The configured port (0: the OS chose `bound`).
    port: u16,
    bound: SocketAddr,
    resolver: Option<Arc<tls::SniResolver>>,
    /// Stops this listener (a reload removed it); its connections close gracefully.
    stop: Arc<watch::Sender<bool>>,
}

/// Starts serving one bound listener in its slot; it stops on global shutdown or its own stop.
fn serve_slot(
    tcp: TcpListener,
    slot: usize,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    mut global: watch::Receiver<bool>,
) -> (Arc<watch::Sender<bool>>, tokio::task::JoinHandle<()>) {
    let (stop, rx) = watch::channel(*global.borrow());
    let stop = Arc::new(stop);
    let port = tcp.local_addr().map_or(0, |a| a.port());
    let forward = stop.clone();
    tokio::spawn(async move {
        // Global shutdown stops every listener; a stop of its own ends this task too.
        tokio::select! {
            _ = global.changed() => { forward.send_replace(true); }
            _ = forward.closed() => {}
        }
    });
    let task = tokio::spawn(listener::run(tcp, slot, port, tls, shared, rx));
    (stop, task)
}

impl Running {
    /// Applies a new (validated) config by swapping the snapshot whole: a request sees the old
    /// config or the new one, never a mix. Listeners are matched by address and port: new ones
    /// are bound before the swap, removed ones stop after it (their connections close
    /// gracefully), certificates are replaced. On any error the running config stays.
    pub async fn reload(&self, config: &Config) -> Result<(), ReloadError> {
        let c = &self.reload;
        let mut slots = c.slots.lock().await;
        // Place each listener of the new config: its running slot, or a new one bound now.
        let mut placement = Vec::new();
        let mut fresh = Vec::new();
        let mut kept = vec![false; slots.len()];
        for (i, l) in config.listeners.iter().enumerate() {
            let found = slots.iter().enumerate().position(|(j, s)| {
                !kept[j]
                    && s.as_ref()
                        .is_some_and(|s| s.address == l.address && s.port == l.port)
            });
            match found.and_then(|j| slots[j].as_ref().map(|s| (j, s))) {
                Some((j, s)) => {
                    if s.protocol != l.protocol {
                        return Err(ReloadError::Protocol {
                            index: i,
                            address: l.address.clone(),
                            port: l.port,
                        });
                    }
                    kept[j] = true;
                    placement.push((j, s.bound.port()));
                }
                None => {
                    let addr = format!("{}:{}", l.address, l.port);
                    let tcp = match TcpListener::bind(&addr).await {
                        Ok(t) => t,
                        Err(source) => {
                            return Err(ReloadError::Bind {
                                index: i,
                                addr,
                                source,
                            });
                        }
                    };
                    let bound = match tcp.local_addr() {
                        Ok(b) => b,
                        Err(source) => {
                            return Err(ReloadError::LocalAddr {
                                index: i,
                                addr,
                                source,
                            });
                        }
                    };
                    let slot = slots.len() + fresh.len();
                    placement.push((slot, bound.port()));
                    fresh.push((i, slot, tcp, bound));
                }
            }
        }
        // Certificates next: a listener whose files do not load refuses the whole reload.
        let mut certs = Vec::new();
        for (i, l) in config.listeners.iter().enumerate() {
            certs.push(match l.protocol {
                Protocol::HTTPS => {
                    Some(tls::load_listener_certs(&c.state_dir, l, i).map_err(BuildError::from)?)
                }
                Protocol::HTTP => None,
            });
        }
        let mut acceptors = std::collections::HashMap::new();
        for (i, _, _, _) in &fresh {
            if let Some(set) = certs[*i].take() {
                let (cfg, resolver) = tls::server_config(set, self.shared.http2)
                    .map_err(|source| BuildError::Tls { index: *i, source })?;
                acceptors.insert(*i, (tokio_rustls::TlsAcceptor::from(cfg), resolver));
            }
        }
        let discovered = discover_all(config, &c.http)
            .await
            .map_err(BuildError::from)?;
        let snapshot = snapshot::compile(
            config,
            &placement,
            &c.identity,
            &self.shared.clock,
            c.cognito.as_ref(),
            &c.http,
            &discovered,
            Some(&self.shared.snapshot.load()),
        )
        .map_err(BuildError::from)?;
        // Nothing can fail from here on.
        for tg in snapshot.target_groups.values() {
            health_check::start(tg);
            tg.start_draining();
        }
        let old = self.shared.snapshot.swap(Arc::new(snapshot));
        // Groups the new config dropped drain all their targets.
        for (name, tg) in &old.target_groups {
            if !config.target_groups.iter().any(|t| &t.name == name) {
                tg.drain_all();
            }
        }
        for ((slot, _), set) in placement.iter().zip(certs) {
            if let (Some(Some(s)), Some(set)) = (slots.get(*slot), set)
                && let Some(r) = &s.resolver
            {
                r.replace(set);
            }
        }
        for (j, keep) in kept.iter().enumerate() {
            if !keep && let Some(s) = slots[j].take() {
                tracing::info!(listener = %s.bound, "listener removed by reload; closing its connections");
                s.stop.send_replace(true);
            }
        }
        for (i, slot, tcp, bound) in fresh {
            let l = &config.listeners[i];
            let (tls, resolver) = match acceptors.remove(&i) {
                Some((a, r)) => (Some(a), Some(r)),
                None => (None, None),
            };
            let (stop, task) = serve_slot(tcp, slot, tls, self.shared.clone(), c.shutdown.clone());
            self.listener_tasks.lock().await.push(task);
            tracing::info!(listener = %bound, "listener added by reload");
            slots.push(Some(Slot {
                protocol: l.protocol,
                address: l.address.clone(),
                port: l.port,
                bound,
                resolver,
                stop,
            }));
        }
        Ok(())
    }

    /// The addresses of the listeners being served (they change with reloads), in slot order:
    /// the first config's listeners, then those reloads added.
    pub async fn listener_addrs(&self) -> Vec<SocketAddr> {
        self.reload
            .slots
            .lock()
            .await
            .iter()
            .flatten()
            .map(|s| s.bound)
            .collect()
    }

    /// Stops accepting, drains in-flight requests, and returns.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
        for t in self.listener_tasks.lock().await.drain(..) {
            let _ = t.await;
        }
    }
}

/// Reads the discovery documents of `authenticate-oidc` actions that give no endpoints.
async fn discover_all(
    config: &Config,
    http: &portcullis_verify::client::HttpClient,
) -> Result<std::collections::HashMap<String, portcullis_auth::oidc::Discovery>, DiscoveryFailed> {
    let mut discovered = std::collections::HashMap::new();
    for (i, l) in config.listeners.iter().enumerate() {
        for a in l
            .rules
            .iter()
            .flat_map(|r| r.actions.iter())
            .chain(l.default_actions.iter())
        {
            if let portcullis_config::Action::AuthenticateOidc(o) = a
                && o.authorization_endpoint.is_none()
                && !discovered.contains_key(&o.issuer)
            {
                let d = portcullis_auth::oidc::discover(http, &o.issuer)
                    .await
                    .map_err(|source| DiscoveryFailed {
                        index: i,
                        issuer: o.issuer.clone(),
                        source,
                    })?;
                discovered.insert(o.issuer.clone(), d);
            }
        }
    }
    Ok(discovered)
}

/// The load balancer's names and ARNs (its id is generated once into the state dir).
pub fn identity(config: &Config) -> Result<Identity, StartError> {
    let lb = &config.load_balancer;
    Ok(Identity {
        arn_prefix: format!(
            "arn:aws:elasticloadbalancing:{}:{}",
            lb.region, lb.account_id
        ),
        id: load_id(&lb.state_dir, lb.id.as_deref())?,
        name: lb.name.clone(),
    })
}

fn load_id(state_dir: &std::path::Path, configured: Option<&str>) -> Result<String, StartError> {
    if let Some(id) = configured {
        return Ok(id.to_ascii_lowercase());
    }
    let path = state_dir.join("lb").join("id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim().to_string();
        if id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(id);
        }
        return Err(StartError::State(format!(
            "{}: not 16 hexadecimal digits",
            path.display()
        )));
    }
    let mut raw = [0u8; 8];
    SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| StartError::State("system random failed".into()))?;
    let id = hex::encode(raw);
    portcullis_config::state_dir::create_dir_all(&state_dir.join("lb"))
        .map_err(|e| StartError::State(format!("{}: {e}", state_dir.display())))?;
    portcullis_config::state_dir::write_new(&path, id.as_bytes())
        .map_err(|e| StartError::State(format!("{}: {e}", path.display())))?;
    Ok(id)
}

/// Binds every listener and starts serving a validated config.
/// `prebound[i]`, when given, is used instead of binding listener `i` (tests bind port 0 first).
pub async fn start(
    config: &Config,
    cognito: Arc<CognitoResolver>,
    mut prebound: Vec<Option<TcpListener>>,
) -> Result<Running, StartError> {
    let lb = &config.load_balancer;
    let keys = AuthKeys::load_or_generate(&lb.state_dir.join("lb"))
        .map_err(|e| StartError::State(e.to_string()))?;
    let identity = identity(config)?;
    let reload_identity = identity.clone();
    let signer_arn = identity.arn();
    let kid = keys.claims.kid.clone();
    let sticky_key = keys.mac.clone();
    let pem = keys.claims.public_pem();
    let retired = keys.retired.clone();
    let metrics = lb.admin.as_ref().map(|_| Arc::new(metrics::Metrics::new()));
    // One clock for the balancer: its target groups and its sessions move together in tests.
    let clock = Arc::new(portcullis_core::Clock::default());
    let mut authenticator = Authenticator::new(keys, signer_arn.clone()).with_clock(clock.clone());
    if let Some(m) = &metrics {
        authenticator = authenticator.with_observer(m.clone());
    }
    let auth = Arc::new(authenticator);

    let mut bound = Vec::new();
    let mut resolvers = Vec::new();
    for (index, l) in config.listeners.iter().enumerate() {
        let addr = format!("{}:{}", l.address, l.port);
        let tcp = match prebound.get_mut(index).and_then(Option::take) {
            Some(t) => t,
            None => TcpListener::bind(&addr)
                .await
                .map_err(|error| StartError::Bind {
                    index,
                    addr: addr.clone(),
                    error,
                })?,
        };
        let local = tcp
            .local_addr()
            .map_err(|error| StartError::Bind { index, addr, error })?;
        let tls = if l.protocol == Protocol::HTTPS {
            let certs =
                tls::load_listener_certs(&lb.state_dir, l, index).map_err(BuildError::from)?;
            let (cfg, resolver) = tls::server_config(certs, lb.http2_enabled)
                .map_err(|source| BuildError::Tls { index, source })?;
            resolvers.push(Some(resolver));
            Some(tokio_rustls::TlsAcceptor::from(cfg))
        } else {
            resolvers.push(None);
            None
        };
        bound.push((tcp, local, tls));
    }
    let placement: Vec<(usize, u16)> = bound
        .iter()
        .enumerate()
        .map(|(i, (_, a, _))| (i, a.port()))
        .collect();
    let http = portcullis_verify::client::http_client();
    let discovered = discover_all(config, &http)
        .await
        .map_err(BuildError::from)?;
    let snapshot = snapshot::compile(
        config,
        &placement,
        &identity,
        &clock,
        cognito.as_ref(),
        &http,
        &discovered,
        None,
    )
    .map_err(BuildError::from)?;
    for tg in snapshot.target_groups.values() {
        health_check::start(tg);
    }
    let access_log = match lb.access_log.as_deref() {
        None => access_log::AccessLog::disabled(),
        Some(t) => access_log::AccessLog::open(t)
            .map_err(|e| StartError::State(format!("load_balancer.access_log: {t}: {e}")))?,
    };
    let shared = Arc::new(Shared {
        snapshot: ArcSwap::from_pointee(snapshot),
        auth,
        sticky_key,
        upstream: upstream::Upstreams::new(),
        access_log,
        identity,
        idle_timeout: Duration::from_secs(lb.idle_timeout_seconds),
        client_keep_alive: Duration::from_secs(lb.client_keep_alive_seconds),
        http2: lb.http2_enabled,
        metrics: metrics.clone(),
        clock,
    });
    let (tx, rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut listener_tasks = Vec::new();
    let mut listeners = Vec::new();
    let mut slots = Vec::new();
    for (index, ((tcp, local, tls), resolver)) in bound.into_iter().zip(resolvers).enumerate() {
        listeners.push(local);
        let l = &config.listeners[index];
        let (stop, task) = serve_slot(tcp, index, tls, shared.clone(), rx.clone());
        listener_tasks.push(task);
        slots.push(Some(Slot {
            protocol: l.protocol,
            address: l.address.clone(),
            port: l.port,
            bound: local,
            resolver,
            stop,
        }));
    }
    let admin = match &lb.admin {
        Some(a) => {
            let tcp =
                TcpListener::bind(&a.listen)
                    .await
                    .map_err(|error| StartError::AdminBind {
                        addr: a.listen.clone(),
                        error,
                    })?;
            let addr = tcp.local_addr().map_err(|error| StartError::AdminBind {
                addr: a.listen.clone(),
                error,
            })?;
            let state = Arc::new(admin::AdminState {
                kid: kid.clone(),
                pem,
                jwks: shared.auth.signer().jwks_with(&retired).to_string(),
                retired: retired
                    .iter()
                    .map(|r| (r.kid.clone(), r.pem.clone()))
                    .collect(),
                metrics: metrics.clone(),
                shared: shared.clone(),
            });
            tasks.spawn(admin::run(tcp, state, rx.clone()));
            Some(addr)
        }
        None => None,
    };
    Ok(Running {
        listeners,
        admin,
        signer_arn,
        kid,
        shared,
        shutdown: tx,
        tasks,
        listener_tasks: tokio::sync::Mutex::new(listener_tasks),
        reload: ReloadContext {
            identity: reload_identity,
            cognito,
            http,
            state_dir: lb.state_dir.clone(),
            slots: tokio::sync::Mutex::new(slots),
            shutdown: rx,
        },
    })
}
