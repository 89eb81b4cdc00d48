//! [`BalanceLayer`]: the balancer as a tower layer. Each request goes to the endpoint the balancer
//! picks (its URI authority is replaced), and the response time feeds the balancer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response, Uri};
use tokio::time::Instant;
use tower::{Layer, Service};

use super::Balancer;

/// Why [`Balanced`] could not send a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BalanceError<E> {
    /// No endpoint may receive requests.
    #[error("no healthy endpoint")]
    NoEndpoint,
    /// The inner service failed.
    #[error(transparent)]
    Inner(E),
}

/// Sends each request to an endpoint picked by a [`Balancer`].
#[derive(Debug, Clone)]
pub struct BalanceLayer {
    balancer: Balancer,
}

impl BalanceLayer {
    /// A layer over `balancer` (cheap to clone; clones share its statistics).
    pub fn new(balancer: Balancer) -> Self {
        Self { balancer }
    }
}

impl<S> Layer<S> for BalanceLayer {
    type Service = Balanced<S>;
    fn layer(&self, inner: S) -> Balanced<S> {
        Balanced {
            inner,
            balancer: self.balancer.clone(),
        }
    }
}

/// The service [`BalanceLayer`] produces.
#[derive(Debug, Clone)]
pub struct Balanced<S> {
    inner: S,
    balancer: Balancer,
}

impl<S, B, ResB> Service<Request<B>> for Balanced<S>
where
    S: Service<Request<B>, Response = Response<ResB>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResB: Send + 'static,
{
    type Response = Response<ResB>;
    type Error = BalanceError<S::Error>;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResB>, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(BalanceError::Inner)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let Some(pick) = self.balancer.pick(None, None) else {
            return Box::pin(std::future::ready(Err(BalanceError::NoEndpoint)));
        };
        let mut parts = std::mem::take(req.uri_mut()).into_parts();
        parts.scheme.get_or_insert(http::uri::Scheme::HTTP);
        parts.authority = Some(pick.stats().authority.clone());
        if parts.path_and_query.is_none() {
            parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
        }
        *req.uri_mut() = Uri::from_parts(parts).unwrap_or_default();
        let started = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let result = fut.await;
            pick.observe(started.elapsed());
            result.map_err(BalanceError::Inner)
        })
    }
}
