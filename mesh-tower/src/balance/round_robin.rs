//! Weighted round robin: one atomic counter per group, mapped to an endpoint by a precomputed
//! weighted sequence (exact over a cycle of `total weight` picks, interleaved).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::set::{Filter, Group};
use crate::endpoint::EndpointStats;

/// Counter positions tried before scanning for an acceptable endpoint.
const TRIES: usize = 8;

pub(super) fn pick<'g>(g: &'g Group, filter: &Filter) -> Option<&'g Arc<EndpointStats>> {
    let mut k = 0;
    for _ in 0..g.members.len().min(TRIES) {
        k = g.counter.fetch_add(1, Ordering::Relaxed);
        let s = &g.members[g.index.nth(k)];
        if filter.accepts(s) {
            return Some(s);
        }
    }
    g.scan(g.index.nth(k), filter)
}
