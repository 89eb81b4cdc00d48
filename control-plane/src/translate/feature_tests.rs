//! Less common features: consistent hashing, faults, mirrors, rewrites, port-specific matches,
//! direct responses, IPv6 endpoints.

use std::net::SocketAddr;
use std::time::Duration;

use mesh_core::StringMatch;
use mesh_core::cluster::LbPolicy;
use mesh_core::route::{AbortStatus, HashPolicy, PathMatch, RouteAction};

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

#[test]
fn http_route_filters_and_service_entry_references() {
    let text = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: cart, namespace: shop}
spec:
  hosts: [cart.example.com]
  ports: [{number: 80, name: http}]
  resolution: STATIC
  endpoints: [{address: 10.1.0.1}]
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: HTTPRoute
metadata: {name: cart, namespace: shop}
spec:
  parentRefs: [{group: networking.istio.io, kind: ServiceEntry, name: cart}]
  rules:
  - name: v1
    matches:
    - path: {type: PathPrefix, value: /v1/}
      method: GET
      headers: [{name: X-Env, value: canary}, {name: x-env, value: ignored}]
      queryParams: [{type: RegularExpression, name: debug, value: "1|true"}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: X-A, value: "1"}], remove: [X-B]}
    - type: ResponseHeaderModifier
      responseHeaderModifier: {add: [{name: x-c, value: "2"}]}
    - type: RequestMirror
      requestMirror:
        backendRef: {group: networking.istio.io, kind: ServiceEntry, name: cart}
        fraction: {numerator: 1, denominator: 3}
    - type: URLRewrite
      urlRewrite: {hostname: internal, path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}
    backendRefs: [{group: networking.istio.io, kind: ServiceEntry, name: cart, weight: 3}]
  - matches: [{path: {type: Exact, value: /gone}}]
"#;
    let (res, diags) = build_text(text);
    assert!(diags.is_empty(), "{diags:#?}");
    let routes = &res.route_tables["cart.example.com:80"].virtual_hosts[0].routes;
    assert_eq!(routes.len(), 3);
    assert!(
        matches!(
            routes[0].action,
            RouteAction::DirectResponse { status: 500, .. }
        ),
        "exact /gone first (precedence); no backends answers 500"
    );
    let (exact, prefix) = (&routes[1], &routes[2]);
    assert_eq!(exact.name, "shop.cart.v1.0");
    assert_eq!(exact.matcher.path, PathMatch::Exact("/v1".into()));
    assert_eq!(prefix.matcher.path, PathMatch::Prefix("/v1/".into()));
    assert_eq!(forward(exact).prefix_rewrite.as_deref(), Some("/v2"));
    assert_eq!(forward(prefix).prefix_rewrite.as_deref(), Some("/v2/"));
    let headers: Vec<(&str, Option<&StringMatch>)> = exact
        .matcher
        .headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_ref()))
        .collect();
    assert_eq!(
        headers,
        [
            (":method", Some(&StringMatch::Exact("GET".into()))),
            ("x-env", Some(&StringMatch::Exact("canary".into()))),
        ],
        "only the first of equal header names counts"
    );
    assert!(matches!(
        exact.matcher.query_params[0].value,
        Some(StringMatch::Regex(_))
    ));
    assert_eq!(exact.request_headers.set, [("x-a".into(), "1".into())]);
    assert_eq!(exact.request_headers.remove, ["x-b".to_string()]);
    assert_eq!(exact.response_headers.add, [("x-c".into(), "2".into())]);
    let f = forward(exact);
    assert_eq!(f.clusters[0].name, "outbound|80||cart.example.com");
    assert_eq!(f.clusters[0].weight, 3);
    assert_eq!(f.mirrors[0].cluster, "outbound|80||cart.example.com");
    assert_eq!(f.mirrors[0].percent.per_million(), 333_333);
    assert_eq!(f.host_rewrite.as_deref(), Some("internal"));
}
