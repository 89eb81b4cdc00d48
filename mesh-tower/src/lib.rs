//! tower layers and the client stack, driven by live mesh state.
//!
//! [`Client`] sends each request as the mesh says, reading the state once per request and
//! touching only atomics: Envoy's route selection ([`route`]), the weighted split, load balancing
//! ([`balance`]: peak-EWMA P2C by default, round robin, random, least request, ring hash; health,
//! priorities, locality weights, ejections), circuit breakers ([`breaker`]), retries with Envoy's
//! `retry_on`, jittered backoff and a retry budget ([`retry`]), route and per-try timeouts,
//! outlier detection ([`outlier`]), fault injection ([`fault`]), local rate limits
//! ([`ratelimit`]) and mirroring. Each policy is also a tower layer usable alone:
//! [`route::RouteLayer`], [`balance::BalanceLayer`], [`retry::RetryLayer`],
//! [`breaker::BreakerLayer`], [`outlier::OutlierLayer`], [`fault::FaultLayer`],
//! [`ratelimit::RateLimitLayer`].
//!
//! Clusters whose `Cluster.tls` is set are reached over SPIFFE mutual TLS ([`tls`]) when the
//! client is given the workload's identity ([`Client::builder`]). The server side ([`server`])
//! accepts mutual TLS (STRICT) or mutual TLS and plaintext on one port (PERMISSIVE) and hands
//! each request its peer's verified identity; [`authz::AuthzLayer`] enforces the inbound
//! listener's RBAC filters (Istio `AuthorizationPolicy`) on any HTTP service.
//! [`server::serve_meshed`] is the one call that serves an app (any hyper, axum or tower
//! service) as the workload's inbound listener from xDS says (gRFC A36): its PeerAuthentication
//! mode per connection, its RBAC filters, inbound faults and rate limits
//! ([`server::LocalPolicyLayer`]) per request, all live.
//!
//! [`debug::DebugService`] is one router an app can mount (served with [`server::serve`], nested
//! in axum, or called directly) answering JSON about the live state: a CSDS-style config dump,
//! the route tables, each cluster's endpoints with their live balancer and outlier state, and
//! [`debug::explain`], which says how the client routes a given request and why.
//!
//! [`telemetry`] makes both stacks observable the way Istio's dashboards expect: Istio's standard
//! metrics (`istio_requests_total` and friends, `reporter="source"` from [`Client`],
//! `reporter="destination"` from [`telemetry::TelemetryLayer`], which `serve_meshed` adds),
//! OpenTelemetry spans per request, per attempt and per served request with W3C and B3
//! propagation (the inbound request's context reaches the outbound calls its handler makes), and
//! JSON access logs.
//!
//! What this crate does not do: fetch config or certificates (that is `mesh_xds_client`), speak
//! gRPC semantics (that is `mesh_grpc`), or run as a separate proxy process.
//!
//! # Example
//! A workload that calls another service, serves its own, reports telemetry and mounts the debug
//! views (the README's quickstart):
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//!
//! use bytes::Bytes;
//! use http_body_util::Empty;
//! use mesh_tower::debug::DebugService;
//! use mesh_tower::server::{self, Acceptor, PeerAuthMode};
//! use mesh_tower::telemetry::{self, AccessLog, Telemetry, Workload};
//! use mesh_xds_client::identity::{IdentityClient, IdentityOptions, Token};
//! use mesh_xds_client::{Bootstrap, Options, XdsClient};
//!
//! // The workload's certificate, from the control plane's CA, renewed in the background.
//! let identity = IdentityClient::start(IdentityOptions::new(
//!     "http://127.0.0.1:15010",
//!     "spiffe://cluster.local/ns/default/sa/reviews".parse()?,
//!     Token::File("/var/run/mesh/token".into()),
//! ));
//! let svid = identity.svid().clone();
//! // The xDS client, from MESH_XDS_BOOTSTRAP / GRPC_XDS_BOOTSTRAP (XdsClient::from_env() without
//! // an identity).
//! let xds = XdsClient::start(
//!     Bootstrap::from_env()?,
//!     Options { identity: Some(svid.clone()), ..Options::default() },
//! );
//!
//! // Telemetry first: clients and servers take the process default when they are made.
//! let prometheus = telemetry::prometheus()?;
//! let provider = telemetry::otlp("http://otel-collector:4317", "reviews", 0.01)?;
//! Telemetry::builder()
//!     .workload(Workload::from_node(xds.node()))
//!     .identity(svid.clone())
//!     .tracer(&provider)
//!     .access_log(AccessLog::stdout().sample(0.1))
//!     .install();
//!
//! // The HTTP client: subscribe to each target you call and keep the handle.
//! let http = mesh_tower::Client::builder(xds.state().resources().clone())
//!     .identity(svid.clone())
//!     .build();
//! let _ratings = xds.subscribe("ratings.default.svc.cluster.local:9080");
//! xds.ready("ratings.default.svc.cluster.local:9080", Duration::from_secs(5)).await?;
//! let resp = http
//!     .request(
//!         http::Request::get("http://ratings.default.svc.cluster.local:9080/r/1")
//!             .body(Empty::<Bytes>::new())?,
//!     )
//!     .await?;
//! println!("{}", resp.status());
//!
//! // The debug views on an operators' port.
//! let debug = DebugService::new(&xds.state()).client(&http).prometheus(prometheus);
//! let admin = tokio::net::TcpListener::bind("127.0.0.1:9901").await?;
//! let plain_ok = Acceptor::new(svid.clone()).mode(PeerAuthMode::Permissive);
//! tokio::spawn(server::serve(admin, plain_ok, debug));
//!
//! // The app, served as its inbound listener from xDS says (mTLS mode, authorization).
//! let app = tower::service_fn(|_req: http::Request<hyper::body::Incoming>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hello")))
//! });
//! let listener = tokio::net::TcpListener::bind("10.0.0.7:9080").await?;
//! let shutdown = async {
//!     let _ = tokio::signal::ctrl_c().await;
//! };
//! server::serve_meshed(listener, &xds, svid, app, shutdown).await;
//! provider.shutdown()?;
//! # Ok(()) }
//! ```
//!
//! Each policy on its own, here Envoy's route selection and the weighted split:
//! ```no_run
//! use mesh_core::route::RouteTable;
//! use mesh_tower::route;
//!
//! fn choose(table: &RouteTable, req: &http::Request<()>, roll: u32) -> Option<String> {
//!     let r = route::select(table, req)?;
//!     match &r.action {
//!         mesh_core::route::RouteAction::Forward(f) => {
//!             route::pick_weighted(&f.clusters, roll).map(|c| c.name.clone())
//!         }
//!         _ => None,
//!     }
//! }
//! ```

pub mod authz;
pub mod balance;
pub mod breaker;
pub mod client;
pub mod debug;
pub mod endpoint;
pub mod fault;
pub mod outlier;
pub mod ratelimit;
pub mod retry;
pub mod route;
pub mod server;
pub mod telemetry;
pub mod tls;

pub use client::{Client, ClientBuilder, Error};
