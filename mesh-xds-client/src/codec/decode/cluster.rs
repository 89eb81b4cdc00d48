//! Clusters: an EDS `Cluster` → [`mesh_core::cluster::Cluster`].

use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::{
    CircuitBreakers as PbCircuitBreakers, Cluster,
    circuit_breakers::{Thresholds, thresholds::RetryBudget as PbRetryBudget},
    cluster::{ClusterDiscoveryType, DiscoveryType, EdsClusterConfig},
};
use envoy_types::pb::envoy::config::core::v3::RoutingPriority;
use envoy_types::pb::google::protobuf::Any;
use mesh_core::cluster::{CircuitBreakers, Cluster as ModelCluster, RetryBudget};

use super::{Ctx, DecodeError, Decoded, duration, expect_ads, join, unpack};
use crate::codec::CLUSTER_TYPE;

mod lb;
mod outlier;
pub(super) mod tls;

/// Envoy's `connect_timeout` when unset.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Decodes and validates a `Cluster`.
///
/// Only EDS clusters are supported; their endpoints come from the `ClusterLoadAssignment` named
/// `eds_cluster_config.service_name` (the cluster name when empty), fetched on the ADS stream.
/// Envoy's defaults apply to what is unset: a 5 s `connect_timeout`, `ROUND_ROBIN`, circuit
/// breakers of 1024 / 1024 / 1024 / 3, and in outlier detection consecutive-5xx and success-rate
/// ejection on (`enforcing_*` of 100) and the others off. An `enforcing_*` of 0 turns a detector
/// off; a value between 1 and 99 is read as 100 with a warning.
///
/// A `transport_socket` is read as upstream mTLS in gRFC A29's form (certificate-provider
/// instances, `match_subject_alt_names`); any other transport socket, and TLS settings that would
/// weaken verification, are rejected rather than downgraded to plaintext.
///
/// Rejected: `transport_socket_matches` / `transport_socket_matcher`, cluster types other than EDS,
/// upstream network `filters`, and `lb_subset_config`. Load-balancing policies that cannot be
/// expressed, health checks, `common_lb_config`, protocol options and the like are warnings.
///
/// # Errors
/// [`DecodeError::WrongType`] and [`DecodeError::Malformed`] for an `Any` that is not a
/// `Cluster`; [`DecodeError::Invalid`] for the cases above and whatever [`mesh_core::Validate`]
/// rejects.
pub fn decode_cluster(any: &Any) -> Result<Decoded<ModelCluster>, DecodeError> {
    let pb: Cluster = unpack(any, CLUSTER_TYPE)?;
    let mut ctx = Ctx::new("Cluster", &pb.name);
    let Cluster {
        name,
        cluster_discovery_type,
        eds_cluster_config,
        connect_timeout,
        lb_policy,
        lb_config,
        load_balancing_policy,
        circuit_breakers,
        outlier_detection,
        metadata: _,
        transport_socket,
        transport_socket_matches,
        transport_socket_matcher,
        filters,
        lb_subset_config,
        alt_stat_name,
        stats_matcher,
        per_connection_buffer_limit_bytes,
        per_connection_buffer_high_watermark_timeout,
        load_assignment,
        health_checks,
        max_requests_per_connection,
        upstream_http_protocol_options,
        common_http_protocol_options,
        http_protocol_options,
        http2_protocol_options,
        typed_extension_protocol_options,
        dns_refresh_rate,
        dns_jitter,
        dns_failure_refresh_rate,
        respect_dns_ttl,
        dns_lookup_family,
        dns_resolvers,
        use_tcp_for_dns_lookups,
        dns_resolution_config,
        typed_dns_resolver_config,
        wait_for_warm_on_init,
        cleanup_interval,
        upstream_bind_config,
        common_lb_config,
        protocol_selection,
        upstream_connection_options,
        close_connections_on_host_health_failure,
        ignore_health_on_host_removal,
        lrs_server,
        lrs_report_endpoint_metrics,
        track_timeout_budgets,
        upstream_config,
        track_cluster_stats,
        preconnect_policy,
        connection_pool_per_downstream_connection,
        queuing_policies,
    } = pb;
    ignore_set!(
        ctx,
        "",
        alt_stat_name,
        stats_matcher,
        per_connection_buffer_limit_bytes,
        per_connection_buffer_high_watermark_timeout,
        load_assignment,
        health_checks,
        max_requests_per_connection,
        upstream_http_protocol_options,
        common_http_protocol_options,
        http_protocol_options,
        http2_protocol_options,
        typed_extension_protocol_options,
        dns_refresh_rate,
        dns_jitter,
        dns_failure_refresh_rate,
        respect_dns_ttl,
        dns_lookup_family,
        dns_resolvers,
        use_tcp_for_dns_lookups,
        dns_resolution_config,
        typed_dns_resolver_config,
        wait_for_warm_on_init,
        cleanup_interval,
        upstream_bind_config,
        common_lb_config,
        protocol_selection,
        upstream_connection_options,
        close_connections_on_host_health_failure,
        ignore_health_on_host_removal,
        lrs_server,
        lrs_report_endpoint_metrics,
        track_timeout_budgets,
        upstream_config,
        track_cluster_stats,
        preconnect_policy,
        connection_pool_per_downstream_connection,
        queuing_policies,
    );
    const ONE_SOCKET: &str =
        "per-endpoint transport sockets are not supported; set transport_socket on the cluster";
    reject_set!(
        ctx, "", ONE_SOCKET;
        transport_socket_matches, transport_socket_matcher,
    );
    let tls = transport_socket.and_then(|ts| tls::decode(&mut ctx, ts));
    reject_set!(ctx, "", "upstream network filters are not supported (they change the bytes sent)"; filters);
    reject_set!(ctx, "", "subset load balancing is not supported (it chooses the endpoints)"; lb_subset_config);
    discovery_type(&mut ctx, cluster_discovery_type);

    let eds_service_name = match eds_cluster_config {
        Some(EdsClusterConfig {
            eds_config,
            service_name,
        }) => {
            expect_ads(
                &mut ctx,
                "eds_cluster_config.eds_config",
                eds_config.as_ref(),
            );
            service_name
        }
        None => {
            expect_ads(&mut ctx, "eds_cluster_config", None);
            String::new()
        }
    };
    let connect_timeout = connect_timeout
        .and_then(|d| duration(&mut ctx, "connect_timeout", &d))
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let lb_policy = lb::policy(&mut ctx, lb_policy, lb_config, load_balancing_policy);
    let circuit_breakers = breakers(&mut ctx, circuit_breakers);
    let outlier_detection = outlier_detection.map(|o| outlier::decode(&mut ctx, o));
    let cluster = ModelCluster {
        eds_service_name: if eds_service_name.is_empty() {
            name.clone()
        } else {
            eds_service_name
        },
        name,
        lb_policy,
        connect_timeout,
        circuit_breakers,
        outlier_detection,
        tls,
    };
    ctx.finish(cluster)
}

fn discovery_type(ctx: &mut Ctx, t: Option<ClusterDiscoveryType>) {
    let t = match t {
        Some(ClusterDiscoveryType::Type(t)) => t,
        Some(ClusterDiscoveryType::ClusterType(c)) => {
            let reason = format!("custom cluster type {:?} is not supported; use EDS", c.name);
            ctx.error("cluster_type", reason);
            return;
        }
        // The proto default is STATIC.
        None => DiscoveryType::Static as i32,
    };
    match DiscoveryType::try_from(t) {
        Ok(DiscoveryType::Eds) => {}
        Ok(other) => ctx.error(
            "type",
            format!(
                "{} clusters are not supported; use EDS",
                other.as_str_name()
            ),
        ),
        Err(_) => ctx.error("type", format!("unknown cluster type {t}")),
    }
}

/// The `DEFAULT`-priority thresholds (the first, as Envoy picks); `HIGH` ones are warnings.
fn breakers(ctx: &mut Ctx, cb: Option<PbCircuitBreakers>) -> CircuitBreakers {
    let mut out = CircuitBreakers::default();
    let Some(PbCircuitBreakers {
        thresholds,
        per_host_thresholds,
    }) = cb
    else {
        return out;
    };
    ignore_set!(ctx, "circuit_breakers", per_host_thresholds);
    let mut seen = false;
    for (i, t) in thresholds.into_iter().enumerate() {
        let at = format!("circuit_breakers.thresholds[{i}]");
        let Thresholds {
            priority,
            max_connections,
            max_pending_requests,
            max_requests,
            max_retries,
            retry_budget,
            track_remaining,
            max_connection_pools,
        } = t;
        match RoutingPriority::try_from(priority) {
            Ok(RoutingPriority::Default) if !seen => seen = true,
            Ok(RoutingPriority::Default) => {
                ctx.warn(
                    at,
                    "a second DEFAULT threshold; Envoy uses the first; ignored",
                );
                continue;
            }
            Ok(RoutingPriority::High) => {
                ctx.warn(at, "HIGH priority thresholds are not supported; ignored");
                continue;
            }
            Err(_) => {
                ctx.error(
                    join(&at, "priority"),
                    format!("unknown priority {priority}"),
                );
                continue;
            }
        }
        ignore_set!(ctx, &at, track_remaining, max_connection_pools);
        let or = |v: Option<envoy_types::pb::google::protobuf::UInt32Value>, d: u32| {
            v.map_or(d, |v| v.value)
        };
        out.max_connections = or(max_connections, out.max_connections);
        out.max_pending_requests = or(max_pending_requests, out.max_pending_requests);
        out.max_requests = or(max_requests, out.max_requests);
        out.max_retries = or(max_retries, out.max_retries);
        out.retry_budget = retry_budget.map(|b| {
            let PbRetryBudget {
                budget_percent,
                budget_interval,
                min_retry_concurrency,
            } = b;
            ignore_set!(ctx, &join(&at, "retry_budget"), budget_interval);
            let d = RetryBudget::default();
            RetryBudget {
                budget_percent: budget_percent.map_or(d.budget_percent, |p| p.value),
                min_retry_concurrency: or(min_retry_concurrency, d.min_retry_concurrency),
            }
        });
    }
    out
}
