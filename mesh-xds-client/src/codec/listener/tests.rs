use envoy_types::pb::envoy::config::core::v3::{ApiVersion, config_source::ConfigSourceSpecifier};
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager::RouteSpecifier, http_filter::ConfigType,
};
use mesh_core::listener::Listener as ModelListener;
use prost::{Message, Name};

use crate::codec::{LISTENER_TYPE, encode_listener, to_any};

fn hcm_of(l: &Listener) -> HttpConnectionManager {
    let any = l
        .api_listener
        .as_ref()
        .and_then(|a| a.api_listener.as_ref())
        .expect("api_listener set");
    assert_eq!(any.type_url, HttpConnectionManager::type_url());
    assert_eq!(
        any.type_url,
        "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
    );
    HttpConnectionManager::decode(any.value.as_slice()).expect("HCM decodes")
}

#[test]
fn api_listener_points_at_rds_over_ads_with_typed_filters_in_order() {
    let mut model = ModelListener::api("reviews.default.svc.cluster.local:9080");
    model.route_config_name = "reviews-routes".into();
    let l = encode_listener(&model);
    assert_eq!(l.name, "reviews.default.svc.cluster.local:9080");
    assert!(l.address.is_none(), "an API listener binds nothing");

    let hcm = hcm_of(&l);
    assert_eq!(hcm.stat_prefix, "reviews.default.svc.cluster.local:9080");
    let Some(RouteSpecifier::Rds(rds)) = &hcm.route_specifier else {
        panic!("expected RDS, got {:?}", hcm.route_specifier);
    };
    assert_eq!(rds.route_config_name, "reviews-routes");
    let source = rds.config_source.as_ref().expect("config_source");
    assert_eq!(source.resource_api_version, ApiVersion::V3 as i32);
    assert!(matches!(
        source.config_source_specifier,
        Some(ConfigSourceSpecifier::Ads(_))
    ));

    let filters: Vec<(&str, &str)> = hcm
        .http_filters
        .iter()
        .map(|f| match &f.config_type {
            Some(ConfigType::TypedConfig(any)) => (f.name.as_str(), any.type_url.as_str()),
            other => panic!("filter {} has no typed_config: {other:?}", f.name),
        })
        .collect();
    assert_eq!(
        filters,
        [
            (
                "envoy.filters.http.fault",
                "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
            ),
            (
                "envoy.filters.http.router",
                "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
            ),
        ]
    );
    assert_eq!(filters[0].1, HttpFault::type_url());
    assert_eq!(filters[1].1, Router::type_url());
}

#[test]
fn listener_round_trips_through_any() {
    let l = encode_listener(&ModelListener::api("ratings:9080"));
    let any = to_any(&l);
    assert_eq!(any.type_url, LISTENER_TYPE);
    let back = Listener::decode(any.value.as_slice()).expect("decodes");
    assert_eq!(back, l);
    assert_eq!(hcm_of(&back).stat_prefix, "ratings:9080");
}
