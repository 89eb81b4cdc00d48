//! [`AuthzLayer`]: the RBAC filters of the inbound listener in front of any HTTP service.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use mesh_core::Snapshot;
use mesh_core::rbac::{Decision, Rbac, RequestFacts, Verdict, authorize};
use tower::{Layer, Service};

use super::counters::Counters;
use super::facts::{self, Headers};
use super::{AuthzBody, ResponseFuture, denied_response};

/// Authorizes each request against the live RBAC filters before the inner service sees it.
#[derive(Debug, Clone)]
pub struct AuthzLayer {
    filters: Snapshot<Vec<Rbac>>,
    local_port: Option<u16>,
    counters: Arc<Counters>,
}

impl AuthzLayer {
    /// A layer enforcing the filters `filters` holds at each request, in chain order.
    pub fn new(filters: Snapshot<Vec<Rbac>>) -> Self {
        Self {
            filters,
            local_port: None,
            counters: Arc::default(),
        }
    }

    /// The port requests arrive on, for `destination_port` conditions, when requests carry no
    /// [`super::ConnectionAddrs`]. Default: unknown (port conditions never match).
    pub fn with_local_port(mut self, port: u16) -> Self {
        self.local_port = Some(port);
        self
    }
}

impl<S> Layer<S> for AuthzLayer {
    type Service = Authz<S>;

    fn layer(&self, inner: S) -> Authz<S> {
        Authz {
            inner,
            filters: self.filters.clone(),
            local_port: self.local_port,
            counters: self.counters.clone(),
        }
    }
}

/// The service [`AuthzLayer`] produces.
#[derive(Debug, Clone)]
pub struct Authz<S> {
    inner: S,
    filters: Snapshot<Vec<Rbac>>,
    local_port: Option<u16>,
    counters: Arc<Counters>,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Authz<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = Response<AuthzBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let filters = self.filters.load();
        let denied = {
            let headers = Headers(req.headers());
            let facts = facts::of(&req, &headers, self.local_port);
            let verdict = authorize(&filters, &facts);
            self.counters.count(&filters, &verdict.decision);
            log(&verdict, &facts);
            match verdict.decision {
                Decision::Allowed(_) => None,
                denied => Some(denied_response(&denied, facts::is_grpc(&req))),
            }
        };
        match denied {
            None => ResponseFuture::allowed(self.inner.call(req)),
            Some(res) => ResponseFuture::denied(res),
        }
    }
}

/// Logs denials and audit matches; allowed requests without audit are not logged.
fn log(verdict: &Verdict<'_>, facts: &RequestFacts<'_>) {
    let peer = facts.peer.unwrap_or("none (plaintext)");
    let path = facts.url_path();
    for audit in &verdict.audit {
        tracing::info!(
            target: "mesh_tower::authz",
            policy = audit.name,
            peer,
            method = facts.method,
            path,
            allowed = verdict.is_allowed(),
            "audit: request matched an AUDIT policy"
        );
    }
    if let Decision::Denied(p) = verdict.decision {
        tracing::info!(
            target: "mesh_tower::authz",
            policy = p.map_or("none: no ALLOW policy matched", |p| p.name),
            peer,
            method = facts.method,
            path,
            "request denied"
        );
    }
}
