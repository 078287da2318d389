//! OIDC Back-Channel Logout 1.0, sending side: when a sign-in session ends, each client that
//! received tokens in it and registered a `backchannel_logout_uri` gets a logout token by POST.
//! Sending is in the background (a bounded queue; never on the API's path), with a timeout and a
//! few retries; failures are counted and logged without the token.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use portcullis_verify::client::{HttpClient, http_client};
use prometheus_client::metrics::counter::Counter;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};

/// The `events` member that makes a JWT a logout token.
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How long a logout token is valid (seconds): it is sent at once, so briefly.
pub const LOGOUT_TOKEN_LIFETIME: i64 = 120;
/// Logout tokens waiting to be sent; past it new ones are dropped (and counted).
const QUEUE: usize = 1024;
/// Deliveries in flight at once.
const IN_FLIGHT: usize = 16;
/// Attempts per logout token.
const ATTEMPTS: u32 = 3;
/// Time for one attempt (connect, send, answer).
const TIMEOUT: Duration = Duration::from_secs(5);
/// Wait before the second attempt; doubled before each later one.
const RETRY_AFTER: Duration = Duration::from_millis(500);
/// Longest answer body read (and then ignored).
const MAX_ANSWER: usize = 4096;

/// One logout token for one client.
#[derive(Debug)]
pub struct Delivery {
    /// The client's `backchannel_logout_uri`.
    pub uri: String,
    /// For logs and metrics.
    pub client_id: String,
    /// The signed logout token (never logged).
    pub token: String,
}

/// Counters of the sender (`portcullis_idp_backchannel_logout_*`).
#[derive(Clone, Default)]
pub struct Counters {
    /// Delivered (the client answered 2xx).
    pub sent: Counter,
    /// Given up after every attempt.
    pub failed: Counter,
    /// Dropped because the queue was full.
    pub dropped: Counter,
}

/// The queue of a pool's logout tokens and the task that sends them.
pub struct Sender {
    tx: Option<mpsc::Sender<Delivery>>,
    counters: Counters,
}

impl Sender {
    /// Starts the sending task (it ends when the sender is dropped); without a runtime nothing is
    /// sent.
    pub fn start(pool: &str, counters: Counters) -> Sender {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return Sender { tx: None, counters };
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        rt.spawn(run(pool.to_string(), rx, counters.clone()));
        Sender {
            tx: Some(tx),
            counters,
        }
    }

    /// Queues a logout token; never waits (a full queue drops it and counts the drop).
    pub fn send(&self, d: Delivery) {
        let Some(tx) = &self.tx else { return };
        if let Err(e) = tx.try_send(d) {
            self.counters.dropped.inc();
            let d = match e {
                mpsc::error::TrySendError::Full(d) | mpsc::error::TrySendError::Closed(d) => d,
            };
            tracing::warn!(client = %d.client_id, "back-channel logout queue full; logout token dropped");
        }
    }
}

async fn run(pool: String, mut rx: mpsc::Receiver<Delivery>, counters: Counters) {
    // The relying party's client (webpki roots; plain http for loopback URIs).
    let client = http_client();
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(d) = rx.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (client, counters, pool) = (client.clone(), counters.clone(), pool.clone());
        tokio::spawn(async move {
            let _slot = slot;
            deliver(&client, &pool, &d, &counters).await;
        });
    }
}

/// Sends one logout token, retrying a few times.
async fn deliver(client: &HttpClient, pool: &str, d: &Delivery, counters: &Counters) {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("logout_token", &d.token)
        .finish();
    let mut wait = RETRY_AFTER;
    for attempt in 1..=ATTEMPTS {
        let outcome = tokio::time::timeout(TIMEOUT, post(client, &d.uri, body.clone())).await;
        let problem = match outcome {
            Ok(Ok(status)) if (200..300).contains(&status) => {
                counters.sent.inc();
                return;
            }
            Ok(Ok(status)) => format!("answered {status}"),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".to_string(),
        };
        tracing::warn!(pool = %pool, client = %d.client_id, attempt, problem = %problem, "back-channel logout failed");
        if attempt < ATTEMPTS {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    counters.failed.inc();
}

/// Why a logout token could not be posted.
#[derive(Debug, thiserror::Error)]
enum PostError {
    /// The request could not be built from the registered URI.
    #[error("invalid URI")]
    Request(#[source] http::Error),
    /// Connecting or sending failed.
    #[error("{0}")]
    Send(#[source] Box<dyn std::error::Error + Send + Sync>),
}

async fn post(client: &HttpClient, uri: &str, body: String) -> Result<u16, PostError> {
    let req = http::Request::post(uri)
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(Full::new(Bytes::from(body)))
        .map_err(PostError::Request)?;
    let resp = client
        .request(req)
        .await
        .map_err(|e| PostError::Send(Box::new(e)))?;
    let status = resp.status().as_u16();
    // Read a little of the answer so the connection can be reused; its content is ignored.
    let mut body = resp.into_body();
    let mut read = 0;
    while read < MAX_ANSWER {
        match body.frame().await {
            Some(Ok(f)) => read += f.data_ref().map_or(0, |d| d.len()),
            _ => break,
        }
    }
    Ok(status)
}
