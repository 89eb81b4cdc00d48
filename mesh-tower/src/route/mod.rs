//! Route selection with Envoy's semantics: virtual host by authority, then the first route whose
//! match holds, then a weighted cluster.
//!
//! This is the decision every outbound request makes, so it reads the table by reference and
//! allocates nothing except when a header repeats (its values are joined with `,` as Envoy does).

pub(crate) mod matching;

use http::Request;
use mesh_core::route::{Route, RouteTable, VirtualHost, WeightedCluster};

mod layer;
mod timeout;

pub use layer::{RouteLayer, RouteService, Routed};
pub use matching::route_matches;
pub use timeout::{effective_timeout, parse_grpc_timeout};

/// Picks the virtual host for `authority` the way Envoy does: an exact domain, then the longest
/// `*.suffix`, then the longest `prefix*`, then `*`. The authority is tried with its port first,
/// then without.
pub fn select_virtual_host<'a>(table: &'a RouteTable, authority: &str) -> Option<&'a VirtualHost> {
    choose_virtual_host(table, authority).map(|c| c.vh)
}

/// A virtual host chosen for an authority, with the domain that won and how it matched.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostChoice<'a> {
    /// The virtual host.
    pub(crate) vh: &'a VirtualHost,
    /// The domain of `vh` that matched.
    pub(crate) domain: &'a str,
    /// How `domain` matched.
    pub(crate) kind: DomainMatch,
    /// True when only the authority without its port matched.
    pub(crate) port_stripped: bool,
}

/// How a virtual host's domain matched an authority, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum DomainMatch {
    /// `*`.
    Any,
    /// `prefix*`.
    Prefix,
    /// `*.suffix`.
    Suffix,
    /// The whole domain.
    Exact,
}

/// [`select_virtual_host`], saying which domain won and how.
pub(crate) fn choose_virtual_host<'a>(
    table: &'a RouteTable,
    authority: &str,
) -> Option<HostChoice<'a>> {
    find_host(table, authority).or_else(|| {
        let (host, port) = authority.rsplit_once(':')?;
        // Only a numeric port is stripped; IPv6 literals are bracketed, so `]:` precedes it.
        let numeric = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
        if numeric {
            find_host(table, host).map(|c| HostChoice {
                port_stripped: true,
                ..c
            })
        } else {
            None
        }
    })
}

fn find_host<'a>(table: &'a RouteTable, authority: &str) -> Option<HostChoice<'a>> {
    // (kind, length): exact beats suffix beats prefix beats `*`; longer wildcards win within a kind.
    let mut best: Option<((DomainMatch, usize), HostChoice<'a>)> = None;
    for vh in &table.virtual_hosts {
        for d in &vh.domains {
            let score = if d == "*" {
                Some((DomainMatch::Any, 0))
            } else if let Some(suffix) = d.strip_prefix('*') {
                (authority.len() > suffix.len() && ends_with_ignore_case(authority, suffix))
                    .then_some((DomainMatch::Suffix, suffix.len()))
            } else if let Some(prefix) = d.strip_suffix('*') {
                (authority.len() > prefix.len() && starts_with_ignore_case(authority, prefix))
                    .then_some((DomainMatch::Prefix, prefix.len()))
            } else {
                d.eq_ignore_ascii_case(authority)
                    .then_some((DomainMatch::Exact, d.len()))
            };
            if let Some(s) = score
                && best.as_ref().is_none_or(|(b, _)| s > *b)
            {
                let choice = HostChoice {
                    vh,
                    domain: d,
                    kind: s.0,
                    port_stripped: false,
                };
                best = Some((s, choice));
            }
        }
    }
    best.map(|(_, c)| c)
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
