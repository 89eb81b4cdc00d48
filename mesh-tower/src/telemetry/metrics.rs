//! Istio's standard series, recorded through the `metrics` crate with handles cached per label
//! set: a request finds its handles with one hash lookup in an immutable map, and builds labels
//! only the first time a combination is seen.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use metrics::{Counter, Histogram, Label};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

use super::flags::ResponseFlags;
use super::labels::{Peer, Protocol, Reporter, UNKNOWN, Workload, service_parts};

/// `istio_requests_total`.
pub const REQUESTS_TOTAL: &str = "istio_requests_total";
/// `istio_request_duration_milliseconds` (histogram).
pub const REQUEST_DURATION: &str = "istio_request_duration_milliseconds";
/// `istio_request_bytes` (histogram).
pub const REQUEST_BYTES: &str = "istio_request_bytes";
/// `istio_response_bytes` (histogram).
pub const RESPONSE_BYTES: &str = "istio_response_bytes";
/// `istio_tcp_connections_opened_total`.
pub const TCP_OPENED: &str = "istio_tcp_connections_opened_total";
/// `istio_tcp_connections_closed_total`.
pub const TCP_CLOSED: &str = "istio_tcp_connections_closed_total";

/// Istio's duration buckets, in milliseconds.
const DURATION_BUCKETS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];
/// Istio's size buckets, in bytes.
const BYTES_BUCKETS: [f64; 9] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8];

/// Past this many cached label sets, new combinations are recorded under one overflow series
/// (every peer label `unknown`), so a misbehaving caller cannot grow memory without bound.
const MAX_SERIES: usize = 4096;

/// Installs a Prometheus recorder for the whole process with Istio's histogram buckets, and
/// returns the handle that renders the text exposition (serve it at `/metrics`, or mount
/// [`crate::debug`] which does). Call it once, before building clients and servers.
pub fn prometheus() -> Result<PrometheusHandle, BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.into()), &DURATION_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(REQUEST_BYTES.into()), &BYTES_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(RESPONSE_BYTES.into()), &BYTES_BUCKETS)?
        .install_recorder()
}

/// The handles of one label set.
#[derive(Debug)]
pub(crate) struct Series {
    requests: Counter,
    duration: Histogram,
    request_bytes: Histogram,
    response_bytes: Histogram,
}

impl Series {
    pub(crate) fn record(&self, millis: f64, request_bytes: u64, response_bytes: u64) {
        self.requests.increment(1);
        self.duration.record(millis);
        self.request_bytes.record(request_bytes as f64);
        self.response_bytes.record(response_bytes as f64);
    }
}

/// The per-request label values (the rest are the workload's own, fixed per reporter).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeriesKey<'a> {
    pub(crate) reporter: Reporter,
    pub(crate) peer: &'a Peer,
    /// This workload's own SPIFFE ID when the exchange is mutual TLS, else `unknown`.
    pub(crate) me_principal: &'a str,
    pub(crate) service: &'a str,
    pub(crate) protocol: Protocol,
    pub(crate) code: u16,
    pub(crate) grpc: Option<u32>,
    pub(crate) flags: ResponseFlags,
    pub(crate) mutual_tls: Option<bool>,
}

impl SeriesKey<'_> {
    fn hash64(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.reporter.hash(&mut h);
        self.peer.hash(&mut h);
        self.me_principal.hash(&mut h);
        self.service.hash(&mut h);
        self.protocol.hash(&mut h);
        self.code.hash(&mut h);
        self.grpc.hash(&mut h);
        self.flags.hash(&mut h);
        self.mutual_tls.hash(&mut h);
        h.finish()
    }

    fn owned(&self) -> OwnedKey {
        OwnedKey {
            reporter: self.reporter,
            peer: self.peer.clone(),
            me_principal: Arc::from(self.me_principal),
            service: Arc::from(self.service),
            protocol: self.protocol,
            code: self.code,
            grpc: self.grpc,
            flags: self.flags,
            mutual_tls: self.mutual_tls,
        }
    }
}

#[derive(Debug, Clone)]
struct OwnedKey {
    reporter: Reporter,
    peer: Peer,
    me_principal: Arc<str>,
    service: Arc<str>,
    protocol: Protocol,
    code: u16,
    grpc: Option<u32>,
    flags: ResponseFlags,
    mutual_tls: Option<bool>,
}

impl OwnedKey {
    fn matches(&self, k: &SeriesKey<'_>) -> bool {
        self.reporter == k.reporter
            && self.peer == *k.peer
            && &*self.me_principal == k.me_principal
            && &*self.service == k.service
            && self.protocol == k.protocol
            && self.code == k.code
            && self.grpc == k.grpc
            && self.flags == k.flags
            && self.mutual_tls == k.mutual_tls
    }
}

type Buckets = HashMap<u64, Vec<(OwnedKey, Arc<Series>)>>;

/// Cached handles by label set: lock-free reads, copy-on-write inserts.
#[derive(Debug, Default)]
pub(crate) struct SeriesCache {
    map: ArcSwap<Buckets>,
    len: std::sync::atomic::AtomicUsize,
    insert: Mutex<()>,
}

impl SeriesCache {
    pub(crate) fn get(&self, me: &Workload, k: &SeriesKey<'_>) -> Arc<Series> {
        let hash = k.hash64();
        if let Some(s) = find(&self.map.load(), hash, k) {
            return s;
        }
        let _guard = self.insert.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.map.load_full();
        if let Some(s) = find(&current, hash, k) {
            return s;
        }
        if self.len.load(std::sync::atomic::Ordering::Relaxed) >= MAX_SERIES {
            let unknown = Peer::unknown();
            let overflow = SeriesKey {
                peer: &unknown,
                me_principal: UNKNOWN,
                service: UNKNOWN,
                ..*k
            };
            return Arc::new(register(me, &overflow));
        }
        let series = Arc::new(register(me, k));
        let mut next: Buckets = (*current).clone();
        next.entry(hash)
            .or_default()
            .push((k.owned(), series.clone()));
        self.map.store(Arc::new(next));
        self.len.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        series
    }
}

fn find(map: &Buckets, hash: u64, k: &SeriesKey<'_>) -> Option<Arc<Series>> {
    map.get(&hash)?
        .iter()
        .find(|(owned, _)| owned.matches(k))
        .map(|(_, s)| s.clone())
}

/// Istio's label set for `k`, with `me` as the reporting side.
pub(crate) fn labels(me: &Workload, k: &SeriesKey<'_>) -> Vec<Label> {
    let mine = |name: &'static str, v: &str| Label::new(name, v.to_string());
    let (src, dst) = match k.reporter {
        Reporter::Source => ("source", "destination"),
        Reporter::Destination => ("destination", "source"),
    };
    let (svc_name, svc_ns) = service_parts(k.service);
    let mut l = Vec::with_capacity(20);
    l.push(Label::new("reporter", k.reporter.as_str()));
    let side =
        |l: &mut Vec<Label>, side: &str, w: &str, ns: &str, principal: &str, app: &str, v: &str| {
            l.push(Label::new(format!("{side}_workload"), w.to_string()));
            l.push(Label::new(
                format!("{side}_workload_namespace"),
                ns.to_string(),
            ));
            l.push(Label::new(
                format!("{side}_principal"),
                principal.to_string(),
            ));
            l.push(Label::new(format!("{side}_app"), app.to_string()));
            l.push(Label::new(format!("{side}_version"), v.to_string()));
        };
    side(
        &mut l,
        src,
        &me.name,
        &me.namespace,
        k.me_principal,
        &me.app,
        &me.version,
    );
    let p = k.peer;
    side(
        &mut l,
        dst,
        &p.workload,
        &p.namespace,
        &p.principal,
        &p.app,
        &p.version,
    );
    l.push(mine("destination_service", k.service));
    l.push(mine("destination_service_name", svc_name));
    l.push(mine("destination_service_namespace", svc_ns));
    l.push(Label::new("request_protocol", k.protocol.as_str()));
    l.push(mine("response_code", &k.code.to_string()));
    l.push(match k.grpc {
        Some(g) => mine("grpc_response_status", &g.to_string()),
        None => Label::new("grpc_response_status", ""),
    });
    l.push(mine("response_flags", &k.flags.to_string()));
    l.push(Label::new(
        "connection_security_policy",
        match k.mutual_tls {
            Some(true) => "mutual_tls",
            Some(false) => "none",
            None => UNKNOWN,
        },
    ));
    l
}

fn register(me: &Workload, k: &SeriesKey<'_>) -> Series {
    let labels = labels(me, k);
    Series {
        requests: metrics::counter!(REQUESTS_TOTAL, labels.clone()),
        duration: metrics::histogram!(REQUEST_DURATION, labels.clone()),
        request_bytes: metrics::histogram!(REQUEST_BYTES, labels.clone()),
        response_bytes: metrics::histogram!(RESPONSE_BYTES, labels),
    }
}

/// Counts a server-side connection: `istio_tcp_connections_opened_total` now,
/// `istio_tcp_connections_closed_total` when the guard drops.
pub(crate) fn connection(
    me: &Workload,
    me_principal: &str,
    caller: &Peer,
    service: &str,
    mutual_tls: bool,
) -> ConnectionGuard {
    let key = SeriesKey {
        reporter: Reporter::Destination,
        peer: caller,
        me_principal,
        service,
        protocol: Protocol::Http,
        code: 0,
        grpc: None,
        flags: ResponseFlags::NONE,
        mutual_tls: Some(mutual_tls),
    };
    let labels: Vec<Label> = labels(me, &key)
        .into_iter()
        .filter(|l| !matches!(l.key(), "response_code" | "grpc_response_status"))
        .map(|l| match l.key() {
            "request_protocol" => Label::new("request_protocol", "tcp"),
            _ => l,
        })
        .collect();
    metrics::counter!(TCP_OPENED, labels.clone()).increment(1);
    ConnectionGuard {
        closed: metrics::counter!(TCP_CLOSED, labels),
    }
}

/// Counts its connection closed when dropped ([`super::Telemetry::connection`]).
#[derive(Debug)]
pub struct ConnectionGuard {
    closed: Counter,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.closed.increment(1);
    }
}
