//! The interop peers themselves work, without any control plane: a stock Envoy proxies to a
//! test backend, and the stock grpcio client calls a test gRPC backend directly.
//!
//! Run through `scripts/test.sh -p mesh-tests --test interop_peers` (it provides Envoy and grpcio).

use mesh_test::backend;
use std::time::Duration;

use mesh_test::envoy::{Envoy, EnvoyOptions};
use mesh_test::grpcio::{self, GrpcioClient, Load};

#[tokio::test]
async fn static_envoy_proxies_http_to_backend() {
    let web = backend::http("web-v1").await;
    let envoy = Envoy::start_static(web.addr).await;

    let reply = envoy.fetch("/some/path", &[]).await;
    assert_eq!(reply.status, 200, "log:\n{}", envoy.log_tail());
    assert_eq!(reply.body, "web-v1");
    assert_eq!(reply.headers["x-backend"], "web-v1");
    assert_eq!(reply.headers["x-path"], "/some/path");
    // Envoy answered, not the backend directly.
    assert!(reply.headers.contains_key("x-envoy-upstream-service-time"));

    let (status, body) = envoy.get("/again", &[("host", "anything.example")]).await;
    assert_eq!((status.as_u16(), body.as_str()), (200, "web-v1"));
    assert_eq!(web.hits(), 2);

    let stats = envoy.stat("cluster.static_upstream.upstream_rq_200").await;
    assert_eq!(stats, Some(2), "admin stats should count both requests");
}

#[tokio::test]
async fn grpcio_calls_echo_backend_directly() {
    let echo = backend::grpc_echo("echo-v1").await;
    let target = echo.addr.to_string();

    let results = GrpcioClient::run(&target, None, Load::Calls(5)).await;

    assert_eq!(results.calls.len(), 5, "stderr:\n{}", results.stderr);
    assert!(
        results.errors().is_empty(),
        "errors: {:?}",
        results.errors()
    );
    assert_eq!(results.counts().get("echo-v1"), Some(&5));
    assert_eq!(echo.hits(), 5);
    assert!(results.calls.windows(2).all(|w| w[0].t <= w[1].t));
}

#[tokio::test]
async fn grpcio_reports_errors_when_backend_is_gone() {
    let echo = backend::grpc_echo("echo-v1").await;
    let target = echo.addr.to_string();
    let client = GrpcioClient::spawn(
        &target,
        None,
        Load::For {
            duration: Duration::from_secs(2),
            interval: Duration::from_millis(50),
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    drop(echo);
    let results = client.finish().await;

    assert!(results.ok() > 0, "some calls before the drop: {results:?}");
    assert!(
        !results.errors().is_empty(),
        "calls after the drop fail: {results:?}"
    );
    let first_error = results.errors()[0].t;
    assert!(
        results.window(first_error, f64::MAX).ok() == 0,
        "no success after the backend stopped: {results:?}"
    );
}

/// The xDS bootstrap is valid and makes Envoy open the right ADS stream to `xds_addr`
/// (state-of-the-world or delta). An HTTP backend stands in for the ADS server: it records
/// the gRPC method Envoy calls (and answers it with a non-gRPC reply, which Envoy retries).
#[tokio::test]
async fn xds_envoy_opens_ads_stream_of_the_chosen_kind() {
    for (delta, method) in [
        (false, "StreamAggregatedResources"),
        (true, "DeltaAggregatedResources"),
    ] {
        let stand_in = backend::http("not-an-ads-server").await;
        let envoy = Envoy::start(EnvoyOptions {
            node_id: "envoy-node-1".into(),
            xds_addr: stand_in.addr,
            delta,
            route_config_name: "routes".into(),
        })
        .await;
        assert_ne!(envoy.listener_addr().port(), 0);
        assert_ne!(envoy.listener_addr(), envoy.admin_addr());

        let expected = format!("/envoy.service.discovery.v3.AggregatedDiscoveryService/{method}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while !stand_in.paths().contains(&expected) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "Envoy never called {expected}; saw {:?}\n{}",
                stand_in.paths(),
                envoy.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let server_info = envoy.admin_get("/server_info").await;
        assert!(server_info.contains("envoy-node-1"), "{server_info}");
    }
}

/// grpcio accepts the bootstrap from `write_bootstrap` and opens an ADS stream to the
/// server it names; with nothing serving xDS there, the (only, waiting) call times out.
#[tokio::test]
async fn grpcio_xds_target_uses_bootstrap_server() {
    let stand_in = backend::http("not-an-ads-server").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let bootstrap = grpcio::write_bootstrap(dir.path(), stand_in.addr, "grpcio-node-1");

    let results =
        GrpcioClient::run("xds:///echo.test:50051", Some(&bootstrap), Load::Calls(1)).await;

    assert_eq!(results.ok(), 0, "{results:?}");
    let error = results.errors()[0].error.clone().unwrap_or_default();
    assert!(
        error.starts_with("DEADLINE_EXCEEDED"),
        "{error}\n{}",
        results.stderr
    );
    let ads = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
    assert!(
        stand_in.paths().iter().any(|p| p == ads),
        "{:?}",
        stand_in.paths()
    );
}
