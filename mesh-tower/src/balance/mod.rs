//! Load balancers: which endpoint of a cluster gets the next request.
//!
//! One [`Balancer`] exists per cluster and is rebuilt on every EDS update; the rebuild keeps the
//! [`EndpointStats`] (requests in flight, latency estimate, ejection) of the addresses the new
//! assignment still lists, so an update never resets what the balancers and the outlier detector
//! learned. Picking takes no lock and allocates nothing: every structure a pick reads (weights,
//! cumulative sums, the hash ring) is built in [`Balancer::new`].
//!
//! # Policies
//! The cluster's [`LbPolicy`] maps to a [`BalancerKind`]:
//!
//! | `LbPolicy` | [`BalancerKind`] | behaviour |
//! |---|---|---|
//! | `LeastRequest { choice_count }` (the default) | [`BalancerKind::PeakEwma`] | power of two choices over a peak-EWMA cost, `latency × (in_flight + 1) / weight`, like Linkerd and finagle; before an endpoint's first latency sample its latency is [`DEFAULT_RTT`], so cost follows the in-flight count |
//! | `RoundRobin` | [`BalancerKind::RoundRobin`] | weighted round robin: exact over a cycle, interleaved |
//! | `Random` | [`BalancerKind::Random`] | weighted random |
//! | `RingHash { .. }`, `Maglev` | [`BalancerKind::RingHash`] | Ketama-style consistent hashing on the request hash from [`hash_request`] |
//!
//! Envoy's plain least request (compare `choice_count` random endpoints by requests in flight) is
//! [`BalancerKind::LeastRequest`], available through [`Balancer::with_kind`]. `Maglev` is served
//! by the ring: both are consistent hashes, the ring moves slightly more keys on membership changes
//! and has a less even spread for a given table size.
//!
//! # Health, ejection, priorities, localities
//! - Only endpoints whose [`HealthStatus::is_usable`] holds are picked; `Degraded` ones only when
//!   no priority has a healthy one.
//! - The lowest priority with a usable endpoint that outlier detection has not ejected takes all
//!   the traffic (priority failover without Envoy's overprovisioning factor: a priority is used
//!   entirely or not at all). When every usable endpoint is ejected, ejection is ignored, as
//!   Envoy's panic threshold does.
//! - Within a priority, when localities carry weights, a locality is chosen by weight first, then
//!   an endpoint within it. Without locality weights the priority's endpoints form one set. The
//!   ring weights each endpoint by `locality weight × endpoint weight / locality total` instead.
//!   Locality weights are used as given: Envoy also scales them by the share of the locality's
//!   endpoints that are healthy; this does not.
//! - `avoid` (the address a retry just failed on) is skipped when another endpoint of the same
//!   priority can be picked.

mod hash;
mod index;
mod layer;
mod least_request;
mod peak_ewma;
mod random;
mod ring;
mod round_robin;
mod set;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mesh_core::cluster::LbPolicy;
use mesh_core::endpoint::{ClusterLoadAssignment, HealthStatus};
use tokio::time::Instant;

use crate::endpoint::EndpointStats;

pub use hash::hash_request;
pub use layer::{BalanceError, BalanceLayer, Balanced};
pub use peak_ewma::{DEFAULT_DECAY, DEFAULT_RTT};

use set::{Filter, Tier};

/// The algorithm a [`Balancer`] runs. The module docs say how an [`LbPolicy`] maps to one.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BalancerKind {
    /// Weighted round robin.
    RoundRobin,
    /// Weighted random.
    Random,
    /// Envoy's least request: `choice_count` random endpoints, the one with the fewest requests in
    /// flight per unit of weight wins.
    LeastRequest {
        /// Endpoints compared. Default: 2.
        choice_count: u32,
    },
    /// Power of two choices over `peak-EWMA latency × (in_flight + 1) / weight`.
    PeakEwma {
        /// Latency assumed before an endpoint's first sample. Default: [`DEFAULT_RTT`] (30 ms).
        default_rtt: Duration,
        /// Time constant of the moving average. Default: [`DEFAULT_DECAY`] (10 s).
        decay: Duration,
    },
    /// Consistent hashing on a ring of endpoint points.
    RingHash {
        /// Ring size lower bound. Default: 1024.
        minimum_ring_size: u64,
        /// Ring size upper bound. Default: 8M.
        maximum_ring_size: u64,
    },
}

impl BalancerKind {
    /// The peak-EWMA balancer with its defaults.
    pub fn peak_ewma() -> Self {
        BalancerKind::PeakEwma {
            default_rtt: DEFAULT_RTT,
            decay: DEFAULT_DECAY,
        }
    }
}

impl From<&LbPolicy> for BalancerKind {
    fn from(policy: &LbPolicy) -> Self {
        match policy {
            LbPolicy::RoundRobin => BalancerKind::RoundRobin,
            LbPolicy::Random => BalancerKind::Random,
            LbPolicy::LeastRequest { .. } => BalancerKind::peak_ewma(),
            LbPolicy::RingHash {
                minimum_ring_size,
                maximum_ring_size,
            } => BalancerKind::RingHash {
                minimum_ring_size: *minimum_ring_size,
                maximum_ring_size: *maximum_ring_size,
            },
            LbPolicy::Maglev => BalancerKind::RingHash {
                minimum_ring_size: 1024,
                maximum_ring_size: 8 * 1024 * 1024,
            },
        }
    }
}

/// The load balancer of one cluster. Cloning is cheap: clones share one set of endpoints,
/// counters and statistics.
#[derive(Debug, Clone)]
pub struct Balancer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    kind: BalancerKind,
    /// Every listed endpoint, once per address, in assignment order.
    endpoints: Vec<Arc<EndpointStats>>,
    /// Healthy endpoints by ascending priority, then degraded ones; empty tiers left out.
    tiers: Vec<Tier>,
    /// EWMA time constant handed to picks.
    decay: Duration,
}

impl Balancer {
    /// Builds from the cluster's policy and endpoints. `previous` lets statistics (in flight,
    /// EWMA, ejection) survive EDS updates: the [`EndpointStats`] of addresses present in both are
    /// reused.
    pub fn new(
        policy: &LbPolicy,
        cla: &ClusterLoadAssignment,
        previous: Option<&Balancer>,
    ) -> Balancer {
        Self::with_kind(BalancerKind::from(policy), cla, previous)
    }

    /// Builds with an explicit algorithm; see [`Balancer::new`].
    pub fn with_kind(
        kind: BalancerKind,
        cla: &ClusterLoadAssignment,
        previous: Option<&Balancer>,
    ) -> Balancer {
        let epoch = previous
            .and_then(|p| p.inner.endpoints.first())
            .map_or_else(Instant::now, |s| s.epoch());
        let mut known: HashMap<SocketAddr, Arc<EndpointStats>> = previous
            .map(|p| {
                p.inner
                    .endpoints
                    .iter()
                    .map(|s| (s.addr, Arc::clone(s)))
                    .collect()
            })
            .unwrap_or_default();
        let mut endpoints = Vec::new();
        let mut stats_of = HashMap::new();
        for e in cla.endpoints() {
            stats_of.entry(e.address).or_insert_with(|| {
                let s = known
                    .remove(&e.address)
                    .unwrap_or_else(|| Arc::new(EndpointStats::new(e.address, epoch)));
                endpoints.push(Arc::clone(&s));
                s
            });
        }

        let mut priorities: Vec<u32> = cla.localities.iter().map(|l| l.priority).collect();
        priorities.sort_unstable();
        priorities.dedup();
        let ring = match kind {
            BalancerKind::RingHash {
                minimum_ring_size,
                maximum_ring_size,
            } => Some((minimum_ring_size, maximum_ring_size)),
            _ => None,
        };
        let mut tiers = Vec::new();
        for degraded in [false, true] {
            for &p in &priorities {
                let wanted =
                    |h: HealthStatus| h.is_usable() && (h == HealthStatus::Degraded) == degraded;
                let localities = cla.localities.iter().filter(|l| l.priority == p);
                if let Some(t) = Tier::build(localities, wanted, &stats_of, ring) {
                    tiers.push(t);
                }
            }
        }
        let decay = match kind {
            BalancerKind::PeakEwma { decay, .. } => decay,
            _ => DEFAULT_DECAY,
        };
        Balancer {
            inner: Arc::new(Inner {
                kind,
                endpoints,
                tiers,
                decay,
            }),
        }
    }

    /// The algorithm in use.
    pub fn kind(&self) -> &BalancerKind {
        &self.inner.kind
    }

    /// Picks an endpoint. `hash` is the request hash for ring hash (`None`: a random point);
    /// `avoid` is an address to skip when another endpoint can be picked (the one a retry just
    /// failed on). `None` when no endpoint is usable.
    pub fn pick(&self, hash: Option<u64>, avoid: Option<SocketAddr>) -> Option<Pick> {
        let inner = &*self.inner;
        let filter = Filter::new(avoid, true);
        for tier in &inner.tiers {
            if let Some(s) = self.pick_in(tier, hash, &filter) {
                return Some(self.pick_of(s));
            }
            if avoid.is_some()
                && let Some(s) = self.pick_in(tier, hash, &filter.allowing_avoided())
            {
                return Some(self.pick_of(s));
            }
        }
        // Every usable endpoint is ejected: ignore ejection (Envoy's panic mode).
        let tier = inner.tiers.first()?;
        let filter = Filter::new(avoid, false);
        self.pick_in(tier, hash, &filter)
            .or_else(|| self.pick_in(tier, hash, &filter.allowing_avoided()))
            .map(|s| self.pick_of(s))
    }

    /// Every endpoint the assignment lists (usable or not), once per address: for outlier
    /// detection and debug views.
    pub fn endpoints(&self) -> &[Arc<EndpointStats>] {
        &self.inner.endpoints
    }

    fn pick_of(&self, stats: &Arc<EndpointStats>) -> Pick {
        Pick::new(Arc::clone(stats), self.inner.decay)
    }

    fn pick_in<'t>(
        &self,
        tier: &'t Tier,
        hash: Option<u64>,
        filter: &Filter,
    ) -> Option<&'t Arc<EndpointStats>> {
        if let Some(ring) = &tier.ring {
            return ring.pick(hash.unwrap_or_else(|| fastrand::u64(..)), filter);
        }
        let rr = matches!(self.inner.kind, BalancerKind::RoundRobin);
        tier.groups_from(rr).find_map(|g| match &self.inner.kind {
            BalancerKind::RoundRobin => round_robin::pick(g, filter),
            BalancerKind::Random | BalancerKind::RingHash { .. } => random::pick(g, filter),
            BalancerKind::LeastRequest { choice_count } => {
                least_request::pick(g, *choice_count, filter)
            }
            BalancerKind::PeakEwma { default_rtt, decay } => {
                peak_ewma::pick(g, *default_rtt, *decay, filter)
            }
        })
    }
}

/// An endpoint chosen for one request. It counts as a request in flight to the endpoint until it
/// is dropped or [observed](Pick::observe).
#[derive(Debug)]
pub struct Pick {
    stats: Arc<EndpointStats>,
    decay: Duration,
}

impl Pick {
    fn new(stats: Arc<EndpointStats>, decay: Duration) -> Self {
        stats.in_flight.fetch_add(1, Ordering::Relaxed);
        Self { stats, decay }
    }

    /// The endpoint's address.
    pub fn addr(&self) -> SocketAddr {
        self.stats.addr
    }

    /// The endpoint's live statistics.
    pub fn stats(&self) -> &Arc<EndpointStats> {
        &self.stats
    }

    /// Records the request's latency in the endpoint's peak-EWMA estimate, then ends the request.
    pub fn observe(self, latency: Duration) {
        peak_ewma::observe(&self.stats, Instant::now(), latency, self.decay);
    }
}

impl Drop for Pick {
    fn drop(&mut self) {
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
