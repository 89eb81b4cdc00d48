//! Route tables: Envoy's `RouteConfiguration` without the protobuf.
//!
//! A [`RouteTable`] holds virtual hosts chosen by authority; each holds [`Route`]s tried in order,
//! first match wins. A route forwards to weighted clusters (with timeout, retry, mirror and rewrite
//! policies) or answers directly.

use std::collections::HashSet;
use std::time::Duration;

use serde::Serialize;

use crate::matcher::{Regex, StringMatch};
use crate::validate::{FieldErrors, Percent, Validate};

/// A named set of virtual hosts (`RouteConfiguration`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteTable {
    /// Resource name, e.g. `reviews.default.svc.cluster.local:9080`.
    pub name: String,
    /// Virtual hosts, chosen by the request's authority.
    pub virtual_hosts: Vec<VirtualHost>,
}

/// Routes for a set of domains (`VirtualHost`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VirtualHost {
    /// Name, unique in its table.
    pub name: String,
    /// Authorities served: exact, `*.suffix`, `prefix*` or `*`; a `:port` suffix is allowed.
    pub domains: Vec<String>,
    /// Routes in order; the first whose match holds is used.
    pub routes: Vec<Route>,
}

/// One route: a match and what to do with matching requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// Name for debugging and metrics; may be empty.
    pub name: String,
    /// When this route applies.
    #[serde(rename = "match")]
    pub matcher: RouteMatch,
    /// What happens to a matching request.
    pub action: RouteAction,
    /// Headers changed on the request before it is sent. Default: none.
    pub request_headers: HeaderMutation,
    /// Headers changed on the response before it is returned. Default: none.
    pub response_headers: HeaderMutation,
    /// Injected faults. Default: none.
    pub fault: Option<FaultPolicy>,
    /// Local rate limit of this route. Default: none.
    pub rate_limit: Option<LocalRateLimit>,
}

impl Route {
    /// A route named `name` that sends every request to `action`, with no header changes, fault
    /// or rate limit.
    pub fn new(name: impl Into<String>, action: RouteAction) -> Self {
        Route {
            name: name.into(),
            matcher: RouteMatch::default(),
            action,
            request_headers: HeaderMutation::default(),
            response_headers: HeaderMutation::default(),
            fault: None,
            rate_limit: None,
        }
    }
}

/// Envoy's local rate limit (`envoy.filters.http.local_ratelimit`) for one route: a token bucket
/// per client process. A request that finds the bucket empty is answered 429 without being sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalRateLimit {
    /// Bucket size: the largest burst.
    pub max_tokens: u32,
    /// Tokens added per fill.
    pub tokens_per_fill: u32,
    /// Time between fills; Envoy requires at least 50 ms.
    pub fill_interval: Duration,
}

/// Conditions that must all hold (`RouteMatch`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteMatch {
    /// Path condition.
    pub path: PathMatch,
    /// Whether path matching is case sensitive. Default: true.
    pub case_sensitive: bool,
    /// Header conditions; the method is the pseudo-header `:method`.
    pub headers: Vec<HeaderMatch>,
    /// Query parameter conditions.
    pub query_params: Vec<QueryParamMatch>,
}

impl Default for RouteMatch {
    fn default() -> Self {
        Self {
            path: PathMatch::Prefix("/".into()),
            case_sensitive: true,
            headers: Vec::new(),
            query_params: Vec::new(),
        }
    }
}

/// How the path (without the query string) is compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathMatch {
    /// Path starts with this.
    Prefix(String),
    /// Path equals this.
    Exact(String),
    /// Whole path matches this regex.
    Regex(Regex),
}

/// A condition on one header (`HeaderMatcher`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeaderMatch {
    /// Header name, lower case; `:method`, `:authority`, `:path` are pseudo-headers.
    pub name: String,
    /// `None` means the header must be present, whatever its value.
    pub value: Option<StringMatch>,
    /// Inverts the result. Default: false.
    pub invert: bool,
}

impl HeaderMatch {
    /// True when a request whose header `name` has `value` matches: `None` is an absent header,
    /// and a repeated header is its values joined with `,` (Envoy's reading). The one place
    /// this rule is written; routes, faults, retries and RBAC all call it.
    #[inline]
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        let matched = match (&self.value, value) {
            (None, v) => v.is_some(),
            (Some(_), None) => false,
            (Some(m), Some(v)) => m.matches(v),
        };
        matched != self.invert
    }
}

/// A condition on one query parameter (`QueryParameterMatcher`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueryParamMatch {
    /// Parameter name.
    pub name: String,
    /// `None` means the parameter must be present, whatever its value.
    pub value: Option<StringMatch>,
}

/// What a route does.
// Routes are built once per config and read on every request; boxing the forward action would add
// a pointer chase to the hot path to save memory on the rare direct responses.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteAction {
    /// Forward to one of several clusters.
    Forward(ForwardAction),
    /// Answer without contacting any backend.
    DirectResponse {
        /// HTTP status, 200–599.
        status: u16,
        /// Body. Default: empty.
        body: Option<String>,
    },
}

/// Forwarding to clusters (`RouteAction` with `weighted_clusters`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForwardAction {
    /// Clusters chosen at random in proportion to weight; one entry means no split.
    pub clusters: Vec<WeightedCluster>,
    /// Whole-request timeout, retries included. Default: none (Envoy's 15 s default is not applied
    /// implicitly; the control plane sets what the user wrote).
    pub timeout: Option<Duration>,
    /// For gRPC requests (gRFC A31, Envoy's `max_stream_duration.grpc_timeout_header_max`): when
    /// set, the request's own deadline (`grpc-timeout`) bounds it instead of `timeout`, capped at
    /// this value; zero means uncapped (the caller's deadline, or none). Default: none (`timeout`
    /// applies to gRPC requests too).
    pub grpc_timeout_header_max: Option<Duration>,
    /// Retry policy. Default: no retries.
    pub retry: Option<RetryPolicy>,
    /// Copies sent to other clusters. Default: none.
    pub mirrors: Vec<MirrorPolicy>,
    /// Replaces the matched path prefix. Default: none.
    pub prefix_rewrite: Option<String>,
    /// Replaces the authority. Default: none.
    pub host_rewrite: Option<String>,
    /// How a hash for ring-hash balancing is computed. Default: none.
    pub hash_policies: Vec<HashPolicy>,
}

impl ForwardAction {
    /// Forwarding to a single cluster with no policies.
    pub fn to_cluster(name: impl Into<String>) -> Self {
        Self {
            clusters: vec![WeightedCluster {
                name: name.into(),
                weight: 1,
            }],
            timeout: None,
            grpc_timeout_header_max: None,
            retry: None,
            mirrors: Vec::new(),
            prefix_rewrite: None,
            host_rewrite: None,
            hash_policies: Vec::new(),
        }
    }
}

/// One target of a split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WeightedCluster {
    /// Cluster name.
    pub name: String,
    /// Relative weight; the weights of a route must not sum to zero.
    pub weight: u32,
}

/// Envoy's `RetryPolicy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetryPolicy {
    /// Conditions that allow a retry.
    pub retry_on: Vec<RetryOn>,
    /// Retries after the first attempt. Default: 1 (Envoy's default).
    pub num_retries: u32,
    /// Timeout of each attempt. Default: none (the route timeout applies).
    pub per_try_timeout: Option<Duration>,
    /// Statuses retried under [`RetryOn::RetriableStatusCodes`].
    pub retriable_status_codes: Vec<u16>,
    /// Response headers that make a response retriable under [`RetryOn::RetriableHeaders`] (any
    /// one matching is enough). Default: none.
    pub retriable_headers: Vec<HeaderMatch>,
    /// Backoff base interval. Default: 25 ms.
    pub backoff_base: Duration,
    /// Backoff cap. Default: 10 × the base.
    pub backoff_max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retry_on: Vec::new(),
            num_retries: 1,
            per_try_timeout: None,
            retriable_status_codes: Vec::new(),
            retriable_headers: Vec::new(),
            backoff_base: Duration::from_millis(25),
            backoff_max: Duration::from_millis(250),
        }
    }
}

/// A condition from Envoy's `x-envoy-retry-on` and `x-envoy-retry-grpc-on` vocabularies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetryOn {
    /// Any 5xx, reset or connect failure.
    #[serde(rename = "5xx")]
    FiveXx,
    /// 502, 503, 504.
    GatewayError,
    /// The connection was reset or closed before a response.
    Reset,
    /// The connection could not be made.
    ConnectFailure,
    /// 409.
    Retriable4xx,
    /// HTTP/2 REFUSED_STREAM.
    RefusedStream,
    /// The statuses listed in `retriable_status_codes`.
    RetriableStatusCodes,
    /// A response carrying a header matched by `retriable_headers`.
    RetriableHeaders,
    /// gRPC CANCELLED.
    Cancelled,
    /// gRPC DEADLINE_EXCEEDED.
    DeadlineExceeded,
    /// gRPC INTERNAL.
    Internal,
    /// gRPC RESOURCE_EXHAUSTED.
    ResourceExhausted,
    /// gRPC UNAVAILABLE.
    Unavailable,
}

impl RetryOn {
    /// Every condition with its Envoy spelling.
    pub const ALL: [(RetryOn, &'static str); 13] = [
        (RetryOn::FiveXx, "5xx"),
        (RetryOn::GatewayError, "gateway-error"),
        (RetryOn::Reset, "reset"),
        (RetryOn::ConnectFailure, "connect-failure"),
        (RetryOn::Retriable4xx, "retriable-4xx"),
        (RetryOn::RefusedStream, "refused-stream"),
        (RetryOn::RetriableStatusCodes, "retriable-status-codes"),
        (RetryOn::RetriableHeaders, "retriable-headers"),
        (RetryOn::Cancelled, "cancelled"),
        (RetryOn::DeadlineExceeded, "deadline-exceeded"),
        (RetryOn::Internal, "internal"),
        (RetryOn::ResourceExhausted, "resource-exhausted"),
        (RetryOn::Unavailable, "unavailable"),
    ];

    /// Parses Envoy's spelling (`5xx`, `gateway-error`, …).
    pub fn parse(s: &str) -> Option<RetryOn> {
        Self::ALL.iter().find(|(_, n)| *n == s).map(|(r, _)| *r)
    }

    /// Envoy's spelling.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(r, _)| *r == self)
            .map(|(_, n)| *n)
            .unwrap_or("")
    }
}

/// A copy of each request sent to another cluster (`RequestMirrorPolicy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MirrorPolicy {
    /// Cluster that receives the copies.
    pub cluster: String,
    /// Share of requests mirrored. Default: 100 %.
    pub percent: Percent,
}

/// Header changes (`request_headers_to_add` / `_to_remove`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HeaderMutation {
    /// Headers set, replacing any existing value.
    pub set: Vec<(String, String)>,
    /// Headers appended to any existing value.
    pub add: Vec<(String, String)>,
    /// Headers removed.
    pub remove: Vec<String>,
}

impl HeaderMutation {
    /// True when nothing changes.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }
}

/// Envoy's `HTTPFault` per route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultPolicy {
    /// A fixed delay before forwarding.
    pub delay: Option<FaultDelay>,
    /// An answer without forwarding.
    pub abort: Option<FaultAbort>,
    /// The fault applies only to requests matching all of these. Default: all requests.
    pub headers: Vec<HeaderMatch>,
}

/// Injected delay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultDelay {
    /// How long.
    pub delay: Duration,
    /// Share of requests delayed.
    pub percent: Percent,
}

/// Injected abort.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultAbort {
    /// What the caller receives.
    pub status: AbortStatus,
    /// Share of requests aborted.
    pub percent: Percent,
}

/// The status of an injected abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AbortStatus {
    /// An HTTP status, 200–599.
    Http(u16),
    /// A gRPC status code, 0–16.
    Grpc(u32),
}

/// What the ring-hash key is computed from (`RouteAction.HashPolicy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HashPolicy {
    /// A request header.
    Header(String),
    /// A cookie (generated with this TTL if absent and a TTL is given).
    Cookie {
        /// Cookie name.
        name: String,
        /// Lifetime of a generated cookie. Default: never generated.
        ttl: Option<Duration>,
    },
    /// The caller's address.
    SourceIp,
    /// A query parameter.
    QueryParam(String),
}

impl Validate for RouteTable {
    fn validate(&self) -> Result<(), FieldErrors> {
        let mut errs = FieldErrors::default();
        if self.name.is_empty() {
            errs.push("name", "must not be empty");
        }
        let mut names = HashSet::new();
        let mut domains = HashSet::new();
        for (i, vh) in self.virtual_hosts.iter().enumerate() {
            let at = format!("virtual_hosts[{i}]");
            if vh.name.is_empty() {
                errs.push(format!("{at}.name"), "must not be empty");
            }
            if !names.insert(vh.name.as_str()) {
                errs.push(
                    format!("{at}.name"),
                    format!("duplicate virtual host {:?}", vh.name),
                );
            }
            if vh.domains.is_empty() {
                errs.push(format!("{at}.domains"), "must list at least one domain");
            }
            for (j, d) in vh.domains.iter().enumerate() {
                if !domains.insert(d.to_ascii_lowercase()) {
                    errs.push(
                        format!("{at}.domains[{j}]"),
                        format!("domain {d:?} is served by another virtual host"),
                    );
                }
                if d.is_empty() || (d.len() > 1 && d[1..d.len() - 1].contains('*')) {
                    errs.push(
                        format!("{at}.domains[{j}]"),
                        format!("{d:?} is not a valid domain (wildcards only at the start or end)"),
                    );
                }
            }
            for (j, r) in vh.routes.iter().enumerate() {
                if let Err(e) = r.validate() {
                    errs.extend_at(&format!("{at}.routes[{j}]"), e);
                }
            }
        }
        errs.into_result()
    }
}

impl Validate for Route {
    fn validate(&self) -> Result<(), FieldErrors> {
        let mut errs = FieldErrors::default();
        if let PathMatch::Prefix(p) | PathMatch::Exact(p) = &self.matcher.path
            && !p.starts_with('/')
        {
            errs.push("match.path", format!("{p:?} must start with '/'"));
        }
        for (i, h) in self.matcher.headers.iter().enumerate() {
            if h.name.is_empty() || http_name_invalid(&h.name) {
                errs.push(
                    format!("match.headers[{i}].name"),
                    format!("{:?} is not a valid header name", h.name),
                );
            }
        }
        match &self.action {
            RouteAction::DirectResponse { status, .. } => {
                if !(200..=599).contains(status) {
                    errs.push(
                        "action.direct_response.status",
                        format!("{status} is not within 200–599"),
                    );
                }
            }
            RouteAction::Forward(f) => {
                if f.clusters.is_empty() {
                    errs.push("action.clusters", "must name at least one cluster");
                } else if f.clusters.iter().map(|c| u64::from(c.weight)).sum::<u64>() == 0 {
                    errs.push("action.clusters", "weights sum to zero");
                }
                for (i, c) in f.clusters.iter().enumerate() {
                    if c.name.is_empty() {
                        errs.push(format!("action.clusters[{i}].name"), "must not be empty");
                    }
                }
                if f.timeout == Some(Duration::ZERO) {
                    // Envoy reads 0 as "no timeout"; we keep it explicit to avoid surprise.
                    errs.push(
                        "action.timeout",
                        "0 disables the timeout; omit the field instead",
                    );
                }
                if let Some(r) = &f.retry {
                    if r.backoff_base.is_zero() {
                        errs.push("action.retry.backoff_base", "must be greater than zero");
                    }
                    if r.backoff_max < r.backoff_base {
                        errs.push(
                            "action.retry.backoff_max",
                            "must not be less than backoff_base",
                        );
                    }
                    for (i, s) in r.retriable_status_codes.iter().enumerate() {
                        if !(100..=599).contains(s) {
                            errs.push(
                                format!("action.retry.retriable_status_codes[{i}]"),
                                format!("{s} is not an HTTP status"),
                            );
                        }
                    }
                }
                for (i, m) in f.mirrors.iter().enumerate() {
                    if m.cluster.is_empty() {
                        errs.push(format!("action.mirrors[{i}].cluster"), "must not be empty");
                    }
                    if !m.percent.is_valid() {
                        errs.push(
                            format!("action.mirrors[{i}].percent"),
                            "must be within 0–100",
                        );
                    }
                }
            }
        }
        if let Some(rl) = &self.rate_limit {
            if rl.max_tokens == 0 || rl.tokens_per_fill == 0 {
                errs.push(
                    "rate_limit",
                    "max_tokens and tokens_per_fill must be at least 1",
                );
            }
            if rl.fill_interval < Duration::from_millis(50) {
                errs.push(
                    "rate_limit.fill_interval",
                    "must be at least 50ms (Envoy's minimum)",
                );
            }
        }
        if let Some(fault) = &self.fault {
            if let Some(d) = &fault.delay
                && !d.percent.is_valid()
            {
                errs.push("fault.delay.percent", "must be within 0–100");
            }
            if let Some(a) = &fault.abort {
                if !a.percent.is_valid() {
                    errs.push("fault.abort.percent", "must be within 0–100");
                }
                match a.status {
                    AbortStatus::Http(s) if !(200..=599).contains(&s) => {
                        errs.push("fault.abort.status", format!("{s} is not within 200–599"))
                    }
                    AbortStatus::Grpc(c) if c > 16 => errs.push(
                        "fault.abort.status",
                        format!("{c} is not a gRPC status code (0–16)"),
                    ),
                    _ => {}
                }
            }
        }
        for (which, m) in [
            ("request_headers", &self.request_headers),
            ("response_headers", &self.response_headers),
        ] {
            let changed = m.set.iter().chain(m.add.iter()).map(|(k, _)| k);
            for (i, k) in changed.chain(m.remove.iter()).enumerate() {
                // Envoy refuses pseudo-headers and `host` here; `:authority` is changed by rewrite.
                if http_name_invalid(k) || k.starts_with(':') || k.eq_ignore_ascii_case("host") {
                    errs.push(
                        format!("{which}[{i}]"),
                        format!("{k:?} is not a header name that may be changed"),
                    );
                }
            }
        }
        for (i, q) in self.matcher.query_params.iter().enumerate() {
            if q.name.is_empty() {
                errs.push(format!("match.query_params[{i}].name"), "must not be empty");
            }
        }
        if let RouteAction::Forward(f) = &self.action {
            if f.clusters.iter().map(|c| u64::from(c.weight)).sum::<u64>() > u64::from(u32::MAX) {
                errs.push("action.clusters", "weights sum to more than 4294967295");
            }
            for (i, h) in f.hash_policies.iter().enumerate() {
                let empty = match h {
                    HashPolicy::Header(n) | HashPolicy::QueryParam(n) => n.is_empty(),
                    HashPolicy::Cookie { name, .. } => name.is_empty(),
                    HashPolicy::SourceIp => false,
                };
                if empty {
                    errs.push(
                        format!("action.hash_policies[{i}]"),
                        "the name must not be empty",
                    );
                }
            }
        }
        errs.into_result()
    }
}

pub(crate) fn http_name_invalid(name: &str) -> bool {
    let name = name.strip_prefix(':').unwrap_or(name);
    name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
