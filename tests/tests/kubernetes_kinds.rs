//! Every watched kind, created, updated and deleted in the fake API server (`mesh_test::kube_api`),
//! reaches a connected xDS client: Service, EndpointSlice and Pod, and each custom resource
//! (ServiceEntry, WorkloadEntry, DestinationRule, VirtualService, HTTPRoute, GRPCRoute,
//! PeerAuthentication, AuthorizationPolicy). A directory source beside it adds its documents.
//!
//! Nothing here ran against a real cluster.

use std::time::Duration;

use control_plane::k8s::KubeOptions;
use control_plane::server::{ControlPlane, Options};
use mesh_core::MeshResources;
use mesh_core::inbound::InboundFilter;
use mesh_core::route::PathMatch;
use mesh_test::kube_api::FakeApiServer;
use mesh_xds_client::{Bootstrap, XdsClient};
use serde_json::{Value, json};
use tokio::time::Instant;

const NS: &str = "bookinfo";
const HOST: &str = "reviews.bookinfo.svc.cluster.local";
const TARGET: &str = "reviews.bookinfo.svc.cluster.local:9080";
const INBOUND: &str = "xds.istio.io/grpc/lds/inbound/10.1.0.1:19080";

/// Waits until `check` holds on the client's state; panics naming `what`.
async fn until(xds: &XdsClient, what: &str, check: impl Fn(&MeshResources) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let state = xds.state();
    while !check(&state.load()) {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn endpoints(s: &MeshResources, cluster: &str) -> Vec<String> {
    s.assignments
        .get(cluster)
        .map(|a| {
            a.localities
                .iter()
                .flat_map(|l| l.endpoints.iter().map(|e| e.address.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Paths of the routes of a target's route table.
fn paths(s: &MeshResources, target: &str) -> Vec<String> {
    s.route_tables
        .get(target)
        .map(|t| {
            t.virtual_hosts[0]
                .routes
                .iter()
                .map(|r| match &r.matcher.path {
                    PathMatch::Prefix(p) | PathMatch::Exact(p) => p.clone(),
                    PathMatch::Regex(r) => r.as_str().to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn obj(api_version: &str, kind: &str, name: &str, rest: Value) -> Value {
    let mut o = json!({"apiVersion": api_version, "kind": kind,
                       "metadata": {"name": name, "namespace": NS}});
    for (k, v) in rest.as_object().unwrap() {
        o[k] = v.clone();
    }
    o
}

const ISTIO: &str = "networking.istio.io/v1";
const SECURITY: &str = "security.istio.io/v1";
const GATEWAY: &str = "gateway.networking.k8s.io/v1";

fn pod(version: &str) -> Value {
    obj(
        "v1",
        "Pod",
        "reviews-a",
        json!({"metadata": {"name": "reviews-a", "namespace": NS,
                            "labels": {"app": "reviews", "version": version}},
               "spec": {"serviceAccountName": "reviews"}}),
    )
}

fn service(ports: Value) -> Value {
    obj(
        "v1",
        "Service",
        "reviews",
        json!({"spec": {"ports": ports}}),
    )
}

fn subsets(names: &[&str]) -> Value {
    let subsets: Vec<Value> = names
        .iter()
        .map(|n| json!({"name": n, "labels": {"version": n}}))
        .collect();
    obj(
        ISTIO,
        "DestinationRule",
        "reviews",
        json!({"spec": {"host": "reviews", "subsets": subsets}}),
    )
}

fn entry(name: &str, host: &str, spec: Value) -> Value {
    let mut s = json!({"hosts": [host], "resolution": "STATIC",
                       "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}]});
    for (k, v) in spec.as_object().unwrap() {
        s[k] = v.clone();
    }
    obj(ISTIO, "ServiceEntry", name, json!({"spec": s}))
}

fn chains(s: &MeshResources) -> Option<&Vec<mesh_core::inbound::FilterChain>> {
    s.inbound.get(INBOUND).map(|l| &l.filter_chains)
}

fn rbac_filters(s: &MeshResources) -> usize {
    chains(s).map_or(0, |c| {
        c.iter()
            .flat_map(|c| &c.http_filters)
            .filter(|f| matches!(f, InboundFilter::Rbac(_)))
            .count()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_created_updated_and_deleted_reaches_a_client() {
    let api = FakeApiServer::start().await;
    api.apply(service(json!([{"name": "grpc", "port": 9080}])));
    api.apply(pod("v1"));
    api.apply(obj(
        "discovery.k8s.io/v1",
        "EndpointSlice",
        "reviews-1",
        json!({"metadata": {"name": "reviews-1", "namespace": NS,
                            "labels": {"kubernetes.io/service-name": "reviews"}},
               "addressType": "IPv4",
               "ports": [{"name": "grpc", "port": 19080}, {"name": "http", "port": 18080}],
               "endpoints": [{"addresses": ["10.1.0.1"],
                              "targetRef": {"kind": "Pod", "name": "reviews-a"}}]}),
    ));
    // A directory source beside Kubernetes: its ServiceEntry is served too.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("files.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n\
         metadata: { name: files, namespace: bookinfo }\nspec:\n  hosts: [files.example.com]\n  \
         ports: [{ number: 80, name: http, protocol: HTTP }]\n  resolution: STATIC\n  \
         endpoints: [{ address: 10.7.0.1 }]\n",
    )
    .unwrap();
    let mut kube = KubeOptions::new(api.client(), "mesh-system", "cp-0");
    kube.lease_duration = Duration::from_secs(2);
    let cp = ControlPlane::start(Options {
        kubernetes: Some(kube),
        config_dir: Some(dir.path().to_path_buf()),
        xds_addr: "127.0.0.1:0".parse().unwrap(),
        admin_addr: "127.0.0.1:0".parse().unwrap(),
        debounce: Duration::from_millis(20),
        ..Options::default()
    })
    .await
    .unwrap();
    let xds = XdsClient::start(
        Bootstrap::insecure(&cp.xds_addr().to_string(), "app-0"),
        Default::default(),
    );
    let targets: Vec<_> = [
        TARGET,
        "reviews.bookinfo.svc.cluster.local:9443",
        "ext.example.com:80",
        "vm.example.com:80",
        "files.example.com:80",
        INBOUND,
    ]
    .iter()
    .map(|t| xds.subscribe(t))
    .collect();
    until(&xds, "the Service and the directory's entry", |s| {
        s.route_tables.contains_key(TARGET) && s.route_tables.contains_key("files.example.com:80")
    })
    .await;

    // DestinationRule create (with a VirtualService that routes to its subsets, so the client
    // follows them); Pod update moves the endpoint between subsets.
    let v1 = format!("outbound|9080|v1|{HOST}");
    let v2 = format!("outbound|9080|v2|{HOST}");
    let default = format!("outbound|9080||{HOST}");
    let vs = |prefix: &str| {
        obj(
            ISTIO,
            "VirtualService",
            "reviews",
            json!({"spec": {"hosts": ["reviews"], "http": [
                {"match": [{"uri": {"prefix": prefix}}],
                 "route": [{"destination": {"host": "reviews", "subset": "v2"}}]},
                {"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}]}}),
        )
    };
    api.apply(subsets(&["v1", "v2"]));
    api.apply(vs("/a"));
    until(&xds, "DestinationRule and VirtualService created", |s| {
        endpoints(s, &v1) == ["10.1.0.1:19080"]
            && endpoints(s, &v2).is_empty()
            && paths(s, TARGET).contains(&"/a".into())
    })
    .await;
    api.apply(pod("v2"));
    until(&xds, "Pod updated: the endpoint moves to v2", |s| {
        endpoints(s, &v1).is_empty() && endpoints(s, &v2) == ["10.1.0.1:19080"]
    })
    .await;

    // VirtualService update and delete.
    api.apply(vs("/b"));
    until(&xds, "VirtualService updated", |s| {
        paths(s, TARGET).contains(&"/b".into())
    })
    .await;
    assert!(api.delete(ISTIO, "VirtualService", NS, "reviews"));
    until(&xds, "VirtualService deleted", |s| {
        paths(s, TARGET) == ["/"]
    })
    .await;

    // DestinationRule update: a load balancer policy on the host's cluster.
    let plain_cluster = format!("{:?}", xds.state().load().clusters[&default]);
    let mut random = subsets(&["v1", "v2"]);
    random["spec"]["trafficPolicy"] = json!({"loadBalancer": {"simple": "RANDOM"}});
    api.apply(random);
    until(&xds, "DestinationRule updated", |s| {
        s.clusters
            .get(&default)
            .is_some_and(|c| format!("{:?}", c.lb_policy).contains("Random"))
    })
    .await;

    // GRPCRoute create, update, delete (parent: the Service).
    let grpc = |method: &str| {
        obj(
            GATEWAY,
            "GRPCRoute",
            "reviews",
            json!({"spec": {
                "parentRefs": [{"group": "", "kind": "Service", "name": "reviews", "port": 9080}],
                "rules": [{"matches": [{"method": {"service": "shop.Reviews", "method": method}}],
                           "backendRefs": [{"name": "reviews", "port": 9080}]}]}}),
        )
    };
    api.apply(grpc("Get"));
    until(&xds, "GRPCRoute created", |s| {
        paths(s, TARGET).contains(&"/shop.Reviews/Get".into())
    })
    .await;
    api.apply(grpc("List"));
    until(&xds, "GRPCRoute updated", |s| {
        paths(s, TARGET).contains(&"/shop.Reviews/List".into())
    })
    .await;
    assert!(api.delete(GATEWAY, "GRPCRoute", NS, "reviews"));
    until(&xds, "GRPCRoute deleted", |s| paths(s, TARGET) == ["/"]).await;

    // Service update: a new port becomes a new target.
    api.apply(service(json!([{"name": "grpc", "port": 9080},
                             {"name": "http", "port": 9443}])));
    until(&xds, "Service updated: port 9443", |s| {
        endpoints(s, &format!("outbound|9443||{HOST}")) == ["10.1.0.1:18080"]
    })
    .await;

    // PeerAuthentication create, update, delete: the inbound listener's chains.
    let pa = |mode: &str| {
        obj(
            SECURITY,
            "PeerAuthentication",
            "default",
            json!({"spec": {"mtls": {"mode": mode}}}),
        )
    };
    until(&xds, "the inbound listener (STRICT by default)", |s| {
        chains(s).is_some_and(|c| c.len() == 1 && c[0].tls.is_some())
    })
    .await;
    api.apply(pa("PERMISSIVE"));
    until(&xds, "PeerAuthentication created", |s| {
        chains(s).is_some_and(|c| c.len() == 2)
    })
    .await;
    api.apply(pa("DISABLE"));
    until(&xds, "PeerAuthentication updated", |s| {
        chains(s).is_some_and(|c| c.len() == 1 && c[0].tls.is_none())
    })
    .await;
    assert!(api.delete(SECURITY, "PeerAuthentication", NS, "default"));
    until(&xds, "PeerAuthentication deleted", |s| {
        chains(s).is_some_and(|c| c.len() == 1 && c[0].tls.is_some())
    })
    .await;

    // AuthorizationPolicy create, update, delete: RBAC filters on the inbound chains.
    let ap = |action: &str| {
        obj(
            SECURITY,
            "AuthorizationPolicy",
            "deny-admin",
            json!({"spec": {"action": action,
                            "rules": [{"to": [{"operation": {"paths": ["/admin"]}}]}]}}),
        )
    };
    assert_eq!(rbac_filters(&xds.state().load()), 0);
    api.apply(ap("DENY"));
    until(&xds, "AuthorizationPolicy created", |s| rbac_filters(s) > 0).await;
    let before = format!("{:?}", chains(&xds.state().load()));
    api.apply(ap("ALLOW"));
    until(&xds, "AuthorizationPolicy updated", |s| {
        format!("{:?}", chains(s)) != before && rbac_filters(s) > 0
    })
    .await;
    assert!(api.delete(SECURITY, "AuthorizationPolicy", NS, "deny-admin"));
    until(&xds, "AuthorizationPolicy deleted", |s| {
        rbac_filters(s) == 0
    })
    .await;

    // ServiceEntry create, update, delete; HTTPRoute on it.
    api.apply(entry(
        "ext",
        "ext.example.com",
        json!({"endpoints": [{"address": "10.9.0.1"}]}),
    ));
    until(&xds, "ServiceEntry created", |s| {
        endpoints(s, "outbound|80||ext.example.com") == ["10.9.0.1:80"]
    })
    .await;
    let route = |prefix: &str| {
        obj(
            GATEWAY,
            "HTTPRoute",
            "ext",
            json!({"spec": {
                "parentRefs": [{"group": "networking.istio.io", "kind": "ServiceEntry", "name": "ext"}],
                "rules": [{"matches": [{"path": {"type": "Exact", "value": prefix}}],
                           "backendRefs": [{"group": "networking.istio.io", "kind": "ServiceEntry",
                                            "name": "ext", "port": 80}]}]}}),
        )
    };
    api.apply(route("/api"));
    until(&xds, "HTTPRoute created", |s| {
        paths(s, "ext.example.com:80").contains(&"/api".into())
    })
    .await;
    api.apply(route("/v2"));
    until(&xds, "HTTPRoute updated", |s| {
        paths(s, "ext.example.com:80").contains(&"/v2".into())
    })
    .await;
    assert!(api.delete(GATEWAY, "HTTPRoute", NS, "ext"));
    until(&xds, "HTTPRoute deleted", |s| {
        paths(s, "ext.example.com:80") == ["/"]
    })
    .await;
    api.apply(entry(
        "ext",
        "ext.example.com",
        json!({"endpoints": [{"address": "10.9.0.2"}]}),
    ));
    until(&xds, "ServiceEntry updated", |s| {
        endpoints(s, "outbound|80||ext.example.com") == ["10.9.0.2:80"]
    })
    .await;
    assert!(api.delete(ISTIO, "ServiceEntry", NS, "ext"));
    until(&xds, "ServiceEntry deleted", |s| {
        !s.route_tables.contains_key("ext.example.com:80")
    })
    .await;

    // WorkloadEntry create, update, delete (selected by a ServiceEntry).
    api.apply(entry(
        "vm",
        "vm.example.com",
        json!({"workloadSelector": {"labels": {"app": "vm"}}}),
    ));
    let we = |address: &str| {
        obj(
            ISTIO,
            "WorkloadEntry",
            "vm-1",
            json!({"spec": {"address": address, "labels": {"app": "vm"}}}),
        )
    };
    api.apply(we("10.8.0.1"));
    until(&xds, "WorkloadEntry created", |s| {
        endpoints(s, "outbound|80||vm.example.com") == ["10.8.0.1:80"]
    })
    .await;
    api.apply(we("10.8.0.2"));
    until(&xds, "WorkloadEntry updated", |s| {
        endpoints(s, "outbound|80||vm.example.com") == ["10.8.0.2:80"]
    })
    .await;
    assert!(api.delete(ISTIO, "WorkloadEntry", NS, "vm-1"));
    until(&xds, "WorkloadEntry deleted", |s| {
        endpoints(s, "outbound|80||vm.example.com").is_empty()
    })
    .await;

    // EndpointSlice delete, DestinationRule delete, Pod delete.
    assert!(api.delete(ISTIO, "DestinationRule", NS, "reviews"));
    until(&xds, "DestinationRule deleted", |s| {
        s.clusters
            .get(&default)
            .is_some_and(|c| format!("{c:?}") == plain_cluster)
    })
    .await;
    assert!(api.delete("v1", "Pod", NS, "reviews-a"));
    assert!(api.delete("discovery.k8s.io/v1", "EndpointSlice", NS, "reviews-1"));
    until(&xds, "EndpointSlice deleted", |s| {
        endpoints(s, &format!("outbound|9080||{HOST}")).is_empty()
    })
    .await;
    assert_eq!(
        cp.config_status().errors(),
        0,
        "{:?}",
        cp.config_status().diagnostics
    );
    drop(targets);
}
