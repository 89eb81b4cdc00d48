//! Per-request costs on the hot path: reading the live state, choosing a route, picking a split,
//! picking an endpoint.
//!
//! `cargo bench -p mesh-benches --bench hot_path`

#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mesh_core::endpoint::{ClusterLoadAssignment, Endpoint, LocalityEndpoints};
use mesh_core::route::*;
use mesh_core::{Snapshot, StringMatch};
use mesh_tower::balance::{Balancer, BalancerKind};

fn table(routes_per_host: usize, hosts: usize) -> RouteTable {
    let vhs = (0..hosts)
        .map(|h| VirtualHost {
            name: format!("svc{h}"),
            domains: vec![
                format!("svc{h}.default.svc.cluster.local"),
                format!("svc{h}.default.svc.cluster.local:8080"),
            ],
            routes: (0..routes_per_host)
                .map(|r| Route {
                    name: format!("r{r}"),
                    matcher: RouteMatch {
                        path: PathMatch::Prefix(format!("/api/v{r}/")),
                        headers: vec![HeaderMatch {
                            name: "x-user".into(),
                            value: Some(StringMatch::Prefix("beta".into())),
                            invert: false,
                        }],
                        ..Default::default()
                    },
                    action: RouteAction::Forward(ForwardAction::to_cluster(format!(
                        "outbound|8080|v{r}|svc{h}"
                    ))),
                    request_headers: HeaderMutation::default(),
                    response_headers: HeaderMutation::default(),
                    fault: None,
                    rate_limit: None,
                })
                .chain(std::iter::once(Route {
                    name: "default".into(),
                    matcher: RouteMatch::default(),
                    action: RouteAction::Forward(ForwardAction {
                        clusters: vec![
                            WeightedCluster {
                                name: "v1".into(),
                                weight: 90,
                            },
                            WeightedCluster {
                                name: "v2".into(),
                                weight: 10,
                            },
                        ],
                        ..ForwardAction::to_cluster("unused")
                    }),
                    request_headers: HeaderMutation::default(),
                    response_headers: HeaderMutation::default(),
                    fault: None,
                    rate_limit: None,
                }))
                .collect(),
        })
        .collect();
    RouteTable {
        name: "bench".into(),
        virtual_hosts: vhs,
    }
}

fn bench(c: &mut Criterion) {
    let live = Snapshot::new(table(10, 20));
    let req = http::Request::get("http://svc7.default.svc.cluster.local:8080/api/v9/items")
        .header("x-user", "beta-tester")
        .body(())
        .unwrap();
    let miss = http::Request::get("http://svc7.default.svc.cluster.local:8080/other")
        .body(())
        .unwrap();

    let hundred = Snapshot::new(table(100, 1));
    let last = http::Request::get("http://svc0.default.svc.cluster.local:8080/api/v99/items")
        .header("x-user", "beta-tester")
        .body(())
        .unwrap();
    c.bench_function("route_select_100th_of_100_routes", |b| {
        b.iter(|| {
            let t = hundred.load();
            black_box(mesh_tower::route::select(&t, black_box(&last)).map(|r| r.name.len()))
        })
    });
    c.bench_function("snapshot_load", |b| {
        b.iter(|| black_box(live.load().virtual_hosts.len()))
    });
    c.bench_function("route_select_10th_route_of_20_hosts", |b| {
        b.iter(|| {
            let t = live.load();
            black_box(mesh_tower::route::select(&t, black_box(&req)).map(|r| r.name.len()))
        })
    });
    c.bench_function("route_select_default_then_split", |b| {
        let mut roll = 0u32;
        b.iter(|| {
            roll = roll.wrapping_add(0x9E37_79B9);
            let t = live.load();
            let r = mesh_tower::route::select(&t, black_box(&miss)).unwrap();
            match &r.action {
                RouteAction::Forward(f) => {
                    black_box(mesh_tower::route::pick_weighted(&f.clusters, roll).map(|c| c.weight))
                }
                _ => None,
            }
        })
    });
}

/// 1,000 healthy endpoints in one locality, weights 1 to 4.
fn endpoints(n: u32) -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name: "bench".into(),
        localities: vec![LocalityEndpoints {
            endpoints: (0..n)
                .map(|i| Endpoint {
                    weight: 1 + i % 4,
                    ..Endpoint::new(std::net::SocketAddr::from((
                        [10, 0, (i >> 8) as u8, i as u8],
                        8080,
                    )))
                })
                .collect(),
            ..Default::default()
        }],
    }
}

fn bench_pick(c: &mut Criterion) {
    let cla = endpoints(1000);
    let kinds = [
        ("round_robin", BalancerKind::RoundRobin),
        ("random", BalancerKind::Random),
        (
            "least_request",
            BalancerKind::LeastRequest { choice_count: 2 },
        ),
        ("peak_ewma", BalancerKind::peak_ewma()),
        (
            "ring_hash",
            BalancerKind::RingHash {
                minimum_ring_size: 1024,
                maximum_ring_size: 8 * 1024 * 1024,
            },
        ),
    ];
    let mut g = c.benchmark_group("endpoint_pick_1000");
    for (name, kind) in kinds {
        let b = Balancer::with_kind(kind, &cla, None);
        // Give every endpoint a latency sample, as in steady state.
        for i in 0..2000u64 {
            if let Some(p) = b.pick(Some(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)), None) {
                p.observe(std::time::Duration::from_micros(500 + i % 1000));
            }
        }
        let mut h = 0u64;
        g.bench_function(name, |bench| {
            bench.iter(|| {
                h = h.wrapping_add(0x9E37_79B9_7F4A_7C15);
                black_box(b.pick(black_box(Some(h)), None).map(|p| p.addr()))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench, bench_pick);
criterion_main!(benches);
