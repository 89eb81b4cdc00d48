//! Checks of a `VirtualService` that need no other document.

use std::collections::HashSet;

use mesh_core::route::RetryOn;

use super::common::{StringMatchSpec, check_export_to, check_host};
use super::diagnostic::Findings;
use super::virtual_service::{
    Destination, Fault, HttpMatch, HttpRule, Retries, VirtualService, grpc_status_code,
};

/// A parsed `retryOn`: Envoy conditions, HTTP statuses, and the tokens not understood.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ParsedRetryOn {
    pub(crate) conditions: Vec<RetryOn>,
    pub(crate) statuses: Vec<u16>,
    pub(crate) unknown: Vec<String>,
}

/// Splits Istio's `retryOn` (`"5xx,gateway-error,503"`); numbers are statuses, and as in Istio
/// they imply `retriable-status-codes`.
pub(crate) fn parse_retry_on(s: &str) -> ParsedRetryOn {
    let mut out = ParsedRetryOn::default();
    for token in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        // A VirtualService cannot name the headers `retriable-headers` would match, so it is
        // reported like an unknown condition rather than accepted to never fire.
        if let Some(cond) = RetryOn::parse(token).filter(|c| *c != RetryOn::RetriableHeaders) {
            if !out.conditions.contains(&cond) {
                out.conditions.push(cond);
            }
        } else if let Ok(status) = token.parse::<u16>() {
            if (100..=599).contains(&status) {
                out.statuses.push(status);
            } else {
                out.unknown.push(token.to_string());
            }
        } else {
            out.unknown.push(token.to_string());
        }
    }
    if !out.statuses.is_empty() && !out.conditions.contains(&RetryOn::RetriableStatusCodes) {
        out.conditions.push(RetryOn::RetriableStatusCodes);
    }
    out
}

impl VirtualService {
    pub(crate) fn check(&self, f: &mut Findings) {
        if self.hosts.is_empty() {
            f.error("spec.hosts", "must list at least one host");
        }
        let mut seen = HashSet::new();
        for (i, h) in self.hosts.iter().enumerate() {
            check_host(h, &format!("spec.hosts[{i}]"), f);
            if !seen.insert(h) {
                f.error(format!("spec.hosts[{i}]"), format!("duplicate host {h:?}"));
            }
        }
        if !self.applies_to_mesh() {
            f.warn(
                "spec.gateways",
                "gateways not supported: this VirtualService names only gateways (not \"mesh\") and is not applied",
            );
        }
        if self.http.is_empty() {
            f.error(
                "spec.http",
                "must list at least one rule (tcp and tls routes are not supported)",
            );
        }
        for (i, rule) in self.http.iter().enumerate() {
            rule.check(&format!("spec.http[{i}]"), f);
        }
        check_reachability(&self.http, f);
        check_export_to(&self.export_to, f);
    }
}

/// Rules whose every match repeats an earlier one could never match: an error, as the user
/// surely meant something else. A rule after a catch-all is reported as a warning, as Istio does.
fn check_reachability(rules: &[HttpRule], f: &mut Findings) {
    let mut earlier: Vec<(usize, &HttpMatch)> = Vec::new();
    let mut catch_all: Option<usize> = None;
    for (i, rule) in rules.iter().enumerate() {
        let matches: Vec<&HttpMatch> = if rule.matches.is_empty() {
            vec![&EMPTY_MATCH]
        } else {
            rule.matches.iter().collect()
        };
        let dups: Vec<Option<usize>> = matches
            .iter()
            .map(|m| {
                earlier
                    .iter()
                    .find(|(_, e)| e.same_conditions(m))
                    .map(|(j, _)| *j)
            })
            .collect();
        if let Some(Some(j)) = dups.first().filter(|_| dups.iter().all(Option::is_some)) {
            f.error(
                format!("spec.http[{i}].match"),
                format!("could never match: the same match as spec.http[{j}]"),
            );
            continue;
        }
        if let Some(c) = catch_all {
            f.warn(
                format!("spec.http[{i}]"),
                format!("could never match: spec.http[{c}] before it matches every request"),
            );
        } else {
            for (k, d) in dups.iter().enumerate() {
                if let Some(j) = d {
                    f.warn(
                        format!("spec.http[{i}].match[{k}]"),
                        format!("could never match: the same match as spec.http[{j}]"),
                    );
                }
            }
        }
        if catch_all.is_none() && matches.iter().any(|m| is_catch_all(m)) {
            catch_all = Some(i);
        }
        earlier.extend(matches.into_iter().map(|m| (i, m)));
    }
}

static EMPTY_MATCH: HttpMatch = HttpMatch {
    name: None,
    uri: None,
    scheme: None,
    method: None,
    authority: None,
    headers: std::collections::BTreeMap::new(),
    query_params: std::collections::BTreeMap::new(),
    without_headers: std::collections::BTreeMap::new(),
    ignore_uri_case: false,
    port: None,
};

fn is_catch_all(m: &HttpMatch) -> bool {
    let any_uri = match &m.uri {
        None => true,
        Some(u) => u.prefix.as_deref() == Some("/") || *u == StringMatchSpec::default(),
    };
    any_uri
        && m.scheme.is_none()
        && m.method.is_none()
        && m.authority.is_none()
        && m.headers.is_empty()
        && m.query_params.is_empty()
        && m.without_headers.is_empty()
        && m.port.is_none()
}

impl HttpRule {
    fn check(&self, at: &str, f: &mut Findings) {
        for (j, m) in self.matches.iter().enumerate() {
            check_match(m, &format!("{at}.match[{j}]"), f);
        }
        match (self.route.is_empty(), &self.direct_response) {
            (true, None) => f.error(
                at,
                "must have route or directResponse (redirect and delegate are not supported)",
            ),
            (false, Some(_)) => f.error(
                format!("{at}.directResponse"),
                "route and directResponse are mutually exclusive",
            ),
            _ => {}
        }
        for (j, r) in self.route.iter().enumerate() {
            let rat = format!("{at}.route[{j}]");
            check_destination(&r.destination, &format!("{rat}.destination"), f);
            if matches!(r.weight, Some(w) if w < 0) {
                f.error(format!("{rat}.weight"), "must not be negative");
            }
            if r.headers.is_some() && self.route.len() > 1 {
                f.error(
                    format!("{rat}.headers"),
                    "per-destination headers are supported only with a single destination; use the rule's headers",
                );
            }
        }
        if self.route.len() > 1 && self.route.iter().all(|r| r.weight.unwrap_or(0) <= 0) {
            f.error(
                format!("{at}.route[{}].weight", self.route.len() - 1),
                "weights sum to zero",
            );
        }
        if let Some(r) = &self.retries {
            check_retries(r, &format!("{at}.retries"), f);
        }
        if let Some(fault) = &self.fault {
            check_fault(fault, &format!("{at}.fault"), f);
        }
        if let Some(m) = &self.mirror {
            check_destination(m, &format!("{at}.mirror"), f);
        }
        if let Some(p) = &self.mirror_percentage {
            p.check(&format!("{at}.mirrorPercentage"), f);
            if self.mirror.is_none() {
                f.warn(
                    format!("{at}.mirrorPercentage"),
                    "ignored: no mirror is set",
                );
            }
        }
        for (j, m) in self.mirrors.iter().enumerate() {
            check_destination(&m.destination, &format!("{at}.mirrors[{j}].destination"), f);
            if let Some(p) = &m.percentage {
                p.check(&format!("{at}.mirrors[{j}].percentage"), f);
            }
        }
        if let Some(r) = &self.rewrite
            && r.uri.as_deref().is_some_and(|u| !u.starts_with('/'))
        {
            f.error(format!("{at}.rewrite.uri"), "must start with '/'");
        }
    }
}

fn check_match(m: &HttpMatch, at: &str, f: &mut Findings) {
    for (field, sm) in [
        ("uri", &m.uri),
        ("scheme", &m.scheme),
        ("method", &m.method),
        ("authority", &m.authority),
    ] {
        if let Some(sm) = sm {
            sm.check(&format!("{at}.{field}"), f);
        }
    }
    if let Some(u) = &m.uri {
        for p in [&u.exact, &u.prefix].into_iter().flatten() {
            if !p.starts_with('/') {
                f.error(format!("{at}.uri"), format!("{p:?} must start with '/'"));
            }
        }
    }
    for (field, map) in [
        ("headers", &m.headers),
        ("queryParams", &m.query_params),
        ("withoutHeaders", &m.without_headers),
    ] {
        for (name, sm) in map {
            if name.is_empty() {
                f.error(format!("{at}.{field}"), "names must not be empty");
            }
            sm.check(&format!("{at}.{field}.{name}"), f);
        }
    }
}

fn check_destination(d: &Destination, at: &str, f: &mut Findings) {
    check_host(&d.host, &format!("{at}.host"), f);
    if d.subset.as_deref() == Some("") {
        f.error(format!("{at}.subset"), "must not be empty when set");
    }
}

fn check_retries(r: &Retries, at: &str, f: &mut Findings) {
    match r.attempts {
        Some(a) if a < 0 => f.error(format!("{at}.attempts"), "must not be negative"),
        None | Some(0) if r.per_try_timeout.is_some() || r.retry_on.is_some() => f.warn(
            format!("{at}.attempts"),
            "not set: as in Istio, retries are disabled and perTryTimeout/retryOn have no effect",
        ),
        _ => {}
    }
    if let Some(on) = &r.retry_on {
        for token in parse_retry_on(on).unknown {
            f.warn(
                format!("{at}.retryOn"),
                format!("retry condition {token:?} not supported, ignored"),
            );
        }
    }
}

fn check_fault(fault: &Fault, at: &str, f: &mut Findings) {
    if let Some(d) = &fault.delay {
        if d.fixed_delay.is_none() {
            f.error(format!("{at}.delay.fixedDelay"), "required");
        }
        match &d.percentage {
            Some(p) => p.check(&format!("{at}.delay.percentage"), f),
            None => f.warn(
                format!("{at}.delay.percentage"),
                "not set: as in Istio, no request is delayed",
            ),
        }
    }
    if let Some(a) = &fault.abort {
        let aat = format!("{at}.abort");
        match (a.http_status, &a.grpc_status) {
            (Some(_), Some(_)) => f.error(aat.clone(), "set only one of httpStatus, grpcStatus"),
            (None, None) => f.error(aat.clone(), "httpStatus or grpcStatus is required"),
            (Some(s), None) if !(200..=599).contains(&s) => f.error(
                format!("{aat}.httpStatus"),
                format!("{s} is not within 200–599"),
            ),
            (None, Some(g)) if grpc_status_code(g).is_none() => f.error(
                format!("{aat}.grpcStatus"),
                format!("{g:?} is not a gRPC status name such as UNAVAILABLE"),
            ),
            _ => {}
        }
        match &a.percentage {
            Some(p) => p.check(&format!("{aat}.percentage"), f),
            None => f.warn(
                format!("{aat}.percentage"),
                "not set: as in Istio, no request is aborted",
            ),
        }
    }
}
