//! Route selection with Envoy's semantics: virtual host by authority, then the first route whose
//! match holds, then a weighted cluster.
//!
//! This is the decision every outbound request makes, so it reads the table by reference and
//! allocates nothing except when a header repeats (its values are joined with `,` as Envoy does).

pub(crate) mod matching;

use http::Request;
use mesh_core::route::{Route, RouteTable, VirtualHost, WeightedCluster};

mod layer;

pub use layer::{RouteLayer, RouteService, Routed};
pub use matching::route_matches;

/// Picks the virtual host for `authority` the way Envoy does: an exact domain, then the longest
/// `*.suffix`, then the longest `prefix*`, then `*`. The authority is tried with its port first,
/// then without.
pub fn select_virtual_host<'a>(table: &'a RouteTable, authority: &str) -> Option<&'a VirtualHost> {
    find_host(table, authority).or_else(|| {
        let (host, port) = authority.rsplit_once(':')?;
        // Only a numeric port is stripped; IPv6 literals are bracketed, so `]:` precedes it.
        let numeric = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
        if numeric {
            find_host(table, host)
        } else {
            None
        }
    })
}

fn find_host<'a>(table: &'a RouteTable, authority: &str) -> Option<&'a VirtualHost> {
    // (rank, length): exact beats suffix beats prefix beats `*`; longer wildcards win within a kind.
    let mut best: Option<((u8, usize), &VirtualHost)> = None;
    for vh in &table.virtual_hosts {
        for d in &vh.domains {
            let score = if d == "*" {
                Some((0, 0))
            } else if let Some(suffix) = d.strip_prefix('*') {
                (authority.len() > suffix.len() && ends_with_ignore_case(authority, suffix))
                    .then_some((2, suffix.len()))
            } else if let Some(prefix) = d.strip_suffix('*') {
                (authority.len() > prefix.len() && starts_with_ignore_case(authority, prefix))
                    .then_some((1, prefix.len()))
            } else {
                d.eq_ignore_ascii_case(authority).then_some((3, d.len()))
            };
            if let Some(s) = score
                && best.is_none_or(|(b, _)| s > b)
            {
                best = Some((s, vh));
            }
        }
    }
    best.map(|(_, vh)| vh)
}

fn ends_with_ignore_case(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len() && s[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// The first route of `vh` that matches `req`.
pub fn select_route<'a, B>(vh: &'a VirtualHost, req: &Request<B>) -> Option<&'a Route> {
    vh.routes.iter().find(|r| route_matches(&r.matcher, req))
}

/// The authority of a request: the URI's, else the `Host` header.
pub fn authority<B>(req: &Request<B>) -> Option<&str> {
    req.uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| req.headers().get(http::header::HOST)?.to_str().ok())
}

/// Virtual host and route for a request, in one call.
pub fn select<'a, B>(table: &'a RouteTable, req: &Request<B>) -> Option<&'a Route> {
    let vh = select_virtual_host(table, authority(req)?)?;
    select_route(vh, req)
}

/// Picks a cluster of a split: `roll` is a uniformly random number (any `u32`), so the choice is
/// in proportion to the weights. Returns `None` only for an empty list or all-zero weights.
pub fn pick_weighted(clusters: &[WeightedCluster], roll: u32) -> Option<&WeightedCluster> {
    let total: u64 = clusters.iter().map(|c| u64::from(c.weight)).sum();
    if total == 0 {
        return None;
    }
    let mut point = u64::from(roll) * total / (u64::from(u32::MAX) + 1);
    for c in clusters {
        let w = u64::from(c.weight);
        if point < w {
            return Some(c);
        }
        point -= w;
    }
    clusters.last()
}

#[cfg(test)]
mod tests;
