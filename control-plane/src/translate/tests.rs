//! Translation of a valid set of all five kinds into the names and values Istio would produce.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use mesh_core::cluster::LbPolicy;
use mesh_core::route::{HeaderMatch, PathMatch, RetryOn, Route, RouteAction};
use mesh_core::{MeshResources, StringMatch};

use super::*;
use crate::config::parse_file;

/// Parses `text` as one file and builds it; returns every diagnostic (parse and semantic).
pub(super) fn build_text(text: &str) -> (MeshResources, Vec<Diagnostic>) {
    let (docs, mut diags) = parse_file(Path::new("config/mesh.yaml"), text);
    let (res, semantic) = build(&docs);
    diags.extend(semantic);
    (res, diags)
}

pub(super) const REVIEWS: &str = "reviews.default.svc.cluster.local";
pub(super) const RATINGS: &str = "ratings.default.svc.cluster.local";

/// All five kinds, bookinfo style.
pub(super) const MESH: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  ports:
  - {number: 9080, name: http, protocol: HTTP}
  resolution: STATIC
  workloadSelector:
    labels: {app: reviews}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1}
spec:
  address: 10.0.0.1
  labels: {app: reviews, version: v1}
  locality: us-east/zone-a
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2}
spec:
  address: 10.0.0.2
  ports: {http: 9081}
  weight: 3
  labels: {app: reviews, version: v2}
  locality: us-east/zone-b
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-elsewhere, namespace: other}
spec:
  address: 10.9.9.9
  labels: {app: reviews, version: v1}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings}
spec:
  hosts: [ratings.default.svc.cluster.local]
  ports:
  - {number: 9080, name: http, targetPort: 8080}
  resolution: STATIC
  endpoints:
  - address: 10.0.1.1
  - {address: 10.0.1.2, locality: us-west/zone-c, ports: {http: 8081}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 100, connectTimeout: 250ms}
      http: {http2MaxRequests: 1000, maxRetries: 5}
    outlierDetection: {consecutive5xxErrors: 7, interval: 5m, baseEjectionTime: 15m}
    retryBudget: {percent: 25}
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      loadBalancer: {simple: ROUND_ROBIN}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - name: canary
    match:
    - name: jason
      headers: {End-User: {exact: jason}}
    - uri: {prefix: /beta}
      method: {exact: POST}
    route:
    - destination: {host: reviews, subset: v2}
    timeout: 2s
    retries: {attempts: 3, perTryTimeout: 500ms, retryOn: "5xx,reset,502"}
    headers:
      request: {set: {X-Canary: "yes"}}
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 80
    - destination: {host: reviews, subset: v2}
      weight: 20
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ratings}
spec:
  parentRefs:
  - {group: "", kind: Service, name: ratings, port: 9080}
  rules:
  - backendRefs: [{name: ratings, port: 9080}]
  - matches:
    - path: {type: PathPrefix, value: /api}
    backendRefs: [{name: ratings}]
    timeouts: {request: 3s, backendRequest: 1s}
"#;

pub(super) fn forward(route: &Route) -> &mesh_core::route::ForwardAction {
    match &route.action {
        RouteAction::Forward(f) => f,
        other => panic!("not a forward: {other:?}"),
    }
}

fn addrs(res: &MeshResources, cluster: &str) -> Vec<(SocketAddr, u32)> {
    res.assignments[cluster]
        .endpoints()
        .map(|e| (e.address, e.weight))
        .collect()
}

#[test]
fn all_five_kinds_translate_to_istio_names() {
    let (res, diags) = build_text(MESH);
    assert!(diags.is_empty(), "{diags:#?}");
    let reviews = format!("{REVIEWS}:9080");
    let ratings = format!("{RATINGS}:9080");
    assert_eq!(
        res.listeners.keys().collect::<Vec<_>>(),
        [&ratings, &reviews]
    );
    assert_eq!(res.listeners[&reviews].route_config_name, reviews);
    let vh = &res.route_tables[&reviews].virtual_hosts[0];
    assert_eq!(vh.name, reviews);
    assert_eq!(vh.domains, [REVIEWS.to_string(), reviews.clone()]);
    let clusters: std::collections::BTreeSet<String> = res.clusters.keys().cloned().collect();
    let expected = [
        format!("outbound|9080||{RATINGS}"),
        format!("outbound|9080||{REVIEWS}"),
        format!("outbound|9080|v1|{REVIEWS}"),
        format!("outbound|9080|v2|{REVIEWS}"),
    ];
    assert_eq!(clusters, expected.into_iter().collect());
    for (name, c) in &res.clusters {
        assert_eq!(&c.eds_service_name, name);
        assert!(res.assignments.contains_key(name));
    }
}

#[test]
fn assignments_follow_selectors_subsets_and_ports() {
    let (res, _) = build_text(MESH);
    let a = |s: &str| s.parse::<SocketAddr>().unwrap();
    assert_eq!(
        addrs(&res, &format!("outbound|9080||{REVIEWS}")),
        [(a("10.0.0.1:9080"), 1), (a("10.0.0.2:9081"), 3)]
    );
    assert_eq!(
        addrs(&res, &format!("outbound|9080|v1|{REVIEWS}")),
        [(a("10.0.0.1:9080"), 1)]
    );
    assert_eq!(
        addrs(&res, &format!("outbound|9080|v2|{REVIEWS}")),
        [(a("10.0.0.2:9081"), 3)]
    );
    let ratings = &res.assignments[&format!("outbound|9080||{RATINGS}")];
    assert_eq!(ratings.localities.len(), 2);
    assert_eq!(ratings.localities[0].locality.region, "");
    assert_eq!(ratings.localities[1].locality.region, "us-west");
    assert_eq!(ratings.localities[1].locality.zone, "zone-c");
    assert_eq!(
        addrs(&res, &format!("outbound|9080||{RATINGS}")),
        [(a("10.0.1.1:8080"), 1), (a("10.0.1.2:8081"), 1)]
    );
    let v1 = &res.assignments[&format!("outbound|9080|v1|{REVIEWS}")];
    assert_eq!(v1.localities[0].locality.zone, "zone-a");
    assert_eq!(v1.localities[0].endpoints[0].labels["version"], "v1");
}

#[test]
fn virtual_service_routes_in_order_with_weights() {
    let (res, _) = build_text(MESH);
    let routes = &res.route_tables[&format!("{REVIEWS}:9080")].virtual_hosts[0].routes;
    assert_eq!(routes.len(), 3, "two matches of rule 0, then rule 1");
    assert_eq!(routes[0].name, "canary.jason");
    assert_eq!(
        routes[0].matcher.headers,
        [HeaderMatch {
            name: "end-user".into(),
            value: Some(StringMatch::Exact("jason".into())),
            invert: false
        }]
    );
    assert_eq!(routes[1].name, "canary");
    assert_eq!(routes[1].matcher.path, PathMatch::Prefix("/beta".into()));
    assert_eq!(routes[1].matcher.headers[0].name, ":method");
    assert_eq!(routes[0].action, routes[1].action);
    let canary = forward(&routes[0]);
    assert_eq!(
        canary.clusters[0].name,
        format!("outbound|9080|v2|{REVIEWS}")
    );
    assert_eq!(canary.timeout, Some(Duration::from_secs(2)));
    let retry = canary.retry.as_ref().unwrap();
    assert_eq!(retry.num_retries, 3);
    assert_eq!(retry.per_try_timeout, Some(Duration::from_millis(500)));
    assert_eq!(
        retry.retry_on,
        [
            RetryOn::FiveXx,
            RetryOn::Reset,
            RetryOn::RetriableStatusCodes
        ]
    );
    assert_eq!(retry.retriable_status_codes, [502]);
    assert_eq!(
        routes[0].request_headers.set,
        [("x-canary".to_string(), "yes".to_string())]
    );

    let split = forward(&routes[2]);
    let weights: Vec<(&str, u32)> = split
        .clusters
        .iter()
        .map(|c| (c.name.as_str(), c.weight))
        .collect();
    assert_eq!(
        weights,
        [
            (format!("outbound|9080|v1|{REVIEWS}").as_str(), 80),
            (format!("outbound|9080|v2|{REVIEWS}").as_str(), 20)
        ]
    );
    assert_eq!(split.timeout, None);
    assert_eq!(
        split.retry,
        Some(istio_default_retry()),
        "Istio's default retries"
    );
}

#[test]
fn destination_rule_policies_reach_the_clusters() {
    let (res, _) = build_text(MESH);
    let base = &res.clusters[&format!("outbound|9080||{REVIEWS}")];
    assert_eq!(base.lb_policy, LbPolicy::LeastRequest { choice_count: 2 });
    assert_eq!(base.connect_timeout, Duration::from_millis(250));
    let cb = &base.circuit_breakers;
    assert_eq!(
        (
            cb.max_connections,
            cb.max_pending_requests,
            cb.max_requests,
            cb.max_retries
        ),
        (100, u32::MAX, 1000, 5)
    );
    assert_eq!(cb.retry_budget.as_ref().unwrap().budget_percent, 25.0);
    assert_eq!(cb.retry_budget.as_ref().unwrap().min_retry_concurrency, 3);
    let od = base.outlier_detection.as_ref().unwrap();
    assert_eq!(od.consecutive_5xx, Some(7));
    assert_eq!(od.interval, Duration::from_secs(300));
    assert_eq!(od.base_ejection_time, Duration::from_secs(900));
    assert_eq!(od.max_ejection_time, Duration::from_secs(900));
    assert_eq!(od.max_ejection_percent, 10);

    let v1 = &res.clusters[&format!("outbound|9080|v1|{REVIEWS}")];
    assert_eq!(v1.circuit_breakers, base.circuit_breakers, "inherited");
    let v2 = &res.clusters[&format!("outbound|9080|v2|{REVIEWS}")];
    assert_eq!(v2.lb_policy, LbPolicy::RoundRobin, "subset override");
    assert_eq!(
        v2.outlier_detection, base.outlier_detection,
        "not overridden"
    );

    let plain = &res.clusters[&format!("outbound|9080||{RATINGS}")];
    assert_eq!(plain.circuit_breakers, istio_default_circuit_breakers());
    assert_eq!(plain.connect_timeout, Duration::from_secs(10));
    assert_eq!(plain.outlier_detection, None);
}

#[test]
fn http_route_precedence_segments_and_timeouts() {
    let (res, _) = build_text(MESH);
    let routes = &res.route_tables[&format!("{RATINGS}:9080")].virtual_hosts[0].routes;
    let paths: Vec<&PathMatch> = routes.iter().map(|r| &r.matcher.path).collect();
    assert_eq!(
        paths,
        [
            &PathMatch::Exact("/api".into()),
            &PathMatch::Prefix("/api/".into()),
            &PathMatch::Prefix("/".into()),
        ],
        "the longer prefix of rule 1 goes before rule 0's catch-all"
    );
    assert_eq!(routes[0].name, "default.ratings.1.0");
    let api = forward(&routes[0]);
    assert_eq!(api.clusters[0].name, format!("outbound|9080||{RATINGS}"));
    assert_eq!(api.timeout, Some(Duration::from_secs(3)));
    let retry = api.retry.as_ref().unwrap();
    assert_eq!(retry.per_try_timeout, Some(Duration::from_secs(1)));
    assert_eq!(retry.num_retries, ISTIO_DEFAULT_RETRY_ATTEMPTS);
}

#[test]
fn default_route_and_retry_match_istio() {
    let only_se = MESH.split("\n---\n").nth(4).unwrap();
    let (res, diags) = build_text(only_se);
    assert!(diags.is_empty(), "{diags:?}");
    let table = &res.route_tables[&format!("{RATINGS}:9080")];
    let route = &table.virtual_hosts[0].routes[0];
    assert_eq!(route.name, "default");
    assert_eq!(route.matcher.path, PathMatch::Prefix("/".into()));
    let f = forward(route);
    assert_eq!(f.clusters[0].name, format!("outbound|9080||{RATINGS}"));
    let retry = f.retry.as_ref().unwrap();
    assert_eq!(retry.num_retries, 2);
    assert_eq!(
        retry.retry_on,
        [
            RetryOn::ConnectFailure,
            RetryOn::RefusedStream,
            RetryOn::Unavailable,
            RetryOn::Cancelled,
            RetryOn::RetriableStatusCodes
        ]
    );
    assert_eq!(retry.retriable_status_codes, [503]);
    assert_eq!(f.timeout, None);
}
