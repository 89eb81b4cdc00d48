//! The versioned resource snapshot every ADS stream reads.
//!
//! One [`XdsSnapshot`] holds every encoded resource of one config generation. It is published
//! whole through a `mesh_core::Snapshot`, so a stream never mixes a route of one generation with a
//! cluster of another. Each resource carries a content version (a stable hash of its bytes): a
//! client is pushed a resource only when that version differs from what it was last sent.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use envoy_types::pb::google::protobuf::Any;
use tokio::time::Instant;

use mesh_xds_client::codec::{CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE};

/// The four resource types served.
pub const TYPES: [&str; 4] = [LISTENER_TYPE, ROUTE_TYPE, CLUSTER_TYPE, ENDPOINT_TYPE];

/// Short names for logs, metrics and the admin API.
pub fn short_type(type_url: &str) -> &'static str {
    match type_url {
        LISTENER_TYPE => "LDS",
        ROUTE_TYPE => "RDS",
        CLUSTER_TYPE => "CDS",
        ENDPOINT_TYPE => "EDS",
        _ => "other",
    }
}

/// True for the types whose state-of-the-world responses must carry every resource
/// (Listener and Cluster); RDS and EDS responses carry only what was asked for.
pub fn is_full_state_type(type_url: &str) -> bool {
    type_url == LISTENER_TYPE || type_url == CLUSTER_TYPE
}

/// One encoded resource.
#[derive(Debug)]
pub struct XdsResource {
    /// Resource name.
    pub name: String,
    /// Content version: a stable hash of the model (or of the encoded bytes without one).
    pub version: String,
    /// The encoded resource.
    pub any: Any,
    /// The mesh-core model it was encoded from, for `/debug/config_dump`.
    pub model: serde_json::Value,
    /// Sent only to clients that ask for it by name, never to wildcard subscriptions: inbound
    /// listeners, which a server requests by name (gRFC A36) and an Envoy subscribing to every
    /// listener must not try to bind.
    pub named_only: bool,
}

impl XdsResource {
    /// Wraps an encoded resource, computing its version.
    pub fn new(name: String, any: Any, model: serde_json::Value) -> Self {
        // The encoding is not canonical (protobuf maps, such as endpoint metadata, encode in
        // hash-map order), so the same content could get a new version on every build and be
        // pushed again. The model it came from is canonical JSON: hash that when there is one.
        let version = if model.is_null() {
            format!("{:016x}", fnv1a(&any.value))
        } else {
            format!("{:016x}", fnv1a(model.to_string().as_bytes()))
        };
        Self {
            name,
            version,
            any,
            model,
            named_only: false,
        }
    }

    /// Marks the resource [`XdsResource::named_only`].
    pub fn named_only(mut self) -> Self {
        self.named_only = true;
        self
    }
}

/// Every resource of one config generation, by type URL and name.
#[derive(Debug)]
pub struct XdsSnapshot {
    /// Increases by one with every published config.
    pub generation: u64,
    /// When this generation was published; pushes measure their latency from here.
    pub created: Instant,
    types: BTreeMap<&'static str, BTreeMap<String, Arc<XdsResource>>>,
}

impl Default for XdsSnapshot {
    fn default() -> Self {
        Self::new(0, Vec::new())
    }
}

impl XdsSnapshot {
    /// Builds a snapshot from `(type_url, resource)` pairs; unknown type URLs are kept too.
    pub fn new(generation: u64, resources: Vec<(&'static str, XdsResource)>) -> Self {
        let mut types: BTreeMap<&'static str, BTreeMap<String, Arc<XdsResource>>> =
            TYPES.iter().map(|t| (*t, BTreeMap::new())).collect();
        for (t, r) in resources {
            types
                .entry(t)
                .or_default()
                .insert(r.name.clone(), Arc::new(r));
        }
        Self {
            generation,
            created: Instant::now(),
            types,
        }
    }

    /// The resources of one type.
    pub fn of_type(&self, type_url: &str) -> Option<&BTreeMap<String, Arc<XdsResource>>> {
        self.types.get(type_url)
    }

    /// One resource.
    pub fn get(&self, type_url: &str, name: &str) -> Option<&Arc<XdsResource>> {
        self.types.get(type_url).and_then(|m| m.get(name))
    }

    /// The resources a subscription selects, in name order.
    pub fn select<'a>(
        &'a self,
        type_url: &str,
        sub: &'a Subscription,
    ) -> impl Iterator<Item = &'a Arc<XdsResource>> + 'a {
        let all = self.types.get(type_url);
        let wildcard = sub.wildcard;
        all.into_iter().flat_map(move |m| {
            m.values()
                .filter(move |r| (wildcard && !r.named_only) || sub.names.contains(&r.name))
        })
    }

    /// Resource count per type, for logs and metrics.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        self.types
            .iter()
            .map(|(t, m)| (short_type(t), m.len()))
            .collect()
    }
}

/// What a client asked for of one type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    /// Every resource of the type (an empty first request for LDS/CDS, or `*`).
    pub wildcard: bool,
    /// Resources asked for by name.
    pub names: BTreeSet<String>,
}

/// 64-bit FNV-1a: stable across builds and replicas, unlike `DefaultHasher`.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_xds_client::codec::LISTENER_TYPE;

    #[test]
    fn named_only_resources_skip_wildcard_subscriptions() {
        let api = XdsResource::new(
            "reviews:9080".into(),
            Any::default(),
            serde_json::Value::Null,
        );
        let inbound = XdsResource::new(
            "xds.istio.io/grpc/lds/inbound/127.0.0.1:9080".into(),
            Any::default(),
            serde_json::Value::Null,
        )
        .named_only();
        let snap = XdsSnapshot::new(1, vec![(LISTENER_TYPE, api), (LISTENER_TYPE, inbound)]);
        let names = |sub: &Subscription| -> Vec<String> {
            snap.select(LISTENER_TYPE, sub)
                .map(|r| r.name.clone())
                .collect()
        };
        let wildcard = Subscription {
            wildcard: true,
            names: BTreeSet::new(),
        };
        assert_eq!(names(&wildcard), ["reviews:9080"]);
        let server = Subscription {
            wildcard: true,
            names: ["xds.istio.io/grpc/lds/inbound/127.0.0.1:9080".to_string()].into(),
        };
        assert_eq!(names(&server).len(), 2);
    }
}
