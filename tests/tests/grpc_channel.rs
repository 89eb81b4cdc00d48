//! `mesh_grpc::Channel`: a tonic-generated client on a mesh channel, over loopback with the real
//! control plane and YAML — the weighted split, a header match on the gRPC call, retries by
//! `grpc-status` that recover UNAVAILABLE from a flaky backend, a deadline shorter than the
//! backend's delay, and streaming calls balanced across endpoints.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use mesh_grpc::Channel;
use mesh_test::backend::{self, Behavior};
use mesh_test::echo::pb::EchoRequest;
use mesh_test::echo::pb::echo_client::EchoClient;
use mesh_test::mesh::TestMesh;
use mesh_xds_client::{Bootstrap, Options, XdsClient};
use tokio_stream::StreamExt;
use tonic::Code;

const HOST: &str = "echo.mesh.local";
const PORT: u16 = 50051;

async fn client(mesh: &TestMesh) -> (XdsClient, EchoClient<Channel>) {
    let xds = XdsClient::start(
        Bootstrap::insecure(&mesh.cp().xds_addr().to_string(), "grpc-channel"),
        Options::default(),
    );
    let channel = Channel::builder(&xds)
        .connect(&format!("xds:///{HOST}:{PORT}"))
        .expect("a valid target");
    xds.ready(&format!("{HOST}:{PORT}"), Duration::from_secs(10))
        .await
        .expect("the target resolves");
    (xds, EchoClient::new(channel))
}

/// The backend that answers a call with `x-canary: true`.
async fn canary_call(echo: &mut EchoClient<Channel>) -> String {
    let mut req = tonic::Request::new(request("canary"));
    req.metadata_mut()
        .insert("x-canary", "true".parse().unwrap());
    echo.echo(req).await.unwrap().into_inner().backend
}

fn request(message: &str) -> EchoRequest {
    EchoRequest {
        message: message.into(),
    }
}

#[tokio::test]
async fn unary_calls_follow_the_split_and_the_header_match() {
    let v1 = backend::grpc_echo("echo-v1").await;
    let v2 = backend::grpc_echo("echo-v2").await;
    let mesh = TestMesh::start(&[(
        "echo.yaml",
        &common::two_version_service(HOST, PORT, "grpc", v1.addr, v2.addr, 80, 20),
    )])
    .await;
    let (_xds, mut echo) = client(&mesh).await;

    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for _ in 0..400 {
        let reply = echo.echo(request("hi")).await.expect("call").into_inner();
        assert_eq!(reply.message, "hi");
        *counts.entry(reply.backend).or_default() += 1;
    }
    let share = f64::from(counts["echo-v1"]) / 400.0;
    assert!(
        (0.72..=0.88).contains(&share),
        "v1 share {share}: {counts:?}"
    );

    for _ in 0..20 {
        assert_eq!(canary_call(&mut echo).await, "echo-v2");
    }
}

fn flaky_service(addr: std::net::SocketAddr, retry: &str, timeout: &str) -> String {
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: echo, namespace: default}}
spec:
  hosts: [{HOST}]
  ports: [{{number: {PORT}, name: grpc, protocol: GRPC, targetPort: {port}}}]
  resolution: STATIC
  endpoints: [{{address: 127.0.0.1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: echo, namespace: default}}
spec:
  hosts: [{HOST}]
  http:
  - route: [{{destination: {{host: {HOST}}}}}]
{retry}{timeout}"#,
        port = addr.port()
    )
}

#[tokio::test]
async fn retries_by_grpc_status_recover_unavailable() {
    let flaky = backend::grpc_echo_with(
        "flaky",
        Behavior {
            fail_permille: 300,
            delay: Duration::ZERO,
        },
    )
    .await;
    let retry = "    retries: {attempts: 5, retryOn: unavailable}\n";
    let mesh = TestMesh::start(&[("echo.yaml", &flaky_service(flaky.addr, retry, ""))]).await;
    let (_xds, mut echo) = client(&mesh).await;
    let mut failed = 0;
    for _ in 0..300 {
        if echo.echo(request("x")).await.is_err() {
            failed += 1;
        }
    }
    // 30 % failures per attempt, 6 attempts: the chance a call fails is 0.3^6 ≈ 0.07 %.
    assert!(failed <= 2, "{failed} of 300 calls failed despite retries");
    assert!(
        flaky.hits() > 330,
        "retries were made: {} attempts",
        flaky.hits()
    );

    // Without the retry policy the failures reach the caller, as UNAVAILABLE.
    mesh.write(
        "echo.yaml",
        &flaky_service(flaky.addr, "    retries: {attempts: 0}\n", ""),
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut unavailable = 0;
    for _ in 0..100 {
        match echo.echo(request("x")).await {
            Err(s) if s.code() == Code::Unavailable => unavailable += 1,
            Err(s) => panic!("unexpected status {s:?}"),
            Ok(_) => {}
        }
    }
    assert!(
        unavailable >= 10,
        "{unavailable} of 100 failed without retries"
    );
}

#[tokio::test]
async fn a_deadline_shorter_than_the_backend_gives_deadline_exceeded() {
    let slow = backend::grpc_echo_with(
        "slow",
        Behavior {
            fail_permille: 0,
            delay: Duration::from_millis(500),
        },
    )
    .await;
    let mesh = TestMesh::start(&[("echo.yaml", &flaky_service(slow.addr, "", ""))]).await;
    let (_xds, mut echo) = client(&mesh).await;
    let mut req = tonic::Request::new(request("late"));
    req.set_timeout(Duration::from_millis(100));
    let status = echo
        .echo(req)
        .await
        .expect_err("the deadline expires first");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    let mut req = tonic::Request::new(request("in time"));
    req.set_timeout(Duration::from_secs(5));
    assert_eq!(
        echo.echo(req).await.unwrap().into_inner().message,
        "in time"
    );
}

#[tokio::test]
async fn streaming_calls_spread_across_endpoints() {
    let v1 = backend::grpc_echo("echo-v1").await;
    let v2 = backend::grpc_echo("echo-v2").await;
    let mesh = TestMesh::start(&[(
        "echo.yaml",
        &common::two_version_service(HOST, PORT, "grpc", v1.addr, v2.addr, 50, 50),
    )])
    .await;
    let (_xds, mut echo) = client(&mesh).await;
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for _ in 0..100 {
        let mut stream = echo.echo_stream(request("s")).await.unwrap().into_inner();
        let mut replies = Vec::new();
        while let Some(r) = stream.next().await {
            replies.push(r.unwrap().backend);
        }
        assert!(replies.len() > 1, "a stream of replies");
        assert!(
            replies.iter().all(|b| *b == replies[0]),
            "one stream, one backend"
        );
        *counts.entry(replies[0].clone()).or_default() += 1;
    }
    assert!(
        counts.get("echo-v1").copied().unwrap_or(0) >= 25
            && counts.get("echo-v2").copied().unwrap_or(0) >= 25,
        "{counts:?}"
    );
}

/// Circuit-breaker overflow reaches a gRPC caller as UNAVAILABLE saying which limit.
#[tokio::test]
async fn breaker_overflow_is_unavailable_naming_the_limit() {
    let slow = backend::grpc_echo_with(
        "slow",
        Behavior {
            fail_permille: 0,
            delay: Duration::from_millis(300),
        },
    )
    .await;
    let breaker = format!(
        "---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: echo, namespace: default}}
spec:
  host: {HOST}
  trafficPolicy:
    connectionPool: {{http: {{http2MaxRequests: 1}}}}
"
    );
    let yaml = flaky_service(slow.addr, "", "") + &breaker;
    let mesh = TestMesh::start(&[("echo.yaml", &yaml)]).await;
    let (_xds, echo) = client(&mesh).await;
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let mut echo = echo.clone();
            tokio::spawn(async move { echo.echo(request("x")).await })
        })
        .collect();
    let mut overflowed = 0;
    for c in calls {
        match c.await.unwrap() {
            Ok(_) => {}
            Err(s) => {
                assert_eq!(s.code(), Code::Unavailable, "{s:?}");
                assert!(s.message().contains("max_requests"), "{s:?}");
                overflowed += 1;
            }
        }
    }
    assert!(
        overflowed >= 3,
        "{overflowed} of 5 concurrent calls overflowed a limit of 1"
    );
}

/// A VirtualService fault abort with a gRPC status (gRFC A33) reaches the caller as that status,
/// without the backend seeing the call.
#[tokio::test]
async fn a_fault_abort_answers_with_the_grpc_status() {
    let echo_backend = backend::grpc_echo("echo").await;
    let fault = "    fault: {abort: {grpcStatus: RESOURCE_EXHAUSTED, percentage: {value: 100}}}\n";
    let mesh =
        TestMesh::start(&[("echo.yaml", &flaky_service(echo_backend.addr, fault, ""))]).await;
    let (_xds, mut echo) = client(&mesh).await;
    let status = echo.echo(request("x")).await.expect_err("aborted");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(echo_backend.hits(), 0, "the backend never saw the call");
}

/// A GRPCRoute (GAMMA) on the echo Service: `EchoStream` calls and calls with `x-canary: true`
/// go to v2; the other calls split 50/50 by weight.
fn grpc_route_config(v1: std::net::SocketAddr, v2: std::net::SocketAddr) -> String {
    let entry = |name: &str, host: &str, addr: std::net::SocketAddr| {
        format!(
            r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{ name: {name}, namespace: default }}
spec:
  hosts: [{host}]
  ports: [{{ number: {PORT}, name: grpc, protocol: GRPC }}]
  resolution: STATIC
  endpoints: [{{ address: {ip}, ports: {{ grpc: {port} }} }}]
---
"#,
            ip = addr.ip(),
            port = addr.port()
        )
    };
    format!(
        r#"{}{}{}apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {{ name: echo, namespace: default }}
spec:
  parentRefs: [{{ group: networking.istio.io, kind: ServiceEntry, name: echo, port: {PORT} }}]
  rules:
  - matches:
    - method: {{ service: mesh.test.echo.v1.Echo, method: EchoStream }}
    - headers: [{{ name: x-canary, value: "true" }}]
    backendRefs: [{{ group: networking.istio.io, kind: ServiceEntry, name: echo-v2, port: {PORT} }}]
  - matches:
    - method: {{ type: RegularExpression, service: "mesh\\.test\\..*", method: "Ech.+" }}
    filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier: {{ add: [{{ name: x-route, value: split }}] }}
    backendRefs:
    - {{ group: networking.istio.io, kind: ServiceEntry, name: echo-v1, port: {PORT}, weight: 50 }}
    - {{ group: networking.istio.io, kind: ServiceEntry, name: echo-v2, port: {PORT}, weight: 50 }}
"#,
        entry("echo", HOST, v1),
        entry("echo-v1", "echo-v1.mesh.local", v1),
        entry("echo-v2", "echo-v2.mesh.local", v2),
    )
}

#[tokio::test]
async fn a_grpc_route_routes_by_method_and_header() {
    let v1 = backend::grpc_echo("echo-v1").await;
    let v2 = backend::grpc_echo("echo-v2").await;
    let mesh = TestMesh::start(&[("echo.yaml", &grpc_route_config(v1.addr, v2.addr))]).await;
    let status = mesh.cp().config_status();
    assert_eq!(status.errors(), 0, "{:#?}", status.diagnostics);
    let (_xds, mut echo) = client(&mesh).await;

    // Unary Echo: the weighted rule, with its response header.
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for _ in 0..200 {
        let reply = echo.echo(request("hi")).await.expect("call");
        assert_eq!(reply.metadata().get("x-route").unwrap(), "split");
        *counts.entry(reply.into_inner().backend).or_default() += 1;
    }
    let share = f64::from(counts["echo-v1"]) / 200.0;
    assert!(
        (0.38..=0.62).contains(&share),
        "v1 share {share}: {counts:?}"
    );

    // The method match and the header match: v2 only.
    for _ in 0..10 {
        let mut stream = echo
            .echo_stream(request("s"))
            .await
            .expect("stream")
            .into_inner();
        while let Some(reply) = stream.next().await {
            assert_eq!(reply.unwrap().backend, "echo-v2");
        }
        assert_eq!(canary_call(&mut echo).await, "echo-v2");
    }
}
