//! tower layers and client/server stacks driven by live mesh state.
//!
//! Today this crate holds the routing decision every outbound request makes — virtual host by
//! authority, first matching route, weighted cluster — with Envoy's semantics, read straight from a
//! `mesh_core::route::RouteTable`. The client stack (load balancing, retries, timeouts, circuit
//! breaking, outlier detection, faults, mirroring, rate limits) and the server stack (mTLS,
//! authorization) are being built on top of it; see the README's feature table.
//!
//! # Example
//! ```no_run
//! use mesh_core::route::RouteTable;
//! use mesh_tower::route;
//!
//! fn choose(table: &RouteTable, req: &http::Request<()>, roll: u32) -> Option<String> {
//!     let r = route::select(table, req)?;
//!     match &r.action {
//!         mesh_core::route::RouteAction::Forward(f) => {
//!             route::pick_weighted(&f.clusters, roll).map(|c| c.name.clone())
//!         }
//!         _ => None,
//!     }
//! }
//! ```

pub mod balance;
pub mod breaker;
pub mod client;
pub mod endpoint;
pub mod fault;
pub mod outlier;
pub mod retry;
pub mod route;

pub use client::{Client, Error};
