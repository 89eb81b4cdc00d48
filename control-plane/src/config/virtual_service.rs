//! `VirtualService` (networking.istio.io): HTTP routing for one or more hosts.
//!
//! References to other documents are resolved by [`crate::translate`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::common::{PercentSpec, Port, StringMatchSpec};
use super::duration;

/// The `spec` of a `VirtualService`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct VirtualService {
    /// Hosts whose route tables these rules replace; short names mean
    /// `<name>.<namespace>.svc.cluster.local`. Required.
    pub hosts: Vec<String>,
    /// Where the rules apply: empty or containing `mesh` means the mesh; a list without `mesh`
    /// names only gateways, and the document is then not applied (warning). Default: mesh.
    pub gateways: Vec<String>,
    /// HTTP rules, first match wins. Required (at least one).
    pub http: Vec<HttpRule>,
    /// Accepted; values other than `*` are ignored with a warning.
    pub export_to: Vec<String>,
}

impl VirtualService {
    /// False when `gateways` names only gateways (not `mesh`).
    pub fn applies_to_mesh(&self) -> bool {
        self.gateways.is_empty() || self.gateways.iter().any(|g| g == "mesh")
    }
}

/// One `http[]` rule.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HttpRule {
    /// Name, used as the route name. Default: empty.
    pub name: Option<String>,
    /// Conditions, any of which selects the rule; each becomes one route with the same action.
    /// Default: match everything.
    #[serde(rename = "match")]
    pub matches: Vec<HttpMatch>,
    /// Weighted destinations. Exclusive with `directResponse`; one of the two is required.
    pub route: Vec<RouteDestination>,
    /// Whole-request timeout, retries included; `0s` disables. Default: none.
    #[serde(deserialize_with = "duration::option")]
    pub timeout: Option<Duration>,
    /// Retry policy. Default: Istio's (see [`crate::translate::ISTIO_DEFAULT_RETRY_ON`]).
    pub retries: Option<Retries>,
    /// Injected faults. Default: none.
    pub fault: Option<Fault>,
    /// Mirror every request (share: `mirrorPercentage`) to this destination. Default: none.
    pub mirror: Option<Destination>,
    /// Share of requests mirrored to `mirror`. Default: 100 %.
    pub mirror_percentage: Option<PercentSpec>,
    /// Further mirrors, each with its own share. Default: none.
    pub mirrors: Vec<MirrorSpec>,
    /// Header changes. Default: none.
    pub headers: Option<Headers>,
    /// Path prefix and authority rewrite. Default: none.
    pub rewrite: Option<Rewrite>,
    /// Answer without forwarding. Exclusive with `route`.
    pub direct_response: Option<DirectResponse>,
}

/// One `match[]` item: every condition set must hold.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HttpMatch {
    /// Name, appended to the rule name in the route name. Default: empty.
    pub name: Option<String>,
    /// Path condition (exact, prefix or regex). Default: any path.
    pub uri: Option<StringMatchSpec>,
    /// Condition on `:scheme`. Default: any.
    pub scheme: Option<StringMatchSpec>,
    /// Condition on `:method`. Default: any.
    pub method: Option<StringMatchSpec>,
    /// Condition on `:authority`. Default: any.
    pub authority: Option<StringMatchSpec>,
    /// Header conditions by name (lower-cased); `{}` means "present". Default: none.
    pub headers: BTreeMap<String, StringMatchSpec>,
    /// Query parameter conditions by name; `{}` means "present". Default: none.
    pub query_params: BTreeMap<String, StringMatchSpec>,
    /// Headers that must not match (`{}`: must be absent). Default: none.
    pub without_headers: BTreeMap<String, StringMatchSpec>,
    /// Case-insensitive path matching. Default: false.
    pub ignore_uri_case: bool,
    /// Applies only to the route table of this port of the host. Default: every port.
    pub port: Option<Port>,
}

impl HttpMatch {
    /// Same conditions, ignoring the name.
    pub(crate) fn same_conditions(&self, other: &HttpMatch) -> bool {
        let unnamed = |m: &HttpMatch| HttpMatch {
            name: None,
            ..m.clone()
        };
        unnamed(self) == unnamed(other)
    }
}

/// `route[]`: a destination and its weight.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct RouteDestination {
    /// Where to send. Required.
    pub destination: Destination,
    /// Relative weight; ignored with a single destination. Default: 0.
    pub weight: Option<i64>,
    /// Header changes for this destination; allowed only with a single destination.
    pub headers: Option<Headers>,
}

/// A service, optionally a subset and a port.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Destination {
    /// Host of a `ServiceEntry` (short names are qualified with the namespace). Required.
    pub host: String,
    /// A subset defined by the host's `DestinationRule`. Default: all endpoints.
    pub subset: Option<String>,
    /// Port of the host. Default: the route table's port if the host has it, else the host's only
    /// port.
    pub port: Option<PortSelector>,
}

/// `{number: 9080}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct PortSelector {
    /// The port, 1–65535.
    pub number: Port,
}

/// `mirrors[]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct MirrorSpec {
    /// Where copies go. Required.
    pub destination: Destination,
    /// Share of requests mirrored. Default: 100 %.
    pub percentage: Option<PercentSpec>,
}

/// `retries`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Retries {
    /// Retries after the first attempt; 0 disables retries. Default: 2.
    pub attempts: Option<i64>,
    /// Timeout of each attempt. Default: none.
    #[serde(deserialize_with = "duration::option")]
    pub per_try_timeout: Option<Duration>,
    /// Comma-separated Envoy retry conditions; numbers are HTTP statuses to retry. Default:
    /// `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes` with 503.
    pub retry_on: Option<String>,
}

/// `fault`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Fault {
    /// Injected delay. Default: none.
    pub delay: Option<Delay>,
    /// Injected abort. Default: none.
    pub abort: Option<Abort>,
}

/// `fault.delay`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Delay {
    /// How long. Required.
    #[serde(deserialize_with = "duration::option")]
    pub fixed_delay: Option<Duration>,
    /// Share of requests delayed. Default: 0 % (as in Istio: none is delayed).
    pub percentage: Option<PercentSpec>,
}

/// `fault.abort`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Abort {
    /// HTTP status returned, 200–599. One of `httpStatus` and `grpcStatus` is required.
    pub http_status: Option<i64>,
    /// gRPC status name returned, e.g. `UNAVAILABLE`.
    pub grpc_status: Option<String>,
    /// Share of requests aborted. Default: 0 % (as in Istio: none is aborted).
    pub percentage: Option<PercentSpec>,
}

/// `headers`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Headers {
    /// Changes to the request. Default: none.
    pub request: Option<HeaderOps>,
    /// Changes to the response. Default: none.
    pub response: Option<HeaderOps>,
}

/// `headers.request` / `headers.response`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct HeaderOps {
    /// Headers set, replacing existing values.
    pub set: BTreeMap<String, String>,
    /// Headers appended.
    pub add: BTreeMap<String, String>,
    /// Headers removed.
    pub remove: Vec<String>,
}

/// `rewrite`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Rewrite {
    /// Replaces the matched path (prefix). Default: unchanged.
    pub uri: Option<String>,
    /// Replaces the authority. Default: unchanged.
    pub authority: Option<String>,
}

/// `directResponse`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct DirectResponse {
    /// HTTP status, 200–599. Required.
    pub status: u16,
    /// Body. Default: empty.
    pub body: Option<Body>,
}

/// `directResponse.body`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Body {
    /// The body as text.
    pub string: Option<String>,
}

/// gRPC status names as Istio writes them in `fault.abort.grpcStatus`, by code.
pub(crate) const GRPC_STATUS_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The code of a gRPC status name.
pub(crate) fn grpc_status_code(name: &str) -> Option<u32> {
    GRPC_STATUS_NAMES
        .iter()
        .position(|n| *n == name)
        .map(|p| p as u32)
}
