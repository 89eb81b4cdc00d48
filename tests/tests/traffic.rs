//! The client stack (`mesh_tower::Client`) over loopback, fed by the real control plane and YAML
//! through the in-app xDS client: splits, header matches, retries, budgets, balancing, breakers,
//! outlier ejection and mirroring.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use mesh_test::backend::{self, Backend, Behavior};
use mesh_test::mesh::TestMesh;
use mesh_tower::Client;
use mesh_xds_client::client::Options;
use mesh_xds_client::{Bootstrap, XdsClient};

const PORT: u16 = 8080;

/// A ServiceEntry `host` with the given endpoints (name → labels version=name), a DestinationRule
/// with one subset per endpoint plus `traffic_policy` (YAML under `trafficPolicy:`), and a
/// VirtualService with `http` (YAML list under `http:`).
fn mesh_yaml(host: &str, endpoints: &[&Backend], traffic_policy: &str, http: &str) -> String {
    let mut eps = String::new();
    let mut subsets = String::new();
    for b in endpoints {
        eps.push_str(&format!(
            "  - address: 127.0.0.1\n    ports: {{ http: {} }}\n    labels: {{ version: {} }}\n",
            b.addr.port(),
            b.name
        ));
        subsets.push_str(&format!(
            "  - name: {0}\n    labels: {{ version: {0} }}\n",
            b.name
        ));
    }
    let tp = if traffic_policy.is_empty() {
        String::new()
    } else {
        format!("  trafficPolicy:\n{traffic_policy}")
    };
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{ name: svc, namespace: default }}\nspec:\n  hosts: [{host}]\n  ports: [{{ number: {PORT}, name: http, protocol: HTTP }}]\n  resolution: STATIC\n  endpoints:\n{eps}---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{ name: svc, namespace: default }}\nspec:\n  host: {host}\n{tp}  subsets:\n{subsets}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{ name: svc, namespace: default }}\nspec:\n  hosts: [{host}]\n  http:\n{http}"
    )
}

struct Setup {
    mesh: TestMesh,
    client: Client,
    _xds: XdsClient,
    _target: mesh_xds_client::Target,
    host: String,
}

async fn setup(host: &str, yaml: &str) -> Setup {
    let mesh = TestMesh::start(&[("svc.yaml", yaml)]).await;
    let status = mesh.cp().config_status();
    assert_eq!(status.errors(), 0, "{:#?}", status.diagnostics);
    let xds = XdsClient::start(
        Bootstrap::insecure(&mesh.cp().xds_addr().to_string(), "traffic"),
        Options::default(),
    );
    let target = format!("{host}:{PORT}");
    let t = xds.subscribe(&target);
    xds.ready(&target, Duration::from_secs(10)).await.unwrap();
    let client = Client::new(&xds.state());
    Setup {
        mesh,
        client,
        _xds: xds,
        _target: t,
        host: host.to_string(),
    }
}

/// Sends `n` GETs with `concurrency` in parallel; returns the count per body (or per status for
/// non-200 answers, as `status:<code>`).
async fn load(
    s: &Setup,
    n: usize,
    concurrency: usize,
    headers: &[(&'static str, &'static str)],
) -> BTreeMap<String, usize> {
    send(
        s.client.clone(),
        s.host.clone(),
        n,
        concurrency,
        headers.to_vec(),
    )
    .await
}

async fn send(
    client: Client,
    host: String,
    n: usize,
    concurrency: usize,
    headers: Vec<(&'static str, &'static str)>,
) -> BTreeMap<String, usize> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, next, url) = (
            client.clone(),
            next.clone(),
            format!("http://{host}:{PORT}/"),
        );
        let headers = headers.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let mut req = http::Request::get(&url);
                for (k, v) in &headers {
                    req = req.header(*k, *v);
                }
                let key = match client
                    .request(req.body(Empty::<Bytes>::new()).unwrap())
                    .await
                {
                    Ok(resp) if resp.status() == 200 => String::from_utf8_lossy(
                        &resp.into_body().collect().await.unwrap().to_bytes(),
                    )
                    .into_owned(),
                    Ok(resp) => format!("status:{}", resp.status().as_u16()),
                    Err(e) => format!("error:{e}"),
                };
                *seen.entry(key).or_default() += 1;
            }
            seen
        }));
    }
    let mut total = BTreeMap::new();
    for t in tasks {
        for (k, v) in t.await.unwrap() {
            *total.entry(k).or_default() += v;
        }
    }
    total
}

fn share(counts: &BTreeMap<String, usize>, key: &str) -> f64 {
    let total: usize = counts.values().sum();
    counts.get(key).copied().unwrap_or(0) as f64 / total as f64
}

fn split(v1: u32, v2: u32) -> String {
    format!(
        "  - name: canary\n    match: [{{ headers: {{ x-canary: {{ exact: \"true\" }} }} }}]\n    route: [{{ destination: {{ host: web.mesh.local, subset: v2 }} }}]\n  - name: split\n    route:\n    - {{ destination: {{ host: web.mesh.local, subset: v1 }}, weight: {v1} }}\n    - {{ destination: {{ host: web.mesh.local, subset: v2 }}, weight: {v2} }}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_90_10_split_then_50_50_after_a_live_edit_with_no_failed_request() {
    let (v1, v2) = (backend::http("v1").await, backend::http("v2").await);
    let s = setup(
        "web.mesh.local",
        &mesh_yaml("web.mesh.local", &[&v1, &v2], "", &split(90, 10)),
    )
    .await;
    let counts = load(&s, 10_000, 8, &[]).await;
    assert_eq!(counts.values().sum::<usize>(), 10_000);
    let p = share(&counts, "v1");
    assert!((0.88..=0.92).contains(&p), "v1 share {p}: {counts:?}");

    // Canary users always reach v2.
    let canary = load(&s, 200, 4, &[("x-canary", "true")]).await;
    assert_eq!(canary.get("v2"), Some(&200), "{canary:?}");

    // Edit to 50/50 while requests run: none may fail.
    let during = tokio::spawn(send(s.client.clone(), s.host.clone(), 3_000, 4, Vec::new()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.mesh.write(
        "svc.yaml",
        &mesh_yaml("web.mesh.local", &[&v1, &v2], "", &split(50, 50)),
    );
    let during = during.await.unwrap();
    assert!(
        during.keys().all(|k| k == "v1" || k == "v2"),
        "failed requests across the edit: {during:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let counts = load(&s, 10_000, 8, &[]).await;
    let p = share(&counts, "v1");
    assert!(
        (0.48..=0.52).contains(&p),
        "v1 share after the edit {p}: {counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_hide_a_flaky_endpoint_and_the_budget_caps_the_extra_load() {
    let flaky = backend::http_with(
        "flaky",
        Behavior {
            fail_permille: 300,
            ..Default::default()
        },
    )
    .await;
    let (a, b) = (backend::http("a").await, backend::http("b").await);
    let http = "  - name: all\n    retries: { attempts: 3, retryOn: 5xx }\n    route: [{ destination: { host: api.mesh.local } }]\n";
    let s = setup(
        "api.mesh.local",
        &mesh_yaml(
            "api.mesh.local",
            &[&flaky, &a, &b],
            "    loadBalancer: { simple: ROUND_ROBIN }\n",
            http,
        ),
    )
    .await;
    let counts = load(&s, 3_000, 4, &[]).await;
    let ok: usize = counts
        .iter()
        .filter(|(k, _)| !k.starts_with("status:") && !k.starts_with("error:"))
        .map(|(_, v)| v)
        .sum();
    assert!(
        ok as f64 / 3_000.0 >= 0.999,
        "success {ok}/3000: {counts:?}"
    );
    let hits = flaky.hits() + a.hits() + b.hits();
    assert!(
        hits < 3_000 * 115 / 100,
        "retries added {} requests",
        hits - 3_000
    );

    // Everything fails: a 10 % budget keeps retries near 10 % of the load instead of 5 per request.
    let (d1, d2) = (
        backend::http_with(
            "d1",
            Behavior {
                fail_permille: 1000,
                ..Default::default()
            },
        )
        .await,
        backend::http_with(
            "d2",
            Behavior {
                fail_permille: 1000,
                ..Default::default()
            },
        )
        .await,
    );
    let http = "  - name: all\n    retries: { attempts: 5, retryOn: 5xx }\n    route: [{ destination: { host: down.mesh.local } }]\n";
    let tp = "    retryBudget: { percent: 10, minRetryConcurrency: 1 }\n";
    let s = setup(
        "down.mesh.local",
        &mesh_yaml("down.mesh.local", &[&d1, &d2], tp, http),
    )
    .await;
    let counts = load(&s, 400, 16, &[]).await;
    assert_eq!(counts.get("status:503"), Some(&400), "{counts:?}");
    let hits = d1.hits() + d2.hits();
    assert!(
        hits < 400 * 2,
        "{hits} attempts for 400 requests: the budget did not cap retries (5 retries each would be 2400)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoint_gets_less_traffic_under_peak_ewma_than_round_robin() {
    let slow = backend::http_with(
        "slow",
        Behavior {
            delay: Duration::from_millis(25),
            ..Default::default()
        },
    )
    .await;
    let (f1, f2) = (backend::http("f1").await, backend::http("f2").await);
    let route = "  - name: all\n    route: [{ destination: { host: lb.mesh.local } }]\n";
    let ewma = setup(
        "lb.mesh.local",
        &mesh_yaml("lb.mesh.local", &[&slow, &f1, &f2], "", route),
    )
    .await;
    let c = load(&ewma, 600, 6, &[]).await;
    let ewma_share = share(&c, "slow");
    let rr = setup(
        "lb.mesh.local",
        &mesh_yaml(
            "lb.mesh.local",
            &[&slow, &f1, &f2],
            "    loadBalancer: { simple: ROUND_ROBIN }\n",
            route,
        ),
    )
    .await;
    let c2 = load(&rr, 600, 6, &[]).await;
    let rr_share = share(&c2, "slow");
    assert!(
        (0.30..=0.37).contains(&rr_share),
        "round robin gave the slow endpoint {rr_share}"
    );
    assert!(
        ewma_share < rr_share / 2.0,
        "peak EWMA {ewma_share} vs round robin {rr_share}: {c:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_thresholds_cap_concurrency_and_name_the_limit() {
    let slow = backend::http_with(
        "held",
        Behavior {
            delay: Duration::from_millis(400),
            ..Default::default()
        },
    )
    .await;
    let route = "  - name: all\n    retries: { attempts: 0 }\n    route: [{ destination: { host: cb.mesh.local } }]\n";
    let tp = "    connectionPool: { http: { http2MaxRequests: 5 } }\n";
    let s = setup(
        "cb.mesh.local",
        &mesh_yaml("cb.mesh.local", &[&slow], tp, route),
    )
    .await;
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let client = s.client.clone();
        tasks.push(tokio::spawn(async move {
            let resp = client
                .request(
                    http::Request::get(format!("http://cb.mesh.local:{PORT}/"))
                        .body(Empty::<Bytes>::new())
                        .unwrap(),
                )
                .await
                .unwrap();
            (
                resp.status().as_u16(),
                resp.headers()
                    .get("x-mesh-overflow")
                    .map(|v| v.to_str().unwrap().to_string()),
            )
        }));
    }
    let mut ok = 0;
    let mut overflow = 0;
    for t in tasks {
        match t.await.unwrap() {
            (200, None) => ok += 1,
            (503, Some(limit)) => {
                assert_eq!(limit, "max_requests");
                overflow += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((ok, overflow), (5, 7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outlier_detection_ejects_a_failing_endpoint_and_brings_it_back() {
    let bad = backend::http_with(
        "bad",
        Behavior {
            fail_permille: 1000,
            ..Default::default()
        },
    )
    .await;
    let good = backend::http("good").await;
    let route = "  - name: all\n    retries: { attempts: 0 }\n    route: [{ destination: { host: od.mesh.local } }]\n";
    let tp = "    loadBalancer: { simple: ROUND_ROBIN }\n    outlierDetection: { consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 2s, maxEjectionPercent: 50 }\n";
    let s = setup(
        "od.mesh.local",
        &mesh_yaml("od.mesh.local", &[&bad, &good], tp, route),
    )
    .await;
    load(&s, 40, 1, &[]).await;
    let ejected_at = bad.hits();
    assert!(
        ejected_at <= 4,
        "bad endpoint kept receiving traffic: {ejected_at} hits"
    );
    load(&s, 40, 1, &[]).await;
    assert_eq!(bad.hits(), ejected_at, "an ejected endpoint got traffic");
    tokio::time::sleep(Duration::from_millis(2300)).await;
    load(&s, 10, 1, &[]).await;
    assert!(
        bad.hits() > ejected_at,
        "the endpoint did not come back after its ejection time"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrored_traffic_arrives_at_the_configured_percentage_without_changing_responses() {
    let (v1, shadow) = (backend::http("v1").await, backend::http("shadow").await);
    let http = "  - name: all\n    route: [{ destination: { host: mir.mesh.local, subset: v1 } }]\n    mirror: { host: mir.mesh.local, subset: shadow }\n    mirrorPercentage: { value: 50 }\n";
    let s = setup(
        "mir.mesh.local",
        &mesh_yaml("mir.mesh.local", &[&v1, &shadow], "", http),
    )
    .await;
    let counts = load(&s, 2_000, 4, &[]).await;
    assert_eq!(counts.get("v1"), Some(&2_000), "{counts:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mirrored = shadow.hits() as f64 / 2_000.0;
    assert!((0.45..=0.55).contains(&mirrored), "mirror share {mirrored}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrites_header_changes_and_direct_responses_follow_the_route() {
    let v1 = backend::http("v1").await;
    let http = "  - name: teapot\n    match: [{ uri: { exact: /brew } }]\n    directResponse: { status: 418, body: { string: short and stout } }\n  - name: api\n    match: [{ uri: { prefix: /api/ } }]\n    rewrite: { uri: /v2/ }\n    headers: { response: { set: { x-served-by: mesh } } }\n    route: [{ destination: { host: rw.mesh.local } }]\n";
    let s = setup(
        "rw.mesh.local",
        &mesh_yaml("rw.mesh.local", &[&v1], "", http),
    )
    .await;
    let get = |path: &str| {
        s.client.request(
            http::Request::get(format!("http://rw.mesh.local:{PORT}{path}"))
                .body(Empty::<Bytes>::new())
                .unwrap(),
        )
    };
    let resp = get("/api/items?page=2").await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-path"], "/v2/items");
    assert_eq!(resp.headers()["x-served-by"], "mesh");
    let teapot = get("/brew").await.unwrap();
    assert_eq!(teapot.status(), 418);
    assert_eq!(
        teapot.into_body().collect().await.unwrap().to_bytes(),
        "short and stout"
    );
    match get("/elsewhere").await {
        Err(mesh_tower::Error::NoRoute { path, .. }) => assert_eq!(path, "/elsewhere"),
        other => panic!("{:?}", other.map(|r| r.status())),
    }
}

/// A client over a static state: one route (`route` edits it) to one cluster of `endpoints`, for
/// settings that arrive over xDS but no YAML document sets (local rate limits, retriable headers).
fn static_client(
    target: &str,
    endpoints: &[&Backend],
    lb: mesh_core::cluster::LbPolicy,
    edit: impl FnOnce(&mut mesh_core::route::Route),
) -> Client {
    use mesh_core::cluster::Cluster;
    use mesh_core::endpoint::Endpoint;
    use mesh_core::route::{ForwardAction, Route, RouteAction};
    use mesh_core::{MeshResources, Snapshot};

    let host = target.rsplit_once(':').unwrap().0;
    let cluster = mesh_core::cluster_name(host, PORT, None);
    let mut route = Route::new(
        "only",
        RouteAction::Forward(ForwardAction::to_cluster(cluster.clone())),
    );
    edit(&mut route);
    let mut r = MeshResources::default();
    r.add_target(target, host, vec![route]);
    let mut c = Cluster::new(cluster);
    c.lb_policy = lb;
    r.add_cluster(c, endpoints.iter().map(|b| Endpoint::new(b.addr)).collect());
    Client::from_snapshot(Snapshot::new(r))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_rate_limit_answers_429_with_a_retry_hint() {
    let v1 = backend::http("v1").await;
    let target = format!("rl.mesh.local:{PORT}");
    let client = static_client(&target, &[&v1], Default::default(), |r| {
        r.rate_limit = Some(mesh_core::route::LocalRateLimit {
            max_tokens: 5,
            tokens_per_fill: 1,
            fill_interval: Duration::from_secs(60),
        });
    });
    let mut statuses = Vec::new();
    let mut hint = None;
    for _ in 0..8 {
        let resp = client
            .request(
                http::Request::get(format!("http://{target}/"))
                    .body(Empty::<Bytes>::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            hint = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
        }
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    assert!(hint.is_some_and(|s| (1..=60).contains(&s)), "{hint:?}");
    assert_eq!(v1.hits(), 5, "limited requests never reach the backend");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retriable_header_sends_the_request_to_another_endpoint() {
    use mesh_core::route::{HeaderMatch, RetryOn, RetryPolicy, RouteAction};
    let (busy, idle) = (backend::http("busy").await, backend::http("idle").await);
    let target = format!("rh.mesh.local:{PORT}");
    let client = static_client(
        &target,
        &[&busy, &idle],
        mesh_core::cluster::LbPolicy::RoundRobin,
        |r| {
            if let RouteAction::Forward(f) = &mut r.action {
                f.retry = Some(RetryPolicy {
                    retry_on: vec![RetryOn::RetriableHeaders],
                    num_retries: 1,
                    retriable_headers: vec![HeaderMatch {
                        name: "x-backend".into(),
                        value: Some(mesh_core::StringMatch::Exact("busy".into())),
                        invert: false,
                    }],
                    ..Default::default()
                });
            }
        },
    );
    for _ in 0..20 {
        let resp = client
            .request(
                http::Request::get(format!("http://{target}/"))
                    .body(Empty::<Bytes>::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.headers()["x-backend"], "idle");
    }
    assert!(
        busy.hits() >= 5,
        "round robin sent nothing to the busy endpoint: {}",
        busy.hits()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_policies_and_breaker_thresholds_change_under_load_without_a_failed_request() {
    let (v1, v2) = (backend::http("v1").await, backend::http("v2").await);
    let http = |attempts: u32| {
        format!(
            "  - name: all\n    retries: {{ attempts: {attempts}, retryOn: 5xx, perTryTimeout: 2s }}\n    route:\n    - {{ destination: {{ host: live.mesh.local, subset: v1 }}, weight: 50 }}\n    - {{ destination: {{ host: live.mesh.local, subset: v2 }}, weight: 50 }}\n"
        )
    };
    let tp = |max: u32| {
        format!(
            "    connectionPool: {{ http: {{ http2MaxRequests: {max}, maxRetries: 5 }} }}\n    outlierDetection: {{ consecutive5xxErrors: 5, interval: 1s, baseEjectionTime: 5s }}\n"
        )
    };
    let s = setup(
        "live.mesh.local",
        &mesh_yaml("live.mesh.local", &[&v1, &v2], &tp(64), &http(2)),
    )
    .await;
    let during = tokio::spawn(send(
        s.client.clone(),
        s.host.clone(),
        20_000,
        8,
        Vec::new(),
    ));
    let cp = s.mesh.cp();
    let mut generation = cp.config_status().generation;
    for (max, attempts) in [(32, 3), (128, 1), (64, 4)] {
        s.mesh.write(
            "svc.yaml",
            &mesh_yaml("live.mesh.local", &[&v1, &v2], &tp(max), &http(attempts)),
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while cp.config_status().generation == generation {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the edit was not published"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        generation = cp.config_status().generation;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !during.is_finished(),
        "the load ended before the last edit; the test proves nothing"
    );
    let during = during.await.unwrap();
    assert_eq!(during.values().sum::<usize>(), 20_000);
    assert!(
        during.keys().all(|k| k == "v1" || k == "v2"),
        "failed or dropped requests across the edits: {during:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_fails_fast_does_not_attract_traffic_under_peak_ewma() {
    let bad = backend::http_with(
        "bad",
        Behavior {
            fail_permille: 1000,
            ..Default::default()
        },
    )
    .await;
    let (g1, g2) = (backend::http("g1").await, backend::http("g2").await);
    let route = "  - name: all\n    retries: { attempts: 0 }\n    route: [{ destination: { host: ff.mesh.local } }]\n";
    let s = setup(
        "ff.mesh.local",
        &mesh_yaml("ff.mesh.local", &[&bad, &g1, &g2], "", route),
    )
    .await;
    let counts = load(&s, 600, 4, &[]).await;
    let failed = share(&counts, "status:503");
    assert!(
        failed < 0.10,
        "the failing endpoint got {failed} of the traffic: {counts:?}"
    );
}
