//! Observability: Istio's standard metrics, OpenTelemetry traces that propagate themselves, and
//! JSON access logs, from both the client stack ([`crate::Client`], `reporter="source"`) and the
//! server stack ([`TelemetryLayer`], which [`crate::server::serve_meshed`] adds for you,
//! `reporter="destination"`).
//!
//! Why these shapes: dashboards built for Istio (Grafana's Istio dashboards, Kiali's graph)
//! read `istio_requests_total`, `istio_request_duration_milliseconds`, `istio_request_bytes`,
//! `istio_response_bytes` and `istio_tcp_connections_*` with Istio's labels, so we emit exactly
//! those — a proxyless workload then shows up as an ordinary node with edges. Label values come
//! from configuration and identities, never from raw paths, so cardinality stays bounded.
//!
//! Trace context is carried without the app's help: the server stack extracts W3C
//! `traceparent` or B3 from each request, starts a server span, and runs the handler inside its
//! context; the client stack, called from that handler, makes its request span a child of it,
//! one attempt span per try (retries included), and injects the attempt's context downstream.
//! Caveat: a handler that moves work to a `tokio::spawn`ed task must carry the context itself
//! (`opentelemetry::context::FutureExt::with_current_context`).
//!
//! Nothing is recorded until a [`Telemetry`] exists: [`Telemetry::install`] makes one the
//! process default, which clients built afterwards and [`TelemetryLayer::global`] use.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use mesh_tower::telemetry::{self, AccessLog, Telemetry, Workload};
//!
//! // Prometheus text exposition (serve `handle.render()` at /metrics, or mount mesh_tower::debug).
//! let handle = telemetry::prometheus()?;
//! // Spans to an OTLP/gRPC collector, 1% of new traces sampled (callers' decisions respected).
//! let provider = telemetry::otlp("http://otel-collector:4317", "reviews", 0.01)?;
//! Telemetry::builder()
//!     .workload(Workload::new("reviews-v1", "default"))
//!     .tracer(&provider)
//!     .access_log(AccessLog::stdout().sample(0.1))
//!     .install();
//! # let _ = handle; Ok(()) }
//! ```

mod access_log;
mod config;
mod flags;
mod labels;
mod metrics;
mod observe;
mod propagate;
mod server;
mod trace;

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use mesh_core::Snapshot;
use mesh_core::identity::Svid;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

pub use access_log::AccessLog;
pub use config::{
    AccessLogConfig, TelemetryConfig, TelemetryConfigError, TracingConfig, WorkloadConfig,
};
pub use flags::ResponseFlags;
pub use labels::Workload;
pub use metrics::{
    ConnectionGuard, REQUEST_BYTES, REQUEST_DURATION, REQUESTS_TOTAL, RESPONSE_BYTES, TCP_CLOSED,
    TCP_OPENED, prometheus,
};
pub use observe::Observed;
pub use propagate::Propagation;
pub use server::{TelemetryFuture, TelemetryLayer, TelemetryService};
pub use trace::otlp;

pub(crate) use labels::{Peer, destination_of};
pub(crate) use observe::Exchange;

/// The process default ([`Telemetry::install`]).
static GLOBAL: ArcSwapOption<Shared> = ArcSwapOption::const_empty();

/// What to record and where: metrics on or off, the tracer, trace propagation formats, the
/// access log, and this workload's labels. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Telemetry {
    pub(crate) shared: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) workload: Workload,
    /// The `baggage` the client stack sends (this workload's labels).
    pub(crate) baggage: Option<http::HeaderValue>,
    pub(crate) identity: Option<Snapshot<Option<Svid>>>,
    pub(crate) metrics: bool,
    pub(crate) tracer: Option<SdkTracer>,
    pub(crate) propagation: Propagation,
    pub(crate) access_log: Option<AccessLog>,
    pub(crate) series: metrics::SeriesCache,
}

impl Telemetry {
    /// A builder: metrics on, no tracing, no access log, unknown workload.
    pub fn builder() -> TelemetryBuilder {
        TelemetryBuilder {
            workload: Workload::default(),
            identity: None,
            metrics: true,
            tracer: None,
            propagation: Propagation::default(),
            access_log: None,
        }
    }

    /// Makes this the process default: clients built afterwards and servers started afterwards
    /// ([`crate::server::serve_meshed`], [`TelemetryLayer::global`]) record with it.
    pub fn install(&self) {
        GLOBAL.store(Some(self.shared.clone()));
    }

    /// The process default, if one was installed.
    pub fn global() -> Option<Telemetry> {
        GLOBAL.load_full().map(|shared| Telemetry { shared })
    }

    /// This workload's labels.
    pub fn workload(&self) -> &Workload {
        &self.shared.workload
    }
}

impl Telemetry {
    /// Counts one accepted connection from `caller` (its verified identity, if any):
    /// `istio_tcp_connections_opened_total` now, `istio_tcp_connections_closed_total` when the
    /// guard drops. `None` when metrics are off. [`crate::server::serve`] does this for you.
    pub fn connection(
        &self,
        caller: Option<&mesh_core::identity::SpiffeId>,
    ) -> Option<metrics::ConnectionGuard> {
        let s = &self.shared;
        if !s.metrics {
            return None;
        }
        let peer = match caller {
            Some(id) => Peer::from_identity(id),
            None => Peer::unknown(),
        };
        let me = match caller {
            Some(_) => s.own_id(),
            None => None,
        };
        Some(metrics::connection(
            &s.workload,
            me.as_ref().map_or(labels::UNKNOWN, |id| id.as_uri()),
            &peer,
            s.workload.service.as_deref().unwrap_or(labels::UNKNOWN),
            caller.is_some(),
        ))
    }
}

/// Builds a [`Telemetry`] ([`Telemetry::builder`]).
#[derive(Debug)]
#[must_use]
pub struct TelemetryBuilder {
    workload: Workload,
    identity: Option<Snapshot<Option<Svid>>>,
    metrics: bool,
    tracer: Option<SdkTracer>,
    propagation: Propagation,
    access_log: Option<AccessLog>,
}

impl TelemetryBuilder {
    /// This workload's labels (see [`Workload::from_node`] to take them from the xDS bootstrap).
    pub fn workload(mut self, workload: Workload) -> Self {
        self.workload = workload;
        self
    }

    /// This workload's identity: its SPIFFE ID becomes `source_principal` (client stack) and
    /// `destination_principal` (server stack) on mutual-TLS exchanges.
    pub fn identity(mut self, identity: Snapshot<Option<Svid>>) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Records Istio's request and connection metrics through the `metrics` crate's recorder
    /// (install one first, such as [`prometheus`]). Default: on.
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics = on;
        self
    }

    /// Spans go to this provider's tracer (its sampler decides which are recorded; see
    /// [`otlp`]). Default: no spans, and no trace headers written.
    pub fn tracer(mut self, provider: &SdkTracerProvider) -> Self {
        use opentelemetry::trace::TracerProvider as _;
        self.tracer = Some(provider.tracer("mesh"));
        self
    }

    /// The trace header formats read and written. Default: W3C and B3.
    pub fn propagation(mut self, propagation: Propagation) -> Self {
        self.propagation = propagation;
        self
    }

    /// Writes an access-log line per request (or per sampled request). Default: off.
    pub fn access_log(mut self, log: AccessLog) -> Self {
        self.access_log = Some(log);
        self
    }

    /// The telemetry.
    pub fn build(self) -> Telemetry {
        Telemetry {
            shared: Arc::new(Shared {
                baggage: self.workload.baggage(),
                workload: self.workload,
                identity: self.identity,
                metrics: self.metrics,
                tracer: self.tracer,
                propagation: self.propagation,
                access_log: self.access_log,
                series: metrics::SeriesCache::default(),
            }),
        }
    }

    /// Builds and installs it as the process default ([`Telemetry::install`]).
    pub fn install(self) -> Telemetry {
        let t = self.build();
        t.install();
        t
    }
}
