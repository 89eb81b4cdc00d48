//! The load-balancing policy: the `lb_policy` enum with its `lb_config`, or the typed
//! `load_balancing_policy` list.

use envoy_types::pb::envoy::config::cluster::v3::{
    LoadBalancingPolicy,
    cluster::{
        LbConfig, LbPolicy as PbLbPolicy, LeastRequestLbConfig, MaglevLbConfig, RingHashLbConfig,
        ring_hash_lb_config::HashFunction,
    },
    load_balancing_policy,
};
use envoy_types::pb::envoy::config::core::v3::TypedExtensionConfig;
use envoy_types::pb::envoy::extensions::load_balancing_policies::{
    least_request::v3::LeastRequest,
    maglev::v3::Maglev,
    random::v3::Random,
    ring_hash::v3::{RingHash, ring_hash::HashFunction as ExtHashFunction},
    round_robin::v3::RoundRobin,
    wrr_locality::v3::WrrLocality,
};
use envoy_types::pb::google::protobuf::{UInt32Value, UInt64Value};
use mesh_core::cluster::LbPolicy;
use prost::Name;

use crate::codec::decode::{Ctx, is_set, join, type_name, unpack_nested};

/// The largest ring Envoy accepts.
const MAX_RING_SIZE: u64 = 8 * 1024 * 1024;
const MIN_RING_DEFAULT: u64 = 1024;
/// `wrr_locality` nests policies; deeper nesting than this is not followed.
const MAX_DEPTH: usize = 4;

/// `load_balancing_policy`, when set, wins over `lb_policy` (as in Envoy and gRPC); its first
/// policy we support is used. A policy we cannot express is a warning and round robin (Envoy's
/// default) is used. `lb_policy`/`lb_config` next to it are the legacy spelling for older clients
/// (our control plane sends both) and are ignored without a warning.
pub(super) fn policy(
    ctx: &mut Ctx,
    lb_policy: i32,
    lb_config: Option<LbConfig>,
    typed: Option<LoadBalancingPolicy>,
) -> LbPolicy {
    if let Some(typed) = typed.filter(|t| !t.policies.is_empty()) {
        return extensions(ctx, "load_balancing_policy", typed, 0).unwrap_or_else(|| {
            let reason = "none of the policies is supported; using ROUND_ROBIN";
            ctx.warn("load_balancing_policy", reason);
            LbPolicy::RoundRobin
        });
    }
    let policy = match PbLbPolicy::try_from(lb_policy) {
        Ok(p) => p,
        Err(_) => {
            ctx.error("lb_policy", format!("unknown policy {lb_policy}"));
            return LbPolicy::RoundRobin;
        }
    };
    let mut config = lb_config;
    let out = match policy {
        PbLbPolicy::RoundRobin => {
            if let Some(LbConfig::RoundRobinLbConfig(c)) = config.take()
                && is_set(&c)
            {
                ctx.ignored("", "round_robin_lb_config");
            }
            LbPolicy::RoundRobin
        }
        PbLbPolicy::Random => LbPolicy::Random,
        PbLbPolicy::LeastRequest => match config.take() {
            Some(LbConfig::LeastRequestLbConfig(c)) => least_request_config(ctx, c),
            other => {
                config = other;
                LbPolicy::LeastRequest { choice_count: 2 }
            }
        },
        PbLbPolicy::RingHash => match config.take() {
            Some(LbConfig::RingHashLbConfig(c)) => ring_hash_config(ctx, c),
            other => {
                config = other;
                LbPolicy::RingHash {
                    minimum_ring_size: MIN_RING_DEFAULT,
                    maximum_ring_size: MAX_RING_SIZE,
                }
            }
        },
        PbLbPolicy::Maglev => {
            if let Some(LbConfig::MaglevLbConfig(MaglevLbConfig { table_size })) = config.take() {
                ignore_set!(ctx, "maglev_lb_config", table_size);
            }
            LbPolicy::Maglev
        }
        PbLbPolicy::ClusterProvided => {
            let reason = "CLUSTER_PROVIDED is only for cluster types that pick their own hosts";
            ctx.error("lb_policy", reason);
            LbPolicy::RoundRobin
        }
        PbLbPolicy::LoadBalancingPolicyConfig => {
            ctx.error(
                "load_balancing_policy",
                "required by LOAD_BALANCING_POLICY_CONFIG",
            );
            LbPolicy::RoundRobin
        }
    };
    if config.is_some() {
        let reason = format!(
            "does not apply to lb_policy {}; ignored",
            policy.as_str_name()
        );
        ctx.warn("lb_config", reason);
    }
    out
}

fn least_request_config(ctx: &mut Ctx, c: LeastRequestLbConfig) -> LbPolicy {
    let LeastRequestLbConfig {
        choice_count,
        active_request_bias,
        slow_start_config,
    } = c;
    ignore_set!(
        ctx,
        "least_request_lb_config",
        active_request_bias,
        slow_start_config
    );
    LbPolicy::LeastRequest {
        choice_count: choice_count.map_or(2, |c| c.value),
    }
}

fn ring_hash_config(ctx: &mut Ctx, c: RingHashLbConfig) -> LbPolicy {
    let RingHashLbConfig {
        minimum_ring_size,
        hash_function,
        maximum_ring_size,
    } = c;
    if hash_function != HashFunction::XxHash as i32 {
        ctx.ignored("ring_hash_lb_config", "hash_function");
    }
    ring(
        ctx,
        "ring_hash_lb_config",
        minimum_ring_size,
        maximum_ring_size,
    )
}

fn ring(ctx: &mut Ctx, at: &str, min: Option<UInt64Value>, max: Option<UInt64Value>) -> LbPolicy {
    let minimum_ring_size = min.map_or(MIN_RING_DEFAULT, |v| v.value);
    let maximum_ring_size = max.map_or(MAX_RING_SIZE, |v| v.value);
    for (name, v) in [
        ("minimum_ring_size", minimum_ring_size),
        ("maximum_ring_size", maximum_ring_size),
    ] {
        if v > MAX_RING_SIZE {
            ctx.error(
                join(at, name),
                format!("{v} exceeds the largest ring ({MAX_RING_SIZE})"),
            );
        }
    }
    LbPolicy::RingHash {
        minimum_ring_size,
        maximum_ring_size,
    }
}

/// The first supported policy of a typed list, following `wrr_locality` to its endpoint-picking
/// policy.
fn extensions(
    ctx: &mut Ctx,
    at: &str,
    list: LoadBalancingPolicy,
    depth: usize,
) -> Option<LbPolicy> {
    for (i, p) in list.policies.into_iter().enumerate() {
        let load_balancing_policy::Policy {
            typed_extension_config,
        } = p;
        let Some(TypedExtensionConfig {
            typed_config: Some(any),
            ..
        }) = typed_extension_config
        else {
            continue;
        };
        let at = format!("{at}.policies[{i}]");
        let name = type_name(&any.type_url);
        let found = if name == RoundRobin::full_name() {
            unpack_nested::<RoundRobin>(ctx, &at, &any).map(
                |RoundRobin {
                     slow_start_config,
                     locality_lb_config,
                 }| {
                    ignore_set!(ctx, &at, slow_start_config, locality_lb_config);
                    LbPolicy::RoundRobin
                },
            )
        } else if name == Random::full_name() {
            unpack_nested::<Random>(ctx, &at, &any).map(|Random { locality_lb_config }| {
                ignore_set!(ctx, &at, locality_lb_config);
                LbPolicy::Random
            })
        } else if name == LeastRequest::full_name() {
            unpack_nested::<LeastRequest>(ctx, &at, &any).map(|l| {
                let LeastRequest {
                    choice_count,
                    active_request_bias,
                    slow_start_config,
                    locality_lb_config,
                    enable_full_scan,
                    selection_method,
                } = l;
                ignore_set!(
                    ctx,
                    &at,
                    active_request_bias,
                    slow_start_config,
                    locality_lb_config,
                    enable_full_scan,
                    selection_method
                );
                LbPolicy::LeastRequest {
                    choice_count: choice_count.map_or(2, |c: UInt32Value| c.value),
                }
            })
        } else if name == RingHash::full_name() {
            unpack_nested::<RingHash>(ctx, &at, &any).map(|r| {
                let RingHash {
                    hash_function,
                    minimum_ring_size,
                    maximum_ring_size,
                    use_hostname_for_hashing,
                    hash_balance_factor,
                    consistent_hashing_lb_config,
                    locality_weighted_lb_config,
                } = r;
                if hash_function == ExtHashFunction::MurmurHash2 as i32 {
                    ctx.ignored(&at, "hash_function");
                }
                ignore_set!(
                    ctx,
                    &at,
                    use_hostname_for_hashing,
                    hash_balance_factor,
                    consistent_hashing_lb_config,
                    locality_weighted_lb_config
                );
                ring(ctx, &at, minimum_ring_size, maximum_ring_size)
            })
        } else if name == Maglev::full_name() {
            unpack_nested::<Maglev>(ctx, &at, &any).map(|m| {
                let Maglev {
                    table_size,
                    consistent_hashing_lb_config,
                    locality_weighted_lb_config,
                } = m;
                ignore_set!(
                    ctx,
                    &at,
                    table_size,
                    consistent_hashing_lb_config,
                    locality_weighted_lb_config
                );
                LbPolicy::Maglev
            })
        } else if name == WrrLocality::full_name() && depth < MAX_DEPTH {
            unpack_nested::<WrrLocality>(ctx, &at, &any)
                .and_then(|w| w.endpoint_picking_policy)
                .and_then(|p| extensions(ctx, &join(&at, "endpoint_picking_policy"), p, depth + 1))
        } else {
            let reason = format!("policy {name} is not supported; trying the next");
            ctx.warn(&at, reason);
            None
        };
        if found.is_some() {
            return found;
        }
    }
    None
}
