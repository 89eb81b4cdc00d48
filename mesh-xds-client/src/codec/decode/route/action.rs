//! `RouteAction`: clusters, timeout, retries, mirrors, rewrites and hash policies.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::route::v3::{
    RouteAction as PbRouteAction, WeightedCluster as PbWeightedCluster, route_action,
    weighted_cluster::ClusterWeight,
};
use envoy_types::pb::google::protobuf::Any;
use mesh_core::route::{ForwardAction, MirrorPolicy, RetryPolicy, WeightedCluster};

use super::fault::{FaultSetting, per_filter};
use super::policy::{self, hash, mirrors};
use crate::codec::decode::{Ctx, duration, join};

const NO_SUBSETS: &str = "subset load balancing is not supported (it chooses the endpoints)";

/// What a route inherits from its virtual host and route configuration.
#[derive(Debug, Clone, Default)]
pub(super) struct Inherited {
    /// The virtual host's retry policy, used when the route has none.
    pub(super) retry: Option<RetryPolicy>,
    /// The most specific non-empty mirror list above the route.
    pub(super) mirrors: Vec<MirrorPolicy>,
    /// The most specific fault setting above the route.
    pub(super) fault: FaultSetting,
}

/// Decodes a forwarding action.
///
/// A route `timeout` of 0 means none (Envoy's reading; the encoder writes it for "no timeout").
/// Without `timeout`, `max_stream_duration.max_stream_duration` is used (what gRPC reads, gRFC
/// A31); with both, `timeout` wins and a different `max_stream_duration` is a warning. Without
/// either there is no timeout: Envoy's implicit 15 s default is not applied (the model's promise).
/// `max_stream_duration.grpc_timeout_header_max` is kept as is (A31: it replaces the limit for
/// gRPC requests, which then keep their own deadline).
pub(super) fn forward(ctx: &mut Ctx, at: &str, a: PbRouteAction, up: &Inherited) -> ForwardAction {
    let PbRouteAction {
        cluster_specifier,
        timeout,
        max_stream_duration,
        retry_policy,
        request_mirror_policies,
        prefix_rewrite,
        host_rewrite_specifier,
        hash_policy,
        metadata_match,
        regex_rewrite,
        path_rewrite_policy,
        path_rewrite,
        cluster_not_found_response_code,
        append_x_forwarded_host,
        idle_timeout,
        flush_timeout,
        early_data_policy,
        retry_policy_typed_config,
        priority,
        rate_limits,
        include_vh_rate_limits,
        cors,
        max_grpc_timeout,
        grpc_timeout_offset,
        upgrade_configs,
        internal_redirect_policy,
        internal_redirect_action,
        max_internal_redirects,
        hedge_policy,
    } = a;
    ignore_set!(
        ctx,
        at,
        cluster_not_found_response_code,
        append_x_forwarded_host,
        idle_timeout,
        flush_timeout,
        early_data_policy,
        retry_policy_typed_config,
        priority,
        rate_limits,
        include_vh_rate_limits,
        cors,
        max_grpc_timeout,
        grpc_timeout_offset,
        upgrade_configs,
        internal_redirect_policy,
        internal_redirect_action,
        max_internal_redirects,
        hedge_policy,
    );
    reject_set!(ctx, at, NO_SUBSETS; metadata_match);
    reject_set!(
        ctx, at, "not supported (only prefix_rewrite); the backend would get another path";
        regex_rewrite, path_rewrite_policy, path_rewrite,
    );
    let host_rewrite = host_rewrite(ctx, at, host_rewrite_specifier);

    let mut clusters = Vec::new();
    match cluster_specifier {
        Some(route_action::ClusterSpecifier::Cluster(name)) => {
            clusters.push(WeightedCluster { name, weight: 1 });
        }
        Some(route_action::ClusterSpecifier::WeightedClusters(w)) => {
            clusters = weighted(ctx, &join(at, "weighted_clusters"), w);
        }
        Some(route_action::ClusterSpecifier::ClusterHeader(h)) => ctx.error(
            join(at, "cluster_header"),
            format!("choosing the cluster from request header {h:?} is not supported"),
        ),
        Some(route_action::ClusterSpecifier::ClusterSpecifierPlugin(p)) => ctx.error(
            join(at, "cluster_specifier_plugin"),
            format!("cluster specifier plugin {p:?} is not supported"),
        ),
        Some(route_action::ClusterSpecifier::InlineClusterSpecifierPlugin(_)) => ctx.error(
            join(at, "inline_cluster_specifier_plugin"),
            "cluster specifier plugins are not supported",
        ),
        None => ctx.error(
            at,
            "a cluster specifier (cluster or weighted_clusters) is required",
        ),
    }

    let mut grpc_timeout_header_max = None;
    let stream = max_stream_duration.and_then(|m| {
        let route_action::MaxStreamDuration {
            max_stream_duration,
            grpc_timeout_header_max: header_max,
            grpc_timeout_header_offset,
        } = m;
        let at = join(at, "max_stream_duration");
        ignore_set!(ctx, &at, grpc_timeout_header_offset);
        // Present (zero included: "the caller's deadline, uncapped"): gRPC requests use it.
        grpc_timeout_header_max =
            header_max.and_then(|d| duration(ctx, &join(&at, "grpc_timeout_header_max"), &d));
        let field = join(&at, "max_stream_duration");
        // 0 means no limit, as for `timeout`.
        max_stream_duration
            .and_then(|d| duration(ctx, &field, &d))
            .filter(|d| !d.is_zero())
    });
    let timeout = match timeout {
        Some(t) => {
            let t = duration(ctx, &join(at, "timeout"), &t).filter(|t| !t.is_zero());
            if stream.is_some_and(|s| Some(s) != t) {
                let reason = "differs from timeout, which is used";
                ctx.warn(join(at, "max_stream_duration"), reason);
            }
            t
        }
        None => stream,
    };

    let mut mirrors = mirrors(
        ctx,
        &join(at, "request_mirror_policies"),
        request_mirror_policies,
    );
    if mirrors.is_empty() {
        mirrors = up.mirrors.clone();
    }
    let retry = match retry_policy {
        Some(r) => policy::retry_policy(ctx, &join(at, "retry_policy"), r),
        None => up.retry.clone(),
    };
    ForwardAction {
        clusters,
        timeout,
        grpc_timeout_header_max,
        retry,
        mirrors,
        prefix_rewrite: (!prefix_rewrite.is_empty()).then_some(prefix_rewrite),
        host_rewrite,
        hash_policies: hash_policy
            .into_iter()
            .enumerate()
            .filter_map(|(i, h)| hash(ctx, &format!("{at}.hash_policy[{i}]"), h))
            .collect(),
    }
}

fn host_rewrite(
    ctx: &mut Ctx,
    at: &str,
    spec: Option<route_action::HostRewriteSpecifier>,
) -> Option<String> {
    use route_action::HostRewriteSpecifier as Spec;
    let name = match spec? {
        Spec::HostRewriteLiteral(h) => return (!h.is_empty()).then_some(h),
        Spec::AutoHostRewrite(b) if !b.value => return None,
        Spec::AutoHostRewrite(_) => "auto_host_rewrite",
        Spec::HostRewriteHeader(_) => "host_rewrite_header",
        Spec::HostRewritePathRegex(_) => "host_rewrite_path_regex",
        Spec::HostRewrite(_) => "host_rewrite",
    };
    let reason = "not supported (only host_rewrite_literal); the backend would get another host";
    ctx.error(join(at, name), reason);
    None
}

fn weighted(ctx: &mut Ctx, at: &str, w: PbWeightedCluster) -> Vec<WeightedCluster> {
    let PbWeightedCluster {
        clusters,
        total_weight,
        runtime_key_prefix,
        random_value_specifier,
    } = w;
    ignore_set!(ctx, at, runtime_key_prefix, random_value_specifier);
    let out: Vec<_> = clusters
        .into_iter()
        .enumerate()
        .map(|(i, c)| cluster_weight(ctx, &format!("{at}.clusters[{i}]"), c))
        .collect();
    let sum: u64 = out.iter().map(|c| u64::from(c.weight)).sum();
    if let Some(total) = total_weight
        && u64::from(total.value) != sum
    {
        ctx.error(
            join(at, "total_weight"),
            format!(
                "{} does not equal the sum of the weights ({sum})",
                total.value
            ),
        );
    }
    out
}

fn cluster_weight(ctx: &mut Ctx, at: &str, c: ClusterWeight) -> WeightedCluster {
    let ClusterWeight {
        name,
        cluster_header,
        weight,
        metadata_match,
        request_headers_to_add,
        request_headers_to_remove,
        response_headers_to_add,
        response_headers_to_remove,
        typed_per_filter_config,
        host_rewrite_specifier,
    } = c;
    reject_set!(ctx, at, "choosing the cluster from a request header is not supported"; cluster_header);
    reject_set!(ctx, at, NO_SUBSETS; metadata_match);
    reject_set!(
        ctx, at, "per-cluster header changes are not supported";
        request_headers_to_add, request_headers_to_remove, response_headers_to_add,
        response_headers_to_remove,
    );
    reject_set!(ctx, at, "per-cluster host rewrites are not supported"; host_rewrite_specifier);
    per_cluster_filters(
        ctx,
        &join(at, "typed_per_filter_config"),
        typed_per_filter_config,
    );
    WeightedCluster {
        name,
        weight: weight.map_or(0, |w| w.value),
    }
}

/// A per-cluster override would replace the route's filter config for a share of the requests;
/// we cannot express it, and ignoring a fault override could fault requests it exempts.
fn per_cluster_filters(ctx: &mut Ctx, at: &str, configs: HashMap<String, Any>) {
    if !matches!(per_filter(ctx, at, configs), FaultSetting::Unset) {
        ctx.error(at, "per-cluster fault configuration is not supported");
    }
}
