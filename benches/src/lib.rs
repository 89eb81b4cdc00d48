//! Benchmarks live in `benches/`: `cargo bench -p mesh-benches`. Every load benchmark compares
//! against the bare-hyper baseline measured in the same run; see BENCHMARKS.md.
//!
//! This library holds what several benchmarks share: [`split_mesh`], the static mesh the load
//! benchmarks send through; [`closed_loop`], [`bare_server`], [`median`] and
//! [`CountingAlloc`]. It is also a way to try the client stack without a control plane:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use bytes::Bytes;
//! use http_body_util::Empty;
//! use mesh_core::Snapshot;
//!
//! // Both clusters of the 90/10 split hold this one backend.
//! let backend = "127.0.0.1:8080".parse()?;
//! let state = Snapshot::new(mesh_benches::split_mesh("bench.local", backend));
//! let client = mesh_tower::Client::from_snapshot(state);
//! let resp = client
//!     .request(http::Request::get("http://bench.local/").body(Empty::<Bytes>::new())?)
//!     .await?;
//! println!("{}", resp.status());
//! # Ok(()) }
//! ```

mod shared;

pub use shared::{
    CountingAlloc, Loop, allocations, bare_server, closed_loop, closed_loop_with, live_bytes,
    median,
};

use std::net::SocketAddr;

use mesh_core::MeshResources;
use mesh_core::cluster::Cluster;
use mesh_core::endpoint::Endpoint;
use mesh_core::route::{ForwardAction, RetryOn, RetryPolicy, Route, RouteAction, WeightedCluster};

/// The static mesh the load benchmarks send through: target `<host>:80`, one route splitting
/// 90/10 over two clusters that both hold `addr`, a retry policy (2 retries on connect failure or
/// reset) and default circuit breakers and balancing — the whole per-request path except xDS.
pub fn split_mesh(host: &str, addr: SocketAddr) -> MeshResources {
    let target = mesh_core::target_name(host, 80);
    let mut r = MeshResources::default();
    let (c1, c2) = (
        mesh_core::cluster_name(host, 80, Some("v1")),
        mesh_core::cluster_name(host, 80, Some("v2")),
    );
    let action = RouteAction::Forward(ForwardAction {
        clusters: vec![
            WeightedCluster {
                name: c1.clone(),
                weight: 90,
            },
            WeightedCluster {
                name: c2.clone(),
                weight: 10,
            },
        ],
        retry: Some(RetryPolicy {
            retry_on: vec![RetryOn::ConnectFailure, RetryOn::Reset],
            num_retries: 2,
            ..Default::default()
        }),
        ..ForwardAction::to_cluster("unused")
    });
    r.add_target(&target, host, vec![Route::new("split", action)]);
    for c in [c1, c2] {
        r.add_cluster(Cluster::new(c), vec![Endpoint::new(addr)]);
    }
    r
}
