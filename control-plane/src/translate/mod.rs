//! Accepted config documents → [`mesh_core::MeshResources`], with Istio's names and defaults.
//!
//! For every `host:port` of every `ServiceEntry`:
//! - a [`Listener::api`] and a route table named `<host>:<port>`, whose one virtual host (same
//!   name) serves the domains `<host>` and `<host>:<port>`;
//! - the routes of the `VirtualService` or `HTTPRoute` for the host, or a single default route
//!   (prefix `/` → `outbound|<port>||<host>`, Istio's default retries);
//! - the cluster `outbound|<port>||<host>` and one `outbound|<port>|<subset>|<host>` per subset of
//!   the host's `DestinationRule`, each with a load assignment of the same name.
//!
//! `AuthorizationPolicy` documents do not change these resources: [`authz::rbac_filters`] turns
//! them into the RBAC filters of a workload's inbound listener.
//!
//! Documents that refer to something unknown or conflict with an earlier document are rejected
//! here with a [`Diagnostic`]; the rest still translates. Conflicts are settled by order: the
//! documents come in file then document order, and the first wins.

pub mod authz;
mod http_route;
mod inbound;
mod policy;
mod registry;
mod target;
mod virtual_service;

use std::collections::BTreeMap;

use mesh_core::listener::Listener;
use mesh_core::route::{Route, RouteTable, VirtualHost};
use mesh_core::{MeshResources, Validate, cluster_name, target_name};

use crate::config::{Diagnostic, Document, Kind, Severity};
use policy::Policies;
use registry::Registry;
use target::{Attached, Problems, Resolver, default_route};

pub use policy::istio_default_circuit_breakers;
pub use target::{
    ISTIO_DEFAULT_RETRIABLE_STATUS, ISTIO_DEFAULT_RETRY_ATTEMPTS, ISTIO_DEFAULT_RETRY_ON,
    istio_default_retry,
};

/// Translates `docs` (in file, then document order) into the mesh model.
///
/// Returns the resources and the semantic diagnostics: unknown hosts, subsets or ports, two
/// documents claiming the same host, and anything mesh-core's validation refuses. Each error
/// rejects only its own document.
pub fn build(docs: &[Document]) -> (MeshResources, Vec<Diagnostic>) {
    build_in(docs, DEFAULT_TRUST_DOMAIN)
}

/// Istio's default trust domain.
pub const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";

pub use inbound::ROOT_NAMESPACE;

/// As [`build`], with the identities of `ISTIO_MUTUAL` clusters in `trust_domain`.
pub fn build_in(docs: &[Document], trust_domain: &str) -> (MeshResources, Vec<Diagnostic>) {
    build_with(docs, trust_domain, &[])
}

/// As [`build_in`], with inbound listeners also for the servers that described themselves over
/// xDS ([`crate::xds::NodeWorkloads`]).
pub fn build_with(
    docs: &[Document],
    trust_domain: &str,
    nodes: &[crate::xds::NodeWorkload],
) -> (MeshResources, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    authz::check(docs, &mut diags);
    let reg = Registry::build(docs, &mut diags);
    let policies = Policies::build(docs, &reg, &mut diags);
    let routes = attach_routes(docs, &reg, &policies, &mut diags);

    let mut out = MeshResources::default();
    for (host, ports) in &reg.services {
        for (&port, sp) in ports {
            let target = target_name(host, port);
            let default = cluster_name(host, port, None);
            let policy = policies.by_host.get(host);
            let base = policy.map(|p| p.base.clone()).unwrap_or_default();
            let attached = routes.get(&(host.clone(), port));
            let table_routes = match attached {
                Some((_, r)) if !r.is_empty() => r.clone(),
                _ => vec![default_route(&default, base.hash.clone())],
            };
            let table = RouteTable {
                name: target.clone(),
                virtual_hosts: vec![VirtualHost {
                    name: target.clone(),
                    domains: vec![host.clone(), target.clone()],
                    routes: table_routes,
                }],
            };
            let listener = Listener::api(target.clone());
            let owner = attached.map_or(sp.doc, |(d, _)| *d);
            if checked(&table, owner, &mut diags) && checked(&listener, sp.doc, &mut diags) {
                out.route_tables.insert(target.clone(), table.into());
                out.listeners.insert(target.clone(), listener.into());
            }

            let no_labels = BTreeMap::new();
            let subsets = policy.map(|p| p.subsets.as_slice()).unwrap_or(&[]);
            let all = std::iter::once((None, &no_labels, &base));
            let each = subsets.iter().map(|(n, l, p)| (Some(*n), *l, p));
            for (subset, labels, p) in all.chain(each) {
                let name = cluster_name(host, port, subset);
                let mut cluster = p.cluster(&name);
                // ISTIO_MUTUAL without subjectAltNames: the server must be one of the workloads
                // behind the cluster, as Istio derives it from their service accounts.
                if let Some(tls) = &mut cluster.tls
                    && tls.san_matchers.is_empty()
                {
                    tls.san_matchers = reg
                        .identities(*sp, labels, trust_domain)
                        .into_iter()
                        .map(mesh_core::StringMatch::Exact)
                        .collect();
                }
                out.clusters.insert(name.clone(), cluster.into());
                let la = reg.assignment(*sp, &name, labels);
                out.assignments.insert(name, la.into());
            }
        }
    }
    out.inbound = inbound::listeners(docs, &reg, trust_domain, nodes);
    (out, diags)
}

/// Validates a generated resource; on failure reports it against `doc` and returns false.
fn checked<T: Validate>(value: &T, doc: &Document, diags: &mut Vec<Diagnostic>) -> bool {
    match value.validate() {
        Ok(()) => true,
        Err(e) => {
            for fe in e.0 {
                diags.push(doc.diagnostic(Severity::Error, "spec", fe.to_string()));
            }
            false
        }
    }
}

type RouteMap<'a> = BTreeMap<(String, u16), (&'a Document, Vec<Route>)>;

/// Routes of every accepted `VirtualService` and `HTTPRoute`, by `(host, port)`.
fn attach_routes<'a>(
    docs: &'a [Document],
    reg: &Registry<'a>,
    policies: &Policies<'a>,
    diags: &mut Vec<Diagnostic>,
) -> RouteMap<'a> {
    let mut claims: BTreeMap<String, &Document> = BTreeMap::new();
    let mut out = RouteMap::new();
    for doc in docs {
        let base = Resolver {
            reg,
            policies,
            namespace: &doc.namespace,
            table_port: 0,
        };
        let mut problems = Problems::default();
        let attached: Attached = match &doc.kind {
            Kind::VirtualService(vs) if vs.applies_to_mesh() => {
                virtual_service::translate(doc, vs, base, &mut problems)
            }
            Kind::HttpRoute(hr) | Kind::GrpcRoute(hr) if hr.mesh_parents().next().is_some() => {
                http_route::translate(doc, hr, base, &mut problems)
            }
            _ => continue,
        };
        for (field, host) in &attached.hosts {
            if let Some(earlier) = claims.get(host) {
                problems.push(
                    field.clone(),
                    format!(
                        "host {host} already has routes from {} ({}, document {}); only the first applies",
                        earlier.describe(),
                        earlier.source.file.display(),
                        earlier.source.index
                    ),
                );
            }
        }
        if problems.0.is_empty() {
            for (_, host) in attached.hosts {
                claims.insert(host, doc);
            }
            for (key, routes) in attached.tables {
                out.insert(key, (doc, routes));
            }
        } else {
            for (field, reason) in problems.0 {
                diags.push(doc.diagnostic(Severity::Error, field, reason));
            }
        }
    }
    out
}

#[cfg(test)]
mod error_tests;
#[cfg(test)]
mod feature_tests;
#[cfg(test)]
mod tests;
