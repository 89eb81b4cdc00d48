//! `front_load`: the protocol's pinned, open-loop measurement of the client stack, with an
//! external load generator.
//!
//! ```sh
//! cargo install oha --locked --root ~/.cache/oha       # once; the generator
//! OHA=~/.cache/oha/bin/oha taskset -c 0 cargo bench -p mesh-benches --bench front_load
//! ```
//!
//! This process (pin it to CPU0) runs a bare hyper backend and two front servers on one
//! single-threaded runtime: front **A** forwards each request to the backend with a bare
//! `hyper_util` client, front **B** with `mesh_tower::Client` (one route, 90/10 split over two
//! clusters, peak-EWMA P2C, retries, breakers). `oha`, pinned to CPU1, first finds A's closed-loop
//! maximum, then drives A, B and a second bare front A' in rotating order (`FRONT_ROUNDS`, default 3, × 5 s each) open-loop at half that rate with
//! latency correction. Everything else about the two paths is identical, so B − A is the cost of
//! the mesh stack. Without `OHA` set the bench says so and exits (CI only builds it).

#![allow(missing_docs)]

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mesh_core::Snapshot;

const HOST: &str = "bench.mesh.local";

/// Runs oha (pinned to CPU1) and returns (requests per second, p50, p99).
fn oha(bin: &str, url: &str, args: &[&str]) -> (f64, Duration, Duration) {
    let out = Command::new("taskset")
        .args([
            "-c",
            "1",
            bin,
            "--no-tui",
            "--output-format",
            "json",
            "-z",
            "5s",
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("run oha");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "oha output ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let secs =
        |p: &str| Duration::from_secs_f64(v["latencyPercentiles"][p].as_f64().unwrap_or(f64::NAN));
    (
        v["summary"]["requestsPerSec"].as_f64().unwrap_or(0.0),
        secs("p50"),
        secs("p99"),
    )
}

fn main() {
    let Ok(bin) = std::env::var("OHA") else {
        println!(
            "front_load: set OHA to an oha binary (cargo install oha --locked) to run this benchmark"
        );
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let backend = mesh_benches::bare_server(|_req| async { http::Response::new(Full::new(Bytes::from_static(b"ok"))) }).await;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let bare: HyperClient<HttpConnector, Empty<Bytes>> = HyperClient::builder(TokioExecutor::new()).build(connector.clone());
        let bare_front = |bare: HyperClient<HttpConnector, Empty<Bytes>>| {
            mesh_benches::bare_server(move |_req| {
                let bare = bare.clone();
                async move {
                    let resp = bare.request(http::Request::get(format!("http://{backend}/")).body(Empty::new()).unwrap()).await.unwrap();
                    http::Response::new(Full::new(resp.into_body().collect().await.unwrap().to_bytes()))
                }
            })
        };
        let front_a = bare_front(bare.clone()).await;
        // A second, identical bare front: A' − A is the noise floor B − A is read against.
        let front_c = bare_front(HyperClient::builder(TokioExecutor::new()).build(connector.clone())).await;
        let meshc = mesh_tower::Client::from_snapshot(Snapshot::new(mesh_benches::split_mesh(HOST, backend)));
        let front_b = mesh_benches::bare_server(move |_req| {
            let meshc = meshc.clone();
            async move {
                let resp = meshc.request(http::Request::get(format!("http://{HOST}/")).body(Empty::<Bytes>::new()).unwrap()).await.unwrap();
                http::Response::new(Full::new(resp.into_body().collect().await.unwrap().to_bytes()))
            }
        })
        .await;
        let (a_url, b_url, c_url) = (format!("http://{front_a}/"), format!("http://{front_b}/"), format!("http://{front_c}/"));
        // The generator runs in another process; yield to our servers while it does.
        let run = |url: String, args: Vec<String>| {
            let bin = bin.clone();
            tokio::task::spawn_blocking(move || oha(&bin, &url, &args.iter().map(String::as_str).collect::<Vec<_>>()))
        };
        let (max_a, ..) = run(a_url.clone(), vec!["-c".into(), "16".into()]).await.unwrap();
        let (max_b, ..) = run(b_url.clone(), vec!["-c".into(), "16".into()]).await.unwrap();
        println!("front_load closed loop (16 connections): A {max_a:.0} req/s, B {max_b:.0} req/s, B/A {:.2}x", max_b / max_a);
        let rate = (max_a / 2.0).round().to_string();
        let open = vec!["-c".into(), "64".into(), "-q".into(), rate.clone(), "--latency-correction".into()];
        // Warm-up at the open-loop shape: every front and client grows its connection pool to
        // what 64 downstream connections need before anything is measured.
        for url in [&a_url, &b_url, &c_url] {
            run(url.clone(), open.clone()).await.unwrap();
        }
        let rounds: usize = std::env::var("FRONT_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let (mut b50, mut b99, mut c50, mut c99) = (vec![], vec![], vec![], vec![]);
        for round in 1..=rounds {
            // The order rotates so no mode always runs first.
            let mut r = [(0, a_url.clone()), (1, b_url.clone()), (2, c_url.clone())];
            r.rotate_left(round % 3);
            let mut got = [(Duration::ZERO, Duration::ZERO); 3];
            for (i, url) in r {
                let (_, p50, p99) = run(url, open.clone()).await.unwrap();
                got[i] = (p50, p99);
            }
            let [(a50, a99), (x50, x99), (y50, y99)] = got;
            println!(
                "front_load open loop {rate} req/s round {round}: A p50 {a50:?} p99 {a99:?} | B p50 {x50:?} p99 {x99:?} | A' p50 {y50:?} p99 {y99:?}"
            );
            b50.push(us(x50) - us(a50));
            b99.push(us(x99) - us(a99));
            c50.push(us(y50) - us(a50));
            c99.push(us(y99) - us(a99));
        }
        println!(
            "front_load over {rounds} rounds, median of per-round differences: B−A p50 {:+.0} µs p99 {:+.0} µs | noise floor A'−A p50 {:+.0} µs p99 {:+.0} µs",
            mesh_benches::median(&mut b50), mesh_benches::median(&mut b99), mesh_benches::median(&mut c50), mesh_benches::median(&mut c99)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    });
}
