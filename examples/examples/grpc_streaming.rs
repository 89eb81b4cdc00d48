//! Server-streaming calls through `mesh_grpc::Channel`: each stream is routed and balanced once,
//! then all its replies come from the same server.
//!
//! ```sh
//! cargo run -p mesh-examples --example grpc_streaming
//! ```
//!
//! Starts the control plane (a 50/50 split between two versions), two tonic `Echo` servers and
//! an xDS client in this process on loopback, opens 10 streams and prints who served each.

use std::time::Duration;

use control_plane::server::{ControlPlane, Options as CpOptions};
use mesh_test::backend;
use mesh_test::echo::pb::EchoRequest;
use mesh_test::echo::pb::echo_client::EchoClient;
use mesh_xds_client::{Bootstrap, Options, XdsClient};
use tokio_stream::StreamExt;

const HOST: &str = "echo.shop.svc.cluster.local";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let v1 = backend::grpc_echo("echo-v1").await;
    let v2 = backend::grpc_echo("echo-v2").await;
    let dir = tempfile::tempdir()?;
    let yaml = format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: echo, namespace: shop}}
spec:
  hosts: [{HOST}]
  ports: [{{number: 50051, name: grpc, protocol: GRPC}}]
  resolution: STATIC
  endpoints:
  - {{address: 127.0.0.1, ports: {{grpc: {p1}}}}}
  - {{address: 127.0.0.1, ports: {{grpc: {p2}}}}}
"#,
        p1 = v1.addr.port(),
        p2 = v2.addr.port()
    );
    std::fs::write(dir.path().join("echo.yaml"), yaml)?;
    let cp = ControlPlane::start(CpOptions {
        config_dir: Some(dir.path().to_path_buf()),
        xds_addr: "127.0.0.1:0".parse()?,
        admin_addr: "127.0.0.1:0".parse()?,
        ..CpOptions::default()
    })
    .await?;
    let xds = XdsClient::start(
        Bootstrap::insecure(&cp.xds_addr().to_string(), "example"),
        Options::default(),
    );
    let channel = mesh_grpc::Channel::builder(&xds).connect(&format!("xds:///{HOST}:50051"))?;
    xds.ready(&format!("{HOST}:50051"), Duration::from_secs(10))
        .await?;
    let mut client = EchoClient::new(channel);
    for i in 0..10 {
        let mut stream = client
            .echo_stream(EchoRequest {
                message: format!("stream {i}"),
            })
            .await?
            .into_inner();
        let mut from = Vec::new();
        while let Some(reply) = stream.next().await {
            from.push(reply?.backend);
        }
        println!("stream {i}: {} replies from {}", from.len(), from[0]);
    }
    Ok(())
}
