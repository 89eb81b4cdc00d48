use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full};
use mesh_core::Snapshot;
use mesh_core::StringMatch;
use mesh_core::identity::{PeerIdentity, SpiffeId};
use mesh_core::rbac::{Permission, Policy, Principal, Rbac, RbacAction};
use tower::{Layer, Service, ServiceExt};

use super::*;

const WEB: &str = "spiffe://cluster.local/ns/shop/sa/web";
const BATCH: &str = "spiffe://cluster.local/ns/jobs/sa/batch";
const OTHER: &str = "spiffe://cluster.local/ns/shop/sa/other";

fn peer_is(id: &str) -> Principal {
    Principal::Authenticated(Some(StringMatch::Exact(id.into())))
}

fn rule(permissions: Vec<Permission>, principals: Vec<Principal>) -> Policy {
    Policy {
        permissions,
        principals,
    }
}

fn allow_web() -> Rbac {
    Rbac {
        action: RbacAction::Allow,
        policies: vec![(
            "shop/allow-web[0]".into(),
            rule(vec![Permission::Any], vec![peer_is(WEB)]),
        )],
    }
}

fn deny(name: &str, permission: Permission, principal: Principal) -> Rbac {
    Rbac {
        action: RbacAction::Deny,
        policies: vec![(name.into(), rule(vec![permission], vec![principal]))],
    }
}

fn request(path: &str, peer: Option<&str>) -> Request<Full<Bytes>> {
    let mut req = Request::get(path)
        .header("host", "reviews.shop.svc.cluster.local:9080")
        .body(Full::new(Bytes::new()))
        .unwrap();
    if let Some(id) = peer {
        let id: SpiffeId = id.parse().unwrap();
        req.extensions_mut().insert(PeerIdentity(id));
    }
    req
}

/// The app behind the layer: answers 200 "app" and counts the requests it saw.
fn app(
    seen: Arc<AtomicUsize>,
) -> impl Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>, Error = Infallible> + Clone
{
    tower::service_fn(move |_req: Request<Full<Bytes>>| {
        seen.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"app")))) }
    })
}

async fn send<S>(svc: &mut S, req: Request<Full<Bytes>>) -> (StatusCode, http::HeaderMap, String)
where
    S: Service<
            Request<Full<Bytes>>,
            Response = Response<AuthzBody<Full<Bytes>>>,
            Error = Infallible,
        >,
{
    let res = svc.ready().await.unwrap().call(req).await.unwrap();
    let (parts, body) = res.into_parts();
    let bytes = match body {
        Either::Left(b) | Either::Right(b) => b.collect().await.unwrap().to_bytes(),
    };
    (
        parts.status,
        parts.headers,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn a_peer_allowed_by_principal_gets_through_and_others_are_refused_with_403() {
    let seen = Arc::new(AtomicUsize::new(0));
    let filters = Snapshot::new(vec![
        deny("jobs/deny-batch[0]", Permission::Any, peer_is(BATCH)),
        allow_web(),
    ]);
    let mut svc = AuthzLayer::new(filters).layer(app(seen.clone()));

    let (status, _, body) = send(&mut svc, request("/reviews/1", Some(WEB))).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "app"));

    let (status, headers, body) = send(&mut svc, request("/reviews/1", Some(BATCH))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body, "RBAC: access denied by policy jobs/deny-batch[0]");
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");

    let (status, _, body) = send(&mut svc, request("/reviews/1", Some(OTHER))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body, "RBAC: access denied: no ALLOW policy matched");

    assert_eq!(
        seen.load(Ordering::SeqCst),
        1,
        "refused requests never reach the app"
    );
}

#[tokio::test]
async fn a_deny_on_a_path_wins_over_an_allow() {
    let seen = Arc::new(AtomicUsize::new(0));
    let filters = Snapshot::new(vec![
        deny(
            "shop/deny-admin[0]",
            Permission::UrlPath(StringMatch::Prefix("/admin".into())),
            Principal::Any,
        ),
        allow_web(),
    ]);
    let mut svc = AuthzLayer::new(filters).layer(app(seen.clone()));
    let (status, _, body) = send(&mut svc, request("/admin/users?debug=1", Some(WEB))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body, "RBAC: access denied by policy shop/deny-admin[0]");
    let (status, _, _) = send(&mut svc, request("/reviews", Some(WEB))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn without_allow_policies_requests_are_allowed() {
    let seen = Arc::new(AtomicUsize::new(0));
    let filters = Snapshot::new(vec![deny(
        "shop/deny-admin[0]",
        Permission::UrlPath(StringMatch::Prefix("/admin".into())),
        Principal::Any,
    )]);
    let mut svc = AuthzLayer::new(filters.clone()).layer(app(seen.clone()));
    let (status, _, _) = send(&mut svc, request("/reviews", None)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(&mut svc, request("/reviews", Some(BATCH))).await;
    assert_eq!(status, StatusCode::OK);

    // No filters at all: everything passes.
    filters.store(Vec::new());
    let (status, _, _) = send(&mut svc, request("/admin", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_denied_grpc_request_gets_permission_denied() {
    let seen = Arc::new(AtomicUsize::new(0));
    let mut svc = AuthzLayer::new(Snapshot::new(vec![allow_web()])).layer(app(seen.clone()));
    let mut req = request("/shop.Reviews/Get", Some(BATCH));
    *req.method_mut() = http::Method::POST;
    req.headers_mut()
        .insert("content-type", "application/grpc+proto".parse().unwrap());
    let (status, headers, body) = send(&mut svc, req).await;
    assert_eq!(status, StatusCode::OK, "gRPC errors travel in grpc-status");
    assert_eq!(headers["grpc-status"], "7");
    assert_eq!(
        headers["grpc-message"],
        "RBAC: access denied: no ALLOW policy matched"
    );
    assert_eq!(headers["content-type"], "application/grpc");
    assert!(body.is_empty());
    assert_eq!(seen.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_plaintext_request_is_denied_by_a_principals_rule() {
    let seen = Arc::new(AtomicUsize::new(0));
    let any_peer = Rbac {
        action: RbacAction::Allow,
        policies: vec![(
            "shop/mtls-only[0]".into(),
            rule(vec![Permission::Any], vec![Principal::Authenticated(None)]),
        )],
    };
    let mut svc = AuthzLayer::new(Snapshot::new(vec![any_peer])).layer(app(seen.clone()));
    let (status, _, _) = send(&mut svc, request("/", None)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = send(&mut svc, request("/", Some(OTHER))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn policy_changes_apply_to_the_next_request_without_a_new_stack() {
    let seen = Arc::new(AtomicUsize::new(0));
    let filters = Snapshot::new(Vec::new());
    let mut svc = AuthzLayer::new(filters.clone()).layer(app(seen.clone()));
    assert_eq!(
        send(&mut svc, request("/", Some(BATCH))).await.0,
        StatusCode::OK
    );
    filters.store(vec![allow_web()]);
    assert_eq!(
        send(&mut svc, request("/", Some(BATCH))).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&mut svc, request("/", Some(WEB))).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn ports_and_addresses_come_from_the_connection_or_the_layer() {
    let seen = Arc::new(AtomicUsize::new(0));
    let only_8080_from_lan = Rbac {
        action: RbacAction::Allow,
        policies: vec![(
            "shop/lan[0]".into(),
            rule(
                vec![Permission::DestinationPort(8080)],
                vec![Principal::DirectRemoteIp("10.0.0.0/8".parse().unwrap())],
            ),
        )],
    };
    let filters = Snapshot::new(vec![only_8080_from_lan]);
    let with_addrs = |local: &str, remote: &str| {
        let mut r = request("/", None);
        r.extensions_mut().insert(ConnectionAddrs {
            local: local.parse::<SocketAddr>().unwrap(),
            remote: remote.parse::<SocketAddr>().unwrap(),
        });
        r
    };
    let mut svc = AuthzLayer::new(filters.clone()).layer(app(seen.clone()));
    assert_eq!(
        send(&mut svc, with_addrs("10.0.0.1:8080", "10.1.2.3:5555"))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        send(&mut svc, with_addrs("10.0.0.1:9090", "10.1.2.3:5555"))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&mut svc, with_addrs("10.0.0.1:8080", "192.168.0.9:5555"))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    // Without the extension the address is unknown, so the LAN rule cannot match.
    let mut svc = AuthzLayer::new(filters)
        .with_local_port(8080)
        .layer(app(seen.clone()));
    assert_eq!(
        send(&mut svc, request("/", None)).await.0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn readiness_is_the_inner_service_and_refusals_skip_it() {
    let (mock, mut handle) =
        tower_test::mock::pair::<Request<Full<Bytes>>, Response<Full<Bytes>>>();
    let mut svc = AuthzLayer::new(Snapshot::new(vec![allow_web()])).layer(mock);
    handle.allow(0);
    assert!(poll_ready_once(&mut svc).is_pending());
    handle.allow(2);
    let denied = svc.ready().await.unwrap().call(request("/", Some(BATCH)));
    let res = denied.await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let allowed = svc.ready().await.unwrap().call(request("/", Some(WEB)));
    let (req, send) = handle.next_request().await.unwrap();
    assert!(req.extensions().get::<PeerIdentity>().is_some());
    send.send_response(Response::new(Full::new(Bytes::from_static(b"up"))));
    assert_eq!(allowed.await.unwrap().status(), StatusCode::OK);
}

fn poll_ready_once<S: Service<Request<Full<Bytes>>>>(svc: &mut S) -> std::task::Poll<()> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    svc.poll_ready(&mut cx).map(|_| ())
}

/// A metrics recorder that keeps counters by their rendered key.
#[derive(Default)]
struct Recorder(Mutex<Vec<(String, Arc<AtomicU64>)>>);

impl Recorder {
    fn get(&self, key: &str) -> u64 {
        let all = self.0.lock().unwrap();
        all.iter()
            .filter(|(k, _)| k == key)
            .map(|(_, c)| c.load(Ordering::SeqCst))
            .sum()
    }
}

impl metrics::Recorder for Recorder {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={:?}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        let counter = Arc::new(AtomicU64::new(0));
        self.0.lock().unwrap().push((name, counter.clone()));
        metrics::Counter::from_arc(counter)
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

#[tokio::test]
async fn decisions_are_counted_by_policy() {
    let recorder = Recorder::default();
    let seen = Arc::new(AtomicUsize::new(0));
    let filters = Snapshot::new(vec![
        deny("jobs/deny-batch[0]", Permission::Any, peer_is(BATCH)),
        allow_web(),
    ]);
    let mut svc = AuthzLayer::new(filters).layer(app(seen));
    for peer in [WEB, WEB, BATCH, OTHER] {
        svc.ready().await.unwrap();
        // The decision (and its count) is made in `call`, synchronously.
        let fut = metrics::with_local_recorder(&recorder, || svc.call(request("/", Some(peer))));
        fut.await.unwrap();
    }
    assert_eq!(
        recorder.get(r#"mesh_authz_decisions_total{decision="allow",policy="shop/allow-web[0]"}"#),
        2
    );
    assert_eq!(
        recorder.get(r#"mesh_authz_decisions_total{decision="deny",policy="jobs/deny-batch[0]"}"#),
        1
    );
    assert_eq!(
        recorder.get(r#"mesh_authz_decisions_total{decision="deny",policy=""}"#),
        1
    );
}
