//! Request bodies that can be sent more than once (retries, mirrors) when they are small enough.

use bytes::Bytes;
use http_body_util::BodyExt;

use super::body::{self, Body, BoxError};

/// A request body: buffered (replayable) or a one-shot stream.
pub(crate) enum Replay {
    Buffered(Bytes),
    Stream(Option<Body>),
}

impl Replay {
    /// Buffers `b` when its size is known to be at most `max` bytes.
    pub(crate) async fn new<B>(b: B, max: usize) -> Result<Replay, BoxError>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let hint = b.size_hint();
        if hint.upper().is_some_and(|u| u <= max as u64) {
            let bytes = b.collect().await.map_err(Into::into)?.to_bytes();
            Ok(Replay::Buffered(bytes))
        } else {
            Ok(Replay::Stream(Some(body::boxed(b))))
        }
    }

    /// True when the body can be sent again.
    pub(crate) fn replayable(&self) -> bool {
        matches!(self, Replay::Buffered(_))
    }

    /// The length of a buffered body.
    pub(crate) fn len(&self) -> Option<u64> {
        match self {
            Replay::Buffered(b) => Some(b.len() as u64),
            Replay::Stream(_) => None,
        }
    }

    /// The body for one attempt (a stream can be taken once).
    pub(crate) fn take(&mut self) -> Option<Body> {
        match self {
            Replay::Buffered(b) if b.is_empty() => Some(body::empty()),
            Replay::Buffered(b) => Some(body::full(b.clone())),
            Replay::Stream(s) => s.take(),
        }
    }
}
