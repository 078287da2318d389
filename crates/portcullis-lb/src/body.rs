//! The bodies on the request path, which every layer shares: the response [`Body`] the balancer
//! sends, the [`BoxError`] that ends a body early, and a client's request body (from hyper's
//! HTTP/2 server or from the HTTP/1 connection loop). An enum rather than a box, so a request
//! without a body allocates nothing. A target's response body is `h1::client::UpstreamBody`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::{mpsc, oneshot};

/// An error that ends a response body early (a target failed, or its drain ended).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of every response we send.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// A body of bytes already in hand.
pub fn full(b: Bytes) -> Body {
    Full::new(b).map_err(|never| match never {}).boxed_unsync()
}

/// A client's request body.
pub enum RequestBody {
    /// No body.
    Empty,
    /// An HTTP/2 stream's body (hyper).
    Hyper(Incoming),
    /// An HTTP/1 body that the connection loop reads and hands over.
    H1(ChannelBody),
}

/// An HTTP/1 request body fed by the connection loop; its first poll asks the loop to start
/// reading (so `100 Continue` is sent only when the body is wanted).
pub struct ChannelBody {
    pub(crate) rx: mpsc::Receiver<Result<Frame<Bytes>, BoxError>>,
    pub(crate) want: Option<oneshot::Sender<()>>,
    pub(crate) length: Option<u64>,
}

impl hyper::body::Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            RequestBody::Empty => Poll::Ready(None),
            RequestBody::Hyper(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            RequestBody::H1(b) => {
                if let Some(w) = b.want.take() {
                    let _ = w.send(());
                }
                b.rx.poll_recv(cx)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Empty => true,
            RequestBody::Hyper(b) => b.is_end_stream(),
            RequestBody::H1(b) => b.length == Some(0),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Empty => SizeHint::with_exact(0),
            RequestBody::Hyper(b) => b.size_hint(),
            RequestBody::H1(b) => b
                .length
                .map_or_else(SizeHint::default, SizeHint::with_exact),
        }
    }
}
