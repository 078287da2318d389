//! Upgraded connections (WebSocket): once the target answers 101, the client's and the target's
//! connections are joined byte for byte until either side closes. Rules and authentication ran on
//! the upgrade request; nothing inspects the frames after that, as at ALB.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

/// Copies both ways between the two upgraded connections.
pub async fn splice(client: OnUpgrade, target: OnUpgrade) {
    let (client, target) = match tokio::join!(client, target) {
        (Ok(c), Ok(t)) => (c, t),
        (c, t) => {
            tracing::debug!(
                client = c.is_ok(),
                target = t.is_ok(),
                "upgrade did not complete"
            );
            return;
        }
    };
    let (mut c, mut t) = (TokioIo::new(client), TokioIo::new(target));
    if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut t).await {
        tracing::debug!(error = %e, "upgraded connection ended");
    }
}
