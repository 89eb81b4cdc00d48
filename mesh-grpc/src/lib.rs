//! tonic glue for the mesh.
//!
//! Today: the gRPC pieces the client stack needs — `grpc-timeout` deadlines ([`timeout`], as gRFC
//! A31 uses them) and retry classification by `grpc-status` ([`status`], gRFC A44). Not yet: the
//! `xds:///` channel and the server layer; see the README's feature table.
//!
//! # Example
//! ```no_run
//! use std::time::Duration;
//! let header = mesh_grpc::timeout::format(Duration::from_millis(300));
//! assert_eq!(mesh_grpc::timeout::parse(&header), Some(Duration::from_millis(300)));
//! ```

pub mod status;
pub mod timeout;
