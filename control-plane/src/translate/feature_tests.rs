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

#[test]
fn istio_mutual_expects_the_endpoints_service_accounts() {
    let text = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews.shop.svc.cluster.local]
  ports: [{number: 9080, name: http}]
  resolution: STATIC
  endpoints:
  - {address: 10.0.0.1, labels: {version: v1}, serviceAccount: reviews-v1}
  - {address: 10.0.0.2, labels: {version: v2}, serviceAccount: reviews-v2}
  - {address: 10.0.0.3, labels: {version: v2}, serviceAccount: reviews-v2}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL}
  subsets:
  - {name: v1, labels: {version: v1}}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      tls: {mode: ISTIO_MUTUAL, sni: reviews, subjectAltNames: ["spiffe://cluster.local/ns/shop/sa/pinned"]}
  - name: plain
    labels: {version: v1}
    trafficPolicy: {tls: {mode: DISABLE}}
"#;
    let (res, diags) = build_text(text);
    assert!(diags.is_empty(), "{diags:?}");
    let host = "reviews.shop.svc.cluster.local";
    let sans = |subset: &str| {
        let c = &res.clusters[&format!("outbound|9080|{subset}|{host}")];
        c.tls
            .as_ref()
            .map(|t| (t.sni.clone(), t.san_matchers.clone()))
    };
    let exact = |ids: &[&str]| {
        ids.iter()
            .map(|s| StringMatch::Exact(s.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        sans(""),
        Some((
            None,
            exact(&[
                "spiffe://cluster.local/ns/shop/sa/reviews-v1",
                "spiffe://cluster.local/ns/shop/sa/reviews-v2"
            ])
        ))
    );
    assert_eq!(
        sans("v1"),
        Some((
            None,
            exact(&["spiffe://cluster.local/ns/shop/sa/reviews-v1"])
        ))
    );
    assert_eq!(
        sans("v2"),
        Some((
            Some("reviews".into()),
            exact(&["spiffe://cluster.local/ns/shop/sa/pinned"])
        ))
    );
    assert_eq!(sans("plain"), None, "DISABLE is plaintext");

    let (_, diags) = build_text(&text.replace("ISTIO_MUTUAL}", "MUTUAL}").replace(
        "\"spiffe://cluster.local/ns/shop/sa/pinned\"",
        "\"reviews.example\"",
    ));
    let fields: Vec<&str> = diags.iter().map(|d| d.field.as_str()).collect();
    assert!(fields.contains(&"spec.trafficPolicy.tls.mode"), "{diags:?}");
    assert!(
        fields.contains(&"spec.subsets[1].trafficPolicy.tls.subjectAltNames[0]"),
        "{diags:?}"
    );
}

#[test]
fn peer_authentication_sets_each_workloads_inbound_chains() {
    use mesh_core::inbound::{MtlsMode, Transport};
    let text = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: shop, namespace: shop}
spec:
  hosts: [cart.shop.svc.cluster.local]
  ports: [{number: 80, name: http, targetPort: 8080}, {number: 9090, name: metrics}]
  resolution: STATIC
  endpoints:
  - {address: 127.0.0.11, labels: {app: cart}}
  - {address: 127.0.0.12, labels: {app: legacy}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: other, namespace: other}
spec:
  hosts: [other.other.svc.cluster.local]
  ports: [{number: 80, name: http}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.21}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: mesh, namespace: istio-system}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: shop, namespace: shop}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: legacy, namespace: shop}
spec:
  selector: {matchLabels: {app: legacy}}
  mtls: {mode: UNSET}
  portLevelMtls: {9090: {mode: DISABLE}}
"#;
    let (res, diags) = build_text(text);
    assert!(diags.is_empty(), "{diags:?}");
    let mode = |addr: &str| {
        let l = &res.inbound[&format!("xds.istio.io/grpc/lds/inbound/{addr}")];
        assert_eq!(l.address.to_string(), addr);
        match l.filter_chains.as_slice() {
            [c] if c.tls.is_some() => MtlsMode::Strict,
            [c] if c.tls.is_none() => MtlsMode::Disable,
            [t, p] if t.transport == Transport::Tls && p.transport == Transport::Plaintext => {
                MtlsMode::Permissive
            }
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        mode("127.0.0.11:8080"),
        MtlsMode::Strict,
        "namespace policy"
    );
    assert_eq!(mode("127.0.0.11:9090"), MtlsMode::Strict);
    assert_eq!(
        mode("127.0.0.12:8080"),
        MtlsMode::Strict,
        "UNSET inherits the namespace's"
    );
    assert_eq!(mode("127.0.0.12:9090"), MtlsMode::Disable, "port level");
    assert_eq!(
        mode("127.0.0.21:80"),
        MtlsMode::Permissive,
        "mesh-wide in the root namespace"
    );
    assert_eq!(res.inbound.len(), 5);

    let (res, _) = build_text(&text[..text.find("---\napiVersion: security").unwrap()]);
    assert!(
        res.inbound.values().all(|l| l.filter_chains.len() == 1
            && l.filter_chains[0]
                .tls
                .is_some_and(|t| t.require_client_certificate)),
        "STRICT by default"
    );

    let bad = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: x}\nspec:\n  mtls: {mode: OPTIONAL}\n  portLevelMtls: {80: {mode: DISABLE}}\n";
    let (_, diags) = build_text(bad);
    let fields: Vec<&str> = diags.iter().map(|d| d.field.as_str()).collect();
    assert_eq!(
        fields,
        ["spec.mtls.mode", "spec.portLevelMtls"],
        "{diags:?}"
    );
}
