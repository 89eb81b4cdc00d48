//! Route tables: the round trip and the shapes real control planes send.

use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption};
use envoy_types::pb::envoy::config::route::v3::{
    FilterConfig, HeaderMatcher, RetryPolicy as PbRetry, Route, RouteAction as PbAction,
    RouteConfiguration, WeightedCluster as PbWeighted, header_matcher::HeaderMatchSpecifier,
    retry_policy::RetryBackOff, route::Action, route_action, route_match::PathSpecifier,
    weighted_cluster::ClusterWeight,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    RegexMatcher, StringMatcher, string_matcher::MatchPattern,
};
use envoy_types::pb::envoy::r#type::v3::{FractionalPercent, fractional_percent::DenominatorType};
use envoy_types::pb::google::protobuf::{self as pbwk, BoolValue};
use mesh_core::route::{
    ForwardAction, PathMatch, RetryOn, RouteAction, RouteTable, WeightedCluster,
};
use mesh_core::{Percent, StringMatch};

use super::{clean, warned};
use crate::codec::decode::{DecodeError, Decoded};
use crate::codec::{decode_route_table, encode_route_table, to_any};

mod model;
mod rejects;

pub(super) use model::table;
use model::{exact_route, header, re, split_route};

const NAME: &str = "reviews:9080";

pub(super) fn encoded() -> RouteConfiguration {
    encode_route_table(&table())
}

pub(super) fn decode(rc: &RouteConfiguration) -> Result<Decoded<RouteTable>, DecodeError> {
    decode_route_table(&to_any(rc))
}

/// Route `i` of the first virtual host.
pub(super) fn pb_route(rc: &mut RouteConfiguration, i: usize) -> &mut Route {
    &mut rc.virtual_hosts[0].routes[i]
}

pub(super) fn pb_action(rc: &mut RouteConfiguration, i: usize) -> &mut PbAction {
    match &mut pb_route(rc, i).action {
        Some(Action::Route(a)) => a,
        other => panic!("not forwarding: {other:?}"),
    }
}

fn forward(t: &RouteTable, vh: usize, i: usize) -> &ForwardAction {
    match &t.virtual_hosts[vh].routes[i].action {
        RouteAction::Forward(f) => f,
        other => panic!("not forwarding: {other:?}"),
    }
}

fn legacy(name: &str, spec: HeaderMatchSpecifier) -> HeaderMatcher {
    HeaderMatcher {
        name: name.into(),
        header_match_specifier: Some(spec),
        ..Default::default()
    }
}

fn dur(secs: i64) -> Option<pbwk::Duration> {
    Some(pbwk::Duration {
        seconds: secs,
        nanos: 0,
    })
}

#[test]
fn round_trip() {
    assert_eq!(clean(decode(&encoded())), table());
}

#[test]
fn legacy_header_matchers_and_present_match() {
    let mut rc = encoded();
    pb_route(&mut rc, 4).r#match.as_mut().unwrap().headers = vec![
        legacy("a", HeaderMatchSpecifier::ExactMatch("1".into())),
        legacy("b", HeaderMatchSpecifier::PrefixMatch("p".into())),
        legacy("c", HeaderMatchSpecifier::SuffixMatch(String::new())),
        legacy("d", HeaderMatchSpecifier::ContainsMatch("c".into())),
        legacy(
            "e",
            HeaderMatchSpecifier::SafeRegexMatch(RegexMatcher {
                regex: "v[0-9]".into(),
                engine_type: None,
            }),
        ),
        legacy("f", HeaderMatchSpecifier::PresentMatch(false)),
        HeaderMatcher {
            name: "g".into(),
            ..Default::default()
        },
    ];
    let t = clean(decode(&rc));
    assert_eq!(
        t.virtual_hosts[0].routes[4].matcher.headers,
        [
            header("a", Some(StringMatch::Exact("1".into())), false),
            header("b", Some(StringMatch::Prefix("p".into())), false),
            // An empty suffix matches every value: a presence check.
            header("c", None, false),
            header("d", Some(StringMatch::Contains("c".into())), false),
            header("e", Some(StringMatch::Regex(re("v[0-9]"))), false),
            // `present_match: false` means the header must be absent.
            header("f", None, true),
            // No specifier is a presence check, as in Envoy.
            header("g", None, false),
        ]
    );
}

#[test]
fn ignore_case_is_honoured_exactly() {
    let mut rc = encoded();
    let sm = |pattern| {
        legacy(
            "authorization",
            HeaderMatchSpecifier::StringMatch(StringMatcher {
                ignore_case: true,
                match_pattern: Some(pattern),
            }),
        )
    };
    pb_route(&mut rc, 4).r#match.as_mut().unwrap().headers = vec![
        sm(MatchPattern::Prefix("Bearer ".into())),
        sm(MatchPattern::Exact("42".into())),
        sm(MatchPattern::Contains("ÄB".into())),
    ];
    let t = clean(decode(&rc));
    let h = &t.virtual_hosts[0].routes[4].matcher.headers;
    let m = h[0].value.as_ref().unwrap();
    assert!(m.matches("bearer x") && m.matches("BEARER y") && m.matches("Bearer "));
    assert!(!m.matches("xbearer "));
    // Nothing to fold: kept as a plain matcher.
    assert_eq!(h[1].value, Some(StringMatch::Exact("42".into())));
    // ASCII case folding, as Envoy: `Ä` only matches itself.
    let m = h[2].value.as_ref().unwrap();
    assert!(m.matches("xÄbx") && !m.matches("xäbx"));
}

#[test]
fn path_separated_prefix_and_empty_prefix() {
    let mut rc = encoded();
    let m = pb_route(&mut rc, 4).r#match.as_mut().unwrap();
    m.path_specifier = Some(PathSpecifier::PathSeparatedPrefix("/api".into()));
    m.case_sensitive = Some(BoolValue { value: false });
    let m = pb_route(&mut rc, 3).r#match.as_mut().unwrap();
    m.path_specifier = Some(PathSpecifier::Prefix(String::new()));
    let t = clean(decode(&rc));
    let PathMatch::Regex(r) = &t.virtual_hosts[0].routes[4].matcher.path else {
        panic!("not a regex")
    };
    assert!(r.is_match("/api") && r.is_match("/api/x") && r.is_match("/API/x"));
    assert!(!r.is_match("/apix") && !r.is_match("/ap"));
    assert_eq!(
        t.virtual_hosts[0].routes[3].matcher.path,
        PathMatch::Prefix("/".into())
    );
}

#[test]
fn deprecated_append_and_raw_values() {
    let mut rc = encoded();
    let opt = |key: &str, append: bool| HeaderValueOption {
        header: Some(HeaderValue {
            key: key.into(),
            raw_value: b"raw".to_vec(),
            ..Default::default()
        }),
        append: Some(BoolValue { value: append }),
        ..Default::default()
    };
    pb_route(&mut rc, 4).request_headers_to_add = vec![opt("x-add", true), opt("x-set", false)];
    let t = clean(decode(&rc));
    let m = &t.virtual_hosts[0].routes[4].request_headers;
    assert_eq!(m.add, [("x-add".to_owned(), "raw".to_owned())]);
    assert_eq!(m.set, [("x-set".to_owned(), "raw".to_owned())]);
}

#[test]
fn every_fractional_denominator_becomes_a_percent() {
    let mut rc = encoded();
    let frac = |numerator, d: DenominatorType| FractionalPercent {
        numerator,
        denominator: d as i32,
    };
    let a = pb_action(&mut rc, 0);
    let set = |m: &mut route_action::RequestMirrorPolicy, p| {
        m.runtime_fraction = Some(
            envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent {
                default_value: Some(p),
                runtime_key: String::new(),
            },
        )
    };
    set(
        &mut a.request_mirror_policies[0],
        frac(25, DenominatorType::Hundred),
    );
    set(
        &mut a.request_mirror_policies[1],
        frac(1250, DenominatorType::TenThousand),
    );
    let extra = route_action::RequestMirrorPolicy {
        cluster: "c".into(),
        ..Default::default()
    };
    a.request_mirror_policies.push(extra.clone());
    a.request_mirror_policies.push(extra);
    set(
        &mut a.request_mirror_policies[2],
        frac(7, DenominatorType::Million),
    );
    // A numerator above the denominator is 100 %, as in Envoy.
    set(
        &mut a.request_mirror_policies[3],
        frac(150, DenominatorType::Hundred),
    );
    let t = clean(decode(&rc));
    let got: Vec<_> = forward(&t, 0, 0)
        .mirrors
        .iter()
        .map(|m| m.percent)
        .collect();
    assert_eq!(
        got,
        [
            Percent::from_percent(25.0),
            Percent::from_percent(12.5),
            Percent::from_per_million(7),
            Percent::ALL,
        ]
    );
}

#[test]
fn timeouts() {
    let msd = |secs| {
        Some(route_action::MaxStreamDuration {
            max_stream_duration: dur(secs),
            ..Default::default()
        })
    };
    let mut rc = encoded();
    // gRPC's form: only max_stream_duration.
    pb_action(&mut rc, 4).timeout = None;
    pb_action(&mut rc, 4).max_stream_duration = msd(3);
    // Neither: no timeout (Envoy's implicit 15 s is not applied).
    pb_action(&mut rc, 1).timeout = None;
    let t = clean(decode(&rc));
    assert_eq!(forward(&t, 0, 4).timeout, Some(Duration::from_secs(3)));
    assert_eq!(forward(&t, 0, 1).timeout, None);

    // Istio's form for "no timeout": both 0 — no route timeout, and gRPC callers keep their own
    // deadline uncapped (A31: a present grpc_timeout_header_max of 0).
    let mut rc = encoded();
    let a = pb_action(&mut rc, 4);
    a.max_stream_duration = Some(route_action::MaxStreamDuration {
        max_stream_duration: dur(0),
        grpc_timeout_header_max: dur(0),
        grpc_timeout_header_offset: None,
    });
    let t = clean(decode(&rc));
    assert_eq!(forward(&t, 0, 4).timeout, None);
    assert_eq!(
        forward(&t, 0, 4).grpc_timeout_header_max,
        Some(Duration::ZERO)
    );

    // Both, different: timeout wins, with a warning.
    let mut rc = encoded();
    pb_action(&mut rc, 0).max_stream_duration = msd(9);
    let t = warned(decode(&rc), "routes[0].route.max_stream_duration");
    assert_eq!(forward(&t, 0, 0).timeout, Some(Duration::from_millis(1500)));
}

#[test]
fn retry_defaults_unknown_conditions_and_virtual_host_policies() {
    let mut rc = encoded();
    let r = pb_action(&mut rc, 0).retry_policy.as_mut().unwrap();
    r.retry_on = "5xx, http3-post-connect-failure,,reset".into();
    r.num_retries = None;
    r.retry_back_off = Some(RetryBackOff {
        base_interval: dur(1),
        max_interval: None,
    });
    // A virtual-host policy applies to routes without their own.
    rc.virtual_hosts[0].retry_policy = Some(PbRetry {
        retry_on: "gateway-error".into(),
        ..Default::default()
    });
    let t = warned(decode(&rc), "routes[0].route.retry_policy.retry_on");
    let r = forward(&t, 0, 0).retry.as_ref().unwrap();
    assert_eq!(r.retry_on, [RetryOn::FiveXx, RetryOn::Reset]);
    assert_eq!(r.num_retries, 1);
    assert_eq!(
        (r.backoff_base, r.backoff_max),
        (Duration::from_secs(1), Duration::from_secs(10))
    );
    let inherited = forward(&t, 0, 4).retry.as_ref().unwrap();
    assert_eq!(inherited.retry_on, [RetryOn::GatewayError]);
    assert_eq!(inherited.backoff_base, Duration::from_millis(25));
}

#[test]
fn a_single_weighted_cluster_keeps_its_weight() {
    let mut rc = encoded();
    pb_action(&mut rc, 4).cluster_specifier = Some(
        route_action::ClusterSpecifier::WeightedClusters(PbWeighted {
            clusters: vec![ClusterWeight {
                name: "outbound|9080||reviews".into(),
                weight: Some(pbwk::UInt32Value { value: 5 }),
                ..Default::default()
            }],
            ..Default::default()
        }),
    );
    let t = clean(decode(&rc));
    assert_eq!(
        forward(&t, 0, 4).clusters,
        [WeightedCluster {
            name: "outbound|9080||reviews".into(),
            weight: 5
        }]
    );
}

#[test]
fn fault_configs_are_inherited_and_can_be_disabled() {
    let mut rc = encoded();
    let fault = rc.virtual_hosts[0].routes[0]
        .typed_per_filter_config
        .remove("envoy.filters.http.fault")
        .unwrap();
    // On the virtual host, wrapped in a FilterConfig.
    let wrapped = to_any(&FilterConfig {
        config: Some(fault),
        is_optional: true,
        disabled: false,
    });
    rc.virtual_hosts[0]
        .typed_per_filter_config
        .insert("envoy.filters.http.fault".into(), wrapped);
    // Route 3 turns it off.
    let off = to_any(&FilterConfig {
        config: None,
        is_optional: false,
        disabled: true,
    });
    pb_route(&mut rc, 3)
        .typed_per_filter_config
        .insert("envoy.filters.http.fault".into(), off);
    let t = clean(decode(&rc));
    let want = split_route().fault;
    let routes = &t.virtual_hosts[0].routes;
    assert_eq!(routes[0].fault, want);
    assert_eq!(routes[1].fault, exact_route().fault, "the route's own wins");
    assert_eq!(routes[2].fault, want);
    assert_eq!(routes[3].fault, None);
    assert_eq!(t.virtual_hosts[1].routes[0].fault, None);
}
