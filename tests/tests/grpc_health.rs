//! Serving status, seen by health checks and by outlier detection: a mesh-grpc server that
//! reports NOT_SERVING answers `grpc.health.v1` checks NOT_SERVING and every other call
//! UNAVAILABLE, the callers' outlier detection ejects it, and traffic moves to the other server.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use mesh_grpc::health::Serving;
use mesh_test::backend;
use mesh_test::echo::pb::EchoRequest;
use mesh_test::echo::pb::echo_client::EchoClient;
use mesh_test::mesh::TestMesh;
use mesh_xds_client::{Bootstrap, Options, XdsClient};
use tokio::net::TcpListener;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tower::Layer;

const HOST: &str = "echo.default.svc.cluster.local";

fn config(a1: SocketAddr, a2: SocketAddr) -> String {
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: echo, namespace: default}}
spec:
  hosts: [{HOST}]
  ports: [{{number: 50051, name: grpc, protocol: GRPC}}]
  resolution: STATIC
  endpoints:
  - {{address: 127.0.0.1, ports: {{grpc: {p1}}}}}
  - {{address: 127.0.0.1, ports: {{grpc: {p2}}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: echo, namespace: default}}
spec:
  host: {HOST}
  trafficPolicy:
    loadBalancer: {{simple: ROUND_ROBIN}}
    outlierDetection: {{consecutiveGatewayErrors: 1, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: default, namespace: default}}
spec: {{mtls: {{mode: DISABLE}}}}
"#,
        p1 = a1.port(),
        p2 = a2.port()
    )
}

async fn health(addr: SocketAddr) -> ServingStatus {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    ServingStatus::try_from(status).unwrap()
}

#[tokio::test]
async fn not_serving_is_seen_by_health_checks_and_ejected_by_callers() {
    let l1 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let l2 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (a1, a2) = (l1.local_addr().unwrap(), l2.local_addr().unwrap());
    let mesh = TestMesh::start(&[("echo.yaml", &config(a1, a2))]).await;
    let mut statuses = Vec::new();
    for (listener, name) in [(l1, "v1"), (l2, "v2")] {
        let (serving, health_service) = Serving::new().await;
        let routes = backend::echo_routes(name).add_service(health_service);
        let app = serving.layer().layer(routes);
        let xds = XdsClient::start(
            Bootstrap::insecure(&mesh.cp().xds_addr().to_string(), name),
            Options::default(),
        );
        tokio::spawn(async move {
            mesh_tower::server::serve_meshed(
                listener,
                &xds,
                mesh_core::Snapshot::new(None),
                app,
                std::future::pending(),
            )
            .await;
        });
        statuses.push(serving);
    }
    let xds = XdsClient::start(
        Bootstrap::insecure(&mesh.cp().xds_addr().to_string(), "caller"),
        Options::default(),
    );
    let channel = mesh_grpc::Channel::builder(&xds)
        .connect(&format!("xds:///{HOST}:50051"))
        .unwrap();
    xds.ready(&format!("{HOST}:50051"), Duration::from_secs(10))
        .await
        .unwrap();
    let echo = EchoClient::new(channel);
    let calls = |n: usize| {
        let mut echo = echo.clone();
        async move {
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for _ in 0..n {
                let key = match echo
                    .echo(EchoRequest {
                        message: "x".into(),
                    })
                    .await
                {
                    Ok(r) => r.into_inner().backend,
                    Err(s) => format!("{:?}", s.code()),
                };
                *counts.entry(key).or_default() += 1;
            }
            counts
        }
    };
    // Both serve; health checks say so (once each server has its inbound listener).
    let before = calls(40).await;
    assert!(
        before.contains_key("v1") && before.contains_key("v2"),
        "{before:?}"
    );
    assert_eq!(health(a1).await, ServingStatus::Serving);

    statuses[0].set_not_serving().await;
    assert_eq!(health(a1).await, ServingStatus::NotServing);
    let during = calls(40).await;
    let failed = during.get("Unavailable").copied().unwrap_or(0);
    assert!(
        failed <= 2,
        "v1 was not ejected after its first UNAVAILABLE: {during:?}"
    );
    let after = calls(40).await;
    assert_eq!(
        after.get("v2").copied(),
        Some(40),
        "all traffic on v2: {after:?}"
    );

    statuses[0].set_serving().await;
    assert_eq!(health(a1).await, ServingStatus::Serving);
}
