//! Debug views an app can mount: one tower service answering JSON about the live mesh state.
//!
//! A proxyless mesh has no sidecar with an admin port to ask "which config did this process get,
//! where would this request go, and which endpoints are ejected?". [`DebugService`] answers those
//! from inside the app, from the same live state the [`Client`] routes with:
//!
//! | path | answers |
//! |---|---|
//! | `GET /debug` | the list of views |
//! | `GET /debug/config_dump` | every xDS resource with its version, ACK/NACK status, last error and content (CSDS-style) |
//! | `GET /debug/routes` | each listener (target) with its route table |
//! | `GET /debug/clusters` | each cluster's policies and endpoints (address, locality, priority, health, weight); with [`DebugService::client`], each endpoint's requests in flight, EWMA latency, and outlier ejection (until when, how many times) |
//! | `GET /debug/explain?authority=reviews:9080&path=/r/1&method=GET&header=x-user:bob` | how the client routes that request: listener, route table, virtual host and why, each route skipped and the first condition it failed, the route taken and its action, or the error the client returns ([`explain`]) |
//! | `GET /metrics` (or `/debug/metrics`) | the Prometheus exposition, with [`DebugService::prometheus`] |
//!
//! Every path is also answered without its `/debug` prefix, so the service works both served
//! at the root and nested under `/debug` (axum's `nest_service` strips the prefix). Answers are
//! pretty-printed JSON (`content-type: application/json`); an unknown path is a 404 and a bad
//! `explain` query a 400, both with a JSON body saying what was wrong. Only `GET` and `HEAD` are
//! answered (405 otherwise).
//!
//! The views expose the mesh configuration and endpoint addresses: serve them on a port only
//! operators reach, or behind your own authorization. Nothing here changes state.
//!
//! # Example
//! ```no_run
//! # async fn demo(state: mesh_xds_client::MeshState) {
//! use mesh_tower::debug::DebugService;
//!
//! let client = mesh_tower::Client::new(&state);
//! let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
//!     .install_recorder()
//!     .expect("no other metrics recorder is installed");
//! let debug = DebugService::new(&state).client(&client).prometheus(metrics);
//!
//! // Served alone on an admin port (mTLS or plaintext, as the acceptor says), or nested in an
//! // axum router: `Router::new().nest_service("/debug", debug)`.
//! let identity = mesh_core::Snapshot::new(None);
//! let acceptor = mesh_tower::server::Acceptor::new(identity)
//!     .mode(mesh_tower::server::PeerAuthMode::Permissive);
//! let admin = tokio::net::TcpListener::bind("127.0.0.1:9901").await.unwrap();
//! mesh_tower::server::serve(admin, acceptor, debug).await;
//! # }
//! ```
//!
//! [`Client`]: crate::Client

mod explain;
mod query;
mod views;

#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::fmt;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use mesh_core::{MeshResources, Snapshot};
use mesh_xds_client::MeshState;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use serde_json::json;

pub use explain::{
    Action, ClusterShare, Explanation, RequestLine, RetrySummary, Skipped, VirtualHostChoice,
    explain,
};

use crate::Client;

/// The views, for the index and the 404 answer.
const VIEWS: [(&str, &str); 6] = [
    ("/debug", "this list"),
    (
        "/debug/config_dump",
        "every xDS resource with its version, status, last error and content",
    ),
    (
        "/debug/routes",
        "listeners (targets) and their route tables",
    ),
    (
        "/debug/clusters",
        "clusters with their policies and endpoints; live balancer and outlier state when a client was given",
    ),
    (
        "/debug/explain?authority=<host[:port]>&path=</path?query>&method=<GET>&header=<name:value>&scheme=<http|https>",
        "how the client routes that request, step by step",
    ),
    (
        "/metrics",
        "Prometheus metrics, when a recorder handle was given",
    ),
];

/// The debug views as one tower service ([module docs](self)). Cheap to clone; every answer
/// reads the state as it is at that moment.
#[derive(Clone)]
pub struct DebugService {
    resources: Snapshot<MeshResources>,
    xds: Option<MeshState>,
    client: Option<Client>,
    prometheus: Option<PrometheusHandle>,
}

impl fmt::Debug for DebugService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DebugService")
            .field("xds", &self.xds.is_some())
            .field("client", &self.client.is_some())
            .field("prometheus", &self.prometheus.is_some())
            .finish_non_exhaustive()
    }
}

impl DebugService {
    /// Views of an xDS client's live state, with each resource's version and ACK/NACK status.
    pub fn new(state: &MeshState) -> DebugService {
        DebugService {
            xds: Some(state.clone()),
            ..DebugService::from_snapshot(state.resources().clone())
        }
    }

    /// Views of any snapshot of mesh resources (static configs, tests). `config_dump` then lists
    /// the resources without versions or statuses, which only an xDS client has.
    pub fn from_snapshot(resources: Snapshot<MeshResources>) -> DebugService {
        DebugService {
            resources,
            xds: None,
            client: None,
            prometheus: None,
        }
    }

    /// Adds `client`'s live state to `/debug/clusters`: per endpoint, requests in flight, EWMA
    /// latency and outlier ejection; per cluster, the breaker's counters. Default: none (policies
    /// and endpoints as configured only).
    #[must_use]
    pub fn client(mut self, client: &Client) -> DebugService {
        self.client = Some(client.clone());
        self
    }

    /// Serves `handle`'s rendering at `/metrics`. Default: none (`/metrics` answers 404).
    #[must_use]
    pub fn prometheus(mut self, handle: PrometheusHandle) -> DebugService {
        self.prometheus = Some(handle);
        self
    }

    /// The answer to `req`, without going through [`tower::Service`].
    pub fn respond<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut resp = error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "{} is not allowed: the debug views answer GET",
                    req.method()
                ),
            );
            resp.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
            return resp;
        }
        let path = req.uri().path();
        let view = path
            .strip_prefix("/debug")
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
            .unwrap_or(path);
        match view.trim_end_matches('/') {
            "" => json_response(&json!({
                "views": VIEWS.map(|(path, about)| json!({"path": path, "about": about})),
            })),
            "/config_dump" => {
                let status = self.xds.as_ref().map(|x| x.status());
                json_response(&views::config_dump(
                    &self.resources.load(),
                    status.as_deref(),
                ))
            }
            "/routes" => json_response(&json!({
                "listeners": views::routes(&self.resources.load()),
            })),
            "/clusters" => {
                let live = self.client.as_ref().map(Client::live_clusters);
                json_response(&json!({
                    "clusters": views::clusters(&self.resources.load(), live.as_ref()),
                }))
            }
            "/explain" => match query::explain_request(req.uri().query()) {
                Ok(r) => json_response(&explain(&self.resources.load(), &r)),
                Err(e) => {
                    let body = json!({"error": e.to_string(), "parameter": e.parameter});
                    with_status(StatusCode::BAD_REQUEST, json_response(&body))
                }
            },
            "/metrics" => match &self.prometheus {
                Some(h) => {
                    let mut resp = Response::new(Full::new(Bytes::from(h.render())));
                    resp.headers_mut().insert(
                        header::CONTENT_TYPE,
                        header::HeaderValue::from_static("text/plain; version=0.0.4"),
                    );
                    resp
                }
                None => error(
                    StatusCode::NOT_FOUND,
                    "no metrics: the debug service was not given a Prometheus handle \
                     (DebugService::prometheus)",
                ),
            },
            _ => error(
                StatusCode::NOT_FOUND,
                format!(
                    "no debug view at {path}; the views are {}",
                    VIEWS
                        .map(|(p, _)| p.split('?').next().unwrap_or(p))
                        .join(", ")
                ),
            ),
        }
    }
}

impl<B> tower::Service<Request<B>> for DebugService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<Full<Bytes>>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        std::future::ready(Ok(self.respond(&req)))
    }
}

/// `value` as pretty-printed JSON.
fn json_response<T: Serialize + ?Sized>(value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec_pretty(value) {
        Ok(mut body) => {
            body.push(b'\n');
            let mut resp = Response::new(Full::new(Bytes::from(body)));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            resp
        }
        Err(e) => {
            let mut resp = Response::new(Full::new(Bytes::from(format!(
                "the view could not be serialized: {e}"
            ))));
            *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            resp
        }
    }
}

/// A JSON `{"error": message}` answer with `status`.
fn error(status: StatusCode, message: impl Into<String>) -> Response<Full<Bytes>> {
    with_status(status, json_response(&json!({ "error": message.into() })))
}

fn with_status(status: StatusCode, mut resp: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    *resp.status_mut() = status;
    resp
}
