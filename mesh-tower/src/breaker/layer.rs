//! [`BreakerLayer`] and the [`Breaker`] service.

use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response, StatusCode};
use tower::{Layer, Service};

use super::{CircuitBreaker, Overflow, ResponseFuture};

/// Response header naming the cap that refused a request (`max_requests`, …).
pub const OVERFLOW_HEADER: &str = "x-mesh-overflow";

/// Applies a cluster's `max_requests` to a service, answering overflow with a local 503.
///
/// Clones of the layer (and of the [`CircuitBreaker`] it was built from) share one set of
/// counters, so every service it wraps counts against the same cluster-wide cap.
#[derive(Debug, Clone)]
pub struct BreakerLayer {
    breaker: CircuitBreaker,
}

impl BreakerLayer {
    /// A layer counting against `breaker`.
    pub fn new(breaker: CircuitBreaker) -> Self {
        Self { breaker }
    }
}

impl<S> Layer<S> for BreakerLayer {
    type Service = Breaker<S>;

    fn layer(&self, inner: S) -> Breaker<S> {
        Breaker {
            inner,
            breaker: self.breaker.clone(),
        }
    }
}

/// Calls the inner service while a request slot is free; otherwise answers at once with 503,
/// `x-envoy-overloaded: true` and `x-mesh-overflow: max_requests`, as Envoy does locally.
///
/// The slot is taken in `call`, not in `poll_ready`: taking it never waits, so there is nothing
/// to reserve ahead, and a service polled ready but never called holds no slot.
#[derive(Debug, Clone)]
pub struct Breaker<S> {
    inner: S,
    breaker: CircuitBreaker,
}

impl<S> Breaker<S> {
    /// The breaker whose counters this service uses.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Breaker<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: Default,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        match self.breaker.try_request() {
            Ok(permit) => ResponseFuture::called(self.inner.call(req), permit),
            Err(overflow) => {
                tracing::debug!(limit = overflow.limit.as_str(), "circuit breaker overflow");
                ResponseFuture::overflow(overflow_response(overflow))
            }
        }
    }
}

/// Envoy's local answer to an overflow: 503 with `x-envoy-overloaded: true`, plus
/// `x-mesh-overflow: <limit>`.
pub fn overflow_response<B: Default>(overflow: Overflow) -> Response<B> {
    let mut res = Response::new(B::default());
    *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let h = res.headers_mut();
    h.insert("x-envoy-overloaded", HeaderValue::from_static("true"));
    h.insert(
        OVERFLOW_HEADER,
        HeaderValue::from_static(overflow.limit.as_str()),
    );
    res.extensions_mut().insert(overflow);
    res
}
