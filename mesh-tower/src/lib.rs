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
//! # Example
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
