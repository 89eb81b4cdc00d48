//! Per-request costs on the hot path: reading the live state, choosing a route, picking a split.
//!
//! `cargo bench -p mesh-benches --bench hot_path`

#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mesh_core::route::*;
use mesh_core::{Snapshot, StringMatch};

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

criterion_group!(benches, bench);
criterion_main!(benches);
