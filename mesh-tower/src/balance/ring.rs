//! Ketama-style consistent hashing, built the way Envoy's ring hash balancer builds its ring.
//!
//! Every endpoint gets a number of points proportional to its weight, each at
//! `hash(address "_" i)`; the ring has at least `minimum_ring_size` points (more when needed so
//! the lightest endpoint gets one) and at most `maximum_ring_size` (capped at 8M, Envoy's limit).
//! A request goes to the first point at or after its hash, wrapping around; when that endpoint is
//! not acceptable (ejected, or the address to avoid) the walk continues to the next point.

use std::sync::Arc;

use super::hash::Fnv;
use super::set::Filter;
use crate::endpoint::EndpointStats;

/// Envoy's upper bound on the ring size.
const RING_CAP: u64 = 8 * 1024 * 1024;

/// A sorted ring of `(point, member index)`.
#[derive(Debug)]
pub(super) struct Ring {
    points: Box<[(u64, u32)]>,
    members: Box<[Arc<EndpointStats>]>,
}

impl Ring {
    /// The ring of `members` with their relative weights (positive).
    pub(super) fn build(members: Vec<(Arc<EndpointStats>, f64)>, min: u64, max: u64) -> Ring {
        let max = max.clamp(1, RING_CAP);
        let min = min.clamp(1, max);
        let sum: f64 = members.iter().map(|(_, w)| w.max(f64::MIN_POSITIVE)).sum();
        let lightest = members
            .iter()
            .map(|(_, w)| w.max(f64::MIN_POSITIVE) / sum)
            .fold(1.0, f64::min);
        // Enough points that the lightest endpoint gets `min × lightest` (rounded up) of them.
        let scale = ((lightest * min as f64).ceil() / lightest).min(max as f64);
        let mut points = Vec::with_capacity(scale as usize + members.len());
        let (mut current, mut target) = (0.0, 0.0);
        for (m, (s, w)) in members.iter().enumerate() {
            target += scale * w.max(f64::MIN_POSITIVE) / sum;
            let mut key = Fnv::new();
            key.write(s.addr.to_string().as_bytes()).write(b"_");
            let mut i = 0u64;
            while current < target {
                let mut point = key;
                point.write(&i.to_le_bytes());
                points.push((point.finish(), m as u32));
                current += 1.0;
                i += 1;
            }
        }
        points.sort_unstable();
        Ring {
            points: points.into(),
            members: members.into_iter().map(|(s, _)| s).collect(),
        }
    }

    /// The endpoint owning `hash`, or the next acceptable one along the ring.
    pub(super) fn pick(&self, hash: u64, filter: &Filter) -> Option<&Arc<EndpointStats>> {
        let n = self.points.len();
        if n == 0 {
            return None;
        }
        let start = self.points.partition_point(|&(p, _)| p < hash);
        (0..n)
            .map(|i| &self.members[self.points[(start + i) % n].1 as usize])
            .find(|s| filter.accepts(s))
    }

    /// Number of points.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.points.len()
    }
}
