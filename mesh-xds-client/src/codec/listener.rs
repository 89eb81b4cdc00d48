//! API listeners: the `Listener` a proxyless gRPC client resolves for `xds:///<host>:<port>`.

use envoy_types::pb::envoy::config::listener::v3::{ApiListener, Listener};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager::RouteSpecifier,
    http_filter::ConfigType,
};
use mesh_core::listener::{HttpFilter as ModelFilter, Listener as ModelListener};

use super::{ads_config_source, to_any};

/// Filter name of the fault filter; also the key of its per-route config.
pub(super) const FAULT_FILTER: &str = "envoy.filters.http.fault";
/// Filter name of the router.
pub(super) const ROUTER_FILTER: &str = "envoy.filters.http.router";

/// Encodes an API listener: an `HttpConnectionManager` (in `api_listener`) whose routes come from
/// RDS over ADS.
///
/// Every HTTP filter carries a `typed_config`, as gRPC requires (gRFC A39); the filter order is the
/// model's, whose validation keeps the router last. Stock Envoy accepts such a listener over LDS
/// but only installs API listeners from its bootstrap; the form exists for proxyless clients.
pub fn encode_listener(l: &ModelListener) -> Listener {
    let hcm = HttpConnectionManager {
        stat_prefix: l.name.clone(),
        http_filters: l.http_filters.iter().map(|f| http_filter(*f)).collect(),
        route_specifier: Some(RouteSpecifier::Rds(Rds {
            config_source: Some(ads_config_source()),
            route_config_name: l.route_config_name.clone(),
        })),
        ..Default::default()
    };
    Listener {
        name: l.name.clone(),
        api_listener: Some(ApiListener {
            api_listener: Some(to_any(&hcm)),
        }),
        ..Default::default()
    }
}

fn http_filter(f: ModelFilter) -> HttpFilter {
    let (name, config) = match f {
        ModelFilter::Fault => (FAULT_FILTER, to_any(&HttpFault::default())),
        ModelFilter::Router => (ROUTER_FILTER, to_any(&Router::default())),
    };
    HttpFilter {
        name: name.to_owned(),
        config_type: Some(ConfigType::TypedConfig(config)),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
