use envoy_types::pb::envoy::config::core::v3::{
    ConfigSource, config_source::ConfigSourceSpecifier,
};
use envoy_types::pb::envoy::config::listener::v3::{ApiListener, Listener};
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::Rbac;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, http_connection_manager::RouteSpecifier,
    http_filter::ConfigType,
};
use envoy_types::pb::google::protobuf::{self as pbwk, Any};
use mesh_core::listener::{HttpFilter as ModelFilter, Listener as ModelListener};
use prost::Message;

use super::{clean, rejected, warned};
use crate::codec::{decode_listener, encode_listener, to_any};

const NAME: &str = "reviews.default.svc.cluster.local:9080";

/// The encoded API listener's connection manager, for tests to change.
fn hcm() -> HttpConnectionManager {
    let l = encode_listener(&ModelListener::api(NAME));
    let any = l.api_listener.unwrap().api_listener.unwrap();
    HttpConnectionManager::decode(any.value.as_slice()).unwrap()
}

fn listener_with(hcm: &HttpConnectionManager) -> Any {
    to_any(&Listener {
        name: NAME.into(),
        api_listener: Some(ApiListener {
            api_listener: Some(to_any(hcm)),
        }),
        ..Default::default()
    })
}

fn filter(name: &str, config: Any, optional: bool) -> HttpFilter {
    HttpFilter {
        name: name.into(),
        config_type: Some(ConfigType::TypedConfig(config)),
        is_optional: optional,
        ..Default::default()
    }
}

#[test]
fn round_trip() {
    let models = [
        ModelListener::api(NAME),
        ModelListener {
            name: "ratings:9080".into(),
            route_config_name: "ratings-routes".into(),
            http_filters: vec![ModelFilter::Router],
        },
        ModelListener {
            name: "details:9080".into(),
            route_config_name: "details:9080".into(),
            http_filters: vec![ModelFilter::Fault, ModelFilter::Fault, ModelFilter::Router],
        },
    ];
    for m in models {
        assert_eq!(clean(decode_listener(&to_any(&encode_listener(&m)))), m);
    }
}

#[test]
fn an_unknown_optional_filter_is_skipped_with_a_warning() {
    let mut h = hcm();
    let cors = Any {
        type_url: "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors".into(),
        value: Vec::new(),
    };
    h.http_filters
        .insert(0, filter("envoy.filters.http.cors", cors, true));
    let l = warned(
        decode_listener(&listener_with(&h)),
        "api_listener.http_filters[0]",
    );
    assert_eq!(l, ModelListener::api(NAME));
}

#[test]
fn an_unknown_filter_that_is_not_optional_is_rejected() {
    let mut h = hcm();
    let wasm = Any {
        type_url: "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm".into(),
        value: Vec::new(),
    };
    h.http_filters.insert(0, filter("istio.stats", wasm, false));
    let shown = rejected(
        decode_listener(&listener_with(&h)),
        NAME,
        "api_listener.http_filters[0].typed_config",
    );
    assert!(shown.contains("istio.stats"), "{shown}");
}

#[test]
fn rbac_is_rejected_even_when_optional() {
    for optional in [false, true] {
        let mut h = hcm();
        let rbac = to_any(&Rbac::default());
        h.http_filters
            .insert(0, filter("envoy.filters.http.rbac", rbac, optional));
        let shown = rejected(
            decode_listener(&listener_with(&h)),
            NAME,
            "api_listener.http_filters[0]",
        );
        assert!(shown.contains("cannot be enforced"), "{shown}");
    }
}

#[test]
fn a_listener_with_sockets_is_rejected() {
    let l = Listener {
        name: "0.0.0.0_9080".into(),
        ..Default::default()
    };
    rejected(decode_listener(&to_any(&l)), "0.0.0.0_9080", "api_listener");
}

#[test]
fn an_api_listener_must_hold_a_connection_manager() {
    let l = Listener {
        name: NAME.into(),
        api_listener: Some(ApiListener {
            api_listener: Some(to_any(&Router::default())),
        }),
        ..Default::default()
    };
    let shown = rejected(decode_listener(&to_any(&l)), NAME, "api_listener");
    assert!(shown.contains("HttpConnectionManager"), "{shown}");
}

#[test]
fn inline_route_config_is_rejected() {
    let mut h = hcm();
    h.route_specifier = Some(RouteSpecifier::RouteConfig(RouteConfiguration::default()));
    let shown = rejected(
        decode_listener(&listener_with(&h)),
        NAME,
        "api_listener.route_config",
    );
    assert!(shown.contains("use RDS"), "{shown}");
}

#[test]
fn rds_not_over_ads_is_a_warning() {
    let mut h = hcm();
    if let Some(RouteSpecifier::Rds(rds)) = &mut h.route_specifier {
        rds.config_source = Some(ConfigSource {
            config_source_specifier: Some(ConfigSourceSpecifier::Path("/etc/routes".into())),
            ..Default::default()
        });
    }
    let l = warned(
        decode_listener(&listener_with(&h)),
        "api_listener.rds.config_source",
    );
    assert_eq!(l.route_config_name, NAME);
}

#[test]
fn filter_level_fault_settings_and_connection_manager_options_are_warnings() {
    let mut h = hcm();
    let fault = HttpFault {
        max_active_faults: Some(pbwk::UInt32Value { value: 3 }),
        ..Default::default()
    };
    h.http_filters[0] = filter("envoy.filters.http.fault", to_any(&fault), false);
    h.stream_idle_timeout = Some(pbwk::Duration {
        seconds: 300,
        nanos: 0,
    });
    let r = decode_listener(&listener_with(&h));
    let d = r.as_ref().unwrap();
    assert!(
        d.warnings
            .iter()
            .any(|w| w.field == "api_listener.stream_idle_timeout"),
        "{:?}",
        d.warnings
    );
    assert_eq!(
        warned(r, "api_listener.http_filters[0].typed_config"),
        ModelListener::api(NAME)
    );
}

#[test]
fn the_router_must_be_last() {
    let mut h = hcm();
    h.http_filters.reverse();
    rejected(decode_listener(&listener_with(&h)), NAME, "http_filters");
}

#[test]
fn a_disabled_filter_is_rejected_unless_optional() {
    let mut h = hcm();
    h.http_filters[0].disabled = true;
    rejected(
        decode_listener(&listener_with(&h)),
        NAME,
        "api_listener.http_filters[0].disabled",
    );
    h.http_filters[0].is_optional = true;
    let l = warned(decode_listener(&listener_with(&h)), "http_filters[0]");
    assert_eq!(l.http_filters, [ModelFilter::Router]);
}

#[test]
fn typed_struct_configs_are_known_by_the_type_they_stand_for() {
    // xds.type.v3.TypedStruct { type_url: 1 }, written by hand.
    let typed_struct = |type_url: &str| Any {
        type_url: "type.googleapis.com/xds.type.v3.TypedStruct".into(),
        value: [&[0x0a, type_url.len() as u8], type_url.as_bytes()].concat(),
    };
    let mut h = hcm();
    let rbac = typed_struct("type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC");
    h.http_filters.insert(0, filter("rbac", rbac, true));
    let shown = rejected(decode_listener(&listener_with(&h)), NAME, "http_filters[0]");
    assert!(
        shown.contains("envoy.extensions.filters.http.rbac.v3.RBAC"),
        "{shown}"
    );

    let mut h = hcm();
    let stats = typed_struct("type.googleapis.com/stats.PluginConfig");
    h.http_filters
        .insert(0, filter("istio.stats", stats, false));
    let shown = rejected(decode_listener(&listener_with(&h)), NAME, "http_filters[0]");
    assert!(
        shown.contains("stats.PluginConfig as a TypedStruct"),
        "{shown}"
    );
}
