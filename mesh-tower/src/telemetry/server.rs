//! [`TelemetryLayer`]: the server stack's metrics (`reporter="destination"`), server spans and
//! access-log lines, for any HTTP service.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use opentelemetry::context::{FutureExt as _, WithContext};

use super::Telemetry;
use super::observe::{Exchange, Observed};

/// Observes every request a service answers: an `istio_requests_total` series and its
/// histograms with `reporter="destination"` (the caller named by its verified SPIFFE ID and
/// `baggage`), a server span continuing the caller's trace (W3C or B3 headers) that stays
/// current while the service runs — so the client stack's calls made meanwhile join the trace —
/// and an access-log line. Recorded when the response body ends.
///
/// Put it outermost, so the answers of authorization and rate limiting are observed too;
/// [`crate::server::serve_meshed`] does. `request_bytes` is the request's declared
/// `Content-Length` (0 for a streamed body without one).
#[derive(Debug, Clone)]
pub struct TelemetryLayer {
    telemetry: Option<Telemetry>,
}

impl TelemetryLayer {
    /// Observes with `telemetry`.
    pub fn new(telemetry: Telemetry) -> Self {
        TelemetryLayer {
            telemetry: Some(telemetry),
        }
    }

    /// Observes with the process default ([`Telemetry::install`]) as it is now; a pass-through
    /// when none was installed.
    pub fn global() -> Self {
        TelemetryLayer {
            telemetry: Telemetry::global(),
        }
    }
}

impl<S> tower::Layer<S> for TelemetryLayer {
    type Service = TelemetryService<S>;
    fn layer(&self, inner: S) -> TelemetryService<S> {
        TelemetryService {
            inner,
            telemetry: self.telemetry.clone(),
        }
    }
}

/// The service of [`TelemetryLayer`].
#[derive(Debug, Clone)]
pub struct TelemetryService<S> {
    inner: S,
    telemetry: Option<Telemetry>,
}

impl<S, ReqB, ResB> tower::Service<Request<ReqB>> for TelemetryService<S>
where
    S: tower::Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = Response<Observed<ResB>>;
    type Error = S::Error;
    type Future = TelemetryFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let Some(t) = &self.telemetry else {
            return TelemetryFuture {
                inner: self.inner.call(req).with_current_context(),
                exchange: None,
            };
        };
        let exchange = Exchange::server(&t.shared, &req);
        let cx = exchange
            .cx
            .clone()
            .unwrap_or_else(opentelemetry::Context::current);
        TelemetryFuture {
            inner: self.inner.call(req).with_context(cx),
            exchange: Some(exchange),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`TelemetryService`]: the inner future, run inside the server
    /// span's context.
    pub struct TelemetryFuture<F> {
        #[pin]
        inner: WithContext<F>,
        exchange: Option<Exchange>,
    }
}

impl<F: std::fmt::Debug> std::fmt::Debug for TelemetryFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for TelemetryFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<Observed<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let exchange = this.exchange.take();
        Poll::Ready(match (result, exchange) {
            (Ok(resp), Some(ex)) => {
                let (parts, body) = resp.into_parts();
                let body = Observed::new(body, ex, parts.status, &parts.headers);
                Ok(Response::from_parts(parts, body))
            }
            (Ok(resp), None) => Ok(resp.map(Observed::unobserved)),
            (Err(e), ex) => {
                if let Some(ex) = ex {
                    ex.finish(500, None, 0, Some("service error"));
                }
                Err(e)
            }
        })
    }
}
