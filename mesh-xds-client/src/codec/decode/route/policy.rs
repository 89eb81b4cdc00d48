//! Route policies: retries, mirrors and hash policies.

use std::time::Duration;

use envoy_types::pb::envoy::config::route::v3::{
    RetryPolicy as PbRetry, retry_policy::RetryBackOff, route_action,
};
use mesh_core::Percent;
use mesh_core::route::{HashPolicy, MirrorPolicy, RetryOn, RetryPolicy};

use crate::codec::decode::{Ctx, duration, fractional, join};

/// Envoy's `RetryPolicy`: `num_retries` defaults to 1, the back-off to 25 ms with a cap of ten
/// times the base, and a zero `per_try_timeout` means none. Unknown `retry_on` conditions are
/// warnings; `retriable_request_headers` is an error (ignoring it would retry requests it
/// excludes, such as non-idempotent ones).
pub(super) fn retry_policy(ctx: &mut Ctx, at: &str, r: PbRetry) -> Option<RetryPolicy> {
    let PbRetry {
        retry_on,
        num_retries,
        per_try_timeout,
        retriable_status_codes,
        retry_back_off,
        retriable_request_headers,
        per_try_idle_timeout,
        retry_priority,
        retry_host_predicate,
        retry_options_predicates,
        host_selection_retry_max_attempts,
        rate_limited_retry_back_off,
        retriable_headers,
        refresh_cluster_on_retry,
    } = r;
    ignore_set!(
        ctx,
        at,
        per_try_idle_timeout,
        retry_priority,
        retry_host_predicate,
        retry_options_predicates,
        host_selection_retry_max_attempts,
        rate_limited_retry_back_off,
        refresh_cluster_on_retry,
    );
    if !retriable_request_headers.is_empty() {
        let reason = "not supported; ignoring it would retry requests it excludes";
        ctx.error(join(at, "retriable_request_headers"), reason);
    }
    let mut policy = RetryPolicy {
        num_retries: num_retries.map_or(1, |n| n.value),
        ..RetryPolicy::default()
    };
    for token in retry_on.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        match RetryOn::parse(token) {
            Some(c) => policy.retry_on.push(c),
            None => ctx.warn(
                join(at, "retry_on"),
                format!("condition {token:?} is not supported; ignored"),
            ),
        }
    }
    if let Some(t) = per_try_timeout {
        policy.per_try_timeout =
            duration(ctx, &join(at, "per_try_timeout"), &t).filter(|t| !t.is_zero());
    }
    policy.retriable_headers = retriable_headers
        .into_iter()
        .enumerate()
        .map(|(i, h)| {
            super::matching::header_match(ctx, &format!("{at}.retriable_headers[{i}]"), h)
        })
        .collect();
    for (i, s) in retriable_status_codes.into_iter().enumerate() {
        match u16::try_from(s) {
            Ok(s) => policy.retriable_status_codes.push(s),
            Err(_) => ctx.error(
                format!("{at}.retriable_status_codes[{i}]"),
                format!("{s} is not an HTTP status"),
            ),
        }
    }
    if let Some(RetryBackOff {
        base_interval,
        max_interval,
    }) = retry_back_off
    {
        let at = join(at, "retry_back_off");
        let Some(base) = base_interval else {
            ctx.error(join(&at, "base_interval"), "required");
            return None;
        };
        policy.backoff_base = duration(ctx, &join(&at, "base_interval"), &base)?;
        policy.backoff_max = match max_interval {
            Some(m) => duration(ctx, &join(&at, "max_interval"), &m)?,
            None => policy.backoff_base.saturating_mul(10),
        };
    }
    Some(policy)
}

/// Mirrors; one whose cluster comes from a header is left out with a warning (not mirroring
/// changes nothing for the caller). Without `runtime_fraction` every request is mirrored.
pub(super) fn mirrors(
    ctx: &mut Ctx,
    at: &str,
    policies: Vec<route_action::RequestMirrorPolicy>,
) -> Vec<MirrorPolicy> {
    let mut out = Vec::with_capacity(policies.len());
    for (i, m) in policies.into_iter().enumerate() {
        let at = format!("{at}[{i}]");
        let route_action::RequestMirrorPolicy {
            cluster,
            cluster_header,
            runtime_fraction,
            trace_sampled,
            disable_shadow_host_suffix_append,
            request_headers_mutations,
            host_rewrite_literal,
        } = m;
        ignore_set!(
            ctx,
            &at,
            trace_sampled,
            disable_shadow_host_suffix_append,
            request_headers_mutations,
            host_rewrite_literal,
        );
        if !cluster_header.is_empty() {
            let reason = "mirroring to a cluster named by a header is not supported; not mirrored";
            ctx.warn(join(&at, "cluster_header"), reason);
            continue;
        }
        let percent = match runtime_fraction {
            None => Percent::ALL,
            Some(rf) => {
                let field = join(&at, "runtime_fraction");
                if !rf.runtime_key.is_empty() {
                    ctx.warn(
                        join(&field, "runtime_key"),
                        "runtime overrides are not supported",
                    );
                }
                match rf.default_value {
                    Some(p) => fractional(ctx, &join(&field, "default_value"), &p),
                    None => {
                        ctx.error(join(&field, "default_value"), "required");
                        continue;
                    }
                }
            }
        };
        out.push(MirrorPolicy { cluster, percent });
    }
    out
}

pub(super) fn hash(ctx: &mut Ctx, at: &str, h: route_action::HashPolicy) -> Option<HashPolicy> {
    use route_action::hash_policy::{
        ConnectionProperties, Cookie, Header, PolicySpecifier, QueryParameter,
    };
    let route_action::HashPolicy {
        terminal,
        policy_specifier,
    } = h;
    ignore_set!(ctx, at, terminal);
    match policy_specifier {
        Some(PolicySpecifier::Header(Header {
            header_name,
            regex_rewrite,
        })) => {
            ignore_set!(ctx, &join(at, "header"), regex_rewrite);
            Some(HashPolicy::Header(header_name))
        }
        Some(PolicySpecifier::Cookie(Cookie {
            name,
            ttl,
            path,
            attributes,
        })) => {
            ignore_set!(ctx, &join(at, "cookie"), path, attributes);
            let field = format!("{at}.cookie.ttl");
            let ttl = ttl.map(|t| duration(ctx, &field, &t).unwrap_or(Duration::ZERO));
            Some(HashPolicy::Cookie { name, ttl })
        }
        Some(PolicySpecifier::ConnectionProperties(ConnectionProperties { source_ip })) => {
            if !source_ip {
                ctx.warn(join(at, "connection_properties"), "hashes nothing; ignored");
            }
            source_ip.then_some(HashPolicy::SourceIp)
        }
        Some(PolicySpecifier::QueryParameter(QueryParameter { name })) => {
            Some(HashPolicy::QueryParam(name))
        }
        Some(PolicySpecifier::FilterState(_)) => {
            ctx.ignored(at, "filter_state");
            None
        }
        None => {
            ctx.error(at, "a policy specifier is required");
            None
        }
    }
}
