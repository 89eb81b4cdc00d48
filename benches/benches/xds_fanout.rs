//! `xds_fanout`: how fast one route change reaches N in-process xDS clients, and how much client
//! memory an endpoint costs.
//!
//! ```sh
//! cargo bench -p mesh-benches --bench xds_fanout            # N = 10, 100, 1000; 20 changes each
//! cargo bench -p mesh-benches --bench xds_fanout -- --quick # N = 10, 100; 5 changes
//! ```
//!
//! Each change rewrites the YAML file. Two times are reported per change: from the file write to
//! the last client's update (includes the watcher's 50 ms poll and 100 ms debounce), and from the
//! control plane's publish of the new snapshot to the last client's update ("after debounce"). A
//! client publishes its new state and then ACKs, so its update time is its ACK time.

#![allow(missing_docs, unsafe_code)]

use std::time::Duration;

use mesh_test::mesh::TestMesh;
use mesh_xds_client::client::Options;
use mesh_xds_client::{Bootstrap, XdsClient};
use tokio::time::Instant;

/// Counts live heap bytes so the client's state can be measured, not estimated.
#[global_allocator]
static GLOBAL: mesh_benches::CountingAlloc = mesh_benches::CountingAlloc;

const HOST: &str = "web.mesh.local";
const TARGET: &str = "web.mesh.local:8080";

fn service(endpoints: usize, w1: u32) -> String {
    let mut eps = String::new();
    for i in 0..endpoints {
        let v = if i % 2 == 0 { "v1" } else { "v2" };
        // Addresses are data only; nothing connects to them.
        eps.push_str(&format!(
            "  - address: 127.{}.{}.{}\n    ports: {{ http: 8080 }}\n    labels: {{ version: {v} }}\n",
            1 + (i >> 16),
            (i >> 8) & 255,
            i & 255
        ));
    }
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{ name: web, namespace: default }}
spec:
  hosts: [{HOST}]
  ports: [{{ number: 8080, name: http, protocol: HTTP }}]
  resolution: STATIC
  endpoints:
{eps}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{ name: web, namespace: default }}
spec:
  host: {HOST}
  subsets:
  - {{ name: v1, labels: {{ version: v1 }} }}
  - {{ name: v2, labels: {{ version: v2 }} }}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{ name: web, namespace: default }}
spec:
  hosts: [{HOST}]
  http:
  - route:
    - {{ destination: {{ host: {HOST}, subset: v1 }}, weight: {w1} }}
    - {{ destination: {{ host: {HOST}, subset: v2 }}, weight: {} }}
"#,
        100 - w1
    )
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn fanout(n: usize, changes: usize) {
    let mesh = TestMesh::start(&[("web.yaml", &service(4, 50))]).await;
    let addr = mesh.cp().xds_addr().to_string();
    let clients: Vec<_> = (0..n)
        .map(|i| {
            XdsClient::start(
                Bootstrap::insecure(&addr, &format!("c{i}")),
                Options::default(),
            )
        })
        .collect();
    let _targets: Vec<_> = clients.iter().map(|c| c.subscribe(TARGET)).collect();
    for c in &clients {
        c.ready(TARGET, Duration::from_secs(60))
            .await
            .expect("ready");
    }
    let mut total = Vec::new();
    let mut after_debounce = Vec::new();
    for i in 0..changes {
        // One task per client records the moment its state changed (it ACKs right after).
        let updates: Vec<_> = clients
            .iter()
            .map(|c| {
                let mut w = c.state().watch();
                tokio::spawn(async move {
                    tokio::time::timeout(Duration::from_secs(30), w.changed())
                        .await
                        .expect("client update");
                    Instant::now()
                })
            })
            .collect();
        let mut cp_watch = mesh.cp().snapshot().watch();
        let written = Instant::now();
        mesh.write("web.yaml", &service(4, if i % 2 == 0 { 10 } else { 90 }));
        let published = cp_watch.changed().await.created;
        let mut last = published;
        for u in updates {
            last = last.max(u.await.expect("watcher task"));
        }
        total.push(last - written);
        after_debounce.push(last - published);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    total.sort();
    after_debounce.sort();
    println!(
        "xds_fanout n={n:<5} changes={changes}: file→last ACK p50 {:>7.1?} p99 {:>7.1?} max {:>7.1?} | publish→last ACK p50 {:>7.1?} p99 {:>7.1?} max {:>7.1?}",
        pct(&total, 0.5),
        pct(&total, 0.99),
        total[total.len() - 1],
        pct(&after_debounce, 0.5),
        pct(&after_debounce, 0.99),
        after_debounce[after_debounce.len() - 1],
    );
}

async fn memory_per_endpoint(endpoints: usize) {
    let mesh = TestMesh::start(&[("web.yaml", &service(endpoints, 50))]).await;
    let config = mesh.cp().config_status();
    assert_eq!(config.errors(), 0, "{:#?}", config.diagnostics);
    let addr = mesh.cp().xds_addr().to_string();
    let client = XdsClient::start(Bootstrap::insecure(&addr, "mem"), Options::default());
    // Warm up: connect with a target that has no endpoints, so the connection's own buffers are
    // counted in the baseline.
    let warm = client.subscribe("warm.mesh.local:1");
    let _ = client
        .ready("warm.mesh.local:1", Duration::from_secs(2))
        .await;
    drop(warm);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = mesh_benches::live_bytes();
    let t = client.subscribe(TARGET);
    client
        .ready(TARGET, Duration::from_secs(60))
        .await
        .expect("ready");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = mesh_benches::live_bytes();
    let held: usize = client
        .state()
        .load()
        .assignments
        .values()
        .map(|a| a.endpoints().count())
        .sum();
    // What the client keeps per endpoint is the decoded model (shared by its cache and the
    // published snapshot). Measure exactly that: the heap a decode of the same resources allocates.
    let snap = mesh.cp().snapshot().load_full();
    let names: Vec<String> = client.state().load().assignments.keys().cloned().collect();
    let anys: Vec<_> = names
        .iter()
        .map(|n| {
            snap.get(mesh_xds_client::codec::ENDPOINT_TYPE, n)
                .expect("served")
                .any
                .clone()
        })
        .collect();
    let base = mesh_benches::live_bytes();
    let decoded: Vec<_> = anys
        .iter()
        .map(|a| mesh_xds_client::codec::decode_assignment(a).expect("valid"))
        .collect();
    let model = mesh_benches::live_bytes() - base;
    println!(
        "xds_fanout memory: {held} endpoints: client state {:.0} B/endpoint (the decoded model it holds); \
         whole-process growth while a live client took them (incl. transport buffers and the \
         in-process control plane) {:.0} B/endpoint",
        model as f64 / held as f64,
        (after - before) as f64 / held as f64
    );
    drop((decoded, t));
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let sizes: &[usize] = if quick { &[10, 100] } else { &[10, 100, 1000] };
        for &n in sizes {
            fanout(n, if quick { 5 } else { 20 }).await;
        }
        memory_per_endpoint(10_000).await;
    });
}
