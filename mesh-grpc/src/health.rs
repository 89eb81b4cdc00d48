//! Serving status that both gRPC health checks and the callers' outlier detection see.
//!
//! [`Serving`] drives a tonic-health service (`grpc.health.v1.Health`, what Kubernetes gRPC
//! probes and load balancers check) and, through [`ServingLayer`], the server itself: while the
//! workload says it is not serving, every call other than a health check is answered UNAVAILABLE
//! ("not serving"), which the callers' outlier detection counts as a gateway failure and ejects
//! the endpoint for, moving traffic elsewhere; serving again brings it back after the ejection
//! time. The default is serving.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// The path prefix of the health service, always answered.
const HEALTH_PREFIX: &str = "/grpc.health.v1.Health/";

/// The workload's serving status, shared by the health service and [`ServingLayer`].
#[derive(Clone)]
pub struct Serving {
    serving: Arc<AtomicBool>,
    reporter: HealthReporter,
}

impl std::fmt::Debug for Serving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serving")
            .field("serving", &self.is_serving())
            .finish()
    }
}

impl Serving {
    /// A status (serving) and the health service to add to the server's routes.
    pub async fn new() -> (
        Serving,
        tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
    ) {
        let (reporter, service) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("", ServingStatus::Serving)
            .await;
        let serving = Serving {
            serving: Arc::new(AtomicBool::new(true)),
            reporter,
        };
        (serving, service)
    }

    /// Marks the workload serving (health: SERVING; calls are served).
    pub async fn set_serving(&self) {
        self.serving.store(true, Ordering::Release);
        self.reporter
            .set_service_status("", ServingStatus::Serving)
            .await;
    }

    /// Marks the workload not serving (health: NOT_SERVING; calls get UNAVAILABLE).
    pub async fn set_not_serving(&self) {
        self.serving.store(false, Ordering::Release);
        self.reporter
            .set_service_status("", ServingStatus::NotServing)
            .await;
    }

    /// True while serving.
    pub fn is_serving(&self) -> bool {
        self.serving.load(Ordering::Acquire)
    }

    /// The layer that answers calls UNAVAILABLE while not serving.
    pub fn layer(&self) -> ServingLayer {
        ServingLayer {
            serving: self.serving.clone(),
        }
    }
}

/// Answers every call but health checks with UNAVAILABLE while [`Serving`] says not serving.
#[derive(Debug, Clone)]
pub struct ServingLayer {
    serving: Arc<AtomicBool>,
}

impl<S> tower::Layer<S> for ServingLayer {
    type Service = ServingService<S>;

    fn layer(&self, inner: S) -> ServingService<S> {
        ServingService {
            inner,
            serving: self.serving.clone(),
        }
    }
}

/// The service of [`ServingLayer`].
#[derive(Debug, Clone)]
pub struct ServingService<S> {
    inner: S,
    serving: Arc<AtomicBool>,
}

impl<S, ReqB> tower::Service<http::Request<ReqB>> for ServingService<S>
where
    S: tower::Service<http::Request<ReqB>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future =
        futures::future::Either<S::Future, std::future::Ready<Result<Self::Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqB>) -> Self::Future {
        if self.serving.load(Ordering::Acquire) || req.uri().path().starts_with(HEALTH_PREFIX) {
            return futures::future::Either::Left(self.inner.call(req));
        }
        let status = tonic::Status::unavailable("not serving: the workload reports NOT_SERVING");
        futures::future::Either::Right(std::future::ready(Ok(status.into_http())))
    }
}
