use http::Request;
use mesh_core::route::*;
use mesh_core::{Regex, StringMatch};

use super::*;

fn route(name: &str, matcher: RouteMatch) -> Route {
    Route {
        name: name.into(),
        matcher,
        action: RouteAction::DirectResponse {
            status: 200,
            body: None,
        },
        request_headers: HeaderMutation::default(),
        response_headers: HeaderMutation::default(),
        fault: None,
        rate_limit: None,
    }
}

fn vh(name: &str, domains: &[&str], routes: Vec<Route>) -> VirtualHost {
    VirtualHost {
        name: name.into(),
        domains: domains.iter().map(|d| d.to_string()).collect(),
        routes,
    }
}

fn req(uri: &str) -> Request<()> {
    Request::get(uri).body(()).unwrap()
}

#[test]
fn virtual_host_precedence_is_envoys() {
    let t = RouteTable {
        name: "t".into(),
        virtual_hosts: vec![
            vh("any", &["*"], vec![]),
            vh("prefix", &["api.*"], vec![]),
            vh("suffix", &["*.example.com"], vec![]),
            vh("longer-suffix", &["*.api.example.com"], vec![]),
            vh(
                "exact",
                &["api.example.com", "api.example.com:8080"],
                vec![],
            ),
        ],
    };
    let pick = |a: &str| select_virtual_host(&t, a).map(|v| v.name.as_str());
    assert_eq!(pick("api.example.com"), Some("exact"));
    assert_eq!(pick("api.example.com:8080"), Some("exact"));
    // As in Envoy, the authority with its port is matched first: `api.*` takes it.
    assert_eq!(pick("api.example.com:9999"), Some("prefix"));
    assert_eq!(pick("v1.api.example.com"), Some("longer-suffix"));
    assert_eq!(pick("www.example.com"), Some("suffix"));
    assert_eq!(pick("api.internal"), Some("prefix"));
    assert_eq!(pick("other"), Some("any"));
    // With nothing matching the port-qualified authority, the port is stripped.
    let t2 = RouteTable {
        name: "t2".into(),
        virtual_hosts: vec![vh("svc", &["svc.local"], vec![])],
    };
    assert_eq!(
        select_virtual_host(&t2, "svc.local:1234").map(|v| v.name.as_str()),
        Some("svc")
    );
    assert!(select_virtual_host(&t2, "other:1234").is_none());
}

#[test]
fn first_matching_route_wins_with_headers_query_and_method() {
    let canary = RouteMatch {
        headers: vec![HeaderMatch {
            name: "x-canary".into(),
            value: Some(StringMatch::Exact("true".into())),
            invert: false,
        }],
        ..Default::default()
    };
    let post = RouteMatch {
        headers: vec![HeaderMatch {
            name: ":method".into(),
            value: Some(StringMatch::Exact("POST".into())),
            invert: false,
        }],
        ..Default::default()
    };
    let query = RouteMatch {
        path: PathMatch::Regex(Regex::new("/items/[0-9]+").unwrap()),
        query_params: vec![QueryParamMatch {
            name: "debug".into(),
            value: None,
        }],
        ..Default::default()
    };
    let v = vh(
        "v",
        &["*"],
        vec![
            route("canary", canary),
            route("post", post),
            route("query", query),
            route("default", RouteMatch::default()),
        ],
    );
    let name = |r: Request<()>| select_route(&v, &r).map(|r| r.name.clone()).unwrap();
    let mut r = req("http://svc/x");
    r.headers_mut().insert("x-canary", "true".parse().unwrap());
    assert_eq!(name(r), "canary");
    assert_eq!(
        name(Request::post("http://svc/x").body(()).unwrap()),
        "post"
    );
    assert_eq!(name(req("http://svc/items/42?debug")), "query");
    assert_eq!(name(req("http://svc/items/42x?debug")), "default");
    assert_eq!(name(req("http://svc/items/42")), "default");
}

#[test]
fn inverted_and_repeated_headers() {
    let m = RouteMatch {
        headers: vec![HeaderMatch {
            name: "x-env".into(),
            value: Some(StringMatch::Contains("b,c".into())),
            invert: false,
        }],
        ..Default::default()
    };
    let mut r = req("http://svc/");
    r.headers_mut().append("x-env", "a".parse().unwrap());
    r.headers_mut().append("x-env", "b".parse().unwrap());
    r.headers_mut().append("x-env", "c".parse().unwrap());
    assert!(route_matches(&m, &r));
    let inv = RouteMatch {
        headers: vec![HeaderMatch {
            name: "x-debug".into(),
            value: None,
            invert: true,
        }],
        ..Default::default()
    };
    assert!(route_matches(&inv, &req("http://svc/")));
    assert!(!route_matches(&inv, &r.map(|_| ()).tap_header("x-debug")));
}

trait TapHeader {
    fn tap_header(self, name: &'static str) -> Self;
}
impl TapHeader for Request<()> {
    fn tap_header(mut self, name: &'static str) -> Self {
        self.headers_mut().insert(name, "1".parse().unwrap());
        self
    }
}

#[test]
fn case_insensitive_prefix() {
    let m = RouteMatch {
        path: PathMatch::Prefix("/API".into()),
        case_sensitive: false,
        ..Default::default()
    };
    assert!(route_matches(&m, &req("http://svc/api/v1")));
    let m = RouteMatch {
        path: PathMatch::Prefix("/API".into()),
        ..Default::default()
    };
    assert!(!route_matches(&m, &req("http://svc/api/v1")));
}

#[test]
fn weighted_pick_follows_the_weights() {
    let cs = vec![
        WeightedCluster {
            name: "a".into(),
            weight: 80,
        },
        WeightedCluster {
            name: "b".into(),
            weight: 20,
        },
        WeightedCluster {
            name: "never".into(),
            weight: 0,
        },
    ];
    let mut counts = [0u32; 2];
    // An even sweep over the roll space: exactly proportional.
    for i in 0..1000u64 {
        let roll = (i * (u64::from(u32::MAX) + 1)).div_ceil(1000) as u32;
        match pick_weighted(&cs, roll).unwrap().name.as_str() {
            "a" => counts[0] += 1,
            "b" => counts[1] += 1,
            other => panic!("picked {other}"),
        }
    }
    assert_eq!(counts, [800, 200]);
    assert_eq!(pick_weighted(&cs, u32::MAX).unwrap().name, "b");
    assert!(pick_weighted(&cs[2..], 7).is_none());
}

#[tokio::test]
async fn the_route_layer_attaches_the_decision_or_answers_404() {
    use tower::{Layer, ServiceExt};
    let mut fwd = ForwardAction::to_cluster("a");
    fwd.clusters = vec![
        WeightedCluster {
            name: "a".into(),
            weight: 0,
        },
        WeightedCluster {
            name: "b".into(),
            weight: 1,
        },
    ];
    let mut only_api = route(
        "api",
        RouteMatch {
            path: PathMatch::Prefix("/api".into()),
            ..Default::default()
        },
    );
    only_api.action = RouteAction::Forward(fwd);
    let table = RouteTable {
        name: "t".into(),
        virtual_hosts: vec![vh("v", &["*"], vec![only_api])],
    };
    let inner = tower::service_fn(|req: Request<()>| async move {
        let routed = req.extensions().get::<Routed>().expect("decision attached");
        let mut resp = http::Response::new(String::new());
        *resp.body_mut() = format!(
            "{}->{}",
            routed.route().name,
            routed.cluster().unwrap_or("-")
        );
        Ok::<_, std::convert::Infallible>(resp)
    });
    let svc = RouteLayer::new(mesh_core::Snapshot::new(table)).layer(inner);
    let ok = svc.clone().oneshot(req("http://svc/api/x")).await.unwrap();
    assert_eq!(ok.body(), "api->b");
    let missing = svc.oneshot(req("http://svc/other")).await.unwrap();
    assert_eq!(missing.status(), 404);
}
