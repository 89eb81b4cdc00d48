//! [`PeerIdentityLayer`]: puts one connection's verified peer identity into each request, for
//! those who run their own accept loop.

use std::task::{Context, Poll};

use http::Request;
use mesh_core::identity::PeerIdentity;

/// Inserts a connection's [`PeerIdentity`] into every request's extensions. Build one per
/// connection with what [`super::Acceptor::accept`] returned; `None` (a plaintext peer) inserts
/// nothing.
///
/// ```no_run
/// # async fn demo(acceptor: mesh_tower::server::Acceptor, tcp: tokio::net::TcpStream,
/// #               app: tower::util::BoxCloneSyncService<http::Request<hyper::body::Incoming>, http::Response<String>, std::convert::Infallible>) {
/// use tower::Layer;
/// let (stream, peer) = acceptor.accept(tcp).await.unwrap();
/// let svc = mesh_tower::server::PeerIdentityLayer::new(peer).layer(app);
/// let svc = hyper_util::service::TowerToHyperService::new(svc);
/// let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
///     .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
///     .await;
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PeerIdentityLayer {
    peer: Option<PeerIdentity>,
}

impl PeerIdentityLayer {
    /// A layer inserting `peer` (if any) into each request.
    pub fn new(peer: Option<PeerIdentity>) -> Self {
        PeerIdentityLayer { peer }
    }
}

impl<S> tower::Layer<S> for PeerIdentityLayer {
    type Service = AddPeerIdentity<S>;

    fn layer(&self, inner: S) -> AddPeerIdentity<S> {
        AddPeerIdentity {
            inner,
            peer: self.peer.clone(),
        }
    }
}

/// The service of [`PeerIdentityLayer`].
#[derive(Debug, Clone)]
pub struct AddPeerIdentity<S> {
    inner: S,
    peer: Option<PeerIdentity>,
}

impl<S, B> tower::Service<Request<B>> for AddPeerIdentity<S>
where
    S: tower::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> S::Future {
        match &self.peer {
            Some(p) => {
                req.extensions_mut().insert(p.clone());
            }
            // Only the connection says who the peer is.
            None => {
                req.extensions_mut().remove::<PeerIdentity>();
            }
        }
        self.inner.call(req)
    }
}
