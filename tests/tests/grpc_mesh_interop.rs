//! mesh-grpc against stock grpcio 1.85, both ways, following the weighted split from the YAML:
//! a grpcio xDS client calls tonic servers served by `mesh_grpc::server::serve` (their inbound
//! listeners from our control plane), and a `mesh_grpc::Channel` calls plain grpcio servers.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use mesh_grpc::Channel;
use mesh_test::backend;
use mesh_test::echo::pb::EchoRequest;
use mesh_test::echo::pb::echo_client::EchoClient;
use mesh_test::grpcio::{GrpcioClient, GrpcioServer, Load, write_bootstrap};
use mesh_test::mesh::TestMesh;
use mesh_xds_client::{Bootstrap, Options, XdsClient};
use tokio::net::TcpListener;

const HOST: &str = "echo.mesh.local";
const PORT: u16 = 50051;

/// The mesh's plaintext mode for the test's namespace: grpcio peers here speak plaintext.
const DISABLE: &str = "
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec: {mtls: {mode: DISABLE}}
";

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[tokio::test]
async fn a_grpcio_client_calls_mesh_grpc_servers_by_the_split() {
    let l1 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let l2 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (a1, a2) = (l1.local_addr().unwrap(), l2.local_addr().unwrap());
    let yaml = common::two_version_service(HOST, PORT, "grpc", a1, a2, 70, 30) + DISABLE;
    let mesh = TestMesh::start(&[("echo.yaml", &yaml)]).await;
    for (listener, name) in [(l1, "mesh-v1"), (l2, "mesh-v2")] {
        let xds = XdsClient::start(
            Bootstrap::insecure(&mesh.cp().xds_addr().to_string(), name),
            Options::default(),
        );
        tokio::spawn(async move {
            mesh_grpc::server::serve(
                listener,
                &xds,
                mesh_core::Snapshot::new(None),
                backend::echo_routes(name),
                std::future::pending(),
            )
            .await;
        });
    }
    let bootstrap = write_bootstrap(mesh.dir(), mesh.cp().xds_addr(), "grpcio-client");
    let results = GrpcioClient::run(
        &format!("xds:///{HOST}:{PORT}"),
        Some(&bootstrap),
        Load::Calls(300),
    )
    .await;
    assert!(
        results.errors().is_empty(),
        "{:?}\n{}",
        results.errors(),
        results.stderr
    );
    let counts = results.counts();
    let share = common::share(counts.get("mesh-v1").copied().unwrap_or(0), results.ok());
    assert!(
        (0.60..=0.80).contains(&share),
        "v1 share {share}: {counts:?}"
    );
}

#[tokio::test]
async fn a_mesh_grpc_channel_calls_grpcio_servers_by_the_split() {
    let (a1, a2) = (free_port(), free_port());
    let _s1 = GrpcioServer::spawn_plain(a1, "grpcio-v1").await;
    let _s2 = GrpcioServer::spawn_plain(a2, "grpcio-v2").await;
    let yaml = common::two_version_service(HOST, PORT, "grpc", a1, a2, 70, 30);
    let mesh = TestMesh::start(&[("echo.yaml", &yaml)]).await;
    let xds = XdsClient::start(
        Bootstrap::insecure(&mesh.cp().xds_addr().to_string(), "mesh-channel"),
        Options::default(),
    );
    let channel = Channel::builder(&xds)
        .connect(&format!("xds:///{HOST}:{PORT}"))
        .unwrap();
    xds.ready(&format!("{HOST}:{PORT}"), Duration::from_secs(10))
        .await
        .unwrap();
    let mut echo = EchoClient::new(channel);
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for _ in 0..300 {
        let reply = echo
            .echo(EchoRequest {
                message: "hi".into(),
            })
            .await
            .expect("a grpcio server answers")
            .into_inner();
        *counts.entry(reply.backend).or_default() += 1;
    }
    let share = f64::from(counts.get("grpcio-v1").copied().unwrap_or(0)) / 300.0;
    assert!(
        (0.60..=0.80).contains(&share),
        "v1 share {share}: {counts:?}"
    );
}
