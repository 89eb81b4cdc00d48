//! The JSON views: `config_dump` (every xDS resource with its version and status), `routes`
//! (listeners and their route tables) and `clusters` (policies, endpoints and, with a client,
//! their live state).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mesh_core::MeshResources;
use mesh_core::cluster::{CircuitBreakers, LbPolicy, OutlierDetection};
use mesh_core::endpoint::{HealthStatus, Locality};
use mesh_core::listener::{HttpFilter, Listener};
use mesh_core::route::RouteTable;
use mesh_xds_client::client::XdsStatus;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::balance::BalancerKind;
use crate::client::debug::LiveCluster;
use crate::endpoint::EndpointStats;

/// CSDS-style: each resource with its version, status, last error and content. Without an xDS
/// client's status (a static snapshot), each resource with its content only.
pub(super) fn config_dump(resources: &MeshResources, status: Option<&XdsStatus>) -> Value {
    let Some(status) = status else {
        let all = kinds(resources)
            .map(|(kind, name, resource)| json!({"kind": kind, "name": name, "resource": resource}))
            .collect::<Vec<_>>();
        return json!({ "xds": null, "resources": all });
    };
    let listed = status
        .resources
        .iter()
        .map(|view| {
            let mut v = serde_json::to_value(view).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                m.insert(
                    "resource".into(),
                    content(resources, view.kind, &view.name).unwrap_or(Value::Null),
                );
            }
            v
        })
        .collect::<Vec<_>>();
    json!({
        "xds": {
            "server": status.server,
            "protocol": status.protocol,
            "connected": status.connected,
            "last_error": status.last_error,
            "targets": status.targets,
        },
        "resources": listed,
    })
}

/// Every resource of `resources` as (kind, name, content), in LDS, RDS, CDS, EDS order.
fn kinds(r: &MeshResources) -> impl Iterator<Item = (&'static str, &String, Value)> {
    fn each<'a, T: Serialize + 'a>(
        kind: &'static str,
        m: &'a BTreeMap<String, Arc<T>>,
    ) -> impl Iterator<Item = (&'static str, &'a String, Value)> + 'a {
        m.iter()
            .map(move |(n, v)| (kind, n, serde_json::to_value(v).unwrap_or(Value::Null)))
    }
    each("LDS", &r.listeners)
        .chain(each("LDS", &r.inbound))
        .chain(each("RDS", &r.route_tables))
        .chain(each("CDS", &r.clusters))
        .chain(each("EDS", &r.assignments))
}

/// The content of the resource `kind` (`LDS`, `RDS`, `CDS`, `EDS`) `name`, if the state has it.
fn content(r: &MeshResources, kind: &str, name: &str) -> Option<Value> {
    let v = match kind {
        "LDS" => match r.listeners.get(name) {
            Some(l) => serde_json::to_value(l),
            None => serde_json::to_value(r.inbound.get(name)?),
        },
        "RDS" => serde_json::to_value(r.route_tables.get(name)?),
        "CDS" => serde_json::to_value(r.clusters.get(name)?),
        "EDS" => serde_json::to_value(r.assignments.get(name)?),
        _ => return None,
    };
    v.ok()
}

/// One listener (target) and the route table it names.
#[derive(Debug, Serialize)]
pub(super) struct ListenerRoutes<'a> {
    target: &'a str,
    route_config_name: &'a str,
    http_filters: &'a [HttpFilter],
    /// `None` when the client does not have the table (yet).
    route_table: Option<&'a RouteTable>,
}

/// Listeners by target, each with its route table.
pub(super) fn routes(r: &MeshResources) -> Vec<ListenerRoutes<'_>> {
    r.listeners
        .values()
        .map(|l: &Arc<Listener>| ListenerRoutes {
            target: &l.name,
            route_config_name: &l.route_config_name,
            http_filters: &l.http_filters,
            route_table: r.route_tables.get(&l.route_config_name).map(|t| &**t),
        })
        .collect()
}

/// A cluster: its policies, endpoints and live state.
#[derive(Debug, Serialize)]
pub(super) struct ClusterView<'a> {
    name: &'a str,
    eds_service_name: &'a str,
    lb_policy: &'a LbPolicy,
    connect_timeout_ms: u64,
    circuit_breakers: &'a CircuitBreakers,
    outlier_detection: Option<&'a OutlierDetection>,
    /// True when the endpoints are reached over mutual TLS.
    tls: bool,
    /// False when no endpoint assignment (EDS) is known for the cluster.
    has_assignment: bool,
    /// `None` without a client, or when the client has no runtime for the cluster yet.
    live: Option<ClusterLive>,
    endpoints: Vec<EndpointView<'a>>,
}

/// A cluster's live counters in a client.
#[derive(Debug, Serialize)]
struct ClusterLive {
    /// The algorithm the balancer runs (`peak_ewma` for `LEAST_REQUEST`).
    balancer: &'static str,
    requests_in_flight: u32,
    retries_in_flight: u32,
    pending: u32,
    /// Endpoints outlier detection counts as ejected; `None` without outlier detection.
    outlier_ejected: Option<u32>,
}

/// One endpoint of a cluster.
#[derive(Debug, Serialize)]
pub(super) struct EndpointView<'a> {
    address: SocketAddr,
    locality: &'a Locality,
    priority: u32,
    locality_weight: Option<u32>,
    weight: u32,
    /// As the control plane reports it.
    health: HealthStatus,
    labels: &'a BTreeMap<String, String>,
    /// `None` without a client.
    live: Option<EndpointLive>,
}

/// One endpoint's live statistics in a client.
#[derive(Debug, Serialize)]
pub(super) struct EndpointLive {
    in_flight: u32,
    /// Peak-EWMA latency estimate; `None` before the first response.
    ewma_latency_ms: Option<f64>,
    /// True while outlier detection has it ejected.
    ejected: bool,
    /// When the ejection ends, in milliseconds since the Unix epoch.
    ejected_until_unix_ms: Option<u64>,
    /// Time left of the ejection, in milliseconds.
    ejection_remaining_ms: Option<u64>,
    /// Times ejected (the next ejection lasts `base_ejection_time` × this + 1).
    ejections: u32,
    consecutive_5xx: u32,
}

/// Every cluster of `r`, with live state from `live` (a client's) when given.
pub(super) fn clusters<'a>(
    r: &'a MeshResources,
    live: Option<&BTreeMap<String, LiveCluster>>,
) -> Vec<ClusterView<'a>> {
    let now = Instant::now();
    let wall = SystemTime::now();
    r.clusters
        .values()
        .map(|c| {
            let cla = r.assignments.get(&c.eds_service_name);
            let rt = live.and_then(|l| l.get(&c.name));
            let endpoints = cla
                .iter()
                .flat_map(|cla| &cla.localities)
                .flat_map(|l| l.endpoints.iter().map(move |e| (l, e)))
                .map(|(l, e)| EndpointView {
                    address: e.address,
                    locality: &l.locality,
                    priority: l.priority,
                    locality_weight: l.weight,
                    weight: e.weight,
                    health: e.health,
                    labels: &e.labels,
                    live: rt
                        .and_then(|rt| rt.endpoints.iter().find(|s| s.addr == e.address))
                        .map(|s| endpoint_live(s, now, wall)),
                })
                .collect();
            ClusterView {
                name: &c.name,
                eds_service_name: &c.eds_service_name,
                lb_policy: &c.lb_policy,
                connect_timeout_ms: millis(c.connect_timeout),
                circuit_breakers: &c.circuit_breakers,
                outlier_detection: c.outlier_detection.as_ref(),
                tls: c.tls.is_some(),
                has_assignment: cla.is_some(),
                live: rt.map(|rt| ClusterLive {
                    balancer: balancer_name(&rt.balancer),
                    requests_in_flight: rt.requests,
                    retries_in_flight: rt.retries,
                    pending: rt.pending,
                    outlier_ejected: rt.ejected,
                }),
                endpoints,
            }
        })
        .collect()
}

/// The live statistics of `s` at `now` (`wall` is the same moment on the system clock).
fn endpoint_live(s: &EndpointStats, now: Instant, wall: SystemTime) -> EndpointLive {
    use std::sync::atomic::Ordering::Relaxed;
    let ewma = s.ewma_nanos.load(Relaxed);
    let remaining = s.is_ejected(now).then(|| {
        let until = s.ejected_until.load(Relaxed);
        Duration::from_nanos(until.saturating_sub(s.nanos(now)))
    });
    EndpointLive {
        in_flight: s.in_flight.load(Relaxed),
        ewma_latency_ms: (ewma != 0).then(|| ewma as f64 / 1e6),
        ejected: remaining.is_some(),
        ejected_until_unix_ms: remaining
            .and_then(|d| (wall + d).duration_since(UNIX_EPOCH).ok())
            .map(millis),
        ejection_remaining_ms: remaining.map(millis),
        ejections: s.ejections.load(Relaxed),
        consecutive_5xx: s.consecutive_5xx.load(Relaxed),
    }
}

fn balancer_name(k: &BalancerKind) -> &'static str {
    match k {
        BalancerKind::RoundRobin => "round_robin",
        BalancerKind::Random => "random",
        BalancerKind::LeastRequest { .. } => "least_request",
        BalancerKind::PeakEwma { .. } => "peak_ewma",
        BalancerKind::RingHash { .. } => "ring_hash",
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
