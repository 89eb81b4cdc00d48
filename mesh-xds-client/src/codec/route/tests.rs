use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::{
    data_source::Specifier, header_value_option::HeaderAppendAction,
};
use envoy_types::pb::envoy::config::route::v3::{
    Route, RouteAction as PbAction, RouteConfiguration, header_matcher::HeaderMatchSpecifier,
    query_parameter_matcher::QueryParameterMatchSpecifier, route::Action, route_action,
    route_action::ClusterSpecifier, route_match::PathSpecifier,
};
use envoy_types::pb::envoy::extensions::filters::common::fault::v3::fault_delay::FaultDelaySecifier;
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{
    HttpFault, fault_abort::ErrorType,
};
use envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;
use envoy_types::pb::envoy::r#type::v3::fractional_percent::DenominatorType;
use envoy_types::pb::google::protobuf as pbwk;
use mesh_core::Percent;
use mesh_core::route::{AbortStatus, FaultAbort, FaultDelay, FaultPolicy};
use prost::{Message, Name};

use crate::codec::{ROUTE_TYPE, encode_route_table, to_any};

mod model;
use model::table;

fn encoded() -> RouteConfiguration {
    encode_route_table(&table())
}

fn route_action(r: &Route) -> &PbAction {
    match &r.action {
        Some(Action::Route(a)) => a,
        other => panic!("route {} is not forwarding: {other:?}", r.name),
    }
}

fn dur(secs: i64, nanos: i32) -> Option<pbwk::Duration> {
    Some(pbwk::Duration {
        seconds: secs,
        nanos,
    })
}

#[test]
fn table_and_virtual_hosts() {
    let rc = encoded();
    assert_eq!(rc.name, "reviews:9080");
    assert_eq!(rc.virtual_hosts.len(), 1);
    let vh = &rc.virtual_hosts[0];
    assert_eq!(vh.name, "reviews");
    assert_eq!(vh.domains, ["reviews", "reviews:9080"]);
    let names: Vec<_> = vh.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["split", "teapot", "default"]);
    // A 5000-byte direct response needs the limit raised above Envoy's 4 KiB default.
    assert_eq!(
        rc.max_direct_response_body_size_bytes.map(|v| v.value),
        Some(5000)
    );
}

#[test]
fn match_conditions() {
    let rc = encoded();
    let m = rc.virtual_hosts[0].routes[0].r#match.as_ref().unwrap();
    let Some(PathSpecifier::SafeRegex(re)) = &m.path_specifier else {
        panic!("expected safe_regex, got {:?}", m.path_specifier);
    };
    assert_eq!(re.regex, "/api/v[0-9]+");
    assert!(re.engine_type.is_none());
    assert_eq!(m.case_sensitive, Some(pbwk::BoolValue { value: false }));

    assert_eq!(m.headers[0].name, "x-canary");
    assert_eq!(
        m.headers[0].header_match_specifier,
        Some(HeaderMatchSpecifier::PresentMatch(true))
    );
    assert!(!m.headers[0].invert_match);
    assert!(m.headers[1].invert_match);
    let Some(HeaderMatchSpecifier::StringMatch(sm)) = &m.headers[1].header_match_specifier else {
        panic!("expected string_match");
    };
    let Some(MatchPattern::SafeRegex(re)) = &sm.match_pattern else {
        panic!("expected safe_regex");
    };
    assert_eq!(re.regex, "jason|ana");

    assert_eq!(m.query_parameters[0].name, "debug");
    assert_eq!(
        m.query_parameters[0].query_parameter_match_specifier,
        Some(QueryParameterMatchSpecifier::PresentMatch(true))
    );
    let Some(QueryParameterMatchSpecifier::StringMatch(sm)) =
        &m.query_parameters[1].query_parameter_match_specifier
    else {
        panic!("expected string_match");
    };
    assert_eq!(sm.match_pattern, Some(MatchPattern::Prefix("2".into())));

    // The default route: prefix "/", case sensitive (field left unset).
    let d = rc.virtual_hosts[0].routes[2].r#match.as_ref().unwrap();
    assert_eq!(d.path_specifier, Some(PathSpecifier::Prefix("/".into())));
    assert_eq!(d.case_sensitive, None);
}

#[test]
fn weighted_clusters_timeouts_and_retries() {
    let rc = encoded();
    let a = route_action(&rc.virtual_hosts[0].routes[0]);
    let Some(ClusterSpecifier::WeightedClusters(wc)) = &a.cluster_specifier else {
        panic!("expected weighted_clusters, got {:?}", a.cluster_specifier);
    };
    let split: Vec<_> = wc
        .clusters
        .iter()
        .map(|c| (c.name.as_str(), c.weight.map(|w| w.value)))
        .collect();
    assert_eq!(
        split,
        [
            ("outbound|9080|v1|reviews", Some(90)),
            ("outbound|9080|v2|reviews", Some(10))
        ]
    );
    #[allow(deprecated)] // asserting that the deprecated field stays unset
    let total_weight = &wc.total_weight;
    assert!(total_weight.is_none(), "total_weight is deprecated");

    assert_eq!(a.timeout, dur(1, 500_000_000));
    let msd = a.max_stream_duration.as_ref().expect("max_stream_duration");
    assert_eq!(msd.max_stream_duration, dur(1, 500_000_000));
    assert_eq!(msd.grpc_timeout_header_max, dur(1, 500_000_000));

    let r = a.retry_policy.as_ref().expect("retry_policy");
    assert_eq!(
        r.retry_on,
        "5xx,connect-failure,retriable-status-codes,unavailable"
    );
    assert_eq!(r.num_retries, Some(pbwk::UInt32Value { value: 3 }));
    assert_eq!(r.per_try_timeout, dur(0, 500_000_000));
    assert_eq!(r.retriable_status_codes, [409, 503]);
    let b = r.retry_back_off.as_ref().expect("retry_back_off");
    assert_eq!(b.base_interval, dur(0, 25_000_000));
    assert_eq!(b.max_interval, dur(0, 250_000_000));

    let d = route_action(&rc.virtual_hosts[0].routes[2]);
    assert_eq!(
        d.cluster_specifier,
        Some(ClusterSpecifier::Cluster("outbound|9080||reviews".into()))
    );
    // No model timeout: Envoy's implicit 15 s is disabled, gRPC gets no deadline.
    assert_eq!(d.timeout, dur(0, 0));
    assert!(d.max_stream_duration.is_none());
    assert!(d.retry_policy.is_none());
}

#[test]
fn mirrors_rewrites_and_hash_policies() {
    use route_action::hash_policy::PolicySpecifier;
    let rc = encoded();
    let a = route_action(&rc.virtual_hosts[0].routes[0]);
    let m = &a.request_mirror_policies;
    assert_eq!(m[0].cluster, "outbound|9080|shadow|reviews");
    let f = m[0]
        .runtime_fraction
        .as_ref()
        .unwrap()
        .default_value
        .unwrap();
    assert_eq!(f.numerator, 125_000);
    assert_eq!(f.denominator, DenominatorType::Million as i32);
    assert_eq!(m[1].cluster, "outbound|9080|audit|reviews");
    assert!(m[1].runtime_fraction.is_none(), "100 % needs no fraction");

    assert_eq!(a.prefix_rewrite, "/v2/");
    assert_eq!(
        a.host_rewrite_specifier,
        Some(route_action::HostRewriteSpecifier::HostRewriteLiteral(
            "reviews.internal".into()
        ))
    );

    let specs: Vec<_> = a
        .hash_policy
        .iter()
        .map(|h| h.policy_specifier.clone().unwrap())
        .collect();
    assert!(matches!(&specs[0], PolicySpecifier::Header(h) if h.header_name == "x-user"));
    assert!(matches!(&specs[1], PolicySpecifier::Cookie(c)
        if c.name == "session" && c.ttl == dur(3600, 0)));
    assert!(matches!(&specs[2], PolicySpecifier::ConnectionProperties(c) if c.source_ip));
    assert!(matches!(&specs[3], PolicySpecifier::QueryParameter(q) if q.name == "tenant"));
}

#[test]
fn header_mutations() {
    let rc = encoded();
    let r = &rc.virtual_hosts[0].routes[0];
    let req: Vec<_> = r
        .request_headers_to_add
        .iter()
        .map(|o| {
            let h = o.header.as_ref().unwrap();
            (h.key.as_str(), h.value.as_str(), o.append_action)
        })
        .collect();
    assert_eq!(
        req,
        [
            (
                "x-mesh",
                "1",
                HeaderAppendAction::OverwriteIfExistsOrAdd as i32
            ),
            (
                "x-trace",
                "a",
                HeaderAppendAction::AppendIfExistsOrAdd as i32
            ),
        ]
    );
    assert_eq!(r.request_headers_to_remove, ["x-internal"]);
    assert_eq!(r.response_headers_to_add.len(), 1);
    assert_eq!(
        r.response_headers_to_add[0].append_action,
        HeaderAppendAction::OverwriteIfExistsOrAdd as i32
    );
    assert_eq!(r.response_headers_to_remove, ["server"]);
}

#[test]
fn fault_is_a_per_route_http_fault() {
    let rc = encoded();
    let r = &rc.virtual_hosts[0].routes[0];
    let any = &r.typed_per_filter_config["envoy.filters.http.fault"];
    assert_eq!(
        any.type_url,
        "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
    );
    assert_eq!(any.type_url, HttpFault::type_url());
    let f = HttpFault::decode(any.value.as_slice()).expect("HTTPFault decodes");

    let delay = f.delay.as_ref().expect("delay");
    assert_eq!(
        delay.fault_delay_secifier,
        Some(FaultDelaySecifier::FixedDelay(pbwk::Duration {
            seconds: 2,
            nanos: 0
        }))
    );
    let p = delay.percentage.unwrap();
    assert_eq!(
        (p.numerator, p.denominator),
        (100_000, DenominatorType::Million as i32)
    );

    let abort = f.abort.as_ref().expect("abort");
    assert_eq!(abort.error_type, Some(ErrorType::GrpcStatus(14)));
    assert_eq!(abort.percentage.unwrap().numerator, 5_000);

    assert_eq!(f.headers.len(), 1);
    assert_eq!(f.headers[0].name, "x-chaos");

    // Routes without a fault carry no per-filter config.
    assert!(
        rc.virtual_hosts[0].routes[2]
            .typed_per_filter_config
            .is_empty()
    );
}

#[test]
fn zero_delay_is_left_out_and_http_abort_kept() {
    let mut t = table();
    t.virtual_hosts[0].routes[0].fault = Some(FaultPolicy {
        delay: Some(FaultDelay {
            delay: Duration::ZERO,
            percent: Percent::ALL,
        }),
        abort: Some(FaultAbort {
            status: AbortStatus::Http(503),
            percent: Percent::ALL,
        }),
        headers: Vec::new(),
    });
    let rc = encode_route_table(&t);
    let any = &rc.virtual_hosts[0].routes[0].typed_per_filter_config["envoy.filters.http.fault"];
    let f = HttpFault::decode(any.value.as_slice()).unwrap();
    assert!(f.delay.is_none(), "Envoy rejects a zero fixed_delay");
    assert_eq!(
        f.abort.unwrap().error_type,
        Some(ErrorType::HttpStatus(503))
    );
}

#[test]
fn empty_patterns_are_written_as_what_they_mean() {
    use mesh_core::route::{HeaderMatch, QueryParamMatch};
    use mesh_core::{Regex, StringMatch};
    let mut t = table();
    let m = &mut t.virtual_hosts[0].routes[2].matcher;
    for (name, value) in [
        ("a", StringMatch::Prefix(String::new())),
        ("b", StringMatch::Suffix(String::new())),
        ("c", StringMatch::Contains(String::new())),
        ("d", StringMatch::Regex(Regex::new("").unwrap())),
    ] {
        m.headers.push(HeaderMatch {
            name: name.into(),
            value: Some(value.clone()),
            invert: false,
        });
        m.query_params.push(QueryParamMatch {
            name: name.into(),
            value: Some(value),
        });
    }
    let rc = encode_route_table(&t);
    let m = rc.virtual_hosts[0].routes[2].r#match.as_ref().unwrap();
    let headers: Vec<_> = m
        .headers
        .iter()
        .map(|h| h.header_match_specifier.clone().unwrap())
        .collect();
    let present = HeaderMatchSpecifier::PresentMatch(true);
    assert_eq!(headers[..3], [present.clone(), present.clone(), present]);
    let HeaderMatchSpecifier::StringMatch(sm) = &headers[3] else {
        panic!("expected string_match, got {:?}", headers[3]);
    };
    assert_eq!(sm.match_pattern, Some(MatchPattern::Exact(String::new())));
    let params: Vec<_> = m
        .query_parameters
        .iter()
        .map(|q| q.query_parameter_match_specifier.clone().unwrap())
        .collect();
    assert_eq!(params[0], QueryParameterMatchSpecifier::PresentMatch(true));
    assert!(matches!(
        &params[3],
        QueryParameterMatchSpecifier::StringMatch(sm)
            if sm.match_pattern == Some(MatchPattern::Exact(String::new()))
    ));
}

#[test]
fn direct_response() {
    let rc = encoded();
    let Some(Action::DirectResponse(d)) = &rc.virtual_hosts[0].routes[1].action else {
        panic!("expected direct_response");
    };
    assert_eq!(d.status, 418);
    let Some(Specifier::InlineString(body)) = d.body.as_ref().unwrap().specifier.as_ref() else {
        panic!("expected inline_string");
    };
    assert_eq!(body.len(), 5000);

    let mut small = table();
    small.virtual_hosts[0].routes.remove(1);
    assert!(
        encode_route_table(&small)
            .max_direct_response_body_size_bytes
            .is_none()
    );
}

#[test]
fn route_configuration_round_trips_through_any() {
    let rc = encoded();
    let any = to_any(&rc);
    assert_eq!(any.type_url, ROUTE_TYPE);
    assert_eq!(any.type_url, RouteConfiguration::type_url());
    assert_eq!(
        RouteConfiguration::decode(any.value.as_slice()).unwrap(),
        rc
    );
}
