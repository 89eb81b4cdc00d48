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
    let bootstrap = write_bootstrap(mesh.dir(), mesh.cp.xds_addr(), "grpcio-client");
    let target = format!("xds:///{HOST}:{PORT}");

    let results = GrpcioClient::run(&target, Some(&bootstrap), Load::Calls(300)).await;
    assert!(
        results.errors().is_empty(),
        "failed calls: {:?}\n{}",
        results.errors(),
        results.stderr
    );
    let counts = results.counts();
    let share = common::share(counts.get("echo-v1").copied().unwrap_or(0), results.ok());
    assert!(
        (0.60..=0.80).contains(&share),
        "v1 share {share}, want about 0.70: {counts:?}"
    );

    // The client ACKed what it was sent: a listener, a route table, a cluster each for v1 and v2 and
    // their endpoints.
    let status = mesh
        .wait_synced("grpcio-client", 4, Duration::from_secs(5))
        .await;
    assert!(
        status["user_agent"].as_str().unwrap_or("").contains("gRPC"),
        "{status:#}"
    );

    // Edit while calls run: all traffic to v2 within a second, with no failed call.
    let client = GrpcioClient::spawn(
        &target,
        Some(&bootstrap),
        Load::For {
            duration: Duration::from_secs(3),
            interval: Duration::from_millis(10),
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let edit_at = client.started().elapsed().as_secs_f64();
    mesh.write(
        "echo.yaml",
        &common::two_version_service(HOST, PORT, "grpc", v1.addr, v2.addr, 0, 100),
    );
    let results = client.finish().await;
    assert!(
        results.errors().is_empty(),
        "failed calls during the edit: {:?}",
        results.errors()
    );
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
