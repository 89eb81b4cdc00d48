//! ADS protocol tests over a real gRPC stream on loopback.

use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::google::protobuf::Any;
use envoy_types::pb::google::rpc::Status as RpcStatus;
use mesh_core::Snapshot;
use mesh_xds_client::codec::{CLUSTER_TYPE, ENDPOINT_TYPE};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::Streaming;

use super::*;

fn res(name: &str, body: &str) -> (&'static str, XdsResource) {
    let any = Any {
        type_url: CLUSTER_TYPE.into(),
        value: body.as_bytes().to_vec(),
    };
    (
        CLUSTER_TYPE,
        XdsResource::new(name.into(), any, serde_json::Value::Null),
    )
}

fn eds(name: &str, body: &str) -> (&'static str, XdsResource) {
    let any = Any {
        type_url: ENDPOINT_TYPE.into(),
        value: body.as_bytes().to_vec(),
    };
    (
        ENDPOINT_TYPE,
        XdsResource::new(name.into(), any, serde_json::Value::Null),
    )
}

async fn serve(
    snapshot: Snapshot<XdsSnapshot>,
    registry: ClientRegistry,
) -> AggregatedDiscoveryServiceClient<tonic::transport::Channel> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    std::mem::forget(stop);
    let svc = AdsServer::new(snapshot, registry, shutdown).into_service();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    AggregatedDiscoveryServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

fn node() -> Option<Node> {
    Some(Node {
        id: "test-node".into(),
        ..Default::default()
    })
}

struct Sotw {
    tx: mpsc::Sender<DiscoveryRequest>,
    rx: Streaming<DiscoveryResponse>,
}

impl Sotw {
    async fn open(
        client: &mut AggregatedDiscoveryServiceClient<tonic::transport::Channel>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(8);
        let resp = client
            .stream_aggregated_resources(ReceiverStream::new(rx))
            .await
            .unwrap();
        Self {
            tx,
            rx: resp.into_inner(),
        }
    }
    async fn send(&self, r: DiscoveryRequest) {
        self.tx.send(r).await.unwrap();
    }
    async fn recv(&mut self) -> DiscoveryResponse {
        tokio::time::timeout(Duration::from_secs(5), self.rx.next())
            .await
            .expect("response in time")
            .unwrap()
            .unwrap()
    }
    async fn nothing(&mut self) {
        assert!(
            tokio::time::timeout(Duration::from_millis(200), self.rx.next())
                .await
                .is_err(),
            "unexpected push"
        );
    }
}

fn names(r: &DiscoveryResponse) -> Vec<String> {
    r.resources
        .iter()
        .map(|a| String::from_utf8(a.value.clone()).unwrap())
        .collect()
}

#[tokio::test]
async fn sotw_wildcard_ack_nack_and_push_on_change_only() {
    let snapshot = Snapshot::new(XdsSnapshot::new(
        1,
        vec![res("a", "a1"), res("b", "b1"), eds("a", "ea1")],
    ));
    let registry = ClientRegistry::default();
    let mut client = serve(snapshot.clone(), registry.clone()).await;
    let mut s = Sotw::open(&mut client).await;
    s.send(DiscoveryRequest {
        node: node(),
        type_url: CLUSTER_TYPE.into(),
        ..Default::default()
    })
    .await;
    let r = s.recv().await;
    assert_eq!(names(&r), ["a1", "b1"]);
    // ACK, then a change that does not touch CDS: no push.
    s.send(DiscoveryRequest {
        type_url: CLUSTER_TYPE.into(),
        version_info: r.version_info.clone(),
        response_nonce: r.nonce.clone(),
        ..Default::default()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let st = &registry.by_node("test-node")[0].types["CDS"];
    assert_eq!(st.acks, 1);
    assert!(st.resources.values().all(|r| r.state == "ACKED"));
    snapshot.store(XdsSnapshot::new(
        2,
        vec![res("a", "a1"), res("b", "b1"), eds("a", "ea2")],
    ));
    s.nothing().await;
    // A CDS change is pushed; NACK it naming `b`: only `b` is NACKED.
    snapshot.store(XdsSnapshot::new(3, vec![res("a", "a2"), res("b", "b2")]));
    let r2 = s.recv().await;
    assert_eq!(names(&r2), ["a2", "b2"]);
    assert_ne!(r2.version_info, r.version_info);
    s.send(DiscoveryRequest {
        type_url: CLUSTER_TYPE.into(),
        version_info: r.version_info.clone(),
        response_nonce: r2.nonce.clone(),
        error_detail: Some(RpcStatus {
            code: 3,
            message: "cluster b: lb_policy unsupported".into(),
            details: vec![],
        }),
        ..Default::default()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let st = registry.by_node("test-node")[0].types["CDS"].clone();
    assert_eq!(st.nacks, 1);
    assert_eq!(st.resources["b"].state, "NACKED");
    assert_eq!(
        st.resources["b"].error.as_deref(),
        Some("cluster b: lb_policy unsupported")
    );
    assert_eq!(st.resources["a"].state, "ACKED");
    // The NACKed view is not resent until the config changes.
    s.nothing().await;
}

#[tokio::test]
async fn sotw_named_subscription_gets_only_its_names() {
    let snapshot = Snapshot::new(XdsSnapshot::new(1, vec![eds("x", "x1"), eds("y", "y1")]));
    let mut client = serve(snapshot.clone(), ClientRegistry::default()).await;
    let mut s = Sotw::open(&mut client).await;
    s.send(DiscoveryRequest {
        node: node(),
        type_url: ENDPOINT_TYPE.into(),
        resource_names: vec!["y".into()],
        ..Default::default()
    })
    .await;
    assert_eq!(names(&s.recv().await), ["y1"]);
    snapshot.store(XdsSnapshot::new(2, vec![eds("x", "x2"), eds("y", "y1")]));
    s.nothing().await;
}

struct Delta {
    tx: mpsc::Sender<DeltaDiscoveryRequest>,
    rx: Streaming<DeltaDiscoveryResponse>,
}

impl Delta {
    async fn open(
        client: &mut AggregatedDiscoveryServiceClient<tonic::transport::Channel>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(8);
        let resp = client
            .delta_aggregated_resources(ReceiverStream::new(rx))
            .await
            .unwrap();
        Self {
            tx,
            rx: resp.into_inner(),
        }
    }
    async fn send(&self, r: DeltaDiscoveryRequest) {
        self.tx.send(r).await.unwrap();
    }
    async fn recv(&mut self) -> DeltaDiscoveryResponse {
        tokio::time::timeout(Duration::from_secs(5), self.rx.next())
            .await
            .expect("response in time")
            .unwrap()
            .unwrap()
    }
    async fn nothing(&mut self) {
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(200), self.rx.next()).await {
            panic!("unexpected push: {r:?}");
        }
    }
}

fn delta_names(r: &DeltaDiscoveryResponse) -> Vec<String> {
    r.resources.iter().map(|x| x.name.clone()).collect()
}

#[tokio::test]
async fn delta_sends_only_differences_and_reports_absent_names() {
    let snapshot = Snapshot::new(XdsSnapshot::new(1, vec![eds("x", "x1"), eds("y", "y1")]));
    let registry = ClientRegistry::default();
    let mut client = serve(snapshot.clone(), registry.clone()).await;
    let mut d = Delta::open(&mut client).await;
    d.send(DeltaDiscoveryRequest {
        node: node(),
        type_url: ENDPOINT_TYPE.into(),
        resource_names_subscribe: vec!["x".into(), "y".into(), "ghost".into()],
        ..Default::default()
    })
    .await;
    let r = d.recv().await;
    assert_eq!(delta_names(&r), ["x", "y"]);
    assert_eq!(r.removed_resources, ["ghost"]);
    d.send(DeltaDiscoveryRequest {
        type_url: ENDPOINT_TYPE.into(),
        response_nonce: r.nonce.clone(),
        ..Default::default()
    })
    .await;
    // Only y changes; x is removed.
    snapshot.store(XdsSnapshot::new(2, vec![eds("y", "y2")]));
    let r2 = d.recv().await;
    assert_eq!(delta_names(&r2), ["y"]);
    assert_eq!(r2.removed_resources, ["x"]);
    d.send(DeltaDiscoveryRequest {
        type_url: ENDPOINT_TYPE.into(),
        response_nonce: r2.nonce.clone(),
        ..Default::default()
    })
    .await;
    // Unsubscribing y, then an unrelated change: nothing is sent.
    d.send(DeltaDiscoveryRequest {
        type_url: ENDPOINT_TYPE.into(),
        resource_names_unsubscribe: vec!["y".into()],
        ..Default::default()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    snapshot.store(XdsSnapshot::new(3, vec![eds("y", "y3")]));
    d.nothing().await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let st = registry.by_node("test-node")[0].types["EDS"].clone();
    assert_eq!(st.subscribed, ["ghost", "x"]);
}

#[tokio::test]
async fn delta_reconnect_with_initial_versions_resends_nothing_unchanged() {
    let snapshot = Snapshot::new(XdsSnapshot::new(1, vec![res("a", "a1"), res("b", "b1")]));
    let mut client = serve(snapshot.clone(), ClientRegistry::default()).await;
    let mut d = Delta::open(&mut client).await;
    d.send(DeltaDiscoveryRequest {
        node: node(),
        type_url: CLUSTER_TYPE.into(),
        ..Default::default()
    })
    .await;
    let r = d.recv().await;
    assert_eq!(delta_names(&r), ["a", "b"]);
    let versions = r
        .resources
        .iter()
        .map(|x| (x.name.clone(), x.version.clone()))
        .collect();
    drop(d);
    snapshot.store(XdsSnapshot::new(2, vec![res("a", "a1"), res("b", "b2")]));
    let mut d2 = Delta::open(&mut client).await;
    d2.send(DeltaDiscoveryRequest {
        node: node(),
        type_url: CLUSTER_TYPE.into(),
        initial_resource_versions: versions,
        ..Default::default()
    })
    .await;
    let r2 = d2.recv().await;
    assert_eq!(
        delta_names(&r2),
        ["b"],
        "only the resource that changed while away"
    );
}
