//! The mesh control plane: config sources, translation to xDS, the ADS server and the admin API.
//!
//! The binary `mesh-control-plane` wraps [`server::ControlPlane`]; tests and embedders start it
//! in-process:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use control_plane::server::{ControlPlane, Options};
//! let cp = ControlPlane::start(Options {
//!     config_dir: Some("config/".into()),
//!     xds_addr: "127.0.0.1:0".parse()?,
//!     admin_addr: "127.0.0.1:0".parse()?,
//!     ..Options::default()
//! })
//! .await?;
//! println!("ADS on {}, admin on {}", cp.xds_addr(), cp.admin_addr());
//! # Ok(()) }
//! ```
//!
//! What it does not do yet: Kubernetes sources, the certificate authority, and inbound (server-side)
//! listeners; see the README's feature table.

pub mod admin;
pub mod config;
pub mod publish;
pub mod server;
pub mod translate;
pub mod watch;
pub mod xds;
