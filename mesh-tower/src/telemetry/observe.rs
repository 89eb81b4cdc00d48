//! One request's observation, from its start to the last byte of its response: the metrics
//! series, the span and the access-log line are all written once, when the response body ends
//! (or is dropped), so durations and byte counts cover the whole exchange.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, ready};
use std::time::SystemTime;

use bytes::Buf;
use http::Request;
use http_body::{Body, Frame, SizeHint};
use mesh_core::identity::SpiffeId;
use opentelemetry::Context;
use opentelemetry::trace::{SpanKind, TraceContextExt};
use tokio::time::Instant;

use super::access_log::{Entry, rfc3339};
use super::labels::{Peer, Protocol, Reporter, UNKNOWN};
use super::metrics::SeriesKey;
use super::{ResponseFlags, Shared};

/// What an access-log line needs of the request, copied only when the request is logged.
#[derive(Debug)]
struct LogRequest {
    wall: SystemTime,
    method: http::Method,
    authority: String,
    path: String,
}

/// One request being observed.
#[derive(Debug)]
pub(crate) struct Exchange {
    shared: Arc<Shared>,
    reporter: Reporter,
    start: Instant,
    pub(crate) protocol: Protocol,
    pub(crate) flags: ResponseFlags,
    /// The other side's labels.
    pub(crate) peer: Arc<Peer>,
    /// `destination_service`.
    pub(crate) service: Arc<str>,
    /// This workload's own identity, when it was presented (mutual TLS).
    pub(crate) me: Option<SpiffeId>,
    /// `Some(true)` mutual TLS, `Some(false)` plaintext, `None` not known (the client side, as
    /// Istio reports `unknown` there).
    pub(crate) mutual_tls: Option<bool>,
    pub(crate) request_bytes: u64,
    pub(crate) attempts: u32,
    pub(crate) upstream: Option<SocketAddr>,
    pub(crate) cluster: Option<Arc<mesh_core::cluster::Cluster>>,
    pub(crate) route: Option<Arc<str>>,
    /// The context holding this exchange's span.
    pub(crate) cx: Option<Context>,
    log: Option<Box<LogRequest>>,
}

impl Exchange {
    fn new<B>(shared: &Arc<Shared>, reporter: Reporter, req: &Request<B>) -> Exchange {
        let log = shared.access_log.as_ref().filter(|l| l.sampled()).map(|_| {
            Box::new(LogRequest {
                wall: SystemTime::now(),
                method: req.method().clone(),
                authority: crate::route::authority(req).unwrap_or_default().to_string(),
                path: req.uri().path().to_string(),
            })
        });
        Exchange {
            shared: shared.clone(),
            reporter,
            start: Instant::now(),
            protocol: Protocol::of(req.headers()),
            flags: ResponseFlags::NONE,
            peer: unknown_peer(),
            service: interned(UNKNOWN),
            me: None,
            mutual_tls: None,
            request_bytes: body_len(req),
            attempts: 0,
            upstream: None,
            cluster: None,
            route: None,
            cx: None,
            log,
        }
    }

    /// A client-side exchange, its span a child of the current context (the inbound request
    /// being handled, when the server stack set one).
    pub(crate) fn client<B>(shared: &Arc<Shared>, req: &Request<B>) -> Exchange {
        let mut ex = Exchange::new(shared, Reporter::Source, req);
        if let Some(tracer) = &shared.tracer {
            ex.cx = Some(super::trace::start(
                tracer,
                &Context::current(),
                SpanKind::Client,
                req,
                |_| {},
            ));
        }
        ex
    }

    /// A server-side exchange: the caller from its verified identity and baggage, the parent
    /// span from the trace headers.
    pub(crate) fn server<B>(shared: &Arc<Shared>, req: &Request<B>) -> Exchange {
        let mut ex = Exchange::new(shared, Reporter::Destination, req);
        let caller = req
            .extensions()
            .get::<mesh_core::identity::PeerIdentity>()
            .map(|p| &p.0);
        let baggage = req.headers().get("baggage");
        if caller.is_some() || baggage.is_some() {
            ex.peer = caller_peer(caller, baggage);
        }
        ex.mutual_tls = Some(caller.is_some());
        if caller.is_some() {
            ex.me = shared.own_id();
        }
        ex.service = interned(match &shared.workload.service {
            Some(s) => s.as_str(),
            None => super::labels::service_host(crate::route::authority(req).unwrap_or(UNKNOWN)),
        });
        if let Some(tracer) = &shared.tracer {
            let parent = shared
                .propagation
                .extract(req.headers())
                .unwrap_or_default();
            ex.cx = Some(super::trace::start(
                tracer,
                &parent,
                SpanKind::Server,
                req,
                |_| {},
            ));
        }
        ex
    }

    /// True when this request gets an access-log line (worth copying details for).
    pub(crate) fn logged(&self) -> bool {
        self.log.is_some()
    }

    /// The cluster chosen for the request: the server side's labels, and this workload's own
    /// identity when the cluster is mutual TLS.
    pub(crate) fn reached_cluster(
        &mut self,
        cluster: &Arc<mesh_core::cluster::Cluster>,
        peer: &Arc<Peer>,
        service: &Arc<str>,
        request_bytes: Option<u64>,
    ) {
        self.peer = peer.clone();
        self.service = service.clone();
        if cluster.tls.is_some() {
            self.me = self.shared.own_id();
        }
        if let Some(n) = request_bytes {
            self.request_bytes = n;
        }
        if self.log.is_some() {
            self.cluster = Some(cluster.clone());
        }
    }

    /// The service asked for, when no cluster was reached (no route, or the mesh answered
    /// first): the authority's host.
    pub(crate) fn asked_for(&mut self, authority: &str) {
        if &*self.service == UNKNOWN {
            self.service = interned(super::labels::service_host(authority));
        }
    }

    /// Before attempt `n` to `addr`: adds this workload's `baggage` (unless the request has
    /// one), starts the attempt span under the request span and writes its trace headers.
    /// Returns the attempt span's context, to end with [`super::trace::end`] (via
    /// [`Exchange::end_attempt`]).
    pub(crate) fn attempt<B>(
        &mut self,
        out: &mut Request<B>,
        n: u32,
        addr: SocketAddr,
    ) -> Option<Context> {
        self.attempts = n;
        self.upstream = Some(addr);
        if let Some(b) = &self.shared.baggage
            && !out.headers().contains_key("baggage")
        {
            out.headers_mut().insert("baggage", b.clone());
        }
        let (tracer, parent) = (self.shared.tracer.as_ref()?, self.cx.as_ref()?);
        if !parent.span().span_context().is_sampled() {
            // Nothing of this trace is recorded: downstream needs only the trace id and the
            // decision, which the request span carries; an attempt span would cost for nothing.
            self.shared.propagation.inject(parent, out.headers_mut());
            return None;
        }
        let cx = super::trace::start(tracer, parent, SpanKind::Client, out, |attrs| {
            attrs.push(opentelemetry::KeyValue::new(
                "http.request.resend_count",
                i64::from(n.saturating_sub(1)),
            ));
            attrs.push(opentelemetry::KeyValue::new(
                "network.peer.address",
                addr.ip().to_string(),
            ));
            attrs.push(opentelemetry::KeyValue::new(
                "network.peer.port",
                i64::from(addr.port()),
            ));
        });
        self.shared.propagation.inject(&cx, out.headers_mut());
        Some(cx)
    }

    /// Ends an attempt span with its outcome.
    pub(crate) fn end_attempt(cx: &Context, code: u16, grpc: Option<u32>, error: Option<&str>) {
        super::trace::end(cx, false, code, grpc, error);
    }

    /// Writes the metrics series, ends the span and writes the access-log line.
    pub(crate) fn finish(
        self,
        code: u16,
        grpc: Option<u32>,
        response_bytes: u64,
        error: Option<&str>,
    ) {
        let elapsed = self.start.elapsed();
        let shared = &self.shared;
        let me = self.me.as_ref().map_or(UNKNOWN, SpiffeId::as_uri);
        if shared.metrics {
            let key = SeriesKey {
                reporter: self.reporter,
                peer: &self.peer,
                me_principal: me,
                service: &self.service,
                protocol: self.protocol,
                code,
                grpc,
                flags: self.flags,
                mutual_tls: self.mutual_tls,
            };
            shared.series.get(&shared.workload, &key).record(
                elapsed.as_secs_f64() * 1000.0,
                self.request_bytes,
                response_bytes,
            );
        }
        let trace_id = self
            .cx
            .as_ref()
            .map(|cx| cx.span().span_context().trace_id());
        if let Some(cx) = &self.cx {
            super::trace::end(
                cx,
                self.reporter == Reporter::Destination,
                code,
                grpc,
                error,
            );
        }
        if let (Some(req), Some(log)) = (self.log.as_deref(), &shared.access_log) {
            let peer = Some(&*self.peer.principal).filter(|p| *p != UNKNOWN);
            log.write(&Entry {
                start_time: rfc3339(req.wall),
                reporter: self.reporter.as_str(),
                method: req.method.as_str(),
                authority: &req.authority,
                path: &req.path,
                protocol: self.protocol.as_str(),
                response_code: code,
                grpc_status: grpc,
                response_flags: self.flags.to_string(),
                duration: elapsed.as_millis() as u64,
                upstream_host: self.upstream.map(|a| a.to_string()),
                upstream_cluster: self.cluster.as_ref().map(|c| c.name.as_str()),
                route_name: self.route.as_deref(),
                attempts: self.attempts,
                bytes_received: match self.reporter {
                    Reporter::Destination => self.request_bytes,
                    Reporter::Source => response_bytes,
                },
                bytes_sent: match self.reporter {
                    Reporter::Destination => response_bytes,
                    Reporter::Source => self.request_bytes,
                },
                peer_principal: peer,
                trace_id: trace_id
                    .filter(|t| *t != opentelemetry::TraceId::INVALID)
                    .map(|t| t.to_string()),
            });
        }
    }
}

impl Shared {
    /// This workload's SPIFFE ID, when it has a certificate.
    pub(crate) fn own_id(&self) -> Option<SpiffeId> {
        Some(self.identity.as_ref()?.load().as_ref().as_ref()?.id.clone())
    }
}

/// The caller's labels, from a per-thread cache of the last caller: a connection's requests
/// (same certificate, same baggage) share one `Arc<Peer>` instead of parsing and allocating
/// its labels per request.
fn caller_peer(id: Option<&SpiffeId>, baggage: Option<&http::HeaderValue>) -> Arc<Peer> {
    type Last = Option<(Option<SpiffeId>, Option<http::HeaderValue>, Arc<Peer>)>;
    thread_local! {
        static LAST: std::cell::RefCell<Last> = const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((i, b, peer)) = last.as_ref()
            && i.as_ref() == id
            && b.as_ref() == baggage
        {
            return peer.clone();
        }
        let peer = Arc::new(Peer::from_caller(id, baggage));
        *last = Some((id.cloned(), baggage.cloned(), peer.clone()));
        peer
    })
}

/// `s` as a shared string, from a per-thread cache of the last few: the services a thread
/// records are few, so a request reuses one instead of allocating its own.
fn interned(s: &str) -> Arc<str> {
    const SLOTS: usize = 8;
    thread_local! {
        static RECENT: std::cell::RefCell<Vec<Arc<str>>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    RECENT.with(|recent| {
        let mut recent = recent.borrow_mut();
        if let Some(hit) = recent.iter().find(|r| &***r == s) {
            return hit.clone();
        }
        let new: Arc<str> = Arc::from(s);
        if recent.len() == SLOTS {
            recent.remove(0);
        }
        recent.push(new.clone());
        new
    })
}

/// The shared all-`unknown` peer.
fn unknown_peer() -> Arc<Peer> {
    static UNKNOWN_PEER: std::sync::OnceLock<Arc<Peer>> = std::sync::OnceLock::new();
    UNKNOWN_PEER
        .get_or_init(|| Arc::new(Peer::unknown()))
        .clone()
}

/// The request body's length as declared (`Content-Length`), or 0 when it streams.
fn body_len<B>(req: &Request<B>) -> u64 {
    req.headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0)
}

/// The gRPC status in a header map (`grpc-status`).
pub(crate) fn grpc_status(h: &http::HeaderMap) -> Option<u32> {
    h.get("grpc-status")?.to_str().ok()?.parse().ok()
}

pin_project_lite::pin_project! {
    /// A response body that completes its request's observation when it ends (or is
    /// dropped): counting its bytes and reading the gRPC status from its trailers.
    pub struct Observed<B> {
        #[pin]
        inner: B,
        pending: Option<Pending>,
    }

    impl<B> PinnedDrop for Observed<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(p) = this.pending.take() {
                p.exchange.finish(p.code, p.grpc, p.bytes, None);
            }
        }
    }
}

#[derive(Debug)]
struct Pending {
    exchange: Exchange,
    code: u16,
    grpc: Option<u32>,
    bytes: u64,
}

impl<B: std::fmt::Debug> std::fmt::Debug for Observed<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observed")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<B> Observed<B> {
    /// A body observed by nobody (telemetry off).
    pub(crate) fn unobserved(inner: B) -> Self {
        Observed {
            inner,
            pending: None,
        }
    }

    /// `inner`, the body of a response with these headers, completing `exchange` when it ends.
    pub(crate) fn new(
        inner: B,
        exchange: Exchange,
        status: http::StatusCode,
        headers: &http::HeaderMap,
    ) -> Self {
        Observed {
            inner,
            pending: Some(Pending {
                exchange,
                code: status.as_u16(),
                grpc: grpc_status(headers),
                bytes: 0,
            }),
        }
    }
}

impl<B: Body> Body for Observed<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        let Some(p) = this.pending.as_mut() else {
            return Poll::Ready(frame);
        };
        match &frame {
            Some(Ok(f)) => {
                if let Some(d) = f.data_ref() {
                    p.bytes += d.remaining() as u64;
                } else if let Some(t) = f.trailers_ref()
                    && let Some(g) = grpc_status(t)
                {
                    p.grpc = Some(g);
                }
            }
            Some(Err(_)) => {
                let mut p = this.pending.take().expect("checked above");
                p.exchange
                    .flags
                    .insert(ResponseFlags::UPSTREAM_CONNECTION_TERMINATION);
                p.exchange.finish(p.code, p.grpc, p.bytes, Some("body"));
            }
            None => {
                let p = this.pending.take().expect("checked above");
                p.exchange.finish(p.code, p.grpc, p.bytes, None);
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connections_requests_share_their_callers_labels() {
        let id = SpiffeId::new("cluster.local", "shop", "frontend").unwrap();
        let b = http::HeaderValue::from_static("k8s.deployment.name=frontend-v1");
        let first = caller_peer(Some(&id), Some(&b));
        assert!(Arc::ptr_eq(&first, &caller_peer(Some(&id), Some(&b))));
        assert_eq!(&*first.workload, "frontend-v1");
        let other = http::HeaderValue::from_static("k8s.deployment.name=frontend-v2");
        let second = caller_peer(Some(&id), Some(&other));
        assert!(!Arc::ptr_eq(&first, &second));
        assert_eq!(&*second.workload, "frontend-v2");
        let anonymous = caller_peer(None, None);
        assert_eq!(&*anonymous.principal, UNKNOWN);
    }

    #[test]
    fn service_names_are_shared_not_allocated_per_request() {
        let a = interned("reviews.shop.svc.cluster.local");
        assert!(Arc::ptr_eq(&a, &interned("reviews.shop.svc.cluster.local")));
        for i in 0..20 {
            interned(&format!("svc-{i}"));
        }
        // Evicted after many others; a new Arc, the same text.
        let b = interned("reviews.shop.svc.cluster.local");
        assert_eq!(&*b, &*a);
    }
}
