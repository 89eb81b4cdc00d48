//! `VirtualService` → routes, with Istio's semantics: rules in order, first match wins; a rule
//! with several `match` items becomes several routes with the same action.

use mesh_core::Percent;
use mesh_core::route::{
    AbortStatus, FaultAbort, FaultDelay, FaultPolicy, ForwardAction, HeaderMatch, HeaderMutation,
    MirrorPolicy, PathMatch, QueryParamMatch, RetryPolicy, Route, RouteAction, RouteMatch,
    WeightedCluster,
};

use super::target::{
    Attached, Problems, Resolver, istio_default_retry, merged_hash, timeout, validated,
};
use crate::config::virtual_service::{
    Destination, Fault, HeaderOps, Headers, HttpMatch, HttpRule, Retries,
};
use crate::config::{Document, VirtualService, grpc_status_code, parse_retry_on};

/// Routes of `vs` for every port of every host it names.
pub(crate) fn translate(
    doc: &Document,
    vs: &VirtualService,
    base: Resolver<'_, '_>,
    problems: &mut Problems,
) -> Attached {
    let mut out = Attached::default();
    for (i, written) in vs.hosts.iter().enumerate() {
        let field = format!("spec.hosts[{i}]");
        let host = match base.reg.resolve(written, &doc.namespace) {
            Ok(h) => h,
            Err(why) => {
                problems.push(field, why);
                continue;
            }
        };
        for port in base.reg.ports(&host) {
            let r = Resolver {
                table_port: port,
                ..base
            };
            let routes = table_routes(vs, r, problems);
            out.tables.insert((host.clone(), port), routes);
        }
        out.hosts.push((field, host));
    }
    out
}

fn table_routes(vs: &VirtualService, r: Resolver<'_, '_>, problems: &mut Problems) -> Vec<Route> {
    let mut routes = Vec::new();
    for (i, rule) in vs.http.iter().enumerate() {
        let at = format!("spec.http[{i}]");
        let matches: Vec<Option<&HttpMatch>> = if rule.matches.is_empty() {
            vec![None]
        } else {
            rule.matches
                .iter()
                .filter(|m| m.port.is_none_or(|p| p.get() == r.table_port))
                .map(Some)
                .collect()
        };
        if matches.is_empty() {
            continue;
        }
        let Some(action) = action(rule, &at, r, problems) else {
            continue;
        };
        let (request_headers, response_headers) = headers(rule);
        let fault = rule.fault.as_ref().map(fault_policy);
        for m in matches {
            let route = Route {
                name: route_name(rule, m),
                matcher: m.map(route_match).unwrap_or_default(),
                action: action.clone(),
                request_headers: request_headers.clone(),
                response_headers: response_headers.clone(),
                fault: fault.clone(),
                rate_limit: None,
            };
            routes.extend(validated(route, &at, problems));
        }
    }
    routes
}

/// Istio's route name: the rule name, with the match name appended when both are set.
fn route_name(rule: &HttpRule, m: Option<&HttpMatch>) -> String {
    let rule_name = rule.name.clone().unwrap_or_default();
    match m.and_then(|m| m.name.as_deref()) {
        Some(mn) if !rule_name.is_empty() => format!("{rule_name}.{mn}"),
        Some(mn) => mn.to_string(),
        None => rule_name,
    }
}

fn route_match(m: &HttpMatch) -> RouteMatch {
    let path = match m.uri.as_ref() {
        Some(u) => match (&u.exact, &u.prefix, &u.regex) {
            (Some(e), _, _) => PathMatch::Exact(e.clone()),
            (_, Some(p), _) => PathMatch::Prefix(p.clone()),
            (_, _, Some(r)) => PathMatch::Regex(r.0.clone()),
            _ => PathMatch::Prefix("/".into()),
        },
        None => PathMatch::Prefix("/".into()),
    };
    let mut headers = Vec::new();
    for (pseudo, sm) in [
        (":method", &m.method),
        (":scheme", &m.scheme),
        (":authority", &m.authority),
    ] {
        if let Some(sm) = sm {
            headers.push(HeaderMatch {
                name: pseudo.into(),
                value: sm.to_model(),
                invert: false,
            });
        }
    }
    for (map, invert) in [(&m.headers, false), (&m.without_headers, true)] {
        for (name, sm) in map {
            headers.push(HeaderMatch {
                name: name.to_ascii_lowercase(),
                value: sm.to_model(),
                invert,
            });
        }
    }
    RouteMatch {
        path,
        case_sensitive: !m.ignore_uri_case,
        headers,
        query_params: m
            .query_params
            .iter()
            .map(|(name, sm)| QueryParamMatch {
                name: name.clone(),
                value: sm.to_model(),
            })
            .collect(),
    }
}

fn action(
    rule: &HttpRule,
    at: &str,
    r: Resolver<'_, '_>,
    problems: &mut Problems,
) -> Option<RouteAction> {
    if let Some(d) = &rule.direct_response {
        return Some(RouteAction::DirectResponse {
            status: d.status,
            body: d.body.as_ref().and_then(|b| b.string.clone()),
        });
    }
    let before = problems.0.len();
    let resolve = |d: &Destination, field: String, problems: &mut Problems| {
        let port = d.port.map(|p| p.number.get());
        r.target_of(&d.host, port, d.subset.as_deref())
            .map_err(|why| problems.push(field, why))
            .ok()
    };
    let single = rule.route.len() == 1;
    let mut targets = Vec::new();
    let mut clusters = Vec::new();
    for (j, rd) in rule.route.iter().enumerate() {
        let field = format!("{at}.route[{j}].destination");
        if let Some(t) = resolve(&rd.destination, field, problems) {
            let weight = match (single, rd.weight) {
                (true, _) => 1,
                (false, w) => u32::try_from(w.unwrap_or(0)).unwrap_or(u32::MAX),
            };
            clusters.push(WeightedCluster {
                name: t.cluster.clone(),
                weight,
            });
            targets.push(t);
        }
    }
    let mut mirrors = Vec::new();
    if let Some(m) = &rule.mirror
        && let Some(t) = resolve(m, format!("{at}.mirror"), problems)
    {
        mirrors.push(MirrorPolicy {
            cluster: t.cluster,
            percent: rule
                .mirror_percentage
                .map_or(Percent::ALL, |p| Percent::from_percent(p.value)),
        });
    }
    for (j, m) in rule.mirrors.iter().enumerate() {
        let field = format!("{at}.mirrors[{j}].destination");
        if let Some(t) = resolve(&m.destination, field, problems) {
            mirrors.push(MirrorPolicy {
                cluster: t.cluster,
                percent: m
                    .percentage
                    .map_or(Percent::ALL, |p| Percent::from_percent(p.value)),
            });
        }
    }
    if problems.0.len() != before {
        return None;
    }
    Some(RouteAction::Forward(ForwardAction {
        clusters,
        timeout: timeout(rule.timeout),
        // As Istio: gRPC callers keep their own deadline, capped at the route's timeout (A31).
        grpc_timeout_header_max: timeout(rule.timeout),
        retry: retry_policy(rule.retries.as_ref()),
        mirrors,
        prefix_rewrite: rule.rewrite.as_ref().and_then(|w| w.uri.clone()),
        host_rewrite: rule.rewrite.as_ref().and_then(|w| w.authority.clone()),
        hash_policies: merged_hash(&targets),
    }))
}

/// Istio's `retry.ConvertPolicy`: no `retries` → the default policy; `attempts` unset or 0 → no
/// retries; otherwise the default with the user's attempts, per-try timeout and `retryOn` (whose
/// numbers replace the default 503 as retriable statuses).
pub(crate) fn retry_policy(r: Option<&Retries>) -> Option<RetryPolicy> {
    let Some(r) = r else {
        return Some(istio_default_retry());
    };
    let attempts = u32::try_from(r.attempts.unwrap_or(0)).unwrap_or(0);
    if attempts == 0 {
        return None;
    }
    let mut policy = istio_default_retry();
    policy.num_retries = attempts;
    policy.per_try_timeout = timeout(r.per_try_timeout);
    if let Some(on) = r.retry_on.as_deref().filter(|s| !s.trim().is_empty()) {
        let parsed = parse_retry_on(on);
        policy.retry_on = parsed.conditions;
        policy.retriable_status_codes = parsed.statuses;
    }
    Some(policy)
}

/// Rule-level headers, plus those of the single destination (Istio merges them).
fn headers(rule: &HttpRule) -> (HeaderMutation, HeaderMutation) {
    let mut req = HeaderMutation::default();
    let mut resp = HeaderMutation::default();
    let dest = rule
        .route
        .first()
        .filter(|_| rule.route.len() == 1)
        .and_then(|d| d.headers.as_ref());
    for h in [rule.headers.as_ref(), dest].into_iter().flatten() {
        let Headers { request, response } = h;
        apply(&mut req, request.as_ref());
        apply(&mut resp, response.as_ref());
    }
    (req, resp)
}

fn apply(m: &mut HeaderMutation, ops: Option<&HeaderOps>) {
    let Some(ops) = ops else { return };
    let lower = |(k, v): (&String, &String)| (k.to_ascii_lowercase(), v.clone());
    m.set.extend(ops.set.iter().map(lower));
    m.add.extend(ops.add.iter().map(lower));
    m.remove
        .extend(ops.remove.iter().map(|k| k.to_ascii_lowercase()));
}

fn fault_policy(f: &Fault) -> FaultPolicy {
    let percent = |p: Option<crate::config::PercentSpec>| {
        p.map_or(Percent::from_per_million(0), |p| {
            Percent::from_percent(p.value)
        })
    };
    FaultPolicy {
        delay: f.delay.as_ref().and_then(|d| {
            Some(FaultDelay {
                delay: d.fixed_delay?,
                percent: percent(d.percentage),
            })
        }),
        abort: f.abort.as_ref().and_then(|a| {
            let status = match (a.http_status, &a.grpc_status) {
                (Some(s), _) => AbortStatus::Http(u16::try_from(s).ok()?),
                (None, Some(g)) => AbortStatus::Grpc(grpc_status_code(g)?),
                (None, None) => return None,
            };
            Some(FaultAbort {
                status,
                percent: percent(a.percentage),
            })
        }),
        headers: Vec::new(),
    }
}
