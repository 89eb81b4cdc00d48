//! Endpoints: `ClusterLoadAssignment` with one `LocalityLbEndpoints` per model group.

use std::collections::{BTreeMap, HashMap};

use envoy_types::pb::envoy::config::core::v3::{
    Address, HealthStatus as PbHealth, Locality as PbLocality, Metadata, SocketAddress, address,
    socket_address::PortSpecifier,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint as PbEndpoint, LbEndpoint, LocalityLbEndpoints,
    lb_endpoint::HostIdentifier,
};
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use mesh_core::endpoint::{
    ClusterLoadAssignment as ModelAssignment, Endpoint, HealthStatus, LocalityEndpoints,
};

use super::u32v;

/// Metadata namespace Envoy's subset load balancer reads endpoint labels from.
const LB_METADATA: &str = "envoy.lb";

/// Encodes an endpoint assignment.
///
/// Every locality group gets a `load_balancing_weight`: the model's, or else the sum of its
/// endpoints' weights. gRPC drops localities without a weight (gRFC A27), and the sum keeps each
/// endpoint's share the same as when Envoy ignores locality weights. A group without endpoints and
/// without a weight gets none (Envoy rejects a weight of 0).
pub fn encode_assignment(a: &ModelAssignment) -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name: a.cluster_name.clone(),
        endpoints: a.localities.iter().map(locality).collect(),
        ..Default::default()
    }
}

fn locality(l: &LocalityEndpoints) -> LocalityLbEndpoints {
    let weight = l.weight.unwrap_or_else(|| {
        l.endpoints
            .iter()
            .fold(0u32, |sum, e| sum.saturating_add(e.weight))
    });
    LocalityLbEndpoints {
        locality: Some(PbLocality {
            region: l.locality.region.clone(),
            zone: l.locality.zone.clone(),
            sub_zone: l.locality.sub_zone.clone(),
        }),
        priority: l.priority,
        load_balancing_weight: (weight > 0).then(|| u32v(weight)),
        lb_endpoints: l.endpoints.iter().map(lb_endpoint).collect(),
        ..Default::default()
    }
}

fn lb_endpoint(e: &Endpoint) -> LbEndpoint {
    LbEndpoint {
        host_identifier: Some(HostIdentifier::Endpoint(PbEndpoint {
            address: Some(Address {
                address: Some(address::Address::SocketAddress(SocketAddress {
                    address: e.address.ip().to_string(),
                    port_specifier: Some(PortSpecifier::PortValue(u32::from(e.address.port()))),
                    ..Default::default()
                })),
            }),
            ..Default::default()
        })),
        health_status: health(e.health) as i32,
        load_balancing_weight: Some(u32v(e.weight)),
        metadata: (!e.labels.is_empty()).then(|| labels(&e.labels)),
    }
}

fn health(h: HealthStatus) -> PbHealth {
    match h {
        HealthStatus::Unknown => PbHealth::Unknown,
        HealthStatus::Healthy => PbHealth::Healthy,
        HealthStatus::Unhealthy => PbHealth::Unhealthy,
        HealthStatus::Draining => PbHealth::Draining,
        HealthStatus::Degraded => PbHealth::Degraded,
    }
}

/// `filter_metadata["envoy.lb"]`: the labels as a `Struct` of strings.
fn labels(labels: &BTreeMap<String, String>) -> Metadata {
    let fields = labels
        .iter()
        .map(|(k, v)| {
            let value = Value {
                kind: Some(Kind::StringValue(v.clone())),
            };
            (k.clone(), value)
        })
        .collect();
    Metadata {
        filter_metadata: HashMap::from([(LB_METADATA.to_owned(), Struct { fields })]),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
