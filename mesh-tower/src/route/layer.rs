//! [`RouteLayer`]: route selection as a tower layer. It picks the route and the weighted cluster
//! from a live route table and hands the decision to the inner service as a request extension.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use mesh_core::Snapshot;
use mesh_core::route::{Route, RouteAction, RouteTable};
use tower::{Layer, Service};

/// The routing decision, attached to the request as an extension.
#[derive(Debug, Clone)]
pub struct Routed {
    table: Arc<RouteTable>,
    vhost: usize,
    route: usize,
    cluster: Option<usize>,
}

impl Routed {
    /// The route that matched.
    pub fn route(&self) -> &Route {
        &self.table.virtual_hosts[self.vhost].routes[self.route]
    }

    /// The cluster picked from the route's split (none for a direct response).
    pub fn cluster(&self) -> Option<&str> {
        match (&self.route().action, self.cluster) {
            (RouteAction::Forward(f), Some(i)) => Some(f.clusters[i].name.as_str()),
            _ => None,
        }
    }
}

/// Selects a route for each request from a live table; a request no route matches is answered
/// 404 without calling the inner service, as Envoy does.
#[derive(Debug, Clone)]
pub struct RouteLayer {
    table: Snapshot<RouteTable>,
}

impl RouteLayer {
    /// A layer reading `table` once per request.
    pub fn new(table: Snapshot<RouteTable>) -> Self {
        Self { table }
    }
}

impl<S> Layer<S> for RouteLayer {
    type Service = RouteService<S>;
    fn layer(&self, inner: S) -> RouteService<S> {
        RouteService {
            inner,
            table: self.table.clone(),
        }
    }
}

/// The service [`RouteLayer`] produces.
#[derive(Debug, Clone)]
pub struct RouteService<S> {
    inner: S,
    table: Snapshot<RouteTable>,
}

impl<S, B, ResB> Service<Request<B>> for RouteService<S>
where
    S: Service<Request<B>, Response = Response<ResB>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResB: Default + Send + 'static,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResB>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let table = self.table.load_full();
        let Some(routed) = decide(table, &req) else {
            let mut not_found = Response::new(ResB::default());
            *not_found.status_mut() = StatusCode::NOT_FOUND;
            return Box::pin(std::future::ready(Ok(not_found)));
        };
        req.extensions_mut().insert(routed);
        Box::pin(self.inner.call(req))
    }
}

fn decide<B>(table: Arc<RouteTable>, req: &Request<B>) -> Option<Routed> {
    let vh = super::select_virtual_host(&table, super::authority(req)?)?;
    let vhost = table
        .virtual_hosts
        .iter()
        .position(|v| std::ptr::eq(v, vh))?;
    let route = vh
        .routes
        .iter()
        .position(|r| super::route_matches(&r.matcher, req))?;
    let cluster = match &vh.routes[route].action {
        RouteAction::Forward(f) => {
            let picked = super::pick_weighted(&f.clusters, fastrand::u32(..))?;
            f.clusters.iter().position(|c| std::ptr::eq(c, picked))
        }
        RouteAction::DirectResponse { .. } => None,
    };
    Some(Routed {
        table,
        vhost,
        route,
        cluster,
    })
}
