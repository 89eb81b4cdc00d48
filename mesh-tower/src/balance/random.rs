//! Weighted random.

use std::sync::Arc;

use super::set::{Filter, Group};
use crate::endpoint::EndpointStats;

/// Draws tried before scanning for an acceptable endpoint.
const TRIES: usize = 3;

pub(super) fn pick<'g>(g: &'g Group, filter: &Filter) -> Option<&'g Arc<EndpointStats>> {
    for _ in 0..TRIES {
        let s = &g.members[g.index.random()];
        if filter.accepts(s) {
            return Some(s);
        }
    }
    g.scan(fastrand::usize(..g.members.len()), filter)
}
