//! Less common features: consistent hashing, faults, mirrors, rewrites, port-specific matches,
//! direct responses, IPv6 endpoints.

use std::net::SocketAddr;
use std::time::Duration;

use mesh_core::cluster::LbPolicy;
use mesh_core::route::{AbortStatus, HashPolicy, RouteAction};

use super::tests::{build_text, forward};

#[test]
fn consistent_hash_faults_mirrors_and_rewrites() {
    let text = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: svc, namespace: shop}
spec:
  hosts: [cart.shop.svc.cluster.local]
  ports: [{number: 80, name: http}, {number: 8080, name: admin}]
  resolution: STATIC
  endpoints: [{address: "fd00::1"}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: cart, namespace: shop}
spec:
  host: cart
  trafficPolicy:
    loadBalancer:
      consistentHash: {httpCookie: {name: user, ttl: 60s}, ringHash: {minimumRingSize: 2048}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: cart, namespace: shop}
spec:
  hosts: [cart]
  http:
  - match: [{port: 8080}]
    directResponse: {status: 403, body: {string: no}}
  - match: [{uri: {regex: "/v[0-9]+/.*"}, ignoreUriCase: true, withoutHeaders: {x-debug: {}}}]
    route: [{destination: {host: cart}}]
    fault:
      abort: {grpcStatus: UNAVAILABLE, percentage: {value: 12.5}}
      delay: {fixedDelay: 1.5s, percentage: {value: 100}}
    mirror: {host: cart, port: {number: 8080}}
    mirrorPercentage: {value: 5}
    rewrite: {uri: /, authority: cart.internal}
    retries: {attempts: 0}
"#;
    let (res, diags) = build_text(text);
    assert!(diags.is_empty(), "{diags:?}");
    let host = "cart.shop.svc.cluster.local";
    let c80 = &res.clusters[&format!("outbound|80||{host}")];
    assert_eq!(
        c80.lb_policy,
        LbPolicy::RingHash {
            minimum_ring_size: 2048,
            maximum_ring_size: 8 * 1024 * 1024
        }
    );
    assert_eq!(
        res.assignments[&format!("outbound|80||{host}")]
            .endpoints()
            .next()
            .unwrap()
            .address,
        "[fd00::1]:80".parse::<SocketAddr>().unwrap()
    );
    let admin = &res.route_tables[&format!("{host}:8080")].virtual_hosts[0].routes;
    assert_eq!(admin.len(), 2, "the port-8080 rule applies only there");
    assert!(matches!(
        admin[0].action,
        RouteAction::DirectResponse { status: 403, .. }
    ));
    let routes = &res.route_tables[&format!("{host}:80")].virtual_hosts[0].routes;
    assert_eq!(routes.len(), 1);
    let r = &routes[0];
    assert!(!r.matcher.case_sensitive);
    assert!(r.matcher.headers[0].invert && r.matcher.headers[0].value.is_none());
    let f = forward(r);
    assert_eq!(
        f.hash_policies,
        [HashPolicy::Cookie {
            name: "user".into(),
            ttl: Some(Duration::from_secs(60))
        }]
    );
    assert_eq!(f.retry, None, "attempts: 0 disables retries");
    assert_eq!(f.mirrors[0].cluster, format!("outbound|8080||{host}"));
    assert_eq!(f.mirrors[0].percent.as_percent(), 5.0);
    assert_eq!(f.prefix_rewrite.as_deref(), Some("/"));
    assert_eq!(f.host_rewrite.as_deref(), Some("cart.internal"));
    let fault = r.fault.as_ref().unwrap();
    assert_eq!(fault.abort.as_ref().unwrap().status, AbortStatus::Grpc(14));
    assert_eq!(fault.abort.as_ref().unwrap().percent.per_million(), 125_000);
    assert_eq!(
        fault.delay.as_ref().unwrap().delay,
        Duration::from_millis(1500)
    );
}
