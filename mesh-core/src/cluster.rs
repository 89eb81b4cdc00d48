//! Clusters: Envoy's `Cluster` without the protobuf.

use std::time::Duration;

use serde::Serialize;

use crate::matcher::StringMatch;
use crate::validate::{FieldErrors, Validate};

/// A set of interchangeable endpoints and how to talk to them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cluster {
    /// Resource name, e.g. `outbound|9080|v2|reviews.default.svc.cluster.local`.
    pub name: String,
    /// Name of the `ClusterLoadAssignment` (EDS) holding the endpoints. Default: the cluster name.
    pub eds_service_name: String,
    /// How an endpoint is picked. Default: least request with two choices (P2C), as Istio.
    pub lb_policy: LbPolicy,
    /// Timeout to establish a connection. Default: 10 s (Istio's default).
    pub connect_timeout: Duration,
    /// Per-cluster limits (Envoy's default-priority `CircuitBreakers` thresholds).
    pub circuit_breakers: CircuitBreakers,
    /// Passive health checking. Default: none.
    pub outlier_detection: Option<OutlierDetection>,
    /// TLS to the endpoints. Default: plaintext.
    pub tls: Option<UpstreamTls>,
}

impl Cluster {
    /// A cluster with default policies whose endpoints come from EDS under the same name.
    pub fn new(name: impl Into<String>) -> Self {
        let name = name.into();
        Self {
            eds_service_name: name.clone(),
            name,
            lb_policy: LbPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            circuit_breakers: CircuitBreakers::default(),
            outlier_detection: None,
            tls: None,
        }
    }
}

/// Load-balancing policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LbPolicy {
    /// Weighted round robin.
    RoundRobin,
    /// Pick `choice_count` endpoints at random, use the one with fewest requests in flight.
    LeastRequest {
        /// Endpoints compared. Default: 2.
        choice_count: u32,
    },
    /// Uniformly random.
    Random,
    /// Consistent hashing on a ring; the key comes from the route's hash policies.
    RingHash {
        /// Ring size lower bound. Default: 1024.
        minimum_ring_size: u64,
        /// Ring size upper bound. Default: 8M.
        maximum_ring_size: u64,
    },
    /// Maglev consistent hashing.
    Maglev,
}

impl Default for LbPolicy {
    fn default() -> Self {
        LbPolicy::LeastRequest { choice_count: 2 }
    }
}

/// Envoy's circuit-breaker thresholds for the default priority.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CircuitBreakers {
    /// Connections to all endpoints together. Default: 1024.
    pub max_connections: u32,
    /// Requests waiting for a connection. Default: 1024.
    pub max_pending_requests: u32,
    /// Requests in flight. Default: 1024.
    pub max_requests: u32,
    /// Retries in flight. Default: 3.
    pub max_retries: u32,
    /// A retry budget that replaces `max_retries` when set. Default: none.
    pub retry_budget: Option<RetryBudget>,
}

impl Default for CircuitBreakers {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_pending_requests: 1024,
            max_requests: 1024,
            max_retries: 3,
            retry_budget: None,
        }
    }
}

/// Envoy's `RetryBudget`: retries in flight may not exceed a share of requests in flight.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetryBudget {
    /// Retries in flight as a percentage of requests in flight. Default: 20.
    pub budget_percent: f64,
    /// Retries always allowed regardless of the budget. Default: 3.
    pub min_retry_concurrency: u32,
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self {
            budget_percent: 20.0,
            min_retry_concurrency: 3,
        }
    }
}

/// Envoy's `OutlierDetection`: passive ejection of failing endpoints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutlierDetection {
    /// Consecutive 5xx (or connect failures) before ejection; `None` disables. Default: 5.
    pub consecutive_5xx: Option<u32>,
    /// Consecutive 502/503/504 before ejection; `None` disables. Default: none.
    pub consecutive_gateway_failure: Option<u32>,
    /// Time between ejection sweeps. Default: 10 s.
    pub interval: Duration,
    /// Base ejection time, multiplied by the number of ejections. Default: 30 s.
    pub base_ejection_time: Duration,
    /// Ejection time cap. Default: 300 s.
    pub max_ejection_time: Duration,
    /// Largest share of endpoints ejected at once, in percent. Default: 10.
    pub max_ejection_percent: u32,
    /// Success-rate ejection; `None` disables. Default: none.
    pub success_rate: Option<SuccessRateEjection>,
    /// Failure-percentage ejection; `None` disables. Default: none.
    pub failure_percentage: Option<FailurePercentageEjection>,
}

impl Default for OutlierDetection {
    fn default() -> Self {
        Self {
            consecutive_5xx: Some(5),
            consecutive_gateway_failure: None,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 10,
            success_rate: None,
            failure_percentage: None,
        }
    }
}

/// Ejects endpoints whose success rate is far below the cluster mean.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuccessRateEjection {
    /// Minimum endpoints with enough requests. Default: 5.
    pub minimum_hosts: u32,
    /// Minimum requests per endpoint per interval. Default: 100.
    pub request_volume: u32,
    /// Ejection below mean − stdev × factor / 1000. Default: 1900.
    pub stdev_factor: u32,
}

/// Ejects endpoints whose failure percentage exceeds a threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailurePercentageEjection {
    /// Failure percentage that ejects. Default: 85.
    pub threshold: u32,
    /// Minimum endpoints with enough requests. Default: 5.
    pub minimum_hosts: u32,
    /// Minimum requests per endpoint per interval. Default: 50.
    pub request_volume: u32,
}

/// TLS towards the cluster's endpoints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpstreamTls {
    /// SNI sent. Default: none.
    pub sni: Option<String>,
    /// The server certificate must carry a SAN matching one of these; empty accepts any identity
    /// the trust bundle vouches for.
    pub san_matchers: Vec<StringMatch>,
}

impl Validate for Cluster {
    fn validate(&self) -> Result<(), FieldErrors> {
        let mut errs = FieldErrors::default();
        if self.name.is_empty() {
            errs.push("name", "must not be empty");
        }
        if self.connect_timeout.is_zero() {
            errs.push("connect_timeout", "must be greater than zero");
        }
        match &self.lb_policy {
            LbPolicy::LeastRequest { choice_count } if *choice_count < 2 => {
                errs.push("lb_policy.choice_count", "must be at least 2")
            }
            LbPolicy::RingHash {
                minimum_ring_size,
                maximum_ring_size,
            } if minimum_ring_size > maximum_ring_size || *minimum_ring_size == 0 => errs.push(
                "lb_policy.minimum_ring_size",
                "must be at least 1 and not exceed maximum_ring_size",
            ),
            _ => {}
        }
        if let Some(b) = &self.circuit_breakers.retry_budget
            && !(0.0..=100.0).contains(&b.budget_percent)
        {
            errs.push(
                "circuit_breakers.retry_budget.budget_percent",
                "must be within 0–100",
            );
        }
        if let Some(o) = &self.outlier_detection {
            if o.interval.is_zero() {
                errs.push("outlier_detection.interval", "must be greater than zero");
            }
            if o.max_ejection_percent > 100 {
                errs.push(
                    "outlier_detection.max_ejection_percent",
                    "must be within 0–100",
                );
            }
            if o.max_ejection_time < o.base_ejection_time {
                errs.push(
                    "outlier_detection.max_ejection_time",
                    "must not be less than base_ejection_time",
                );
            }
            if matches!(o.consecutive_5xx, Some(0))
                || matches!(o.consecutive_gateway_failure, Some(0))
            {
                errs.push(
                    "outlier_detection",
                    "consecutive error counts must be at least 1",
                );
            }
            if let Some(f) = &o.failure_percentage
                && f.threshold > 100
            {
                errs.push(
                    "outlier_detection.failure_percentage.threshold",
                    "must be within 0–100",
                );
            }
        }
        errs.into_result()
    }
}
