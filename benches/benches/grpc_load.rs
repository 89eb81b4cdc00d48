//! `grpc_load`: unary calls per second through a `mesh_grpc::Channel` against a plain tonic
//! `Channel` to the same server, in the same run.
//!
//! ```sh
//! cargo bench -p mesh-benches --bench grpc_load            # 5 interleaved rounds × 3 s per mode
//! cargo bench -p mesh-benches --bench grpc_load -- --quick # 2 rounds × 1 s
//! ```
//!
//! A tonic `Echo` server (h2c, `mesh_test::backend::grpc_echo`) runs on its own
//! single-threaded runtime; the load runs on another with 16 concurrent closed-loop callers.
//! **A** = `tonic::transport::Channel` straight to the server; **B** = `mesh_grpc::Channel` on
//! the mesh client stack with the static mesh of the other load benches (one route, 90/10 split
//! over two clusters holding the server, retries, breakers, peak-EWMA P2C). Rounds alternate
//! A B A B …; reported: calls per second (median round) and B/A. Goal (issue 6): ≥ 0.90×.

#![allow(missing_docs)]

use mesh_core::Snapshot;
use mesh_test::echo::pb::EchoRequest;
use mesh_test::echo::pb::echo_client::EchoClient;

const HOST: &str = "echo.bench.local";
const CALLERS: usize = 16;

async fn round<C>(client: &EchoClient<C>, secs: f64) -> f64
where
    C: tonic::client::GrpcService<tonic::body::Body> + Clone + Send + 'static,
    C::Future: Send,
    C::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <C::ResponseBody as http_body::Body>::Error:
        Into<Box<dyn std::error::Error + Send + Sync>> + Send,
    C::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    mesh_benches::closed_loop_with(CALLERS, secs, |l| {
        let mut client = client.clone();
        async move {
            while l.running() {
                client
                    .echo(EchoRequest {
                        message: "bench".into(),
                    })
                    .await
                    .expect("call");
                l.done();
            }
        }
    })
    .await
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, secs) = if quick { (2, 1.0) } else { (5, 3.0) };
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("server".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let backend = mesh_test::backend::grpc_echo("bench").await;
                addr_tx.send(backend.addr).unwrap();
                std::future::pending::<()>().await;
            });
        })
        .unwrap();
    let addr = addr_rx.recv().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let plain = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let plain = EchoClient::new(plain);
        let mesh = mesh_tower::Client::from_snapshot(Snapshot::new(mesh_benches::split_mesh(HOST, addr)));
        let mesh = EchoClient::new(mesh_grpc::Channel::from_client(mesh, &format!("{HOST}:80")).unwrap());
        round(&plain, 0.3).await;
        round(&mesh, 0.3).await;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            a.push(round(&plain, secs).await);
            b.push(round(&mesh, secs).await);
        }
        let (a, b) = (mesh_benches::median(&mut a), mesh_benches::median(&mut b));
        println!("grpc_load unary ({CALLERS} callers, {rounds} rounds x {secs} s): tonic Channel {a:.0} calls/s, mesh_grpc::Channel {b:.0} calls/s, mesh/tonic {:.2}x", b / a);
    });
}
