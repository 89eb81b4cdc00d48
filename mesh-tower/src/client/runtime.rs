//! Per-cluster runtime state, rebuilt from the mesh state whenever it changes: the balancer over
//! the cluster's endpoints, its circuit breaker and retry budget, and its outlier detector. Live
//! counters carry over from the previous runtime, so a config change drops no request and resets
//! no limit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use mesh_core::cluster::Cluster;
use mesh_core::endpoint::ClusterLoadAssignment;
use mesh_core::{MeshResources, Snapshot};
use tokio::time::Instant;

use crate::balance::Balancer;
use crate::breaker::CircuitBreaker;
use crate::outlier::OutlierDetector;
use crate::ratelimit::TokenBucket;
use crate::retry::RetryBudget;
use crate::tls::TlsConnector;

use super::Body;

/// The two client configs (HTTP/1.1 and HTTP/2 ALPN) of a client that has an identity.
#[derive(Debug, Clone)]
pub(crate) struct ClientTls {
    pub(crate) http1: Arc<rustls::ClientConfig>,
    pub(crate) http2: Arc<rustls::ClientConfig>,
}

/// The pools of one TLS cluster: its own hyper clients over its own connector.
#[derive(Debug, Clone)]
pub(crate) struct TlsClients {
    pub(crate) http1: HyperClient<TlsConnector, Body>,
    pub(crate) http2: HyperClient<TlsConnector, Body>,
}

impl TlsClients {
    fn new(tls: &ClientTls, cluster: &Cluster) -> Self {
        TlsClients {
            http1: HyperClient::builder(TokioExecutor::new())
                .build(TlsConnector::new(tls.http1.clone(), cluster)),
            http2: HyperClient::builder(TokioExecutor::new())
                .http2_only(true)
                .build(TlsConnector::new(tls.http2.clone(), cluster)),
        }
    }
}

/// Everything the client needs to send to one cluster.
#[derive(Debug)]
pub(crate) struct ClusterRuntime {
    pub(crate) cluster: Arc<Cluster>,
    assignment: Option<Arc<ClusterLoadAssignment>>,
    pub(crate) balancer: Balancer,
    pub(crate) breaker: CircuitBreaker,
    pub(crate) budget: RetryBudget,
    pub(crate) outlier: Option<Arc<OutlierDetector>>,
    /// The cluster's own TLS pools when `cluster.tls` is set and the client has an identity;
    /// `None` for plaintext clusters (they use the client's shared pools).
    pub(crate) tls: Option<TlsClients>,
    /// The server side as metrics label it (the identity its TLS settings expect).
    pub(crate) peer: Arc<crate::telemetry::Peer>,
    /// `destination_service`: the service host of the cluster's name.
    pub(crate) service: Arc<str>,
}

/// Everything built from one published mesh state, swapped whole on every change: a request
/// routes on `built_from` and finds its clusters and buckets here, so the three always agree.
#[derive(Debug)]
pub(crate) struct RuntimeSet {
    /// The state these were built from.
    pub(crate) built_from: Arc<MeshResources>,
    /// Cluster runtimes by cluster name.
    pub(crate) clusters: HashMap<String, Arc<ClusterRuntime>>,
    /// Token buckets of rate-limited routes, keyed by the address of the route in `built_from`
    /// (stable for as long as that state is, which this set keeps alive), so a request finds its
    /// bucket without building a key.
    pub(crate) buckets: HashMap<usize, Arc<TokenBucket>>,
}

/// The live [`RuntimeSet`].
pub(crate) type Runtimes = ArcSwap<RuntimeSet>;

impl RuntimeSet {
    /// The set for `state`, reusing what `previous` has for unchanged parts.
    pub(crate) fn build(
        state: Arc<MeshResources>,
        previous: Option<&RuntimeSet>,
        tls: Option<&ClientTls>,
    ) -> RuntimeSet {
        let empty_clusters = HashMap::new();
        let empty_buckets = HashMap::new();
        let clusters = build(
            &state,
            previous.map_or(&empty_clusters, |p| &p.clusters),
            tls,
        );
        let buckets = buckets(&state, previous.map_or(&empty_buckets, |p| &p.buckets));
        RuntimeSet {
            built_from: state,
            clusters,
            buckets,
        }
    }
}

/// Brings `runtimes` up to the newest state of `state` (under `lock`, so that concurrent
/// refreshes and the background task only ever move forward).
pub(crate) fn refresh(
    state: &Snapshot<MeshResources>,
    runtimes: &Runtimes,
    lock: &std::sync::Mutex<()>,
    tls: Option<&ClientTls>,
) {
    let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
    let newest = state.load_full();
    let current = runtimes.load_full();
    if Arc::ptr_eq(&current.built_from, &newest) {
        return;
    }
    runtimes.store(Arc::new(RuntimeSet::build(newest, Some(&current), tls)));
}

/// The key of a route in [`Buckets`].
pub(crate) fn route_key(route: &mesh_core::route::Route) -> usize {
    route as *const mesh_core::route::Route as usize
}

/// Buckets for every rate-limited route of `resources`; a route with the same table, name and
/// limit as before keeps its bucket (and its tokens).
pub(crate) fn buckets(
    resources: &MeshResources,
    previous: &HashMap<usize, Arc<TokenBucket>>,
) -> HashMap<usize, Arc<TokenBucket>> {
    let mut by_name: HashMap<(String, String), Arc<TokenBucket>> = HashMap::new();
    for b in previous.values() {
        if let Some(n) = b.owner() {
            by_name.insert(n.clone(), b.clone());
        }
    }
    let mut out = HashMap::new();
    for table in resources.route_tables.values() {
        for route in table.virtual_hosts.iter().flat_map(|v| &v.routes) {
            let Some(rl) = &route.rate_limit else {
                continue;
            };
            let owner = (table.name.clone(), route.name.clone());
            let bucket = match by_name.get(&owner) {
                Some(b) if b.config() == rl => b.clone(),
                _ => Arc::new(TokenBucket::new(rl.clone()).with_owner(owner)),
            };
            out.insert(route_key(route), bucket);
        }
    }
    out
}

/// Builds the runtimes for `resources`, reusing what `previous` has for unchanged parts.
pub(crate) fn build(
    resources: &MeshResources,
    previous: &HashMap<String, Arc<ClusterRuntime>>,
    tls: Option<&ClientTls>,
) -> HashMap<String, Arc<ClusterRuntime>> {
    let mut out = HashMap::with_capacity(resources.clusters.len());
    for (name, cluster) in &resources.clusters {
        let assignment = resources
            .assignments
            .get(&cluster.eds_service_name)
            .cloned();
        let prev = previous.get(name);
        if let Some(p) = prev
            && Arc::ptr_eq(&p.cluster, cluster)
            && same(&p.assignment, &assignment)
        {
            out.insert(name.clone(), p.clone());
            continue;
        }
        let empty = ClusterLoadAssignment::default();
        let cla = assignment.as_deref().unwrap_or(&empty);
        let balancer = Balancer::new(&cluster.lb_policy, cla, prev.map(|p| &p.balancer));
        // Limits change live; the counters of requests in flight carry over.
        let (breaker, budget) = match prev {
            Some(p) => {
                p.breaker.update(&cluster.circuit_breakers);
                p.budget.update(&cluster.circuit_breakers);
                (p.breaker.clone(), p.budget.clone())
            }
            None => (
                CircuitBreaker::new(&cluster.circuit_breakers),
                RetryBudget::new(&cluster.circuit_breakers),
            ),
        };
        let outlier = match (
            &cluster.outlier_detection,
            prev.and_then(|p| p.outlier.as_ref()),
        ) {
            (Some(cfg), Some(d))
                if prev.is_some_and(|p| p.cluster.outlier_detection.as_ref() == Some(cfg)) =>
            {
                Some(d.clone())
            }
            (Some(cfg), _) => Some(Arc::new(
                OutlierDetector::new(cfg.clone()).named(&cluster.name),
            )),
            (None, _) => None,
        };
        if let Some(d) = &outlier {
            d.set_host_count(balancer.endpoints().len());
        }
        // Pools carry over while the TLS settings (and the connect timeout the connector uses)
        // stay the same; otherwise new connections must follow the new settings.
        let tls_clients = match (&cluster.tls, tls) {
            (Some(_), Some(tls)) => match prev {
                Some(p)
                    if p.tls.is_some()
                        && p.cluster.tls == cluster.tls
                        && p.cluster.connect_timeout == cluster.connect_timeout =>
                {
                    p.tls.clone()
                }
                _ => Some(TlsClients::new(tls, cluster)),
            },
            _ => None,
        };
        let (peer, service) = crate::telemetry::destination_of(cluster);
        out.insert(
            name.clone(),
            Arc::new(ClusterRuntime {
                cluster: cluster.clone(),
                assignment,
                balancer,
                breaker,
                budget,
                outlier,
                tls: tls_clients,
                peer,
                service,
            }),
        );
    }
    out
}

fn same(a: &Option<Arc<ClusterLoadAssignment>>, b: &Option<Arc<ClusterLoadAssignment>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// Keeps `runtimes` in step with `state` and runs outlier-detection sweeps; ends when the
/// runtimes are dropped.
pub(crate) async fn maintain(
    state: Snapshot<MeshResources>,
    runtimes: std::sync::Weak<Runtimes>,
    lock: std::sync::Weak<std::sync::Mutex<()>>,
    tls: Option<ClientTls>,
) {
    let mut watcher = state.watch();
    let mut last_sweep: HashMap<String, Instant> = HashMap::new();
    let tick = Duration::from_millis(100);
    loop {
        tokio::select! {
            _ = watcher.changed() => {
                let (Some(r), Some(l)) = (runtimes.upgrade(), lock.upgrade()) else { return };
                refresh(&state, &r, &l, tls.as_ref());
            }
            _ = tokio::time::sleep(tick) => {
                let Some(r) = runtimes.upgrade() else { return };
                let now = Instant::now();
                for (name, rt) in r.load().clusters.iter() {
                    let (Some(d), Some(cfg)) = (&rt.outlier, &rt.cluster.outlier_detection) else { continue };
                    let due = last_sweep.get(name).is_none_or(|t| now.duration_since(*t) >= cfg.interval);
                    if due {
                        d.sweep(rt.balancer.endpoints(), now);
                        last_sweep.insert(name.clone(), now);
                    }
                }
            }
        }
    }
}
