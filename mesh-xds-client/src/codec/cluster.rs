//! Clusters: an EDS `Cluster` fed over ADS, with load balancing, circuit breakers and outlier
//! detection.

use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::{
    CircuitBreakers as PbCircuitBreakers, Cluster, OutlierDetection as PbOutlierDetection,
    circuit_breakers::{Thresholds, thresholds::RetryBudget},
    cluster::{
        ClusterDiscoveryType, DiscoveryType, EdsClusterConfig, LbConfig, LbPolicy as PbLbPolicy,
        LeastRequestLbConfig, RingHashLbConfig,
    },
};
use envoy_types::pb::envoy::config::cluster::v3::{LoadBalancingPolicy, load_balancing_policy};
use envoy_types::pb::envoy::config::core::v3::{RoutingPriority, TypedExtensionConfig};
use envoy_types::pb::envoy::extensions::load_balancing_policies::{
    least_request::v3::LeastRequest, maglev::v3::Maglev, random::v3::Random,
    ring_hash::v3::RingHash, round_robin::v3::RoundRobin,
};
use envoy_types::pb::envoy::r#type::v3::Percent as PbPercent;
use envoy_types::pb::google::protobuf::UInt64Value;
use mesh_core::cluster::{CircuitBreakers, Cluster as ModelCluster, LbPolicy, OutlierDetection};

use super::{EncodeError, ads_config_source, duration, u32v};

pub(super) mod tls;

/// The largest ring Envoy accepts (its proto validation) and gRPC allows (gRFC A42): 8M entries.
const MAX_RING_SIZE: u64 = 8 * 1024 * 1024;
/// `enforcing_*` value that applies an ejection algorithm to every detected outlier.
const ENFORCE: u32 = 100;
/// `enforcing_*` value that detects but never ejects: the algorithm is off.
const DISABLED: u32 = 0;

/// Encodes a cluster whose endpoints come from EDS over the same ADS stream.
///
/// # Errors
/// [`EncodeError::OutOfRange`] for values Envoy would reject that model validation does not
/// catch: ring sizes above 8M and zero durations. Upstream TLS is written as a `transport_socket`
/// (gRFC A29 certificate-provider instances).
pub fn encode_cluster(c: &ModelCluster) -> Result<Cluster, EncodeError> {
    let out_of_range = |field, reason: String| EncodeError::OutOfRange {
        kind: "Cluster",
        resource: c.name.clone(),
        field,
        reason,
    };
    positive(c.connect_timeout, "connect_timeout").map_err(|(f, r)| out_of_range(f, r))?;

    let (lb_policy, lb_config) = match &c.lb_policy {
        LbPolicy::RoundRobin => (PbLbPolicy::RoundRobin, None),
        LbPolicy::LeastRequest { choice_count } => (
            PbLbPolicy::LeastRequest,
            Some(LbConfig::LeastRequestLbConfig(LeastRequestLbConfig {
                choice_count: Some(u32v(*choice_count)),
                ..Default::default()
            })),
        ),
        LbPolicy::Random => (PbLbPolicy::Random, None),
        LbPolicy::RingHash {
            minimum_ring_size,
            maximum_ring_size,
        } => {
            for (field, v) in [
                ("lb_policy.minimum_ring_size", *minimum_ring_size),
                ("lb_policy.maximum_ring_size", *maximum_ring_size),
            ] {
                if v > MAX_RING_SIZE {
                    return Err(out_of_range(
                        field,
                        format!(
                            "{v} exceeds the largest ring Envoy and gRPC accept ({MAX_RING_SIZE})"
                        ),
                    ));
                }
            }
            (
                PbLbPolicy::RingHash,
                Some(LbConfig::RingHashLbConfig(RingHashLbConfig {
                    minimum_ring_size: Some(UInt64Value {
                        value: *minimum_ring_size,
                    }),
                    maximum_ring_size: Some(UInt64Value {
                        value: *maximum_ring_size,
                    }),
                    ..Default::default()
                })),
            )
        }
        LbPolicy::Maglev => (PbLbPolicy::Maglev, None),
    };

    let outlier_detection = match &c.outlier_detection {
        Some(o) => Some(outlier_detection(o).map_err(|(f, r)| out_of_range(f, r))?),
        None => None,
    };

    Ok(Cluster {
        name: c.name.clone(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
        eds_cluster_config: Some(EdsClusterConfig {
            eds_config: Some(ads_config_source()),
            service_name: c.eds_service_name.clone(),
        }),
        connect_timeout: Some(duration(c.connect_timeout)),
        lb_policy: lb_policy as i32,
        lb_config,
        load_balancing_policy: Some(load_balancing_policy(&c.lb_policy)),
        circuit_breakers: Some(circuit_breakers(&c.circuit_breakers)),
        outlier_detection,
        transport_socket: c.tls.as_ref().map(tls::transport_socket),
        ..Default::default()
    })
}

/// The same policy as a `load_balancing_policy` list (gRFC A52), with a fallback the client uses
/// when it does not implement the first: gRPC C-core, for one, refuses `lb_policy: LEAST_REQUEST`
/// but takes round robin from this list. Envoy uses the first entry; `lb_policy` stays set for
/// clients that predate the field.
fn load_balancing_policy(p: &LbPolicy) -> LoadBalancingPolicy {
    let round_robin = || {
        policy(
            "envoy.load_balancing_policies.round_robin",
            &RoundRobin::default(),
        )
    };
    let ring_hash = |min: u64, max: u64| {
        policy(
            "envoy.load_balancing_policies.ring_hash",
            &RingHash {
                minimum_ring_size: Some(UInt64Value { value: min }),
                maximum_ring_size: Some(UInt64Value { value: max }),
                ..Default::default()
            },
        )
    };
    let policies = match p {
        LbPolicy::RoundRobin => vec![round_robin()],
        LbPolicy::LeastRequest { choice_count } => vec![
            policy(
                "envoy.load_balancing_policies.least_request",
                &LeastRequest {
                    choice_count: Some(u32v(*choice_count)),
                    ..Default::default()
                },
            ),
            round_robin(),
        ],
        LbPolicy::Random => vec![
            policy("envoy.load_balancing_policies.random", &Random::default()),
            round_robin(),
        ],
        LbPolicy::RingHash {
            minimum_ring_size,
            maximum_ring_size,
        } => vec![ring_hash(*minimum_ring_size, *maximum_ring_size)],
        LbPolicy::Maglev => vec![
            policy("envoy.load_balancing_policies.maglev", &Maglev::default()),
            ring_hash(1024, MAX_RING_SIZE),
        ],
    };
    LoadBalancingPolicy { policies }
}

fn policy<M: prost::Name>(name: &str, config: &M) -> load_balancing_policy::Policy {
    load_balancing_policy::Policy {
        typed_extension_config: Some(TypedExtensionConfig {
            name: name.to_string(),
            typed_config: Some(super::to_any(config)),
        }),
    }
}

fn circuit_breakers(b: &CircuitBreakers) -> PbCircuitBreakers {
    PbCircuitBreakers {
        thresholds: vec![Thresholds {
            priority: RoutingPriority::Default as i32,
            max_connections: Some(u32v(b.max_connections)),
            max_pending_requests: Some(u32v(b.max_pending_requests)),
            max_requests: Some(u32v(b.max_requests)),
            max_retries: Some(u32v(b.max_retries)),
            retry_budget: b.retry_budget.as_ref().map(|r| RetryBudget {
                budget_percent: Some(PbPercent {
                    value: r.budget_percent,
                }),
                min_retry_concurrency: Some(u32v(r.min_retry_concurrency)),
                budget_interval: None,
            }),
            ..Default::default()
        }],
        per_host_thresholds: Vec::new(),
    }
}

/// Every algorithm's `enforcing_*` is set explicitly, because Envoy's defaults differ per algorithm
/// (consecutive 5xx and success rate default to 100, the others to 0) and gRPC (gRFC A50) reads
/// them to decide which algorithms run.
fn outlier_detection(o: &OutlierDetection) -> Result<PbOutlierDetection, (&'static str, String)> {
    positive(o.interval, "outlier_detection.interval")?;
    positive(o.base_ejection_time, "outlier_detection.base_ejection_time")?;
    positive(o.max_ejection_time, "outlier_detection.max_ejection_time")?;
    let enforce = |on: bool| Some(u32v(if on { ENFORCE } else { DISABLED }));
    let sr = o.success_rate.as_ref();
    let fp = o.failure_percentage.as_ref();
    Ok(PbOutlierDetection {
        consecutive_5xx: o.consecutive_5xx.map(u32v),
        enforcing_consecutive_5xx: enforce(o.consecutive_5xx.is_some()),
        consecutive_gateway_failure: o.consecutive_gateway_failure.map(u32v),
        enforcing_consecutive_gateway_failure: enforce(o.consecutive_gateway_failure.is_some()),
        interval: Some(duration(o.interval)),
        base_ejection_time: Some(duration(o.base_ejection_time)),
        max_ejection_time: Some(duration(o.max_ejection_time)),
        max_ejection_percent: Some(u32v(o.max_ejection_percent)),
        enforcing_success_rate: enforce(sr.is_some()),
        success_rate_minimum_hosts: sr.map(|s| u32v(s.minimum_hosts)),
        success_rate_request_volume: sr.map(|s| u32v(s.request_volume)),
        success_rate_stdev_factor: sr.map(|s| u32v(s.stdev_factor)),
        enforcing_failure_percentage: enforce(fp.is_some()),
        failure_percentage_threshold: fp.map(|f| u32v(f.threshold)),
        failure_percentage_minimum_hosts: fp.map(|f| u32v(f.minimum_hosts)),
        failure_percentage_request_volume: fp.map(|f| u32v(f.request_volume)),
        ..Default::default()
    })
}

/// Envoy validates these durations as `gt: 0`.
fn positive(d: Duration, field: &'static str) -> Result<(), (&'static str, String)> {
    if d.is_zero() {
        Err((field, "must be greater than zero (Envoy rejects 0)".into()))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
