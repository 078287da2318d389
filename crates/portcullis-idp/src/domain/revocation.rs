//! Sign-in sessions that end (sign-out, disable, delete, password change): the events a load
//! balancer in front of the pool uses to refuse them on their next request.

use tokio::sync::broadcast;

/// One ended sign-in session, or every session of a user up to a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEnded {
    /// The pool's issuer (the `iss` of its tokens).
    pub issuer: String,
    /// The session's `sid` claim; `None` ends every session of `sub` that began at or before `at`.
    pub sid: Option<String>,
    /// The user's `sub`.
    pub sub: String,
    /// When it ended (epoch seconds, pool clock).
    pub at: i64,
}

/// How many events a slow subscriber may fall behind before it misses some.
const FEED_CAPACITY: usize = 4096;

/// The pool's fan-out of [`SessionEnded`] events to in-process subscribers.
pub struct Feed {
    tx: broadcast::Sender<SessionEnded>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            tx: broadcast::channel(FEED_CAPACITY).0,
        }
    }
}

impl Feed {
    /// A new receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<SessionEnded> {
        self.tx.subscribe()
    }

    /// Hands `event` to every subscriber (none is fine).
    pub fn publish(&self, event: SessionEnded) {
        let _ = self.tx.send(event);
    }
}
