//! The endpoint sets a pick chooses from: tiers (a priority's healthy or degraded endpoints), each
//! split into groups (localities, when they carry weights).

use std::cell::Cell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mesh_core::endpoint::{HealthStatus, LocalityEndpoints};
use tokio::time::Instant;

use super::index::WeightedIndex;
use super::ring::Ring;
use crate::endpoint::EndpointStats;

/// Which endpoints a pick may return. Reads the clock at most once, and only when needed.
#[derive(Debug)]
pub(super) struct Filter {
    avoid: Option<SocketAddr>,
    /// Skip endpoints outlier detection has ejected.
    ejection: bool,
    now: Cell<Option<Instant>>,
}

impl Filter {
    pub(super) fn new(avoid: Option<SocketAddr>, ejection: bool) -> Self {
        Self {
            avoid,
            ejection,
            now: Cell::new(None),
        }
    }

    /// The same filter without the avoided address.
    pub(super) fn allowing_avoided(&self) -> Self {
        Self {
            avoid: None,
            ejection: self.ejection,
            now: Cell::new(self.now.get()),
        }
    }

    /// The time of this pick.
    pub(super) fn now(&self) -> Instant {
        match self.now.get() {
            Some(t) => t,
            None => {
                let t = Instant::now();
                self.now.set(Some(t));
                t
            }
        }
    }

    #[inline]
    pub(super) fn accepts(&self, s: &EndpointStats) -> bool {
        if self.avoid == Some(s.addr) {
            return false;
        }
        !self.ejection || s.ejected_until.load(Ordering::Relaxed) == 0 || !s.is_ejected(self.now())
    }
}

/// An endpoint and its weight.
type Weighted = (Arc<EndpointStats>, u32);

/// Endpoints chosen among by one algorithm, with their weights.
#[derive(Debug)]
pub(super) struct Group {
    pub(super) members: Box<[Arc<EndpointStats>]>,
    pub(super) weights: Box<[u32]>,
    pub(super) index: WeightedIndex,
    /// Round-robin position.
    pub(super) counter: AtomicU64,
}

impl Group {
    fn new(members: Vec<Weighted>) -> Self {
        let index = WeightedIndex::new(members.iter().map(|(_, w)| u64::from(*w)));
        let (members, weights): (Vec<_>, Vec<_>) = members.into_iter().unzip();
        Self {
            members: members.into(),
            weights: weights.into(),
            index,
            counter: AtomicU64::new(0),
        }
    }

    /// The first acceptable member at or after `start`, wrapping around.
    pub(super) fn scan(&self, start: usize, filter: &Filter) -> Option<&Arc<EndpointStats>> {
        let n = self.members.len();
        (0..n)
            .map(|i| &self.members[(start + i) % n])
            .find(|s| filter.accepts(s))
    }

    /// Calls `f` with `count` (at least 1) random member indices; the first two are distinct when
    /// the group has two members or more.
    #[inline]
    pub(super) fn sample(&self, count: u32, mut f: impl FnMut(usize)) {
        let n = self.members.len();
        let first = fastrand::usize(..n);
        f(first);
        if n < 2 || count < 2 {
            return;
        }
        f((first + 1 + fastrand::usize(..n - 1)) % n);
        for _ in 2..count {
            f(fastrand::usize(..n));
        }
    }
}

/// One priority's healthy (or degraded) endpoints.
#[derive(Debug)]
pub(super) struct Tier {
    groups: Box<[Group]>,
    /// Locality weights.
    locality: WeightedIndex,
    /// Round-robin position over localities.
    counter: AtomicU64,
    /// The hash ring, for ring-hash balancers.
    pub(super) ring: Option<Ring>,
}

impl Tier {
    /// The tier of the endpoints of `localities` whose health `wanted` accepts; `None` when there
    /// are none. `ring` is `(minimum, maximum)` ring size when a ring is wanted.
    pub(super) fn build<'a>(
        localities: impl Iterator<Item = &'a LocalityEndpoints>,
        wanted: impl Fn(HealthStatus) -> bool,
        stats_of: &HashMap<SocketAddr, Arc<EndpointStats>>,
        ring: Option<(u64, u64)>,
    ) -> Option<Tier> {
        let mut parts: Vec<(Option<u32>, Vec<Weighted>)> = Vec::new();
        for l in localities {
            let members: Vec<_> = l
                .endpoints
                .iter()
                .filter(|e| wanted(e.health))
                .map(|e| (Arc::clone(&stats_of[&e.address]), e.weight))
                .collect();
            if !members.is_empty() {
                parts.push((l.weight, members));
            }
        }
        if parts.is_empty() {
            return None;
        }
        let weighted = parts.iter().any(|(w, _)| w.is_some());
        let ring = ring.map(|(min, max)| {
            // Each endpoint's share: its locality's share times its share within the locality.
            let points = parts.iter().flat_map(|(lw, members)| {
                let lw = if weighted { lw.unwrap_or(1) } else { 1 };
                let sum: f64 = members.iter().map(|(_, w)| f64::from(*w)).sum();
                members.iter().map(move |(s, w)| {
                    let share = if weighted {
                        f64::from(lw) * f64::from(*w) / sum
                    } else {
                        f64::from(*w)
                    };
                    (Arc::clone(s), share)
                })
            });
            Ring::build(points.collect(), min, max)
        });
        let (weights, groups): (Vec<u64>, Vec<Group>) = if weighted {
            parts
                .into_iter()
                .map(|(w, m)| (u64::from(w.unwrap_or(1)), Group::new(m)))
                .unzip()
        } else {
            let all = parts.into_iter().flat_map(|(_, m)| m).collect();
            (vec![1], vec![Group::new(all)])
        };
        Some(Tier {
            groups: groups.into(),
            locality: WeightedIndex::new(weights),
            counter: AtomicU64::new(0),
            ring,
        })
    }

    /// The groups in the order a pick tries them: one chosen by locality weight (by round robin
    /// when `rr`, else at random), then the others.
    #[inline]
    pub(super) fn groups_from(&self, rr: bool) -> impl Iterator<Item = &Group> {
        let n = self.groups.len();
        let start = if n == 1 {
            0
        } else if rr {
            self.locality
                .nth(self.counter.fetch_add(1, Ordering::Relaxed))
        } else {
            self.locality.random()
        };
        debug_assert_eq!(self.locality.len(), n);
        (0..n).map(move |i| {
            let j = match i {
                0 => start,
                i if i > start => i,
                i => i - 1,
            };
            &self.groups[j]
        })
    }
}
