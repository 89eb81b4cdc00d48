//! [`explain`]: the client's routing decision for one request, step by step, in words.
//!
//! Each step calls the function the client calls ([`crate::client::debug::target`],
//! [`crate::route::choose_virtual_host`], [`crate::route::matching::first_mismatch`]), so the
//! explanation cannot disagree with what [`Client::request`](crate::Client::request) does.

use std::fmt::Write as _;

use http::Request;
use mesh_core::route::{
    FaultPolicy, HeaderMatch, LocalRateLimit, MirrorPolicy, PathMatch, QueryParamMatch,
    RetryPolicy, Route, RouteAction,
};
use mesh_core::{MeshResources, StringMatch};
use serde::Serialize;

use crate::client::Error;
use crate::route::matching::{Mismatch, first_mismatch, header_value, query_value};
use crate::route::{DomainMatch, HostChoice, choose_virtual_host};

/// How the client routes one request, step by step ([`explain`]).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Explanation {
    /// The request explained: method, authority and path.
    pub request: RequestLine,
    /// The listener name looked up: the authority, with the scheme's default port (80, or 443
    /// for `https`) when it has none. `None` when the request has no authority.
    pub target: Option<String>,
    /// The listener found under `target`; `None` when the mesh has none.
    pub listener: Option<String>,
    /// The route table the listener names, when the client has it.
    pub route_table: Option<String>,
    /// The virtual host chosen for the authority, and why.
    pub virtual_host: Option<VirtualHostChoice>,
    /// Every route of the virtual host tried before the one that matched (all of them when none
    /// did), each with the first condition the request failed.
    pub skipped: Vec<Skipped>,
    /// The route that matched: its name, or `routes[<index>]` when it has none.
    pub route: Option<String>,
    /// What the matched route does.
    pub action: Option<Action>,
    /// The clusters a forwarding route splits between, with their shares.
    pub clusters: Vec<ClusterShare>,
    /// The error the client returns for this request, when routing fails.
    pub error: Option<String>,
    /// Why routing failed, in more words than the client's error.
    pub detail: Option<String>,
}

/// The parts of a request routing reads.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RequestLine {
    /// Method.
    pub method: String,
    /// Authority: the URI's, else the `Host` header.
    pub authority: Option<String>,
    /// Path with query.
    pub path: String,
}

/// The virtual host chosen for an authority.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct VirtualHostChoice {
    /// Its name.
    pub name: String,
    /// The domain of it that matched.
    pub domain: String,
    /// `exact`, `suffix` (`*.example.com`), `prefix` (`api.*`) or `any` (`*`).
    pub matched_by: &'static str,
    /// Why it won, in words.
    pub reason: String,
}

/// A route tried before the match, and the condition that ruled it out.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Skipped {
    /// Its name, or `routes[<index>]` when it has none.
    pub route: String,
    /// Its position in the virtual host.
    pub index: usize,
    /// Always false: the route did not match.
    pub matched: bool,
    /// The first condition it failed, e.g. `path: prefix "/api" does not match "/r/1"`.
    pub reason: String,
}

/// What a matched route does.
// Built once per explained request, off the request path: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// Forward to one of the clusters in [`Explanation::clusters`].
    Forward {
        /// Whole-request timeout, retries included, in milliseconds; `None`: no timeout.
        timeout_ms: Option<u64>,
        /// Retry policy; `None`: no retries.
        retry: Option<RetrySummary>,
        /// Copies sent to other clusters.
        mirrors: Vec<MirrorPolicy>,
        /// Replaces the matched path prefix.
        prefix_rewrite: Option<String>,
        /// Replaces the authority.
        host_rewrite: Option<String>,
        /// Faults injected before forwarding.
        fault: Option<FaultPolicy>,
        /// The route's local rate limit (answered 429 when empty).
        rate_limit: Option<LocalRateLimit>,
    },
    /// Answer without contacting a backend.
    DirectResponse {
        /// Status.
        status: u16,
        /// Body.
        body: Option<String>,
    },
}

/// A retry policy in brief.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct RetrySummary {
    /// Conditions retried, in Envoy's spelling (`5xx`, `reset`, …).
    pub retry_on: Vec<&'static str>,
    /// Retries after the first attempt.
    pub num_retries: u32,
    /// Timeout of each attempt in milliseconds; `None`: only the route timeout.
    pub per_try_timeout_ms: Option<u64>,
    /// Statuses retried under `retriable-status-codes`.
    pub retriable_status_codes: Vec<u16>,
    /// Backoff base and cap, in milliseconds.
    pub backoff_ms: (u64, u64),
}

/// One cluster of a split.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ClusterShare {
    /// Cluster name.
    pub name: String,
    /// Its weight.
    pub weight: u32,
    /// Its share of requests, in percent.
    pub percent: f64,
    /// False when the client has no such cluster (requests picking it fail).
    pub known: bool,
}

/// How the client routes `req` through `resources`: the listener for its authority, the route
/// table, the virtual host, every route tried and why it did not match, then the route that did
/// and its action — or the error the client returns. Reads the request's method, URI and
/// headers; never its body.
///
/// ```
/// use mesh_core::MeshResources;
///
/// let req = http::Request::get("http://reviews:9080/r/1").body(()).unwrap();
/// let why = mesh_tower::debug::explain(&MeshResources::default(), &req);
/// assert_eq!(why.target.as_deref(), Some("reviews:9080"));
/// assert!(why.error.unwrap().contains("no listener reviews:9080"));
/// ```
pub fn explain<B>(resources: &MeshResources, req: &Request<B>) -> Explanation {
    let mut out = Explanation {
        request: RequestLine {
            method: req.method().to_string(),
            authority: crate::route::authority(req).map(str::to_string),
            path: req
                .uri()
                .path_and_query()
                .map_or_else(|| req.uri().path().to_string(), |p| p.to_string()),
        },
        target: None,
        listener: None,
        route_table: None,
        virtual_host: None,
        skipped: Vec::new(),
        route: None,
        action: None,
        clusters: Vec::new(),
        error: None,
        detail: None,
    };
    let Some((authority, target)) = crate::client::debug::target(req) else {
        let e = Error::InvalidRequest("no authority in the URI and no Host header".into());
        out.error = Some(e.to_string());
        return out;
    };
    out.target = Some(target.to_string());
    let no_target = || Error::NoTarget {
        authority: authority.to_string(),
        target: target.to_string(),
    };
    let Some(listener) = resources.listeners.get(&*target) else {
        out.error = Some(no_target().to_string());
        out.detail = Some(format!(
            "no listener is named {target:?}; the client has {}",
            names(resources.listeners.keys())
        ));
        return out;
    };
    out.listener = Some(listener.name.clone());
    let Some(table) = resources.route_tables.get(&listener.route_config_name) else {
        out.error = Some(no_target().to_string());
        out.detail = Some(format!(
            "listener {:?} names route table {:?}, which the client does not have",
            listener.name, listener.route_config_name
        ));
        return out;
    };
    out.route_table = Some(table.name.clone());
    let no_route = || Error::NoRoute {
        table: table.name.clone(),
        method: req.method().to_string(),
        authority: authority.to_string(),
        path: req.uri().path().to_string(),
    };
    let Some(choice) = choose_virtual_host(table, authority) else {
        out.error = Some(no_route().to_string());
        out.detail = Some(format!(
            "no virtual host of {:?} serves {authority:?}; its domains are {}",
            table.name,
            names(table.virtual_hosts.iter().flat_map(|v| &v.domains))
        ));
        return out;
    };
    out.virtual_host = Some(virtual_host(&choice, authority));
    for (index, r) in choice.vh.routes.iter().enumerate() {
        match first_mismatch(&r.matcher, req) {
            Some(m) => out.skipped.push(Skipped {
                route: label(r, index),
                index,
                matched: false,
                reason: reason(m, r.matcher.case_sensitive, req),
            }),
            None => {
                out.route = Some(label(r, index));
                action(&mut out, r, resources);
                return out;
            }
        }
    }
    out.error = Some(no_route().to_string());
    out.detail = Some(format!(
        "none of the {} routes of virtual host {:?} matched",
        choice.vh.routes.len(),
        choice.vh.name
    ));
    out
}

fn action(out: &mut Explanation, r: &Route, resources: &MeshResources) {
    match &r.action {
        RouteAction::DirectResponse { status, body } => {
            out.action = Some(Action::DirectResponse {
                status: *status,
                body: body.clone(),
            });
        }
        RouteAction::Forward(f) => {
            let total: u64 = f.clusters.iter().map(|c| u64::from(c.weight)).sum();
            out.clusters = f
                .clusters
                .iter()
                .map(|c| ClusterShare {
                    name: c.name.clone(),
                    weight: c.weight,
                    percent: percent(c.weight, total),
                    known: resources.clusters.contains_key(&c.name),
                })
                .collect();
            out.action = Some(Action::Forward {
                timeout_ms: f.timeout.map(millis),
                retry: f.retry.as_ref().map(retry),
                mirrors: f.mirrors.clone(),
                prefix_rewrite: f.prefix_rewrite.clone(),
                host_rewrite: f.host_rewrite.clone(),
                fault: r.fault.clone(),
                rate_limit: r.rate_limit.clone(),
            });
        }
    }
}

fn retry(r: &RetryPolicy) -> RetrySummary {
    RetrySummary {
        retry_on: r.retry_on.iter().map(|c| c.as_str()).collect(),
        num_retries: r.num_retries,
        per_try_timeout_ms: r.per_try_timeout.map(millis),
        retriable_status_codes: r.retriable_status_codes.clone(),
        backoff_ms: (millis(r.backoff_base), millis(r.backoff_max)),
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `weight` of `total` in percent, to two decimals.
fn percent(weight: u32, total: u64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    (u64::from(weight) as f64 * 10_000.0 / total as f64).round() / 100.0
}

fn label(r: &Route, index: usize) -> String {
    if r.name.is_empty() {
        format!("routes[{index}]")
    } else {
        r.name.clone()
    }
}

fn names<'a>(it: impl Iterator<Item = &'a String>) -> String {
    let all: Vec<String> = it.map(|n| format!("{n:?}")).collect();
    if all.is_empty() {
        "none".into()
    } else {
        all.join(", ")
    }
}

fn virtual_host(c: &HostChoice<'_>, authority: &str) -> VirtualHostChoice {
    let host = if c.port_stripped {
        authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host)
    } else {
        authority
    };
    let (matched_by, mut reason) = match c.kind {
        DomainMatch::Exact => ("exact", format!("domain {:?} equals {host:?}", c.domain)),
        DomainMatch::Suffix => (
            "suffix",
            format!(
                "{:?} is the longest suffix wildcard matching {host:?} (no domain equals it)",
                c.domain
            ),
        ),
        DomainMatch::Prefix => (
            "prefix",
            format!(
                "{:?} is the longest prefix wildcard matching {host:?} (no exact or suffix \
                 domain matches it)",
                c.domain
            ),
        ),
        DomainMatch::Any => (
            "any",
            format!("\"*\" matches any authority and no other domain matched {host:?}"),
        ),
    };
    if c.port_stripped {
        let _ = write!(
            reason,
            "; tried without the port because no domain matched {authority:?}"
        );
    }
    VirtualHostChoice {
        name: c.vh.name.clone(),
        domain: c.domain.to_string(),
        matched_by,
        reason,
    }
}

/// The failed condition `m`, stated with what the request had.
fn reason<B>(m: Mismatch<'_>, case_sensitive: bool, req: &Request<B>) -> String {
    match m {
        Mismatch::Path(p) => {
            let (kind, want) = match p {
                PathMatch::Prefix(s) => ("prefix", s.as_str()),
                PathMatch::Exact(s) => ("exact", s.as_str()),
                PathMatch::Regex(r) => ("regex", r.as_str()),
            };
            let case = if case_sensitive || matches!(p, PathMatch::Regex(_)) {
                ""
            } else {
                " (case-insensitive)"
            };
            format!(
                "path: {kind} {want:?}{case} does not match {:?}",
                req.uri().path()
            )
        }
        Mismatch::Header(h) => header_reason(h, req),
        Mismatch::QueryParam(q) => query_reason(q, req.uri().query()),
    }
}

fn header_reason<B>(h: &HeaderMatch, req: &Request<B>) -> String {
    let value = header_value(&h.name, req);
    let subject = match h.name.as_str() {
        ":method" => "method".to_string(),
        name => format!("header {name}"),
    };
    let has = |v: &str| {
        if h.name == ":method" {
            format!("the request is {v}")
        } else {
            format!("the request has {v:?}")
        }
    };
    match (&h.value, value.as_deref(), h.invert) {
        (None, None, false) => format!("{subject}: required but absent"),
        (None, Some(v), true) => format!("{subject}: must be absent but {}", has(v)),
        (Some(m), None, false) => format!("{subject}: {} but absent", describe(m)),
        (Some(m), Some(v), false) => format!("{subject}: {} but {}", describe(m), has(v)),
        (Some(m), Some(v), true) => {
            format!("{subject}: must not be {} but {}", describe(m), has(v))
        }
        // A condition these cases do not cover holds, and a condition that holds is never the
        // first to fail; stated for completeness.
        (_, v, invert) => format!(
            "{subject}: condition {} (invert: {invert}) fails on {v:?}",
            h.value.as_ref().map_or("present".into(), describe)
        ),
    }
}

fn query_reason(q: &QueryParamMatch, query: Option<&str>) -> String {
    let name = &q.name;
    match (&q.value, query_value(name, query)) {
        (None, _) => format!("query parameter {name}: required but absent"),
        (Some(m), None) => format!("query parameter {name}: {} but absent", describe(m)),
        (Some(m), Some(v)) => format!(
            "query parameter {name}: {} but the request has {v:?}",
            describe(m)
        ),
    }
}

/// `exact "bob"`, `prefix "b"`, `regex "b.*"`, …
fn describe(m: &StringMatch) -> String {
    match m {
        StringMatch::Exact(s) => format!("exact {s:?}"),
        StringMatch::Prefix(s) => format!("prefix {s:?}"),
        StringMatch::Suffix(s) => format!("suffix {s:?}"),
        StringMatch::Contains(s) => format!("contains {s:?}"),
        StringMatch::Regex(r) => format!("regex {:?}", r.as_str()),
    }
}
