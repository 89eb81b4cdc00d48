//! `mtls_load`: what mutual TLS costs, measured against plaintext in the same run.
//!
//! ```sh
//! cargo bench -p mesh-benches --bench mtls_load            # 5 interleaved rounds × 3 s per mode
//! cargo bench -p mesh-benches --bench mtls_load -- --quick # 2 rounds × 1 s
//! ```
//!
//! One server (`mesh_tower::server::serve`, PERMISSIVE so it takes both) on its own
//! single-threaded runtime; the load on another: 16 closed-loop workers through
//! `mesh_tower::Client`. Mode **P** sends to a plaintext cluster, mode **M** to the same server
//! through a cluster with `tls` (mTLS, SPIFFE ID checked); certificates come from a throwaway CA.
//! Rounds alternate P M P M …; reported: requests per second (median round) and M/P.
//!
//! Handshake cost: 200 fresh connections per mode, each sending one request (so each pays the
//! TCP connect, and in M the full mTLS handshake, both sides verifying ECDSA P-256 chains);
//! reported as the mean time per new connection, M − P.

#![allow(missing_docs)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use mesh_core::cluster::UpstreamTls;
use mesh_core::identity::Svid;
use mesh_core::{MeshResources, Snapshot, StringMatch};
use mesh_test::ca::TestCa;
use mesh_tower::server::{Acceptor, PeerAuthMode};
use tokio::time::Instant;

const HOST: &str = "bench.mesh.local";
const WORKERS: usize = 16;

fn mesh(addr: SocketAddr, tls: Option<&str>) -> MeshResources {
    let mut r = mesh_benches::split_mesh(HOST, addr);
    for c in r.clusters.values_mut() {
        std::sync::Arc::make_mut(c).tls = tls.map(|id| UpstreamTls {
            sni: None,
            san_matchers: vec![StringMatch::Exact(id.to_string())],
        });
    }
    r
}

/// Mean time of a request on a brand-new client (new connection, new handshake).
async fn cold(
    state: &Snapshot<MeshResources>,
    identity: &Snapshot<Option<Svid>>,
    n: u32,
) -> Duration {
    let started = Instant::now();
    for _ in 0..n {
        let client = mesh_tower::Client::builder(state.clone())
            .identity(identity.clone())
            .build();
        let req = http::Request::get(format!("http://{HOST}/"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let resp = client.request(req).await.expect("request");
        let _ = resp.into_body().collect().await;
    }
    started.elapsed() / n
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, secs, cold_n) = if quick { (2, 1.0, 20) } else { (5, 3.0, 200) };
    let ca = TestCa::new("cluster.local");
    let server_id = ca.id("bench", "server");
    let client_id = ca.id("bench", "client");
    let server_svid = Snapshot::new(Some(ca.svid(&server_id, Duration::from_secs(3600))));
    let client_svid = Snapshot::new(Some(ca.svid(&client_id, Duration::from_secs(3600))));

    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("server".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let app = tower::service_fn(|_req: http::Request<hyper::body::Incoming>| async {
                    Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                let acceptor = Acceptor::new(server_svid).mode(PeerAuthMode::Permissive);
                mesh_tower::server::serve(listener, acceptor, app).await;
            });
        })
        .unwrap();
    let addr = addr_rx.recv().unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let plain_state = Snapshot::new(mesh(addr, None));
        let mtls_state = Snapshot::new(mesh(addr, Some(&server_id.to_string())));
        let plain = mesh_tower::Client::builder(plain_state.clone()).build();
        let mtls = mesh_tower::Client::builder(mtls_state.clone())
            .identity(client_svid.clone())
            .build();
        let uri = format!("http://{HOST}/");
        // Warm-up: both pools grow to the workers' shape.
        mesh_benches::closed_loop(&plain, &uri, WORKERS, 0.3).await;
        mesh_benches::closed_loop(&mtls, &uri, WORKERS, 0.3).await;
        let (mut p, mut m) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            p.push(mesh_benches::closed_loop(&plain, &uri, WORKERS, secs).await);
            m.push(mesh_benches::closed_loop(&mtls, &uri, WORKERS, secs).await);
        }
        let (p, m) = (mesh_benches::median(&mut p), mesh_benches::median(&mut m));
        println!("mtls_load closed loop ({WORKERS} workers, {rounds} rounds x {secs} s): plaintext {p:.0} req/s, mTLS {m:.0} req/s, mTLS/plaintext {:.2}x", m / p);
        let cp = cold(&plain_state, &client_svid, cold_n).await;
        let cm = cold(&mtls_state, &client_svid, cold_n).await;
        println!(
            "mtls_load new connection + first request ({cold_n} each): plaintext {cp:?}, mTLS {cm:?}, handshake cost {:?}",
            cm.saturating_sub(cp)
        );
    });
}
