//! The whole mesh configuration as one value: what the control plane serves and what a client holds.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::cluster::Cluster;
use crate::endpoint::{ClusterLoadAssignment, Endpoint, LocalityEndpoints};
use crate::listener::Listener;
use crate::route::{Route, RouteTable, VirtualHost};

/// Every resource by kind and name. Stored whole in one [`crate::Snapshot`], so a reader never sees
/// a route that points at a cluster from another generation. Each resource sits behind an `Arc`, so
/// publishing a new generation copies pointers, not endpoints, and unchanged resources are shared
/// between generations.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MeshResources {
    /// Listeners by name (`<host>:<port>`).
    pub listeners: BTreeMap<String, Arc<Listener>>,
    /// Inbound (server) listeners by name (see [`crate::inbound::inbound_name`]).
    pub inbound: BTreeMap<String, Arc<crate::inbound::InboundListener>>,
    /// Route tables by name.
    pub route_tables: BTreeMap<String, Arc<RouteTable>>,
    /// Clusters by name (`outbound|<port>|<subset>|<host>`).
    pub clusters: BTreeMap<String, Arc<Cluster>>,
    /// Endpoint assignments by EDS service name.
    pub assignments: BTreeMap<String, Arc<ClusterLoadAssignment>>,
}

impl MeshResources {
    /// Adds the target `target` (`<host>:<port>`) as a control plane would for a static config:
    /// its API listener and a route table of that name whose one virtual host (named `host`,
    /// domains `*`) holds `routes`.
    pub fn add_target(&mut self, target: &str, host: &str, routes: Vec<Route>) {
        self.listeners
            .insert(target.to_string(), Listener::api(target).into());
        let table = RouteTable {
            name: target.to_string(),
            virtual_hosts: vec![VirtualHost {
                name: host.to_string(),
                domains: vec!["*".into()],
                routes,
            }],
        };
        self.route_tables.insert(target.to_string(), table.into());
    }

    /// Adds `cluster` and its load assignment: `endpoints`, in one locality of default weight.
    pub fn add_cluster(&mut self, cluster: Cluster, endpoints: Vec<Endpoint>) {
        let name = cluster.name.clone();
        let assignment = ClusterLoadAssignment {
            cluster_name: name.clone(),
            localities: vec![LocalityEndpoints {
                endpoints,
                ..Default::default()
            }],
        };
        self.assignments.insert(name.clone(), assignment.into());
        self.clusters.insert(name, cluster.into());
    }
}

/// Istio's cluster name for `host:port`, with an optional subset.
///
/// ```
/// assert_eq!(mesh_core::cluster_name("reviews.default.svc.cluster.local", 9080, Some("v2")),
///            "outbound|9080|v2|reviews.default.svc.cluster.local");
/// assert_eq!(mesh_core::cluster_name("ratings", 80, None), "outbound|80||ratings");
/// ```
pub fn cluster_name(host: &str, port: u16, subset: Option<&str>) -> String {
    format!("outbound|{port}|{}|{host}", subset.unwrap_or(""))
}

/// The listener and route-table name for a target, `<host>:<port>`: what a proxyless gRPC client
/// asks for when it dials `xds:///<host>:<port>`.
pub fn target_name(host: &str, port: u16) -> String {
    format!("{host}:{port}")
}
