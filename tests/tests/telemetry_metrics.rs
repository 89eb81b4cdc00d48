//! Istio's standard metrics and the access log, after a known amount of traffic: the Prometheus
//! text has Istio's names and labels with exact counts, from both the client stack
//! (`reporter="source"`) and the server stack (`reporter="destination"`); access-log lines are
//! JSON with the documented fields.

use std::convert::Infallible;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use mesh_core::Snapshot;
use mesh_test::echo::pb::EchoRequest;
use mesh_test::echo::pb::echo_client::EchoClient;
use mesh_test::mesh::TestMesh;
use mesh_tower::Client;
use mesh_tower::server::{Acceptor, PeerAuthMode, serve};
use mesh_tower::telemetry::{self, AccessLog, Telemetry, TelemetryLayer, Workload};
use mesh_xds_client::client::Options;
use mesh_xds_client::{Bootstrap, XdsClient};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tower::Layer;

const REVIEWS: &str = "reviews.shop.svc.cluster.local";
const ECHO: &str = "echo.shop.svc.cluster.local";

fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| telemetry::prometheus().expect("the only recorder in this test binary"))
}

/// The sum of `metric`'s samples whose labels include all of `labels`.
fn sample(text: &str, metric: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(metric)?.strip_prefix('{'))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

fn yaml(reviews_port: u16, echo_port: u16) -> String {
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{ name: reviews, namespace: shop }}
spec:
  hosts: [{REVIEWS}]
  ports: [{{ number: 8080, name: http, protocol: HTTP }}]
  resolution: STATIC
  endpoints:
  - address: 127.0.0.1
    ports: {{ http: {reviews_port} }}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{ name: reviews, namespace: shop }}
spec:
  hosts: [{REVIEWS}]
  http:
  - match: [{{ uri: {{ prefix: /fault }} }}]
    fault: {{ abort: {{ httpStatus: 503, percentage: {{ value: 100 }} }} }}
    route: [{{ destination: {{ host: {REVIEWS} }} }}]
  - route: [{{ destination: {{ host: {REVIEWS} }} }}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{ name: echo, namespace: shop }}
spec:
  hosts: [{ECHO}]
  ports: [{{ number: 50051, name: grpc, protocol: GRPC }}]
  resolution: STATIC
  endpoints:
  - address: 127.0.0.1
    ports: {{ grpc: {echo_port} }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_text_has_istio_series_with_exact_counts_and_access_logs_are_json() {
    let handle = prometheus();
    // The server: "reviews-v1", answering 404 on /missing and 200 elsewhere.
    let (server_log, server_lines) = std::sync::mpsc::channel();
    let server_telemetry = Telemetry::builder()
        .workload(Workload::new("reviews-v1", "shop").with_service(REVIEWS))
        .access_log(AccessLog::channel(server_log))
        .build();
    let app = tower::service_fn(|req: Request<Incoming>| async move {
        let status = if req.uri().path() == "/missing" {
            404
        } else {
            200
        };
        let resp = Response::builder()
            .status(status)
            .body(Full::new(Bytes::from_static(b"0123456789")))
            .unwrap();
        Ok::<_, Infallible>(resp)
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let reviews_port = listener.local_addr().unwrap().port();
    let acceptor = Acceptor::new(Snapshot::new(None)).mode(PeerAuthMode::Permissive);
    tokio::spawn(serve(
        listener,
        acceptor,
        TelemetryLayer::new(server_telemetry).layer(app),
    ));
    let echo = mesh_test::backend::grpc_echo_with(
        "echo",
        mesh_test::backend::Behavior {
            fail_permille: 1000,
            ..Default::default()
        },
    )
    .await;

    let mesh = TestMesh::start(&[("mesh.yaml", &yaml(reviews_port, echo.addr.port()))]).await;
    assert_eq!(mesh.cp().config_status().errors(), 0);
    let xds = XdsClient::start(
        Bootstrap::insecure(&mesh.cp().xds_addr().to_string(), "productpage"),
        Options::default(),
    );
    let reviews = format!("{REVIEWS}:8080");
    let _t = xds.subscribe(&reviews);
    xds.ready(&reviews, Duration::from_secs(10)).await.unwrap();

    // The client: "productpage-v1".
    let (client_log, client_lines) = std::sync::mpsc::channel();
    let client_telemetry = Telemetry::builder()
        .workload(Workload::new("productpage-v1", "shop"))
        .access_log(AccessLog::channel(client_log))
        .build();
    let client = Client::builder(xds.state().resources().clone())
        .telemetry(client_telemetry.clone())
        .build();
    let get = |path: &str| {
        let req = Request::get(format!("http://{reviews}{path}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let client = client.clone();
        async move {
            let resp = client.request(req).await.unwrap();
            let status = resp.status();
            resp.into_body().collect().await.unwrap();
            status
        }
    };
    for _ in 0..5 {
        assert_eq!(get("/ok?user=1").await, 200);
    }
    for _ in 0..3 {
        assert_eq!(get("/missing").await, 404);
    }
    for _ in 0..2 {
        assert_eq!(get("/fault").await, 503);
    }
    // gRPC through a mesh channel with the same telemetry: the backend fails every call.
    let channel = mesh_grpc::Channel::from_client(
        Client::builder(xds.state().resources().clone())
            .telemetry(client_telemetry)
            .build(),
        &format!("{ECHO}:50051"),
    )
    .unwrap();
    let _e = xds.subscribe(&format!("{ECHO}:50051"));
    xds.ready(&format!("{ECHO}:50051"), Duration::from_secs(10))
        .await
        .unwrap();
    let mut grpc = EchoClient::new(channel);
    for _ in 0..4 {
        let err = grpc
            .echo(EchoRequest {
                message: "hi".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unavailable);
    }

    // The server records when its response body is done; wait for the last one.
    let text = {
        let mut text = handle.render();
        for _ in 0..50 {
            let done = [("reporter", "destination")];
            if sample(&text, "istio_requests_total", &done) >= 8.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            text = handle.render();
        }
        text
    };
    let source = [
        ("reporter", "source"),
        ("source_workload", "productpage-v1"),
        ("source_workload_namespace", "shop"),
        ("destination_service", REVIEWS),
        ("destination_service_name", "reviews"),
        ("destination_service_namespace", "shop"),
        ("request_protocol", "http"),
        ("connection_security_policy", "unknown"),
    ];
    let with = |base: &[(&'static str, &'static str)], more: &[(&'static str, &'static str)]| {
        let mut v = base.to_vec();
        v.extend_from_slice(more);
        v
    };
    let ok = with(
        &source,
        &[("response_code", "200"), ("response_flags", "-")],
    );
    assert_eq!(sample(&text, "istio_requests_total", &ok), 5.0, "{text}");
    let missing = with(
        &source,
        &[("response_code", "404"), ("response_flags", "-")],
    );
    assert_eq!(sample(&text, "istio_requests_total", &missing), 3.0);
    let fault = with(
        &source,
        &[("response_code", "503"), ("response_flags", "FI")],
    );
    assert_eq!(sample(&text, "istio_requests_total", &fault), 2.0, "{text}");
    // Histograms with Istio's buckets, one observation per request.
    assert_eq!(
        sample(&text, "istio_request_duration_milliseconds_count", &ok),
        5.0
    );
    assert_eq!(sample(&text, "istio_response_bytes_sum", &ok), 50.0);
    assert!(text.contains("istio_request_duration_milliseconds_bucket{"));
    assert!(text.contains("le=\"0.5\""));

    // The server's view: the caller named by its baggage, the service from its workload.
    let dest = [
        ("reporter", "destination"),
        ("source_workload", "productpage-v1"),
        ("source_workload_namespace", "shop"),
        ("destination_workload", "reviews-v1"),
        ("destination_workload_namespace", "shop"),
        ("destination_service", REVIEWS),
        ("connection_security_policy", "none"),
    ];
    let d_ok = with(&dest, &[("response_code", "200")]);
    assert_eq!(sample(&text, "istio_requests_total", &d_ok), 5.0);
    assert_eq!(sample(&text, "istio_response_bytes_sum", &d_ok), 50.0);
    let d_missing = with(&dest, &[("response_code", "404")]);
    assert_eq!(sample(&text, "istio_requests_total", &d_missing), 3.0);
    // Faults answered by the client never reached the server.
    assert_eq!(
        sample(
            &text,
            "istio_requests_total",
            &with(&dest, &[("response_code", "503")])
        ),
        0.0
    );

    // gRPC: HTTP 200 with the gRPC status as its own label.
    let g = [
        ("reporter", "source"),
        ("destination_service", ECHO),
        ("request_protocol", "grpc"),
        ("response_code", "200"),
        ("grpc_response_status", "14"),
    ];
    assert_eq!(sample(&text, "istio_requests_total", &g), 4.0, "{text}");
    // The mesh's own counters.
    assert_eq!(
        sample(&text, "mesh_faults_injected_total", &[("kind", "abort")]),
        2.0
    );
    // No raw path in any label.
    assert!(!text.contains("/ok") && !text.contains("user=1"));

    // Access logs: one JSON line per request, on each side.
    let client_entries: Vec<serde_json::Value> = client_lines
        .try_iter()
        .map(|l| serde_json::from_str(&l).expect("a JSON line"))
        .collect();
    assert_eq!(client_entries.len(), 14, "10 HTTP + 4 gRPC requests");
    let first = &client_entries[0];
    for field in [
        "start_time",
        "method",
        "authority",
        "path",
        "protocol",
        "response_code",
        "response_flags",
        "duration",
        "upstream_host",
        "upstream_cluster",
        "bytes_received",
        "bytes_sent",
        "peer_principal",
        "trace_id",
        "reporter",
        "attempts",
    ] {
        assert!(first.get(field).is_some(), "{field} in {first}");
    }
    assert_eq!(first["method"], "GET");
    assert_eq!(first["path"], "/ok");
    assert_eq!(first["authority"], reviews);
    assert_eq!(first["response_code"], 200);
    assert_eq!(first["response_flags"], "-");
    assert_eq!(first["bytes_received"], 10);
    assert_eq!(first["upstream_host"], format!("127.0.0.1:{reviews_port}"));
    assert_eq!(
        first["upstream_cluster"],
        format!("outbound|8080||{REVIEWS}")
    );
    assert_eq!(first["attempts"], 1);
    assert!(first["start_time"].as_str().unwrap().ends_with('Z'));
    let faulted = client_entries
        .iter()
        .filter(|e| e["response_flags"] == "FI")
        .count();
    assert_eq!(faulted, 2);
    let server_entries: Vec<serde_json::Value> = server_lines
        .try_iter()
        .map(|l| serde_json::from_str(&l).expect("a JSON line"))
        .collect();
    assert_eq!(server_entries.len(), 8);
    assert!(
        server_entries
            .iter()
            .all(|e| e["reporter"] == "destination")
    );
    assert_eq!(
        server_entries
            .iter()
            .filter(|e| e["response_code"] == 404)
            .count(),
        3
    );
}

/// Over mutual TLS both sides name each other by SPIFFE ID, and the server reports the
/// connection as `mutual_tls`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_exchanges_carry_both_principals() {
    use mesh_core::StringMatch;
    use mesh_core::cluster::UpstreamTls;
    use mesh_test::ca::TestCa;

    let handle = prometheus();
    let hour = Duration::from_secs(3600);
    let ca = TestCa::new("cluster.local");
    let (server_id, client_id) = (ca.id("data", "db"), ca.id("shop", "orders"));
    let server_svid = Snapshot::new(Some(ca.svid(&server_id, hour)));
    let client_svid = Snapshot::new(Some(ca.svid(&client_id, hour)));

    let server_telemetry = Telemetry::builder()
        .workload(Workload::new("db-v1", "data"))
        .identity(server_svid.clone())
        .build();
    let app = tower::service_fn(|_req: Request<Incoming>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"row"))))
    });
    // `serve` counts connections with the process default telemetry.
    server_telemetry.install();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(
        listener,
        Acceptor::new(server_svid),
        TelemetryLayer::new(server_telemetry).layer(app),
    ));
    let tls = UpstreamTls {
        sni: None,
        san_matchers: vec![StringMatch::Exact(server_id.to_string())],
    };
    let state = Snapshot::new(mesh_test::mesh::single_cluster(
        "db.data.svc.cluster.local",
        80,
        addr,
        Some(tls),
    ));
    let client = Client::builder(state)
        .identity(client_svid.clone())
        .telemetry(
            Telemetry::builder()
                .workload(Workload::new("orders-v1", "shop"))
                .identity(client_svid)
                .build(),
        )
        .build();
    for _ in 0..3 {
        let resp = client
            .request(
                Request::get("http://db.data.svc.cluster.local/q")
                    .body(Empty::<Bytes>::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.into_body().collect().await.unwrap();
    }
    let (client_uri, server_uri) = (client_id.to_string(), server_id.to_string());
    let dest: Vec<(&str, &str)> = vec![
        ("reporter", "destination"),
        ("source_principal", &client_uri),
        ("source_workload", "orders-v1"),
        ("source_workload_namespace", "shop"),
        ("destination_principal", &server_uri),
        ("destination_workload", "db-v1"),
        ("connection_security_policy", "mutual_tls"),
        ("response_code", "200"),
    ];
    let mut text = handle.render();
    for _ in 0..50 {
        if sample(&text, "istio_requests_total", &dest) >= 3.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        text = handle.render();
    }
    assert_eq!(sample(&text, "istio_requests_total", &dest), 3.0, "{text}");
    let source = [
        ("reporter", "source"),
        ("source_principal", client_uri.as_str()),
        ("destination_principal", server_uri.as_str()),
        ("destination_workload_namespace", "data"),
        ("destination_service", "db.data.svc.cluster.local"),
        ("response_code", "200"),
    ];
    assert_eq!(
        sample(&text, "istio_requests_total", &source),
        3.0,
        "{text}"
    );
    // The server counted the mTLS connection by its peer.
    let conn = [
        ("reporter", "destination"),
        ("source_principal", client_uri.as_str()),
        ("connection_security_policy", "mutual_tls"),
        ("request_protocol", "tcp"),
    ];
    let opened = sample(&text, "istio_tcp_connections_opened_total", &conn);
    assert!(opened >= 1.0, "{text}");
}
