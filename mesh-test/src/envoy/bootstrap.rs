//! Envoy bootstrap documents (JSON, which Envoy reads by the `.json` extension).

use std::net::SocketAddr;

use serde_json::{Value, json};

use super::EnvoyOptions;

/// The node's cluster name, as the control plane sees it.
pub(crate) const NODE_CLUSTER: &str = "envoy-interop";
/// Name of the listener every bootstrap defines.
pub(crate) const LISTENER_NAME: &str = "interop_listener";
const XDS_CLUSTER: &str = "xds_cluster";
const STATIC_CLUSTER: &str = "static_upstream";

/// ADS-fed bootstrap: CDS (and so EDS) over ADS, and one static listener whose routes come
/// from RDS over ADS. No LDS.
pub(crate) fn xds(options: &EnvoyOptions) -> Value {
    let mut xds_cluster = static_cluster(XDS_CLUSTER, options.xds_addr);
    xds_cluster["typed_extension_protocol_options"] = json!({
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": { "http2_protocol_options": {} }
        }
    });
    let ads = json!({ "ads": {}, "resource_api_version": "V3" });
    let rds = json!({
        "route_config_name": options.route_config_name,
        "config_source": ads,
    });
    json!({
        "node": node(&options.node_id),
        "admin": admin(),
        "static_resources": {
            "clusters": [xds_cluster],
            "listeners": [listener(json!({ "rds": rds }))],
        },
        "dynamic_resources": {
            "ads_config": {
                "api_type": if options.delta { "DELTA_GRPC" } else { "GRPC" },
                "transport_api_version": "V3",
                "grpc_services": [{ "envoy_grpc": { "cluster_name": XDS_CLUSTER } }],
                "set_node_on_first_message_only": true,
            },
            "cds_config": ads,
        },
    })
}

/// Static-only bootstrap: the listener routes every request to `upstream` (HTTP/1.1).
pub(crate) fn static_only(upstream: SocketAddr) -> Value {
    let route_config = json!({
        "name": "static_routes",
        "virtual_hosts": [{
            "name": "all",
            "domains": ["*"],
            "routes": [{ "match": { "prefix": "/" }, "route": { "cluster": STATIC_CLUSTER } }],
        }],
    });
    json!({
        "node": node("envoy-static"),
        "admin": admin(),
        "static_resources": {
            "clusters": [static_cluster(STATIC_CLUSTER, upstream)],
            "listeners": [listener(json!({ "route_config": route_config }))],
        },
    })
}

fn node(id: &str) -> Value {
    json!({ "id": id, "cluster": NODE_CLUSTER })
}

fn admin() -> Value {
    json!({ "address": socket_address("127.0.0.1", 0) })
}

fn socket_address(address: &str, port: u16) -> Value {
    json!({ "socket_address": { "address": address, "port_value": port } })
}

fn static_cluster(name: &str, addr: SocketAddr) -> Value {
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{ "lb_endpoints": [{
                "endpoint": { "address": socket_address(&addr.ip().to_string(), addr.port()) }
            }] }],
        },
    })
}

/// The one listener, on `127.0.0.1:0`; `routes` is `{"rds": ...}` or `{"route_config": ...}`.
fn listener(routes: Value) -> Value {
    let mut hcm = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "interop",
        "codec_type": "AUTO",
        "http_filters": [
            {
                "name": "envoy.filters.http.fault",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
                },
            },
            {
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                },
            },
        ],
    });
    if let (Some(hcm), Some(routes)) = (hcm.as_object_mut(), routes.as_object()) {
        hcm.extend(routes.clone());
    }
    json!({
        "name": LISTENER_NAME,
        "address": socket_address("127.0.0.1", 0),
        "filter_chains": [{ "filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": hcm,
        }] }],
    })
}
