//! Envoy's retry budget: how many retries may be in flight at once for one cluster.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use mesh_core::cluster::CircuitBreakers;

/// Bit 63 of the packed limits: a budget is configured.
const BUDGET_BIT: u64 = 1 << 63;

/// Caps retries in flight for one cluster, shared by every request to it.
///
/// With a configured [`mesh_core::cluster::RetryBudget`], a retry may start while
/// `active_retries < max(min_retry_concurrency, budget_percent / 100 × active_requests)`;
/// without one, `max_retries` (default 3) caps retries in flight, as Envoy's circuit breaker does.
///
/// Cloning shares the counters. Every check is a handful of atomic operations: the limits are
/// packed into one `AtomicU64`, so a live [`update`](Self::update) is seen whole or not at all.
#[derive(Clone)]
pub struct RetryBudget {
    shared: Arc<Shared>,
}

struct Shared {
    /// `BUDGET_BIT | percent×100 << 32 | min_retry_concurrency`, or `max_retries` alone.
    limits: AtomicU64,
    active_requests: AtomicU32,
    active_retries: AtomicU32,
}

impl RetryBudget {
    /// A budget with the limits of `thresholds` and no request in flight.
    pub fn new(thresholds: &CircuitBreakers) -> Self {
        Self {
            shared: Arc::new(Shared {
                limits: AtomicU64::new(pack(thresholds)),
                active_requests: AtomicU32::new(0),
                active_retries: AtomicU32::new(0),
            }),
        }
    }

    /// Applies new limits; requests and retries in flight keep counting.
    pub fn update(&self, thresholds: &CircuitBreakers) {
        self.shared
            .limits
            .store(pack(thresholds), Ordering::Release);
    }

    /// Counts one request in flight until the guard is dropped.
    pub fn request(&self) -> RequestGuard {
        self.shared.active_requests.fetch_add(1, Ordering::AcqRel);
        RequestGuard {
            shared: self.shared.clone(),
        }
    }

    /// Counts one request in flight if fewer than `max` are; used by the circuit breaker, whose
    /// `max_requests` counter is this one.
    pub(crate) fn request_below(&self, max: u32) -> Option<RequestGuard> {
        self.shared
            .active_requests
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        Some(RequestGuard {
            shared: self.shared.clone(),
        })
    }

    /// Reserves one retry if the budget allows it; the permit releases it when dropped.
    pub fn try_retry(&self) -> Option<RetryPermit> {
        let s = &self.shared;
        s.active_retries
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_retries_now()).then_some(n + 1)
            })
            .ok()?;
        Some(RetryPermit {
            shared: self.shared.clone(),
        })
    }

    /// Retries allowed in flight right now.
    pub fn max_retries_now(&self) -> u32 {
        let limits = self.shared.limits.load(Ordering::Acquire);
        let low = (limits & u64::from(u32::MAX)) as u32;
        if limits & BUDGET_BIT == 0 {
            return low;
        }
        let percent_x100 = (limits >> 32) & 0xFFFF;
        let requests = u64::from(self.active_requests());
        let share = (requests * percent_x100 / 10_000).min(u64::from(u32::MAX)) as u32;
        share.max(low)
    }

    /// Requests in flight.
    pub fn active_requests(&self) -> u32 {
        self.shared.active_requests.load(Ordering::Acquire)
    }

    /// Retries in flight.
    pub fn active_retries(&self) -> u32 {
        self.shared.active_retries.load(Ordering::Acquire)
    }
}

fn pack(t: &CircuitBreakers) -> u64 {
    match &t.retry_budget {
        None => u64::from(t.max_retries),
        Some(b) => {
            // Hundredths of a percent, 0..=100 %.
            let percent_x100 = (b.budget_percent.clamp(0.0, 100.0) * 100.0).round() as u64;
            BUDGET_BIT | percent_x100 << 32 | u64::from(b.min_retry_concurrency)
        }
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("active_requests", &self.active_requests())
            .field("active_retries", &self.active_retries())
            .field("max_retries_now", &self.max_retries_now())
            .finish()
    }
}

/// One request counted in flight by a [`RetryBudget`]; dropping it ends the count.
pub struct RequestGuard {
    shared: Arc<Shared>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.shared.active_requests.fetch_sub(1, Ordering::AcqRel);
    }
}

impl fmt::Debug for RequestGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestGuard").finish_non_exhaustive()
    }
}

/// One retry counted in flight by a [`RetryBudget`]; dropping it ends the count.
pub struct RetryPermit {
    shared: Arc<Shared>,
}

impl Drop for RetryPermit {
    fn drop(&mut self) {
        self.shared.active_retries.fetch_sub(1, Ordering::AcqRel);
    }
}

impl fmt::Debug for RetryPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPermit").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_core::cluster::RetryBudget as BudgetConfig;

    #[test]
    fn max_retries_caps_without_a_budget() {
        let b = RetryBudget::new(&CircuitBreakers::default());
        let permits: Vec<_> = (0..3).map(|_| b.try_retry().expect("within 3")).collect();
        assert!(b.try_retry().is_none());
        drop(permits);
        assert_eq!(b.active_retries(), 0);
        assert!(b.try_retry().is_some());
    }

    #[test]
    fn budget_is_a_share_of_active_requests_with_a_floor() {
        let cfg = CircuitBreakers {
            retry_budget: Some(BudgetConfig {
                budget_percent: 20.0,
                min_retry_concurrency: 1,
            }),
            ..CircuitBreakers::default()
        };
        let b = RetryBudget::new(&cfg);
        // No requests: the floor allows one.
        let first = b.try_retry().expect("floor");
        assert!(b.try_retry().is_none());
        // 20 % of 10 requests = 2.
        let reqs: Vec<_> = (0..10).map(|_| b.request()).collect();
        let second = b.try_retry().expect("20 % of 10");
        assert!(b.try_retry().is_none());
        drop(reqs);
        assert_eq!(b.active_requests(), 0);
        drop((first, second));
        // A live update keeps the counts and applies the new limits.
        let guard = b.try_retry().expect("floor");
        b.update(&CircuitBreakers {
            max_retries: 0,
            ..CircuitBreakers::default()
        });
        assert_eq!(b.active_retries(), 1);
        assert!(b.try_retry().is_none());
        drop(guard);
    }
}
