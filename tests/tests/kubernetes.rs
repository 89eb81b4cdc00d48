//! The Kubernetes source against an in-process fake API server that speaks the real list/watch
//! protocol (`mesh_test::kube_api`): Services, EndpointSlices, Pods and custom resources reach a
//! connected xDS client; a relist after 410 Gone loses nothing; an invalid resource gets a
//! failing status condition and an Event while the rest keeps serving; the same documents give
//! the same xDS from a directory and from Kubernetes.
//!
//! Nothing here ran against a real cluster.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use control_plane::k8s::KubeOptions;
use control_plane::server::{ControlPlane, Options};
use mesh_core::MeshResources;
use mesh_test::kube_api::FakeApiServer;
use mesh_xds_client::client::Options as ClientOptions;
use mesh_xds_client::{Bootstrap, XdsClient};
use serde_json::{Value, json};
use tokio::time::Instant;

const NS: &str = "bookinfo";
const HOST: &str = "reviews.bookinfo.svc.cluster.local";
const TARGET: &str = "reviews.bookinfo.svc.cluster.local:9080";

fn kube_options(api: &FakeApiServer, replica: &str) -> KubeOptions {
    let mut k = KubeOptions::new(api.client(), "mesh-system", replica);
    k.lease_duration = Duration::from_secs(2);
    k
}

async fn start_cp(
    api: &FakeApiServer,
    replica: &str,
    config_dir: Option<&std::path::Path>,
) -> ControlPlane {
    ControlPlane::start(Options {
        kubernetes: Some(kube_options(api, replica)),
        config_dir: config_dir.map(|d| d.to_path_buf()),
        xds_addr: "127.0.0.1:0".parse().unwrap(),
        admin_addr: "127.0.0.1:0".parse().unwrap(),
        debounce: Duration::from_millis(20),
        ..Options::default()
    })
    .await
    .expect("control plane starts")
}

fn client(xds: SocketAddr, node: &str) -> XdsClient {
    XdsClient::start(
        Bootstrap::insecure(&xds.to_string(), node),
        ClientOptions {
            backoff_base: Duration::from_millis(50),
            backoff_max: Duration::from_millis(500),
            ..ClientOptions::default()
        },
    )
}

fn service(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"selector": {"app": name}, "ports": [
            {"name": "grpc-api", "port": 9080, "targetPort": 9080, "protocol": "TCP"},
            {"name": "dns", "port": 53, "protocol": "UDP"},
        ]},
    })
}

fn pod(name: &str, version: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {
            "app": "reviews", "version": version,
            "topology.kubernetes.io/region": "eu-west"}},
        "spec": {"serviceAccountName": "bookinfo-reviews", "containers": []},
    })
}

/// The Service's one slice: `(ip, pod, ready)` per endpoint.
fn slice(endpoints: &[(&str, &str, bool)]) -> Value {
    let eps: Vec<Value> = endpoints
        .iter()
        .map(|(ip, pod, ready)| {
            json!({
                "addresses": [ip], "conditions": {"ready": ready}, "zone": "eu-west-1a",
                "targetRef": {"kind": "Pod", "name": pod, "namespace": NS},
            })
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "reviews-x7k2p", "namespace": NS,
                     "labels": {"kubernetes.io/service-name": "reviews"}},
        "addressType": "IPv4",
        "ports": [{"name": "grpc-api", "port": 19080, "protocol": "TCP"}],
        "endpoints": eps,
    })
}

fn subsets() -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
        "metadata": {"name": "reviews", "namespace": NS},
        "spec": {"host": "reviews", "subsets": [
            {"name": "v1", "labels": {"version": "v1"}},
            {"name": "v2", "labels": {"version": "v2"}},
        ]},
    })
}

fn split(name: &str, v1: u32, v2: u32) -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"hosts": ["reviews"], "http": [{"route": [
            {"destination": {"host": "reviews", "subset": "v1"}, "weight": v1},
            {"destination": {"host": "reviews", "subset": "v2"}, "weight": v2},
        ]}]},
    })
}

/// Cluster name → weight of the target's last route, if it forwards.
fn weights(state: &MeshResources) -> Option<BTreeMap<String, u32>> {
    common::last_route_weights(state, TARGET)
}

/// `ip:port` of every endpoint of a cluster's assignment, with its locality.
fn endpoints(state: &MeshResources, cluster: &str) -> Vec<(String, String)> {
    state
        .assignments
        .get(cluster)
        .map(|a| {
            a.localities
                .iter()
                .flat_map(|l| {
                    l.endpoints.iter().map(move |e| {
                        (
                            e.address.to_string(),
                            format!("{}/{}", l.locality.region, l.locality.zone),
                        )
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn cluster(subset: &str) -> String {
    format!("outbound|9080|{subset}|{HOST}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_endpoints_pods_and_custom_resources_reach_a_connected_client() {
    let api = FakeApiServer::start().await;
    api.apply(service("reviews"));
    api.apply(pod("reviews-v1-a", "v1"));
    api.apply(slice(&[("10.1.0.1", "reviews-v1-a", true)]));
    let cp = start_cp(&api, "cp-0", None).await;
    let xds = client(cp.xds_addr(), "app-0");
    let _t = xds.subscribe(TARGET);
    xds.ready(TARGET, Duration::from_secs(15)).await.unwrap();
    let state = xds.state();

    // The Service became a host with Istio's default route; its ready endpoint carries the
    // slice's port and the Pod's region with the endpoint's zone.
    let default = format!("outbound|9080||{HOST}");
    assert_eq!(
        endpoints(&state.load(), &default),
        [(
            "10.1.0.1:19080".to_string(),
            "eu-west/eu-west-1a".to_string()
        )]
    );
    let service_model = &cp.config_status().resources;
    assert!(
        !service_model.listeners.keys().any(|l| l.ends_with(":53")),
        "UDP ports are not served"
    );

    // Custom resources: subsets by Pod labels and a 90/10 split.
    // v2 runs on a Node whose topology labels give its locality.
    let mut v2 = pod("reviews-v2-b", "v2");
    v2["spec"]["nodeName"] = json!("node-b");
    api.apply(v2);
    api.apply(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "node-b", "labels": {
            "topology.kubernetes.io/region": "eu-north",
            "topology.kubernetes.io/zone": "eu-north-1c"}},
    }));
    api.apply(slice(&[
        ("10.1.0.1", "reviews-v1-a", true),
        ("10.1.0.2", "reviews-v2-b", true),
        ("10.1.0.3", "reviews-v2-c", false),
    ]));
    api.apply(subsets());
    api.apply(split("reviews", 90, 10));
    until("the 90/10 split and its subsets' endpoints", || {
        let s = state.load();
        (weights(&s)? == BTreeMap::from([(cluster("v1"), 90), (cluster("v2"), 10)])
            && !endpoints(&s, &cluster("v1")).is_empty()
            && !endpoints(&s, &cluster("v2")).is_empty())
        .then_some(())
    })
    .await;
    let s = state.load();
    assert_eq!(endpoints(&s, &cluster("v1")).len(), 1);
    // The not-ready endpoint is left out; the Node's labels give the locality.
    assert_eq!(
        endpoints(&s, &cluster("v2")),
        [(
            "10.1.0.2:19080".to_string(),
            "eu-north/eu-north-1c".to_string()
        )]
    );

    // An update, then a delete, of the VirtualService.
    api.apply(split("reviews", 0, 100));
    until("the 0/100 split", || {
        (weights(&state.load())?.get(&cluster("v1")) == Some(&0)).then_some(())
    })
    .await;
    assert!(api.delete("networking.istio.io/v1", "VirtualService", NS, "reviews"));
    until("the default route back", || {
        (weights(&state.load())? == BTreeMap::from([(default.clone(), 1)])).then_some(())
    })
    .await;

    // Deleting the Service takes its host away.
    assert!(api.delete("v1", "Service", NS, "reviews"));
    until("the route table to go", || {
        (!state.load().route_tables.contains_key(TARGET)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relist_after_410_gone_loses_nothing() {
    let api = FakeApiServer::start().await;
    api.apply(service("reviews"));
    api.apply(pod("reviews-v1-a", "v1"));
    api.apply(pod("reviews-v2-b", "v2"));
    api.apply(slice(&[("10.1.0.1", "reviews-v1-a", true)]));
    api.apply(subsets());
    api.apply(split("reviews", 50, 50));
    let cp = start_cp(&api, "cp-0", None).await;
    let xds = client(cp.xds_addr(), "app-0");
    let _t = xds.subscribe(TARGET);
    xds.ready(TARGET, Duration::from_secs(15)).await.unwrap();
    let state = xds.state();
    until("the 50/50 split", || {
        (weights(&state.load())?.get(&cluster("v2")) == Some(&50)).then_some(())
    })
    .await;
    // Idle watches get bookmarks.
    until("a bookmark", || (api.stats().bookmarks > 0).then_some(())).await;
    let lists_before = api.stats().lists;

    // History is compacted: every watch is told 410 Gone. The changes made before the watchers
    // list again are only in the new list, a deletion included.
    api.expire_watches();
    api.apply(slice(&[
        ("10.1.0.1", "reviews-v1-a", true),
        ("10.1.0.2", "reviews-v2-b", true),
    ]));
    assert!(api.delete("networking.istio.io/v1", "VirtualService", NS, "reviews"));
    api.apply(split("reviews-canary", 10, 90));

    until("the state after the relist", || {
        let s = state.load();
        (weights(&s)?.get(&cluster("v2")) == Some(&90) && endpoints(&s, &cluster("v2")).len() == 1)
            .then_some(())
    })
    .await;
    until("every kind to list again", || {
        (api.stats().lists >= lists_before + 11).then_some(())
    })
    .await;
    assert!(
        api.stats().gone >= 11,
        "every watch got 410: {:?}",
        api.stats()
    );
    assert_eq!(
        cp.config_status().errors(),
        0,
        "{:?}",
        cp.config_status().diagnostics
    );
}

fn condition<'a>(object: &'a Value, kind: &str) -> &'a Value {
    object["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .unwrap_or(&Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_resource_gets_a_failing_condition_and_an_event_and_the_rest_keeps_serving() {
    let api = FakeApiServer::start().await;
    api.apply(service("reviews"));
    api.apply(pod("reviews-v1-a", "v1"));
    api.apply(slice(&[("10.1.0.1", "reviews-v1-a", true)]));
    api.apply(subsets());
    api.apply(split("reviews", 70, 30));
    // A bad timeout, and a route to a host nobody defines.
    let mut bad = split("reviews-bad", 50, 50);
    bad["spec"]["hosts"] = json!(["ratings"]);
    bad["spec"]["http"][0]["timeout"] = json!("soon");
    api.apply(bad);
    let mut dangling = split("reviews-dangling", 50, 50);
    dangling["spec"]["hosts"] = json!(["details"]);
    dangling["spec"]["http"][0]["route"] =
        json!([{"destination": {"host": "details", "port": {"number": 9080}}}]);
    api.apply(dangling);
    let mut route = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "reviews-http", "namespace": NS},
        "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": "ratings", "port": 9080}],
                 "rules": [{"backendRefs": [{"name": "ratings", "port": 9080}]}]},
    });
    api.apply(route.clone());

    let cp = start_cp(&api, "cp-0", None).await;
    let xds = client(cp.xds_addr(), "app-0");
    let _t = xds.subscribe(TARGET);
    xds.ready(TARGET, Duration::from_secs(15)).await.unwrap();
    let state = xds.state();
    until("the valid split", || {
        (weights(&state.load())?.get(&cluster("v2")) == Some(&30)).then_some(())
    })
    .await;

    let get = |name: &str| api.get("networking.istio.io/v1", "VirtualService", NS, name);
    let bad = until("the rejected resource's status", || {
        get("reviews-bad").filter(|o| condition(o, "Accepted")["status"] == "False")
    })
    .await;
    let accepted = condition(&bad, "Accepted");
    assert_eq!(accepted["reason"], "Invalid");
    assert_eq!(accepted["observedGeneration"], 1);
    assert!(
        accepted["message"]
            .as_str()
            .unwrap()
            .contains("spec.http[0].timeout"),
        "{accepted}"
    );
    assert_eq!(condition(&bad, "ResolvedRefs")["status"], "True");

    let dangling = until("the dangling resource's status", || {
        get("reviews-dangling").filter(|o| condition(o, "ResolvedRefs")["status"] == "False")
    })
    .await;
    let refs = condition(&dangling, "ResolvedRefs");
    assert_eq!(refs["reason"], "BackendNotFound");
    assert!(
        refs["message"].as_str().unwrap().contains("details"),
        "{refs}"
    );

    let good = until("the valid resource's status", || {
        get("reviews").filter(|o| condition(o, "Accepted")["status"] == "True")
    })
    .await;
    assert_eq!(condition(&good, "ResolvedRefs")["status"], "True");

    // Gateway API status: one parent entry under our controller name.
    let http_route = until("the HTTPRoute's status", || {
        api.get(
            "gateway.networking.k8s.io/v1",
            "HTTPRoute",
            NS,
            "reviews-http",
        )
        .filter(|o| o["status"]["parents"].is_array())
    })
    .await;
    let parent = &http_route["status"]["parents"][0];
    assert_eq!(parent["parentRef"]["name"], "ratings");
    assert_eq!(parent["conditions"][0]["type"], "Accepted");
    assert_eq!(
        parent["conditions"][1]["status"], "False",
        "ratings is not defined"
    );

    // A Warning Event for each rejected resource, naming it.
    let events = until("three events", || {
        let e = api.list("events.k8s.io/v1", "Event");
        (e.len() >= 3).then_some(e)
    })
    .await;
    let about = |name: &str| {
        events
            .iter()
            .find(|e| e["regarding"]["name"] == name)
            .unwrap_or_else(|| panic!("no event for {name}: {events:#?}"))
    };
    let e = about("reviews-bad");
    assert_eq!(e["type"], "Warning");
    assert_eq!(e["reason"], "Rejected");
    assert_eq!(e["regarding"]["kind"], "VirtualService");
    assert!(e["note"].as_str().unwrap().contains("timeout"));
    assert!(events.iter().all(|e| e["regarding"]["name"] != "reviews"));

    // Fixing the document flips its condition, at the new generation.
    route["spec"]["parentRefs"][0]["name"] = json!("reviews");
    route["spec"]["rules"][0]["backendRefs"][0]["name"] = json!("reviews");
    let mut fixed = split("reviews-bad", 50, 50);
    fixed["spec"]["hosts"] = json!(["ratings"]);
    fixed["spec"]["http"][0]["route"] =
        json!([{"destination": {"host": "reviews", "port": {"number": 9080}}}]);
    api.apply(service("ratings"));
    api.apply(fixed);
    let fixed = until("the fixed resource's status", || {
        get("reviews-bad").filter(|o| condition(o, "Accepted")["status"] == "True")
    })
    .await;
    assert_eq!(condition(&fixed, "Accepted")["observedGeneration"], 2);
    assert_eq!(cp.is_leader(), Some(true));
}

/// Every document of a YAML file, as JSON objects.
fn documents(yaml: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml_ng::Deserializer::from_str(yaml)
        .filter_map(|d| Value::deserialize(d).ok())
        .filter(|v| !v.is_null())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_documents_give_the_same_xds_from_a_directory_and_from_kubernetes() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/demo");
    let dir = tempfile::tempdir().unwrap();
    let mut docs = Vec::new();
    for file in [
        "config/services.yaml",
        "config/reviews-route.yaml",
        "steps/ratings-policy.yaml",
    ] {
        let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        docs.extend(documents(&text));
        let name = file.replace('/', "-");
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let extra = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: ratings, namespace: shop }
spec:
  parentRefs: [{ group: "", kind: Service, name: ratings, port: 9080 }]
  rules:
  - matches: [{ path: { type: PathPrefix, value: /v2 } }]
    timeouts: { request: 2s }
    backendRefs: [{ name: ratings, port: 9080 }]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ratings-vm, namespace: shop }
spec: { address: 127.0.0.22, labels: { app: ratings, version: v2 }, serviceAccount: ratings }
"#;
    docs.extend(documents(extra));
    std::fs::write(dir.path().join("zz-extra.yaml"), extra).unwrap();
    assert!(docs.len() >= 10);

    let from_dir = ControlPlane::start(Options {
        config_dir: Some(dir.path().to_path_buf()),
        xds_addr: "127.0.0.1:0".parse().unwrap(),
        admin_addr: "127.0.0.1:0".parse().unwrap(),
        ..Options::default()
    })
    .await
    .unwrap();
    let api = FakeApiServer::start().await;
    for d in docs {
        api.apply(d);
    }
    let from_kube = start_cp(&api, "cp-0", None).await;
    let want = from_dir.config_status();
    assert_eq!(want.errors(), 0, "{:?}", want.diagnostics);
    until("the Kubernetes source's first build", || {
        (from_kube.config_status().documents == want.documents).then_some(())
    })
    .await;
    assert_eq!(from_kube.config_status().errors(), 0);

    // Every xDS resource, by type and name, decodes to the same message.
    let (a, b) = (from_dir.snapshot().load(), from_kube.snapshot().load());
    let mut compared = 0;
    for t in control_plane::xds::TYPES {
        let (ra, rb) = (a.of_type(t).unwrap(), b.of_type(t).unwrap());
        assert_eq!(
            ra.keys().collect::<Vec<_>>(),
            rb.keys().collect::<Vec<_>>(),
            "{t}"
        );
        for (name, x) in ra {
            let y = &rb[name];
            assert!(
                same_message(t, &x.any.value, &y.any.value),
                "{t} {name} differs"
            );
            assert_eq!(x.version, y.version, "{t} {name}");
            compared += 1;
        }
    }
    assert!(compared >= 20, "{compared}");
}

/// True when both encodings decode to equal messages of the type (protobuf maps encode in
/// hash-map order, so equal messages need not have equal bytes).
fn same_message(type_url: &str, a: &[u8], b: &[u8]) -> bool {
    use envoy_types::pb::envoy::config::{cluster, endpoint, listener, route};
    use mesh_xds_client::codec::{CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE};
    use prost::Message;
    fn eq<M: Message + Default + PartialEq>(a: &[u8], b: &[u8]) -> bool {
        M::decode(a).unwrap() == M::decode(b).unwrap()
    }
    match type_url {
        LISTENER_TYPE => eq::<listener::v3::Listener>(a, b),
        ROUTE_TYPE => eq::<route::v3::RouteConfiguration>(a, b),
        CLUSTER_TYPE => eq::<cluster::v3::Cluster>(a, b),
        ENDPOINT_TYPE => eq::<endpoint::v3::ClusterLoadAssignment>(a, b),
        other => panic!("unexpected type {other}"),
    }
}

fn web_slice(backend: &mesh_test::backend::Backend, pod: &str) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-1", "namespace": NS,
                     "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": backend.addr.port()}],
        "endpoints": [{"addresses": ["127.0.0.1"], "targetRef": {"kind": "Pod", "name": pod}}],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_dies_under_load_and_clients_converge_on_the_other() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};

    let api = FakeApiServer::start().await;
    let (v1, v2) = (
        mesh_test::backend::http("web-v1").await,
        mesh_test::backend::http("web-v2").await,
    );
    api.apply(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"ports": [{"name": "http", "port": 8080}]},
    }));
    api.apply(web_slice(&v1, "web-v1"));

    // cp-0 starts first and takes the Lease; both serve xDS behind one address.
    let cp0 = start_cp(&api, "cp-0", None).await;
    until("cp-0 to lead", || {
        (cp0.is_leader() == Some(true)).then_some(())
    })
    .await;
    let cp1 = start_cp(&api, "cp-1", None).await;
    let vip = mesh_test::forward::Forwarder::start(vec![cp0.xds_addr(), cp1.xds_addr()]).await;
    let target = "web.bookinfo.svc.cluster.local:8080";
    let xds = client(vip.addr, "app-0");
    let _t = xds.subscribe(target);
    xds.ready(target, Duration::from_secs(15)).await.unwrap();
    let http = mesh_tower::Client::new(&xds.state());

    let (stop, ok, failed) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (http, stop, ok, failed) = (http.clone(), stop.clone(), ok.clone(), failed.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let req = http::Request::get(format!("http://{target}/"))
                        .body(Empty::<Bytes>::new())
                        .unwrap();
                    match http.request(req).await {
                        Ok(r) if r.status() == 200 => {
                            let _ = r.into_body().collect().await;
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    until("traffic", || (v1.hits() > 50).then_some(())).await;

    // cp-0 dies. Its client reconnects through the same address to cp-1 ...
    cp0.shutdown().await;
    until("the client on cp-1", || {
        cp1.registry()
            .list()
            .iter()
            .any(|c| c.node_id == "app-0")
            .then_some(())
    })
    .await;
    // ... and a change made now reaches it from there.
    api.apply(web_slice(&v2, "web-v2"));
    until("traffic on the new endpoint", || {
        (v2.hits() > 50).then_some(())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "failed requests");
    assert!(ok.load(Ordering::Relaxed) > 100);

    // cp-1 takes the Lease over once cp-0's renewals stop, and writes status from then on.
    until("cp-1 to lead", || {
        (cp1.is_leader() == Some(true)).then_some(())
    })
    .await;
    let mut bad = split("web-bad", 50, 50);
    bad["spec"]["http"][0]["timeout"] = json!("later");
    api.apply(bad);
    until("status from cp-1", || {
        api.get("networking.istio.io/v1", "VirtualService", NS, "web-bad")
            .filter(|o| condition(o, "Accepted")["status"] == "False")
    })
    .await;
    let lease = api
        .get(
            "coordination.k8s.io/v1",
            "Lease",
            "mesh-system",
            "mesh-control-plane-leader",
        )
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "cp-1");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
}

/// The Kubernetes example (`examples/kubernetes/shop.yaml`): its Service and mesh documents,
/// applied to the fake API server, are all accepted, with the 90/10 canary served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_example_is_accepted() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/kubernetes/shop.yaml"
    ))
    .unwrap();
    let api = FakeApiServer::start().await;
    let mut applied = 0;
    for doc in documents(&text) {
        // Namespaces, ServiceAccounts and Deployments are the cluster's business, not ours.
        if matches!(
            doc["kind"].as_str(),
            Some("Namespace" | "ServiceAccount" | "Deployment")
        ) {
            continue;
        }
        api.apply(doc);
        applied += 1;
    }
    assert_eq!(applied, 5);
    let cp = start_cp(&api, "cp-0", None).await;
    let status = until("the example's documents", || {
        let s = cp.config_status();
        (s.documents == 5).then_some(s)
    })
    .await;
    assert_eq!(status.errors(), 0, "{:?}", status.diagnostics);
    assert!(
        status.diagnostics.is_empty(),
        "no warnings either: {:?}",
        status.diagnostics
    );
    let target = "reviews.shop.svc.cluster.local:9080";
    let table = &status.resources.route_tables[target];
    let route = table.virtual_hosts[0].routes.last().unwrap();
    let mesh_core::route::RouteAction::Forward(f) = &route.action else {
        panic!("{route:?}")
    };
    let weights: Vec<u32> = f.clusters.iter().map(|c| c.weight).collect();
    assert_eq!(weights, [90, 10]);
    // Every document got Accepted from the leader.
    let vs = until("the VirtualService's status", || {
        api.get(
            "networking.istio.io/v1",
            "VirtualService",
            "shop",
            "reviews",
        )
        .filter(|o| condition(o, "Accepted")["status"] == "True")
    })
    .await;
    assert_eq!(condition(&vs, "ResolvedRefs")["status"], "True");
}
