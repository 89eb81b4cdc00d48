//! Gateway API `HTTPRoute` attached to a Service or ServiceEntry (GAMMA) → routes.
//!
//! Matches of all rules are ordered by Gateway API precedence (as Istio does): exact path, then
//! longer prefix, then regex; then method; then more headers; then more query parameters; ties
//! keep document order. `PathPrefix /foo` matches whole segments, so it becomes two routes:
//! exact `/foo` and prefix `/foo/`.

use std::collections::BTreeSet;

use mesh_core::route::{
    ForwardAction, HeaderMatch, HeaderMutation, MirrorPolicy, PathMatch, QueryParamMatch, Route,
    RouteAction, RouteMatch, WeightedCluster,
};
use mesh_core::{Percent, StringMatch};

use super::target::{
    Attached, Problems, Resolver, Target, istio_default_retry, merged_hash, timeout, validated,
};
use crate::config::compile_regex;
use crate::config::http_route::{
    BackendRef, HeaderModifier, RouteMatchSpec, RouteRule, ValueMatch,
};
use crate::config::{Document, HttpRoute};

/// Routes of `route` for every (port of every) parent it names.
pub(crate) fn translate(
    doc: &Document,
    route: &HttpRoute,
    base: Resolver<'_, '_>,
    problems: &mut Problems,
) -> Attached {
    let mut out = Attached::default();
    let mut seen = BTreeSet::new();
    for (i, parent) in route.mesh_parents() {
        let field = format!("spec.parentRefs[{i}]");
        let ns = parent.namespace.as_deref().unwrap_or(&doc.namespace);
        let hosts = match refer(base, parent.mesh_kind(), &parent.name, ns) {
            Ok(h) => h,
            Err(why) => {
                problems.push(field, why);
                continue;
            }
        };
        for host in hosts {
            let ports = base.reg.ports(&host);
            let ports = match parent.port {
                Some(p) if ports.contains(&p.get()) => vec![p.get()],
                Some(p) => {
                    problems.push(
                        format!("{field}.port"),
                        format!("host {host} has no port {p}"),
                    );
                    continue;
                }
                None => ports,
            };
            for port in ports {
                let r = Resolver {
                    table_port: port,
                    ..base
                };
                out.tables
                    .insert((host.clone(), port), table_routes(doc, route, r, problems));
            }
            if seen.insert(host.clone()) {
                out.hosts.push((field.clone(), host));
            }
        }
    }
    out
}

/// Hosts of a `Service` (`<name>.<ns>.svc.cluster.local`) or `ServiceEntry` reference.
fn refer(
    r: Resolver<'_, '_>,
    kind: Option<&str>,
    name: &str,
    ns: &str,
) -> Result<Vec<String>, String> {
    match kind {
        Some("ServiceEntry") => r
            .reg
            .entry_hosts(ns, name)
            .map(<[String]>::to_vec)
            .ok_or_else(|| format!("unknown ServiceEntry {ns}/{name}")),
        _ => {
            let host = format!("{name}.{ns}.svc.cluster.local");
            if r.reg.services.contains_key(&host) {
                Ok(vec![host])
            } else {
                Err(r.reg.unknown_host(&host, &host))
            }
        }
    }
}

/// One match of one rule, with its precedence key.
struct Ranked<'m> {
    rule: usize,
    index: usize,
    spec: Option<&'m RouteMatchSpec>,
}

fn path_of(m: Option<&RouteMatchSpec>) -> (&str, &str) {
    let p = m.and_then(|m| m.path.as_ref());
    (
        p.and_then(|p| p.kind.as_deref()).unwrap_or("PathPrefix"),
        p.and_then(|p| p.value.as_deref()).unwrap_or("/"),
    )
}

/// Gateway API precedence, larger first: (path kind rank, path length, method, headers, query).
fn precedence(m: Option<&RouteMatchSpec>) -> (u8, usize, bool, usize, usize) {
    let (kind, value) = path_of(m);
    let rank = match kind {
        "Exact" => 3,
        "PathPrefix" => 2,
        _ => 1,
    };
    (
        rank,
        value.len(),
        m.is_some_and(|m| m.method.is_some()),
        m.map_or(0, |m| m.headers.len()),
        m.map_or(0, |m| m.query_params.len()),
    )
}

fn table_routes(
    doc: &Document,
    route: &HttpRoute,
    r: Resolver<'_, '_>,
    problems: &mut Problems,
) -> Vec<Route> {
    let mut ranked: Vec<Ranked<'_>> = Vec::new();
    for (i, rule) in route.rules.iter().enumerate() {
        if rule.matches.is_empty() {
            ranked.push(Ranked {
                rule: i,
                index: 0,
                spec: None,
            });
        }
        ranked.extend(rule.matches.iter().enumerate().map(|(j, m)| Ranked {
            rule: i,
            index: j,
            spec: Some(m),
        }));
    }
    // Stable: ties keep document order.
    ranked.sort_by_key(|m| std::cmp::Reverse(precedence(m.spec)));
    let actions: Vec<Option<(RouteAction, HeaderMutation, HeaderMutation)>> = route
        .rules
        .iter()
        .enumerate()
        .map(|(i, rule)| action(rule, &format!("spec.rules[{i}]"), r, problems))
        .collect();
    let mut routes = Vec::new();
    for m in ranked {
        let rule = &route.rules[m.rule];
        let Some((action, req, resp)) = &actions[m.rule] else {
            continue;
        };
        let at = format!("spec.rules[{}]", m.rule);
        let rule_name = rule.name.clone().unwrap_or_else(|| m.rule.to_string());
        let name = format!("{}.{}.{rule_name}.{}", doc.namespace, doc.name, m.index);
        let (kind, value) = path_of(m.spec);
        let (headers, query_params) = conditions(m.spec, &at, m.index, problems);
        let mut variants = Vec::new();
        match kind {
            "Exact" => variants.push((PathMatch::Exact(value.into()), None)),
            "RegularExpression" => match compile_regex(value) {
                Ok(re) => variants.push((PathMatch::Regex(re), None)),
                Err(why) => problems.push(format!("{at}.matches[{}].path.value", m.index), why),
            },
            _ => {
                let trimmed = value.trim_end_matches('/');
                if trimmed.is_empty() {
                    variants.push((PathMatch::Prefix("/".into()), Some("/")));
                } else {
                    variants.push((PathMatch::Exact(trimmed.into()), Some("")));
                    variants.push((PathMatch::Prefix(format!("{trimmed}/")), Some("/")));
                }
            }
        }
        for (path, rewrite_suffix) in variants {
            let mut action = action.clone();
            if let (RouteAction::Forward(f), Some(suffix)) = (&mut action, rewrite_suffix)
                && let Some(replacement) = prefix_replacement(rule)
            {
                let base = replacement.trim_end_matches('/');
                f.prefix_rewrite = Some(match suffix {
                    "" if base.is_empty() => "/".to_string(),
                    s => format!("{base}{s}"),
                });
            }
            let route = Route {
                name: name.clone(),
                matcher: RouteMatch {
                    path,
                    case_sensitive: true,
                    headers: headers.clone(),
                    query_params: query_params.clone(),
                },
                action,
                request_headers: req.clone(),
                response_headers: resp.clone(),
                fault: None,
                rate_limit: None,
            };
            routes.extend(validated(route, &at, problems));
        }
    }
    routes
}

fn prefix_replacement(rule: &RouteRule) -> Option<&str> {
    rule.filters
        .iter()
        .filter_map(|f| f.url_rewrite.as_ref()?.path.as_ref())
        .find(|p| p.kind == "ReplacePrefixMatch")
        .and_then(|p| p.replace_prefix_match.as_deref())
}

/// Header (with `:method`) and query conditions; only the first of equal names counts.
fn conditions(
    m: Option<&RouteMatchSpec>,
    at: &str,
    index: usize,
    problems: &mut Problems,
) -> (Vec<HeaderMatch>, Vec<QueryParamMatch>) {
    let Some(m) = m else {
        return (Vec::new(), Vec::new());
    };
    let mut value = |v: &ValueMatch, field: String| match v.kind.as_deref() {
        Some("RegularExpression") => compile_regex(&v.value)
            .map(StringMatch::Regex)
            .map_err(|why| problems.push(field, why))
            .ok(),
        _ => Some(StringMatch::Exact(v.value.clone())),
    };
    let mut headers = Vec::new();
    if let Some(method) = &m.method {
        headers.push(HeaderMatch {
            name: ":method".into(),
            value: Some(StringMatch::Exact(method.clone())),
            invert: false,
        });
    }
    let mut names = BTreeSet::new();
    for (k, h) in m.headers.iter().enumerate() {
        let name = h.name.to_ascii_lowercase();
        let field = format!("{at}.matches[{index}].headers[{k}].value");
        if names.insert(name.clone())
            && let Some(v) = value(h, field)
        {
            headers.push(HeaderMatch {
                name,
                value: Some(v),
                invert: false,
            });
        }
    }
    let mut names = BTreeSet::new();
    let mut query = Vec::new();
    for (k, q) in m.query_params.iter().enumerate() {
        let field = format!("{at}.matches[{index}].queryParams[{k}].value");
        if names.insert(q.name.clone())
            && let Some(v) = value(q, field)
        {
            query.push(QueryParamMatch {
                name: q.name.clone(),
                value: Some(v),
            });
        }
    }
    (headers, query)
}

fn action(
    rule: &RouteRule,
    at: &str,
    r: Resolver<'_, '_>,
    problems: &mut Problems,
) -> Option<(RouteAction, HeaderMutation, HeaderMutation)> {
    let before = problems.0.len();
    let mut req = HeaderMutation::default();
    let mut resp = HeaderMutation::default();
    let mut mirrors = Vec::new();
    let mut host_rewrite = None;
    for (j, f) in rule.filters.iter().enumerate() {
        modify(&mut req, f.request_header_modifier.as_ref());
        modify(&mut resp, f.response_header_modifier.as_ref());
        if let Some(m) = &f.request_mirror {
            let field = format!("{at}.filters[{j}].requestMirror.backendRef");
            if let Some(t) = backend(&m.backend_ref, field, r, problems) {
                let percent = match (&m.fraction, m.percent) {
                    (Some(fr), _) => {
                        let den = u64::from(fr.denominator.unwrap_or(100).max(1));
                        Percent::from_per_million(
                            (u64::from(fr.numerator) * 1_000_000 / den) as u32,
                        )
                    }
                    (None, Some(p)) => Percent::from_percent(f64::from(p)),
                    (None, None) => Percent::ALL,
                };
                mirrors.push(MirrorPolicy {
                    cluster: t.cluster,
                    percent,
                });
            }
        }
        if let Some(h) = f.url_rewrite.as_ref().and_then(|u| u.hostname.clone()) {
            host_rewrite = Some(h);
        }
    }
    if rule.backend_refs.is_empty() {
        // Gateway API: a rule with no backends answers 500.
        return (problems.0.len() == before).then_some({
            (
                RouteAction::DirectResponse {
                    status: 500,
                    body: None,
                },
                req,
                resp,
            )
        });
    }
    let mut targets = Vec::new();
    let mut clusters = Vec::new();
    for (j, b) in rule.backend_refs.iter().enumerate() {
        if let Some(t) = backend(b, format!("{at}.backendRefs[{j}]"), r, problems) {
            clusters.push(WeightedCluster {
                name: t.cluster.clone(),
                weight: b.weight.unwrap_or(1),
            });
            targets.push(t);
        }
    }
    if problems.0.len() != before {
        return None;
    }
    let t = rule.timeouts.as_ref();
    let mut retry = istio_default_retry();
    retry.per_try_timeout = timeout(t.and_then(|t| t.backend_request));
    let action = ForwardAction {
        clusters,
        timeout: timeout(t.and_then(|t| t.request)),
        // As Istio: gRPC callers keep their own deadline, capped at the route's timeout (A31).
        grpc_timeout_header_max: timeout(t.and_then(|t| t.request)),
        retry: Some(retry),
        mirrors,
        prefix_rewrite: None,
        host_rewrite,
        hash_policies: merged_hash(&targets),
    };
    Some((RouteAction::Forward(action), req, resp))
}

fn backend(
    b: &BackendRef,
    field: String,
    r: Resolver<'_, '_>,
    problems: &mut Problems,
) -> Option<Target> {
    let ns = b.namespace.as_deref().unwrap_or(r.namespace);
    let result = refer(r, b.mesh_kind(), &b.name, ns).and_then(|hosts| {
        // A ServiceEntry backend means its first host.
        r.target(&hosts[0], b.port.map(|p| p.get()), None)
    });
    result.map_err(|why| problems.push(field, why)).ok()
}

fn modify(m: &mut HeaderMutation, h: Option<&HeaderModifier>) {
    let Some(h) = h else { return };
    let pair = |nv: &crate::config::http_route::NameValue| {
        (nv.name.to_ascii_lowercase(), nv.value.clone())
    };
    m.set.extend(h.set.iter().map(pair));
    m.add.extend(h.add.iter().map(pair));
    m.remove
        .extend(h.remove.iter().map(|n| n.to_ascii_lowercase()));
}
