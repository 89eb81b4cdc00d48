//! Envoy's least request: compare `choice_count` random endpoints, take the one with the fewest
//! requests in flight per unit of weight (`weight / (in_flight + 1)`, Envoy's formula with an
//! active-request bias of 1).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::set::{Filter, Group};
use crate::endpoint::EndpointStats;

/// Samples drawn before scanning for an acceptable endpoint.
const TRIES: usize = 3;

pub(super) fn pick<'g>(
    g: &'g Group,
    choice_count: u32,
    filter: &Filter,
) -> Option<&'g Arc<EndpointStats>> {
    for _ in 0..TRIES {
        // (index, in_flight + 1, weight) of the best candidate so far.
        let mut best: Option<(usize, u64, u64)> = None;
        g.sample(choice_count.max(1), |i| {
            let s = &g.members[i];
            if !filter.accepts(s) {
                return;
            }
            let load = u64::from(s.in_flight.load(Ordering::Relaxed)) + 1;
            let weight = u64::from(g.weights[i].max(1));
            // load / weight < best_load / best_weight, without division.
            if best.is_none_or(|(_, bl, bw)| load * bw < bl * weight) {
                best = Some((i, load, weight));
            }
        });
        if let Some((i, _, _)) = best {
            return Some(&g.members[i]);
        }
    }
    g.scan(fastrand::usize(..g.members.len()), filter)
}
