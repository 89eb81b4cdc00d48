//! `client_load`: the mesh client stack against the bare hyper client, same server, same run.
//!
//! ```sh
//! cargo bench -p mesh-benches --bench client_load            # 5 interleaved rounds × 3 s per mode
//! cargo bench -p mesh-benches --bench client_load -- --quick # 2 rounds × 1 s
//! ```
//!
//! A bare hyper HTTP/1.1 server runs on its own single-threaded runtime (thread "server"); the
//! load runs on another single-threaded runtime (thread "load") with 16 concurrent closed-loop
//! workers. Mode A sends through a bare `hyper_util` pooled client straight to the server; mode B
//! sends through `mesh_tower::Client` with a static mesh config (one route, a 90/10 split between
//! two clusters that both point at the same server, P2C peak-EWMA balancing, a retry policy and
//! circuit breakers) — the full per-request path minus xDS. Reported per mode: requests per second
//! (median of rounds), latency p50/p99 over all rounds, and heap allocations per request (counting
//! allocator); then B as a ratio of A.

#![allow(missing_docs, unsafe_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_core::Snapshot;
use tokio::time::Instant;

#[global_allocator]
static GLOBAL: mesh_benches::CountingAlloc = mesh_benches::CountingAlloc;

const HOST: &str = "bench.mesh.local";
const CONCURRENCY: usize = 16;

fn server(addr_tx: std::sync::mpsc::Sender<SocketAddr>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        addr_tx.send(listener.local_addr().unwrap()).unwrap();
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req: http::Request<Incoming>| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                        Bytes::from_static(b"ok"),
                    )))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
}

#[derive(Default)]
struct Round {
    requests: u64,
    allocs: u64,
    latencies: Vec<Duration>,
    secs: f64,
}

async fn round(
    mode: &str,
    bare: &HyperClient<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    meshc: &mesh_tower::Client,
    addr: SocketAddr,
    secs: f64,
) -> Round {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let allocs_before = mesh_benches::allocations();
    let started = Instant::now();
    for _ in 0..CONCURRENCY {
        let (stop, bare, meshc, mode) =
            (stop.clone(), bare.clone(), meshc.clone(), mode.to_string());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let status = if mode == "A" {
                    let resp = bare
                        .request(
                            http::Request::get(format!("http://{addr}/"))
                                .body(Empty::new())
                                .unwrap(),
                        )
                        .await
                        .unwrap();
                    let s = resp.status();
                    resp.into_body().collect().await.unwrap();
                    s
                } else {
                    let resp = meshc
                        .request(
                            http::Request::get(format!("http://{HOST}/"))
                                .body(Empty::<Bytes>::new())
                                .unwrap(),
                        )
                        .await
                        .unwrap();
                    let s = resp.status();
                    resp.into_body().collect().await.unwrap();
                    s
                };
                assert_eq!(status, 200);
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut r = Round::default();
    for t in tasks {
        r.latencies.extend(t.await.unwrap());
    }
    r.secs = started.elapsed().as_secs_f64();
    r.requests = r.latencies.len() as u64;
    r.allocs = mesh_benches::allocations() - allocs_before;
    r
}

/// Requests in flight allowed in the open-loop phase; a request over it waits (and its wait
/// counts in its latency). Bounds the connections either client opens.
const OPEN_LOOP_MAX_IN_FLIGHT: usize = 128;

/// Open loop: requests start on a fixed schedule at `rate` per second whatever the responses do;
/// each latency counts from the scheduled start, so queueing is not hidden (no coordinated
/// omission). tokio's timer has 1 ms resolution, so requests leave in 1 ms batches — the same for
/// both clients.
async fn open_loop(
    mode: &'static str,
    bare: &HyperClient<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    meshc: &mesh_tower::Client,
    addr: SocketAddr,
    rate: f64,
    secs: f64,
) -> Vec<Duration> {
    let permits = Arc::new(tokio::sync::Semaphore::new(OPEN_LOOP_MAX_IN_FLIGHT));
    let period = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let n = (rate * secs) as u32;
    let mut tasks = Vec::with_capacity(n as usize);
    for i in 0..n {
        let scheduled = start + period * i;
        tokio::time::sleep_until(scheduled).await;
        let (bare, meshc, permits) = (bare.clone(), meshc.clone(), permits.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.expect("semaphore open");
            let status = if mode == "A" {
                let resp = bare
                    .request(
                        http::Request::get(format!("http://{addr}/"))
                            .body(Empty::new())
                            .unwrap(),
                    )
                    .await
                    .unwrap();
                let s = resp.status();
                resp.into_body().collect().await.unwrap();
                s
            } else {
                let resp = meshc
                    .request(
                        http::Request::get(format!("http://{HOST}/"))
                            .body(Empty::<Bytes>::new())
                            .unwrap(),
                    )
                    .await
                    .unwrap();
                let s = resp.status();
                resp.into_body().collect().await.unwrap();
                s
            };
            assert_eq!(status, 200);
            scheduled.elapsed()
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, secs) = if quick { (2, 1.0) } else { (5, 3.0) };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("server".into())
        .spawn(move || server(tx))
        .unwrap();
    let addr = rx.recv().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_nodelay(true);
        let bare = HyperClient::builder(TokioExecutor::new()).build(connector);
        let meshc = mesh_tower::Client::from_snapshot(Snapshot::new(mesh_benches::split_mesh(HOST, addr)));
        // Warm-up: connections in both pools.
        round("A", &bare, &meshc, addr, 0.5).await;
        round("B", &bare, &meshc, addr, 0.5).await;
        let mut results: BTreeMap<&str, Vec<Round>> = BTreeMap::new();
        for _ in 0..rounds {
            for mode in ["A", "B"] {
                let r = round(mode, &bare, &meshc, addr, secs).await;
                results.entry(mode).or_default().push(r);
            }
        }
        let mut summary = BTreeMap::new();
        for (mode, rs) in &results {
            let mut rps: Vec<f64> = rs.iter().map(|r| r.requests as f64 / r.secs).collect();
            rps.sort_by(f64::total_cmp);
            let mut lat: Vec<Duration> = rs.iter().flat_map(|r| r.latencies.iter().copied()).collect();
            lat.sort();
            let total: u64 = rs.iter().map(|r| r.requests).sum();
            let allocs: u64 = rs.iter().map(|r| r.allocs).sum();
            let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize];
            let name = if *mode == "A" { "bare hyper client" } else { "mesh_tower::Client" };
            println!(
                "client_load {mode} {name:<20} rps median {:>8.0} (min {:.0} max {:.0}) p50 {:>7.1?} p99 {:>7.1?} allocs/req {:.1}",
                rps[rps.len() / 2], rps[0], rps[rps.len() - 1], p(0.5), p(0.99), allocs as f64 / total as f64
            );
            summary.insert(*mode, (rps[rps.len() / 2], p(0.5), p(0.99), allocs as f64 / total as f64));
        }
        let (a, b) = (summary["A"], summary["B"]);
        println!(
            "client_load closed loop, ratio B/A: throughput {:.2}x, added p50 {:?}, added p99 {:?}, extra allocs/req {:.1}",
            b.0 / a.0,
            b.1.saturating_sub(a.1),
            b.2.saturating_sub(a.2),
            b.3 - a.3
        );

        // Open loop at half the bare maximum, rounds interleaved.
        let rate = a.0 / 2.0;
        let (mut oa, mut ob) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            oa.extend(open_loop("A", &bare, &meshc, addr, rate, secs).await);
            ob.extend(open_loop("B", &bare, &meshc, addr, rate, secs).await);
        }
        oa.sort();
        ob.sort();
        let q = |v: &[Duration], p: f64| v[((v.len() - 1) as f64 * p) as usize];
        let (a50, a99, b50, b99) = (q(&oa, 0.5), q(&oa, 0.99), q(&ob, 0.5), q(&ob, 0.99));
        println!(
            "client_load open loop at {rate:.0} req/s (half the bare maximum): A p50 {a50:?} p99 {a99:?} | B p50 {b50:?} p99 {b99:?} | added p50 {:?}, added p99 {:?}",
            b50.saturating_sub(a50),
            b99.saturating_sub(a99)
        );
    });
}
