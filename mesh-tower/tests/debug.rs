//! The debug views over real sockets: served with `mesh_tower::server::serve`, showing an endpoint
//! that outlier detection ejected after real 503s, and dumping what a real xDS client ACKed.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use mesh_core::cluster::{Cluster, LbPolicy, OutlierDetection};
use mesh_core::endpoint::Endpoint;
use mesh_core::route::{ForwardAction, Route, RouteAction};
use mesh_core::{MeshResources, Snapshot};
use mesh_test::backend::{self, Behavior};
use mesh_test::mesh::TestMesh;
use mesh_tower::Client;
use mesh_tower::debug::DebugService;
use mesh_tower::server::{self, Acceptor, PeerAuthMode};
use mesh_xds_client::{Bootstrap, Options, XdsClient};
use serde_json::Value;
use tower::ServiceExt;

const TARGET: &str = "web:80";
const CLUSTER: &str = "outbound|80||web";

/// One route to one round-robin cluster of `endpoints`, ejecting after two 5xx in a row.
fn mesh(endpoints: &[SocketAddr]) -> MeshResources {
    let mut r = MeshResources::default();
    let action = RouteAction::Forward(ForwardAction::to_cluster(CLUSTER));
    r.add_target(TARGET, "web", vec![Route::new("all", action)]);
    let mut c = Cluster::new(CLUSTER);
    c.lb_policy = LbPolicy::RoundRobin;
    c.outlier_detection = Some(OutlierDetection {
        consecutive_5xx: Some(2),
        max_ejection_percent: 50,
        base_ejection_time: Duration::from_secs(30),
        ..OutlierDetection::default()
    });
    r.add_cluster(c, endpoints.iter().map(|a| Endpoint::new(*a)).collect());
    r
}

/// Serves `svc` in PERMISSIVE mode (plaintext accepted) on `127.0.0.1:0`.
async fn serve(svc: DebugService) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = Acceptor::new(Snapshot::new(None)).mode(PeerAuthMode::Permissive);
    tokio::spawn(server::serve(listener, acceptor, svc));
    addr
}

async fn get_json(addr: SocketAddr, path: &str) -> (StatusCode, Value) {
    let http = HyperClient::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let uri = format!("http://{addr}{path}");
    let resp = http.get(uri.parse().unwrap()).await.unwrap();
    let status = resp.status();
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

fn endpoint(clusters: &Value, addr: SocketAddr) -> &Value {
    clusters["clusters"][0]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["address"] == addr.to_string())
        .unwrap_or_else(|| panic!("{addr} not in {clusters:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clusters_view_shows_the_endpoint_outlier_detection_ejected() {
    let good = backend::http("good").await;
    let bad = backend::http_with(
        "bad",
        Behavior {
            fail_permille: 1000,
            ..Behavior::default()
        },
    )
    .await;
    let state = Snapshot::new(mesh(&[good.addr, bad.addr]));
    let client = Client::from_snapshot(state.clone());
    let addr = serve(DebugService::from_snapshot(state).client(&client)).await;

    // Before any request: both endpoints in, nothing in flight, no latency sample yet.
    let (status, before) = get_json(addr, "/debug/clusters").await;
    assert_eq!(status, StatusCode::OK);
    for a in [good.addr, bad.addr] {
        let live = &endpoint(&before, a)["live"];
        assert_eq!(live["ejected"], false, "{before:#}");
        assert!(live["ewma_latency_ms"].is_null(), "{before:#}");
    }

    // Round robin: the bad endpoint's second 503 in a row ejects it.
    let mut sent = 0;
    while bad.hits() < 2 {
        assert!(sent < 20, "the bad endpoint was never picked twice");
        let req = Request::get("http://web/")
            .body(Empty::<Bytes>::new())
            .unwrap();
        client.request(req).await.unwrap();
        sent += 1;
    }
    let started = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();

    let (_, after) = get_json(addr, "/debug/clusters").await;
    let cluster = &after["clusters"][0];
    assert_eq!(cluster["live"]["balancer"], "round_robin");
    assert_eq!(cluster["live"]["outlier_ejected"], 1);
    assert_eq!(cluster["live"]["requests_in_flight"], 0);

    let ejected = &endpoint(&after, bad.addr)["live"];
    assert_eq!(ejected["ejected"], true, "{after:#}");
    assert_eq!(ejected["ejections"], 1);
    let remaining = ejected["ejection_remaining_ms"].as_u64().unwrap();
    assert!(remaining > 25_000 && remaining <= 30_000, "{remaining}");
    let until = ejected["ejected_until_unix_ms"].as_u64().unwrap();
    let now = started.as_millis() as u64;
    assert!(
        until > now + 25_000 && until <= now + 31_000,
        "{until} vs {now}"
    );

    let healthy = &endpoint(&after, good.addr)["live"];
    assert_eq!(healthy["ejected"], false);
    assert!(healthy["ejected_until_unix_ms"].is_null());
    assert!(
        healthy["ewma_latency_ms"].as_f64().unwrap() > 0.0,
        "{after:#}"
    );
    assert_eq!(healthy["in_flight"], 0);

    // And the client indeed sends nothing more to it while the view says it is ejected.
    let hits = bad.hits();
    for _ in 0..4 {
        let req = Request::get("http://web/")
            .body(Empty::<Bytes>::new())
            .unwrap();
        assert_eq!(client.request(req).await.unwrap().status(), StatusCode::OK);
    }
    assert_eq!(bad.hits(), hits);

    let (status, body) = get_json(addr, "/debug/unknown").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("/debug/unknown"));
}

const HOST: &str = "web.mesh.local";
const XDS_TARGET: &str = "web.mesh.local:8080";

fn service_entry() -> String {
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: web
  namespace: default
spec:
  hosts: [{HOST}]
  ports:
  - number: 8080
    name: http
    protocol: HTTP
  resolution: STATIC
  endpoints:
  - address: 127.0.0.1
    ports: {{ http: 18001 }}
"#
    )
}

#[tokio::test]
async fn config_dump_lists_what_the_xds_client_acked_with_versions() {
    let mesh = TestMesh::start(&[("web.yaml", &service_entry())]).await;
    let xds = XdsClient::start(
        Bootstrap::insecure(&mesh.cp().xds_addr().to_string(), "debug-views"),
        Options::default(),
    );
    let _target = xds.subscribe(XDS_TARGET);
    xds.ready(XDS_TARGET, Duration::from_secs(10))
        .await
        .unwrap();
    let svc = DebugService::new(&xds.state());

    let get = |path: &'static str| {
        let svc = svc.clone();
        async move {
            let req = Request::get(path).body(Empty::<Bytes>::new()).unwrap();
            let resp = svc.oneshot(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            serde_json::from_slice::<Value>(&body).unwrap()
        }
    };
    let dump = get("/debug/config_dump").await;
    assert_eq!(dump["xds"]["connected"], true, "{dump:#}");
    assert_eq!(dump["xds"]["protocol"], "delta");
    assert_eq!(dump["xds"]["targets"][XDS_TARGET]["state"], "READY");
    let resources = dump["resources"].as_array().unwrap();
    let cluster = format!("outbound|8080||{HOST}");
    for (kind, name) in [
        ("LDS", XDS_TARGET),
        ("RDS", XDS_TARGET),
        ("CDS", cluster.as_str()),
        ("EDS", cluster.as_str()),
    ] {
        let r = resources
            .iter()
            .find(|r| r["kind"] == kind && r["name"] == name)
            .unwrap_or_else(|| panic!("{kind} {name} not in {dump:#}"));
        assert_eq!(r["client_status"], "ACKED", "{r:#}");
        assert!(!r["version"].as_str().unwrap().is_empty(), "{r:#}");
        assert!(r["error_state"].is_null());
        assert!(r["type_url"].as_str().unwrap().contains("envoy.config"));
        assert!(r["resource"].is_object(), "{r:#}");
    }
    let eds = resources.iter().find(|r| r["kind"] == "EDS").unwrap();
    let ep = &eds["resource"]["localities"][0]["endpoints"][0];
    assert_eq!(ep["address"], "127.0.0.1:18001");

    // The same state in the other views.
    let routes = get("/debug/routes").await;
    assert_eq!(routes["listeners"][0]["target"], XDS_TARGET);
    assert_eq!(routes["listeners"][0]["route_table"]["name"], XDS_TARGET);
    let why = get("/debug/explain?authority=web.mesh.local:8080&path=/x").await;
    assert_eq!(why["clusters"][0]["name"], cluster.as_str());
    assert_eq!(why["clusters"][0]["percent"], 100.0);
    assert!(why["error"].is_null(), "{why:#}");
}
