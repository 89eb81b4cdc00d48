//! The representative route table the encoder tests share.

use std::time::Duration;

use mesh_core::route::{
    AbortStatus, FaultAbort, FaultDelay, FaultPolicy, ForwardAction, HashPolicy, HeaderMatch,
    HeaderMutation, MirrorPolicy, PathMatch, QueryParamMatch, RetryOn, RetryPolicy,
    Route as ModelRoute, RouteAction, RouteMatch, RouteTable, VirtualHost, WeightedCluster,
};
use mesh_core::{Percent, Regex, StringMatch, Validate};

fn split_route() -> ModelRoute {
    ModelRoute {
        name: "split".into(),
        matcher: RouteMatch {
            path: PathMatch::Regex(Regex::new("/api/v[0-9]+").unwrap()),
            case_sensitive: false,
            headers: vec![
                HeaderMatch {
                    name: "x-canary".into(),
                    value: None,
                    invert: false,
                },
                HeaderMatch {
                    name: "user".into(),
                    value: Some(StringMatch::Regex(Regex::new("jason|ana").unwrap())),
                    invert: true,
                },
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
        },
        action: RouteAction::Forward(ForwardAction {
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
                ],
                num_retries: 3,
                per_try_timeout: Some(Duration::from_millis(500)),
                retriable_status_codes: vec![409, 503],
                ..RetryPolicy::default()
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
                HashPolicy::SourceIp,
                HashPolicy::QueryParam("tenant".into()),
            ],
        }),
        request_headers: HeaderMutation {
            set: vec![("x-mesh".into(), "1".into())],
            add: vec![("x-trace".into(), "a".into())],
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
            headers: vec![HeaderMatch {
                name: "x-chaos".into(),
                value: Some(StringMatch::Exact("on".into())),
                invert: false,
            }],
        }),
        rate_limit: None,
    }
}

fn simple_route(name: &str, action: RouteAction) -> ModelRoute {
    ModelRoute {
        name: name.into(),
        matcher: RouteMatch::default(),
        action,
        request_headers: HeaderMutation::default(),
        response_headers: HeaderMutation::default(),
        fault: None,
        rate_limit: None,
    }
}

/// Routes: `split` (every forwarding policy and a fault), `teapot` (a 5000-byte direct
/// response) and `default` (one cluster, no policies).
pub(super) fn table() -> RouteTable {
    let t = RouteTable {
        name: "reviews:9080".into(),
        virtual_hosts: vec![VirtualHost {
            name: "reviews".into(),
            domains: vec!["reviews".into(), "reviews:9080".into()],
            routes: vec![
                split_route(),
                simple_route(
                    "teapot",
                    RouteAction::DirectResponse {
                        status: 418,
                        body: Some("x".repeat(5000)),
                    },
                ),
                simple_route(
                    "default",
                    RouteAction::Forward(ForwardAction::to_cluster("outbound|9080||reviews")),
                ),
            ],
        }],
    };
    t.validate().expect("the test model is valid");
    t
}
