//! Per-endpoint live statistics shared by the load balancers, the outlier detector and the client.
//!
//! One [`EndpointStats`] exists per endpoint address of a cluster and survives EDS updates, so a
//! new endpoint list keeps the in-flight counts, latency estimates and ejections of the endpoints
//! it still contains. Every field is an atomic: the request path never locks.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use tokio::time::Instant;

/// Live statistics of one endpoint.
#[derive(Debug)]
pub struct EndpointStats {
    /// The endpoint.
    pub addr: SocketAddr,
    /// The endpoint as a URI authority, built once so requests need not format it.
    pub authority: http::uri::Authority,
    /// Requests in flight to it.
    pub in_flight: AtomicU32,
    /// Peak-EWMA latency estimate in nanoseconds (0 = no sample yet).
    pub ewma_nanos: AtomicU64,
    /// When the EWMA was last updated, as nanoseconds since [`EndpointStats::epoch`].
    pub ewma_stamp: AtomicU64,
    /// Ejected by outlier detection until this instant (nanoseconds since the epoch; 0 = not
    /// ejected).
    pub ejected_until: AtomicU64,
    /// Times ejected so far (ejection time grows with it).
    pub ejections: AtomicU32,
    /// Consecutive 5xx (or connect failures) seen.
    pub consecutive_5xx: AtomicU32,
    /// Consecutive gateway failures (502, 503, 504, connect failures) seen.
    pub consecutive_gateway: AtomicU32,
    /// Successes in the current outlier-detection interval.
    pub interval_success: AtomicU32,
    /// Failures in the current outlier-detection interval.
    pub interval_failure: AtomicU32,
    epoch: Instant,
}

impl EndpointStats {
    /// Fresh statistics for `addr`, timed from `epoch` (share one epoch per cluster).
    pub fn new(addr: SocketAddr, epoch: Instant) -> Self {
        let authority = http::uri::Authority::try_from(addr.to_string().as_str())
            .expect("a socket address is a valid authority");
        Self {
            addr,
            authority,
            in_flight: AtomicU32::new(0),
            ewma_nanos: AtomicU64::new(0),
            ewma_stamp: AtomicU64::new(0),
            ejected_until: AtomicU64::new(0),
            ejections: AtomicU32::new(0),
            consecutive_5xx: AtomicU32::new(0),
            consecutive_gateway: AtomicU32::new(0),
            interval_success: AtomicU32::new(0),
            interval_failure: AtomicU32::new(0),
            epoch,
        }
    }

    /// The instant nanosecond timestamps count from.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// `now` as nanoseconds since the epoch.
    pub fn nanos(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    /// True while outlier detection has this endpoint ejected.
    #[inline]
    pub fn is_ejected(&self, now: Instant) -> bool {
        let until = self.ejected_until.load(Ordering::Relaxed);
        until != 0 && self.nanos(now) < until
    }
}
