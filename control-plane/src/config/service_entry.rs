//! `ServiceEntry` and `WorkloadEntry` (networking.istio.io): the services of the mesh and their
//! static endpoints.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use serde::Deserialize;

use super::common::{Port, check_export_to, check_host};
use super::diagnostic::Findings;

/// Protocols served over HTTP by the mesh; any other protocol is accepted with a warning.
const HTTP_PROTOCOLS: [&str; 4] = ["HTTP", "HTTP2", "GRPC", "GRPC-WEB"];

/// The `spec` of a `ServiceEntry`: hosts and ports of a service and where it runs.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ServiceEntry {
    /// DNS names of the service; each gets a listener and route table per port. Required.
    pub hosts: Vec<String>,
    /// Ports served. Required (at least one).
    pub ports: Vec<ServicePort>,
    /// Only `STATIC` (endpoints listed here or selected `WorkloadEntry`s). Required: Istio's
    /// default `NONE` and `DNS` are refused.
    pub resolution: Option<String>,
    /// Static endpoints. Default: none. Exclusive with `workloadSelector`.
    pub endpoints: Vec<WorkloadEntry>,
    /// Selects the `WorkloadEntry`s of the same namespace whose labels include these. Default: none.
    pub workload_selector: Option<WorkloadSelector>,
    /// `MESH_INTERNAL` or `MESH_EXTERNAL`; accepted, `MESH_EXTERNAL` has no effect (warning).
    pub location: Option<String>,
    /// Accepted; values other than `*` are ignored with a warning.
    pub export_to: Vec<String>,
}

/// One port of a service.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    /// The port clients dial, 1–65535. Required.
    pub number: Port,
    /// Name, unique in the entry; endpoints map it to their own port. Required.
    #[serde(default)]
    pub name: String,
    /// `HTTP`, `HTTP2`, `GRPC` or `GRPC-WEB`; other protocols are served as HTTP with a warning.
    /// Default: HTTP.
    #[serde(default)]
    pub protocol: Option<String>,
    /// The endpoints' port when an endpoint does not name one. Default: `number`.
    #[serde(default)]
    pub target_port: Option<Port>,
}

/// `workloadSelector`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct WorkloadSelector {
    /// Labels a `WorkloadEntry` must carry (all of them) to be selected.
    pub labels: BTreeMap<String, String>,
}

/// One workload: the `spec` of a `WorkloadEntry`, and also an item of `ServiceEntry.endpoints`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WorkloadEntry {
    /// IP address (v4 or v6). Required; DNS names are refused (no DNS resolution).
    pub address: String,
    /// Port per service port name; unnamed ports use the service's `targetPort`, else its number.
    pub ports: BTreeMap<String, Port>,
    /// Labels, matched by `workloadSelector` and by `DestinationRule` subsets.
    pub labels: BTreeMap<String, String>,
    /// `region/zone/subzone`. Default: empty locality.
    pub locality: Option<String>,
    /// Load-balancing weight. Default: 1 (0 also means 1, as in Istio).
    pub weight: Option<u32>,
    /// Service account of the workload; kept for identity, not used for routing. Default: none.
    pub service_account: Option<String>,
}

impl WorkloadEntry {
    /// The parsed address (valid once the document was accepted).
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.parse().ok()
    }

    /// Weight with Istio's default applied.
    pub fn effective_weight(&self) -> u32 {
        match self.weight {
            None | Some(0) => 1,
            Some(w) => w,
        }
    }

    /// True when every label in `selector` is present with the same value.
    pub fn has_labels(&self, selector: &BTreeMap<String, String>) -> bool {
        selector.iter().all(|(k, v)| self.labels.get(k) == Some(v))
    }

    pub(crate) fn check(&self, at: &str, f: &mut Findings) {
        if self.address.is_empty() {
            f.error(format!("{at}address"), "must not be empty");
        } else if self.ip().is_none() {
            f.error(
                format!("{at}address"),
                format!(
                    "{:?} is not an IP address (DNS names and Unix sockets are not supported)",
                    self.address
                ),
            );
        }
        if let Some(l) = &self.locality
            && l.split('/').count() > 3
        {
            f.error(
                format!("{at}locality"),
                format!("{l:?} is not region/zone/subzone"),
            );
        }
    }
}

impl ServiceEntry {
    pub(crate) fn check(&self, f: &mut Findings) {
        if self.hosts.is_empty() {
            f.error("spec.hosts", "must list at least one host");
        }
        for (i, h) in self.hosts.iter().enumerate() {
            check_host(h, &format!("spec.hosts[{i}]"), f);
        }
        if self.ports.is_empty() {
            f.error("spec.ports", "must list at least one port");
        }
        let (mut names, mut numbers) = (HashSet::new(), HashSet::new());
        for (i, p) in self.ports.iter().enumerate() {
            let at = format!("spec.ports[{i}]");
            if p.name.is_empty() {
                f.error(format!("{at}.name"), "must not be empty");
            } else if !names.insert(p.name.as_str()) {
                f.error(
                    format!("{at}.name"),
                    format!("duplicate port name {:?}", p.name),
                );
            }
            if !numbers.insert(p.number) {
                f.error(
                    format!("{at}.number"),
                    format!("duplicate port {}", p.number),
                );
            }
            if let Some(proto) = &p.protocol {
                let upper = proto.to_ascii_uppercase();
                if !HTTP_PROTOCOLS.contains(&upper.as_str()) {
                    f.warn(
                        format!("{at}.protocol"),
                        format!("protocol {proto:?} not supported, the port is served as HTTP"),
                    );
                }
            }
        }
        match self.resolution.as_deref() {
            Some("STATIC") => {}
            Some(other) => f.error(
                "spec.resolution",
                format!("{other:?} is not supported: only STATIC is supported"),
            ),
            None => f.error(
                "spec.resolution",
                "missing: Istio's default NONE is not supported; only STATIC is supported",
            ),
        }
        if self.workload_selector.is_some() && !self.endpoints.is_empty() {
            f.error(
                "spec.workloadSelector",
                "endpoints and workloadSelector are mutually exclusive",
            );
        }
        for (i, e) in self.endpoints.iter().enumerate() {
            let at = format!("spec.endpoints[{i}].");
            e.check(&at, f);
            for name in e.ports.keys() {
                if !names.contains(name.as_str()) {
                    f.error(
                        format!("{at}ports.{name}"),
                        format!("no port of this ServiceEntry is named {name:?}"),
                    );
                }
            }
        }
        match self.location.as_deref() {
            None | Some("MESH_INTERNAL") => {}
            Some("MESH_EXTERNAL") => f.warn(
                "spec.location",
                "MESH_EXTERNAL not supported, ignored: the service is treated as MESH_INTERNAL",
            ),
            Some(other) => f.error(
                "spec.location",
                format!("{other:?} is not MESH_INTERNAL or MESH_EXTERNAL"),
            ),
        }
        check_export_to(&self.export_to, f);
    }
}
