//! The codec between the mesh-core model and Envoy xDS v3 protos.
//!
//! The **encode** half is used by the control plane: each mesh-core resource becomes the standard
//! Envoy message with its standard meaning, so that a stock Envoy and a stock proxyless gRPC
//! client read the same intent from the same bytes. The **decode** half is used by the xDS client
//! to validate every resource it receives: [`decode_listener`], [`decode_route_table`],
//! [`decode_cluster`] and [`decode_assignment`] (and [`decode_rbac`] for the config of an RBAC
//! HTTP filter, [`encode_rbac`] its encoder) check the type URL, deserialize, map every field
//! into the model and run [`mesh_core::Validate`]; what they cannot honour is a [`Warning`] when
//! ignoring it is harmless and a [`DecodeError`] (a NACK) when it is not.
//! `decode(encode(m)) == m` for every model the encoder accepts, up to the normalizations listed
//! on [`Decoded`].
//!
//! | model | proto | type URL |
//! |---|---|---|
//! | [`mesh_core::listener::Listener`] | API `Listener` with an RDS-fed `HttpConnectionManager` | [`LISTENER_TYPE`] |
//! | [`mesh_core::route::RouteTable`] | `RouteConfiguration` | [`ROUTE_TYPE`] |
//! | [`mesh_core::cluster::Cluster`] | EDS `Cluster` fed over ADS | [`CLUSTER_TYPE`] |
//! | [`mesh_core::endpoint::ClusterLoadAssignment`] | `ClusterLoadAssignment` | [`ENDPOINT_TYPE`] |
//! | [`mesh_core::rbac::Rbac`] | RBAC HTTP filter config (`typed_config` of an inbound listener's filter) | [`RBAC_TYPE`] |
//!
//! The encoders expect values that passed [`mesh_core::Validate`]; they do not re-check what
//! validation already rejects. Where a value would make Envoy or gRPC reject the resource and the
//! result type allows it, the encoder returns an [`EncodeError`] instead of sending it; a field the
//! codec could not express would be an error too, never silently dropped.

use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ApiVersion, ConfigSource, config_source::ConfigSourceSpecifier,
};
use envoy_types::pb::envoy::r#type::v3::{FractionalPercent, fractional_percent::DenominatorType};
use envoy_types::pb::google::protobuf::{self as pbwk, Any};
use mesh_core::{MeshResources, Percent};

mod cluster;
mod decode;
mod endpoint;
mod inbound;
mod listener;
mod rbac;
mod route;

pub use cluster::encode_cluster;
pub use cluster::tls::{IDENTITY_CERT, IDENTITY_PROVIDER, ROOT_CERT, TLS_TRANSPORT_SOCKET};
pub use decode::{
    DecodeError, Decoded, Warning, decode_assignment, decode_cluster, decode_inbound_listener,
    decode_listener, decode_rbac, decode_route_table, is_api_listener,
};
pub use endpoint::encode_assignment;
pub use inbound::encode_inbound;
pub use listener::encode_listener;
pub use rbac::{RBAC_FILTER_NAME, RBAC_TYPE, encode_rbac, rbac_filter_config};
pub use route::encode_route_table;

/// Type URL of `envoy.config.listener.v3.Listener` (LDS).
pub const LISTENER_TYPE: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
/// Type URL of `envoy.config.route.v3.RouteConfiguration` (RDS).
pub const ROUTE_TYPE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
/// Type URL of `envoy.config.cluster.v3.Cluster` (CDS).
pub const CLUSTER_TYPE: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
/// Type URL of `envoy.config.endpoint.v3.ClusterLoadAssignment` (EDS).
pub const ENDPOINT_TYPE: &str =
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

/// A model value that cannot be encoded as a resource Envoy and gRPC would accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The codec cannot express this field yet; sending the resource without it would change its
    /// meaning (for example plaintext instead of TLS).
    #[error("{kind} {resource:?}: field {field} is not supported yet: {reason}")]
    Unsupported {
        /// Resource kind, e.g. `Cluster`.
        kind: &'static str,
        /// Resource name.
        resource: String,
        /// Field path in the model, e.g. `tls`.
        field: &'static str,
        /// Why, and what to do instead.
        reason: String,
    },
    /// A value Envoy or gRPC would reject (NACK) although model validation let it through.
    #[error("{kind} {resource:?}: field {field}: {reason}")]
    OutOfRange {
        /// Resource kind, e.g. `Cluster`.
        kind: &'static str,
        /// Resource name.
        resource: String,
        /// Field path in the model, e.g. `outlier_detection.base_ejection_time`.
        field: &'static str,
        /// The rule broken, with the value.
        reason: String,
    },
    /// A [`MeshResources`] map holds a resource under a key other than its own name.
    #[error("{kind} stored under key {key:?} is named {resource:?}; the key must be the name")]
    NameMismatch {
        /// Resource kind, e.g. `Listener`.
        kind: &'static str,
        /// The map key.
        key: String,
        /// The resource's own name.
        resource: String,
    },
}

impl EncodeError {
    /// Name of the resource that could not be encoded.
    pub fn resource(&self) -> &str {
        match self {
            EncodeError::Unsupported { resource, .. }
            | EncodeError::OutOfRange { resource, .. }
            | EncodeError::NameMismatch { resource, .. } => resource,
        }
    }

    /// True when the model is fine but the codec does not support a feature yet.
    pub fn is_unsupported(&self) -> bool {
        matches!(self, EncodeError::Unsupported { .. })
    }
}

/// One encoded resource, ready for a control plane's snapshot cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedResource {
    /// The resource's type URL: one of [`LISTENER_TYPE`], [`ROUTE_TYPE`], [`CLUSTER_TYPE`],
    /// [`ENDPOINT_TYPE`].
    pub type_url: &'static str,
    /// The resource name clients subscribe to.
    pub name: String,
    /// The encoded message.
    pub resource: Any,
}

/// Packs a message into an `Any` with the message's own type URL.
pub fn to_any<M: prost::Name>(m: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: m.encode_to_vec(),
    }
}

/// Encodes every resource of `r`: listeners, then route tables, clusters and assignments, each in
/// name order.
///
/// A resource that cannot be encoded is left out and its error returned; the others are still
/// encoded, so one bad resource never breaks the configuration of anything else.
pub fn encode_all(r: &MeshResources) -> (Vec<EncodedResource>, Vec<EncodeError>) {
    let mut out = Vec::with_capacity(
        r.listeners.len()
            + r.inbound.len()
            + r.route_tables.len()
            + r.clusters.len()
            + r.assignments.len(),
    );
    let mut errs = Vec::new();
    let mut push = |kind, type_url, key: &str, name: &str, res: Result<Any, EncodeError>| {
        if key != name {
            errs.push(EncodeError::NameMismatch {
                kind,
                key: key.to_owned(),
                resource: name.to_owned(),
            });
            return;
        }
        match res {
            Ok(resource) => out.push(EncodedResource {
                type_url,
                name: name.to_owned(),
                resource,
            }),
            Err(e) => errs.push(e),
        }
    };
    for (k, l) in &r.listeners {
        let any = Ok(to_any(&encode_listener(l)));
        push("Listener", LISTENER_TYPE, k, &l.name, any);
    }
    for (k, l) in &r.inbound {
        let any = Ok(to_any(&encode_inbound(l)));
        push("Listener", LISTENER_TYPE, k, &l.name, any);
    }
    for (k, t) in &r.route_tables {
        let any = Ok(to_any(&encode_route_table(t)));
        push("RouteConfiguration", ROUTE_TYPE, k, &t.name, any);
    }
    for (k, c) in &r.clusters {
        let any = encode_cluster(c).map(|c| to_any(&c));
        push("Cluster", CLUSTER_TYPE, k, &c.name, any);
    }
    for (k, a) in &r.assignments {
        let any = Ok(to_any(&encode_assignment(a)));
        push(
            "ClusterLoadAssignment",
            ENDPOINT_TYPE,
            k,
            &a.cluster_name,
            any,
        );
    }
    (out, errs)
}

/// The largest duration a `google.protobuf.Duration` may hold (10,000 years).
const MAX_PROTO_SECONDS: u64 = 315_576_000_000;

/// A protobuf `Duration`, saturating at the protobuf maximum.
fn duration(d: Duration) -> pbwk::Duration {
    if d.as_secs() > MAX_PROTO_SECONDS {
        return pbwk::Duration {
            seconds: MAX_PROTO_SECONDS as i64,
            nanos: 0,
        };
    }
    pbwk::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

fn u32v(value: u32) -> pbwk::UInt32Value {
    pbwk::UInt32Value { value }
}

/// Envoy's `FractionalPercent` in parts per million.
fn fractional(p: Percent) -> FractionalPercent {
    FractionalPercent {
        numerator: p.per_million(),
        denominator: DenominatorType::Million as i32,
    }
}

/// `ConfigSource { ads: {}, resource_api_version: V3 }`: fetch over the same ADS stream, which is
/// what both Envoy and gRPC (gRFC A27) expect from an ADS control plane.
fn ads_config_source() -> ConfigSource {
    ConfigSource {
        resource_api_version: ApiVersion::V3 as i32,
        config_source_specifier: Some(ConfigSourceSpecifier::Ads(AggregatedConfigSource {})),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
