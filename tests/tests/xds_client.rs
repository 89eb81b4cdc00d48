//! The in-app xDS client against the real control plane over loopback: fan-out of a YAML edit to
//! 100 clients, a precise per-resource NACK, a control-plane restart, and delta ≡ SotW.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use mesh_core::MeshResources;
use mesh_test::mesh::TestMesh;
use mesh_xds_client::client::{Options, Protocol, ResourceStatus, TargetError};
use mesh_xds_client::{Bootstrap, XdsClient};
use tokio::time::Instant;

const HOST: &str = "web.mesh.local";
const PORT: u16 = 8080;
const TARGET: &str = "web.mesh.local:8080";

fn yaml(w1: u32, w2: u32) -> String {
    let a = "127.0.0.1:18001".parse().unwrap();
    let b = "127.0.0.1:18002".parse().unwrap();
    common::two_version_service(HOST, PORT, "http", a, b, w1, w2)
}

fn fast(protocol: Protocol) -> Options {
    Options {
        protocol,
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
        does_not_exist_timeout: Duration::from_millis(500),
        ..Options::default()
    }
}

fn client(mesh: &TestMesh, node: &str, protocol: Protocol) -> XdsClient {
    XdsClient::start(
        Bootstrap::insecure(&mesh.cp().xds_addr().to_string(), node),
        fast(protocol),
    )
}

/// The weights of the split route (the last route) of the target's table.
fn split(state: &MeshResources) -> Option<BTreeMap<String, u32>> {
    common::last_route_weights(state, TARGET)
}

fn v2_only(state: &MeshResources) -> bool {
    split(state).is_some_and(|w| {
        w.get(&format!("outbound|{PORT}|v1|{HOST}"))
            .copied()
            .unwrap_or(0)
            == 0
    })
}

async fn until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yaml_edit_reaches_100_clients_and_each_acks() {
    let mesh = TestMesh::start(&[("web.yaml", &yaml(80, 20))]).await;
    let clients: Vec<_> = (0..100)
        .map(|i| client(&mesh, &format!("app-{i}"), Protocol::Delta))
        .collect();
    let targets: Vec<_> = clients.iter().map(|c| c.subscribe(TARGET)).collect();
    for c in &clients {
        c.ready(TARGET, Duration::from_secs(20)).await.unwrap();
        assert!(!v2_only(&c.state().load()));
    }
    mesh.write("web.yaml", &yaml(0, 100));
    for (i, c) in clients.iter().enumerate() {
        let state = c.state();
        until(
            &format!("client {i} to see the new route"),
            Duration::from_secs(10),
            || v2_only(&state.load()),
        )
        .await;
    }
    // Every client ACKed every resource it holds, at the version now served.
    let syncz = mesh.admin_json("/debug/syncz").await;
    let all = syncz["clients"].as_array().unwrap();
    assert_eq!(all.len(), 100);
    for i in 0..100 {
        mesh.wait_synced(&format!("app-{i}"), 6, Duration::from_secs(10))
            .await;
    }
    drop(targets);
}

#[tokio::test]
async fn a_bad_resource_is_nacked_by_name_and_the_rest_is_applied() {
    use envoy_types::pb::envoy::config::core::v3::TransportSocket;
    use mesh_xds_client::codec::{self, CLUSTER_TYPE};

    let mesh = TestMesh::start(&[("web.yaml", &yaml(50, 50))]).await;
    // A test handler: the same config, but the v2 cluster carries a TLS transport socket without
    // its config, which the client must refuse rather than connect in plaintext.
    let resources = mesh.cp().config_status().resources.clone();
    let bad_name = format!("outbound|{PORT}|v2|{HOST}");
    let mut bad = codec::encode_cluster(&resources.clusters[&bad_name]).unwrap();
    bad.transport_socket = Some(TransportSocket {
        name: "envoy.transport_sockets.tls".into(),
        ..Default::default()
    });
    let (server, registry) = mesh_test::ads::serve_with(
        &resources,
        vec![(CLUSTER_TYPE, bad_name.clone(), codec::to_any(&bad))],
    )
    .await;

    let client = XdsClient::start(
        Bootstrap::insecure(&server.to_string(), "nack-client"),
        fast(Protocol::Delta),
    );
    let _t = client.subscribe(TARGET);
    let state = client.state();
    let good = format!("outbound|{PORT}|v1|{HOST}");
    until(
        "the good cluster to be applied",
        Duration::from_secs(10),
        || state.load().clusters.contains_key(&good),
    )
    .await;
    until(
        "the NACK to reach the server",
        Duration::from_secs(10),
        || {
            registry
                .by_node("nack-client")
                .first()
                .is_some_and(|c| c.types.get("CDS").is_some_and(|t| t.nacks > 0))
        },
    )
    .await;
    let cds = registry.by_node("nack-client")[0].types["CDS"].clone();
    let err = cds.resources[&bad_name].error.clone().unwrap();
    assert_eq!(cds.resources[&bad_name].state, "NACKED");
    assert!(
        err.contains(&bad_name) && err.contains("transport_socket"),
        "{err}"
    );
    assert_eq!(cds.resources[&good].state, "ACKED", "{cds:?}");
    assert!(!state.load().clusters.contains_key(&bad_name));
    let view = state.status();
    let bad_view = view.resources.iter().find(|r| r.name == bad_name).unwrap();
    assert_eq!(bad_view.client_status, ResourceStatus::Nacked);
    assert!(
        bad_view
            .error_state
            .as_ref()
            .unwrap()
            .details
            .contains("transport_socket")
    );
}

#[tokio::test]
async fn clients_keep_the_last_good_state_while_the_control_plane_is_down() {
    let mut mesh = TestMesh::start(&[("web.yaml", &yaml(80, 20))]).await;
    let c = client(&mesh, "survivor", Protocol::Delta);
    let _t = c.subscribe(TARGET);
    c.ready(TARGET, Duration::from_secs(10)).await.unwrap();
    let before = c.state().load_full();

    let state = c.state();
    let restart = async {
        mesh.write("web.yaml", &yaml(0, 100));
        mesh.restart_after(Duration::from_millis(1500)).await;
    };
    let watch_outage = async {
        until(
            "the client to notice the outage",
            Duration::from_secs(5),
            || !state.status().connected,
        )
        .await;
        // While down: the last good state, untouched.
        for _ in 0..10 {
            assert_eq!(*state.load_full(), *before);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::join!(restart, watch_outage);
    until(
        "the client to converge on the new config",
        Duration::from_secs(10),
        || v2_only(&state.load()),
    )
    .await;
    assert!(state.status().connected);
    mesh.wait_synced("survivor", 6, Duration::from_secs(5))
        .await;
}

#[tokio::test]
async fn delta_and_state_of_the_world_yield_the_same_state() {
    let mesh = TestMesh::start(&[("web.yaml", &yaml(70, 30))]).await;
    // The SotW client reads the very bootstrap file grpcio reads.
    let file = mesh_test::grpcio::write_bootstrap(mesh.dir(), mesh.cp().xds_addr(), "sotw");
    let bootstrap = Bootstrap::from_file(&file).unwrap();
    let s = XdsClient::start(bootstrap, fast(Protocol::StateOfTheWorld));
    let d = client(&mesh, "delta", Protocol::Delta);
    let (_a, _b) = (d.subscribe(TARGET), s.subscribe(TARGET));
    d.ready(TARGET, Duration::from_secs(10)).await.unwrap();
    s.ready(TARGET, Duration::from_secs(10)).await.unwrap();
    assert_eq!(*d.state().load_full(), *s.state().load_full());
    assert_eq!(
        d.state().load().clusters.len(),
        2,
        "the two subsets the routes use"
    );
    mesh.wait_synced("sotw", 6, Duration::from_secs(5)).await;
    mesh.wait_synced("delta", 6, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_target_that_does_not_exist_is_reported_on_both_protocols() {
    let mesh = TestMesh::start(&[("web.yaml", &yaml(70, 30))]).await;
    for protocol in [Protocol::Delta, Protocol::StateOfTheWorld] {
        let c = client(&mesh, "ghost-hunter", protocol);
        let _t = c.subscribe("ghost.mesh.local:80");
        match c.ready("ghost.mesh.local:80", Duration::from_secs(5)).await {
            Err(TargetError::Missing { resource, .. }) => {
                assert_eq!(resource, "LDS ghost.mesh.local:80")
            }
            other => panic!("{protocol:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn dropping_a_target_unsubscribes_what_nothing_else_needs() {
    let mesh = TestMesh::start(&[("web.yaml", &yaml(70, 30))]).await;
    let c = client(&mesh, "fickle", Protocol::Delta);
    let t = c.subscribe(TARGET);
    c.ready(TARGET, Duration::from_secs(10)).await.unwrap();
    drop(t);
    let state = c.state();
    until("the state to empty", Duration::from_secs(5), || {
        state.load().route_tables.is_empty() && state.load().clusters.is_empty()
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let syncz = mesh.admin_json("/debug/syncz").await;
        let me = syncz["clients"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["node_id"] == "fickle")
            .cloned()
            .unwrap();
        let subscribed: usize = ["LDS", "RDS", "CDS", "EDS"]
            .iter()
            .map(|t| {
                me["types"][t]["subscribed"]
                    .as_array()
                    .map_or(0, |a| a.len())
            })
            .sum();
        if subscribed == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "still subscribed: {me:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `/debug/syncz` per document: the VirtualService's route table is ACKed by one client and
/// NACKed (raw ADS, on the wire) by another; a document no client holds counts nobody.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncz_counts_acks_and_nacks_per_document() {
    use envoy_types::pb::envoy::config::core::v3::Node;
    use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
    use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
    use envoy_types::pb::google::rpc::Status as RpcStatus;
    use tokio_stream::StreamExt;

    let other = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n\
        metadata: { name: other, namespace: default }\nspec:\n  hosts: [other.mesh.local]\n  \
        ports: [{ number: 80, name: http, protocol: HTTP }]\n  resolution: STATIC\n  \
        endpoints: [{ address: 127.0.0.9 }]\n";
    let mesh = TestMesh::start(&[("web.yaml", &yaml(80, 20)), ("other.yaml", other)]).await;
    let good = client(&mesh, "good", Protocol::Delta);
    let _t = good.subscribe(TARGET);
    good.ready(TARGET, Duration::from_secs(10)).await.unwrap();

    // A raw ADS client that NACKs the route table.
    let mut ads =
        AggregatedDiscoveryServiceClient::connect(format!("http://{}", mesh.cp().xds_addr()))
            .await
            .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let request = |nonce: &str, error: Option<&str>| DiscoveryRequest {
        node: Some(Node {
            id: "picky".into(),
            ..Default::default()
        }),
        type_url: mesh_xds_client::codec::ROUTE_TYPE.into(),
        resource_names: vec![TARGET.into()],
        response_nonce: nonce.into(),
        error_detail: error.map(|m| RpcStatus {
            code: 3,
            message: m.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    tx.send(request("", None)).await.unwrap();
    let mut responses = ads
        .stream_aggregated_resources(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let first = responses.next().await.unwrap().unwrap();
    assert_eq!(first.resources.len(), 1);
    tx.send(request(&first.nonce, Some("route rejected by picky")))
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    let docs = loop {
        let syncz = mesh.admin_json("/debug/syncz").await;
        let docs = syncz["documents"].as_array().unwrap().clone();
        let vs = docs.iter().find(|d| d["kind"] == "VirtualService").unwrap();
        if vs["clients"]["nacked"] == 1 && vs["clients"]["acked"] == 1 {
            break docs;
        }
        assert!(Instant::now() < deadline, "{syncz:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let find = |kind: &str, name: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind && d["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}: {docs:#?}"))
    };
    let vs = find("VirtualService", "svc");
    assert_eq!(vs["resources"], 1, "the route table: {vs}");
    assert_eq!(vs["nack_errors"][0], "route rejected by picky");
    assert!(vs["source"].as_str().unwrap().ends_with("web.yaml"));
    // The ServiceEntry shaped the listener, route table, clusters and assignments.
    let se = find("ServiceEntry", "svc");
    assert!(se["resources"].as_u64().unwrap() >= 4, "{se}");
    assert_eq!(se["clients"]["nacked"], 1);
    // Nobody subscribed to the other host.
    let other = find("ServiceEntry", "other");
    assert_eq!(
        other["clients"],
        serde_json::json!({"acked": 0, "nacked": 0, "pending": 0})
    );
}
