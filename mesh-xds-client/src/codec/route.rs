//! Route tables: `RouteConfiguration` with virtual hosts, matches, forwarding policies and faults.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::core::v3::{
    DataSource, HeaderValue, HeaderValueOption, RuntimeFractionalPercent, data_source,
    header_value_option::HeaderAppendAction,
};
use envoy_types::pb::envoy::config::route::v3::FilterConfig;
use envoy_types::pb::envoy::config::route::v3::{
    DirectResponseAction, HeaderMatcher, QueryParameterMatcher, RetryPolicy, Route,
    RouteAction as PbRouteAction, RouteConfiguration, RouteMatch as PbRouteMatch, VirtualHost,
    WeightedCluster, header_matcher::HeaderMatchSpecifier, query_parameter_matcher,
    retry_policy::RetryBackOff, route::Action, route_action, route_match::PathSpecifier,
    weighted_cluster::ClusterWeight,
};
use envoy_types::pb::envoy::extensions::filters::common::fault::v3::{
    FaultDelay, fault_delay::FaultDelaySecifier,
};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{
    FaultAbort, HttpFault, fault_abort::ErrorType,
};
use envoy_types::pb::envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit;
use envoy_types::pb::envoy::r#type::matcher::v3::{
    RegexMatcher, StringMatcher, string_matcher::MatchPattern,
};
use envoy_types::pb::envoy::r#type::v3::TokenBucket;
use envoy_types::pb::google::protobuf::BoolValue;
use mesh_core::StringMatch;
use mesh_core::route::{
    AbortStatus, FaultPolicy, ForwardAction, HashPolicy, HeaderMatch, HeaderMutation, PathMatch,
    RetryPolicy as ModelRetry, Route as ModelRoute, RouteAction, RouteMatch, RouteTable,
    VirtualHost as ModelVirtualHost,
};
use mesh_core::{Percent, Regex};

use super::listener::FAULT_FILTER;
use super::{duration, fractional, to_any, u32v};

/// Envoy's local rate limit filter. Its per-route config is wrapped in a `FilterConfig` marked
/// optional, so clients without the filter (proxyless gRPC) ignore it instead of NACKing the
/// route table.
pub(super) const RATE_LIMIT_FILTER: &str = "envoy.filters.http.local_ratelimit";

/// Envoy rejects direct-response bodies above this size unless the route configuration raises
/// `max_direct_response_body_size_bytes`.
const ENVOY_DEFAULT_MAX_BODY: usize = 4096;

/// Encodes a route table.
///
/// A route without a timeout gets `timeout: 0s`, which disables Envoy's implicit 15 s default (the
/// model promises no implicit timeout); gRPC ignores `timeout` and reads `max_stream_duration`,
/// which is set only when the model has a timeout (gRFC A31).
pub fn encode_route_table(t: &RouteTable) -> RouteConfiguration {
    let largest_body = t
        .virtual_hosts
        .iter()
        .flat_map(|vh| &vh.routes)
        .filter_map(|r| match &r.action {
            RouteAction::DirectResponse { body: Some(b), .. } => Some(b.len()),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    RouteConfiguration {
        name: t.name.clone(),
        virtual_hosts: t.virtual_hosts.iter().map(virtual_host).collect(),
        max_direct_response_body_size_bytes: (largest_body > ENVOY_DEFAULT_MAX_BODY)
            .then(|| u32v(u32::try_from(largest_body).unwrap_or(u32::MAX))),
        ..Default::default()
    }
}

fn virtual_host(vh: &ModelVirtualHost) -> VirtualHost {
    VirtualHost {
        name: vh.name.clone(),
        domains: vh.domains.clone(),
        routes: vh.routes.iter().map(route).collect(),
        ..Default::default()
    }
}

fn route(r: &ModelRoute) -> Route {
    let action = match &r.action {
        RouteAction::Forward(f) => Action::Route(forward(f)),
        RouteAction::DirectResponse { status, body } => {
            Action::DirectResponse(DirectResponseAction {
                status: u32::from(*status),
                body: body.as_ref().map(|b| DataSource {
                    specifier: Some(data_source::Specifier::InlineString(b.clone())),
                    ..Default::default()
                }),
                ..Default::default()
            })
        }
    };
    let mut typed_per_filter_config = HashMap::new();
    if let Some(f) = &r.fault {
        typed_per_filter_config.insert(FAULT_FILTER.to_owned(), to_any(&fault(f)));
    }
    if let Some(rl) = &r.rate_limit {
        typed_per_filter_config.insert(RATE_LIMIT_FILTER.to_owned(), to_any(&rate_limit(rl)));
    }
    Route {
        name: r.name.clone(),
        r#match: Some(route_match(&r.matcher)),
        action: Some(action),
        typed_per_filter_config,
        request_headers_to_add: headers_to_add(&r.request_headers),
        request_headers_to_remove: r.request_headers.remove.clone(),
        response_headers_to_add: headers_to_add(&r.response_headers),
        response_headers_to_remove: r.response_headers.remove.clone(),
        ..Default::default()
    }
}

fn route_match(m: &RouteMatch) -> PbRouteMatch {
    let path = match &m.path {
        PathMatch::Prefix(p) => PathSpecifier::Prefix(p.clone()),
        PathMatch::Exact(p) => PathSpecifier::Path(p.clone()),
        PathMatch::Regex(r) => PathSpecifier::SafeRegex(regex(r)),
    };
    PbRouteMatch {
        path_specifier: Some(path),
        case_sensitive: (!m.case_sensitive).then_some(BoolValue { value: false }),
        headers: m.headers.iter().map(header_matcher).collect(),
        query_parameters: m
            .query_params
            .iter()
            .map(|q| {
                use query_parameter_matcher::QueryParameterMatchSpecifier as Spec;
                QueryParameterMatcher {
                    name: q.name.clone(),
                    query_parameter_match_specifier: Some(match value_matcher(q.value.as_ref()) {
                        Some(m) => Spec::StringMatch(m),
                        None => Spec::PresentMatch(true),
                    }),
                }
            })
            .collect(),
        ..Default::default()
    }
}

pub(super) fn header_matcher(h: &HeaderMatch) -> HeaderMatcher {
    HeaderMatcher {
        name: h.name.clone(),
        invert_match: h.invert,
        header_match_specifier: Some(match value_matcher(h.value.as_ref()) {
            Some(m) => HeaderMatchSpecifier::StringMatch(m),
            None => HeaderMatchSpecifier::PresentMatch(true),
        }),
        ..Default::default()
    }
}

/// The `StringMatcher` for a header or query-parameter value, or `None` when any value matches
/// (`present_match`).
///
/// Envoy and gRPC (gRFC A63) reject an empty prefix, suffix, substring or regex; the model allows
/// them, so they are written as what they mean: an empty prefix, suffix or substring matches every
/// value, and an empty full-match regex matches only the empty value.
pub(super) fn value_matcher(m: Option<&StringMatch>) -> Option<StringMatcher> {
    let pattern = match m? {
        StringMatch::Prefix(s) | StringMatch::Suffix(s) | StringMatch::Contains(s)
            if s.is_empty() =>
        {
            return None;
        }
        StringMatch::Regex(r) if r.as_str().is_empty() => MatchPattern::Exact(String::new()),
        StringMatch::Exact(s) => MatchPattern::Exact(s.clone()),
        StringMatch::Prefix(s) => MatchPattern::Prefix(s.clone()),
        StringMatch::Suffix(s) => MatchPattern::Suffix(s.clone()),
        StringMatch::Contains(s) => MatchPattern::Contains(s.clone()),
        StringMatch::Regex(r) => MatchPattern::SafeRegex(regex(r)),
    };
    Some(StringMatcher {
        match_pattern: Some(pattern),
        ignore_case: false,
    })
}

/// A `RegexMatcher` without an engine: Envoy's default (RE2) applies; the pattern is the user's
/// text, which Envoy and gRPC match against the whole value as the model does.
fn regex(r: &Regex) -> RegexMatcher {
    RegexMatcher {
        regex: r.as_str().to_owned(),
        engine_type: None,
    }
}

fn forward(f: &ForwardAction) -> PbRouteAction {
    use route_action::ClusterSpecifier;
    let cluster_specifier = match f.clusters.as_slice() {
        [one] => ClusterSpecifier::Cluster(one.name.clone()),
        many => ClusterSpecifier::WeightedClusters(WeightedCluster {
            clusters: many
                .iter()
                .map(|c| ClusterWeight {
                    name: c.name.clone(),
                    weight: Some(u32v(c.weight)),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
    };
    PbRouteAction {
        cluster_specifier: Some(cluster_specifier),
        timeout: Some(duration(f.timeout.unwrap_or_default())),
        max_stream_duration: (f.timeout.is_some() || f.grpc_timeout_header_max.is_some()).then(
            || route_action::MaxStreamDuration {
                max_stream_duration: f.timeout.map(duration),
                grpc_timeout_header_max: f.grpc_timeout_header_max.map(duration),
                ..Default::default()
            },
        ),
        retry_policy: f.retry.as_ref().map(retry_policy),
        request_mirror_policies: f
            .mirrors
            .iter()
            .map(|m| route_action::RequestMirrorPolicy {
                cluster: m.cluster.clone(),
                runtime_fraction: (m.percent < Percent::ALL).then(|| RuntimeFractionalPercent {
                    default_value: Some(fractional(m.percent)),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect(),
        prefix_rewrite: f.prefix_rewrite.clone().unwrap_or_default(),
        host_rewrite_specifier: f
            .host_rewrite
            .clone()
            .map(route_action::HostRewriteSpecifier::HostRewriteLiteral),
        hash_policy: f.hash_policies.iter().map(hash_policy).collect(),
        ..Default::default()
    }
}

fn retry_policy(r: &ModelRetry) -> RetryPolicy {
    RetryPolicy {
        retry_on: r
            .retry_on
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(","),
        num_retries: Some(u32v(r.num_retries)),
        per_try_timeout: r.per_try_timeout.map(duration),
        retriable_status_codes: r.retriable_status_codes.iter().map(|&s| s.into()).collect(),
        retriable_headers: r.retriable_headers.iter().map(header_matcher).collect(),
        retry_back_off: Some(RetryBackOff {
            base_interval: Some(duration(r.backoff_base)),
            max_interval: Some(duration(r.backoff_max)),
        }),
        ..Default::default()
    }
}

fn hash_policy(h: &HashPolicy) -> route_action::HashPolicy {
    use route_action::hash_policy::{
        ConnectionProperties, Cookie, Header, PolicySpecifier, QueryParameter,
    };
    let spec = match h {
        HashPolicy::Header(name) => PolicySpecifier::Header(Header {
            header_name: name.clone(),
            regex_rewrite: None,
        }),
        HashPolicy::Cookie { name, ttl } => PolicySpecifier::Cookie(Cookie {
            name: name.clone(),
            ttl: ttl.map(duration),
            ..Default::default()
        }),
        HashPolicy::SourceIp => {
            PolicySpecifier::ConnectionProperties(ConnectionProperties { source_ip: true })
        }
        HashPolicy::QueryParam(name) => {
            PolicySpecifier::QueryParameter(QueryParameter { name: name.clone() })
        }
    };
    route_action::HashPolicy {
        terminal: false,
        policy_specifier: Some(spec),
    }
}

fn headers_to_add(m: &HeaderMutation) -> Vec<HeaderValueOption> {
    let set = m
        .set
        .iter()
        .map(|kv| (kv, HeaderAppendAction::OverwriteIfExistsOrAdd));
    let add = m
        .add
        .iter()
        .map(|kv| (kv, HeaderAppendAction::AppendIfExistsOrAdd));
    set.chain(add)
        .map(|((key, value), action)| HeaderValueOption {
            header: Some(HeaderValue {
                key: key.clone(),
                value: value.clone(),
                ..Default::default()
            }),
            append_action: action as i32,
            ..Default::default()
        })
        .collect()
}

/// The per-route `HTTPFault` (gRFC A33 reads the same message).
pub(super) fn fault(f: &FaultPolicy) -> HttpFault {
    HttpFault {
        // Envoy rejects a zero `fixed_delay`; a zero delay is no delay, so it is left out.
        delay: f
            .delay
            .as_ref()
            .filter(|d| !d.delay.is_zero())
            .map(|d| FaultDelay {
                percentage: Some(fractional(d.percent)),
                fault_delay_secifier: Some(FaultDelaySecifier::FixedDelay(duration(d.delay))),
            }),
        abort: f.abort.as_ref().map(|a| FaultAbort {
            percentage: Some(fractional(a.percent)),
            error_type: Some(match a.status {
                AbortStatus::Http(s) => ErrorType::HttpStatus(u32::from(s)),
                AbortStatus::Grpc(c) => ErrorType::GrpcStatus(c),
            }),
            ..Default::default()
        }),
        headers: f.headers.iter().map(header_matcher).collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;

/// The per-route `LocalRateLimit`, enabled and enforced for every request, in an optional
/// `FilterConfig`.
fn rate_limit(rl: &mesh_core::route::LocalRateLimit) -> FilterConfig {
    FilterConfig {
        config: Some(to_any(&local_rate_limit(rl))),
        is_optional: true,
        disabled: false,
    }
}

/// The `LocalRateLimit` message, enabled and enforced for every request.
pub(super) fn local_rate_limit(rl: &mesh_core::route::LocalRateLimit) -> LocalRateLimit {
    let all = || RuntimeFractionalPercent {
        default_value: Some(fractional(Percent::ALL)),
        runtime_key: String::new(),
    };
    LocalRateLimit {
        stat_prefix: "http_local_rate_limiter".into(),
        token_bucket: Some(TokenBucket {
            max_tokens: rl.max_tokens,
            tokens_per_fill: Some(u32v(rl.tokens_per_fill)),
            fill_interval: Some(duration(rl.fill_interval)),
        }),
        filter_enabled: Some(all()),
        filter_enforced: Some(all()),
        ..Default::default()
    }
}
