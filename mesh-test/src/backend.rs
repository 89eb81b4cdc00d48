//! Real backends on `127.0.0.1:0` that say who answered.
//!
//! - [`http`]: answers every request `200` with body `<name>` and headers `x-backend: <name>`
//!   and `x-path: <request path>`, over HTTP/1.1 or h2c (prior knowledge) on the same port.
//! - [`grpc_echo`]: the `mesh.test.echo.v1.Echo` service; replies carry `backend = <name>`.
//!
//! A [`Backend`] records the path of every request it answered (for gRPC, the method path) and
//! stops, closing every connection, when dropped: a test takes a backend away by dropping it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::{Service, service_fn};
use hyper::{Request, Response};
use hyper_util::service::TowerToHyperService;
use tokio::task::JoinHandle;
use tonic::Status;

use crate::echo::pb::echo_server::{Echo, EchoServer};
use crate::echo::pb::{EchoReply, EchoRequest};
use crate::serve::{bind_loopback, spawn_server};

/// Number of replies [`grpc_echo`] sends for one `EchoStream` call.
pub const STREAM_REPLIES: usize = 3;

/// A running test backend. Stops serving, and closes its connections, when dropped.
#[derive(Debug)]
pub struct Backend {
    /// The name it answers with (HTTP body and `x-backend`, or the gRPC reply's `backend`).
    pub name: String,
    /// Where it listens (`127.0.0.1:<ephemeral port>`).
    pub addr: SocketAddr,
    log: RequestLog,
    task: JoinHandle<()>,
}

impl Backend {
    /// Requests answered so far (HTTP requests, or gRPC calls of either method).
    pub fn hits(&self) -> u64 {
        self.log.lock().len() as u64
    }

    /// The path of every request so far, in arrival order (for gRPC: `/package.Service/Method`).
    pub fn paths(&self) -> Vec<String> {
        self.log.lock().clone()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How a programmable HTTP backend misbehaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct Behavior {
    /// Share of requests answered `503`, in per mille (0–1000).
    pub fail_permille: u32,
    /// Delay before every answer.
    pub delay: std::time::Duration,
}

/// Starts an HTTP backend named `name` on `127.0.0.1:0` (HTTP/1.1 and h2c).
pub async fn http(name: &str) -> Backend {
    http_with(name, Behavior::default()).await
}

/// As [`http`], answering `503` for a share of requests and after a delay, per `behavior`.
pub async fn http_with(name: &str, behavior: Behavior) -> Backend {
    let listener = bind_loopback(&format!("http backend {name}")).await;
    let addr = listener
        .local_addr()
        .expect("bound listener has an address");
    let log = RequestLog::default();
    let service = {
        let name: Arc<str> = Arc::from(name);
        let log = log.clone();
        service_fn(move |req: Request<Incoming>| {
            log.record(&req);
            let name = Arc::clone(&name);
            async move {
                if !behavior.delay.is_zero() {
                    tokio::time::sleep(behavior.delay).await;
                }
                let failed = fastrand::u32(0..1000) < behavior.fail_permille;
                let response = Response::builder()
                    .status(if failed { 503 } else { 200 })
                    .header("x-backend", &*name)
                    .header("x-path", req.uri().path())
                    .body(Full::new(Bytes::copy_from_slice(name.as_bytes())))
                    .expect("static response parts are valid");
                Ok::<_, Infallible>(response)
            }
        })
    };
    let task = spawn_server(listener, service);
    Backend {
        name: name.to_owned(),
        addr,
        log,
        task,
    }
}

/// Starts a gRPC `Echo` backend named `name` on `127.0.0.1:0` (h2c).
pub async fn grpc_echo(name: &str) -> Backend {
    grpc_echo_with(name, Behavior::default()).await
}

/// As [`grpc_echo`], answering UNAVAILABLE for a share of unary calls and after a delay, per
/// `behavior`.
pub async fn grpc_echo_with(name: &str, behavior: Behavior) -> Backend {
    let listener = bind_loopback(&format!("grpc echo backend {name}")).await;
    let addr = listener
        .local_addr()
        .expect("bound listener has an address");
    let log = RequestLog::default();
    let echo = EchoService {
        name: name.to_owned(),
        behavior,
    };
    let service = {
        let log = log.clone();
        let grpc = TowerToHyperService::new(EchoServer::new(echo));
        service_fn(move |req: Request<Incoming>| {
            log.record(&req);
            grpc.call(req)
        })
    };
    let task = spawn_server(listener, service);
    Backend {
        name: name.to_owned(),
        addr,
        log,
        task,
    }
}

/// The `Echo` service named `name` as tonic routes, for serving it yourself (for example meshed,
/// with `mesh_grpc::server::serve`).
pub fn echo_routes(name: &str) -> tonic::service::Routes {
    tonic::service::Routes::new(EchoServer::new(EchoService {
        name: name.to_owned(),
        behavior: Behavior::default(),
    }))
}

/// Paths of the requests a backend answered, shared with its server task.
#[derive(Debug, Clone, Default)]
struct RequestLog(Arc<Mutex<Vec<String>>>);

impl RequestLog {
    fn record<B>(&self, request: &Request<B>) {
        self.lock().push(request.uri().path().to_owned());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug)]
struct EchoService {
    name: String,
    behavior: Behavior,
}

impl EchoService {
    fn reply(&self, request: &EchoRequest) -> EchoReply {
        EchoReply {
            message: request.message.clone(),
            backend: self.name.clone(),
        }
    }
}

#[tonic::async_trait]
impl Echo for EchoService {
    async fn echo(
        &self,
        request: tonic::Request<EchoRequest>,
    ) -> Result<tonic::Response<EchoReply>, Status> {
        if !self.behavior.delay.is_zero() {
            tokio::time::sleep(self.behavior.delay).await;
        }
        if fastrand::u32(0..1000) < self.behavior.fail_permille {
            return Err(Status::unavailable(format!(
                "{} failed on purpose",
                self.name
            )));
        }
        Ok(tonic::Response::new(self.reply(request.get_ref())))
    }

    type EchoStreamStream = tokio_stream::Iter<std::vec::IntoIter<Result<EchoReply, Status>>>;

    async fn echo_stream(
        &self,
        request: tonic::Request<EchoRequest>,
    ) -> Result<tonic::Response<Self::EchoStreamStream>, Status> {
        let reply = self.reply(request.get_ref());
        let replies = vec![Ok(reply); STREAM_REPLIES];
        Ok(tonic::Response::new(tokio_stream::iter(replies)))
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use tokio_stream::StreamExt;

    use super::*;
    use crate::echo::pb::echo_client::EchoClient;

    async fn get(backend: &Backend, http2: bool) -> (String, String, String) {
        let client = Client::builder(TokioExecutor::new())
            .http2_only(http2)
            .build_http::<Empty<Bytes>>();
        let uri = format!("http://{}/a/b?q=1", backend.addr);
        let response = client.get(uri.parse().unwrap()).await.unwrap();
        let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
        let (backend, path) = (header("x-backend"), header("x-path"));
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (String::from_utf8(body.to_vec()).unwrap(), backend, path)
    }

    #[tokio::test]
    async fn http_backend_answers_http1_and_h2c() {
        let web = http("web-v2").await;
        let expected = ("web-v2".to_owned(), "web-v2".to_owned(), "/a/b".to_owned());
        assert_eq!(get(&web, false).await, expected);
        assert_eq!(get(&web, true).await, expected);
        assert_eq!(web.hits(), 2);
        assert_eq!(web.paths(), ["/a/b", "/a/b"]);
    }

    #[tokio::test]
    async fn grpc_echo_answers_unary_and_stream() {
        let echo = grpc_echo("echo-v2").await;
        let mut client = EchoClient::connect(format!("http://{}", echo.addr))
            .await
            .unwrap();
        let request = || EchoRequest {
            message: "hi".into(),
        };
        let reply = client.echo(request()).await.unwrap().into_inner();
        assert_eq!(
            (reply.message.as_str(), reply.backend.as_str()),
            ("hi", "echo-v2")
        );

        let stream = client.echo_stream(request()).await.unwrap().into_inner();
        let replies: Vec<_> = stream.map(|r| r.unwrap().backend).collect().await;
        assert_eq!(replies, vec!["echo-v2"; STREAM_REPLIES]);
        assert_eq!(echo.hits(), 2);
        assert_eq!(echo.paths()[0], crate::echo::ECHO_METHOD);
    }

    #[tokio::test]
    async fn dropped_backend_refuses_connections() {
        let web = http("gone").await;
        let addr = web.addr;
        drop(web);
        // The abort takes effect when the runtime next polls the server task.
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("{addr} still accepts connections after the backend was dropped");
    }
}
