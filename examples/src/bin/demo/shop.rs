//! The shop's workloads, each written the way an application would use the library: a
//! certificate from the control plane's CA, an xDS client on it, and a meshed server or client.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use mesh_core::Snapshot;
use mesh_core::identity::{PeerIdentity, SpiffeId, Svid};
use mesh_examples::pb::reviews_client::ReviewsClient;
use mesh_examples::pb::reviews_server::{Reviews, ReviewsServer};
use mesh_examples::pb::{GetReviewsReply, GetReviewsRequest, Review};
use mesh_tower::telemetry::{Telemetry, Workload};
use mesh_xds_client::identity::{IdentityClient, IdentityOptions, Token};
use mesh_xds_client::{Bootstrap, Options, XdsClient};
use tokio::net::TcpListener;

pub(crate) const TRUST_DOMAIN: &str = "cluster.local";
pub(crate) const NAMESPACE: &str = "shop";
pub(crate) const FRONTEND: &str = "frontend.shop.svc.cluster.local:8080";
pub(crate) const REVIEWS: &str = "reviews.shop.svc.cluster.local:9080";
pub(crate) const RATINGS: &str = "ratings.shop.svc.cluster.local:9080";

/// The bootstrap tokens the control plane's CA accepts: `(token, service account)`.
pub(crate) const ACCOUNTS: [(&str, &str); 5] = [
    ("demo-token-frontend-0001", "frontend"),
    ("demo-token-reviews-00001", "reviews"),
    ("demo-token-ratings-00001", "ratings"),
    ("demo-token-loadgen-00001", "loadgen"),
    ("demo-token-intruder-0001", "intruder"),
];

/// Who called whom, as the servers saw it (verified SPIFFE IDs).
#[derive(Debug, Default)]
pub(crate) struct Seen {
    callers: Mutex<BTreeMap<(&'static str, String), u64>>,
}

impl Seen {
    fn record(&self, server: &'static str, peer: Option<&PeerIdentity>) {
        let who = peer.map_or_else(|| "plaintext".to_string(), |p| p.0.to_string());
        *self
            .callers
            .lock()
            .unwrap()
            .entry((server, who))
            .or_default() += 1;
    }

    /// `(server, caller)` pairs seen so far.
    pub(crate) fn pairs(&self) -> Vec<(&'static str, String)> {
        self.callers.lock().unwrap().keys().cloned().collect()
    }
}

/// One workload: its certificate, its xDS client and its telemetry labels.
pub(crate) struct App {
    pub(crate) identity: Snapshot<Option<Svid>>,
    pub(crate) xds: XdsClient,
    pub(crate) telemetry: Telemetry,
    _certificate: IdentityClient,
}

impl App {
    /// Starts a workload with service account `sa`: asks the CA for its certificate (with its
    /// bootstrap token) and connects to the control plane over mTLS once it has one.
    pub(crate) async fn start(xds_addr: SocketAddr, sa: &str, app: &str, version: &str) -> App {
        let token = ACCOUNTS
            .iter()
            .find(|(_, a)| *a == sa)
            .expect("a known account")
            .0;
        let id = SpiffeId::new(TRUST_DOMAIN, NAMESPACE, sa).expect("a valid SPIFFE ID");
        let certificate = IdentityClient::start(
            IdentityOptions::new(
                format!("http://{xds_addr}"),
                id,
                Token::Inline(token.into()),
            )
            .with_backoff(Duration::from_millis(100), Duration::from_secs(2)),
        );
        certificate
            .ready(Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("{sa} gets no certificate: {e}"));
        // Node metadata as Istio's proxyless bootstrap writes it.
        let mut bootstrap = Bootstrap::insecure(&xds_addr.to_string(), &format!("{app}-{version}"));
        let meta = &mut bootstrap.node.metadata;
        meta.insert("NAMESPACE".into(), NAMESPACE.into());
        meta.insert("WORKLOAD_NAME".into(), format!("{app}-{version}").into());
        meta.insert("SERVICE_ACCOUNT".into(), sa.into());
        meta.insert(
            "LABELS".into(),
            serde_json::json!({ "app": app, "version": version }),
        );
        let identity = certificate.svid().clone();
        let xds = XdsClient::start(
            bootstrap,
            Options {
                identity: Some(identity.clone()),
                ..Options::default()
            },
        );
        let telemetry = Telemetry::builder()
            .workload(Workload::from_node(xds.node()))
            .identity(identity.clone())
            .build();
        App {
            identity,
            xds,
            telemetry,
            _certificate: certificate,
        }
    }

    /// A mesh HTTP client for this workload (mTLS with its certificate, its metrics labels).
    pub(crate) fn http_client(&self) -> mesh_tower::Client {
        mesh_tower::Client::builder(self.xds.state().resources().clone())
            .identity(self.identity.clone())
            .telemetry(self.telemetry.clone())
            .build()
    }

    /// Waits until `target` resolves, keeping it subscribed for as long as the handle lives.
    pub(crate) async fn follow(&self, target: &str) -> mesh_xds_client::Target {
        let handle = self.xds.subscribe(target);
        self.xds
            .ready(target, Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("{target} does not resolve: {e}"));
        handle
    }
}

async fn bind(ip: [u8; 4], port: u16) -> TcpListener {
    let addr = SocketAddr::new(IpAddr::from(ip), port);
    TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| panic!("the demo needs {addr} (a loopback address): {e}"))
}

/// ratings: an HTTP service (hyper) answering `GET /ratings/<product>` with stars.
pub(crate) async fn ratings(app: App, seen: Arc<Seen>) {
    let listener = bind([127, 0, 0, 21], 9080).await;
    let svc = tower::service_fn(move |req: http::Request<Incoming>| {
        seen.record("ratings", req.extensions().get::<PeerIdentity>());
        let stars = 4 + (req.uri().path().len() % 2);
        let body = format!("{{\"stars\":{stars}}}");
        async move { Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(body)))) }
    });
    let identity = app.identity.clone();
    mesh_tower::server::serve_meshed(listener, &app.xds, identity, svc, std::future::pending())
        .await;
}

/// One reviews version (tonic): v1 shows no stars, v2 and v3 ask ratings over the mesh.
struct ReviewsService {
    version: &'static str,
    ratings: Option<mesh_tower::Client>,
    /// Per mille of calls this instance fails with UNAVAILABLE (the demo's injected fault).
    failing: Arc<AtomicU32>,
    seen: Arc<Seen>,
}

#[tonic::async_trait]
impl Reviews for ReviewsService {
    async fn get_reviews(
        &self,
        req: tonic::Request<GetReviewsRequest>,
    ) -> Result<tonic::Response<GetReviewsReply>, tonic::Status> {
        self.seen
            .record("reviews", req.extensions().get::<PeerIdentity>());
        if fastrand::u32(0..1000) < self.failing.load(Ordering::Relaxed) {
            return Err(tonic::Status::unavailable(format!(
                "reviews-{} is failing (injected by the demo)",
                self.version
            )));
        }
        let product = req.into_inner().product_id;
        let (stars, ratings) = match &self.ratings {
            None => (0, String::new()),
            Some(client) => match ask_ratings(client, product).await {
                Ok(stars) => (stars, "ok".to_string()),
                Err(e) => (0, e),
            },
        };
        let reviews = [
            "An extremely entertaining play by Shakespeare.",
            "Absolutely fun.",
        ]
        .iter()
        .enumerate()
        .map(|(i, text)| Review {
            reviewer: format!("reviewer{}", i + 1),
            text: text.to_string(),
            stars,
        })
        .collect();
        Ok(tonic::Response::new(GetReviewsReply {
            version: self.version.into(),
            reviews,
            ratings,
        }))
    }
}

async fn ask_ratings(client: &mesh_tower::Client, product: u32) -> Result<u32, String> {
    let req = http::Request::get(format!("http://{RATINGS}/ratings/{product}"))
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = client.request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if !status.is_success() {
        return Err(format!("ratings answered {status}"));
    }
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    Ok(v["stars"].as_u64().unwrap_or(0) as u32)
}

/// Starts reviews `version` on `127.0.0.1<n>:9080`; returns its fault switch.
pub(crate) async fn reviews(
    app: App,
    version: &'static str,
    seen: Arc<Seen>,
) -> (Arc<AtomicU32>, tokio::task::JoinHandle<()>) {
    let last = match version {
        "v1" => 11,
        "v2" => 12,
        _ => 13,
    };
    let listener = bind([127, 0, 0, last], 9080).await;
    let failing = Arc::new(AtomicU32::new(0));
    let (ratings, subscription) = if version == "v1" {
        (None, None)
    } else {
        let sub = app.follow(RATINGS).await;
        (Some(app.http_client()), Some(sub))
    };
    let service = ReviewsService {
        version,
        ratings,
        failing: failing.clone(),
        seen,
    };
    let task = tokio::spawn(async move {
        let _subscription = subscription;
        let routes = tonic::service::Routes::new(ReviewsServer::new(service));
        mesh_grpc::server::serve(
            listener,
            &app.xds,
            app.identity.clone(),
            routes,
            std::future::pending(),
        )
        .await;
    });
    (failing, task)
}

/// frontend: an HTTP service (hyper) that calls reviews over a meshed tonic channel and
/// answers `GET /product/<id>` with JSON; the reviews version that answered is in
/// `x-reviews-version`.
pub(crate) async fn frontend(app: App, seen: Arc<Seen>) {
    let listener = bind([127, 0, 0, 31], 8080).await;
    let subscription = app.follow(REVIEWS).await;
    let channel = mesh_grpc::Channel::from_client(app.http_client(), &format!("xds:///{REVIEWS}"))
        .expect("a valid target");
    let svc = tower::service_fn(move |req: http::Request<Incoming>| {
        seen.record("frontend", req.extensions().get::<PeerIdentity>());
        let mut reviews = ReviewsClient::new(channel.clone());
        async move {
            let product = req
                .uri()
                .path()
                .rsplit('/')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            let resp = match reviews
                .get_reviews(GetReviewsRequest {
                    product_id: product,
                })
                .await
            {
                Ok(r) => {
                    let r = r.into_inner();
                    let stars = r.reviews.first().map_or(0, |v| v.stars);
                    let body = serde_json::json!({
                        "product": product, "reviews": r.version, "stars": stars, "ratings": r.ratings,
                    });
                    http::Response::builder()
                        .header("x-reviews-version", r.version)
                        .header(
                            "x-ratings",
                            if r.ratings.is_empty() {
                                "-".into()
                            } else {
                                r.ratings
                            },
                        )
                        .body(Full::new(Bytes::from(body.to_string())))
                }
                Err(status) => http::Response::builder()
                    .status(503)
                    .body(Full::new(Bytes::from(format!(
                        "reviews: {}",
                        status.message()
                    )))),
            };
            Ok::<_, Infallible>(resp.expect("a valid response"))
        }
    });
    let _subscription = subscription;
    let identity = app.identity.clone();
    mesh_tower::server::serve_meshed(listener, &app.xds, identity, svc, std::future::pending())
        .await;
}
