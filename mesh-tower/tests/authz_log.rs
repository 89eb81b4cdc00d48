//! Authorization decisions in the logs, alone in this test binary: `tracing` caches per call
//! site whether anyone listens, and tests running beside this one (with no subscriber) could
//! make it skip the events captured here.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use mesh_core::identity::{PeerIdentity, SpiffeId};
use mesh_core::rbac::{Permission, Policy, Principal, Rbac, RbacAction};
use mesh_core::{Snapshot, StringMatch};
use mesh_tower::authz::AuthzLayer;
use tower::{Layer, Service, ServiceExt};

const WEB: &str = "spiffe://cluster.local/ns/shop/sa/web";
const BATCH: &str = "spiffe://cluster.local/ns/jobs/sa/batch";

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn policy(name: &str, action: RbacAction, principal: Principal) -> Rbac {
    Rbac {
        action,
        policies: vec![(
            name.into(),
            Policy {
                permissions: vec![Permission::Any],
                principals: vec![principal],
            },
        )],
    }
}

#[tokio::test]
async fn denials_and_audits_are_logged_with_policy_peer_and_path() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let filters = vec![
        policy("shop/audit-all[0]", RbacAction::Log, Principal::Any),
        policy(
            "shop/allow-web[0]",
            RbacAction::Allow,
            Principal::Authenticated(Some(StringMatch::Exact(WEB.into()))),
        ),
    ];
    let app = tower::service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"app"))))
    });
    let mut svc = AuthzLayer::new(Snapshot::new(filters)).layer(app);
    svc.ready().await.unwrap();
    let mut req = Request::get("/orders/7?token=secret")
        .header("host", "reviews.shop.svc.cluster.local:9080")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let id: SpiffeId = BATCH.parse().unwrap();
    req.extensions_mut().insert(PeerIdentity(id));
    let fut = tracing::subscriber::with_default(subscriber, || svc.call(req));
    assert_eq!(fut.await.unwrap().status(), StatusCode::FORBIDDEN);

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("audit") && lines[0].contains("shop/audit-all[0]"),
        "{text}"
    );
    assert!(lines[1].contains("request denied"), "{text}");
    assert!(lines[1].contains("none: no ALLOW policy matched"), "{text}");
    for line in lines {
        assert!(
            line.contains(BATCH) && line.contains("path=\"/orders/7\""),
            "{line}"
        );
        assert!(
            !line.contains("secret"),
            "the query string is not logged: {line}"
        );
    }
}
