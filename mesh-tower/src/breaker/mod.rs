//! Envoy's circuit breaker for one cluster: caps on connections, pending requests, requests and
//! retries in flight.
//!
//! Envoy's "circuit breaker" is not a state machine that opens after failures (that is outlier
//! detection, in [`crate::outlier`]); it is a set of concurrency caps that shed load at once
//! instead of queueing it, so a slow upstream cannot make every caller pile up requests. Each
//! `try_*` call either takes a [`Permit`] — a slot released when it is dropped — or returns an
//! [`Overflow`] naming the cap that was hit.
//!
//! [`CircuitBreaker`] is the pure counter set, shared by clones, with live thresholds
//! ([`CircuitBreaker::update`] keeps the counts of what is in flight). [`BreakerLayer`] applies
//! `max_requests` to a service and answers overflow with Envoy's local 503.

mod future;
mod layer;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use mesh_core::cluster::CircuitBreakers;

use crate::retry::{RequestGuard, RetryBudget, RetryPermit};

pub use future::ResponseFuture;
pub use layer::{Breaker, BreakerLayer, OVERFLOW_HEADER, overflow_response};

/// One of the circuit breaker's caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Connections to all endpoints together.
    MaxConnections,
    /// Requests waiting for a connection.
    MaxPendingRequests,
    /// Requests in flight.
    MaxRequests,
    /// Retries in flight (or the retry budget, when one is configured).
    MaxRetries,
}

impl Limit {
    /// Envoy's field name: `max_connections`, `max_pending_requests`, `max_requests`,
    /// `max_retries`.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::MaxConnections => "max_connections",
            Limit::MaxPendingRequests => "max_pending_requests",
            Limit::MaxRequests => "max_requests",
            Limit::MaxRetries => "max_retries",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A cap was reached; nothing was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker overflow: {limit} ({max}) reached")]
pub struct Overflow {
    /// The cap that was reached.
    pub limit: Limit,
    /// Its value at the time.
    pub max: u32,
}

/// Envoy's circuit-breaker thresholds with live counters, for one cluster. Clones share them.
#[derive(Clone)]
pub struct CircuitBreaker {
    shared: Arc<Shared>,
    /// Counts requests in flight (the `max_requests` counter) and retries in flight.
    retries: RetryBudget,
}

struct Shared {
    max_connections: AtomicU32,
    max_pending: AtomicU32,
    max_requests: AtomicU32,
    connections: AtomicU32,
    pending: AtomicU32,
}

impl CircuitBreaker {
    /// A breaker with `thresholds` and nothing in flight.
    pub fn new(thresholds: &CircuitBreakers) -> Self {
        Self {
            shared: Arc::new(Shared {
                max_connections: AtomicU32::new(thresholds.max_connections),
                max_pending: AtomicU32::new(thresholds.max_pending_requests),
                max_requests: AtomicU32::new(thresholds.max_requests),
                connections: AtomicU32::new(0),
                pending: AtomicU32::new(0),
            }),
            retries: RetryBudget::new(thresholds),
        }
    }

    /// Applies new thresholds. What is in flight keeps its permits; a lowered cap refuses new
    /// work until enough of it ends.
    pub fn update(&self, thresholds: &CircuitBreakers) {
        let s = &self.shared;
        s.max_connections
            .store(thresholds.max_connections, Ordering::Release);
        s.max_pending
            .store(thresholds.max_pending_requests, Ordering::Release);
        s.max_requests
            .store(thresholds.max_requests, Ordering::Release);
        self.retries.update(thresholds);
    }

    /// Takes a request slot (`max_requests`).
    pub fn try_request(&self) -> Result<Permit, Overflow> {
        let max = self.shared.max_requests.load(Ordering::Acquire);
        match self.retries.request_below(max) {
            Some(guard) => Ok(Permit(Slot::Request { _guard: guard })),
            None => Err(Overflow {
                limit: Limit::MaxRequests,
                max,
            }),
        }
    }

    /// Takes a pending-request slot (`max_pending_requests`), held while waiting for a
    /// connection.
    pub fn try_pending(&self) -> Result<Permit, Overflow> {
        self.take(Limit::MaxPendingRequests)
    }

    /// Takes a connection slot (`max_connections`), held while the connection is open.
    pub fn try_connection(&self) -> Result<Permit, Overflow> {
        self.take(Limit::MaxConnections)
    }

    /// Takes a retry slot: the retry budget when configured, else `max_retries`. The budget is a
    /// share of the requests in flight counted by [`try_request`](Self::try_request).
    pub fn try_retry(&self) -> Result<Permit, Overflow> {
        match self.retries.try_retry() {
            Some(permit) => Ok(Permit(Slot::Retry { _permit: permit })),
            None => Err(Overflow {
                limit: Limit::MaxRetries,
                max: self.retries.max_retries_now(),
            }),
        }
    }

    /// Requests in flight.
    pub fn requests(&self) -> u32 {
        self.retries.active_requests()
    }

    /// Retries in flight.
    pub fn retries(&self) -> u32 {
        self.retries.active_retries()
    }

    /// Requests waiting for a connection.
    pub fn pending(&self) -> u32 {
        self.shared.pending.load(Ordering::Acquire)
    }

    /// Open connections.
    pub fn connections(&self) -> u32 {
        self.shared.connections.load(Ordering::Acquire)
    }

    fn take(&self, limit: Limit) -> Result<Permit, Overflow> {
        let (count, max) = self.shared.counter(limit);
        let max = max.load(Ordering::Acquire);
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| Overflow { limit, max })?;
        Ok(Permit(Slot::Counter {
            shared: self.shared.clone(),
            limit,
        }))
    }
}

impl Shared {
    /// The counter and the cap of a limit kept here (connections and pending requests).
    fn counter(&self, limit: Limit) -> (&AtomicU32, &AtomicU32) {
        match limit {
            Limit::MaxConnections => (&self.connections, &self.max_connections),
            _ => (&self.pending, &self.max_pending),
        }
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.shared;
        let load = |a: &AtomicU32| a.load(Ordering::Relaxed);
        f.debug_struct("CircuitBreaker")
            .field(
                "connections",
                &(self.connections(), load(&s.max_connections)),
            )
            .field("pending", &(self.pending(), load(&s.max_pending)))
            .field("requests", &(self.requests(), load(&s.max_requests)))
            .field("retries", &(self.retries(), self.retries.max_retries_now()))
            .finish()
    }
}

/// A slot of a [`CircuitBreaker`], released when dropped.
#[derive(Debug)]
pub struct Permit(Slot);

impl Permit {
    /// The cap this slot counts against.
    pub fn limit(&self) -> Limit {
        match &self.0 {
            Slot::Counter { limit, .. } => *limit,
            Slot::Request { .. } => Limit::MaxRequests,
            Slot::Retry { .. } => Limit::MaxRetries,
        }
    }
}

enum Slot {
    Counter {
        shared: Arc<Shared>,
        limit: Limit,
    },
    /// Held for its `Drop`.
    Request {
        _guard: RequestGuard,
    },
    /// Held for its `Drop`.
    Retry {
        _permit: RetryPermit,
    },
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Slot::Counter { shared, limit } = self {
            shared.counter(*limit).0.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = match self {
            Slot::Counter { limit, .. } => *limit,
            Slot::Request { .. } => Limit::MaxRequests,
            Slot::Retry { .. } => Limit::MaxRetries,
        };
        f.write_str(limit.as_str())
    }
}
