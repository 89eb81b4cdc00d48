//! Workloads → inbound listeners (gRFC A36): one per workload address, its chains following the
//! `PeerAuthentication` that applies (workload, then namespace, then mesh-wide in the root
//! namespace; `UNSET` inherits; the mesh default is `STRICT`), and the workload's
//! AuthorizationPolicies as RBAC HTTP filters before the router.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::net::SocketAddr;
use std::sync::Arc;

use mesh_core::inbound::{
    FilterChain, INBOUND_TEMPLATE, InboundFilter, InboundListener, MtlsMode, inbound_name,
};

use super::registry::Registry;
use crate::config::{Document, Kind, PeerAuthentication};
use crate::xds::NodeWorkload;

/// Istio's root namespace: policies there apply to the whole mesh.
pub const ROOT_NAMESPACE: &str = "istio-system";

/// An inbound listener for every workload address the registry knows.
pub(crate) fn listeners(
    docs: &[Document],
    reg: &Registry<'_>,
    trust_domain: &str,
    nodes: &[NodeWorkload],
) -> BTreeMap<String, Arc<InboundListener>> {
    let policies: Vec<(&Document, &PeerAuthentication)> = docs
        .iter()
        .filter_map(|d| match &d.kind {
            Kind::PeerAuthentication(p) => Some((d, p)),
            _ => None,
        })
        .collect();
    // Workloads from the config, then servers known only from their xDS connection; a node's
    // labels add to a configured workload's (the config wins on a conflict).
    let mut workloads: BTreeMap<SocketAddr, (String, BTreeMap<String, String>)> = reg
        .workloads_by_address()
        .into_iter()
        .map(|(a, (ns, labels))| (a, (ns.to_string(), labels.clone())))
        .collect();
    for n in nodes {
        match workloads.entry(n.address) {
            Entry::Occupied(mut e) => {
                let labels = &mut e.get_mut().1;
                for (k, v) in &n.labels {
                    labels.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            Entry::Vacant(e) => {
                e.insert((n.namespace.clone(), n.labels.clone()));
            }
        }
    }
    let mut out = BTreeMap::new();
    for (addr, (ns, labels)) in &workloads {
        let (addr, ns) = (*addr, ns.as_str());
        let mode = mode_for(&policies, ns, labels, addr.port());
        let name = inbound_name(INBOUND_TEMPLATE, addr);
        // Authorization (AuthorizationPolicy → RBAC filters: AUDIT, DENY, ALLOW), then the app.
        let mut filters: Vec<InboundFilter> =
            super::authz::rbac_filters(docs, ns, labels, trust_domain)
                .into_iter()
                .map(InboundFilter::Rbac)
                .collect();
        filters.push(InboundFilter::Router);
        let listener = InboundListener {
            name: name.clone(),
            address: addr,
            filter_chains: FilterChain::for_mode(mode, addr.port(), filters),
        };
        out.insert(name, Arc::new(listener));
    }
    out
}

/// The mode for a workload's port: the most specific policy that sets one wins (document order
/// among equals).
pub(crate) fn mode_for(
    policies: &[(&Document, &PeerAuthentication)],
    ns: &str,
    labels: &BTreeMap<String, String>,
    port: u16,
) -> MtlsMode {
    let selects = |p: &PeerAuthentication| {
        p.selector
            .as_ref()
            .is_some_and(|s| s.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v)))
    };
    let workload = policies
        .iter()
        .filter(|(d, p)| d.namespace == ns && selects(p))
        .find_map(|(_, p)| {
            p.port_level_mtls
                .get(&port)
                .and_then(|m| m.mode())
                .or_else(|| p.mtls.as_ref().and_then(|m| m.mode()))
        });
    let wide = |namespace: &str| {
        policies
            .iter()
            .filter(|(d, p)| d.namespace == namespace && p.selector.is_none())
            .find_map(|(_, p)| p.mtls.as_ref().and_then(|m| m.mode()))
    };
    workload
        .or_else(|| wide(ns))
        .or_else(|| wide(ROOT_NAMESPACE))
        .unwrap_or_default()
}
