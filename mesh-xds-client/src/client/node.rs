//! The `Node` we send, and JSON → protobuf `Struct` for its metadata.

use envoy_types::pb::envoy::config::core::v3::{Locality, Node, node::UserAgentVersionType};
use envoy_types::pb::google::protobuf::{ListValue, Struct, Value, value::Kind as ValueKind};

use crate::bootstrap::NodeInfo;

/// Client features we implement, advertised in `node.client_features`.
pub const CLIENT_FEATURES: [&str; 2] = [
    // We accept resources wrapped in `Resource` in state-of-the-world responses.
    "xds.config.resource-in-sotw",
    // Like gRPC, we do not implement overprovisioning factors.
    "envoy.lb.does_not_support_overprovisioning",
];

pub(crate) fn node(info: &NodeInfo) -> Node {
    Node {
        id: info.id.clone(),
        cluster: info.cluster.clone(),
        metadata: (!info.metadata.is_empty()).then(|| to_struct(&info.metadata)),
        locality: Some(Locality {
            region: info.locality.region.clone(),
            zone: info.locality.zone.clone(),
            sub_zone: info.locality.sub_zone.clone(),
        }),
        user_agent_name: "mesh-xds-client".into(),
        user_agent_version_type: Some(UserAgentVersionType::UserAgentVersion(
            env!("CARGO_PKG_VERSION").into(),
        )),
        client_features: CLIENT_FEATURES.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn to_struct(map: &serde_json::Map<String, serde_json::Value>) -> Struct {
    Struct {
        fields: map.iter().map(|(k, v)| (k.clone(), to_value(v))).collect(),
    }
}

fn to_value(v: &serde_json::Value) -> Value {
    let kind = match v {
        serde_json::Value::Null => ValueKind::NullValue(0),
        serde_json::Value::Bool(b) => ValueKind::BoolValue(*b),
        serde_json::Value::Number(n) => ValueKind::NumberValue(n.as_f64().unwrap_or_default()),
        serde_json::Value::String(s) => ValueKind::StringValue(s.clone()),
        serde_json::Value::Array(a) => ValueKind::ListValue(ListValue {
            values: a.iter().map(to_value).collect(),
        }),
        serde_json::Value::Object(o) => ValueKind::StructValue(to_struct(o)),
    };
    Value { kind: Some(kind) }
}
