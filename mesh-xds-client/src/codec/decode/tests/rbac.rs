//! RBAC filter configs: round trips, what is warned, and what is refused with its path.

use envoy_types::pb::envoy::config::core::v3::CidrRange;
use envoy_types::pb::envoy::config::rbac::v3::{
    Permission as PbPermission, Policy as PbPolicy, Principal as PbPrincipal, Rbac as PbRules,
    permission::Rule, principal::Identifier,
};
use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::Rbac as PbHttpRbac;
use envoy_types::pb::envoy::r#type::matcher::v3::{
    MetadataMatcher, PathMatcher, RegexMatcher, StringMatcher, path_matcher,
    string_matcher::MatchPattern,
};
use envoy_types::pb::envoy::r#type::v3::Int32Range;
use envoy_types::pb::google::api::expr::v1alpha1::Expr;
use envoy_types::pb::google::protobuf::UInt32Value;
use mesh_core::rbac::{Permission, Policy, Principal, Rbac, RbacAction};
use mesh_core::route::HeaderMatch;
use mesh_core::{Regex, StringMatch};

use super::{clean, rejected, warned};
use crate::codec::{DecodeError, decode_rbac, encode_rbac, rbac_filter_config, to_any};

const FILTER: &str = "envoy.filters.http.rbac";

fn header(name: &str, value: Option<StringMatch>, invert: bool) -> HeaderMatch {
    HeaderMatch {
        name: name.into(),
        value,
        invert,
    }
}

/// Every permission and principal the model has, nested.
fn everything() -> Rbac {
    let regex = |r: &str| StringMatch::Regex(Regex::new(r).unwrap());
    Rbac {
        action: RbacAction::Deny,
        policies: vec![
            (
                "a/first[0]".into(),
                Policy {
                    permissions: vec![
                        Permission::And(vec![
                            Permission::Header(header(
                                ":method",
                                Some(StringMatch::Exact("GET".into())),
                                false,
                            )),
                            Permission::Or(vec![
                                Permission::UrlPath(StringMatch::Prefix("/admin/".into())),
                                Permission::UrlPath(StringMatch::Suffix(".json".into())),
                                Permission::UrlPath(regex("/v[0-9]+/[^/]+")),
                            ]),
                        ]),
                        Permission::Not(Box::new(Permission::DestinationPort(8080))),
                        Permission::Header(header("x-canary", None, true)),
                        Permission::Header(header(
                            ":authority",
                            Some(regex("(?i-u:reviews)")),
                            false,
                        )),
                    ],
                    principals: vec![
                        Principal::Authenticated(Some(StringMatch::Exact(
                            "spiffe://cluster.local/ns/default/sa/web".into(),
                        ))),
                        Principal::Authenticated(Some(regex(".*/ns/jobs/.*"))),
                        Principal::Authenticated(None),
                        Principal::And(vec![
                            Principal::DirectRemoteIp("10.0.0.0/8".parse().unwrap()),
                            Principal::Not(Box::new(Principal::RemoteIp(
                                "10.9.0.0/16".parse().unwrap(),
                            ))),
                        ]),
                        Principal::Or(vec![
                            Principal::Header(header(
                                "x-team",
                                Some(StringMatch::Contains("blue".into())),
                                false,
                            )),
                            Principal::UrlPath(StringMatch::Exact("/healthz".into())),
                            Principal::DirectRemoteIp("2001:db8::/32".parse().unwrap()),
                        ]),
                    ],
                },
            ),
            ("b/never[0]".into(), Policy::never()),
            (
                "c/any[0]".into(),
                Policy {
                    permissions: vec![Permission::Any],
                    principals: vec![Principal::Any],
                },
            ),
        ],
    }
}

#[test]
fn round_trip() {
    let models = [
        everything(),
        Rbac::new(RbacAction::Allow),
        Rbac {
            action: RbacAction::Log,
            ..everything()
        },
        Rbac {
            action: RbacAction::Allow,
            policies: vec![("ns/allow-nothing[0]".into(), Policy::never())],
        },
    ];
    for m in models {
        let back = clean(decode_rbac(FILTER, &encode_rbac(&m)));
        assert_eq!(back, m);
        // The proto built with a HashMap reads the same.
        let back = clean(decode_rbac(FILTER, &to_any(&rbac_filter_config(&m))));
        assert_eq!(back, m);
    }
}

#[test]
fn policies_come_back_in_name_order() {
    let mut m = everything();
    m.policies.reverse();
    let back = clean(decode_rbac(FILTER, &encode_rbac(&m)));
    let names: Vec<&str> = back.policies.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a/first[0]", "b/never[0]", "c/any[0]"]);
}

fn rules(policy: PbPolicy) -> PbHttpRbac {
    PbHttpRbac {
        rules: Some(PbRules {
            action: 0,
            policies: [("p".to_string(), policy)].into(),
            audit_logging_options: None,
        }),
        ..Default::default()
    }
}

fn any_principal() -> PbPrincipal {
    PbPrincipal {
        identifier: Some(Identifier::Any(true)),
    }
}

fn any_permission() -> PbPermission {
    PbPermission {
        rule: Some(Rule::Any(true)),
    }
}

fn with_permission(rule: Rule) -> PbHttpRbac {
    rules(PbPolicy {
        permissions: vec![PbPermission {
            rule: Some(Rule::NotRule(Box::new(PbPermission { rule: Some(rule) }))),
        }],
        principals: vec![any_principal()],
        ..Default::default()
    })
}

fn with_principal(id: Identifier) -> PbHttpRbac {
    rules(PbPolicy {
        permissions: vec![any_permission()],
        principals: vec![PbPrincipal {
            identifier: Some(Identifier::OrIds(
                envoy_types::pb::envoy::config::rbac::v3::principal::Set {
                    ids: vec![PbPrincipal {
                        identifier: Some(id),
                    }],
                },
            )),
        }],
        ..Default::default()
    })
}

#[track_caller]
fn refused(pb: PbHttpRbac, field: &str) -> String {
    rejected(decode_rbac(FILTER, &to_any(&pb)), FILTER, field)
}

#[test]
fn what_cannot_be_evaluated_is_refused_with_its_path() {
    let metadata = MetadataMatcher::default();
    let sm = StringMatcher {
        match_pattern: Some(MatchPattern::Exact("x".into())),
        ignore_case: false,
    };
    let at = "rules.policies[\"p\"].permissions[0].not_rule";
    for (rule, field) in [
        (Rule::Metadata(metadata.clone()), "metadata"),
        (Rule::DestinationIp(CidrRange::default()), "destination_ip"),
        (
            Rule::DestinationPortRange(Int32Range { start: 1, end: 9 }),
            "destination_port_range",
        ),
        (
            Rule::RequestedServerName(sm.clone()),
            "requested_server_name",
        ),
        (Rule::DestinationPort(70_000), "destination_port"),
        (Rule::Any(false), "any"),
    ] {
        let shown = refused(with_permission(rule), &format!("{at}.{field}"));
        assert!(!shown.contains("; also"), "{shown}");
    }

    let at = "rules.policies[\"p\"].principals[0].or_ids.ids[0]";
    for (id, field) in [
        (Identifier::Metadata(metadata), "metadata"),
        (
            Identifier::RemoteIp(CidrRange {
                address_prefix: "10.0.0.1".into(),
                prefix_len: Some(UInt32Value { value: 40 }),
            }),
            "remote_ip.prefix_len",
        ),
        (
            Identifier::DirectRemoteIp(CidrRange {
                address_prefix: "ten".into(),
                prefix_len: None,
            }),
            "direct_remote_ip.address_prefix",
        ),
        (
            Identifier::UrlPath(PathMatcher {
                rule: Some(path_matcher::Rule::Path(StringMatcher {
                    match_pattern: Some(MatchPattern::Prefix(String::new())),
                    ignore_case: false,
                })),
            }),
            "url_path.path",
        ),
        (
            Identifier::Authenticated(
                envoy_types::pb::envoy::config::rbac::v3::principal::Authenticated {
                    principal_name: Some(StringMatcher {
                        match_pattern: Some(MatchPattern::SafeRegex(RegexMatcher {
                            regex: "[".into(),
                            engine_type: None,
                        })),
                        ignore_case: false,
                    }),
                },
            ),
            "authenticated.principal_name.safe_regex",
        ),
    ] {
        refused(with_principal(id), &format!("{at}.{field}"));
    }

    // A permission with no rule at all is not "any".
    refused(
        rules(PbPolicy {
            permissions: vec![PbPermission { rule: None }],
            principals: vec![any_principal()],
            ..Default::default()
        }),
        "rules.policies[\"p\"].permissions[0]",
    );
}

#[test]
fn cel_matcher_api_and_grpc_headers_are_refused() {
    let cel = rules(PbPolicy {
        permissions: vec![any_permission()],
        principals: vec![any_principal()],
        condition: Some(Expr::default()),
        ..Default::default()
    });
    let shown = refused(cel, "rules.policies[\"p\"].condition");
    assert!(shown.contains("CEL"), "{shown}");

    let mut matcher = rules(PbPolicy {
        permissions: vec![any_permission()],
        principals: vec![any_principal()],
        ..Default::default()
    });
    matcher.matcher = Some(Default::default());
    refused(matcher, "matcher");

    // Validation (model terms): gRPC cannot see grpc-* headers, and a policy needs principals.
    let m = Rbac {
        action: RbacAction::Allow,
        policies: vec![(
            "p".into(),
            Policy {
                permissions: vec![Permission::Header(header("grpc-timeout", None, false))],
                principals: vec![],
            },
        )],
    };
    let e = decode_rbac(FILTER, &encode_rbac(&m)).unwrap_err();
    let DecodeError::Invalid { field, reason, .. } = &e else {
        panic!("{e}");
    };
    assert_eq!(field, "policies[0].principals");
    assert!(reason.contains("grpc-timeout"), "{reason}");
}

#[test]
fn shadow_rules_are_warned_and_absent_rules_enforce_nothing() {
    let mut pb = rbac_filter_config(&everything());
    pb.shadow_rules = pb.rules.clone();
    pb.rules_stat_prefix = "istio_dry_run_allow_".into();
    let m = warned(decode_rbac(FILTER, &to_any(&pb)), "shadow_rules");
    assert_eq!(m, everything());

    let none = clean(decode_rbac(FILTER, &to_any(&PbHttpRbac::default())));
    assert_eq!(none, Rbac::new(RbacAction::Deny));
    assert!(
        none.policies.is_empty(),
        "a DENY filter without policies denies nothing"
    );
}

#[test]
fn source_ip_is_the_peer_address() {
    let pb = with_principal(Identifier::SourceIp(CidrRange {
        address_prefix: "192.168.0.0".into(),
        prefix_len: Some(UInt32Value { value: 16 }),
    }));
    let m = clean(decode_rbac(FILTER, &to_any(&pb)));
    assert_eq!(
        m.policies[0].1.principals[0],
        Principal::Or(vec![Principal::DirectRemoteIp(
            "192.168.0.0/16".parse().unwrap()
        )])
    );
}

#[test]
fn a_listener_filter_config_of_another_type_is_refused() {
    let e = decode_rbac(
        FILTER,
        &to_any(&envoy_types::pb::envoy::extensions::filters::http::router::v3::Router::default()),
    )
    .unwrap_err();
    assert!(e.is_undecodable(), "{e}");
}

#[test]
fn inside_a_listener_errors_are_reported_at_the_filter() {
    use crate::codec::decode::Ctx;
    use crate::codec::decode::rbac::rbac_filter;

    let at = "filter_chains[0].filters[0].http_filters[1].typed_config";
    let mut ctx = Ctx::new("Listener", "inbound|8080");
    let good = rbac_filter(&mut ctx, at, &encode_rbac(&everything()));
    assert_eq!(good, Some(everything()));
    assert!(ctx.errors.is_empty() && ctx.warnings.is_empty());

    let bad = Rbac {
        action: RbacAction::Allow,
        policies: vec![(
            "p".into(),
            Policy {
                permissions: vec![],
                principals: vec![Principal::Any],
            },
        )],
    };
    assert_eq!(rbac_filter(&mut ctx, at, &encode_rbac(&bad)), None);
    assert_eq!(
        ctx.errors.0[0].field,
        format!("{at}.policies[0].permissions")
    );

    let mut ctx = Ctx::new("Listener", "inbound|8080");
    let router =
        to_any(&envoy_types::pb::envoy::extensions::filters::http::router::v3::Router::default());
    assert_eq!(rbac_filter(&mut ctx, at, &router), None);
    assert_eq!(ctx.errors.0[0].field, at);
}
