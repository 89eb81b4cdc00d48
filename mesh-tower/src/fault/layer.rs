//! [`FaultLayer`]: fault injection as a tower layer with a fixed policy.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use mesh_core::route::FaultPolicy;
use tower::{Layer, Service};

use crate::client::Body;

/// Injects the faults of `policy` in front of an HTTP service.
#[derive(Debug, Clone)]
pub struct FaultLayer {
    policy: Arc<FaultPolicy>,
}

impl FaultLayer {
    /// A layer injecting `policy`.
    pub fn new(policy: FaultPolicy) -> Self {
        Self {
            policy: Arc::new(policy),
        }
    }
}

impl<S> Layer<S> for FaultLayer {
    type Service = Fault<S>;
    fn layer(&self, inner: S) -> Fault<S> {
        Fault {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// The service [`FaultLayer`] produces.
#[derive(Debug, Clone)]
pub struct Fault<S> {
    inner: S,
    policy: Arc<FaultPolicy>,
}

impl<S, B> Service<Request<B>> for Fault<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let injection = super::decide_random(&self.policy, &req);
        // The inner service was polled ready; take it and leave a clone for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            if let Some(d) = injection.delay {
                tokio::time::sleep(d).await;
            }
            match injection.abort {
                Some(status) => Ok(super::abort_response(status)),
                None => inner.call(req).await,
            }
        })
    }
}
