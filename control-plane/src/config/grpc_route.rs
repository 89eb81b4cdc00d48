//! `GRPCRoute` (gateway.networking.k8s.io) attached to a Service or ServiceEntry (GAMMA): gRPC
//! routing by service and method, read as the `HTTPRoute` it means.
//!
//! A gRPC call is an HTTP/2 POST to `/<package.Service>/<Method>`, so each method match becomes a
//! path match, as Envoy and Istio translate it:
//!
//! | `method` | path match |
//! |---|---|
//! | `Exact`, service and method | exact `/<service>/<method>` |
//! | `Exact`, service only | regex `/<service>/[^/]+` |
//! | `Exact`, method only | regex `/[^/]+/<method>` |
//! | `RegularExpression` | regex `/<service or [^/]+>/<method or [^/]+>` |
//! | none | every call |
//!
//! Header matches, `RequestHeaderModifier`, `ResponseHeaderModifier`, `RequestMirror` and
//! weighted `backendRefs` mean what they mean in an `HTTPRoute`; everything else about the route
//! (parents, backends, how it attaches) is the `HTTPRoute`'s code.

use serde::Deserialize;

use super::common::compile_regex;
use super::diagnostic::Findings;
use super::http_route::{
    BackendRef, Filter, HttpRoute, ParentRef, PathMatchSpec, RouteMatchSpec, RouteRule, ValueMatch,
};

/// The `spec` of a `GRPCRoute`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GrpcRoute {
    /// The Services or ServiceEntries whose traffic this routes. Required.
    pub parent_refs: Vec<ParentRef>,
    /// Rules, first match wins.
    pub rules: Vec<GrpcRouteRule>,
}

/// One rule.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GrpcRouteRule {
    /// Optional name.
    pub name: Option<String>,
    /// Matches (any of them). Default: every call.
    pub matches: Vec<GrpcRouteMatch>,
    /// Filters.
    pub filters: Vec<Filter>,
    /// Backends, weighted.
    pub backend_refs: Vec<BackendRef>,
}

/// One match: a method and headers (all of them).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct GrpcRouteMatch {
    /// The service and method.
    pub method: Option<GrpcMethodMatch>,
    /// Header matches.
    pub headers: Vec<ValueMatch>,
}

/// `method`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct GrpcMethodMatch {
    /// `Exact` (default) or `RegularExpression`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Fully qualified service, e.g. `shop.reviews.v1.Reviews`.
    pub service: Option<String>,
    /// Method, e.g. `GetReviews`.
    pub method: Option<String>,
}

const ANY_SEGMENT: &str = "[^/]+";

impl GrpcMethodMatch {
    fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or("Exact")
    }

    fn parts(&self) -> (Option<&str>, Option<&str>) {
        fn non_empty(s: &Option<String>) -> Option<&str> {
            s.as_deref().filter(|s| !s.is_empty())
        }
        (non_empty(&self.service), non_empty(&self.method))
    }

    /// The path match this method match means (see the module's table).
    pub fn path(&self) -> Option<PathMatchSpec> {
        let (service, method) = self.parts();
        let spec = |kind: &str, value: String| PathMatchSpec {
            kind: Some(kind.into()),
            value: Some(value),
        };
        if self.kind() == "RegularExpression" {
            return Some(spec(
                "RegularExpression",
                format!(
                    "/{}/{}",
                    service.unwrap_or(ANY_SEGMENT),
                    method.unwrap_or(ANY_SEGMENT)
                ),
            ));
        }
        match (service, method) {
            (Some(s), Some(m)) => Some(spec("Exact", format!("/{s}/{m}"))),
            (Some(s), None) => Some(spec(
                "RegularExpression",
                format!("/{}/{ANY_SEGMENT}", regex::escape(s)),
            )),
            (None, Some(m)) => Some(spec(
                "RegularExpression",
                format!("/{ANY_SEGMENT}/{}", regex::escape(m)),
            )),
            (None, None) => None,
        }
    }

    fn check(&self, at: &str, f: &mut Findings) {
        let (service, method) = self.parts();
        match self.kind() {
            "Exact" => {
                if service.is_none() && method.is_none() {
                    f.error(
                        at,
                        "an Exact method match needs a service, a method or both",
                    );
                }
                for (field, value) in [("service", service), ("method", method)] {
                    if let Some(v) = value
                        && v.contains('/')
                    {
                        f.error(
                            format!("{at}.{field}"),
                            format!("{v:?} must not contain '/'"),
                        );
                    }
                }
            }
            "RegularExpression" => {
                for (field, value) in [("service", service), ("method", method)] {
                    if let Some(v) = value
                        && let Err(e) = compile_regex(v)
                    {
                        f.error(format!("{at}.{field}"), e);
                    }
                }
            }
            other => f.error(
                format!("{at}.type"),
                format!("{other:?} is not Exact or RegularExpression"),
            ),
        }
    }
}

impl GrpcRoute {
    /// Checks what is particular to gRPC; the rest is checked on [`GrpcRoute::to_http_route`].
    pub(crate) fn check(&self, f: &mut Findings) {
        for (i, rule) in self.rules.iter().enumerate() {
            for (j, m) in rule.matches.iter().enumerate() {
                if let Some(method) = &m.method {
                    method.check(&format!("spec.rules[{i}].matches[{j}].method"), f);
                }
            }
            for (j, filter) in rule.filters.iter().enumerate() {
                if !matches!(
                    filter.kind.as_str(),
                    "RequestHeaderModifier" | "ResponseHeaderModifier" | "RequestMirror"
                ) {
                    f.error(
                        format!("spec.rules[{i}].filters[{j}].type"),
                        format!(
                            "{:?} is not supported on a GRPCRoute (RequestHeaderModifier, ResponseHeaderModifier or RequestMirror)",
                            filter.kind
                        ),
                    );
                }
            }
        }
    }

    /// The `HTTPRoute` this route means: the same parents, filters and backends, each method
    /// match as a path match. Field paths (`spec.rules[i].backendRefs[j]`, `.headers[k]`,
    /// `.filters[k]`) are the same in both.
    pub fn to_http_route(&self) -> HttpRoute {
        HttpRoute {
            parent_refs: self.parent_refs.clone(),
            rules: self
                .rules
                .iter()
                .map(|r| RouteRule {
                    name: r.name.clone(),
                    matches: r
                        .matches
                        .iter()
                        .map(|m| RouteMatchSpec {
                            path: m.method.as_ref().and_then(GrpcMethodMatch::path),
                            headers: m.headers.clone(),
                            query_params: Vec::new(),
                            method: None,
                        })
                        .collect(),
                    filters: r.filters.clone(),
                    backend_refs: r.backend_refs.clone(),
                    timeouts: None,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: &str, service: &str, method: &str) -> GrpcMethodMatch {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        GrpcMethodMatch {
            kind: Some(kind.into()),
            service: opt(service),
            method: opt(method),
        }
    }

    fn path(g: &GrpcMethodMatch) -> (String, String) {
        let p = g.path().unwrap();
        (p.kind.unwrap(), p.value.unwrap())
    }

    #[test]
    fn method_matches_become_path_matches() {
        let exact = |s: &str, v: &str| (s.to_string(), v.to_string());
        assert_eq!(
            path(&m("Exact", "shop.Reviews", "Get")),
            exact("Exact", "/shop.Reviews/Get")
        );
        assert_eq!(
            path(&m("Exact", "shop.Reviews", "")),
            exact("RegularExpression", "/shop\\.Reviews/[^/]+")
        );
        assert_eq!(
            path(&m("Exact", "", "Get")),
            exact("RegularExpression", "/[^/]+/Get")
        );
        assert_eq!(
            path(&m("RegularExpression", "shop\\..*", "")),
            exact("RegularExpression", "/shop\\..*/[^/]+")
        );
        assert!(m("Exact", "", "").path().is_none());
    }

    #[test]
    fn bad_method_matches_are_named() {
        let mut f = Findings::default();
        m("Exact", "", "").check("at", &mut f);
        m("Exact", "a/b", "").check("at", &mut f);
        m("RegularExpression", "(", "").check("at", &mut f);
        m("Prefix", "a", "").check("at", &mut f);
        let fields: Vec<&str> = f.items.iter().map(|(_, field, _)| field.as_str()).collect();
        assert_eq!(fields, ["at", "at.service", "at.service", "at.type"]);
    }
}
