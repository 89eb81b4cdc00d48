//! `HTTPRoute` (gateway.networking.k8s.io) attached to a Service or ServiceEntry: the GAMMA
//! pattern for mesh routing.

use std::time::Duration;

use serde::Deserialize;

use super::common::Port;
use super::duration;

/// The `spec` of an `HTTPRoute`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HttpRoute {
    /// Services (kind `Service`, group `""`) or `ServiceEntry`s (group `networking.istio.io`) whose
    /// routes this replaces. Gateway parents are not supported (warning). Required.
    pub parent_refs: Vec<ParentRef>,
    /// Rules; ordered by Gateway API precedence (exact path, longest prefix, method, most
    /// headers, most query parameters), ties in document order. Default: one rule sending
    /// everything to the parent.
    pub rules: Vec<RouteRule>,
}

/// `parentRefs[]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ParentRef {
    /// API group: `""` (core) for `Service`, `networking.istio.io` for `ServiceEntry`.
    /// Default: `gateway.networking.k8s.io`.
    pub group: Option<String>,
    /// `Service` or `ServiceEntry`. Default: `Gateway` (not supported).
    pub kind: Option<String>,
    /// Name of the Service (host `<name>.<namespace>.svc.cluster.local`) or ServiceEntry. Required.
    pub name: String,
    /// Namespace of the parent. Default: the route's.
    pub namespace: Option<String>,
    /// Attach only to this port of the parent. Default: every port.
    pub port: Option<Port>,
}

impl ParentRef {
    /// The referenced kind when it is one the mesh supports: `Service` or `ServiceEntry`.
    pub fn mesh_kind(&self) -> Option<&'static str> {
        backend_kind(
            self.group.as_deref(),
            self.kind.as_deref(),
            GATEWAY_GROUP,
            "Gateway",
        )
    }
}

const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// Resolves group/kind with the given defaults to `Service` or `ServiceEntry`.
pub(crate) fn backend_kind(
    group: Option<&str>,
    kind: Option<&str>,
    default_group: &str,
    default_kind: &str,
) -> Option<&'static str> {
    let kind = kind.unwrap_or(default_kind);
    let group = group.unwrap_or(if kind == default_kind {
        default_group
    } else {
        ""
    });
    match (group, kind) {
        ("" | "core", "Service") => Some("Service"),
        ("networking.istio.io", "ServiceEntry") => Some("ServiceEntry"),
        _ => None,
    }
}

/// `rules[]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RouteRule {
    /// Rule name, used in route names. Default: the rule index.
    pub name: Option<String>,
    /// Conditions, any of which selects the rule. Default: path prefix `/`.
    pub matches: Vec<RouteMatchSpec>,
    /// Header changes, mirrors and rewrites. Default: none.
    pub filters: Vec<Filter>,
    /// Weighted backends. Default: none (requests get a 500, as Gateway API requires).
    pub backend_refs: Vec<BackendRef>,
    /// Timeouts. Default: none.
    pub timeouts: Option<Timeouts>,
}

/// `matches[]`: every condition set must hold.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RouteMatchSpec {
    /// Path condition. Default: prefix `/`.
    pub path: Option<PathMatchSpec>,
    /// Header conditions. Default: none.
    pub headers: Vec<ValueMatch>,
    /// Query parameter conditions. Default: none.
    pub query_params: Vec<ValueMatch>,
    /// HTTP method, e.g. `GET`. Default: any.
    pub method: Option<String>,
}

/// `path`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PathMatchSpec {
    /// `Exact`, `PathPrefix` (whole segments: `/foo` matches `/foo` and `/foo/x`, not `/foobar`)
    /// or `RegularExpression`. Default: `PathPrefix`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The path, or the RE2 regex. Default: `/`.
    pub value: Option<String>,
}

/// A header or query parameter condition.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ValueMatch {
    /// `Exact` or `RegularExpression`. Default: `Exact`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Header (case-insensitive) or parameter (case-sensitive) name. Required.
    pub name: String,
    /// Value or RE2 regex. Required.
    pub value: String,
}

/// `filters[]`: `type` selects which of the other fields applies.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Filter {
    /// `RequestHeaderModifier`, `ResponseHeaderModifier`, `RequestMirror` or `URLRewrite`;
    /// other types are refused. Required.
    #[serde(rename = "type")]
    pub kind: String,
    /// For `RequestHeaderModifier`.
    pub request_header_modifier: Option<HeaderModifier>,
    /// For `ResponseHeaderModifier`.
    pub response_header_modifier: Option<HeaderModifier>,
    /// For `RequestMirror`.
    pub request_mirror: Option<RequestMirror>,
    /// For `URLRewrite`.
    #[serde(rename = "urlRewrite")]
    pub url_rewrite: Option<UrlRewrite>,
}

/// `requestHeaderModifier` / `responseHeaderModifier`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct HeaderModifier {
    /// Headers set, replacing existing values.
    pub set: Vec<NameValue>,
    /// Headers appended.
    pub add: Vec<NameValue>,
    /// Headers removed.
    pub remove: Vec<String>,
}

/// `{name, value}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct NameValue {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: String,
}

/// `requestMirror`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RequestMirror {
    /// Where copies go. Required.
    pub backend_ref: BackendRef,
    /// Share mirrored, whole percent 0–100. Exclusive with `fraction`. Default: 100.
    pub percent: Option<u32>,
    /// Share mirrored as a fraction. Default: 100 %.
    pub fraction: Option<Fraction>,
}

/// `fraction`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Fraction {
    /// Numerator. Required.
    pub numerator: u32,
    /// Denominator, at least 1. Default: 100.
    pub denominator: Option<u32>,
}

/// `urlRewrite`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct UrlRewrite {
    /// Replaces the authority. Default: unchanged.
    pub hostname: Option<String>,
    /// Path rewrite; only `ReplacePrefixMatch` is supported. Default: unchanged.
    pub path: Option<PathModifier>,
}

/// `urlRewrite.path`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PathModifier {
    /// `ReplacePrefixMatch` (`ReplaceFullPath` is refused). Required.
    #[serde(rename = "type")]
    pub kind: String,
    /// Replacement of the matched `PathPrefix`.
    pub replace_prefix_match: Option<String>,
    /// Not supported; present so that it is reported precisely.
    pub replace_full_path: Option<String>,
}

/// `backendRefs[]` and `requestMirror.backendRef`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct BackendRef {
    /// API group. Default: `""` (core).
    pub group: Option<String>,
    /// `Service` or `ServiceEntry`. Default: `Service`.
    pub kind: Option<String>,
    /// Name of the Service or ServiceEntry. Required.
    pub name: String,
    /// Namespace. Default: the route's (cross-namespace references are allowed; ReferenceGrant is
    /// not checked).
    pub namespace: Option<String>,
    /// Port of the backend. Default: the route table's port if the backend has it, else its
    /// only port.
    pub port: Option<Port>,
    /// Relative weight. Default: 1.
    pub weight: Option<u32>,
}

impl BackendRef {
    /// The referenced kind when supported: `Service` or `ServiceEntry`.
    pub fn mesh_kind(&self) -> Option<&'static str> {
        backend_kind(self.group.as_deref(), self.kind.as_deref(), "", "Service")
    }
}

/// `timeouts`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Timeouts {
    /// Whole-request timeout; `0s` disables. Default: none.
    #[serde(deserialize_with = "duration::option")]
    pub request: Option<Duration>,
    /// Timeout of each attempt to a backend; at most `request`. Default: none.
    #[serde(deserialize_with = "duration::option")]
    pub backend_request: Option<Duration>,
}
