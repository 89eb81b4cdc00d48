//! The representative route table of the decoder tests: every field the encoder writes.

use std::time::Duration;

use mesh_core::route::{
    AbortStatus, FaultAbort, FaultDelay, FaultPolicy, ForwardAction, HashPolicy, HeaderMatch,
    HeaderMutation, MirrorPolicy, PathMatch, QueryParamMatch, RetryOn, RetryPolicy, RouteAction,
    RouteMatch, RouteTable, VirtualHost, WeightedCluster,
};
use mesh_core::{Percent, Regex, StringMatch, Validate};

use super::NAME;

pub(super) fn re(p: &str) -> Regex {
    Regex::new(p).unwrap()
}

pub(super) fn header(name: &str, value: Option<StringMatch>, invert: bool) -> HeaderMatch {
    HeaderMatch {
        name: name.into(),
        value,
        invert,
    }
}

fn route(name: &str, matcher: RouteMatch, action: RouteAction) -> mesh_core::route::Route {
    mesh_core::route::Route {
        name: name.into(),
        matcher,
        action,
        request_headers: HeaderMutation::default(),
        response_headers: HeaderMutation::default(),
        fault: None,
        rate_limit: None,
    }
}

pub(super) fn split_route() -> mesh_core::route::Route {
    let matcher = RouteMatch {
        path: PathMatch::Regex(re("/api/v[0-9]+")),
        case_sensitive: false,
        headers: vec![
            header("x-canary", None, false),
            header("user", Some(StringMatch::Regex(re("jason|ana"))), true),
        ],
        query_params: vec![
            QueryParamMatch {
                name: "debug".into(),
                value: None,
            },
            QueryParamMatch {
                name: "v".into(),
                value: Some(StringMatch::Prefix("2".into())),
            },
        ],
    };
    let action = ForwardAction {
        clusters: vec![
            WeightedCluster {
                name: "outbound|9080|v1|reviews".into(),
                weight: 90,
            },
            WeightedCluster {
                name: "outbound|9080|v2|reviews".into(),
                weight: 10,
            },
        ],
        timeout: Some(Duration::from_millis(1500)),
        grpc_timeout_header_max: Some(Duration::from_millis(1500)),
        retry: Some(RetryPolicy {
            retry_on: vec![
                RetryOn::FiveXx,
                RetryOn::ConnectFailure,
                RetryOn::RetriableStatusCodes,
                RetryOn::Unavailable,
                RetryOn::RetriableHeaders,
            ],
            num_retries: 3,
            per_try_timeout: Some(Duration::from_millis(500)),
            retriable_status_codes: vec![409, 503],
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            retriable_headers: vec![header("x-retry-me", None, false)],
        }),
        mirrors: vec![
            MirrorPolicy {
                cluster: "outbound|9080|shadow|reviews".into(),
                percent: Percent::from_percent(12.5),
            },
            MirrorPolicy {
                cluster: "outbound|9080|audit|reviews".into(),
                percent: Percent::ALL,
            },
        ],
        prefix_rewrite: Some("/v2/".into()),
        host_rewrite: Some("reviews.internal".into()),
        hash_policies: vec![
            HashPolicy::Header("x-user".into()),
            HashPolicy::Cookie {
                name: "session".into(),
                ttl: Some(Duration::from_secs(3600)),
            },
            HashPolicy::Cookie {
                name: "sticky".into(),
                ttl: None,
            },
            HashPolicy::SourceIp,
            HashPolicy::QueryParam("tenant".into()),
        ],
    };
    mesh_core::route::Route {
        request_headers: HeaderMutation {
            set: vec![("x-mesh".into(), "1".into())],
            add: vec![
                ("x-trace".into(), "a".into()),
                ("x-trace".into(), "b".into()),
            ],
            remove: vec!["x-internal".into()],
        },
        response_headers: HeaderMutation {
            set: vec![("cache-control".into(), "no-store".into())],
            add: Vec::new(),
            remove: vec!["server".into()],
        },
        fault: Some(FaultPolicy {
            delay: Some(FaultDelay {
                delay: Duration::from_secs(2),
                percent: Percent::from_percent(10.0),
            }),
            abort: Some(FaultAbort {
                status: AbortStatus::Grpc(14),
                percent: Percent::from_percent(0.5),
            }),
            headers: vec![header(
                "x-chaos",
                Some(StringMatch::Exact("on".into())),
                false,
            )],
        }),
        rate_limit: Some(mesh_core::route::LocalRateLimit {
            max_tokens: 100,
            tokens_per_fill: 10,
            fill_interval: Duration::from_millis(100),
        }),
        ..route("split", matcher, RouteAction::Forward(action))
    }
}

pub(super) fn exact_route() -> mesh_core::route::Route {
    let matcher = RouteMatch {
        path: PathMatch::Exact("/health".into()),
        case_sensitive: true,
        headers: vec![
            header(":method", Some(StringMatch::Exact("GET".into())), false),
            header("accept", Some(StringMatch::Suffix("json".into())), false),
            header("x-debug", None, true),
            header("ua", Some(StringMatch::Contains("curl".into())), false),
        ],
        query_params: vec![QueryParamMatch {
            name: "full".into(),
            value: Some(StringMatch::Exact("1".into())),
        }],
    };
    let to = RouteAction::Forward(ForwardAction::to_cluster("outbound|9080||health"));
    mesh_core::route::Route {
        fault: Some(FaultPolicy {
            delay: None,
            abort: Some(FaultAbort {
                status: AbortStatus::Http(503),
                percent: Percent::ALL,
            }),
            headers: Vec::new(),
        }),
        ..route("exact", matcher, to)
    }
}

/// Routes of the first virtual host: `split`, `exact`, `teapot`, `empty`, `default`.
pub(in crate::codec::decode::tests) fn table() -> RouteTable {
    let prefix = |p: &str| RouteMatch {
        path: PathMatch::Prefix(p.into()),
        ..RouteMatch::default()
    };
    let direct = |status, body: Option<String>| RouteAction::DirectResponse { status, body };
    let mut internal = ForwardAction::to_cluster("outbound|9080|v2|reviews");
    internal.retry = Some(RetryPolicy::default());
    let t = RouteTable {
        name: NAME.into(),
        virtual_hosts: vec![
            VirtualHost {
                name: "reviews".into(),
                domains: vec!["reviews".into(), "reviews:9080".into()],
                routes: vec![
                    split_route(),
                    exact_route(),
                    route(
                        "teapot",
                        prefix("/tea"),
                        direct(418, Some("x".repeat(5000))),
                    ),
                    route("empty", prefix("/empty"), direct(204, None)),
                    route(
                        "default",
                        RouteMatch::default(),
                        RouteAction::Forward(ForwardAction::to_cluster("outbound|9080||reviews")),
                    ),
                ],
            },
            VirtualHost {
                name: "internal".into(),
                domains: vec!["*.internal".into(), "reviews.internal:9080".into()],
                routes: vec![route("v2", prefix("/v2"), RouteAction::Forward(internal))],
            },
        ],
    };
    t.validate().expect("the test model is valid");
    t
}
