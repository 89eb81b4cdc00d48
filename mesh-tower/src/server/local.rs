//! [`LocalPolicyLayer`]: an inbound chain's fault injection and local rate limit, reusing the
//! client stack's [`crate::fault`] decisions and [`TokenBucket`]. A request that finds the bucket
//! empty gets 429 with `retry-after`; an abort answers without calling the app; a delay waits
//! first. All three follow a [`Snapshot`], so a changed policy applies to the next request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use http_body_util::Either;
use mesh_core::Snapshot;
use mesh_core::route::FaultPolicy;
use pin_project_lite::pin_project;
use tower::{Layer, Service, ServiceExt};

use crate::client::Body;
use crate::ratelimit::{TokenBucket, limited_response};

/// What an inbound chain does to requests before the app: a fault, a rate limit.
#[derive(Debug, Clone, Default)]
pub struct LocalPolicy {
    /// Delays and aborts. Default: none.
    pub fault: Option<FaultPolicy>,
    /// One bucket for every request of the chain. Default: no limit.
    pub bucket: Option<Arc<TokenBucket>>,
}

/// Applies the live [`LocalPolicy`].
#[derive(Debug, Clone)]
pub struct LocalPolicyLayer {
    policy: Snapshot<LocalPolicy>,
}

impl LocalPolicyLayer {
    /// A layer following `policy`.
    pub fn new(policy: Snapshot<LocalPolicy>) -> Self {
        Self { policy }
    }
}

impl<S> Layer<S> for LocalPolicyLayer {
    type Service = LocalPolicyService<S>;

    fn layer(&self, inner: S) -> LocalPolicyService<S> {
        LocalPolicyService {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// The service of [`LocalPolicyLayer`].
#[derive(Debug, Clone)]
pub struct LocalPolicyService<S> {
    inner: S,
    policy: Snapshot<LocalPolicy>,
}

/// A response body: the app's, or the one the policy answered with.
pub type LocalBody<B> = Either<B, Body>;

type Delayed<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, ReqB, ResB> Service<Request<ReqB>> for LocalPolicyService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqB: Send + 'static,
    ResB: 'static,
{
    type Response = Response<LocalBody<ResB>>;
    type Error = S::Error;
    type Future = LocalFuture<S::Future, Response<LocalBody<ResB>>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let policy = self.policy.load();
        if let Some(bucket) = &policy.bucket
            && let Err(wait) = bucket.try_acquire(tokio::time::Instant::now())
        {
            return LocalFuture::answer(limited_response(wait).map(Either::Right));
        }
        let injection = match &policy.fault {
            Some(f) => crate::fault::decide_random(f, &req),
            None => return LocalFuture::inner(self.inner.call(req)),
        };
        if let Some(status) = injection.abort
            && injection.delay.is_none()
        {
            return LocalFuture::answer(crate::fault::abort_response(status).map(Either::Right));
        }
        match injection.delay {
            None => LocalFuture::inner(self.inner.call(req)),
            Some(delay) => {
                // The ready service goes with the delayed call; a clone stays for the next one.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                LocalFuture::delayed(Box::pin(async move {
                    tokio::time::sleep(delay).await;
                    if let Some(status) = injection.abort {
                        return Ok(crate::fault::abort_response(status).map(Either::Right));
                    }
                    let resp = inner.oneshot(req).await?;
                    Ok(resp.map(Either::Left))
                }))
            }
        }
    }
}

pin_project! {
    /// The response future of [`LocalPolicyService`]: the app's, an immediate answer, or (with a
    /// delay) a boxed wait-then-call.
    pub struct LocalFuture<F, R, E> {
        #[pin]
        state: State<F, R, E>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, R, E> {
        Inner { #[pin] fut: F },
        Answer { res: Option<R> },
        Delayed { fut: Delayed<R, E> },
    }
}

impl<F, R, E> LocalFuture<F, R, E> {
    fn inner(fut: F) -> Self {
        Self {
            state: State::Inner { fut },
        }
    }

    fn answer(res: R) -> Self {
        Self {
            state: State::Answer { res: Some(res) },
        }
    }

    fn delayed(fut: Delayed<R, E>) -> Self {
        Self {
            state: State::Delayed { fut },
        }
    }
}

impl<F, ResB, E> Future for LocalFuture<F, Response<LocalBody<ResB>>, E>
where
    F: Future<Output = Result<Response<ResB>, E>>,
{
    type Output = Result<Response<LocalBody<ResB>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Inner { fut } => {
                let resp = ready!(fut.poll(cx))?;
                Poll::Ready(Ok(resp.map(Either::Left)))
            }
            StateProj::Answer { res } => {
                Poll::Ready(Ok(res.take().expect("polled after completion")))
            }
            StateProj::Delayed { fut } => fut.as_mut().poll(cx),
        }
    }
}

impl<F, R, E> std::fmt::Debug for LocalFuture<F, R, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalFuture")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mesh_core::Percent;
    use mesh_core::route::{AbortStatus, FaultAbort, FaultDelay, LocalRateLimit};
    use tower::ServiceExt;
    use tower_test::mock;

    use super::*;

    type Inner = mock::Mock<Request<()>, Response<()>>;
    type Handle = mock::Handle<Request<()>, Response<()>>;

    fn service(policy: LocalPolicy) -> (LocalPolicyService<Inner>, Handle) {
        let (inner, handle) = mock::pair();
        let svc = LocalPolicyLayer::new(Snapshot::new(policy)).layer(inner);
        (svc, handle)
    }

    fn abort(status: u16) -> FaultPolicy {
        FaultPolicy {
            delay: None,
            abort: Some(FaultAbort {
                status: AbortStatus::Http(status),
                percent: Percent::ALL,
            }),
            headers: Vec::new(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_bucket_answers_429_without_calling_the_app() {
        let bucket = TokenBucket::new(LocalRateLimit {
            max_tokens: 1,
            tokens_per_fill: 1,
            fill_interval: Duration::from_secs(60),
        });
        let (mut svc, mut handle) = service(LocalPolicy {
            fault: None,
            bucket: Some(Arc::new(bucket)),
        });
        handle.allow(2);
        let first = svc.ready().await.unwrap().call(Request::new(()));
        let (_, reply) = handle.next_request().await.unwrap();
        reply.send_response(Response::new(()));
        assert_eq!(first.await.unwrap().status(), 200);
        let second = svc
            .ready()
            .await
            .unwrap()
            .call(Request::new(()))
            .await
            .unwrap();
        assert_eq!(second.status(), 429);
        assert!(second.headers().contains_key("retry-after"));
        let called = tokio::time::timeout(Duration::from_millis(10), handle.next_request()).await;
        assert!(called.is_err(), "the app was called");
    }

    #[tokio::test(start_paused = true)]
    async fn an_abort_answers_and_a_delay_waits_before_calling_the_app() {
        let (mut svc, _handle) = service(LocalPolicy {
            fault: Some(abort(503)),
            bucket: None,
        });
        let resp = svc
            .ready()
            .await
            .unwrap()
            .call(Request::new(()))
            .await
            .unwrap();
        assert_eq!(resp.status(), 503);

        let delay = FaultPolicy {
            delay: Some(FaultDelay {
                delay: Duration::from_secs(2),
                percent: Percent::ALL,
            }),
            abort: None,
            headers: Vec::new(),
        };
        let (mut svc, mut handle) = service(LocalPolicy {
            fault: Some(delay),
            bucket: None,
        });
        handle.allow(1);
        let started = tokio::time::Instant::now();
        let call = tokio::spawn(svc.ready().await.unwrap().call(Request::new(())));
        let (_, reply) = handle.next_request().await.unwrap();
        assert!(
            started.elapsed() >= Duration::from_secs(2),
            "called before the delay"
        );
        reply.send_response(Response::new(()));
        assert_eq!(call.await.unwrap().unwrap().status(), 200);
    }
}
