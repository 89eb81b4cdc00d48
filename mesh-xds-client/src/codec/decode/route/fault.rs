//! `typed_per_filter_config` and the per-route `HTTPFault`.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::route::v3::FilterConfig;
use envoy_types::pb::envoy::extensions::filters::common::fault::v3::{
    FaultDelay, fault_delay::FaultDelaySecifier,
};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{
    FaultAbort, HttpFault, fault_abort::ErrorType,
};
use envoy_types::pb::google::protobuf::Any;
use mesh_core::Percent;
use mesh_core::route::FaultPolicy;
use mesh_core::route::{AbortStatus, FaultAbort as ModelAbort, FaultDelay as ModelDelay};
use prost::Name;

use super::matching::header_match;
use crate::codec::decode::filters::{FilterKind, skip_or_reject};
// A `FilterConfig` that only disables a filter names the fault filter by this key.
use crate::codec::decode::{Ctx, duration, fractional, join, type_name, unpack_nested};
use crate::codec::listener::FAULT_FILTER;

/// A fault setting at one level (route configuration, virtual host, route); the most specific
/// one that is not `Unset` applies, as in Envoy.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) enum FaultSetting {
    /// Nothing at this level.
    #[default]
    Unset,
    /// The fault filter is disabled at this level.
    Disabled,
    /// A fault policy.
    Set(FaultPolicy),
}

impl FaultSetting {
    /// This setting, or `parent` when unset.
    pub(super) fn or(self, parent: &FaultSetting) -> FaultSetting {
        match self {
            FaultSetting::Unset => parent.clone(),
            s => s,
        }
    }

    pub(super) fn into_policy(self) -> Option<FaultPolicy> {
        match self {
            FaultSetting::Set(f) => Some(f),
            FaultSetting::Unset | FaultSetting::Disabled => None,
        }
    }
}

/// Reads a `typed_per_filter_config` map. Filters are known by config type (gRPC's rule, gRFC
/// A39), optionally wrapped in a `FilterConfig`; an unknown non-optional config is an error, an
/// optional one a warning, and security filters are always errors.
pub(super) fn per_filter(ctx: &mut Ctx, at: &str, configs: HashMap<String, Any>) -> FaultSetting {
    let mut configs: Vec<_> = configs.into_iter().collect();
    configs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = FaultSetting::Unset;
    for (key, any) in configs {
        let field = format!("{at}[{key:?}]");
        let (config, optional, disabled) = if type_name(&any.type_url) == FilterConfig::full_name()
        {
            let Some(FilterConfig {
                config,
                is_optional,
                disabled,
            }) = unpack_nested(ctx, &field, &any)
            else {
                continue;
            };
            (config, is_optional, disabled)
        } else {
            (Some(any), false, false)
        };
        let Some(config) = config else {
            if disabled && key == FAULT_FILTER {
                out = FaultSetting::Disabled;
            } else if disabled {
                ctx.warn(field, "disables a filter we do not run; ignored");
            } else {
                ctx.error(field, "a FilterConfig needs a config or disabled: true");
            }
            continue;
        };
        match FilterKind::of(&config) {
            FilterKind::Fault if disabled => out = FaultSetting::Disabled,
            FilterKind::Fault => {
                if matches!(out, FaultSetting::Set(_)) {
                    ctx.error(&field, "a second fault configuration for the same route");
                }
                if let Some(f) = unpack_nested::<HttpFault>(ctx, &field, &config) {
                    out = FaultSetting::Set(fault(ctx, &field, f));
                }
            }
            FilterKind::Router => ctx.warn(field, "the router has no per-route config; ignored"),
            other => {
                let reason = format!("{key:?}: {}", other.reason());
                skip_or_reject(ctx, &field, Some(&other), optional, reason);
            }
        }
    }
    out
}

/// A per-route `HTTPFault`. Settings that limit which requests are faulted (`upstream_cluster`,
/// `downstream_nodes`, `max_active_faults`) are errors: ignoring them would fault more requests.
/// Header-controlled delays and aborts, response rate limits and runtime keys are warnings.
pub(in crate::codec::decode) fn fault(ctx: &mut Ctx, at: &str, f: HttpFault) -> FaultPolicy {
    let HttpFault {
        delay,
        abort,
        headers,
        upstream_cluster,
        downstream_nodes,
        max_active_faults,
        response_rate_limit,
        delay_percent_runtime,
        abort_percent_runtime,
        delay_duration_runtime,
        abort_http_status_runtime,
        max_active_faults_runtime,
        response_rate_limit_percent_runtime,
        abort_grpc_status_runtime,
        disable_downstream_cluster_stats,
        filter_metadata,
    } = f;
    ignore_set!(
        ctx,
        at,
        response_rate_limit,
        delay_percent_runtime,
        abort_percent_runtime,
        delay_duration_runtime,
        abort_http_status_runtime,
        max_active_faults_runtime,
        response_rate_limit_percent_runtime,
        abort_grpc_status_runtime,
        disable_downstream_cluster_stats,
        filter_metadata,
    );
    reject_set!(
        ctx, at, "not supported; ignoring it would fault requests it exempts";
        upstream_cluster, downstream_nodes, max_active_faults,
    );
    FaultPolicy {
        delay: delay.and_then(|d| fault_delay(ctx, &join(at, "delay"), d)),
        abort: abort.and_then(|a| fault_abort(ctx, &join(at, "abort"), a)),
        headers: headers
            .into_iter()
            .enumerate()
            .map(|(i, h)| header_match(ctx, &format!("{at}.headers[{i}]"), h))
            .collect(),
    }
}

/// Without `percentage` no request is affected (Envoy's default of 0 %).
fn percentage(
    ctx: &mut Ctx,
    at: &str,
    p: Option<&envoy_types::pb::envoy::r#type::v3::FractionalPercent>,
) -> Percent {
    p.map_or(Percent::from_per_million(0), |p| {
        fractional(ctx, &join(at, "percentage"), p)
    })
}

fn fault_delay(ctx: &mut Ctx, at: &str, d: FaultDelay) -> Option<ModelDelay> {
    let FaultDelay {
        percentage: p,
        fault_delay_secifier,
    } = d;
    let percent = percentage(ctx, at, p.as_ref());
    match fault_delay_secifier {
        Some(FaultDelaySecifier::FixedDelay(d)) => {
            let field = join(at, "fixed_delay");
            let delay = duration(ctx, &field, &d)?;
            if delay.is_zero() {
                ctx.error(field, "must be greater than zero");
                return None;
            }
            Some(ModelDelay { delay, percent })
        }
        Some(FaultDelaySecifier::HeaderDelay(_)) => {
            let reason = "delays chosen by a request header are not supported; no delay";
            ctx.warn(join(at, "header_delay"), reason);
            None
        }
        None => {
            ctx.error(join(at, "fixed_delay"), "required");
            None
        }
    }
}

fn fault_abort(ctx: &mut Ctx, at: &str, a: FaultAbort) -> Option<ModelAbort> {
    let FaultAbort {
        percentage: p,
        response_body,
        error_type,
    } = a;
    ignore_set!(ctx, at, response_body);
    let percent = percentage(ctx, at, p.as_ref());
    let status = match error_type {
        Some(ErrorType::HttpStatus(s)) => match u16::try_from(s) {
            Ok(s) => AbortStatus::Http(s),
            Err(_) => {
                ctx.error(
                    join(at, "http_status"),
                    format!("{s} is not an HTTP status"),
                );
                return None;
            }
        },
        Some(ErrorType::GrpcStatus(c)) => AbortStatus::Grpc(c),
        Some(ErrorType::HeaderAbort(_)) => {
            let reason = "aborts chosen by a request header are not supported; no abort";
            ctx.warn(join(at, "header_abort"), reason);
            return None;
        }
        None => {
            ctx.error(at, "an error type (http_status or grpc_status) is required");
            return None;
        }
    };
    Some(ModelAbort { status, percent })
}
