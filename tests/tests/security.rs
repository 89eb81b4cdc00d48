//! Identity end to end, over loopback with a real control plane: workloads get their SVIDs from
//! its CA in-process (bootstrap token first, then renewals by certificate), the xDS stream moves
//! to mutual TLS, a DestinationRule's `ISTIO_MUTUAL` sends the client stack over mTLS to a
//! server that only speaks mTLS, and the server's app sees the caller's SPIFFE ID.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use control_plane::server::{ControlPlane, Options as CpOptions};
use http_body_util::{BodyExt, Empty, Full};
use mesh_core::identity::{PeerIdentity, SpiffeId};
use mesh_test::mesh::{get, start_with_ca};
use mesh_tower::server::{self, Acceptor};
use mesh_xds_client::identity::{IdentityClient, IdentityOptions, Token};
use mesh_xds_client::{Bootstrap, Options, XdsClient};
use tokio::net::TcpListener;

const HOST: &str = "reviews.shop.svc.cluster.local";
const FRONTEND_TOKEN: &str = "frontend-token-0123456789";
const REVIEWS_TOKEN: &str = "reviews-token-0123456789";
const RATINGS_TOKEN: &str = "ratings-token-0123456789";

fn id(sa: &str) -> SpiffeId {
    SpiffeId::new("cluster.local", "shop", sa).unwrap()
}

fn config(server: SocketAddr) -> String {
    format!(
        r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: reviews, namespace: shop}}
spec:
  hosts: [{HOST}]
  ports: [{{number: 9080, name: http, targetPort: {port}}}]
  resolution: STATIC
  endpoints: [{{address: "{ip}", serviceAccount: reviews}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews, namespace: shop}}
spec:
  host: {HOST}
  trafficPolicy:
    tls: {{mode: ISTIO_MUTUAL}}
"#,
        ip = server.ip(),
        port = server.port()
    )
}

struct World {
    _dir: tempfile::TempDir,
    config: std::path::PathBuf,
    cp: ControlPlane,
    server: SocketAddr,
    hits: Arc<AtomicUsize>,
    _reviews: IdentityClient,
    /// The reviews server's own xDS client, when it follows its inbound listener.
    reviews_xds: Option<XdsClient>,
    _serve: tokio::task::JoinHandle<()>,
}

/// A control plane with a CA and tokens for `frontend` and `reviews`, and the reviews server
/// serving STRICT mTLS with a certificate of `lifetime` from that CA.
async fn world(lifetime: Option<Duration>) -> World {
    world_with(lifetime, "", false).await
}

/// As [`world`], with `extra` YAML documents; `meshed`: the server follows its inbound listener
/// from xDS (`serve_meshed`) instead of a fixed STRICT acceptor.
async fn world_with(lifetime: Option<Duration>, extra: &str, meshed: bool) -> World {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap();
    let config_dir = dir.path().join("config");
    std::fs::create_dir(&config_dir).unwrap();
    let config_file = config_dir.join("mesh.yaml");
    std::fs::write(&config_file, config(server) + extra).unwrap();
    let cp = start_with_ca(
        dir.path(),
        Some(config_dir),
        "127.0.0.1:0".parse().unwrap(),
        &[
            (FRONTEND_TOKEN, "shop", "frontend"),
            (REVIEWS_TOKEN, "shop", "reviews"),
            (RATINGS_TOKEN, "shop", "ratings"),
        ],
    )
    .await;

    let reviews = identity(&cp, "reviews", REVIEWS_TOKEN, lifetime);
    reviews
        .ready(Duration::from_secs(10))
        .await
        .expect("reviews gets its certificate");
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = tower::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        counter.fetch_add(1, Ordering::SeqCst);
        let body = match req.extensions().get::<PeerIdentity>() {
            Some(PeerIdentity(id)) => id.to_string(),
            None => "plaintext".to_string(),
        };
        async move { Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(body)))) }
    });
    let (serve, reviews_xds) = if meshed {
        // Its bootstrap's node metadata carries its labels, as Istio's proxyless bootstrap does.
        let mut bootstrap = Bootstrap::insecure(&cp.xds_addr().to_string(), "reviews");
        bootstrap
            .node
            .metadata
            .insert("LABELS".into(), serde_json::json!({"app": "reviews"}));
        let xds = XdsClient::start(
            bootstrap,
            Options {
                identity: Some(reviews.svid().clone()),
                backoff_base: Duration::from_millis(50),
                ..Options::default()
            },
        );
        let (x, identity) = (xds.clone(), reviews.svid().clone());
        let serve = tokio::spawn(async move {
            server::serve_meshed(listener, &x, identity, app, std::future::pending()).await;
        });
        (serve, Some(xds))
    } else {
        let acceptor = Acceptor::new(reviews.svid().clone());
        (tokio::spawn(server::serve(listener, acceptor, app)), None)
    };
    World {
        _dir: dir,
        config: config_file,
        cp,
        server,
        hits,
        _reviews: reviews,
        reviews_xds,
        _serve: serve,
    }
}

fn identity(
    cp: &ControlPlane,
    sa: &str,
    token: &str,
    lifetime: Option<Duration>,
) -> IdentityClient {
    let mut opts = IdentityOptions::new(
        format!("http://{}", cp.xds_addr()),
        id(sa),
        Token::Inline(token.into()),
    )
    .with_backoff(Duration::from_millis(100), Duration::from_secs(1));
    if let Some(l) = lifetime {
        opts = opts.with_lifetime(l);
    }
    IdentityClient::start(opts)
}

/// The frontend: its identity, an xDS client on it, and the mesh client.
async fn frontend(
    w: &World,
    lifetime: Option<Duration>,
) -> (
    IdentityClient,
    XdsClient,
    mesh_xds_client::Target,
    mesh_tower::Client,
) {
    caller(w, "frontend", FRONTEND_TOKEN, lifetime).await
}

/// A calling workload `sa`: its identity, an xDS client on it, and the mesh client.
async fn caller(
    w: &World,
    sa: &str,
    token: &str,
    lifetime: Option<Duration>,
) -> (
    IdentityClient,
    XdsClient,
    mesh_xds_client::Target,
    mesh_tower::Client,
) {
    let me = identity(&w.cp, sa, token, lifetime);
    me.ready(Duration::from_secs(10))
        .await
        .expect("the caller gets its certificate");
    let xds = XdsClient::start(
        Bootstrap::insecure(&w.cp.xds_addr().to_string(), sa),
        Options {
            identity: Some(me.svid().clone()),
            backoff_base: Duration::from_millis(50),
            ..Options::default()
        },
    );
    let target = xds.subscribe(&format!("{HOST}:9080"));
    if let Err(e) = xds
        .ready(&format!("{HOST}:9080"), Duration::from_secs(10))
        .await
    {
        panic!(
            "the target does not resolve: {e}\n{:?}",
            xds.state().status()
        );
    }
    let client = mesh_tower::Client::builder(xds.state().resources().clone())
        .identity(me.svid().clone())
        .build();
    (me, xds, target, client)
}

async fn call(client: &mesh_tower::Client) -> Result<String, mesh_tower::client::Error> {
    let (status, body) = call_path(client, "/reviews/1").await?;
    assert_eq!(status, 200, "{body}");
    Ok(body)
}

async fn call_path(
    client: &mesh_tower::Client,
    path: &str,
) -> Result<(u16, String), mesh_tower::client::Error> {
    let resp = client
        .request(
            http::Request::get(format!("http://{HOST}:9080{path}"))
                .body(Empty::<Bytes>::new())
                .unwrap(),
        )
        .await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Ok((status, String::from_utf8(body.to_vec()).unwrap()))
}

#[tokio::test]
async fn workloads_get_identities_from_the_ca_and_talk_mtls_with_them() {
    let w = world(None).await;
    let (_me, xds, _target, client) = frontend(&w, None).await;

    // The cluster carries ISTIO_MUTUAL with the endpoint's service account; the server app sees
    // the caller's SPIFFE ID.
    assert_eq!(call(&client).await.unwrap(), id("frontend").to_string());
    assert_eq!(w.hits.load(Ordering::SeqCst), 1);

    // The xDS stream runs over mTLS: the control plane knows the client by its SPIFFE ID.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let reply = get(w.cp.admin_addr(), "/debug/syncz", &[]).await;
        let v: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        let peers: Vec<&str> = v["clients"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["node_id"] == "frontend")
            .filter_map(|c| c["peer"].as_str())
            .collect();
        if peers == [id("frontend").to_string()] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the xDS stream did not move to mTLS: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(xds);

    // A plaintext client cannot reach the STRICT server at all.
    let refused = plaintext_get(w.server).await;
    assert!(refused.is_err(), "plaintext got an answer: {refused:?}");
    assert_eq!(w.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_workload_is_refused_an_identity_its_token_does_not_grant() {
    let w = world(None).await;
    // The frontend's token, asking for the reviews identity.
    let thief = IdentityClient::start(
        IdentityOptions::new(
            format!("http://{}", w.cp.xds_addr()),
            id("reviews"),
            Token::Inline(FRONTEND_TOKEN.into()),
        )
        .with_backoff(Duration::from_millis(50), Duration::from_millis(200)),
    );
    let err = thief.ready(Duration::from_secs(2)).await.unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.contains("PermissionDenied")
            && shown.contains("sa/reviews")
            && shown.contains("sa/frontend"),
        "{shown}"
    );
    assert!(thief.svid().load().is_none());
}

/// The issue's rotation-under-load check: 10-second certificates on both sides, continuous
/// requests for 60 seconds, not one failure; renewals are made with the current certificate
/// (no token), and the certificates did rotate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load_drops_nothing() {
    let lifetime = Some(Duration::from_secs(10));
    let w = world(lifetime).await;
    let (me, _xds, _target, client) = frontend(&w, lifetime).await;
    let first = me.svid().load_full().as_ref().clone().unwrap();

    let failures = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (client, failures, done) = (client.clone(), failures.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            while tokio::time::Instant::now() < deadline {
                match call(&client).await {
                    Ok(_) => done.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        eprintln!("request failed: {e}");
                        failures.fetch_add(1, Ordering::Relaxed)
                    }
                };
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let now = me.svid().load_full().as_ref().clone().unwrap();
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "requests failed during rotation"
    );
    assert!(
        done.load(Ordering::Relaxed) > 1000,
        "too little load to mean anything"
    );
    assert!(
        now.not_after >= first.not_after + Duration::from_secs(40),
        "the certificate did not keep rotating: first {:?}, now {:?}",
        first.not_after,
        now.not_after
    );
    let metrics = get(w.cp.admin_addr(), "/metrics", &[]).await.body;
    let renewals: f64 = metrics
        .lines()
        .find(|l| {
            l.starts_with("mesh_ca_csr_total{")
                && l.contains("result=\"signed\"")
                && l.contains("reason=\"certificate\"")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0);
    assert!(
        renewals >= 8.0,
        "renewals by certificate: {renewals}\n{metrics}"
    );
}

const PERMISSIVE: &str = r#"
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
spec: {mtls: {mode: PERMISSIVE}}
"#;

/// Waits until the reviews server's own xDS state holds its inbound listener with `chains`
/// filter chains.
async fn server_has_chains(w: &World, chains: usize) {
    let xds = w.reviews_xds.as_ref().unwrap();
    let name = xds.inbound_listener_name(w.server);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n = xds
            .state()
            .load()
            .inbound
            .get(&name)
            .map(|l| l.filter_chains.len());
        if n == Some(chains) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}: {n:?} chains, want {chains}; {:?}",
            xds.state().status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn plaintext_get(server: SocketAddr) -> Result<String, String> {
    let plain = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<Bytes>>();
    let resp = plain
        .request(
            http::Request::get(format!("http://{server}/"))
                .body(Empty::new())
                .unwrap(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&body.to_bytes()).into_owned())
}

/// PeerAuthentication reaches the server as its inbound listener and applies live: PERMISSIVE
/// serves plaintext and mTLS on one port; an edit to STRICT refuses plaintext from the next
/// connection on, while mTLS callers carry on.
#[tokio::test]
async fn peer_authentication_from_xds_switches_the_server_live() {
    let w = world_with(None, PERMISSIVE, true).await;
    server_has_chains(&w, 2).await;
    let (_me, _xds, _target, client) = frontend(&w, None).await;

    assert_eq!(plaintext_get(w.server).await.unwrap(), "plaintext");
    assert_eq!(call(&client).await.unwrap(), id("frontend").to_string());

    let strict = PERMISSIVE.replace("PERMISSIVE", "STRICT");
    std::fs::write(&w.config, config(w.server) + &strict).unwrap();
    server_has_chains(&w, 1).await;
    let refused = plaintext_get(w.server).await;
    assert!(
        refused.is_err(),
        "plaintext served under STRICT: {refused:?}"
    );
    assert_eq!(call(&client).await.unwrap(), id("frontend").to_string());
    assert_eq!(w.hits.load(Ordering::SeqCst), 3);
}

const ALLOW_FRONTEND: &str = r#"
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-readers, namespace: shop}
spec:
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/shop/sa/frontend"]}}]
    to: [{operation: {methods: [GET], paths: ["/reviews/*"]}}]
"#;

/// AuthorizationPolicy reaches the server as RBAC filters on its inbound listener: the allowed
/// caller gets through on the allowed paths, another mesh identity is refused with a 403 that
/// names why, and an edit that admits it applies to its next request.
#[tokio::test]
async fn authorization_policy_from_xds_allows_and_denies_by_identity() {
    let w = world_with(None, ALLOW_FRONTEND, true).await;
    server_has_chains(&w, 1).await;
    let (_f, _fx, _ft, frontend) = frontend(&w, None).await;
    let (_r, _rx, _rt, ratings) = caller(&w, "ratings", RATINGS_TOKEN, None).await;

    assert_eq!(call(&frontend).await.unwrap(), id("frontend").to_string());
    let (status, body) = call_path(&frontend, "/admin").await.unwrap();
    assert_eq!(
        (status, body.as_str()),
        (403, "RBAC: access denied: no ALLOW policy matched")
    );
    let (status, body) = call_path(&ratings, "/reviews/1").await.unwrap();
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        w.hits.load(Ordering::SeqCst),
        1,
        "denied requests never reach the app"
    );

    let both = ALLOW_FRONTEND.replace(
        r#"principals: ["cluster.local/ns/shop/sa/frontend"]"#,
        r#"principals: ["cluster.local/ns/shop/sa/frontend", "cluster.local/ns/shop/sa/ratings"]"#,
    );
    std::fs::write(&w.config, config(w.server) + &both).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = call_path(&ratings, "/reviews/1").await.unwrap();
        if status == 200 {
            assert_eq!(body, id("ratings").to_string());
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the edit never applied: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A server known only by its own xDS connection: the AuthorizationPolicy selects it by a label
/// that exists nowhere in the config, only in the server's bootstrap node metadata (gRFC A36).
#[tokio::test]
async fn a_policy_selects_a_server_by_the_labels_its_node_metadata_carries() {
    let by_label = ALLOW_FRONTEND.replace(
        "spec:\n  action: ALLOW",
        "spec:\n  selector: {matchLabels: {app: reviews}}\n  action: ALLOW",
    );
    let w = world_with(None, &by_label, true).await;
    server_has_chains(&w, 1).await;
    let (_f, _fx, _ft, frontend) = frontend(&w, None).await;
    let (_r, _rx, _rt, ratings) = caller(&w, "ratings", RATINGS_TOKEN, None).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = call_path(&ratings, "/reviews/1").await.unwrap();
        if status == 403 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the label-selected policy never applied: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(call(&frontend).await.unwrap(), id("frontend").to_string());
}

/// The CA is down when the workload starts: the identity client keeps retrying with backoff,
/// reports why it has no certificate, and gets one as soon as the control plane comes up.
#[tokio::test]
async fn a_ca_outage_is_retried_until_the_ca_answers() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let me = IdentityClient::start(
        IdentityOptions::new(
            format!("http://{addr}"),
            id("frontend"),
            Token::Inline(FRONTEND_TOKEN.into()),
        )
        .with_backoff(Duration::from_millis(50), Duration::from_millis(200)),
    );
    let err = me.ready(Duration::from_millis(500)).await.unwrap_err();
    assert!(
        err.to_string().contains("unreachable"),
        "the error says the CA is unreachable: {err}"
    );
    assert!(matches!(
        me.last_error(),
        Some(mesh_xds_client::identity::IdentityError::Unreachable { .. })
    ));

    let dir = tempfile::tempdir().unwrap();
    let _cp = start_with_ca(
        dir.path(),
        None,
        addr,
        &[(FRONTEND_TOKEN, "shop", "frontend")],
    )
    .await;
    let svid = me
        .ready(Duration::from_secs(10))
        .await
        .expect("a certificate once the CA is up");
    assert_eq!(svid.id, id("frontend"));
    assert!(me.last_error().is_none());
}

/// An inbound listener's fault and local rate limit filters (standard `envoy.filters.http.fault`
/// and `local_ratelimit` configs, published over xDS) apply to the server's requests, live,
/// through the same fault decisions and token bucket the client stack uses.
#[tokio::test]
async fn inbound_rate_limit_and_fault_filters_apply_live() {
    use mesh_core::Percent;
    use mesh_core::inbound::{FilterChain, InboundFilter, InboundListener, MtlsMode};
    use mesh_core::route::{AbortStatus, FaultAbort, FaultPolicy, LocalRateLimit};

    let cp = ControlPlane::start(CpOptions {
        xds_addr: "127.0.0.1:0".parse().unwrap(),
        admin_addr: "127.0.0.1:0".parse().unwrap(),
        ..CpOptions::default()
    })
    .await
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let xds = XdsClient::start(
        Bootstrap::insecure(&cp.xds_addr().to_string(), "server"),
        Options {
            backoff_base: Duration::from_millis(50),
            ..Options::default()
        },
    );
    let name = xds.inbound_listener_name(addr);
    let publish = |filters: Vec<InboundFilter>| {
        let mut r = mesh_core::MeshResources::default();
        let l = InboundListener {
            name: name.clone(),
            address: addr,
            filter_chains: FilterChain::for_mode(MtlsMode::Disable, addr.port(), filters),
        };
        r.inbound.insert(name.clone(), l.into());
        cp.publish(r);
    };
    publish(vec![
        InboundFilter::RateLimit(LocalRateLimit {
            max_tokens: 2,
            tokens_per_fill: 1,
            fill_interval: Duration::from_secs(3600),
        }),
        InboundFilter::Router,
    ]);
    let app = tower::service_fn(|_req: http::Request<hyper::body::Incoming>| async {
        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"app"))))
    });
    let (x, none) = (xds.clone(), mesh_core::Snapshot::new(None));
    tokio::spawn(async move {
        server::serve_meshed(listener, &x, none, app, std::future::pending()).await;
    });

    let get = |addr: SocketAddr| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let plain =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http::<Empty<Bytes>>();
            let req = http::Request::get(format!("http://{addr}/"))
                .body(Empty::new())
                .unwrap();
            match plain.request(req).await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp.headers().contains_key("retry-after");
                    let body = resp.into_body().collect().await.unwrap().to_bytes();
                    return (
                        status,
                        retry_after,
                        String::from_utf8_lossy(&body).into_owned(),
                    );
                }
                // Not serving until its listener arrived.
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => panic!("{e}"),
            }
        }
    };
    assert_eq!(get(addr).await.0, 200);
    assert_eq!(get(addr).await.0, 200);
    let (status, retry_after, _) = get(addr).await;
    assert_eq!(
        (status, retry_after),
        (429, true),
        "the bucket of 2 is empty"
    );

    publish(vec![
        InboundFilter::Fault(FaultPolicy {
            delay: None,
            abort: Some(FaultAbort {
                status: AbortStatus::Http(503),
                percent: Percent::ALL,
            }),
            headers: Vec::new(),
        }),
        InboundFilter::Router,
    ]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while get(addr).await.0 != 503 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the fault never applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    publish(vec![InboundFilter::Router]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, body) = get(addr).await;
        if status == 200 {
            assert_eq!(body, "app");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
