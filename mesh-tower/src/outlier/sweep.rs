//! The periodic part of outlier detection: returns, multiplier decay, success-rate and
//! failure-percentage ejection.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::{EjectionReason, OutlierDetector};
use crate::endpoint::EndpointStats;

/// One endpoint's requests in the interval that just ended.
#[derive(Clone, Copy)]
struct Volume {
    success: u32,
    failure: u32,
}

impl Volume {
    fn total(self) -> u64 {
        u64::from(self.success) + u64::from(self.failure)
    }

    fn success_percent(self) -> f64 {
        100.0 * f64::from(self.success) / self.total() as f64
    }
}

impl OutlierDetector {
    /// Runs one detection interval over the cluster's `endpoints`; call it every
    /// `config().interval` (or let [`spawn_sweeper`] do it).
    ///
    /// In order: endpoints whose ejection time passed return (counters reset); endpoints that
    /// stayed healthy for the interval have their ejection multiplier decreased by one;
    /// success-rate and failure-percentage ejection run on the interval's counts; the interval
    /// counts are reset. Returns the endpoints ejected by this sweep.
    pub fn sweep(&self, endpoints: &[Arc<EndpointStats>], now: Instant) -> Vec<Arc<EndpointStats>> {
        self.set_host_count(endpoints.len());
        let mut still_ejected = 0;
        for e in endpoints {
            if self.reclaim(e, now) {
                continue;
            }
            if e.ejected_until.load(Ordering::Acquire) != 0 {
                still_ejected += 1;
            } else {
                let _ = e
                    .ejections
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
            }
        }
        // Re-anchor the count on the endpoints themselves: an endpoint removed from the cluster
        // while ejected never reports again.
        self.ejected.store(still_ejected, Ordering::Release);

        let volumes: Vec<Volume> = endpoints
            .iter()
            .map(|e| Volume {
                success: e.interval_success.swap(0, Ordering::AcqRel),
                failure: e.interval_failure.swap(0, Ordering::AcqRel),
            })
            .collect();
        let mut ejected = Vec::new();
        for (i, reason) in self.interval_outliers(endpoints, &volumes, now) {
            if self.try_eject(&endpoints[i], reason, now) {
                ejected.push(endpoints[i].clone());
            }
        }
        ejected
    }

    /// Indices of the endpoints success-rate and failure-percentage detection would eject.
    fn interval_outliers(
        &self,
        endpoints: &[Arc<EndpointStats>],
        volumes: &[Volume],
        now: Instant,
    ) -> Vec<(usize, EjectionReason)> {
        let mut out = Vec::new();
        let eligible = |min_volume: u32| -> Vec<usize> {
            (0..endpoints.len())
                .filter(|&i| {
                    volumes[i].total() >= u64::from(min_volume.max(1))
                        && !endpoints[i].is_ejected(now)
                })
                .collect()
        };
        if let Some(sr) = &self.config.success_rate {
            let hosts = eligible(sr.request_volume);
            if !hosts.is_empty() && hosts.len() >= sr.minimum_hosts as usize {
                let rates: Vec<f64> = hosts
                    .iter()
                    .map(|&i| volumes[i].success_percent())
                    .collect();
                let n = rates.len() as f64;
                let mean = rates.iter().sum::<f64>() / n;
                let variance = rates.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n;
                let threshold = mean - variance.sqrt() * f64::from(sr.stdev_factor) / 1000.0;
                for (&i, &rate) in hosts.iter().zip(&rates) {
                    if rate < threshold {
                        out.push((i, EjectionReason::SuccessRate));
                    }
                }
            }
        }
        if let Some(fp) = &self.config.failure_percentage {
            let hosts = eligible(fp.request_volume);
            if !hosts.is_empty() && hosts.len() >= fp.minimum_hosts as usize {
                for i in hosts {
                    let failure = 100.0 - volumes[i].success_percent();
                    if failure >= f64::from(fp.threshold) && !out.iter().any(|(j, _)| *j == i) {
                        out.push((i, EjectionReason::FailurePercentage));
                    }
                }
            }
        }
        out
    }
}

/// Runs [`OutlierDetector::sweep`] every `interval` of the detector's configuration on a tokio
/// task, over the endpoints `endpoints()` returns at that moment.
///
/// The task holds the detector weakly: it ends when the detector is dropped, or when the
/// returned handle is dropped or [stopped](SweeperHandle::stop).
pub fn spawn_sweeper<F, E>(detector: &Arc<OutlierDetector>, mut endpoints: F) -> SweeperHandle
where
    F: FnMut() -> E + Send + 'static,
    E: AsRef<[Arc<EndpointStats>]>,
{
    let weak: Weak<OutlierDetector> = Arc::downgrade(detector);
    let interval = detector.config.interval.max(Duration::from_millis(1));
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(detector) = weak.upgrade() else {
                return;
            };
            let list = endpoints();
            detector.sweep(list.as_ref(), Instant::now());
        }
    });
    SweeperHandle { task }
}

/// Stops the sweeper task when dropped.
pub struct SweeperHandle {
    task: JoinHandle<()>,
}

impl SweeperHandle {
    /// Stops the sweeper now.
    pub fn stop(self) {}

    /// True once the task has ended (stopped, or its detector dropped).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for SweeperHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for SweeperHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SweeperHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}
