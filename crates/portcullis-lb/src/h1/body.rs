//! The bodies on the request path: a client's request body (from hyper's HTTP/2 server or from
//! the HTTP/1 connection loop) and a target's response body (from hyper's HTTP/2 client or from
//! the HTTP/1 pool). Enums rather than boxes, so a request without a body allocates nothing.

use crate::BoxError;
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::{mpsc, oneshot};

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

impl Body for RequestBody {
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

/// A target's response body.
pub enum UpstreamBody {
    /// An HTTP/2 stream's body (hyper).
    Hyper(Incoming),
    /// An HTTP/1 body read whole with the head (its connection is back in the pool).
    Full(Option<Bytes>),
    /// An HTTP/1 body still arriving on its connection.
    Streaming(Box<super::client::Streaming>),
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            UpstreamBody::Hyper(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            UpstreamBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            UpstreamBody::Streaming(s) => s.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Hyper(b) => b.is_end_stream(),
            UpstreamBody::Full(b) => b.is_none(),
            UpstreamBody::Streaming(s) => s.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Hyper(b) => b.size_hint(),
            UpstreamBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            UpstreamBody::Streaming(s) => s.size_hint(),
        }
    }
}
