//! Bad input never breaks anything else: each invalid document is rejected with file, document,
//! field and reason, every other document keeps being served, and the control plane stays up.

use std::time::Duration;

use mesh_test::mesh::TestMesh;

const WEB: &str = r#"apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: web, namespace: default }
spec:
  hosts: [web.mesh.local]
  ports: [{ number: 8080, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints:
  - address: 127.0.0.1
    ports: { http: 18080 }
    labels: { version: v1 }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: web, namespace: default }
spec:
  host: web.mesh.local
  subsets:
  - { name: v1, labels: { version: v1 } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: web, namespace: default }
spec:
  hosts: [web.mesh.local]
  http:
  - corsPolicy: { allowOrigins: [{ exact: "*" }] }
    route:
    - destination: { host: web.mesh.local, subset: v1 }
"#;

const BROKEN: &str = r#"apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: zero, namespace: default }
spec:
  hosts: [a.mesh.local]
  http:
  - route:
    - destination: { host: web.mesh.local, subset: v1 }
      weight: 0
    - destination: { host: web.mesh.local }
      weight: 0
---
this: [is not: valid yaml
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: regex, namespace: default }
spec:
  hosts: [b.mesh.local]
  http:
  - match:
    - uri: { regex: "/api/(v1" }
    route:
    - destination: { host: web.mesh.local }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ghost, namespace: default }
spec:
  hosts: [c.mesh.local]
  http:
  - route:
    - destination: { host: ghost.mesh.local }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: abc, namespace: default }
spec:
  hosts: [a.mesh.local, b.mesh.local, c.mesh.local]
  ports: [{ number: 8080, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints:
  - address: 127.0.0.1
    ports: { http: 18081 }
"#;

fn messages(status: &serde_json::Value, severity: &str) -> Vec<String> {
    status["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["severity"] == severity)
        .map(|d| d["message"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn invalid_documents_are_rejected_one_by_one_and_the_rest_is_served() {
    let mesh = TestMesh::start(&[("web.yaml", WEB), ("broken.yaml", BROKEN)]).await;
    let status = mesh.admin_json("/debug/config_status").await;
    let errors = messages(&status, "error");
    let find = |needle: &str| {
        errors
            .iter()
            .find(|m| m.contains(needle))
            .unwrap_or_else(|| panic!("no error mentioning {needle:?} in {errors:#?}"))
            .clone()
    };
    assert!(find("sum to zero").contains("broken.yaml: document 0 (VirtualService default/zero)"));
    assert!(
        find("broken.yaml: document 1").contains("YAML"),
        "{errors:#?}"
    );
    assert!(find("/api/(v1").contains("broken.yaml: document 2 (VirtualService default/regex), field spec.http[0].match[0].uri.regex"));
    assert!(find("ghost.mesh.local").contains("field spec.http[0].route[0].destination"));

    // The first load already shows in the metrics.
    let metrics = mesh_test::mesh::get(mesh.cp().admin_addr(), "/metrics", &[])
        .await
        .body;
    assert!(
        metrics.lines().any(|l| l == "mesh_config_errors 4"),
        "{metrics}"
    );

    // The unsupported field is a warning with its path; the document still applies.
    let warnings = messages(&status, "warning");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("spec.http[0].corsPolicy")),
        "{warnings:#?}"
    );

    // web.yaml is served in full: its route goes to the v1 subset.
    let snap = mesh.cp().snapshot().load_full();
    let table = &mesh.cp().config_status().resources.route_tables["web.mesh.local:8080"];
    let routes = serde_json::to_value(table).unwrap();
    assert!(
        routes
            .to_string()
            .contains("outbound|8080|v1|web.mesh.local"),
        "{routes:#}"
    );
    assert!(
        snap.get(
            mesh_xds_client_types::CLUSTER,
            "outbound|8080|v1|web.mesh.local"
        )
        .is_some()
    );

    // Breaking web.yaml's VirtualService later keeps the rest of web.yaml (and the control plane).
    mesh.write("web.yaml", &WEB.replace("subset: v1 }", "subset: v9 }"));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let status = mesh.admin_json("/debug/config_status").await;
    assert!(
        messages(&status, "error").iter().any(|m| m.contains("v9")),
        "{status:#}"
    );
    let snap = mesh.cp().snapshot().load_full();
    assert!(
        snap.get(
            mesh_xds_client_types::CLUSTER,
            "outbound|8080|v1|web.mesh.local"
        )
        .is_some()
    );
    assert!(
        snap.get(mesh_xds_client_types::ROUTE, "web.mesh.local:8080")
            .is_some()
    );
    let health = mesh_test::mesh::get(mesh.cp().admin_addr(), "/healthz", &[]).await;
    assert_eq!(health.status, 200);
}

mod mesh_xds_client_types {
    pub(crate) const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
    pub(crate) const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
}
