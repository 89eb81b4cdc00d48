//! tonic's own `Server::builder()` meshed with `mesh_grpc::server::{incoming, MeshServerLayer}`:
//! mTLS connections from the mesh acceptor, the caller's SPIFFE ID in the handler's request
//! extensions, RBAC refusals as PERMISSION_DENIED, plaintext refused — called through a
//! `mesh_grpc::Channel` whose cluster is `ISTIO_MUTUAL` from the YAML; Istio's metrics with the
//! caller's principal and `grpc_response_status`.

use std::net::SocketAddr;
use std::time::Duration;

use mesh_core::Snapshot;
use mesh_core::StringMatch;
use mesh_core::identity::PeerIdentity;
use mesh_core::rbac::{Permission, Policy, Principal, Rbac, RbacAction};
use mesh_grpc::server::{MeshServerLayer, incoming};
use mesh_test::ca::TestCa;
use mesh_test::echo::pb::echo_client::EchoClient;
use mesh_test::echo::pb::echo_server::{Echo, EchoServer};
use mesh_test::echo::pb::{EchoReply, EchoRequest};
use mesh_test::mesh::TestMesh;
use mesh_tower::server::Acceptor;
use mesh_tower::telemetry::{Telemetry, Workload};
use mesh_xds_client::{Bootstrap, Options, XdsClient};
use tokio::net::TcpListener;
use tonic::{Code, Status};

const HOST: &str = "echo.default.svc.cluster.local";

/// Answers with the caller's identity, as the handler sees it.
struct WhoAmI;

#[tonic::async_trait]
impl Echo for WhoAmI {
    async fn echo(
        &self,
        req: tonic::Request<EchoRequest>,
    ) -> Result<tonic::Response<EchoReply>, Status> {
        let who = req
            .extensions()
            .get::<PeerIdentity>()
            .map_or_else(|| "nobody".to_string(), |p| p.0.to_string());
        Ok(tonic::Response::new(EchoReply {
            message: who,
            backend: "tonic".into(),
        }))
    }

    type EchoStreamStream = tokio_stream::Empty<Result<EchoReply, Status>>;

    async fn echo_stream(
        &self,
        _: tonic::Request<EchoRequest>,
    ) -> Result<tonic::Response<Self::EchoStreamStream>, Status> {
        Ok(tonic::Response::new(tokio_stream::empty()))
    }
}

fn config(server: SocketAddr) -> String {
    format!(
        r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: echo, namespace: default}}
spec:
  hosts: [{HOST}]
  ports: [{{number: 50051, name: grpc, protocol: GRPC, targetPort: {port}}}]
  resolution: STATIC
  endpoints: [{{address: 127.0.0.1, serviceAccount: echo}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: echo, namespace: default}}
spec:
  host: {HOST}
  trafficPolicy: {{tls: {{mode: ISTIO_MUTUAL}}}}
"#,
        port = server.port()
    )
}

#[tokio::test]
async fn tonic_server_builder_gets_mtls_identity_and_authorization() {
    let ca = TestCa::new("cluster.local");
    let hour = Duration::from_secs(3600);
    let server_id = ca.id("default", "echo");
    let intruder = ca.id("default", "intruder");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();

    let mut deny = Rbac::new(RbacAction::Deny);
    deny.policies.push((
        "default/no-intruders".into(),
        Policy {
            permissions: vec![Permission::Any],
            principals: vec![Principal::Authenticated(Some(StringMatch::Exact(
                intruder.to_string(),
            )))],
        },
    ));
    let prometheus = mesh_tower::telemetry::prometheus().unwrap();
    let server_svid = Snapshot::new(Some(ca.svid(&server_id, hour)));
    let telemetry = Telemetry::builder()
        .workload(Workload::new("echo-v1", "default"))
        .identity(server_svid.clone())
        .build();
    let acceptor = Acceptor::new(server_svid);
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(MeshServerLayer::new(Snapshot::new(vec![deny])).telemetry(telemetry))
            .add_service(EchoServer::new(WhoAmI))
            .serve_with_incoming(incoming(listener, acceptor)),
    );

    let mesh = TestMesh::start(&[("echo.yaml", &config(addr))]).await;
    let xds = XdsClient::start(
        Bootstrap::insecure(&mesh.cp().xds_addr().to_string(), "callers"),
        Options::default(),
    );
    let target = format!("xds:///{HOST}:50051");
    let _sub = xds.subscribe(&format!("{HOST}:50051"));
    xds.ready(&format!("{HOST}:50051"), Duration::from_secs(10))
        .await
        .unwrap();
    let call = |sa: &str| {
        let identity = Snapshot::new(Some(ca.svid(&ca.id("default", sa), hour)));
        let channel = mesh_grpc::Channel::builder(&xds)
            .identity(identity)
            .connect(&target)
            .unwrap();
        async move {
            EchoClient::new(channel)
                .echo(EchoRequest {
                    message: "hi".into(),
                })
                .await
        }
    };

    let reply = call("caller").await.expect("mTLS call").into_inner();
    assert_eq!(reply.message, ca.id("default", "caller").to_string());

    let denied = call("intruder").await.expect_err("denied by policy");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert!(
        denied.message().contains("default/no-intruders"),
        "{denied:?}"
    );

    // The layer's metrics: the caller by its SPIFFE ID, the gRPC status as its own label
    // (PERMISSION_DENIED is 7), recorded once the response is done.
    let series = |sa: &str, grpc: &str| {
        let caller = ca.id("default", sa).to_string();
        let want = [
            ("reporter=\"destination\"".to_string()),
            format!("source_principal=\"{caller}\""),
            format!("destination_principal=\"{server_id}\""),
            "destination_workload=\"echo-v1\"".to_string(),
            "request_protocol=\"grpc\"".to_string(),
            "connection_security_policy=\"mutual_tls\"".to_string(),
            "response_code=\"200\"".to_string(),
            format!("grpc_response_status=\"{grpc}\""),
        ];
        prometheus
            .render()
            .lines()
            .filter(|l| l.starts_with("istio_requests_total{"))
            .filter(|l| want.iter().all(|w| l.contains(w.as_str())))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum::<f64>()
    };
    for _ in 0..50 {
        if series("caller", "0") + series("intruder", "7") >= 2.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(series("caller", "0"), 1.0, "{}", prometheus.render());
    assert_eq!(series("intruder", "7"), 1.0, "{}", prometheus.render());

    let plain = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await;
    if let Ok(channel) = plain {
        let refused = EchoClient::new(channel)
            .echo(EchoRequest {
                message: "hi".into(),
            })
            .await
            .expect_err("plaintext is refused under STRICT");
        // tonic reports the closed connection as a transport error.
        assert!(
            matches!(refused.code(), Code::Unavailable | Code::Unknown),
            "{refused:?}"
        );
    }
}
