//! Tracing across two hops, A → B → C, each workload with its own telemetry, all exporting to a
//! real OTLP/gRPC receiver: one trace, correct parent links (the server stack continues the
//! caller's attempt span; the client stack called from B's handler continues B's server span
//! without the app forwarding a header), and a retry as its own attempt span.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use mesh_core::Snapshot;
use mesh_test::mesh::TestMesh;
use mesh_test::otlp::{OtlpReceiver, ReceivedSpan};
use mesh_tower::Client;
use mesh_tower::server::{Acceptor, PeerAuthMode, serve};
use mesh_tower::telemetry::{self, Telemetry, TelemetryLayer, Workload};
use mesh_xds_client::client::Options;
use mesh_xds_client::{Bootstrap, XdsClient};
use tokio::net::TcpListener;
use tower::Layer;

fn service_entry(host: &str, port: u16) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{ name: {host}, namespace: default }}\nspec:\n  hosts: [{host}]\n  ports: [{{ number: 8080, name: http, protocol: HTTP }}]\n  resolution: STATIC\n  endpoints:\n  - address: 127.0.0.1\n    ports: {{ http: {port} }}\n"
    )
}

fn plaintext() -> Acceptor {
    Acceptor::new(Snapshot::new(None)).mode(PeerAuthMode::Permissive)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_hop_call_is_one_trace_and_a_retry_is_its_own_attempt_span() {
    let receiver = OtlpReceiver::start().await;
    let provider = |name: &str| telemetry::otlp(&receiver.endpoint(), name, 1.0).unwrap();
    let (pa, pb, pc) = (provider("a"), provider("b"), provider("c"));
    let telemetry = |p, name: &str| {
        Telemetry::builder()
            .workload(Workload::new(name, "test"))
            .tracer(p)
            .build()
    };
    let (ta, tb, tc) = (
        telemetry(&pa, "a"),
        telemetry(&pb, "b"),
        telemetry(&pc, "c"),
    );

    // C answers its first request 503, then 200.
    let c_hits = Arc::new(AtomicUsize::new(0));
    let hits = c_hits.clone();
    let c_app = tower::service_fn(move |_req: Request<Incoming>| {
        let n = hits.fetch_add(1, Ordering::SeqCst);
        async move {
            let resp = Response::builder()
                .status(if n == 0 { 503 } else { 200 })
                .body(Full::new(Bytes::from_static(b"from c")))
                .unwrap();
            Ok::<_, Infallible>(resp)
        }
    });
    let c_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let c_port = c_listener.local_addr().unwrap().port();
    tokio::spawn(serve(
        c_listener,
        plaintext(),
        TelemetryLayer::new(tc).layer(c_app),
    ));

    let b_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b_port = b_listener.local_addr().unwrap().port();
    let yaml = format!(
        "{}---\n{}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{ name: c, namespace: default }}\nspec:\n  hosts: [c.test]\n  http:\n  - retries: {{ attempts: 2, retryOn: 5xx }}\n    route: [{{ destination: {{ host: c.test }} }}]\n",
        service_entry("b.test", b_port),
        service_entry("c.test", c_port)
    );
    let mesh = TestMesh::start(&[("mesh.yaml", &yaml)]).await;
    assert_eq!(mesh.cp().config_status().errors(), 0);
    let xds = XdsClient::start(
        Bootstrap::insecure(&mesh.cp().xds_addr().to_string(), "telemetry"),
        Options::default(),
    );
    let _targets = (xds.subscribe("b.test:8080"), xds.subscribe("c.test:8080"));
    for t in ["b.test:8080", "c.test:8080"] {
        xds.ready(t, Duration::from_secs(10)).await.unwrap();
    }
    let resources = xds.state().resources().clone();

    // B's handler calls C with the mesh client, forwarding no header itself.
    let client_b = Client::builder(resources.clone())
        .telemetry(tb.clone())
        .build();
    let b_app = tower::service_fn(move |_req: Request<Incoming>| {
        let client = client_b.clone();
        async move {
            let resp = client
                .request(Request::get("http://c.test:8080/c").body(Empty::<Bytes>::new())?)
                .await?;
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Response::new(Full::new(body)))
        }
    });
    tokio::spawn(serve(
        b_listener,
        plaintext(),
        TelemetryLayer::new(tb).layer(b_app),
    ));

    let client_a = Client::builder(resources).telemetry(ta).build();
    let resp = client_a
        .request(
            Request::get("http://b.test:8080/b")
                .body(Empty::<Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.into_body().collect().await.unwrap().to_bytes(),
        "from c"
    );
    assert_eq!(
        c_hits.load(Ordering::SeqCst),
        2,
        "C saw the first try and the retry"
    );

    // A: request + attempt; B: server + request + 2 attempts; C: 2 server spans.
    let mut spans = Vec::new();
    for _ in 0..100 {
        for p in [&pa, &pb, &pc] {
            let p = p.clone();
            tokio::task::spawn_blocking(move || p.force_flush())
                .await
                .unwrap()
                .unwrap();
        }
        spans = receiver.spans();
        if spans.len() >= 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(spans.len(), 8, "{spans:#?}");
    let trace = &spans[0].trace_id;
    assert!(
        spans.iter().all(|s| &s.trace_id == trace),
        "one trace: {spans:#?}"
    );

    let of = |service: &str, kind: &str| -> Vec<&ReceivedSpan> {
        spans
            .iter()
            .filter(|s| s.service == service && s.kind == kind)
            .collect()
    };
    let parent_of = |child: &ReceivedSpan| -> &ReceivedSpan {
        spans
            .iter()
            .find(|s| s.span_id == child.parent_span_id)
            .unwrap_or_else(|| panic!("the parent of {child:#?} was exported"))
    };
    let resend = |s: &ReceivedSpan| s.attributes.get("http.request.resend_count").cloned();

    // A: a root request span and its one attempt.
    let a = of("a", "SPAN_KIND_CLIENT");
    assert_eq!(a.len(), 2);
    let a_request = *a
        .iter()
        .find(|s| s.parent_span_id.is_empty())
        .expect("A's root span");
    let a_attempt = *a
        .iter()
        .find(|s| resend(s).is_some())
        .expect("A's attempt span");
    assert_eq!(a_attempt.parent_span_id, a_request.span_id);
    assert_eq!(a_request.name, "GET");
    assert_eq!(a_request.attributes["http.response.status_code"], "200");

    // B: its server span continues A's attempt; its client spans hang under it.
    let b_server = of("b", "SPAN_KIND_SERVER");
    assert_eq!(b_server.len(), 1);
    assert_eq!(b_server[0].parent_span_id, a_attempt.span_id);
    assert_eq!(b_server[0].attributes["url.path"], "/b");
    let b_client = of("b", "SPAN_KIND_CLIENT");
    assert_eq!(b_client.len(), 3);
    let b_request = *b_client.iter().find(|s| resend(s).is_none()).unwrap();
    assert_eq!(b_request.parent_span_id, b_server[0].span_id);
    let mut b_attempts: Vec<&ReceivedSpan> = b_client
        .iter()
        .copied()
        .filter(|s| resend(s).is_some())
        .collect();
    b_attempts.sort_by_key(|s| resend(s));
    assert_eq!(b_attempts.len(), 2, "the retry is its own span");
    for (i, attempt) in b_attempts.iter().enumerate() {
        assert_eq!(attempt.parent_span_id, b_request.span_id);
        assert_eq!(resend(attempt).unwrap(), i.to_string());
    }
    assert_eq!(b_attempts[0].attributes["http.response.status_code"], "503");
    assert!(b_attempts[0].error, "a 503 attempt is an error span");
    assert_eq!(b_attempts[1].attributes["http.response.status_code"], "200");
    assert!(!b_request.error);

    // C: one server span per attempt, each the child of the attempt that reached it.
    let c_server = of("c", "SPAN_KIND_SERVER");
    assert_eq!(c_server.len(), 2);
    for s in &c_server {
        let attempt = parent_of(s);
        assert!(b_attempts.iter().any(|a| a.span_id == attempt.span_id));
        assert_eq!(
            s.attributes["http.response.status_code"],
            attempt.attributes["http.response.status_code"]
        );
    }
    for p in [pa, pb, pc] {
        tokio::task::spawn_blocking(move || p.shutdown())
            .await
            .unwrap()
            .unwrap();
    }
}
