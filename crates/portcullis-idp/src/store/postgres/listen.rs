//! Every node's `LISTEN` for sessions other nodes end: one dedicated connection per store, its
//! notifications published on the matching pool's feed. After a dropped connection it reconnects
//! with backoff and re-reads the log from a little before the last moment it knew it was current,
//! so no end is lost (one may arrive twice). A notification is a hint: it is published only when
//! the log has its row (any database user can `NOTIFY`; writing the log takes the store's role).

use crate::domain::revocation::{Feed, SessionEnded};
use crate::store::sessions::{LOGOUT_END_PREFIX, NOTIFY_CHANNEL};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_postgres::{AsyncMessage, NoTls};

/// First wait after a dropped connection; doubled up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A connection up this long resets the backoff.
const STABLE: Duration = Duration::from_secs(10);
/// How far before the last known-current moment a catch-up re-reads (transactions noted earlier
/// may commit later).
const CATCH_UP_SLACK_MS: i64 = 10_000;
/// Notifications waiting to be published (the connection is not read while it is full).
const QUEUE: usize = 1024;
/// How often an idle listener checks whether its store is gone.
const IDLE_CHECK: Duration = Duration::from_secs(5);

/// What an end's `NOTIFY` payload and log row say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Announced {
    /// The pool's id.
    pub pool: String,
    /// The ended session, or `None` for every session of `sub`.
    pub sid: Option<String>,
    /// The user.
    pub sub: String,
    /// When it ended (the ending pool's clock).
    pub at: i64,
    /// The node that ended it (it published the end itself).
    pub node: String,
    /// The database's time when it was logged (ms).
    pub noted_ms: i64,
}

impl Announced {
    /// The `NOTIFY` payload (JSON; far below PostgreSQL's 8000-byte limit for ids this long).
    pub(super) fn payload(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a payload; `None` for anything else.
    fn parse(payload: &str) -> Option<Announced> {
        serde_json::from_str(payload).ok()
    }
}

/// The listener's state, for tests and operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerState {
    /// Whether the `LISTEN` connection is up.
    pub connected: bool,
    /// Connections lost so far.
    pub reconnects: u64,
    /// Ends published from the log after a reconnection (not from a notification).
    pub caught_up: u64,
}

/// Pool id → the issuer and feed of each pool of this process on it.
type Feeds = HashMap<String, Vec<(String, Weak<Feed>)>>;

/// The feeds of the pools on this store, and the state of the task that feeds them.
pub struct Listener {
    feeds: Mutex<Feeds>,
    started: AtomicBool,
    hold: watch::Sender<bool>,
    connected: AtomicBool,
    reconnects: AtomicU64,
    caught_up: AtomicU64,
}

impl Default for Listener {
    fn default() -> Self {
        Listener {
            feeds: Mutex::new(HashMap::new()),
            started: AtomicBool::new(false),
            hold: watch::channel(false).0,
            connected: AtomicBool::new(false),
            reconnects: AtomicU64::new(0),
            caught_up: AtomicU64::new(0),
        }
    }
}

impl Listener {
    /// Publishes `pool`'s ends from other nodes on `feed`; starts the task on first use.
    pub fn watch(
        this: &Arc<Listener>,
        cfg: &tokio_postgres::Config,
        node: &str,
        pool: &str,
        issuer: &str,
        feed: Weak<Feed>,
    ) {
        this.feeds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(pool.to_string())
            .or_default()
            .push((issuer.to_string(), feed));
        if this.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::error!("no async runtime: ended sessions of other nodes will not be heard");
            return;
        };
        let mut cfg = cfg.clone();
        cfg.application_name(format!("portcullis-listen-{node}"));
        rt.spawn(run(Arc::downgrade(this), cfg, node.to_string()));
    }

    /// The state now.
    pub fn state(&self) -> ListenerState {
        ListenerState {
            connected: self.connected.load(Ordering::SeqCst),
            reconnects: self.reconnects.load(Ordering::SeqCst),
            caught_up: self.caught_up.load(Ordering::SeqCst),
        }
    }

    /// While held, a lost connection is not re-established (tests use it to end sessions while
    /// a node is deaf).
    pub fn hold(&self, hold: bool) {
        self.hold.send_replace(hold);
    }

    fn publish(&self, a: &Announced) {
        // A logout-token end names its issuer after the prefix; its feed is kept under the prefix.
        let (key, named) = match a.pool.strip_prefix(LOGOUT_END_PREFIX) {
            Some(issuer) => (LOGOUT_END_PREFIX, Some(issuer)),
            None => (a.pool.as_str(), None),
        };
        let mut feeds = self.feeds.lock().unwrap_or_else(|p| p.into_inner());
        let Some(list) = feeds.get_mut(key) else {
            return;
        };
        list.retain(|(issuer, feed)| match feed.upgrade() {
            Some(f) => {
                f.publish(SessionEnded {
                    issuer: named.unwrap_or(issuer).to_string(),
                    sid: a.sid.clone(),
                    sub: a.sub.clone(),
                    at: a.at,
                });
                true
            }
            None => false,
        });
    }
}

/// Listens until the store is dropped, reconnecting with backoff.
async fn run(me: Weak<Listener>, cfg: tokio_postgres::Config, node: String) {
    let mut backoff = MIN_BACKOFF;
    // The database time (ms) up to which this node is known to have heard every end.
    let mut cursor: Option<i64> = None;
    loop {
        let Some(mut hold) = me.upgrade().map(|l| l.hold.subscribe()) else {
            return;
        };
        while *hold.borrow_and_update() {
            if hold.changed().await.is_err() {
                return;
            }
        }
        drop(hold);
        let began = Instant::now();
        match listen(&me, &cfg, &node, &mut cursor).await {
            Ok(Done::StoreGone) => return,
            Ok(Done::Lost) => {
                tracing::warn!("session-end listener lost its connection; reconnecting")
            }
            Err(e) => tracing::warn!(error = %e, "session-end listener cannot connect; retrying"),
        }
        let Some(l) = me.upgrade() else { return };
        if l.connected.swap(false, Ordering::SeqCst) {
            l.reconnects.fetch_add(1, Ordering::SeqCst);
        }
        drop(l);
        if began.elapsed() >= STABLE {
            backoff = MIN_BACKOFF;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

enum Done {
    StoreGone,
    Lost,
}

/// One connection's life: `LISTEN`, catch up from the log, then publish notifications.
async fn listen(
    me: &Weak<Listener>,
    cfg: &tokio_postgres::Config,
    node: &str,
    cursor: &mut Option<i64>,
) -> Result<Done, tokio_postgres::Error> {
    let (client, mut conn) = cfg.connect(NoTls).await?;
    let (tx, mut rx) = mpsc::channel::<String>(QUEUE);
    // Polling the connection drives the client's queries too, and yields the notifications.
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) if n.channel() == NOTIFY_CHANNEL => {
                    if tx.send(n.payload().to_string()).await.is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "session-end listener connection failed");
                    break;
                }
                None => break,
            }
        }
    });
    let result = async {
        client
            .batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}"))
            .await?;
        let now_ms: i64 = client
            .query_one(
                "SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint",
                &[],
            )
            .await?
            .get(0);
        let Some(l) = me.upgrade() else {
            return Ok(Done::StoreGone);
        };
        if let Some(from) = *cursor {
            // Ends noted while this node was deaf: the log has them.
            let rows = client
                .query(
                    "SELECT pool_id, sid, sub, ended_at, node, noted_ms FROM session_ends
                     WHERE noted_ms >= $1 AND node <> $2 ORDER BY noted_ms",
                    &[&(from - CATCH_UP_SLACK_MS), &node],
                )
                .await?;
            for r in rows {
                l.publish(&Announced {
                    pool: r.get(0),
                    sid: r.get(1),
                    sub: r.get(2),
                    at: r.get(3),
                    node: r.get(4),
                    noted_ms: r.get(5),
                });
                l.caught_up.fetch_add(1, Ordering::SeqCst);
            }
        }
        *cursor = Some(cursor.map_or(now_ms, |c| c.max(now_ms)));
        l.connected.store(true, Ordering::SeqCst);
        drop(l);
        loop {
            tokio::select! {
                m = rx.recv() => {
                    let Some(payload) = m else { return Ok(Done::Lost) };
                    let Some(a) = Announced::parse(&payload) else {
                        tracing::warn!("unreadable session-end notification ignored");
                        continue;
                    };
                    if a.node == node {
                        continue; // this node published it when it ended it
                    }
                    // Any database user may NOTIFY: only an end the log holds is believed.
                    if !logged(&client, &a).await? {
                        tracing::warn!("session-end notification not in the log ignored");
                        continue;
                    }
                    *cursor = Some(cursor.map_or(a.noted_ms, |c| c.max(a.noted_ms)));
                    let Some(l) = me.upgrade() else { return Ok(Done::StoreGone) };
                    l.publish(&a);
                }
                _ = tokio::time::sleep(IDLE_CHECK) => {
                    if me.strong_count() == 0 {
                        return Ok(Done::StoreGone);
                    }
                }
            }
        }
    }
    .await;
    driver.abort();
    result
}

/// Whether the log has the end a notification announces (its transaction has committed by the
/// time the notification arrives).
async fn logged(
    client: &tokio_postgres::Client,
    a: &Announced,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT 1 FROM session_ends WHERE noted_ms = $1 AND pool_id = $2 AND node = $3
             AND sub = $4 AND sid IS NOT DISTINCT FROM $5 AND ended_at = $6 LIMIT 1",
            &[&a.noted_ms, &a.pool, &a.node, &a.sub, &a.sid, &a.at],
        )
        .await?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::Announced;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn payloads_round_trip(pool in "[ -~]{0,40}", sid in proptest::option::of("[A-Za-z0-9_-]{0,64}"),
                               sub in ".{0,40}", at in any::<i64>(), node in "[A-Za-z0-9_-]{0,12}",
                               noted_ms in any::<i64>()) {
            let a = Announced { pool, sid, sub, at, node, noted_ms };
            prop_assert_eq!(Announced::parse(&a.payload()), Some(a));
        }

        #[test]
        fn any_payload_is_read_or_refused_without_panicking(s in ".{0,200}") {
            let _ = Announced::parse(&s);
        }
    }
}
