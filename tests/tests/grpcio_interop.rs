//! A stock grpcio 1.85 proxyless client resolves `xds:///<host>:<port>` through our control plane
//! (LDS → RDS → CDS → EDS), calls tonic servers by the weighted split from the YAML, and follows an
//! edit of the YAML within a second without a failed call.

mod common;

use std::time::Duration;

use mesh_test::backend;
use mesh_test::grpcio::{GrpcioClient, Load, write_bootstrap};
use mesh_test::mesh::TestMesh;

const HOST: &str = "echo.mesh.local";
const PORT: u16 = 50051;

#[tokio::test]
async fn grpcio_follows_the_split_and_the_edit() {
    let v1 = backend::grpc_echo("echo-v1").await;
    let v2 = backend::grpc_echo("echo-v2").await;
    let mesh = TestMesh::start(&[(
        "echo.yaml",
        &common::two_version_service(HOST, PORT, "grpc", v1.addr, v2.addr, 70, 30),
    )])
    .await;
    let bootstrap = write_bootstrap(mesh.dir(), mesh.cp().xds_addr(), "grpcio-client");
    let target = format!("xds:///{HOST}:{PORT}");

    // Calls run for 5 s; the YAML is edited 3 s in.
    let client = GrpcioClient::spawn(
        &target,
        Some(&bootstrap),
        Load::For {
            duration: Duration::from_secs(5),
            interval: Duration::from_millis(5),
        },
    )
    .await;

    // While it runs, the client has ACKed what it was sent: a listener, a route table, the v1 and
    // v2 clusters and their endpoints.
    let status = mesh
        .wait_synced("grpcio-client", 6, Duration::from_secs(5))
        .await;
    assert!(
        status["user_agent"].as_str().unwrap_or("").contains("gRPC"),
        "{status:#}"
    );
    for t in ["LDS", "RDS", "CDS", "EDS"] {
        assert_eq!(status["types"][t]["nacks"], 0, "{t} NACKed: {status:#}");
    }

    let until = Duration::from_secs(3).saturating_sub(client.started().elapsed());
    tokio::time::sleep(until).await;
    let edit_at = client.started().elapsed().as_secs_f64();
    mesh.write(
        "echo.yaml",
        &common::two_version_service(HOST, PORT, "grpc", v1.addr, v2.addr, 0, 100),
    );
    let results = client.finish().await;
    assert!(
        results.errors().is_empty(),
        "failed calls: {:?}\n{}",
        results.errors(),
        results.stderr
    );

    // Before the edit: the 70/30 split.
    let before = results.window(0.0, edit_at);
    let counts = before.counts();
    let share = common::share(counts.get("echo-v1").copied().unwrap_or(0), before.ok());
    assert!(
        before.ok() >= 100,
        "too few calls before the edit to judge: {counts:?}"
    );
    assert!(
        (0.55..=0.85).contains(&share),
        "v1 share {share}, want about 0.70: {counts:?}"
    );

    // A second after the edit: v2 only.
    let late = results.window(edit_at + 1.0, f64::MAX);
    assert!(
        late.ok() > 50,
        "too few calls after the edit to judge: {}",
        late.ok()
    );
    assert_eq!(
        late.counts().get("echo-v1"),
        None,
        "v1 still called more than 1 s after the edit: {:?}",
        late.counts()
    );
}

/// Without a load-balancer setting the cluster carries the default policy (least request, as
/// Istio); grpcio must accept it as well.
#[tokio::test]
async fn grpcio_accepts_the_default_policies() {
    let v1 = backend::grpc_echo("echo-v1").await;
    let v2 = backend::grpc_echo("echo-v2").await;
    let yaml =
        common::two_version_service("plain.mesh.local", PORT, "grpc", v1.addr, v2.addr, 50, 50)
            .replace(
                "  trafficPolicy:\n    loadBalancer:\n      simple: ROUND_ROBIN\n",
                "",
            );
    let mesh = TestMesh::start(&[("plain.yaml", &yaml)]).await;
    let bootstrap = write_bootstrap(mesh.dir(), mesh.cp().xds_addr(), "grpcio-default");
    let results = GrpcioClient::run(
        &format!("xds:///plain.mesh.local:{PORT}"),
        Some(&bootstrap),
        Load::Calls(40),
    )
    .await;
    assert!(
        results.errors().is_empty(),
        "failed calls: {:?}\n{}",
        results.errors(),
        results.stderr
    );
    assert_eq!(
        results.counts().len(),
        2,
        "both versions called: {:?}",
        results.counts()
    );
}
