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
//! With [`Options::ca`](server::Options::ca) set it also runs the certificate authority
//! ([`ca`]): Istio's `IstioCertificateService.CreateCertificate` on the xDS port issues SPIFFE
//! X.509 SVIDs to workloads authenticated by a bootstrap token or by their current certificate,
//! and the admin API serves the trust bundle at `/ca/root-cert.pem`.
//!
//! It also sends servers their inbound listeners (gRFC A36: PeerAuthentication as filter
//! chains, AuthorizationPolicy as RBAC filters), and serves TLS and plaintext on the xDS port
//! ([`xds_port`]) so workloads with a certificate talk to it over mutual TLS.
//!
//! With [`Options::kubernetes`](server::Options::kubernetes) it watches a cluster instead of (or
//! beside) a directory ([`k8s`]): Services, EndpointSlices, Pods and the same documents as
//! custom resources, with status conditions, leader election, TokenReview authentication for
//! the CA, the CA in a Secret and an injection webhook. The Helm chart is in
//! `charts/mesh-control-plane`.
//!
//! What it does not do yet: Istio's `Telemetry` resource; see the README's feature table and
//! docs/xds-mapping.md for what each document becomes.

pub mod admin;
pub mod ca;
pub mod config;
pub mod k8s;
pub mod provenance;
pub mod publish;
pub mod server;
pub mod translate;
pub mod watch;
pub mod xds;
pub mod xds_port;
