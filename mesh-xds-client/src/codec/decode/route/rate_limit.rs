//! The per-route `LocalRateLimit` (`envoy.filters.http.local_ratelimit`).

use std::collections::HashMap;

use envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent;
use envoy_types::pb::envoy::config::route::v3::FilterConfig;
use envoy_types::pb::envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit;
use envoy_types::pb::google::protobuf::Any;
use mesh_core::Percent;
use mesh_core::route::LocalRateLimit as Model;
use prost::{Message, Name};

use crate::codec::decode::{Ctx, duration, fractional, join, type_name, unpack_nested};

/// Takes the local rate limit out of a `typed_per_filter_config` map (bare or in a
/// `FilterConfig`), leaving every other filter's config for the fault/filter rules.
pub(super) fn take(ctx: &mut Ctx, at: &str, configs: &mut HashMap<String, Any>) -> Option<Model> {
    let key = configs
        .iter()
        .find_map(|(k, any)| is_rate_limit(any).then(|| k.clone()))?;
    let any = configs.remove(&key)?;
    let field = format!("{at}[{key:?}]");
    let inner = if type_name(&any.type_url) == FilterConfig::full_name() {
        let wrapper: FilterConfig = unpack_nested(ctx, &field, &any)?;
        if wrapper.disabled {
            return None;
        }
        wrapper.config?
    } else {
        any
    };
    let rl: LocalRateLimit = unpack_nested(ctx, &field, &inner)?;
    decode(ctx, &field, rl)
}

fn is_rate_limit(any: &Any) -> bool {
    let name = type_name(&any.type_url);
    if name == LocalRateLimit::full_name() {
        return true;
    }
    name == FilterConfig::full_name()
        && FilterConfig::decode(any.value.as_slice())
            .ok()
            .and_then(|f| f.config)
            .is_some_and(|c| type_name(&c.type_url) == LocalRateLimit::full_name())
}

pub(in crate::codec::decode) fn decode(
    ctx: &mut Ctx,
    at: &str,
    rl: LocalRateLimit,
) -> Option<Model> {
    let LocalRateLimit {
        stat_prefix: _,
        status,
        token_bucket,
        filter_enabled,
        filter_enforced,
        request_headers_to_add_when_not_enforced,
        response_headers_to_add,
        descriptors,
        stage,
        local_rate_limit_per_downstream_connection,
        local_cluster_rate_limit,
        enable_x_ratelimit_headers,
        vh_rate_limits,
        always_consume_default_token_bucket,
        rate_limited_as_resource_exhausted,
        rate_limits,
        max_dynamic_descriptors,
        enable_retry_after_header,
    } = rl;
    ignore_set!(
        ctx,
        at,
        status,
        request_headers_to_add_when_not_enforced,
        response_headers_to_add,
        stage,
        local_rate_limit_per_downstream_connection,
        enable_x_ratelimit_headers,
        vh_rate_limits,
        always_consume_default_token_bucket,
        rate_limited_as_resource_exhausted,
        max_dynamic_descriptors,
        enable_retry_after_header,
    );
    // Descriptors narrow which requests a bucket applies to; shared cluster-wide buckets need a
    // coordination we do not have. Ignoring either would limit other requests than intended.
    reject_set!(ctx, at, "not supported: only the route's default token bucket is";
        descriptors, rate_limits, local_cluster_rate_limit);
    let enabled = percent(ctx, &join(at, "filter_enabled"), filter_enabled.as_ref());
    let enforced = percent(ctx, &join(at, "filter_enforced"), filter_enforced.as_ref());
    if enabled == Percent::from_per_million(0) || enforced == Percent::from_per_million(0) {
        // Envoy's default: the filter is off (or shadow mode only) unless enabled and enforced.
        return None;
    }
    if enabled != Percent::ALL || enforced != Percent::ALL {
        ctx.warn(
            join(at, "filter_enforced"),
            "partial enabling or enforcement is not supported; enforced for every request",
        );
    }
    let Some(bucket) = token_bucket else {
        ctx.error(join(at, "token_bucket"), "required");
        return None;
    };
    let fill_interval = match bucket.fill_interval.as_ref() {
        Some(d) => duration(ctx, &join(at, "token_bucket.fill_interval"), d)?,
        None => {
            ctx.error(join(at, "token_bucket.fill_interval"), "required");
            return None;
        }
    };
    Some(Model {
        max_tokens: bucket.max_tokens,
        tokens_per_fill: bucket.tokens_per_fill.map_or(1, |v| v.value),
        fill_interval,
    })
}

fn percent(ctx: &mut Ctx, at: &str, p: Option<&RuntimeFractionalPercent>) -> Percent {
    match p.and_then(|p| p.default_value.as_ref()) {
        Some(f) => fractional(ctx, at, f),
        None => Percent::from_per_million(0),
    }
}
