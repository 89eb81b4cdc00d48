//! A stock grpcio 1.85 xDS-enabled *server* (gRFC A36) and a stock grpcio xDS client take their
//! security from our control plane: certificates issued by its CA (handed to grpcio through its
//! standard `file_watcher` certificate provider), the server's inbound listener (mTLS required,
//! AuthorizationPolicy as RBAC filters) and the client's cluster (`ISTIO_MUTUAL`, gRFC A29).
//! The allowed caller's calls succeed over mTLS with its SPIFFE ID seen by the server; another
//! mesh identity gets PERMISSION_DENIED; both grpcio peers ACK everything they were sent.

use std::net::SocketAddr;
use std::time::Duration;

use control_plane::server::ControlPlane;
use mesh_core::identity::{SpiffeId, Svid};
use mesh_test::ca::SvidFiles;
use mesh_test::grpcio::{GrpcioClient, GrpcioServer, Load, write_bootstrap_with};
use mesh_test::mesh::{get, start_with_ca};
use mesh_xds_client::identity::{IdentityClient, IdentityOptions, Token};
use serde_json::json;

const HOST: &str = "echo.shop.svc.cluster.local";
const PORT: u16 = 50051;

fn config(server: SocketAddr) -> String {
    format!(
        r#"
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: echo, namespace: shop}}
spec:
  hosts: [{HOST}]
  ports: [{{number: {PORT}, name: grpc, protocol: GRPC, targetPort: {port}}}]
  resolution: STATIC
  endpoints: [{{address: "{ip}", serviceAccount: echo}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: echo, namespace: shop}}
spec:
  host: {HOST}
  trafficPolicy:
    tls: {{mode: ISTIO_MUTUAL}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: echo-callers, namespace: shop}}
spec:
  action: ALLOW
  rules:
  - from: [{{source: {{principals: ["cluster.local/ns/shop/sa/caller"]}}}}]
"#,
        ip = server.ip(),
        port = server.port()
    )
}

/// A certificate for `sa` from the control plane's CA, fetched the way a workload does.
async fn svid(cp: &ControlPlane, sa: &str) -> Svid {
    let client = IdentityClient::start(IdentityOptions::new(
        format!("http://{}", cp.xds_addr()),
        SpiffeId::new("cluster.local", "shop", sa).unwrap(),
        Token::Inline(format!("{sa}-token-0123456789")),
    ));
    client
        .ready(Duration::from_secs(10))
        .await
        .expect("a certificate")
}

/// The client's status as `/debug/syncz` shows it.
async fn synced(cp: &ControlPlane, node: &str) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let reply = get(cp.admin_addr(), "/debug/syncz", &[]).await;
        let v: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        if let Some(c) = v["clients"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["node_id"] == node && c["status"] == "SYNCED")
        {
            return c.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{node} never synced: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn grpcio_server_and_client_get_mtls_and_authorization_from_the_mesh() {
    let dir = tempfile::tempdir().unwrap();
    let server_addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let config_dir = dir.path().join("config");
    std::fs::create_dir(&config_dir).unwrap();
    std::fs::write(config_dir.join("echo.yaml"), config(server_addr)).unwrap();
    let tokens: Vec<String> = ["echo", "caller", "intruder"]
        .iter()
        .map(|sa| format!("{sa}-token-0123456789"))
        .collect();
    let cp = start_with_ca(
        dir.path(),
        Some(config_dir),
        "127.0.0.1:0".parse().unwrap(),
        &[
            (&tokens[0], "shop", "echo"),
            (&tokens[1], "shop", "caller"),
            (&tokens[2], "shop", "intruder"),
        ],
    )
    .await;

    let bootstrap = |node: &str, files: &SvidFiles| {
        write_bootstrap_with(
            dir.path(),
            cp.xds_addr(),
            node,
            json!({
                "certificate_providers": files.certificate_providers(),
                "server_listener_resource_name_template": mesh_core::inbound::INBOUND_TEMPLATE,
            }),
        )
    };
    let echo_files = SvidFiles::write(dir.path(), "echo", &svid(&cp, "echo").await);
    let server = GrpcioServer::spawn(
        server_addr,
        "grpcio-echo",
        &bootstrap("grpcio-server", &echo_files),
    )
    .await;
    // The server ACKed its inbound listener (mTLS chain + RBAC filter) and nothing was NACKed.
    let status = synced(&cp, "grpcio-server").await;
    assert_eq!(status["types"]["LDS"]["nacks"], 0, "{status:#}");
    let inbound = format!("xds.istio.io/grpc/lds/inbound/{server_addr}");
    assert!(
        status["types"]["LDS"]["resources"][&inbound].is_object(),
        "the server did not subscribe to {inbound}: {status:#}"
    );

    let target = format!("xds:///{HOST}:{PORT}");
    let caller_files = SvidFiles::write(dir.path(), "caller", &svid(&cp, "caller").await);
    let running = GrpcioClient::spawn_with(
        &target,
        Some(&bootstrap("grpcio-caller", &caller_files)),
        Load::For {
            duration: Duration::from_secs(2),
            interval: Duration::from_millis(20),
        },
        &["--xds-creds"],
    )
    .await;
    // While it calls: it ACKed its listener, route, cluster (with the A29 mTLS transport socket)
    // and endpoints.
    let status = synced(&cp, "grpcio-caller").await;
    for t in ["LDS", "RDS", "CDS", "EDS"] {
        assert_eq!(status["types"][t]["nacks"], 0, "{t} NACKed: {status:#}");
    }
    let results = running.finish().await;
    if results.ok() < 10 || !results.errors().is_empty() {
        panic!(
            "calls failed: {:?}\n--- client stderr ---\n{}\n--- server stderr ---\n{}",
            results.errors(),
            results.stderr,
            server.stop().await
        );
    }
    assert!(
        results
            .calls
            .iter()
            .all(|c| c.message.as_deref() == Some("spiffe://cluster.local/ns/shop/sa/caller")),
        "the server did not see the caller's SPIFFE ID over mTLS: {:?}",
        results.calls
    );

    let intruder_files = SvidFiles::write(dir.path(), "intruder", &svid(&cp, "intruder").await);
    let denied = GrpcioClient::run_with(
        &target,
        Some(&bootstrap("grpcio-intruder", &intruder_files)),
        Load::Calls(2),
        &["--xds-creds"],
    )
    .await;
    assert_eq!(denied.ok(), 0, "{:?}", denied.calls);
    assert!(
        denied.errors().iter().all(|c| c
            .error
            .as_deref()
            .unwrap_or("")
            .starts_with("PERMISSION_DENIED")),
        "{:?}\n{}",
        denied.errors(),
        denied.stderr
    );
    drop(server);
}
