//! A tonic client meshed by changing one line: unary calls through `mesh_grpc::Channel`.
//!
//! ```sh
//! cargo run -p mesh-examples --example grpc_unary
//! ```
//!
//! Starts, in this process on loopback: the control plane (reading a YAML directory with an
//! 80/20 split between two versions), two tonic `Echo` servers, and an xDS client; then makes 50
//! calls and prints which version answered each. Ends by itself.

use std::collections::BTreeMap;
use std::time::Duration;

use control_plane::server::{ControlPlane, Options as CpOptions};
use mesh_test::backend;
use mesh_test::echo::pb::EchoRequest;
use mesh_test::echo::pb::echo_client::EchoClient;
use mesh_xds_client::{Bootstrap, Options, XdsClient};

const HOST: &str = "echo.shop.svc.cluster.local";

fn config(v1: std::net::SocketAddr, v2: std::net::SocketAddr) -> String {
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: echo, namespace: shop}}
spec:
  hosts: [{HOST}]
  ports: [{{number: 50051, name: grpc, protocol: GRPC}}]
  resolution: STATIC
  endpoints:
  - {{address: 127.0.0.1, ports: {{grpc: {p1}}}, labels: {{version: v1}}}}
  - {{address: 127.0.0.1, ports: {{grpc: {p2}}}, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: echo, namespace: shop}}
spec:
  host: {HOST}
  subsets: [{{name: v1, labels: {{version: v1}}}}, {{name: v2, labels: {{version: v2}}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: echo, namespace: shop}}
spec:
  hosts: [{HOST}]
  http:
  - route:
    - {{destination: {{host: {HOST}, subset: v1}}, weight: 80}}
    - {{destination: {{host: {HOST}, subset: v2}}, weight: 20}}
    retries: {{attempts: 2, retryOn: unavailable}}
"#,
        p1 = v1.port(),
        p2 = v2.port()
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let v1 = backend::grpc_echo("echo-v1").await;
    let v2 = backend::grpc_echo("echo-v2").await;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("echo.yaml"), config(v1.addr, v2.addr))?;
    let cp = ControlPlane::start(CpOptions {
        config_dir: Some(dir.path().to_path_buf()),
        xds_addr: "127.0.0.1:0".parse()?,
        admin_addr: "127.0.0.1:0".parse()?,
        ..CpOptions::default()
    })
    .await?;

    // In an application: `mesh_grpc::channel("xds:///…")` with GRPC_XDS_BOOTSTRAP set.
    let xds = XdsClient::start(
        Bootstrap::insecure(&cp.xds_addr().to_string(), "example"),
        Options::default(),
    );
    let channel = mesh_grpc::Channel::builder(&xds).connect(&format!("xds:///{HOST}:50051"))?;
    xds.ready(&format!("{HOST}:50051"), Duration::from_secs(10))
        .await?;
    // The one line that changes: `EchoClient::new(channel)` instead of `EchoClient::connect(url)`.
    let mut client = EchoClient::new(channel);

    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for i in 0..50 {
        let reply = client
            .echo(EchoRequest {
                message: format!("call {i}"),
            })
            .await?
            .into_inner();
        println!("{} answered {:?}", reply.backend, reply.message);
        *counts.entry(reply.backend).or_default() += 1;
    }
    println!("answers per version (route: 80/20): {counts:?}");
    Ok(())
}
