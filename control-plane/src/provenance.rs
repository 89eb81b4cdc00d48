//! Which served xDS resources each accepted document shaped, so `/debug/syncz` can say how many
//! connected clients ACKed or NACKed the xDS built from a document (and Kubernetes users see it
//! next to the document's status).
//!
//! A document shapes some resources of the hosts it is about (listeners and route tables are
//! named `<host>:<port>`, clusters and load assignments `outbound|<port>|<subset>|<host>`):
//! - `ServiceEntry`: all four, for its hosts;
//! - `WorkloadEntry`: the load assignments of the entries that select it;
//! - `VirtualService` (its hosts), `HTTPRoute` and `GRPCRoute` (their Service or ServiceEntry
//!   parents): the route tables;
//! - `DestinationRule`: the clusters and load assignments (its subsets) of its host;
//! - `PeerAuthentication` and `AuthorizationPolicy`: the inbound listeners of the connected
//!   servers they apply to (their namespace, or every one from the root namespace, narrowed by
//!   their selector).

use std::collections::BTreeSet;

use mesh_core::MeshResources;
use mesh_xds_client::codec;
use serde::Serialize;

use crate::config::{Document, Kind, fqdn};
use crate::translate::ROOT_NAMESPACE;
use crate::xds::NodeWorkload;

/// The resources one accepted document shaped.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DocumentResources {
    /// `kind`.
    pub kind: &'static str,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Where it came from (a file, or `kubernetes:<Kind>/<ns>/<name>`).
    pub source: String,
    /// `(type URL, resource name)` of every resource it shaped.
    #[serde(skip)]
    pub resources: BTreeSet<(&'static str, String)>,
}

/// The resources each of `docs` shaped in `resources`.
pub fn attribute(
    docs: &[&Document],
    resources: &MeshResources,
    nodes: &[NodeWorkload],
) -> Vec<DocumentResources> {
    docs.iter()
        .map(|d| {
            let mut out = DocumentResources {
                kind: d.kind.name(),
                namespace: d.namespace.clone(),
                name: d.name.clone(),
                source: d.source.file.display().to_string(),
                resources: BTreeSet::new(),
            };
            let types = shaped_types(&d.kind);
            for host in hosts(d, docs) {
                of_host(&host, types, resources, &mut out.resources);
            }
            for (name, l) in &resources.inbound {
                let applies = nodes.iter().any(|n| {
                    n.address == l.address
                        && (d.namespace == ROOT_NAMESPACE || d.namespace == n.namespace)
                        && policy_selects(d, &n.labels) == Some(true)
                });
                if applies {
                    out.resources.insert((codec::LISTENER_TYPE, name.clone()));
                }
            }
            out
        })
        .collect()
}

type Labels = std::collections::BTreeMap<String, String>;

/// For a policy document, whether it selects a workload with `labels`; `None` for other kinds.
fn policy_selects(d: &Document, labels: &Labels) -> Option<bool> {
    match &d.kind {
        Kind::AuthorizationPolicy(p) => Some(p.selects(labels)),
        Kind::PeerAuthentication(p) => Some(
            p.selector
                .as_ref()
                .is_none_or(|s| s.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))),
        ),
        _ => None,
    }
}

/// The hosts a document is about.
fn hosts(d: &Document, docs: &[&Document]) -> Vec<String> {
    let entry_hosts = |ns: &str, name: &str| -> Vec<String> {
        docs.iter()
            .find_map(|e| match &e.kind {
                Kind::ServiceEntry(s) if e.namespace == ns && e.name == name => {
                    Some(s.hosts.clone())
                }
                _ => None,
            })
            .unwrap_or_default()
    };
    match &d.kind {
        Kind::ServiceEntry(s) => s.hosts.clone(),
        Kind::WorkloadEntry(w) => docs
            .iter()
            .filter_map(|e| match &e.kind {
                Kind::ServiceEntry(s)
                    if e.namespace == d.namespace
                        && s.workload_selector
                            .as_ref()
                            .is_some_and(|sel| w.has_labels(&sel.labels)) =>
                {
                    Some(s.hosts.clone())
                }
                _ => None,
            })
            .flatten()
            .collect(),
        Kind::VirtualService(v) => v.hosts.iter().map(|h| fqdn(h, &d.namespace)).collect(),
        Kind::DestinationRule(r) => vec![fqdn(&r.host, &d.namespace)],
        Kind::HttpRoute(r) | Kind::GrpcRoute(r) => r
            .mesh_parents()
            .flat_map(|(_, p)| {
                let ns = p.namespace.as_deref().unwrap_or(&d.namespace);
                match p.mesh_kind() {
                    Some("ServiceEntry") => entry_hosts(ns, &p.name),
                    _ => vec![fqdn(&p.name, ns)],
                }
            })
            .collect(),
        Kind::PeerAuthentication(_) | Kind::AuthorizationPolicy(_) => Vec::new(),
    }
}

/// The types of resources a kind shapes for its hosts.
fn shaped_types(kind: &Kind) -> &'static [&'static str] {
    use codec::{CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE};
    match kind {
        Kind::ServiceEntry(_) => &[LISTENER_TYPE, ROUTE_TYPE, CLUSTER_TYPE, ENDPOINT_TYPE],
        Kind::WorkloadEntry(_) => &[ENDPOINT_TYPE],
        Kind::VirtualService(_) | Kind::HttpRoute(_) | Kind::GrpcRoute(_) => &[ROUTE_TYPE],
        Kind::DestinationRule(_) => &[CLUSTER_TYPE, ENDPOINT_TYPE],
        Kind::PeerAuthentication(_) | Kind::AuthorizationPolicy(_) => &[],
    }
}

/// Every resource of `types` named after `host`.
fn of_host(
    host: &str,
    types: &[&'static str],
    r: &MeshResources,
    out: &mut BTreeSet<(&'static str, String)>,
) {
    let target = |name: &str| {
        name.rsplit_once(':')
            .is_some_and(|(h, port)| h == host && port.parse::<u16>().is_ok())
    };
    let cluster = |name: &str| name.starts_with("outbound|") && name.ends_with(&format!("|{host}"));
    let names: [(&'static str, Vec<&String>); 4] = [
        (
            codec::LISTENER_TYPE,
            r.listeners.keys().filter(|n| target(n)).collect(),
        ),
        (
            codec::ROUTE_TYPE,
            r.route_tables.keys().filter(|n| target(n)).collect(),
        ),
        (
            codec::CLUSTER_TYPE,
            r.clusters.keys().filter(|n| cluster(n)).collect(),
        ),
        (
            codec::ENDPOINT_TYPE,
            r.assignments.keys().filter(|n| cluster(n)).collect(),
        ),
    ];
    for (t, list) in names {
        if types.contains(&t) {
            out.extend(list.into_iter().map(|n| (t, n.clone())));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::parse_file;

    const DOCS: &str = r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: web, namespace: default }
spec:
  hosts: [web.mesh.local]
  ports: [{ number: 8080, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints: [{ address: 10.0.0.1, labels: { app: web, version: v1 } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: web, namespace: default }
spec:
  host: web.mesh.local
  subsets: [{ name: v1, labels: { version: v1 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: default }
spec:
  hosts: [web.mesh.local]
  http: [{ route: [{ destination: { host: web.mesh.local, subset: v1 } }] }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: web, namespace: default }
spec:
  selector: { matchLabels: { app: web } }
  action: DENY
  rules: [{ to: [{ operation: { paths: [/admin] } }] }]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: elsewhere, namespace: other }
spec: { mtls: { mode: PERMISSIVE } }
"#;

    #[test]
    fn each_document_is_credited_with_the_resources_it_shaped() {
        let (docs, diags) = parse_file(std::path::Path::new("t.yaml"), DOCS);
        assert!(diags.is_empty(), "{diags:?}");
        let nodes = vec![NodeWorkload {
            address: "10.0.0.1:8080".parse().unwrap(),
            namespace: "default".into(),
            service_account: None,
            labels: BTreeMap::from([("app".to_string(), "web".to_string())]),
        }];
        let (resources, diags) = crate::translate::build_with(&docs, "cluster.local", &nodes);
        assert!(diags.is_empty(), "{diags:?}");
        let accepted: Vec<&Document> = docs.iter().collect();
        let by_kind = |kind: &str| -> Vec<(&'static str, String)> {
            attribute(&accepted, &resources, &nodes)
                .into_iter()
                .find(|d| d.kind == kind)
                .unwrap()
                .resources
                .into_iter()
                .map(|(t, n)| (crate::xds::short_type(t), n))
                .collect()
        };
        let se = by_kind("ServiceEntry");
        assert!(
            se.contains(&("LDS", "web.mesh.local:8080".into())),
            "{se:?}"
        );
        assert!(se.contains(&("EDS", "outbound|8080||web.mesh.local".into())));
        assert_eq!(
            by_kind("VirtualService"),
            [("RDS", "web.mesh.local:8080".into())]
        );
        let dr = by_kind("DestinationRule");
        assert!(dr.iter().all(|(t, _)| *t == "CDS" || *t == "EDS"), "{dr:?}");
        assert!(dr.contains(&("CDS", "outbound|8080|v1|web.mesh.local".into())));
        assert_eq!(
            by_kind("AuthorizationPolicy"),
            [("LDS", "xds.istio.io/grpc/lds/inbound/10.0.0.1:8080".into())]
        );
        assert!(
            by_kind("PeerAuthentication").is_empty(),
            "another namespace"
        );
    }
}
