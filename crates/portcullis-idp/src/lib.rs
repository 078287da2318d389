//! A Cognito-user-pool-shaped OpenID Connect identity provider: pools from config, a SQLite store,
//! the hosted sign-in page and the OAuth endpoints at Cognito's paths.

pub mod admin_api;
pub mod domain;
pub mod error;
pub mod http;
pub mod metrics;
pub mod store;

pub use domain::pool::Pool;
pub use store::{PgStore, SqliteStore, Store};

use std::sync::Arc;
use tokio::net::TcpListener;

/// Catalog ticks between sweeps of expired sign-in sessions (150 × 2 s = 5 minutes).
const SESSION_SWEEP_TICKS: u64 = 150;

/// Serves one pool on `listener` until `shutdown` resolves: HTTPS with `tls` (its certificates,
/// SNI and reload are the caller's), else plain HTTP.
pub async fn serve(
    listener: TcpListener,
    pool: Arc<Pool>,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Clients and resource servers changed by other nodes are picked up within RELOAD_INTERVAL;
    // argon2 memory unused for hashing::IDLE_RELEASE_MS is freed on the same tick.
    let weak = Arc::downgrade(&pool);
    let reloader = tokio::spawn(async move {
        let mut tick = tokio::time::interval(domain::catalog::RELOAD_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks: u64 = 0;
        loop {
            tick.tick().await;
            let Some(pool) = weak.upgrade() else { break };
            pool.hasher.release_idle();
            // Every 5 minutes: forget expired sign-in sessions and the ends nobody needs.
            ticks += 1;
            if ticks.is_multiple_of(SESSION_SWEEP_TICKS)
                && let Err(e) = pool.ended_sessions().await
            {
                tracing::warn!(pool = %pool.name, error = %e, "cannot sweep ended sessions");
            }
            if let Err(e) = pool.reload_catalog().await {
                tracing::warn!(pool = %pool.name, error = %e, "cannot reload clients; serving the last ones read");
            }
        }
    });
    // Connection info gives the rate limits their client address (`http::client_ip::ClientIp`).
    let app = http::router(pool).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let r = match tls {
        Some(config) => {
            // `tap_io` makes axum hand the TLS listener's peer address to `ConnectInfo`.
            use axum::serve::ListenerExt;
            let tls = http::tls_listener::TlsListener::new(listener, config)?.tap_io(|_| ());
            axum::serve(tls, app).with_graceful_shutdown(shutdown).await
        }
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    };
    reloader.abort();
    r
}
