//! One accept loop for every test server: HTTP/1.1 and h2c on the same port, and every
//! connection owned by the loop's task so that aborting the task closes them all.

use std::error::Error as StdError;
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

type BoxError = Box<dyn StdError + Send + Sync>;

/// Serves `service` on `listener` until the returned task is aborted. Aborting drops the
/// `JoinSet` of connections, which aborts each connection task too.
pub(crate) fn spawn_server<S, B>(listener: TcpListener, service: S) -> JoinHandle<()>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _peer)) => stream,
                Err(_) => {
                    // Out of file descriptors or similar: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let service = service.clone();
            connections.spawn(async move {
                let builder = auto::Builder::new(TokioExecutor::new());
                // A peer resetting its connection is normal in tests; nothing to report.
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
            while connections.try_join_next().is_some() {}
        }
    })
}

/// Binds `127.0.0.1:0`, panicking with context if the machine refuses.
pub(crate) async fn bind_loopback(what: &str) -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{what}: cannot bind 127.0.0.1:0: {e}"))
}
