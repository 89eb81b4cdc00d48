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
    // The usual call is one data frame: kept as is, copied only when a second one follows.
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    let ahead = |first: &mut Option<Bytes>, buf: &mut BytesMut| match first.take() {
        Some(f) if buf.is_empty() => f,
        Some(f) => {
            let mut all = BytesMut::with_capacity(f.len() + buf.len());
            all.extend_from_slice(&f);
            all.extend_from_slice(buf);
            all.freeze()
        }
        None => std::mem::take(buf).freeze(),
    };
    loop {
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(None) => {
                return Ok(Either::Left(Full::new(ahead(&mut first, &mut buf))));
            }
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) if first.is_none() && buf.is_empty() => {
                    let len = data.len();
                    first = Some(data);
                    if len > max {
                        let prefix = ahead(&mut first, &mut buf);
                        return Ok(Either::Right(Prefixed::new(prefix, None, body)));
                    }
                }
                Ok(data) => {
                    buf.extend_from_slice(&data);
                    let len = buf.len() + first.as_ref().map_or(0, Bytes::len);
                    if len > max {
                        let prefix = ahead(&mut first, &mut buf);
                        return Ok(Either::Right(Prefixed::new(prefix, None, body)));
                    }
                }
                Err(frame) => {
                    let trailers = frame.into_trailers().ok();
                    let prefix = ahead(&mut first, &mut buf);
                    return Ok(Either::Right(Prefixed::new(prefix, trailers, body)));
                }
            },
            Poll::Ready(Some(Err(status))) => return Err(status),
            Poll::Pending => {
                let prefix = ahead(&mut first, &mut buf);
                return Ok(Either::Right(Prefixed::new(prefix, None, body)));
            }
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

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, StreamBody};

    use super::*;

    fn frames(parts: &[&'static [u8]]) -> tonic::body::Body {
        let frames: Vec<Result<Frame<Bytes>, tonic::Status>> = parts
            .iter()
            .map(|p| Ok(Frame::data(Bytes::from_static(p))))
            .collect();
        tonic::body::Body::new(StreamBody::new(tokio_stream::iter(frames)))
    }

    async fn bytes(b: CallBody) -> Bytes {
        b.collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn a_ready_call_is_buffered_with_its_size_known() {
        for parts in [&[b"hello".as_slice()][..], &[b"hel", b"lo"]] {
            let body = prefetch(frames(parts), 1024).unwrap();
            assert!(matches!(body, Either::Left(_)), "buffered");
            assert_eq!(body.size_hint().exact(), Some(5));
            assert_eq!(bytes(body).await, "hello");
        }
    }

    #[tokio::test]
    async fn a_call_over_the_limit_streams_with_nothing_lost() {
        let body = prefetch(frames(&[b"0123", b"4567", b"89"]), 5).unwrap();
        assert!(matches!(body, Either::Right(_)), "streamed");
        assert_eq!(body.size_hint().exact(), None, "never buffered for a retry");
        assert_eq!(bytes(body).await, "0123456789");
    }
}
