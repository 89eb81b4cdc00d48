//! The server side of each mode, run in a child process pinned to CPU0: it prints its URL, then
//! answers `stats` lines on stdin with its allocation count.

use std::convert::Infallible;
use std::io::BufRead;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mesh_core::Snapshot;
use mesh_test::echo::pb::echo_client::EchoClient;
use mesh_test::echo::pb::echo_server::{Echo, EchoServer};
use mesh_test::echo::pb::{EchoReply, EchoRequest};
use tower::Layer;

const HOST: &str = "bench.mesh.local";

use mesh_benches::bare_server as bare;

fn ok() -> http::Response<Full<Bytes>> {
    http::Response::new(Full::new(Bytes::from_static(b"ok")))
}

/// The mesh server stack as `serve_meshed` builds it (authorization and local policy layers,
/// empty here; the acceptor in PERMISSIVE mode takes the plaintext load).
async fn mesh_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app =
        tower::service_fn(|_req: http::Request<Incoming>| async { Ok::<_, Infallible>(ok()) });
    let stack = mesh_tower::authz::AuthzLayer::new(Snapshot::new(Vec::new())).layer(
        mesh_tower::server::LocalPolicyLayer::new(Snapshot::new(Default::default())).layer(app),
    );
    let acceptor = mesh_tower::server::Acceptor::new(Snapshot::new(None))
        .mode(mesh_tower::server::PeerAuthMode::Permissive);
    tokio::spawn(mesh_tower::server::serve(listener, acceptor, stack));
    addr
}

struct Echoer;

#[tonic::async_trait]
impl Echo for Echoer {
    async fn echo(
        &self,
        req: tonic::Request<EchoRequest>,
    ) -> Result<tonic::Response<EchoReply>, tonic::Status> {
        Ok(tonic::Response::new(EchoReply {
            message: req.into_inner().message,
            backend: "bench".into(),
        }))
    }

    type EchoStreamStream = tokio_stream::Empty<Result<EchoReply, tonic::Status>>;

    async fn echo_stream(
        &self,
        _: tonic::Request<EchoRequest>,
    ) -> Result<tonic::Response<Self::EchoStreamStream>, tonic::Status> {
        Ok(tonic::Response::new(tokio_stream::empty()))
    }
}

async fn tonic_backend() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(EchoServer::new(Echoer))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    addr
}

/// A front that answers each request by calling `call`.
async fn front<C, Fut>(call: C) -> SocketAddr
where
    C: Fn() -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = Bytes> + 'static,
{
    bare(move |_req| {
        let call = call.clone();
        async move { http::Response::new(Full::new(call().await)) }
    })
    .await
}

/// Starts `mode`'s servers; returns the address the load generator hits and the Envoys it
/// started (kept running for as long as they are held).
async fn start(mode: &str) -> Result<(SocketAddr, Vec<crate::envoy::Envoy>), String> {
    if let Some(hops) = match mode {
        "envoy" => Some(1),
        "envoy-pair" => Some(2),
        _ => None,
    } {
        let mut upstream = bare(|_req| async { ok() }).await;
        let mut envoys = Vec::new();
        for _ in 0..hops {
            let e = crate::envoy::Envoy::start(upstream)?;
            upstream = e.addr;
            envoys.push(e);
        }
        return Ok((upstream, envoys));
    }
    Ok((start_in_process(mode).await, Vec::new()))
}

/// The modes served by this process alone.
async fn start_in_process(mode: &str) -> SocketAddr {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let hyper_client = || -> HyperClient<HttpConnector, Empty<Bytes>> {
        HyperClient::builder(TokioExecutor::new()).build(connector.clone())
    };
    let mesh_client = |backend: SocketAddr| {
        mesh_tower::Client::from_snapshot(Snapshot::new(mesh_benches::split_mesh(HOST, backend)))
    };
    match mode {
        "bare" => bare(|_req| async { ok() }).await,
        "server" => mesh_server().await,
        "front-bare" | "client" | "both" => {
            let backend = if mode == "both" {
                mesh_server().await
            } else {
                bare(|_req| async { ok() }).await
            };
            if mode == "front-bare" {
                let c = hyper_client();
                front(move || {
                    let c = c.clone();
                    async move {
                        let req = http::Request::get(format!("http://{backend}/"))
                            .body(Empty::new())
                            .unwrap();
                        let resp = c.request(req).await.expect("backend");
                        resp.into_body().collect().await.unwrap().to_bytes()
                    }
                })
                .await
            } else {
                let c = mesh_client(backend);
                front(move || {
                    let c = c.clone();
                    async move {
                        let req = http::Request::get(format!("http://{HOST}/"))
                            .body(Empty::<Bytes>::new())
                            .unwrap();
                        let resp = c.request(req).await.expect("backend");
                        resp.into_body().collect().await.unwrap().to_bytes()
                    }
                })
                .await
            }
        }
        "grpc-tonic" | "grpc-mesh" => {
            let backend = tonic_backend().await;
            let echo = if mode == "grpc-tonic" {
                let channel = tonic::transport::Endpoint::from_shared(format!("http://{backend}"))
                    .unwrap()
                    .connect()
                    .await
                    .expect("the tonic backend");
                GrpcClient::Tonic(EchoClient::new(channel))
            } else {
                let channel =
                    mesh_grpc::Channel::from_client(mesh_client(backend), &format!("{HOST}:80"))
                        .expect("a valid target");
                GrpcClient::Mesh(EchoClient::new(channel))
            };
            front(move || {
                let echo = echo.clone();
                async move { echo.call().await }
            })
            .await
        }
        other => panic!("unknown mode {other}"),
    }
}

#[derive(Clone)]
enum GrpcClient {
    Tonic(EchoClient<tonic::transport::Channel>),
    Mesh(EchoClient<mesh_grpc::Channel>),
}

impl GrpcClient {
    async fn call(&self) -> Bytes {
        let req = EchoRequest {
            message: "ok".into(),
        };
        let reply = match self.clone() {
            GrpcClient::Tonic(mut c) => c.echo(req).await,
            GrpcClient::Mesh(mut c) => c.echo(req).await,
        };
        Bytes::from(reply.expect("echo").into_inner().message)
    }
}

/// The child process: serve `mode`, print the URL, answer `stats` on stdin until it closes.
pub(crate) fn run(mode: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let mode = mode.to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if line.trim() == "stats" {
                println!("{{\"allocs\":{}}}", mesh_benches::allocations());
            }
        }
        let _ = tx.send(());
    });
    local.block_on(&rt, async move {
        let (addr, envoys) = match start(&mode).await {
            Ok(started) => started,
            Err(reason) => {
                println!("{}", serde_json::json!({ "skip": reason }));
                return;
            }
        };
        let pids: Vec<u32> = envoys.iter().map(crate::envoy::Envoy::pid).collect();
        println!(
            "{}",
            serde_json::json!({ "url": format!("http://{addr}/"), "pids": pids })
        );
        // Stop when the orchestrator closes stdin.
        loop {
            if rx.try_recv().is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
}
