//! Config shared by the interop tests: one service with two versions, a header match and a split.

#![allow(dead_code)]

use std::net::SocketAddr;

/// A ServiceEntry with endpoints `v1` and `v2`, a DestinationRule with their subsets, and a
/// VirtualService that sends `x-canary: true` to v2 and splits the rest `w1`/`w2`.
pub(crate) fn two_version_service(
    host: &str,
    port: u16,
    proto: &str,
    v1: SocketAddr,
    v2: SocketAddr,
    w1: u32,
    w2: u32,
) -> String {
    with_lb(host, port, proto, v1, v2, w1, w2, Some("ROUND_ROBIN"))
}

/// As [`two_version_service`], with the DestinationRule's `loadBalancer.simple` (`None`: the
/// default policy).
#[allow(clippy::too_many_arguments)]
pub(crate) fn with_lb(
    host: &str,
    port: u16,
    proto: &str,
    v1: SocketAddr,
    v2: SocketAddr,
    w1: u32,
    w2: u32,
    lb: Option<&str>,
) -> String {
    let policy = match lb {
        Some(simple) => format!("  trafficPolicy:\n    loadBalancer:\n      simple: {simple}\n"),
        None => String::new(),
    };
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: svc
  namespace: default
spec:
  hosts: [{host}]
  ports:
  - number: {port}
    name: {proto}
    protocol: {proto_upper}
  resolution: STATIC
  endpoints:
  - address: 127.0.0.1
    ports: {{ {proto}: {p1} }}
    labels: {{ version: v1 }}
  - address: 127.0.0.1
    ports: {{ {proto}: {p2} }}
    labels: {{ version: v2 }}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: svc
  namespace: default
spec:
  host: {host}
{policy}  subsets:
  - name: v1
    labels: {{ version: v1 }}
  - name: v2
    labels: {{ version: v2 }}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: svc
  namespace: default
spec:
  hosts: [{host}]
  http:
  - name: canary-header
    match:
    - headers:
        x-canary:
          exact: "true"
    route:
    - destination: {{ host: {host}, subset: v2 }}
  - name: split
    route:
    - destination: {{ host: {host}, subset: v1 }}
      weight: {w1}
    - destination: {{ host: {host}, subset: v2 }}
      weight: {w2}
"#,
        proto_upper = proto.to_uppercase(),
        p1 = v1.port(),
        p2 = v2.port(),
    )
}

/// Share of `n` out of `total`.
pub(crate) fn share(n: usize, total: usize) -> f64 {
    n as f64 / total as f64
}

/// Cluster name → weight of the last route of `target`'s route table, if it forwards.
pub(crate) fn last_route_weights(
    state: &mesh_core::MeshResources,
    target: &str,
) -> Option<std::collections::BTreeMap<String, u32>> {
    let table = state.route_tables.get(target)?;
    let route = table.virtual_hosts.first()?.routes.last()?;
    match &route.action {
        mesh_core::route::RouteAction::Forward(f) => Some(
            f.clusters
                .iter()
                .map(|c| (c.name.clone(), c.weight))
                .collect(),
        ),
        _ => None,
    }
}
