//! Example config and runnable examples.
//!
//! - `examples/config/` holds a bookinfo-style mesh for the directory source:
//!   `cargo run -p control-plane --bin mesh-control-plane -- serve --config-dir examples/config`.
//! - `examples/examples/` holds programs that start everything they need in one process on
//!   loopback and end by themselves: `cargo run -p mesh-examples --example grpc_unary` (a tonic
//!   client meshed by one line, following an 80/20 split) and `--example grpc_streaming`.
//!
//! This library itself is empty; the examples use the workspace crates as an application would.
//! The pattern they share — an in-process control plane on the example config, an xDS client,
//! and a target followed until it resolves:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//!
//! use control_plane::server::{ControlPlane, Options as CpOptions};
//! use mesh_xds_client::{Bootstrap, Options, XdsClient};
//!
//! let cp = ControlPlane::start(CpOptions {
//!     config_dir: Some("examples/config".into()),
//!     xds_addr: "127.0.0.1:0".parse()?,
//!     admin_addr: "127.0.0.1:0".parse()?,
//!     ..CpOptions::default()
//! })
//! .await?;
//! let xds = XdsClient::start(
//!     Bootstrap::insecure(&cp.xds_addr().to_string(), "example"),
//!     Options::default(),
//! );
//! let target = "reviews.default.svc.cluster.local:9080";
//! let channel = mesh_grpc::Channel::builder(&xds).connect(&format!("xds:///{target}"))?;
//! xds.ready(target, Duration::from_secs(10)).await?;
//! // `SomeServiceClient::new(channel)` for any tonic-generated client.
//! # let _ = channel;
//! println!("{}", xds.state().dump());
//! # Ok(()) }
//! ```
