//! [`Client`]: an HTTP client that sends each request as the live mesh state says — route, split,
//! balance, retry, break, eject, inject faults, mirror — over pooled hyper connections.
//!
//! ```no_run
//! # async fn demo(state: mesh_xds_client::MeshState) -> Result<(), Box<dyn std::error::Error>> {
//! use bytes::Bytes;
//! use http_body_util::Empty;
//!
//! let client = mesh_tower::Client::new(&state);
//! let resp = client
//!     .request(http::Request::get("http://reviews.default.svc.cluster.local:9080/r/1").body(Empty::<Bytes>::new())?)
//!     .await?;
//! println!("{}", resp.status());
//! # Ok(()) }
//! ```
//!
//! Clusters whose `Cluster.tls` is set are reached over SPIFFE mutual TLS, each with its own
//! connection pools, once the client has the workload's identity ([`Client::builder`] with
//! [`ClientBuilder::identity`]); without one, requests to them fail with [`Error::NoIdentity`] and
//! are never sent in plaintext.
//!
//! Per request the client reads the state once (an `Arc` clone), allocates the outgoing request,
//! and touches only atomics: no lock, no stack rebuilt. A config change swaps the state between two
//! requests; requests in flight finish with the state they started with.

pub mod body;
pub(crate) mod debug;
mod error;
mod forward;
mod headers;
mod replay;
mod runtime;

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mesh_core::identity::Svid;
use mesh_core::route::RouteAction;
use mesh_core::{MeshResources, Snapshot};
use mesh_xds_client::tls::{ALPN_H2, ALPN_HTTP1, client_config};

pub use body::{Body, BoxError};
pub use error::Error;

use crate::telemetry::{Exchange, Observed, ResponseFlags, Telemetry};
use runtime::{ClientTls, Runtimes};

/// Request bodies up to this size are buffered so they can be retried and mirrored.
pub const DEFAULT_MAX_REPLAY_BYTES: usize = 64 * 1024;

/// The mesh HTTP client. Cheap to clone; one per process is enough.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: Snapshot<MeshResources>,
    /// The workload's SVID for clusters with TLS; `None` when the client was built without one.
    identity: Option<Snapshot<Option<Svid>>>,
    runtimes: Arc<Runtimes>,
    /// Serializes rebuilds of `runtimes` (cold path: after a config change).
    rebuild: Arc<std::sync::Mutex<()>>,
    tls: Option<runtime::ClientTls>,
    http1: HyperClient<HttpConnector, Body>,
    http2: HyperClient<HttpConnector, Body>,
    max_replay: usize,
    telemetry: Option<crate::telemetry::Telemetry>,
    task: tokio::task::JoinHandle<()>,
}

impl Inner {
    /// The runtime set of the newest state: one pointer comparison per request, a rebuild only
    /// right after a config change that the background task has not applied yet.
    fn current(&self) -> Arc<runtime::RuntimeSet> {
        let set = self.runtimes.load_full();
        if Arc::ptr_eq(&set.built_from, &*self.state.load()) {
            return set;
        }
        runtime::refresh(
            &self.state,
            &self.runtimes,
            &self.rebuild,
            self.tls.as_ref(),
        );
        self.runtimes.load_full()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Client {
    /// A client following an xDS client's live state. Must be called inside a tokio runtime.
    pub fn new(state: &mesh_xds_client::MeshState) -> Client {
        Self::from_snapshot(state.resources().clone())
    }

    /// A client following any snapshot of mesh resources (tests, static configs).
    pub fn from_snapshot(state: Snapshot<MeshResources>) -> Client {
        Self::with_options(state, DEFAULT_MAX_REPLAY_BYTES)
    }

    /// As [`Client::from_snapshot`], buffering request bodies up to `max_replay` bytes for retries
    /// and mirrors (larger bodies stream through once, never retried or mirrored).
    pub fn with_options(state: Snapshot<MeshResources>, max_replay: usize) -> Client {
        Client::builder(state).max_replay(max_replay).build()
    }

    /// A builder for a client following `state`, for the options the other constructors do not
    /// take, such as the workload's identity for mTLS:
    ///
    /// ```no_run
    /// # fn demo(state: mesh_core::Snapshot<mesh_core::MeshResources>,
    /// #         identity: mesh_core::Snapshot<Option<mesh_core::identity::Svid>>) {
    /// let client = mesh_tower::Client::builder(state).identity(identity).build();
    /// # }
    /// ```
    pub fn builder(state: Snapshot<MeshResources>) -> ClientBuilder {
        ClientBuilder {
            state,
            max_replay: DEFAULT_MAX_REPLAY_BYTES,
            identity: None,
            telemetry: None,
        }
    }

    /// Sends `req` (absolute URI, or a `Host` header) through the mesh.
    pub async fn request<B>(&self, req: Request<B>) -> Result<Response<Body>, Error>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let Some(t) = &self.inner.telemetry else {
            return self.send(req, &mut None).await;
        };
        let mut ex = Some(Exchange::client(&t.shared, &req));
        let result = self.send(req, &mut ex).await;
        let Some(mut ex) = ex else { return result };
        match result {
            Ok(resp) => {
                let (parts, b) = resp.into_parts();
                let b = body::boxed(Observed::new(b, ex, parts.status, &parts.headers));
                Ok(Response::from_parts(parts, b))
            }
            Err(e) => {
                if let Error::NoTarget { authority, .. } | Error::NoRoute { authority, .. } = &e {
                    ex.asked_for(authority);
                }
                ex.flags.insert(e.response_flags());
                ex.finish(e.http_status(), None, 0, Some(&e.to_string()));
                Err(e)
            }
        }
    }

    async fn send<B>(
        &self,
        req: Request<B>,
        ex: &mut Option<Exchange>,
    ) -> Result<Response<Body>, Error>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let runtimes = self.inner.current();
        let state = &runtimes.built_from;
        let authority = crate::route::authority(&req).ok_or_else(|| {
            Error::InvalidRequest("no authority in the URI and no Host header".into())
        })?;
        let defaulted;
        let target = if has_port(authority) {
            authority
        } else {
            defaulted = with_default_port(authority, req.uri().scheme_str());
            defaulted.as_str()
        };
        let table = state
            .listeners
            .get(target)
            .and_then(|l| state.route_tables.get(&l.route_config_name))
            .ok_or_else(|| Error::NoTarget {
                authority: authority.to_string(),
                target: target.to_string(),
            })?;
        let route = crate::route::select(table, &req).ok_or_else(|| Error::NoRoute {
            table: table.name.clone(),
            method: req.method().to_string(),
            authority: authority.to_string(),
            path: req.uri().path().to_string(),
        })?;
        // The Host every attempt carries: the request's own header when it has one (a cheap
        // clone), else the URI's authority.
        let host = match req.headers().get(http::header::HOST) {
            Some(h) => h.clone(),
            None => http::HeaderValue::try_from(authority)
                .map_err(|e| Error::InvalidRequest(format!("authority {authority:?}: {e}")))?,
        };
        match &route.action {
            RouteAction::DirectResponse { status, body } => {
                let mut resp = Response::new(match body {
                    Some(b) => body::full(Bytes::from(b.clone())),
                    None => body::empty(),
                });
                *resp.status_mut() =
                    http::StatusCode::from_u16(*status).unwrap_or(http::StatusCode::OK);
                headers::apply(&route.response_headers, resp.headers_mut());
                answered_by_mesh(ex, ResponseFlags::NONE, None, &runtimes, authority);
                Ok(resp)
            }
            RouteAction::Forward(f) => {
                if route.rate_limit.is_some()
                    && let Some(bucket) = runtimes.buckets.get(&runtime::route_key(route))
                    && let Err(wait) = bucket.try_acquire(tokio::time::Instant::now())
                {
                    answered_by_mesh(
                        ex,
                        ResponseFlags::RATE_LIMITED,
                        Some(f),
                        &runtimes,
                        authority,
                    );
                    return Ok(crate::ratelimit::limited_response(wait));
                }
                if let Some(fault) = &route.fault {
                    let inj = crate::fault::decide_random(fault, &req);
                    if let Some(d) = inj.delay {
                        flag(ex, ResponseFlags::DELAY_INJECTED);
                        crate::fault::count_injected("delay");
                        tokio::time::sleep(d).await;
                    }
                    if let Some(status) = inj.abort {
                        answered_by_mesh(
                            ex,
                            ResponseFlags::FAULT_INJECTED,
                            Some(f),
                            &runtimes,
                            authority,
                        );
                        crate::fault::count_injected("abort");
                        return Ok(crate::fault::abort_response(status));
                    }
                }
                if let Some(ex) = ex.as_mut()
                    && ex.logged()
                {
                    ex.route = Some(Arc::from(route.name.as_str()));
                }
                let timeout = crate::route::effective_timeout(f, req.headers());
                let send = forward::forward(&self.inner, &runtimes, route, f, host, req, ex);
                let mut resp = match timeout {
                    Some(t) => {
                        tokio::time::timeout(t, send)
                            .await
                            .map_err(|_| Error::Timeout {
                                route: route.name.clone(),
                                timeout: t,
                            })??
                    }
                    None => send.await?,
                };
                headers::apply(&route.response_headers, resp.headers_mut());
                Ok(resp)
            }
        }
    }
}

/// Builds a [`Client`] ([`Client::builder`]).
#[derive(Debug)]
#[must_use]
pub struct ClientBuilder {
    state: Snapshot<MeshResources>,
    max_replay: usize,
    identity: Option<Snapshot<Option<Svid>>>,
    telemetry: Option<Telemetry>,
}

impl ClientBuilder {
    /// Request bodies up to this many bytes are buffered so they can be retried and mirrored;
    /// larger bodies stream through once, never retried or mirrored. Default:
    /// [`DEFAULT_MAX_REPLAY_BYTES`].
    pub fn max_replay(mut self, bytes: usize) -> Self {
        self.max_replay = bytes;
        self
    }

    /// The workload's identity, for clusters whose `Cluster.tls` is set: requests to them go
    /// over mutual TLS presenting the snapshot's current SVID, verifying the server against its
    /// current trust bundle and the cluster's SAN matchers. Storing a new `Svid` rotates the
    /// certificate for new connections; established ones carry on. While the snapshot holds
    /// `None`, requests to TLS clusters fail with [`Error::NoIdentity`]. Default: none (TLS
    /// clusters fail with [`Error::NoIdentity`], never fall back to plaintext).
    pub fn identity(mut self, identity: Snapshot<Option<Svid>>) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Records metrics, spans and access-log lines with `telemetry` (`reporter="source"`).
    /// Default: the process default ([`Telemetry::install`]) when the client is built, else
    /// nothing is recorded.
    pub fn telemetry(mut self, telemetry: Telemetry) -> Self {
        self.telemetry = Some(telemetry);
        self
    }

    /// The client. Must be called inside a tokio runtime.
    pub fn build(self) -> Client {
        let ClientBuilder {
            state,
            max_replay,
            identity,
            telemetry,
        } = self;
        let telemetry = telemetry.or_else(Telemetry::global);
        let tls = identity.as_ref().map(|id| ClientTls {
            http1: client_config(id.clone(), &[ALPN_HTTP1]),
            http2: client_config(id.clone(), &[ALPN_H2]),
        });
        let runtimes: Arc<Runtimes> = Arc::new(arc_swap::ArcSwap::from_pointee(
            runtime::RuntimeSet::build(state.load_full(), None, tls.as_ref()),
        ));
        let rebuild = Arc::new(std::sync::Mutex::new(()));
        let task = tokio::spawn(runtime::maintain(
            state.clone(),
            Arc::downgrade(&runtimes),
            Arc::downgrade(&rebuild),
            tls.clone(),
        ));
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http1 = HyperClient::builder(TokioExecutor::new()).build(connector.clone());
        let http2 = HyperClient::builder(TokioExecutor::new())
            .http2_only(true)
            .build(connector);
        Client {
            inner: Arc::new(Inner {
                state,
                identity,
                runtimes,
                rebuild,
                tls,
                http1,
                http2,
                max_replay,
                telemetry,
                task,
            }),
        }
    }
}

/// Labels an answer the mesh gives itself (a direct response, a rate limit, a fault abort) as
/// Envoy's router does — with the route's first cluster, else the authority asked for — and
/// sets its response flag.
fn answered_by_mesh(
    ex: &mut Option<Exchange>,
    f: ResponseFlags,
    forward: Option<&mesh_core::route::ForwardAction>,
    runtimes: &runtime::RuntimeSet,
    authority: &str,
) {
    let Some(ex) = ex.as_mut() else { return };
    ex.flags.insert(f);
    let first = forward
        .and_then(|a| a.clusters.first())
        .and_then(|c| runtimes.clusters.get(&c.name));
    match first {
        Some(rt) => ex.reached_cluster(&rt.cluster, &rt.peer, &rt.service, None),
        None => ex.asked_for(authority),
    }
}

/// Sets a response flag on the request's observation, if it has one.
fn flag(ex: &mut Option<Exchange>, f: ResponseFlags) {
    if let Some(ex) = ex {
        ex.flags.insert(f);
    }
}

/// True when the authority ends in a numeric port (`host:80`, `[::1]:80`).
fn has_port(authority: &str) -> bool {
    authority.rsplit_once(':').is_some_and(|(h, p)| {
        !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
            && (h.ends_with(']') || !h.contains(':'))
    })
}

/// `host:port` of an authority without a port, with the scheme's default port.
fn with_default_port(authority: &str, scheme: Option<&str>) -> String {
    let port = if scheme == Some("https") { 443 } else { 80 };
    format!("{authority}:{port}")
}

impl<B> tower::Service<Request<B>> for Client
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response<Body>, Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let client = self.clone();
        Box::pin(async move { client.request(req).await })
    }
}

#[cfg(test)]
mod tests {
    use super::{has_port, with_default_port};

    #[test]
    fn default_ports() {
        assert!(has_port("svc:9080") && has_port("[::1]:81"));
        assert!(!has_port("svc") && !has_port("[::1]") && !has_port("::1"));
        assert_eq!(with_default_port("svc", Some("http")), "svc:80");
        assert_eq!(with_default_port("svc", Some("https")), "svc:443");
        assert_eq!(with_default_port("[::1]", None), "[::1]:80");
    }
}
