//! Route tables: what fails closed and what is only a warning.

use envoy_types::pb::envoy::config::core::v3::{
    HeaderValue, HeaderValueOption, Metadata, RuntimeFractionalPercent,
    header_value_option::HeaderAppendAction,
};
use envoy_types::pb::envoy::config::route::v3::{
    CorsPolicy, Decorator, FilterConfig, HeaderMatcher, RateLimit, RedirectAction,
    WeightedCluster as PbWeighted, header_matcher::HeaderMatchSpecifier,
    retry_policy::RetryHostPredicate, route::Action, route_action, route_match::PathSpecifier,
    weighted_cluster::ClusterWeight,
};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::RbacPerRoute;
use envoy_types::pb::envoy::r#type::matcher::v3::RegexMatcher;
use envoy_types::pb::envoy::r#type::v3::{FractionalPercent, Int64Range};
use envoy_types::pb::google::protobuf::{Any, UInt32Value};

use super::{NAME, decode, encoded, pb_action, pb_route, table};
use crate::codec::decode::tests::{rejected, warned};
use crate::codec::to_any;

const R0: &str = "virtual_hosts[0].routes[0]";
const R4: &str = "virtual_hosts[0].routes[4]";

fn regex(p: &str) -> RegexMatcher {
    RegexMatcher {
        regex: p.into(),
        engine_type: None,
    }
}

fn weighted(weights: &[u32]) -> route_action::ClusterSpecifier {
    route_action::ClusterSpecifier::WeightedClusters(PbWeighted {
        clusters: weights
            .iter()
            .enumerate()
            .map(|(i, w)| ClusterWeight {
                name: format!("c{i}"),
                weight: Some(UInt32Value { value: *w }),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
}

#[test]
fn cluster_choices_we_cannot_honour_are_rejected() {
    use route_action::ClusterSpecifier as Spec;
    for (spec, field) in [
        (
            Spec::ClusterHeader("x-cluster".into()),
            "route.cluster_header",
        ),
        (
            Spec::ClusterSpecifierPlugin("p".into()),
            "route.cluster_specifier_plugin",
        ),
    ] {
        let mut rc = encoded();
        pb_action(&mut rc, 4).cluster_specifier = Some(spec);
        rejected(decode(&rc), NAME, &format!("{R4}.{field}"));
    }
    let mut rc = encoded();
    pb_action(&mut rc, 4).metadata_match = Some(Metadata::default());
    rejected(decode(&rc), NAME, &format!("{R4}.route.metadata_match"));

    let mut rc = encoded();
    let mut w = weighted(&[1, 1]);
    if let route_action::ClusterSpecifier::WeightedClusters(w) = &mut w {
        w.clusters[1].cluster_header = "x-cluster".into();
    }
    pb_action(&mut rc, 4).cluster_specifier = Some(w);
    rejected(
        decode(&rc),
        NAME,
        &format!("{R4}.route.weighted_clusters.clusters[1].cluster_header"),
    );
}

#[test]
fn weights_summing_to_zero_are_rejected() {
    let mut rc = encoded();
    pb_action(&mut rc, 4).cluster_specifier = Some(weighted(&[0, 0]));
    let shown = rejected(decode(&rc), NAME, &format!("{R4}.action.clusters"));
    assert!(shown.contains("sum to zero"), "{shown}");
    // A total_weight that disagrees with the weights is rejected, as Envoy does.
    let mut rc = encoded();
    let mut w = weighted(&[1, 2]);
    if let route_action::ClusterSpecifier::WeightedClusters(w) = &mut w {
        w.total_weight = Some(UInt32Value { value: 100 });
    }
    pb_action(&mut rc, 4).cluster_specifier = Some(w);
    rejected(decode(&rc), NAME, "weighted_clusters.total_weight");
}

#[test]
fn invalid_regexes_are_rejected() {
    let mut rc = encoded();
    pb_route(&mut rc, 4)
        .r#match
        .as_mut()
        .unwrap()
        .path_specifier = Some(PathSpecifier::SafeRegex(regex("/api/(")));
    let shown = rejected(decode(&rc), NAME, &format!("{R4}.match.safe_regex"));
    assert!(shown.contains("/api/("), "{shown}");

    let mut rc = encoded();
    pb_route(&mut rc, 4).r#match.as_mut().unwrap().headers = vec![HeaderMatcher {
        name: "x".into(),
        header_match_specifier: Some(HeaderMatchSpecifier::SafeRegexMatch(regex("[a-"))),
        ..Default::default()
    }];
    rejected(
        decode(&rc),
        NAME,
        &format!("{R4}.match.headers[0].safe_regex_match"),
    );
}

#[test]
fn match_conditions_we_cannot_evaluate_are_rejected() {
    let mut rc = encoded();
    pb_route(&mut rc, 4)
        .r#match
        .as_mut()
        .unwrap()
        .runtime_fraction = Some(RuntimeFractionalPercent {
        default_value: Some(FractionalPercent {
            numerator: 50,
            denominator: 0,
        }),
        runtime_key: String::new(),
    });
    rejected(decode(&rc), NAME, &format!("{R4}.match.runtime_fraction"));

    let mut rc = encoded();
    pb_route(&mut rc, 4).r#match.as_mut().unwrap().headers = vec![HeaderMatcher {
        name: "x-n".into(),
        header_match_specifier: Some(HeaderMatchSpecifier::RangeMatch(Int64Range {
            start: 1,
            end: 5,
        })),
        ..Default::default()
    }];
    rejected(decode(&rc), NAME, "match.headers[0].range_match");

    let mut rc = encoded();
    pb_route(&mut rc, 4)
        .r#match
        .as_mut()
        .unwrap()
        .path_specifier = Some(PathSpecifier::PathSeparatedPrefix("/api/".into()));
    rejected(decode(&rc), NAME, "match.path_separated_prefix");
}

#[test]
fn actions_and_rewrites_we_cannot_honour_are_rejected() {
    let mut rc = encoded();
    pb_route(&mut rc, 4).action = Some(Action::Redirect(RedirectAction::default()));
    rejected(decode(&rc), NAME, &format!("{R4}.redirect"));

    let mut rc = encoded();
    pb_action(&mut rc, 4).regex_rewrite = Some(Default::default());
    rejected(decode(&rc), NAME, &format!("{R4}.route.regex_rewrite"));

    let mut rc = encoded();
    pb_action(&mut rc, 4).host_rewrite_specifier = Some(
        route_action::HostRewriteSpecifier::HostRewriteHeader("x-host".into()),
    );
    rejected(
        decode(&rc),
        NAME,
        &format!("{R4}.route.host_rewrite_header"),
    );

    let mut rc = encoded();
    pb_action(&mut rc, 0)
        .retry_policy
        .as_mut()
        .unwrap()
        .retriable_request_headers = vec![HeaderMatcher::default()];
    rejected(decode(&rc), NAME, "retry_policy.retriable_request_headers");
}

#[test]
fn filter_configs_we_do_not_know_are_rejected_unless_optional() {
    let unknown = Any {
        type_url: "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute".into(),
        value: Vec::new(),
    };
    let mut rc = encoded();
    pb_route(&mut rc, 4)
        .typed_per_filter_config
        .insert("envoy.filters.http.lua".into(), unknown.clone());
    rejected(decode(&rc), NAME, &format!("{R4}.typed_per_filter_config"));

    let optional = |config| {
        to_any(&FilterConfig {
            config: Some(config),
            is_optional: true,
            disabled: false,
        })
    };
    let mut rc = encoded();
    pb_route(&mut rc, 4)
        .typed_per_filter_config
        .insert("envoy.filters.http.lua".into(), optional(unknown));
    assert_eq!(warned(decode(&rc), "typed_per_filter_config"), table());

    // Authorization is never optional.
    let mut rc = encoded();
    pb_route(&mut rc, 4).typed_per_filter_config.insert(
        "envoy.filters.http.rbac".into(),
        optional(to_any(&RbacPerRoute::default())),
    );
    rejected(decode(&rc), NAME, &format!("{R4}.typed_per_filter_config"));

    // A fault limited to an upstream cluster would fault others if the limit were ignored.
    let mut rc = encoded();
    let fault = HttpFault {
        upstream_cluster: "c".into(),
        ..Default::default()
    };
    pb_route(&mut rc, 4)
        .typed_per_filter_config
        .insert("envoy.filters.http.fault".into(), to_any(&fault));
    rejected(decode(&rc), NAME, "upstream_cluster");
}

#[test]
fn header_changes_we_cannot_honour_are_rejected() {
    let opt = |action: HeaderAppendAction| HeaderValueOption {
        header: Some(HeaderValue {
            key: "x-a".into(),
            value: "1".into(),
            ..Default::default()
        }),
        append_action: action as i32,
        ..Default::default()
    };
    let mut rc = encoded();
    rc.virtual_hosts[0].request_headers_to_add = vec![opt(HeaderAppendAction::AppendIfExistsOrAdd)];
    rejected(decode(&rc), NAME, "virtual_hosts[0].request_headers_to_add");

    let mut rc = encoded();
    pb_route(&mut rc, 4).request_headers_to_add = vec![opt(HeaderAppendAction::AddIfAbsent)];
    rejected(
        decode(&rc),
        NAME,
        &format!("{R4}.request_headers_to_add[0].append_action"),
    );

    let mut rc = encoded();
    let mut both = opt(HeaderAppendAction::OverwriteIfExistsOrAdd);
    both.append = Some(Default::default());
    pb_route(&mut rc, 4).request_headers_to_add = vec![both];
    rejected(
        decode(&rc),
        NAME,
        &format!("{R4}.request_headers_to_add[0]"),
    );

    let mut rc = encoded();
    pb_route(&mut rc, 4).request_headers_to_add = vec![HeaderValueOption {
        header: Some(HeaderValue {
            key: "host".into(),
            value: "evil".into(),
            ..Default::default()
        }),
        ..Default::default()
    }];
    // The model's rule: `host` and pseudo-headers may not be changed.
    rejected(decode(&rc), NAME, &format!("{R4}.request_headers"));
}

#[test]
fn direct_response_bodies_above_the_limit_are_rejected() {
    let mut rc = encoded();
    rc.max_direct_response_body_size_bytes = None;
    rejected(
        decode(&rc),
        NAME,
        "virtual_hosts[0].routes[2].direct_response.body",
    );
}

#[test]
fn unsupported_but_harmless_settings_are_warnings() {
    let mut rc = encoded();
    pb_action(&mut rc, 0).cors = Some(CorsPolicy::default());
    assert_eq!(warned(decode(&rc), &format!("{R0}.route.cors")), table());

    let mut rc = encoded();
    pb_action(&mut rc, 0).rate_limits = vec![RateLimit::default()];
    assert_eq!(
        warned(decode(&rc), &format!("{R0}.route.rate_limits")),
        table()
    );

    // Istio's retry settings.
    let mut rc = encoded();
    let r = pb_action(&mut rc, 0).retry_policy.as_mut().unwrap();
    r.retry_host_predicate = vec![RetryHostPredicate {
        name: "envoy.retry_host_predicates.previous_hosts".into(),
        config_type: None,
    }];
    r.host_selection_retry_max_attempts = 5;
    let d = decode(&rc).unwrap();
    for field in ["retry_host_predicate", "host_selection_retry_max_attempts"] {
        assert!(
            d.warnings.iter().any(|w| w.field.ends_with(field)),
            "{field}"
        );
    }
    assert_eq!(d.value, table());

    let mut rc = encoded();
    pb_route(&mut rc, 0).decorator = Some(Decorator {
        operation: "reviews".into(),
        propagate: None,
    });
    assert_eq!(warned(decode(&rc), &format!("{R0}.decorator")), table());

    let mut rc = encoded();
    let a = pb_action(&mut rc, 0);
    a.request_mirror_policies
        .push(route_action::RequestMirrorPolicy {
            cluster_header: "x-mirror".into(),
            ..Default::default()
        });
    a.hash_policy[0].terminal = true;
    let d = decode(&rc).unwrap();
    assert!(
        d.warnings
            .iter()
            .any(|w| w.field.contains("request_mirror_policies[2]"))
    );
    assert!(
        d.warnings
            .iter()
            .any(|w| w.field.ends_with("hash_policy[0].terminal"))
    );
    assert_eq!(d.value, table(), "the header-named mirror is left out");
}
