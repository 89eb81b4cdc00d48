//! [`RetryLayer`] and the [`Retry`] service.

use std::fmt;
use std::mem;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response};
use mesh_core::route::RetryPolicy;
use tower::{BoxError, Layer, Service, ServiceExt};

use super::future::ResponseFuture;
use super::{
    ATTEMPT_COUNT, Decision, Outcome, RetryBudget, RetryError, RetryInfo, RetryState, StopReason,
    classify_error,
};

/// Classifies an error of the inner service as an attempt [`Outcome`].
pub type ErrorClassifier = fn(&BoxError) -> Outcome;

/// Retries requests with Envoy's semantics; see the [module docs](super).
#[derive(Clone)]
pub struct RetryLayer {
    params: Params,
}

#[derive(Clone)]
struct Params {
    policy: Option<Arc<RetryPolicy>>,
    budget: Option<RetryBudget>,
    classify: ErrorClassifier,
    seed: Option<u64>,
}

impl RetryLayer {
    /// Retries under `policy`, unless a request carries its own `Arc<RetryPolicy>` extension.
    pub fn new(policy: impl Into<Arc<RetryPolicy>>) -> Self {
        Self::with_default(Some(policy.into()))
    }

    /// Retries only requests that carry an `Arc<RetryPolicy>` extension (the route's policy);
    /// other requests are sent once.
    pub fn per_request() -> Self {
        Self::with_default(None)
    }

    fn with_default(policy: Option<Arc<RetryPolicy>>) -> Self {
        Self {
            params: Params {
                policy,
                budget: None,
                classify: classify_error,
                seed: None,
            },
        }
    }

    /// Caps retries in flight with the cluster's budget. Default: no cap beyond `num_retries`.
    pub fn with_budget(mut self, budget: RetryBudget) -> Self {
        self.params.budget = Some(budget);
        self
    }

    /// Classifies inner-service errors. Default: [`classify_error`].
    pub fn with_error_classifier(mut self, classify: ErrorClassifier) -> Self {
        self.params.classify = classify;
        self
    }

    /// Seeds the backoff jitter of every request, making delays reproducible (tests). Default:
    /// a random seed per request.
    pub fn with_rng_seed(mut self, seed: u64) -> Self {
        self.params.seed = Some(seed);
        self
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Retry<S> {
        Retry {
            inner,
            params: self.params.clone(),
        }
    }
}

/// Sends each request until it succeeds, is not retryable, or runs out of retries or budget.
///
/// The request body must be `Clone` (for example `http_body_util::Full<Bytes>`): every attempt
/// sends a copy of the request with `x-envoy-attempt-count` set to the attempt number.
#[derive(Clone)]
pub struct Retry<S> {
    inner: S,
    params: Params,
}

impl<S> Retry<S> {
    /// Wraps `inner` with `layer`'s settings.
    pub fn new(inner: S, layer: &RetryLayer) -> Self {
        layer.layer(inner)
    }
}

impl<S, B, ResB> Service<Request<B>> for Retry<S>
where
    S: Service<Request<B>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
    B: Clone + Send + 'static,
    ResB: Send + 'static,
{
    type Response = Response<ResB>;
    type Error = BoxError;
    type Future = ResponseFuture<Response<ResB>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let policy = req
            .extensions()
            .get::<Arc<RetryPolicy>>()
            .cloned()
            .or_else(|| self.params.policy.clone());
        // The polled-ready service serves the first attempt; the clone stays for the next call.
        let clone = self.inner.clone();
        let svc = mem::replace(&mut self.inner, clone);
        ResponseFuture::new(run(svc, req, policy, self.params.clone()))
    }
}

async fn run<S, B, ResB>(
    mut svc: S,
    req: Request<B>,
    policy: Option<Arc<RetryPolicy>>,
    params: Params,
) -> Result<Response<ResB>, BoxError>
where
    S: Service<Request<B>, Response = Response<ResB>>,
    S::Error: Into<BoxError>,
    B: Clone,
{
    let policy = policy.unwrap_or_else(|| {
        Arc::new(RetryPolicy {
            num_retries: 0,
            ..RetryPolicy::default()
        })
    });
    let _request = params.budget.as_ref().map(RetryBudget::request);
    let timeout = policy.per_try_timeout;
    let mut state = RetryState::new(policy, params.budget);
    if let Some(seed) = params.seed {
        state = state.with_rng(fastrand::Rng::with_seed(seed));
    }
    let (parts, body) = req.into_parts();
    loop {
        let attempt = state.attempt();
        let mut req = Request::from_parts(parts.clone(), body.clone());
        req.headers_mut()
            .insert(ATTEMPT_COUNT, HeaderValue::from(attempt));
        if attempt > 1 {
            svc.ready().await.map_err(Into::into)?;
        }
        let fut = svc.call(req);
        let result = match timeout {
            Some(t) => match tokio::time::timeout(t, fut).await {
                Ok(r) => r.map_err(Into::into),
                Err(_) => Err(RetryError::PerTryTimeout {
                    attempt,
                    timeout: t,
                }
                .into()),
            },
            None => fut.await.map_err(Into::into),
        };
        let outcome = match &result {
            Ok(res) => Outcome::from_response(res),
            Err(e) => (params.classify)(e),
        };
        match state.on_outcome(outcome) {
            Decision::Retry { backoff, .. } => {
                tracing::debug!(attempt, ?outcome, ?backoff, "retrying");
                tokio::time::sleep(backoff).await;
            }
            Decision::Stop(stop) => return finish(result, attempt, stop),
        }
    }
}

fn finish<ResB>(
    result: Result<Response<ResB>, BoxError>,
    attempts: u32,
    stop: StopReason,
) -> Result<Response<ResB>, BoxError> {
    match result {
        Ok(mut res) => {
            res.extensions_mut().insert(RetryInfo { attempts, stop });
            Ok(res)
        }
        Err(source) if stop == StopReason::BudgetExhausted => {
            Err(RetryError::RetryBudgetExhausted { attempts, source }.into())
        }
        Err(e) => Err(e),
    }
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryParams")
            .field("policy", &self.policy)
            .field("budget", &self.budget)
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for RetryLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryLayer")
            .field("params", &self.params)
            .finish()
    }
}

impl<S: fmt::Debug> fmt::Debug for Retry<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("inner", &self.inner)
            .field("params", &self.params)
            .finish()
    }
}
