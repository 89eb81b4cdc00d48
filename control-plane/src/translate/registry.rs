//! The services of the mesh: every `host:port` defined by an accepted `ServiceEntry`, and its
//! endpoints (the entry's own, or the `WorkloadEntry`s it selects).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use mesh_core::Validate;
use mesh_core::endpoint::{
    ClusterLoadAssignment, Endpoint, HealthStatus, Locality, LocalityEndpoints,
};

use crate::config::service_entry::ServicePort;
use crate::config::{Diagnostic, Document, Kind, ServiceEntry, Severity, WorkloadEntry, fqdn};

/// One port of one host.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServicePortRef<'a> {
    pub(crate) doc: &'a Document,
    pub(crate) entry: &'a ServiceEntry,
    pub(crate) port: &'a ServicePort,
}

#[derive(Debug, Default)]
pub(crate) struct Registry<'a> {
    /// host → port → definition.
    pub(crate) services: BTreeMap<String, BTreeMap<u16, ServicePortRef<'a>>>,
    /// Hosts of rejected ServiceEntries, with the entry's description, for better messages.
    rejected: BTreeMap<String, String>,
    /// Accepted ServiceEntries by (namespace, name).
    entries: BTreeMap<(String, String), &'a ServiceEntry>,
    workloads: Vec<(&'a Document, &'a WorkloadEntry)>,
}

impl<'a> Registry<'a> {
    pub(crate) fn build(docs: &'a [Document], diags: &mut Vec<Diagnostic>) -> Self {
        let mut reg = Registry {
            workloads: docs
                .iter()
                .filter_map(|d| match &d.kind {
                    Kind::WorkloadEntry(w) => Some((d, w)),
                    _ => None,
                })
                .collect(),
            ..Default::default()
        };
        for doc in docs {
            if let Kind::ServiceEntry(se) = &doc.kind {
                reg.add(doc, se, diags);
            }
        }
        reg
    }

    fn add(&mut self, doc: &'a Document, se: &'a ServiceEntry, diags: &mut Vec<Diagnostic>) {
        let before = diags.len();
        for (i, host) in se.hosts.iter().enumerate() {
            for p in &se.ports {
                if let Some(earlier) = self.services.get(host).and_then(|m| m.get(&p.number.get()))
                {
                    diags.push(doc.diagnostic(
                        Severity::Error,
                        format!("spec.hosts[{i}]"),
                        format!(
                            "{host}:{} is already defined by {} ({}, document {}); only the first definition applies",
                            p.number,
                            earlier.doc.describe(),
                            earlier.doc.source.file.display(),
                            earlier.doc.source.index
                        ),
                    ));
                }
            }
        }
        let key = (doc.namespace.clone(), doc.name.clone());
        if self.entries.contains_key(&key) {
            diags.push(doc.diagnostic(
                Severity::Error,
                "metadata.name",
                format!(
                    "a ServiceEntry named {} is already defined",
                    doc.qualified_name()
                ),
            ));
        }
        if diags.len() == before {
            for p in &se.ports {
                let sp = ServicePortRef {
                    doc,
                    entry: se,
                    port: p,
                };
                if let Err(e) = self.assignment(sp, "check", &BTreeMap::new()).validate() {
                    diags.push(doc.diagnostic(Severity::Error, "spec.endpoints", e.to_string()));
                }
            }
        }
        if diags.len() == before {
            for host in &se.hosts {
                let ports = self.services.entry(host.clone()).or_default();
                for p in &se.ports {
                    ports.insert(
                        p.number.get(),
                        ServicePortRef {
                            doc,
                            entry: se,
                            port: p,
                        },
                    );
                }
            }
            self.entries.insert(key, se);
        } else {
            for host in &se.hosts {
                self.rejected
                    .entry(host.clone())
                    .or_insert_with(|| doc.describe());
            }
        }
    }

    /// The registered host that `host`, written in `namespace`, refers to: the host itself if some
    /// ServiceEntry defines it, else Istio's qualified short name.
    pub(crate) fn resolve(&self, host: &str, namespace: &str) -> Result<String, String> {
        if self.services.contains_key(host) {
            return Ok(host.to_string());
        }
        let full = fqdn(host, namespace);
        if self.services.contains_key(&full) {
            return Ok(full);
        }
        Err(self.unknown_host(host, &full))
    }

    /// The reason `host` (or its qualified form) is not known.
    pub(crate) fn unknown_host(&self, host: &str, full: &str) -> String {
        let shown = if host == full {
            format!("{host:?}")
        } else {
            format!("{host:?} ({full})")
        };
        match self.rejected.get(host).or_else(|| self.rejected.get(full)) {
            Some(by) => format!("unknown host {shown}: its {by} was rejected"),
            None => format!("unknown host {shown}: no ServiceEntry defines it"),
        }
    }

    /// Ports of a registered host.
    pub(crate) fn ports(&self, host: &str) -> Vec<u16> {
        self.services
            .get(host)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default()
    }

    /// The hosts of an accepted ServiceEntry.
    pub(crate) fn entry_hosts(&self, namespace: &str, name: &str) -> Option<&'a [String]> {
        self.entries
            .get(&(namespace.to_string(), name.to_string()))
            .map(|se| se.hosts.as_slice())
    }

    /// The port of `host` a destination means: `explicit` if given, else `table_port` if the host
    /// has it, else the host's only port.
    pub(crate) fn destination_port(
        &self,
        host: &str,
        explicit: Option<u16>,
        table_port: u16,
    ) -> Result<u16, String> {
        let ports = self.ports(host);
        let list = || {
            ports
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match explicit {
            Some(p) if ports.contains(&p) => Ok(p),
            Some(p) => Err(format!("host {host} has no port {p} (ports: {})", list())),
            None if ports.contains(&table_port) => Ok(table_port),
            None if ports.len() == 1 => Ok(ports[0]),
            None => Err(format!(
                "host {host} has several ports ({}); set the port",
                list()
            )),
        }
    }

    /// The endpoints of `sp` carrying all of `labels`, as a load assignment named `name`.
    /// Every workload address that serves some service port, with the workload's namespace and
    /// labels (the first service naming an address wins).
    pub(crate) fn workloads_by_address(
        &self,
    ) -> BTreeMap<SocketAddr, (&'a str, &'a BTreeMap<String, String>)> {
        let mut out = BTreeMap::new();
        let none = BTreeMap::new();
        for sp in self.services.values().flat_map(|ports| ports.values()) {
            for w in self.selected(*sp, &none) {
                if let Some(ip) = w.ip() {
                    out.entry(SocketAddr::new(ip, workload_port(*sp, w)))
                        .or_insert((sp.doc.namespace.as_str(), &w.labels));
                }
            }
        }
        out
    }

    /// The workloads behind a service port that carry `labels` (a subset's, or none).
    fn selected(
        &self,
        sp: ServicePortRef<'a>,
        labels: &BTreeMap<String, String>,
    ) -> Vec<&'a WorkloadEntry> {
        let all: Vec<&'a WorkloadEntry> = match &sp.entry.workload_selector {
            Some(sel) => self
                .workloads
                .iter()
                .filter(|(d, w)| d.namespace == sp.doc.namespace && w.has_labels(&sel.labels))
                .map(|(_, w)| *w)
                .collect(),
            None => sp.entry.endpoints.iter().collect(),
        };
        all.into_iter().filter(|w| w.has_labels(labels)).collect()
    }

    /// The SPIFFE IDs of the workloads behind a service port carrying `labels`: each one's
    /// `serviceAccount` in the service's namespace (sorted, deduplicated; workloads without a
    /// service account add nothing).
    pub(crate) fn identities(
        &self,
        sp: ServicePortRef<'a>,
        labels: &BTreeMap<String, String>,
        trust_domain: &str,
    ) -> Vec<String> {
        let ids: std::collections::BTreeSet<String> = self
            .selected(sp, labels)
            .into_iter()
            .filter_map(|w| w.service_account.as_deref())
            .filter_map(|sa| {
                mesh_core::identity::SpiffeId::new(trust_domain, &sp.doc.namespace, sa).ok()
            })
            .map(|id| id.to_string())
            .collect();
        ids.into_iter().collect()
    }

    pub(crate) fn assignment(
        &self,
        sp: ServicePortRef<'a>,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> ClusterLoadAssignment {
        let mut by_locality: BTreeMap<Locality, Vec<Endpoint>> = BTreeMap::new();
        for w in self.selected(sp, labels) {
            let Some(ip) = w.ip() else { continue };
            let port = workload_port(sp, w);
            let endpoint = Endpoint {
                address: SocketAddr::new(ip, port),
                weight: w.effective_weight(),
                health: HealthStatus::Healthy,
                labels: w.labels.clone().into(),
            };
            let locality = Locality::parse(w.locality.as_deref().unwrap_or(""));
            by_locality.entry(locality).or_default().push(endpoint);
        }
        let mut assignment = ClusterLoadAssignment {
            cluster_name: name.to_string(),
            localities: by_locality
                .into_iter()
                .map(|(locality, endpoints)| LocalityEndpoints {
                    locality,
                    priority: 0,
                    weight: None,
                    endpoints,
                })
                .collect(),
        };
        assignment.share_labels();
        assignment
    }
}

/// The port a workload serves a service port on: its own mapping for the port's name, else the
/// service's `targetPort`, else the port number.
fn workload_port(sp: ServicePortRef<'_>, w: &WorkloadEntry) -> u16 {
    w.ports
        .get(&sp.port.name)
        .or(sp.port.target_port.as_ref())
        .unwrap_or(&sp.port.number)
        .get()
}
