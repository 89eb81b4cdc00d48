//! Request bodies a retry can resend: a call whose messages are all ready when it starts (every
//! unary call, a client-streaming call with its messages already produced) is buffered up to a
//! limit, so the client stack may retry it (gRFC A44); anything still producing streams through
//! once and is never retried.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{Either, Full};

/// The request body sent: the whole call, or what was ready followed by the rest.
pub(crate) type CallBody = Either<Full<Bytes>, Prefixed>;

/// Takes what `body` has ready now, up to `max` bytes: all of it (and no trailers) → a buffered
/// body of known size; otherwise the ready prefix then the rest of the stream.
pub(crate) fn prefetch(mut body: tonic::body::Body, max: usize) -> Result<CallBody, tonic::Status> {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let mut buf = BytesMut::new();
    loop {
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(None) => return Ok(Either::Left(Full::new(buf.freeze()))),
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => {
                    buf.extend_from_slice(&data);
                    if buf.len() > max {
                        return Ok(Either::Right(Prefixed::new(buf.freeze(), None, body)));
                    }
                }
                Err(frame) => {
                    let trailers = frame.into_trailers().ok();
                    return Ok(Either::Right(Prefixed::new(buf.freeze(), trailers, body)));
                }
            },
            Poll::Ready(Some(Err(status))) => return Err(status),
            Poll::Pending => return Ok(Either::Right(Prefixed::new(buf.freeze(), None, body))),
        }
    }
}

/// A body that yields the bytes read ahead, then the rest of the original stream.
pub(crate) struct Prefixed {
    prefix: Option<Bytes>,
    trailers: Option<HeaderMap>,
    rest: tonic::body::Body,
}

impl Prefixed {
    fn new(prefix: Bytes, trailers: Option<HeaderMap>, rest: tonic::body::Body) -> Self {
        Prefixed {
            prefix: (!prefix.is_empty()).then_some(prefix),
            trailers,
            rest,
        }
    }
}

impl Body for Prefixed {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        if let Some(p) = self.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(p))));
        }
        if let Some(t) = self.trailers.take() {
            return Poll::Ready(Some(Ok(Frame::trailers(t))));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }

    fn size_hint(&self) -> SizeHint {
        // Unknown: the stack must not buffer it for a retry.
        SizeHint::default()
    }
}
