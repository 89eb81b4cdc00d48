//! The four resource types the client follows, in dependency order.

use crate::codec::{CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE};

/// A resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Kind {
    /// `Listener` (LDS).
    Listener,
    /// `RouteConfiguration` (RDS).
    Route,
    /// `Cluster` (CDS).
    Cluster,
    /// `ClusterLoadAssignment` (EDS).
    Endpoint,
}

impl Kind {
    /// All types, in the order a target resolves through them.
    pub const ALL: [Kind; 4] = [Kind::Listener, Kind::Route, Kind::Cluster, Kind::Endpoint];

    /// The type URL.
    pub fn type_url(self) -> &'static str {
        match self {
            Kind::Listener => LISTENER_TYPE,
            Kind::Route => ROUTE_TYPE,
            Kind::Cluster => CLUSTER_TYPE,
            Kind::Endpoint => ENDPOINT_TYPE,
        }
    }

    /// The type for a type URL.
    pub fn from_type_url(url: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.type_url() == url)
    }

    /// `LDS`, `RDS`, `CDS` or `EDS`.
    pub fn short(self) -> &'static str {
        match self {
            Kind::Listener => "LDS",
            Kind::Route => "RDS",
            Kind::Cluster => "CDS",
            Kind::Endpoint => "EDS",
        }
    }

    /// Index into per-type arrays.
    pub(crate) fn idx(self) -> usize {
        self as usize
    }

    /// True for Listener and Cluster: a state-of-the-world response carries all of them, so one
    /// missing from a response was deleted.
    pub(crate) fn full_state(self) -> bool {
        matches!(self, Kind::Listener | Kind::Cluster)
    }
}
