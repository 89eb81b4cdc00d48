//! [`RateLimitLayer`]: a local rate limit in front of any HTTP service.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use mesh_core::route::LocalRateLimit;
use tokio::time::Instant;
use tower::{Layer, Service};

use super::TokenBucket;
use crate::client::Body;

/// Limits the requests passed to the inner service with one token bucket.
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    bucket: Arc<TokenBucket>,
}

impl RateLimitLayer {
    /// A layer with a full bucket of `config`.
    pub fn new(config: LocalRateLimit) -> Self {
        Self {
            bucket: Arc::new(TokenBucket::new(config)),
        }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;
    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit {
            inner,
            bucket: self.bucket.clone(),
        }
    }
}

/// The service [`RateLimitLayer`] produces.
#[derive(Debug, Clone)]
pub struct RateLimit<S> {
    inner: S,
    bucket: Arc<TokenBucket>,
}

impl<S, B> Service<Request<B>> for RateLimit<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        match self.bucket.try_acquire(Instant::now()) {
            Ok(()) => Box::pin(self.inner.call(req)),
            Err(wait) => Box::pin(std::future::ready(Ok(super::limited_response(wait)))),
        }
    }
}
