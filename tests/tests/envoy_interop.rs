//! A stock Envoy 1.40, fed by our control plane over ADS (state-of-the-world and delta), ACKs every
//! resource and routes by the weighted split and the header match written in the YAML; an edit of
//! the YAML moves its traffic within a second without a failed request.

mod common;

use std::time::Duration;

use mesh_test::backend;
use mesh_test::envoy::{Envoy, EnvoyOptions};
use mesh_test::mesh::TestMesh;
use tokio::time::Instant;

const HOST: &str = "web.mesh.local";
const PORT: u16 = 8080;

async fn envoy_follows_the_mesh(delta: bool) {
    let v1 = backend::http("web-v1").await;
    let v2 = backend::http("web-v2").await;
    let mesh = TestMesh::start(&[(
        "web.yaml",
        &common::two_version_service(HOST, PORT, "http", v1.addr, v2.addr, 75, 25),
    )])
    .await;
    let node = if delta { "envoy-delta" } else { "envoy-sotw" };
    let envoy = Envoy::start(EnvoyOptions {
        node_id: node.into(),
        xds_addr: mesh.cp().xds_addr(),
        delta,
        route_config_name: format!("{HOST}:{PORT}"),
    })
    .await;
    envoy.wait_ready(Duration::from_secs(30)).await;

    // Every resource ACKed: 1 route table, 3 clusters (default + 2 subsets), 3 assignments.
    let status = mesh.wait_synced(node, 7, Duration::from_secs(10)).await;
    assert_eq!(
        status["stream"],
        if delta { "delta" } else { "state-of-the-world" }
    );
    for t in ["RDS", "CDS", "EDS"] {
        assert_eq!(status["types"][t]["nacks"], 0, "{t} NACKed: {status:#}");
    }

    let host = [("host", HOST)];
    // The weighted split: 75/25 over 400 requests (±4 standard deviations is ±0.087).
    let mut hits_v1 = 0;
    for _ in 0..400 {
        let (s, body) = envoy.get("/", &host).await;
        assert_eq!(s, 200, "{body}");
        if body == "web-v1" {
            hits_v1 += 1;
        } else {
            assert_eq!(body, "web-v2");
        }
    }
    let share = common::share(hits_v1, 400);
    assert!(
        (0.66..=0.84).contains(&share),
        "v1 share {share}, want about 0.75"
    );

    // The header match: always v2.
    for _ in 0..50 {
        let (s, body) = envoy
            .get("/", &[("host", HOST), ("x-canary", "true")])
            .await;
        assert_eq!((s.as_u16(), body.as_str()), (200, "web-v2"));
    }

    // Edit the YAML: everything to v2. Keep sending meanwhile; nothing may fail, and a second
    // after the write every request must reach v2.
    let written = Instant::now();
    mesh.write(
        "web.yaml",
        &common::two_version_service(HOST, PORT, "http", v1.addr, v2.addr, 0, 100),
    );
    let mut late_v1 = Vec::new();
    while written.elapsed() < Duration::from_millis(1800) {
        let sent = written.elapsed();
        let (s, body) = envoy.get("/", &host).await;
        assert_eq!(s, 200, "request failed during the config change: {body}");
        if sent > Duration::from_secs(1) && body != "web-v2" {
            late_v1.push(sent);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        late_v1.is_empty(),
        "v1 still served {} requests more than 1 s after the edit",
        late_v1.len()
    );
    mesh.wait_synced(node, 7, Duration::from_secs(5)).await;

    // What Envoy was sent, as JSON: the route table with the new split.
    let dump = mesh
        .admin_json(&format!("/debug/config_dump?node={node}"))
        .await;
    let rds = &dump["clients"][0]["resources"]["RDS"][0];
    assert_eq!(rds["name"], format!("{HOST}:{PORT}"));
    assert_eq!(rds["state"], "ACKED");
    let routes = rds["resource"]["virtual_hosts"][0]["routes"].to_string();
    assert!(routes.contains(r#""weight":100"#), "{dump:#}");

    // The control plane's own metrics saw it all.
    let metrics = mesh_test::mesh::get(mesh.cp().admin_addr(), "/metrics", &[])
        .await
        .body;
    for series in [
        "mesh_xds_connected_clients",
        "mesh_xds_pushes_total{type=\"RDS\"}",
        "mesh_xds_acks_total{type=\"CDS\"}",
        "mesh_xds_push_latency_seconds_bucket",
        "mesh_config_errors",
    ] {
        assert!(
            metrics.contains(series),
            "/metrics lacks {series}:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn envoy_state_of_the_world() {
    envoy_follows_the_mesh(false).await;
}

#[tokio::test]
async fn envoy_delta() {
    envoy_follows_the_mesh(true).await;
}
