use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mesh_core::cluster::LbPolicy;
use mesh_core::endpoint::{
    ClusterLoadAssignment, Endpoint, HealthStatus, Locality, LocalityEndpoints,
};
use tokio::time::Instant;

use super::*;
use HealthStatus::{Degraded, Draining, Healthy, Unhealthy, Unknown};

fn addr(i: u32) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), 8080)
}

fn ep(i: u32, weight: u32, health: HealthStatus) -> Endpoint {
    Endpoint {
        weight,
        health,
        ..Endpoint::new(addr(i))
    }
}

fn loc(
    zone: &str,
    priority: u32,
    weight: Option<u32>,
    endpoints: Vec<Endpoint>,
) -> LocalityEndpoints {
    LocalityEndpoints {
        locality: Locality::parse(&format!("r/{zone}")),
        priority,
        weight,
        endpoints,
    }
}

fn cla(localities: Vec<LocalityEndpoints>) -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name: "c".into(),
        localities,
    }
}

/// One locality, priority 0, healthy endpoints `1..=weights.len()` with these weights.
fn weighted(weights: &[u32]) -> ClusterLoadAssignment {
    let eps = (1..).zip(weights).map(|(i, &w)| ep(i, w, Healthy));
    cla(vec![loc("a", 0, None, eps.collect())])
}

fn ring_kind() -> BalancerKind {
    BalancerKind::RingHash {
        minimum_ring_size: 1024,
        maximum_ring_size: 8 * 1024 * 1024,
    }
}

fn all_kinds() -> Vec<BalancerKind> {
    vec![
        BalancerKind::RoundRobin,
        BalancerKind::Random,
        BalancerKind::LeastRequest { choice_count: 2 },
        BalancerKind::peak_ewma(),
        ring_kind(),
    ]
}

/// Picks `n` times (dropping each pick at once) and counts picks per address.
fn counts(b: &Balancer, n: usize) -> HashMap<SocketAddr, usize> {
    let mut c = HashMap::new();
    for _ in 0..n {
        *c.entry(b.pick(None, None).unwrap().addr()).or_default() += 1;
    }
    c
}

fn stats(b: &Balancer, a: SocketAddr) -> &Arc<EndpointStats> {
    b.endpoints().iter().find(|s| s.addr == a).unwrap()
}

fn eject(s: &EndpointStats) {
    let until = s.nanos(Instant::now()) + 3_600_000_000_000;
    s.ejected_until.store(until, Ordering::Relaxed);
}

#[test]
fn policies_map_to_kinds() {
    let lr = Balancer::new(&LbPolicy::default(), &weighted(&[1]), None);
    assert_eq!(lr.kind(), &BalancerKind::peak_ewma());
    let rr = Balancer::new(&LbPolicy::RoundRobin, &weighted(&[1]), None);
    assert_eq!(rr.kind(), &BalancerKind::RoundRobin);
    let mg = Balancer::new(&LbPolicy::Maglev, &weighted(&[1]), None);
    assert!(matches!(mg.kind(), BalancerKind::RingHash { .. }));
}

#[test]
fn weighted_round_robin_is_exact_over_each_cycle() {
    let b = Balancer::with_kind(BalancerKind::RoundRobin, &weighted(&[1, 2, 3, 4]), None);
    for _ in 0..5 {
        let c = counts(&b, 10);
        for i in 1..=4 {
            assert_eq!(c[&addr(i)], i as usize, "{c:?}");
        }
    }
    // Interleaved: weight 3 against 1 never gives the heavy endpoint 4 picks in a row.
    let b = Balancer::with_kind(BalancerKind::RoundRobin, &weighted(&[3, 1]), None);
    let seq: Vec<_> = (0..40)
        .map(|_| b.pick(None, None).unwrap().addr())
        .collect();
    assert!(seq.windows(4).all(|w| w.contains(&addr(2))), "{seq:?}");
    // Equal weights: plain rotation.
    let b = Balancer::with_kind(BalancerKind::RoundRobin, &weighted(&[1, 1, 1]), None);
    let seq: Vec<_> = (0..6).map(|_| b.pick(None, None).unwrap().addr()).collect();
    assert_eq!(seq[..3], seq[3..]);
}

#[test]
fn random_follows_weights() {
    fastrand::seed(7);
    let b = Balancer::with_kind(BalancerKind::Random, &weighted(&[1, 3, 6]), None);
    let c = counts(&b, 10_000);
    for (i, share) in [(1, 0.1), (2, 0.3), (3, 0.6)] {
        let got = c[&addr(i)] as f64 / 10_000.0;
        assert!((got - share).abs() < 0.03, "endpoint {i}: {got}");
    }
}

#[test]
fn least_request_prefers_fewer_in_flight() {
    fastrand::seed(1);
    let b = Balancer::with_kind(
        BalancerKind::LeastRequest { choice_count: 2 },
        &weighted(&[1, 1]),
        None,
    );
    // Ten requests held on endpoint 1.
    let held: Vec<_> = (0..10)
        .map(|_| b.pick(None, Some(addr(2))).unwrap())
        .collect();
    assert!(held.iter().all(|p| p.addr() == addr(1)));
    assert_eq!(stats(&b, addr(1)).in_flight.load(Ordering::Relaxed), 10);
    let c = counts(&b, 100);
    assert_eq!(c.get(&addr(2)), Some(&100), "{c:?}");
    drop(held);
    assert_eq!(stats(&b, addr(1)).in_flight.load(Ordering::Relaxed), 0);

    // Held picks spread evenly.
    let b = Balancer::with_kind(
        BalancerKind::LeastRequest { choice_count: 2 },
        &weighted(&[1, 1, 1, 1]),
        None,
    );
    let held: Vec<_> = (0..400).map(|_| b.pick(None, None).unwrap()).collect();
    for s in b.endpoints() {
        let n = s.in_flight.load(Ordering::Relaxed);
        assert!((90..=110).contains(&n), "{n}");
    }
    drop(held);
}

#[test]
fn peak_ewma_favours_fast_endpoints_and_tries_new_ones() {
    fastrand::seed(3);
    let kind = BalancerKind::peak_ewma();
    let b = Balancer::with_kind(kind.clone(), &weighted(&[1, 1]), None);
    for _ in 0..5 {
        let fast = b.pick(None, Some(addr(2))).unwrap();
        let slow = b.pick(None, Some(addr(1))).unwrap();
        fast.observe(Duration::from_millis(1));
        slow.observe(Duration::from_millis(50));
    }
    let c = counts(&b, 1000);
    let slow = c.get(&addr(2)).copied().unwrap_or(0);
    assert!(slow < 150, "{c:?}");

    // Enough requests in flight on the fast one make the slow one cheaper.
    let held: Vec<_> = (0..60)
        .map(|_| b.pick(None, Some(addr(2))).unwrap())
        .collect();
    assert_eq!(b.pick(None, None).unwrap().addr(), addr(2));
    drop(held);

    // A new endpoint (no sample yet) gets some traffic, not all of it.
    let b = Balancer::with_kind(kind, &weighted(&[1, 1, 1]), Some(&b));
    let c = counts(&b, 1000);
    let new = c.get(&addr(3)).copied().unwrap_or(0);
    assert!((100..900).contains(&new), "{c:?}");
}

#[test]
fn ring_hash_is_consistent() {
    fastrand::seed(11);
    let ten = weighted(&[1; 10]);
    let b = Balancer::with_kind(ring_kind(), &ten, None);
    assert!(b.inner.tiers[0].ring.as_ref().unwrap().len() >= 1024);
    let keys: Vec<u64> = (0..10_000).map(|_| fastrand::u64(..)).collect();
    let before: Vec<_> = keys
        .iter()
        .map(|&k| b.pick(Some(k), None).unwrap().addr())
        .collect();
    let again: Vec<_> = keys
        .iter()
        .map(|&k| b.pick(Some(k), None).unwrap().addr())
        .collect();
    assert_eq!(before, again);
    let per = counts_of(&before);
    assert!(per.values().all(|&n| (500..1500).contains(&n)), "{per:?}");

    // Endpoint 10 goes away: its keys move, about 1/10 of all; few others do.
    let nine = weighted(&[1; 9]);
    let b = Balancer::with_kind(ring_kind(), &nine, Some(&b));
    let after: Vec<_> = keys
        .iter()
        .map(|&k| b.pick(Some(k), None).unwrap().addr())
        .collect();
    let moved = before.iter().zip(&after).filter(|(x, y)| x != y).count();
    assert!((800..2000).contains(&moved), "{moved}");

    // Weights: 1 against 3.
    let b = Balancer::with_kind(ring_kind(), &weighted(&[1, 3]), None);
    let picked: Vec<_> = keys
        .iter()
        .map(|&k| b.pick(Some(k), None).unwrap().addr())
        .collect();
    let heavy = counts_of(&picked)[&addr(2)] as f64 / keys.len() as f64;
    assert!((heavy - 0.75).abs() < 0.06, "{heavy}");

    // No hash: a random point.
    assert!(b.pick(None, None).is_some());
}

fn counts_of(picks: &[SocketAddr]) -> HashMap<SocketAddr, usize> {
    let mut c = HashMap::new();
    for a in picks {
        *c.entry(*a).or_default() += 1;
    }
    c
}

#[test]
fn unusable_endpoints_are_never_picked() {
    let set = cla(vec![loc(
        "a",
        0,
        None,
        vec![
            ep(1, 1, Healthy),
            ep(2, 1, Unhealthy),
            ep(3, 1, Draining),
            ep(4, 1, Unknown),
            ep(5, 1, Degraded),
        ],
    )]);
    for kind in all_kinds() {
        let b = Balancer::with_kind(kind.clone(), &set, None);
        assert_eq!(b.endpoints().len(), 5);
        let c = counts(&b, 500);
        assert_eq!(
            c.keys().copied().collect::<std::collections::BTreeSet<_>>(),
            [addr(1), addr(4)].into(),
            "{kind:?}"
        );
    }
    // Degraded only when nothing healthy remains, in any priority.
    let degraded = cla(vec![
        loc("a", 0, None, vec![ep(1, 1, Degraded)]),
        loc("b", 1, None, vec![ep(2, 1, Draining)]),
    ]);
    let b = Balancer::with_kind(BalancerKind::Random, &degraded, None);
    assert_eq!(b.pick(None, None).unwrap().addr(), addr(1));
    let nothing = cla(vec![loc("a", 0, None, vec![ep(1, 1, Unhealthy)])]);
    for kind in all_kinds() {
        assert!(
            Balancer::with_kind(kind, &nothing, None)
                .pick(None, None)
                .is_none()
        );
        assert!(
            Balancer::with_kind(BalancerKind::Random, &cla(vec![]), None)
                .pick(None, None)
                .is_none()
        );
    }
}

#[test]
fn ejected_endpoints_are_skipped_unless_all_are() {
    for kind in all_kinds() {
        let b = Balancer::with_kind(kind.clone(), &weighted(&[1, 1, 1]), None);
        eject(stats(&b, addr(1)));
        eject(stats(&b, addr(2)));
        let c = counts(&b, 200);
        assert_eq!(c.get(&addr(3)), Some(&200), "{kind:?}: {c:?}");
        eject(stats(&b, addr(3)));
        assert_eq!(counts(&b, 200).len(), 3, "{kind:?}: all ejected, all used");
    }
}

#[test]
fn lower_priority_takes_over_only_when_needed() {
    let set = cla(vec![
        loc("a", 0, None, vec![ep(1, 1, Healthy), ep(2, 1, Unhealthy)]),
        loc("b", 1, None, vec![ep(3, 1, Healthy)]),
    ]);
    for kind in all_kinds() {
        let b = Balancer::with_kind(kind.clone(), &set, None);
        assert_eq!(counts(&b, 100).get(&addr(1)), Some(&100), "{kind:?}");
        // Priority 0 ejected: priority 1 serves.
        eject(stats(&b, addr(1)));
        assert_eq!(counts(&b, 100).get(&addr(3)), Some(&100), "{kind:?}");
        // Everything ejected: ejection is ignored, priority 0 serves.
        eject(stats(&b, addr(3)));
        assert_eq!(counts(&b, 100).get(&addr(1)), Some(&100), "{kind:?}");
    }
    let failed_over = cla(vec![
        loc("a", 0, None, vec![ep(1, 1, Unhealthy)]),
        loc("b", 1, None, vec![ep(3, 1, Healthy)]),
    ]);
    let b = Balancer::with_kind(BalancerKind::RoundRobin, &failed_over, None);
    assert_eq!(counts(&b, 10).get(&addr(3)), Some(&10));
}

#[test]
fn avoid_is_respected_when_another_endpoint_exists() {
    for kind in all_kinds() {
        let b = Balancer::with_kind(kind.clone(), &weighted(&[1, 1, 1]), None);
        for h in 0..100u64 {
            let p = b.pick(Some(h.wrapping_mul(0x9E37_79B9_7F4A_7C15)), Some(addr(2)));
            assert_ne!(p.unwrap().addr(), addr(2), "{kind:?}");
        }
        let single = Balancer::with_kind(kind.clone(), &weighted(&[1]), None);
        assert_eq!(single.pick(None, Some(addr(1))).unwrap().addr(), addr(1));
        // The avoided endpoint is still preferred to an ejected one.
        eject(stats(&b, addr(1)));
        eject(stats(&b, addr(3)));
        assert_eq!(
            b.pick(None, Some(addr(2))).unwrap().addr(),
            addr(2),
            "{kind:?}"
        );
    }
}

#[test]
fn locality_weights_choose_the_locality_first() {
    fastrand::seed(5);
    let set = cla(vec![
        loc("a", 0, Some(1), vec![ep(1, 1, Healthy)]),
        loc(
            "b",
            0,
            Some(3),
            (2..=7).map(|i| ep(i, 1, Healthy)).collect(),
        ),
    ]);
    let rr = Balancer::with_kind(BalancerKind::RoundRobin, &set, None);
    assert_eq!(counts(&rr, 400).get(&addr(1)), Some(&100));
    for kind in [BalancerKind::Random, BalancerKind::peak_ewma(), ring_kind()] {
        let b = Balancer::with_kind(kind.clone(), &set, None);
        let share = counts(&b, 4000).get(&addr(1)).copied().unwrap_or(0) as f64 / 4000.0;
        assert!((share - 0.25).abs() < 0.05, "{kind:?}: {share}");
    }
    // Without locality weights, every endpoint counts the same: 1 in 7.
    let mut flat = set.clone();
    flat.localities.iter_mut().for_each(|l| l.weight = None);
    let b = Balancer::with_kind(BalancerKind::RoundRobin, &flat, None);
    assert_eq!(counts(&b, 70).get(&addr(1)), Some(&10));
}

#[test]
fn stats_survive_updates_for_kept_addresses() {
    let b = Balancer::with_kind(BalancerKind::RoundRobin, &weighted(&[1, 1]), None);
    let held = b.pick(None, Some(addr(2))).unwrap();
    stats(&b, addr(1)).ewma_nanos.store(5, Ordering::Relaxed);
    let update = cla(vec![loc(
        "a",
        0,
        None,
        vec![ep(1, 1, Healthy), ep(3, 1, Healthy)],
    )]);
    let next = Balancer::new(&LbPolicy::default(), &update, Some(&b));
    assert!(Arc::ptr_eq(stats(&b, addr(1)), stats(&next, addr(1))));
    assert_eq!(stats(&next, addr(1)).in_flight.load(Ordering::Relaxed), 1);
    assert_eq!(stats(&next, addr(1)).ewma_nanos.load(Ordering::Relaxed), 5);
    assert_eq!(stats(&next, addr(3)).in_flight.load(Ordering::Relaxed), 0);
    assert_eq!(stats(&next, addr(3)).epoch(), stats(&b, addr(1)).epoch());
    assert!(next.endpoints().iter().all(|s| s.addr != addr(2)));
    drop(held);
    assert_eq!(stats(&next, addr(1)).in_flight.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn the_balance_layer_sends_to_picked_endpoints() {
    use mesh_core::cluster::LbPolicy;
    use mesh_core::endpoint::{ClusterLoadAssignment, Endpoint, LocalityEndpoints};
    use tower::{Layer, ServiceExt};

    let cla = ClusterLoadAssignment {
        cluster_name: "c".into(),
        localities: vec![LocalityEndpoints {
            endpoints: vec![
                Endpoint::new("10.0.0.1:80".parse().unwrap()),
                Endpoint::new("10.0.0.2:80".parse().unwrap()),
            ],
            ..Default::default()
        }],
    };
    let balancer = Balancer::new(&LbPolicy::RoundRobin, &cla, None);
    let inner = tower::service_fn(|req: http::Request<()>| async move {
        Ok::<_, std::convert::Infallible>(http::Response::new(req.uri().to_string()))
    });
    let svc = BalanceLayer::new(balancer).layer(inner);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let r = svc
            .clone()
            .oneshot(http::Request::get("http://svc/path?q=1").body(()).unwrap())
            .await
            .unwrap();
        seen.insert(r.into_body());
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["http://10.0.0.1:80/path?q=1", "http://10.0.0.2:80/path?q=1"]
    );

    let empty = Balancer::new(
        &LbPolicy::RoundRobin,
        &ClusterLoadAssignment::default(),
        None,
    );
    let inner = tower::service_fn(|_req: http::Request<()>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    });
    let err = BalanceLayer::new(empty)
        .layer(inner)
        .oneshot(http::Request::get("http://svc/").body(()).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, BalanceError::NoEndpoint));
}
