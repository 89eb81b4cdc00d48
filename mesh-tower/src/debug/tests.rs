use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use mesh_core::cluster::Cluster;
use mesh_core::endpoint::{ClusterLoadAssignment, Endpoint, Locality, LocalityEndpoints};
use mesh_core::listener::Listener;
use mesh_core::route::*;
use mesh_core::{MeshResources, Regex, Snapshot, StringMatch};
use serde_json::Value;
use tower::ServiceExt;

use super::*;

fn route(
    name: &str,
    path: PathMatch,
    headers: Vec<HeaderMatch>,
    query: Vec<QueryParamMatch>,
) -> Route {
    Route {
        name: name.into(),
        matcher: RouteMatch {
            path,
            headers,
            query_params: query,
            ..RouteMatch::default()
        },
        action: RouteAction::Forward(ForwardAction::to_cluster(format!(
            "outbound|9080|{name}|reviews"
        ))),
        request_headers: HeaderMutation::default(),
        response_headers: HeaderMutation::default(),
        fault: None,
        rate_limit: None,
    }
}

fn header(name: &str, value: Option<StringMatch>, invert: bool) -> HeaderMatch {
    HeaderMatch {
        name: name.into(),
        value,
        invert,
    }
}

fn exact(s: &str) -> Option<StringMatch> {
    Some(StringMatch::Exact(s.into()))
}

fn vh(name: &str, domains: &[&str], routes: Vec<Route>) -> VirtualHost {
    VirtualHost {
        name: name.into(),
        domains: domains.iter().map(|d| d.to_string()).collect(),
        routes,
    }
}

fn catch_all(name: &str) -> Route {
    route(name, PathMatch::Prefix("/".into()), vec![], vec![])
}

fn listener(r: &mut MeshResources, name: &str, table: &str) {
    let mut l = Listener::api(name);
    l.route_config_name = table.into();
    r.listeners.insert(name.into(), l.into());
}

fn table(r: &mut MeshResources, name: &str, virtual_hosts: Vec<VirtualHost>) {
    let t = RouteTable {
        name: name.into(),
        virtual_hosts,
    };
    r.route_tables.insert(name.into(), t.into());
}

/// The mesh the explain table runs on:
/// - `reviews:9080` (also listened on as the FQDN and `reviews-canary:9080`): a virtual host
///   per kind of domain; the exact one has a route per kind of condition, and no catch-all.
/// - `ratings:80`: `*`, one route splitting 90/10 with a timeout and retries.
/// - `orphan:80`: no virtual host serves `orphan`. `lonely:80`: names a table that is missing.
fn mesh() -> MeshResources {
    let mut r = MeshResources::default();
    for l in [
        "reviews:9080",
        "reviews.default.svc.cluster.local:9080",
        "reviews-canary:9080",
    ] {
        listener(&mut r, l, "reviews:9080");
    }
    let prefix = |p: &str| PathMatch::Prefix(p.into());
    table(
        &mut r,
        "reviews:9080",
        vec![
            vh(
                "reviews",
                &["reviews:9080"],
                vec![
                    route("health", PathMatch::Exact("/health".into()), vec![], vec![]),
                    route(
                        "bob",
                        PathMatch::Regex(Regex::new("/r/[0-9]+").unwrap()),
                        vec![header("x-user", exact("bob"), false)],
                        vec![],
                    ),
                    route(
                        "tester",
                        prefix("/r"),
                        vec![header("x-tester", None, false)],
                        vec![],
                    ),
                    route(
                        "v2-query",
                        prefix("/r"),
                        vec![],
                        vec![QueryParamMatch {
                            name: "version".into(),
                            value: exact("2"),
                        }],
                    ),
                    route(
                        "post",
                        prefix("/r"),
                        vec![header(":method", exact("POST"), false)],
                        vec![],
                    ),
                    route(
                        "no-debug",
                        prefix("/r"),
                        vec![header("x-debug", None, true)],
                        vec![],
                    ),
                ],
            ),
            vh(
                "fqdn",
                &["*.svc.cluster.local"],
                vec![catch_all("fqdn-all")],
            ),
            vh("canary", &["reviews-*"], vec![catch_all("canary-all")]),
        ],
    );
    listener(&mut r, "ratings:80", "ratings:80");
    let mut split = catch_all("ratings-all");
    split.action = RouteAction::Forward(ForwardAction {
        clusters: vec![
            WeightedCluster {
                name: "ratings-v1".into(),
                weight: 90,
            },
            WeightedCluster {
                name: "ratings-v2".into(),
                weight: 10,
            },
        ],
        timeout: Some(Duration::from_secs(2)),
        retry: Some(RetryPolicy {
            retry_on: vec![RetryOn::FiveXx, RetryOn::Reset],
            num_retries: 3,
            per_try_timeout: Some(Duration::from_millis(500)),
            ..RetryPolicy::default()
        }),
        ..ForwardAction::to_cluster("unused")
    });
    table(
        &mut r,
        "ratings:80",
        vec![vh("ratings", &["*"], vec![split])],
    );
    r.clusters
        .insert("ratings-v1".into(), Cluster::new("ratings-v1").into());
    listener(&mut r, "orphan:80", "orphan:80");
    table(
        &mut r,
        "orphan:80",
        vec![vh("other", &["other"], vec![catch_all("x")])],
    );
    listener(&mut r, "lonely:80", "missing");
    r
}

/// One request of the table, and what explaining it must say.
struct Row {
    method: &'static str,
    uri: &'static str,
    headers: &'static [(&'static str, &'static str)],
    route: Option<&'static str>,
    /// (index of a skipped route, its reason), when the row checks one.
    reason: Option<(usize, &'static str)>,
    /// A substring of the error, for rows that fail.
    error: Option<&'static str>,
}

const fn row(
    method: &'static str,
    uri: &'static str,
    headers: &'static [(&'static str, &'static str)],
) -> Row {
    Row {
        method,
        uri,
        headers,
        route: None,
        reason: None,
        error: None,
    }
}

impl Row {
    const fn to(mut self, route: &'static str) -> Row {
        self.route = Some(route);
        self
    }
    const fn because(mut self, index: usize, reason: &'static str) -> Row {
        self.reason = Some((index, reason));
        self
    }
    const fn fails(mut self, error: &'static str) -> Row {
        self.error = Some(error);
        self
    }
    fn request(&self) -> Request<()> {
        let mut b = Request::builder().method(self.method).uri(self.uri);
        for (k, v) in self.headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }
}

fn rows() -> Vec<Row> {
    vec![
        // Exact path.
        row("GET", "http://reviews:9080/health", &[]).to("health"),
        row("GET", "http://reviews:9080/health/x", &[])
            .because(0, r#"path: exact "/health" does not match "/health/x""#)
            .fails("no route in reviews:9080 matches GET reviews:9080/health/x"),
        // Regex path and header exact.
        row("GET", "http://reviews:9080/r/1", &[("x-user", "bob")]).to("bob"),
        row(
            "GET",
            "http://reviews:9080/r/1",
            &[("x-user", "alice"), ("x-tester", "1")],
        )
        .to("tester")
        .because(
            1,
            r#"header x-user: exact "bob" but the request has "alice""#,
        ),
        row(
            "GET",
            "http://reviews:9080/r/abc?version=2",
            &[("x-user", "bob")],
        )
        .to("v2-query")
        .because(1, r#"path: regex "/r/[0-9]+" does not match "/r/abc""#),
        // Header present, query parameter, method, inverted header.
        row("GET", "http://reviews:9080/r/1?version=1", &[])
            .to("no-debug")
            .because(2, "header x-tester: required but absent"),
        row("GET", "http://reviews:9080/r/1?version=1", &[])
            .to("no-debug")
            .because(
                3,
                r#"query parameter version: exact "2" but the request has "1""#,
            ),
        row("GET", "http://reviews:9080/r/1", &[])
            .to("no-debug")
            .because(3, r#"query parameter version: exact "2" but absent"#),
        row("GET", "http://reviews:9080/r/1", &[])
            .to("no-debug")
            .because(4, r#"method: exact "POST" but the request is GET"#),
        row("POST", "http://reviews:9080/r/1", &[]).to("post"),
        row("GET", "http://reviews:9080/r/1", &[("x-debug", "on")])
            .because(
                5,
                r#"header x-debug: must be absent but the request has "on""#,
            )
            .fails("no route in reviews:9080 matches GET reviews:9080/r/1"),
        row("GET", "http://reviews:9080/x", &[])
            .because(2, r#"path: prefix "/r" does not match "/x""#)
            .fails("no route in reviews:9080 matches GET reviews:9080/x"),
        // The Host header when the URI has no authority.
        row(
            "GET",
            "/r/7",
            &[("host", "reviews:9080"), ("x-user", "bob")],
        )
        .to("bob"),
        // Virtual host by suffix (after stripping the port) and by prefix.
        row("GET", "http://reviews.default.svc.cluster.local:9080/", &[]).to("fqdn-all"),
        row("GET", "http://reviews-canary:9080/", &[]).to("canary-all"),
        // Default port: `ratings` is looked up as `ratings:80`, `https://ratings` as `:443`.
        row("GET", "http://ratings/anything", &[]).to("ratings-all"),
        row("GET", "https://ratings/anything", &[])
            .fails("no route for ratings: the mesh has no listener ratings:443"),
        // No listener, no route table, no virtual host, no authority.
        row("GET", "http://details:9080/", &[]).fails("the mesh has no listener details:9080"),
        row("GET", "http://lonely/", &[]).fails("the mesh has no listener lonely:80"),
        row("GET", "http://orphan/", &[]).fails("no route in orphan:80 matches GET orphan/"),
        row("GET", "/r/1", &[]).fails("no authority in the URI and no Host header"),
    ]
}

#[test]
fn explain_picks_the_route_and_says_why_the_others_did_not_match() {
    let r = mesh();
    for row in rows() {
        let req = row.request();
        let why = explain(&r, &req);
        let at = format!("{} {} {:?}: {why:#?}", row.method, row.uri, row.headers);
        assert_eq!(why.route.as_deref(), row.route, "{at}");
        assert_eq!(why.error.is_some(), row.route.is_none(), "{at}");
        if let Some(e) = row.error {
            assert!(why.error.as_deref().unwrap().contains(e), "{at}");
            assert!(why.action.is_none() && why.clusters.is_empty(), "{at}");
        }
        if let Some((i, reason)) = row.reason {
            let s = &why.skipped[i];
            assert_eq!(
                (s.index, s.matched, s.reason.as_str()),
                (i, false, reason),
                "{at}"
            );
        }
        // Every route before the match is listed, in order, and none after it.
        if let (Some(vh), Some(route)) = (&why.virtual_host, &why.route) {
            let table = &r.route_tables["reviews:9080"];
            if let Some(v) = table.virtual_hosts.iter().find(|v| v.name == vh.name) {
                let pos = v.routes.iter().position(|x| &x.name == route).unwrap();
                let skipped: Vec<_> = why.skipped.iter().map(|s| s.route.as_str()).collect();
                let before: Vec<_> = v.routes[..pos].iter().map(|x| x.name.as_str()).collect();
                assert_eq!(skipped, before, "{at}");
            }
        }
    }
}

#[test]
fn explain_names_the_virtual_host_and_how_its_domain_matched() {
    let r = mesh();
    let vh = |uri: &str| {
        let why = explain(&r, &Request::get(uri).body(()).unwrap());
        let v = why.virtual_host.expect("a virtual host");
        (v.name, v.domain, v.matched_by, v.reason)
    };
    let (name, domain, by, _) = vh("http://reviews:9080/");
    assert_eq!(
        (name.as_str(), domain.as_str(), by),
        ("reviews", "reviews:9080", "exact")
    );
    let (name, _, by, reason) = vh("http://reviews.default.svc.cluster.local:9080/");
    assert_eq!((name.as_str(), by), ("fqdn", "suffix"));
    assert!(reason.contains("without the port"), "{reason}");
    let (name, _, by, reason) = vh("http://reviews-canary:9080/");
    assert_eq!((name.as_str(), by), ("canary", "prefix"));
    assert!(!reason.contains("without the port"), "{reason}");
    assert_eq!(vh("http://ratings/").2, "any");

    let why = explain(&r, &Request::get("http://orphan/").body(()).unwrap());
    assert!(why.virtual_host.is_none());
    assert!(why.detail.unwrap().contains(r#"domains are "other""#));
    let why = explain(&r, &Request::get("http://lonely/").body(()).unwrap());
    assert_eq!(why.listener.as_deref(), Some("lonely:80"));
    assert!(why.route_table.is_none());
    assert!(why.detail.unwrap().contains(r#"route table "missing""#));
}

#[test]
fn explain_states_the_forward_action_with_shares_timeout_and_retries() {
    let why = explain(&mesh(), &Request::get("http://ratings/").body(()).unwrap());
    let shares: Vec<_> = why
        .clusters
        .iter()
        .map(|c| (c.name.as_str(), c.weight, c.percent, c.known))
        .collect();
    assert_eq!(
        shares,
        [
            ("ratings-v1", 90, 90.0, true),
            ("ratings-v2", 10, 10.0, false)
        ]
    );
    let Some(Action::Forward {
        timeout_ms, retry, ..
    }) = why.action
    else {
        panic!("a forward action: {why:?}");
    };
    assert_eq!(timeout_ms, Some(2000));
    let retry = retry.unwrap();
    assert_eq!(
        (retry.retry_on, retry.num_retries, retry.per_try_timeout_ms),
        (vec!["5xx", "reset"], 3, Some(500))
    );
}

/// The mesh with every route answering directly with its own name, so a client's answer says
/// which route it took.
fn answering_names(mut r: MeshResources) -> MeshResources {
    for t in r.route_tables.values_mut() {
        let t = std::sync::Arc::make_mut(t);
        for route in t.virtual_hosts.iter_mut().flat_map(|v| &mut v.routes) {
            route.action = RouteAction::DirectResponse {
                status: 200,
                body: Some(route.name.clone()),
            };
        }
    }
    r
}

#[tokio::test]
async fn explain_agrees_with_the_client_on_every_row() {
    let r = answering_names(mesh());
    let client = crate::Client::from_snapshot(Snapshot::new(r.clone()));
    for row in rows() {
        let why = explain(&r, &row.request());
        let sent = client
            .request(row.request().map(|()| Empty::<Bytes>::new()))
            .await;
        let at = format!("{} {} {:?}", row.method, row.uri, row.headers);
        match sent {
            Ok(resp) => {
                let body = resp.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(
                    why.route.as_deref().map(str::as_bytes),
                    Some(&body[..]),
                    "{at}"
                );
                assert!(
                    matches!(why.action, Some(Action::DirectResponse { status: 200, .. })),
                    "{at}"
                );
            }
            Err(e) => assert_eq!(why.error, Some(e.to_string()), "{at}"),
        }
    }
}

// --- the HTTP service -------------------------------------------------------------------------

async fn get(svc: &DebugService, uri: &str) -> (StatusCode, String, Value) {
    let resp = svc
        .clone()
        .oneshot(Request::get(uri).body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let json = if ctype == "application/json" {
        serde_json::from_slice(&body).unwrap()
    } else {
        Value::String(String::from_utf8(body.to_vec()).unwrap())
    };
    (status, ctype, json)
}

fn with_endpoints(mut r: MeshResources) -> MeshResources {
    r.assignments.insert(
        "ratings-v1".into(),
        ClusterLoadAssignment {
            cluster_name: "ratings-v1".into(),
            localities: vec![
                LocalityEndpoints {
                    locality: Locality::parse("eu/eu-1a"),
                    endpoints: vec![Endpoint::new(([10, 0, 0, 1], 9080).into())],
                    ..Default::default()
                },
                LocalityEndpoints {
                    locality: Locality::parse("us/us-1a"),
                    priority: 1,
                    endpoints: vec![Endpoint {
                        weight: 3,
                        ..Endpoint::new(([10, 0, 0, 2], 9080).into())
                    }],
                    ..Default::default()
                },
            ],
        }
        .into(),
    );
    r
}

#[tokio::test]
async fn each_view_answers_json_at_its_path() {
    let svc = DebugService::from_snapshot(Snapshot::new(with_endpoints(mesh())));

    let (status, ctype, index) = get(&svc, "/debug").await;
    assert_eq!(
        (status, ctype.as_str()),
        (StatusCode::OK, "application/json")
    );
    let paths: Vec<&str> = index["views"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"/debug/config_dump") && paths.contains(&"/debug/clusters"));

    let (_, _, routes) = get(&svc, "/debug/routes").await;
    let listeners = routes["listeners"].as_array().unwrap();
    let reviews = listeners
        .iter()
        .find(|l| l["target"] == "reviews:9080")
        .unwrap();
    assert_eq!(
        reviews["route_table"]["virtual_hosts"][0]["routes"][0]["name"],
        "health"
    );
    let lonely = listeners
        .iter()
        .find(|l| l["target"] == "lonely:80")
        .unwrap();
    assert_eq!(lonely["route_config_name"], "missing");
    assert!(lonely["route_table"].is_null());

    let (_, _, clusters) = get(&svc, "/debug/clusters").await;
    let c = &clusters["clusters"][0];
    assert_eq!(c["name"], "ratings-v1");
    assert_eq!(c["has_assignment"], true);
    assert!(c["live"].is_null(), "no client, no live state");
    let eps = c["endpoints"].as_array().unwrap();
    assert_eq!(eps.len(), 2);
    assert_eq!(eps[1]["address"], "10.0.0.2:9080");
    assert_eq!(eps[1]["locality"]["region"], "us");
    assert_eq!(
        (eps[1]["priority"].as_u64(), eps[1]["weight"].as_u64()),
        (Some(1), Some(3))
    );
    assert_eq!(eps[1]["health"], "healthy");

    let (_, _, dump) = get(&svc, "/debug/config_dump").await;
    assert!(dump["xds"].is_null(), "a static snapshot has no xDS status");
    let kinds: Vec<(&str, &str)> = dump["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["name"].as_str().unwrap()))
        .collect();
    assert!(kinds.contains(&("LDS", "ratings:80")) && kinds.contains(&("RDS", "orphan:80")));
    assert!(kinds.contains(&("CDS", "ratings-v1")) && kinds.contains(&("EDS", "ratings-v1")));

    let (status, _, why) = get(
        &svc,
        "/debug/explain?authority=reviews:9080&path=%2Fr%2F1%3Fversion%3D2&header=x-user:alice",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(why["route"], "v2-query");
    assert_eq!(why["request"]["path"], "/r/1?version=2");
    assert_eq!(
        why["skipped"][1]["reason"],
        r#"header x-user: exact "bob" but the request has "alice""#
    );
    assert_eq!(why["skipped"][1]["matched"], false);
}

#[tokio::test]
async fn bad_requests_get_json_errors_that_say_what_is_wrong() {
    let svc = DebugService::from_snapshot(Snapshot::new(mesh()));
    let (status, ctype, body) = get(&svc, "/debug/nope").await;
    assert_eq!(
        (status, ctype.as_str()),
        (StatusCode::NOT_FOUND, "application/json")
    );
    let e = body["error"].as_str().unwrap();
    assert!(
        e.contains("/debug/nope") && e.contains("/debug/explain"),
        "{e}"
    );

    let (status, _, body) = get(&svc, "/debug/explain?path=/r/1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["parameter"], "authority");
    assert!(
        body["error"].as_str().unwrap().contains("required"),
        "{body}"
    );
    let (status, _, body) = get(&svc, "/debug/explain?authority=reviews:9080&method=G%20T").await;
    assert_eq!(
        (status, body["parameter"].as_str()),
        (StatusCode::BAD_REQUEST, Some("method"))
    );

    let (status, _, body) = get(&svc, "/metrics").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"].as_str().unwrap().contains("Prometheus"),
        "{body}"
    );

    let resp = svc
        .clone()
        .oneshot(
            Request::post("/debug/routes")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "GET, HEAD");
}

#[tokio::test]
async fn nested_without_its_prefix_it_answers_the_same() {
    let svc = DebugService::from_snapshot(Snapshot::new(mesh()));
    for (nested, full) in [
        ("/routes", "/debug/routes"),
        ("/", "/debug"),
        ("/clusters/", "/debug/clusters"),
    ] {
        let a = get(&svc, nested).await;
        let b = get(&svc, full).await;
        assert_eq!(a.0, StatusCode::OK, "{nested}");
        assert_eq!(a.2, b.2, "{nested}");
    }
    // A path that merely starts with "/debug" is not a view.
    assert_eq!(get(&svc, "/debugger").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_renders_the_prometheus_handle() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("debug_test_requests_total").increment(3);
    });
    let svc = DebugService::from_snapshot(Snapshot::new(mesh())).prometheus(handle);
    for path in ["/metrics", "/debug/metrics"] {
        let (status, ctype, body) = get(&svc, path).await;
        assert_eq!(status, StatusCode::OK);
        assert!(ctype.starts_with("text/plain"), "{ctype}");
        assert!(
            body.as_str()
                .unwrap()
                .contains("debug_test_requests_total 3"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn the_views_follow_live_state_changes() {
    let state = Snapshot::new(mesh());
    let svc = DebugService::from_snapshot(state.clone());
    let uri = "/debug/explain?authority=ratings";
    assert_eq!(get(&svc, uri).await.2["route"], "ratings-all");
    let mut next = mesh();
    next.listeners.remove("ratings:80");
    state.store(next);
    let (_, _, why) = get(&svc, uri).await;
    assert!(why["route"].is_null());
    assert!(
        why["error"]
            .as_str()
            .unwrap()
            .contains("no listener ratings:80"),
        "{why}"
    );
}

#[test]
fn it_has_what_serve_and_axum_nest_service_require() {
    fn mountable<S>(_: &S)
    where
        S: tower::Service<
                Request<hyper::body::Incoming>,
                Response = http::Response<Full<Bytes>>,
                Error = std::convert::Infallible,
            > + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
    }
    mountable(&DebugService::from_snapshot(Snapshot::new(mesh())));
}
