//! `OutlierDetection` with Envoy's defaults.

use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::OutlierDetection as PbOutlierDetection;
use envoy_types::pb::google::protobuf::{Duration as PbDuration, UInt32Value};
use mesh_core::cluster::{FailurePercentageEjection, OutlierDetection, SuccessRateEjection};

use crate::codec::decode::{Ctx, duration};

const AT: &str = "outlier_detection";

/// Maps Envoy's outlier detection; each detector runs when its `enforcing_*` is above 0 (Envoy's
/// defaults: 100 for consecutive 5xx and success rate, 0 for gateway failures and failure
/// percentage). The local-origin split, jitter and monitors are warnings.
pub(super) fn decode(ctx: &mut Ctx, o: PbOutlierDetection) -> OutlierDetection {
    let PbOutlierDetection {
        consecutive_5xx,
        interval,
        base_ejection_time,
        max_ejection_percent,
        enforcing_consecutive_5xx,
        enforcing_success_rate,
        success_rate_minimum_hosts,
        success_rate_request_volume,
        success_rate_stdev_factor,
        consecutive_gateway_failure,
        enforcing_consecutive_gateway_failure,
        failure_percentage_threshold,
        enforcing_failure_percentage,
        failure_percentage_minimum_hosts,
        failure_percentage_request_volume,
        max_ejection_time,
        split_external_local_origin_errors,
        consecutive_local_origin_failure,
        enforcing_consecutive_local_origin_failure,
        enforcing_local_origin_success_rate,
        enforcing_failure_percentage_local_origin,
        max_ejection_time_jitter,
        successful_active_health_check_uneject_host,
        monitors,
        always_eject_one_host,
        detect_degraded_hosts,
    } = o;
    ignore_set!(
        ctx,
        AT,
        split_external_local_origin_errors,
        consecutive_local_origin_failure,
        enforcing_consecutive_local_origin_failure,
        enforcing_local_origin_success_rate,
        enforcing_failure_percentage_local_origin,
        max_ejection_time_jitter,
        successful_active_health_check_uneject_host,
        monitors,
        always_eject_one_host,
        detect_degraded_hosts,
    );
    let or = |v: Option<UInt32Value>, d: u32| v.map_or(d, |v| v.value);
    let mut dur = |name: &str, v: Option<PbDuration>, d: Duration| {
        v.and_then(|v| duration(ctx, &format!("{AT}.{name}"), &v))
            .unwrap_or(d)
    };
    let interval = dur("interval", interval, Duration::from_secs(10));
    let base_ejection_time = dur(
        "base_ejection_time",
        base_ejection_time,
        Duration::from_secs(30),
    );
    // Envoy: 300 s or the base ejection time, whichever is larger.
    let max_default = base_ejection_time.max(Duration::from_secs(300));
    let max_ejection_time = dur("max_ejection_time", max_ejection_time, max_default);

    let on_5xx = enforced(
        ctx,
        "enforcing_consecutive_5xx",
        enforcing_consecutive_5xx,
        100,
    );
    let on_gateway = enforced(
        ctx,
        "enforcing_consecutive_gateway_failure",
        enforcing_consecutive_gateway_failure,
        0,
    );
    let on_success_rate = enforced(ctx, "enforcing_success_rate", enforcing_success_rate, 100);
    let on_failure_percentage = enforced(
        ctx,
        "enforcing_failure_percentage",
        enforcing_failure_percentage,
        0,
    );
    OutlierDetection {
        consecutive_5xx: on_5xx.then(|| or(consecutive_5xx, 5)),
        consecutive_gateway_failure: on_gateway.then(|| or(consecutive_gateway_failure, 5)),
        interval,
        base_ejection_time,
        max_ejection_time,
        max_ejection_percent: or(max_ejection_percent, 10),
        success_rate: on_success_rate.then(|| SuccessRateEjection {
            minimum_hosts: or(success_rate_minimum_hosts, 5),
            request_volume: or(success_rate_request_volume, 100),
            stdev_factor: or(success_rate_stdev_factor, 1900),
        }),
        failure_percentage: on_failure_percentage.then(|| FailurePercentageEjection {
            threshold: or(failure_percentage_threshold, 85),
            minimum_hosts: or(failure_percentage_minimum_hosts, 5),
            request_volume: or(failure_percentage_request_volume, 50),
        }),
    }
}

/// Whether a detector runs: its `enforcing_*` percentage is above 0. Partial enforcement cannot
/// be expressed and is read as full with a warning.
fn enforced(ctx: &mut Ctx, name: &str, v: Option<UInt32Value>, default: u32) -> bool {
    let v = v.map_or(default, |v| v.value);
    let field = format!("{AT}.{name}");
    if v > 100 {
        ctx.error(field, format!("{v} is not within 0–100"));
    } else if v > 0 && v < 100 {
        ctx.warn(
            field,
            format!("enforcing {v}% of ejections is not supported; every outlier is ejected"),
        );
    }
    v > 0
}
