//! Checks of an `HTTPRoute` that need no other document.

use super::common::{check_percent, compile_regex};
use super::diagnostic::Findings;
use super::http_route::{BackendRef, Filter, HttpRoute, RouteMatchSpec, RouteRule, ValueMatch};

const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

impl HttpRoute {
    /// Parent references the mesh can attach to.
    pub fn mesh_parents(&self) -> impl Iterator<Item = (usize, &super::http_route::ParentRef)> {
        self.parent_refs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.mesh_kind().is_some())
    }

    pub(crate) fn check(&self, f: &mut Findings) {
        if self.parent_refs.is_empty() {
            f.error("spec.parentRefs", "must list at least one parent");
        }
        for (i, p) in self.parent_refs.iter().enumerate() {
            let at = format!("spec.parentRefs[{i}]");
            if p.mesh_kind().is_none() {
                f.warn(
                    at.clone(),
                    format!(
                        "parent kind {:?} not supported, ignored: only Service (group \"\") and ServiceEntry (group networking.istio.io)",
                        p.kind.as_deref().unwrap_or("Gateway")
                    ),
                );
            }
            if p.name.is_empty() {
                f.error(format!("{at}.name"), "must not be empty");
            }
        }
        if !self.parent_refs.is_empty() && self.mesh_parents().next().is_none() {
            f.warn(
                "spec.parentRefs",
                "no Service or ServiceEntry parent: this HTTPRoute is not applied",
            );
        }
        for (i, r) in self.rules.iter().enumerate() {
            r.check(&format!("spec.rules[{i}]"), f);
        }
    }
}

impl RouteRule {
    fn check(&self, at: &str, f: &mut Findings) {
        for (j, m) in self.matches.iter().enumerate() {
            check_match(m, &format!("{at}.matches[{j}]"), f);
        }
        for (j, filter) in self.filters.iter().enumerate() {
            check_filter(filter, self, &format!("{at}.filters[{j}]"), f);
        }
        for (j, b) in self.backend_refs.iter().enumerate() {
            check_backend(b, &format!("{at}.backendRefs[{j}]"), f);
        }
        if !self.backend_refs.is_empty() && self.backend_refs.iter().all(|b| b.weight == Some(0)) {
            f.error(
                format!("{at}.backendRefs[{}].weight", self.backend_refs.len() - 1),
                "weights sum to zero",
            );
        }
        if let Some(t) = &self.timeouts
            && let (Some(req), Some(backend)) = (t.request, t.backend_request)
            && !req.is_zero()
            && backend > req
        {
            f.error(
                format!("{at}.timeouts.backendRequest"),
                "must not be longer than timeouts.request",
            );
        }
    }
}

fn check_match(m: &RouteMatchSpec, at: &str, f: &mut Findings) {
    if let Some(p) = &m.path {
        let value = p.value.as_deref().unwrap_or("/");
        match p.kind.as_deref().unwrap_or("PathPrefix") {
            "Exact" | "PathPrefix" => {
                if !value.starts_with('/') {
                    f.error(
                        format!("{at}.path.value"),
                        format!("{value:?} must start with '/'"),
                    );
                }
            }
            "RegularExpression" => check_regex(value, &format!("{at}.path.value"), f),
            other => f.error(
                format!("{at}.path.type"),
                format!("{other:?} is not Exact, PathPrefix or RegularExpression"),
            ),
        }
    }
    for (field, list) in [("headers", &m.headers), ("queryParams", &m.query_params)] {
        for (k, v) in list.iter().enumerate() {
            check_value_match(v, &format!("{at}.{field}[{k}]"), f);
        }
    }
    if let Some(method) = &m.method
        && !METHODS.contains(&method.as_str())
    {
        f.error(
            format!("{at}.method"),
            format!("{method:?} is not an HTTP method such as GET"),
        );
    }
}

fn check_value_match(v: &ValueMatch, at: &str, f: &mut Findings) {
    if v.name.is_empty() {
        f.error(format!("{at}.name"), "must not be empty");
    }
    match v.kind.as_deref().unwrap_or("Exact") {
        "Exact" => {}
        "RegularExpression" => check_regex(&v.value, &format!("{at}.value"), f),
        other => f.error(
            format!("{at}.type"),
            format!("{other:?} is not Exact or RegularExpression"),
        ),
    }
}

fn check_regex(pattern: &str, at: &str, f: &mut Findings) {
    if let Err(why) = compile_regex(pattern) {
        f.error(at, why);
    }
}

fn check_filter(filter: &Filter, rule: &RouteRule, at: &str, f: &mut Findings) {
    let present = match filter.kind.as_str() {
        "RequestHeaderModifier" => filter.request_header_modifier.is_some(),
        "ResponseHeaderModifier" => filter.response_header_modifier.is_some(),
        "RequestMirror" => {
            if let Some(m) = &filter.request_mirror {
                check_backend(&m.backend_ref, &format!("{at}.requestMirror.backendRef"), f);
                if let Some(p) = m.percent {
                    check_percent(f64::from(p), &format!("{at}.requestMirror.percent"), f);
                }
                if let Some(fr) = &m.fraction {
                    let fat = format!("{at}.requestMirror.fraction");
                    if m.percent.is_some() {
                        f.error(fat.clone(), "set only one of percent, fraction");
                    }
                    let den = fr.denominator.unwrap_or(100);
                    if den == 0 || fr.numerator > den {
                        f.error(
                            fat,
                            "must satisfy 0 <= numerator <= denominator, denominator >= 1",
                        );
                    }
                }
            }
            filter.request_mirror.is_some()
        }
        "URLRewrite" => {
            if let Some(path) = filter.url_rewrite.as_ref().and_then(|u| u.path.as_ref()) {
                let pat = format!("{at}.urlRewrite.path");
                match path.kind.as_str() {
                    "ReplacePrefixMatch" => {
                        let all_prefix = !rule.matches.is_empty()
                            && rule.matches.iter().all(|m| {
                                m.path.as_ref().is_none_or(|p| {
                                    p.kind.as_deref().unwrap_or("PathPrefix") == "PathPrefix"
                                })
                            });
                        if !all_prefix && !rule.matches.is_empty() {
                            f.error(
                                format!("{pat}.type"),
                                "ReplacePrefixMatch needs every match to be a PathPrefix match",
                            );
                        }
                        if path.replace_prefix_match.is_none() {
                            f.error(format!("{pat}.replacePrefixMatch"), "required");
                        }
                    }
                    "ReplaceFullPath" => f.error(
                        format!("{pat}.type"),
                        "ReplaceFullPath is not supported (only ReplacePrefixMatch)",
                    ),
                    other => f.error(
                        format!("{pat}.type"),
                        format!("{other:?} is not ReplacePrefixMatch"),
                    ),
                }
            }
            filter.url_rewrite.is_some()
        }
        other => {
            f.error(
                format!("{at}.type"),
                format!(
                    "filter {other:?} is not supported (RequestHeaderModifier, ResponseHeaderModifier, RequestMirror, URLRewrite)"
                ),
            );
            return;
        }
    };
    if !present {
        f.error(
            at,
            format!("type {} requires its configuration field", filter.kind),
        );
    }
}

fn check_backend(b: &BackendRef, at: &str, f: &mut Findings) {
    if b.mesh_kind().is_none() {
        f.error(
            at,
            format!(
                "backend kind {:?} is not supported: only Service (group \"\") and ServiceEntry (group networking.istio.io)",
                b.kind.as_deref().unwrap_or("Service")
            ),
        );
    }
    if b.name.is_empty() {
        f.error(format!("{at}.name"), "must not be empty");
    }
}
