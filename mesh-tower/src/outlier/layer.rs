//! [`OutlierLayer`]: reports one endpoint's responses to the detector.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower::{BoxError, Layer, Service};

use super::OutlierDetector;
use crate::endpoint::EndpointStats;
use crate::retry::{Outcome, classify_error};

/// Wraps the service of one endpoint so that every response is reported to the cluster's
/// [`OutlierDetector`].
///
/// Errors are reported as Envoy maps them when local and upstream failures are not split: a
/// connect failure as a connect failure, a timeout as 504, anything else (a reset) as 503.
#[derive(Debug, Clone)]
pub struct OutlierLayer {
    detector: Arc<OutlierDetector>,
    stats: Arc<EndpointStats>,
}

impl OutlierLayer {
    /// Reports to `detector` against `stats`' endpoint.
    pub fn new(detector: Arc<OutlierDetector>, stats: Arc<EndpointStats>) -> Self {
        Self { detector, stats }
    }
}

impl<S> Layer<S> for OutlierLayer {
    type Service = Outlier<S>;

    fn layer(&self, inner: S) -> Outlier<S> {
        Outlier {
            inner,
            detector: self.detector.clone(),
            stats: self.stats.clone(),
        }
    }
}

/// An endpoint's service whose results feed outlier detection.
#[derive(Debug, Clone)]
pub struct Outlier<S> {
    inner: S,
    detector: Arc<OutlierDetector>,
    stats: Arc<EndpointStats>,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Outlier<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<ResB>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        ResponseFuture {
            fut: self.inner.call(req),
            detector: self.detector.clone(),
            stats: self.stats.clone(),
        }
    }
}

pin_project! {
    /// The inner response; reports its result when it resolves.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        fut: F,
        detector: Arc<OutlierDetector>,
        stats: Arc<EndpointStats>,
    }
}

impl<F, ResB, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResB>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<ResB>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.fut.poll(cx)).map_err(Into::into);
        let (status, connect_failure) = match &result {
            Ok(res) => (Some(res.status().as_u16()), false),
            Err(e) => match classify_error(e) {
                Outcome::ConnectFailure => (None, true),
                Outcome::Timeout => (Some(504), false),
                _ => (Some(503), false),
            },
        };
        this.detector
            .report(this.stats, status, connect_failure, Instant::now());
        Poll::Ready(result)
    }
}
