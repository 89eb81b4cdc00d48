//! Envoy's outlier detection for one cluster: passive ejection of endpoints that fail.
//!
//! Every response to an endpoint is [`report`](OutlierDetector::report)ed. Consecutive 5xx and
//! consecutive gateway failures (502, 503, 504, connect failures) eject an endpoint as soon as
//! they reach their thresholds. Success-rate and failure-percentage detection compare endpoints
//! with each other over an interval, so they run in a periodic [`sweep`](OutlierDetector::sweep)
//! ([`spawn_sweeper`] runs it on a tokio task).
//!
//! All state lives in the endpoints' shared [`EndpointStats`] atomics plus two counters here, so
//! reporting never locks. An ejection sets `ejected_until`; the balancers skip an endpoint while
//! [`EndpointStats::is_ejected`] holds, so it returns exactly when its time passes. Ejection time
//! is `base_ejection_time × n` (capped at `max_ejection_time`), where `n` — the `ejections`
//! field — grows with each ejection and shrinks by one per sweep interval the endpoint spends
//! healthy, as Envoy's multiplier does.
//!
//! No more than `max_ejection_percent` of the endpoints are ejected at once, except that one
//! endpoint may always be ejected when the percentage is above zero (Envoy's rule, so small
//! clusters are protected too).

mod layer;
mod sweep;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use mesh_core::cluster::OutlierDetection;
use tokio::time::Instant;

use crate::endpoint::EndpointStats;

pub use layer::{Outlier, OutlierLayer, ResponseFuture};
pub use sweep::{SweeperHandle, spawn_sweeper};

/// Why an endpoint was ejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EjectionReason {
    /// `consecutive_5xx` 5xx responses or connect failures in a row.
    Consecutive5xx,
    /// `consecutive_gateway_failure` 502/503/504 responses or connect failures in a row.
    ConsecutiveGatewayFailure,
    /// Success rate far below the cluster's mean.
    SuccessRate,
    /// Failure percentage at or above the threshold.
    FailurePercentage,
}

impl EjectionReason {
    /// The reason as a metric label: `consecutive_5xx`, `consecutive_gateway_failure`,
    /// `success_rate`, `failure_percentage`.
    pub fn as_str(self) -> &'static str {
        match self {
            EjectionReason::Consecutive5xx => "consecutive_5xx",
            EjectionReason::ConsecutiveGatewayFailure => "consecutive_gateway_failure",
            EjectionReason::SuccessRate => "success_rate",
            EjectionReason::FailurePercentage => "failure_percentage",
        }
    }
}

/// Outlier detection for one cluster. Share it (`Arc`) between the client and the sweeper.
pub struct OutlierDetector {
    config: OutlierDetection,
    /// Endpoints in the cluster, as last told by [`Self::set_host_count`] or a sweep.
    hosts: AtomicU32,
    /// Endpoints ejected and not yet returned.
    ejected: AtomicU32,
    /// The cluster's name, for the ejection counter.
    cluster: Arc<str>,
}

impl OutlierDetector {
    /// A detector with `config` and no endpoint ejected.
    pub fn new(config: OutlierDetection) -> Self {
        Self {
            cluster: Arc::from(""),
            config,
            hosts: AtomicU32::new(0),
            ejected: AtomicU32::new(0),
        }
    }

    /// Names the cluster in logs and in `mesh_outlier_ejections_total{cluster}`.
    pub fn named(mut self, cluster: &str) -> Self {
        self.cluster = Arc::from(cluster);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &OutlierDetection {
        &self.config
    }

    /// Sets the number of endpoints in the cluster, which `max_ejection_percent` is a share of;
    /// call it when the endpoint list changes. Each [`sweep`](Self::sweep) also sets it.
    pub fn set_host_count(&self, hosts: usize) {
        self.hosts
            .store(u32::try_from(hosts).unwrap_or(u32::MAX), Ordering::Release);
    }

    /// Endpoints currently counted as ejected (expired ejections count until the endpoint's next
    /// report or the next sweep).
    pub fn ejected_count(&self) -> u32 {
        self.ejected.load(Ordering::Acquire)
    }

    /// Records the result of one request to `stats`' endpoint: its HTTP status, or a connect
    /// failure (which counts as both a 5xx and a gateway failure). A `status` of `None` without
    /// a connect failure is a success without an HTTP status (a local success).
    ///
    /// Returns the reason when this report ejected the endpoint.
    pub fn report(
        &self,
        stats: &EndpointStats,
        status: Option<u16>,
        connect_failure: bool,
        now: Instant,
    ) -> Option<EjectionReason> {
        self.reclaim(stats, now);
        let is_5xx = connect_failure || status.is_some_and(|s| (500..600).contains(&s));
        if !is_5xx {
            stats.interval_success.fetch_add(1, Ordering::Relaxed);
            stats.consecutive_5xx.store(0, Ordering::Relaxed);
            stats.consecutive_gateway.store(0, Ordering::Relaxed);
            return None;
        }
        stats.interval_failure.fetch_add(1, Ordering::Relaxed);
        let gateway = connect_failure || matches!(status, Some(502..=504));
        let mut reason = None;
        if gateway {
            let n = stats.consecutive_gateway.fetch_add(1, Ordering::AcqRel) + 1;
            if self
                .config
                .consecutive_gateway_failure
                .is_some_and(|t| n >= t)
            {
                // Envoy resets the counter whether or not the ejection is allowed.
                stats.consecutive_gateway.store(0, Ordering::Release);
                reason = Some(EjectionReason::ConsecutiveGatewayFailure);
            }
        } else {
            stats.consecutive_gateway.store(0, Ordering::Relaxed);
        }
        let n = stats.consecutive_5xx.fetch_add(1, Ordering::AcqRel) + 1;
        if self.config.consecutive_5xx.is_some_and(|t| n >= t) {
            stats.consecutive_5xx.store(0, Ordering::Release);
            reason = reason.or(Some(EjectionReason::Consecutive5xx));
        }
        let reason = reason?;
        self.try_eject(stats, reason, now).then_some(reason)
    }

    /// Ejects `stats`' endpoint unless it is ejected already or `max_ejection_percent` forbids
    /// it. Returns whether it was ejected.
    pub fn try_eject(&self, stats: &EndpointStats, reason: EjectionReason, now: Instant) -> bool {
        self.reclaim(stats, now);
        if stats.ejected_until.load(Ordering::Acquire) != 0 {
            return false;
        }
        let hosts = u64::from(self.hosts.load(Ordering::Acquire).max(1));
        let percent = u64::from(self.config.max_ejection_percent);
        let reserved = self
            .ejected
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                let within = (u64::from(n) + 1) * 100 <= percent * hosts;
                (within || (n == 0 && percent > 0)).then_some(n + 1)
            });
        if reserved.is_err() {
            tracing::debug!(endpoint = %stats.addr, ?reason, "ejection refused by max_ejection_percent");
            return false;
        }
        let times = stats.ejections.load(Ordering::Acquire).saturating_add(1);
        let cap = self
            .config
            .max_ejection_time
            .max(self.config.base_ejection_time);
        let duration = self
            .config
            .base_ejection_time
            .saturating_mul(times)
            .min(cap);
        let until = stats.nanos(now + duration).max(1);
        if stats
            .ejected_until
            .compare_exchange(0, until, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // A concurrent report ejected it first.
            self.release_slot();
            return false;
        }
        stats.ejections.store(times, Ordering::Release);
        tracing::info!(cluster = %self.cluster, endpoint = %stats.addr, ?reason, ?duration, "outlier ejected");
        metrics::counter!(
            "mesh_outlier_ejections_total",
            "cluster" => self.cluster.to_string(),
            "reason" => reason.as_str()
        )
        .increment(1);
        true
    }

    /// Returns an endpoint whose ejection time has passed: clears `ejected_until`, resets its
    /// consecutive counters and frees its share of `max_ejection_percent`. Returns whether it
    /// did.
    fn reclaim(&self, stats: &EndpointStats, now: Instant) -> bool {
        let until = stats.ejected_until.load(Ordering::Acquire);
        if until == 0 || stats.nanos(now) < until {
            return false;
        }
        if stats
            .ejected_until
            .compare_exchange(until, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        stats.consecutive_5xx.store(0, Ordering::Release);
        stats.consecutive_gateway.store(0, Ordering::Release);
        self.release_slot();
        tracing::info!(endpoint = %stats.addr, "outlier returned");
        true
    }

    fn release_slot(&self) {
        let _ = self
            .ejected
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

impl fmt::Debug for OutlierDetector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutlierDetector")
            .field("config", &self.config)
            .field("hosts", &self.hosts.load(Ordering::Relaxed))
            .field("ejected", &self.ejected_count())
            .finish()
    }
}
