//! Upgraded connections (WebSocket): once the target answers 101, the client's and the target's
//! connections are joined byte for byte until either side closes. Rules and authentication ran on
//! the upgrade request; nothing inspects the frames after that, as at ALB.

use crate::h1::client::UpstreamIo;
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// The target's side of an upgrade, carried from the proxy to the client's connection loop in
/// the 101's extensions (which must be `Clone`, hence the shared slot).
#[derive(Clone)]
pub struct TargetSide(Arc<Mutex<Option<(UpstreamIo, Bytes)>>>);

impl TargetSide {
    /// The target's connection and what it sent after its 101 head.
    pub fn new(io: UpstreamIo, leftover: Bytes) -> TargetSide {
        TargetSide(Arc::new(Mutex::new(Some((io, leftover)))))
    }

    /// Takes the connection (once).
    pub fn take(&self) -> Option<(UpstreamIo, Bytes)> {
        self.0.lock().ok()?.take()
    }
}

/// Copies both ways between the client's and the target's connections, after passing on what
/// each had sent beyond the upgrade's head.
pub async fn splice<C>(
    mut client: C,
    client_leftover: Bytes,
    mut target: UpstreamIo,
    target_leftover: Bytes,
) where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let r = async {
        if !client_leftover.is_empty() {
            target.write_all(&client_leftover).await?;
        }
        if !target_leftover.is_empty() {
            client.write_all(&target_leftover).await?;
        }
        tokio::io::copy_bidirectional(&mut client, &mut target).await
    }
    .await;
    if let Err(e) = r {
        tracing::debug!(error = %e, "upgraded connection ended");
    }
}
