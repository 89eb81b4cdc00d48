//! `telemetry_load`: what metrics and tracing cost on the client and server stacks, measured
//! against the same stacks without them in the same run.
//!
//! ```sh
//! cargo bench -p mesh-benches --bench telemetry_load            # 5 interleaved rounds × 3 s per mode
//! cargo bench -p mesh-benches --bench telemetry_load -- --quick # 2 rounds × 1 s
//! ```
//!
//! Four servers (`mesh_tower::server::serve`) share one single-threaded runtime: one bare, and
//! one behind `TelemetryLayer` for each telemetry setting — **M** metrics (a Prometheus recorder
//! is installed, Istio's series and histograms recorded), **T1** metrics and spans with 1% of
//! traces sampled, **T100** every trace sampled. Spans go over OTLP/gRPC in batches to a real
//! receiver on a third thread. The load runs on another single-threaded runtime: 16
//! closed-loop workers through `mesh_tower::Client`.
//!
//! Modes, interleaved each round: `off` (bare client → bare server, the baseline), `client X`
//! (client with setting X → bare server) and `server X` (bare client → server with X).
//! Reported: requests per second (median round) and each mode's ratio to `off`. After every
//! round the exporters are flushed, so no mode pays for the previous one's spans.

#![allow(missing_docs)]

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use mesh_core::Snapshot;
use mesh_tower::server::{Acceptor, PeerAuthMode};
use mesh_tower::telemetry::{self, Telemetry, TelemetryLayer, Workload};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tower::Layer;

const WORKERS: usize = 16;
/// The settings measured, besides "off".
const SETTINGS: [&str; 3] = ["M", "T1", "T100"];

fn host(i: usize) -> String {
    format!("server{i}.mesh.local")
}

/// The telemetry of a setting, with spans to `otlp` (a tokio runtime must be current).
fn setting(name: &str, otlp: &str, workload: &str) -> (Telemetry, Option<SdkTracerProvider>) {
    let b = Telemetry::builder().workload(Workload::new(workload, "bench"));
    let sample = match name {
        "T1" => 0.01,
        "T100" => 1.0,
        _ => return (b.build(), None),
    };
    let provider = telemetry::otlp(otlp, workload, sample).expect("an OTLP exporter");
    (b.tracer(&provider).build(), Some(provider))
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, secs) = if quick { (2, 1.0) } else { (5, 3.0) };
    let prometheus = telemetry::prometheus().expect("a Prometheus recorder");

    // The OTLP receiver, on its own thread.
    let (otlp_tx, otlp_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let receiver = mesh_test::otlp::OtlpReceiver::start().await;
            otlp_tx.send(receiver.clone()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    let receiver = otlp_rx.recv().unwrap();
    let endpoint = receiver.endpoint();

    // Servers: index 0 bare, 1.. one per setting.
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let server_endpoint = endpoint.clone();
    std::thread::Builder::new()
        .name("server".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut addrs = Vec::new();
                let mut providers = Vec::new();
                for i in 0..=SETTINGS.len() {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                    addrs.push(listener.local_addr().unwrap());
                    let app =
                        tower::service_fn(|_req: http::Request<hyper::body::Incoming>| async {
                            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
                                b"ok",
                            ))))
                        });
                    let acceptor =
                        Acceptor::new(Snapshot::new(None)).mode(PeerAuthMode::Permissive);
                    if i == 0 {
                        tokio::spawn(mesh_tower::server::serve(listener, acceptor, app));
                    } else {
                        let (t, p) = setting(SETTINGS[i - 1], &server_endpoint, "server");
                        providers.extend(p);
                        let app = TelemetryLayer::new(t).layer(app);
                        tokio::spawn(mesh_tower::server::serve(listener, acceptor, app));
                    }
                }
                addr_tx.send((addrs, providers)).unwrap();
                std::future::pending::<()>().await;
            });
        })
        .unwrap();
    let (addrs, server_providers): (Vec<SocketAddr>, Vec<SdkTracerProvider>) =
        addr_rx.recv().unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut mesh = mesh_core::MeshResources::default();
        for (i, addr) in addrs.iter().enumerate() {
            let r = mesh_benches::split_mesh(&host(i), *addr);
            mesh.listeners.extend(r.listeners);
            mesh.route_tables.extend(r.route_tables);
            mesh.clusters.extend(r.clusters);
            mesh.assignments.extend(r.assignments);
        }
        let state = Snapshot::new(mesh);
        let bare = mesh_tower::Client::builder(state.clone()).build();
        // (label, client, server index)
        let mut modes: Vec<(String, mesh_tower::Client, usize)> = vec![("off".into(), bare.clone(), 0)];
        let mut providers = server_providers;
        for (i, name) in SETTINGS.iter().enumerate() {
            let (t, p) = setting(name, &endpoint, "client");
            providers.extend(p);
            let client = mesh_tower::Client::builder(state.clone()).telemetry(t).build();
            modes.push((format!("client {name}"), client, 0));
            modes.push((format!("server {name}"), bare.clone(), i + 1));
        }
        for (_, client, server) in &modes {
            mesh_benches::closed_loop(client, &format!("http://{}/", host(*server)), WORKERS, 0.3).await;
        }
        let mut results: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
        for _ in 0..rounds {
            for (i, (_, client, server)) in modes.iter().enumerate() {
                results[i].push(
                    mesh_benches::closed_loop(client, &format!("http://{}/", host(*server)), WORKERS, secs)
                        .await,
                );
                // Let the exporters drain, so one mode's spans are not sent during the next.
                for p in &providers {
                    let p = p.clone();
                    let _ = std::thread::spawn(move || p.force_flush()).join();
                }
            }
        }
        let base = mesh_benches::median(&mut results[0].clone());
        println!("telemetry_load closed loop ({WORKERS} workers, {rounds} rounds x {secs} s per mode)");
        for ((label, _, _), r) in modes.iter().zip(results) {
            let m = mesh_benches::median(&mut r.clone());
            println!("  {label:<12} {m:>8.0} req/s  {:.2}x of off", m / base);
        }
        let spans = receiver.spans().len();
        let series = prometheus.render().lines().filter(|l| l.starts_with("istio_requests_total{")).count();
        println!("  (spans received by the OTLP receiver: {spans}; istio_requests_total series: {series})");
        for p in providers {
            let _ = p.shutdown();
        }
    });
}
