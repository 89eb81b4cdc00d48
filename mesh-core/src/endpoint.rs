//! Endpoints: Envoy's `ClusterLoadAssignment` without the protobuf.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use serde::Serialize;

use crate::validate::{FieldErrors, Validate};

/// Endpoint labels. Endpoints of one workload version usually carry equal labels, so the map is
/// shared rather than copied per endpoint.
pub type Labels = Arc<BTreeMap<String, String>>;

/// The endpoints of one cluster, grouped by locality and priority.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ClusterLoadAssignment {
    /// The cluster's EDS service name.
    pub cluster_name: String,
    /// Endpoint groups.
    pub localities: Vec<LocalityEndpoints>,
}

impl ClusterLoadAssignment {
    /// Every endpoint, in order.
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.localities.iter().flat_map(|l| l.endpoints.iter())
    }

    /// Makes endpoints with equal labels share one map: a pointer per endpoint instead of a map.
    pub fn share_labels(&mut self) {
        let mut shared: HashMap<BTreeMap<String, String>, Labels> = HashMap::new();
        for e in self
            .localities
            .iter_mut()
            .flat_map(|l| l.endpoints.iter_mut())
        {
            match shared.get(&*e.labels) {
                Some(s) => e.labels = Arc::clone(s),
                None => {
                    shared.insert((*e.labels).clone(), Arc::clone(&e.labels));
                }
            }
        }
    }
}

/// Endpoints sharing a locality and priority (`LocalityLbEndpoints`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LocalityEndpoints {
    /// Where they run.
    pub locality: Locality,
    /// 0 is used first; higher priorities take over when lower ones are unhealthy. Default: 0.
    pub priority: u32,
    /// Weight of this locality against others of the same priority. Default: none (equal).
    pub weight: Option<u32>,
    /// The endpoints.
    pub endpoints: Vec<Endpoint>,
}

/// Region / zone / sub-zone, as Kubernetes topology labels.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Locality {
    /// Region. Default: empty.
    pub region: String,
    /// Zone. Default: empty.
    pub zone: String,
    /// Sub-zone. Default: empty.
    pub sub_zone: String,
}

impl Locality {
    /// Parses Istio's `region/zone/subzone` form; missing parts are empty.
    pub fn parse(s: &str) -> Self {
        let mut it = s.splitn(3, '/');
        Self {
            region: it.next().unwrap_or_default().to_string(),
            zone: it.next().unwrap_or_default().to_string(),
            sub_zone: it.next().unwrap_or_default().to_string(),
        }
    }
}

/// One address that serves the cluster (`LbEndpoint`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// IP address and port.
    pub address: SocketAddr,
    /// Relative weight, at least 1. Default: 1.
    pub weight: u32,
    /// Health as reported by the control plane. Default: healthy.
    pub health: HealthStatus,
    /// Workload labels (carried as `envoy.lb` metadata, as Envoy's subset load balancer expects).
    /// Shared between endpoints with equal labels; see [`ClusterLoadAssignment::share_labels`].
    pub labels: Labels,
}

impl Endpoint {
    /// A healthy endpoint of weight 1 with no labels.
    pub fn new(address: SocketAddr) -> Self {
        Self {
            address,
            weight: 1,
            health: HealthStatus::Healthy,
            labels: Labels::default(),
        }
    }
}

/// Endpoint health (`HealthStatus`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Health not known; treated as healthy.
    Unknown,
    /// Serving.
    #[default]
    Healthy,
    /// Not serving; never picked.
    Unhealthy,
    /// Shutting down; never picked for new requests.
    Draining,
    /// Passed health checks but slow or overloaded; picked only when nothing healthy remains.
    Degraded,
}

impl HealthStatus {
    /// True when new requests may be sent.
    pub fn is_usable(self) -> bool {
        matches!(
            self,
            HealthStatus::Unknown | HealthStatus::Healthy | HealthStatus::Degraded
        )
    }
}

impl Validate for ClusterLoadAssignment {
    fn validate(&self) -> Result<(), FieldErrors> {
        let mut errs = FieldErrors::default();
        if self.cluster_name.is_empty() {
            errs.push("cluster_name", "must not be empty");
        }
        let mut seen = std::collections::HashSet::new();
        for (i, l) in self.localities.iter().enumerate() {
            if l.priority > MAX_PRIORITY {
                errs.push(
                    format!("localities[{i}].priority"),
                    format!("must not exceed {MAX_PRIORITY}"),
                );
            }
            if !seen.insert((l.priority, &l.locality)) {
                errs.push(
                    format!("localities[{i}].locality"),
                    "the same locality appears twice in one priority",
                );
            }
            if l.weight == Some(0) {
                errs.push(
                    format!("localities[{i}].weight"),
                    "must be at least 1 when set",
                );
            }
            for (j, e) in l.endpoints.iter().enumerate() {
                if e.weight == 0 {
                    errs.push(
                        format!("localities[{i}].endpoints[{j}].weight"),
                        "must be at least 1",
                    );
                }
                if e.address.port() == 0 {
                    errs.push(
                        format!("localities[{i}].endpoints[{j}].address"),
                        "port must not be 0",
                    );
                }
            }
        }
        // gRPC requires priorities 0..=N without gaps.
        let max = self.localities.iter().map(|l| l.priority).max();
        if let Some(max) = max
            && max <= MAX_PRIORITY
            && (0..=max).any(|p| !self.localities.iter().any(|l| l.priority == p))
        {
            errs.push("localities", "priorities must be contiguous from 0");
        }
        errs.into_result()
    }
}

/// The highest priority Envoy accepts.
pub const MAX_PRIORITY: u32 = 128;
