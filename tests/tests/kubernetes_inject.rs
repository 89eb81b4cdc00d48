//! Injection for library users, against the fake API server: the webhook (HTTPS, a serving
//! certificate from the mesh CA) patches an opted-in pod with the gRPC xDS bootstrap, the trust
//! bundle and a projected token; with the files the kubelet would mount, unmodified library
//! code (`Bootstrap::from_file`, `IdentityOptions::from_bootstrap`) gets its config and its
//! SPIFFE certificate, authenticated by TokenReview, and a stock grpcio client calls through the
//! same bootstrap. The leader keeps the webhook's caBundle.
//!
//! Nothing here ran against a real cluster.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use control_plane::ca::CaOptions;
use control_plane::k8s::KubeOptions;
use control_plane::k8s::inject::InjectionOptions;
use control_plane::server::{ControlPlane, Options};
use http_body_util::{BodyExt, Full};
use mesh_test::kube_api::FakeApiServer;
use mesh_xds_client::identity::{IdentityClient, IdentityOptions};
use mesh_xds_client::{Bootstrap, XdsClient};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::time::Instant;

const NS: &str = "shop";

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

async fn start(api: &FakeApiServer) -> ControlPlane {
    let xds_addr = free_port();
    let mut kube = KubeOptions::new(api.client(), "mesh-system", "cp-0");
    kube.ca_secret = Some("mesh-ca".into());
    kube.lease_duration = Duration::from_secs(2);
    kube.injection = Some(InjectionOptions {
        addr: "127.0.0.1:0".parse().unwrap(),
        dns_names: vec!["localhost".into()],
        xds_address: xds_addr.to_string(),
        webhook_config: Some("mesh-control-plane-mesh-system".into()),
    });
    ControlPlane::start(Options {
        kubernetes: Some(kube),
        ca: Some(CaOptions::default()),
        xds_addr,
        admin_addr: "127.0.0.1:0".parse().unwrap(),
        ..Options::default()
    })
    .await
    .expect("control plane starts")
}

/// `POST /inject` over TLS, trusting only the mesh CA's root for `localhost`.
async fn review(addr: SocketAddr, root_pem: &str, pod: &Value) -> Value {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(root_pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("the webhook's certificate verifies for localhost");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let body = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "7c1f", "namespace": NS, "operation": "CREATE",
                    "kind": {"group": "", "version": "v1", "kind": "Pod"}, "object": pod},
    });
    let req = http::Request::post("/inject")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

/// Applies the `add` operations of a JSON patch, as the API server does.
fn apply(pod: &mut Value, ops: &[Value]) {
    for op in ops {
        assert_eq!(op["op"], "add", "{op}");
        let path = op["path"].as_str().unwrap();
        let (parent, key) = path.rsplit_once('/').unwrap();
        let key = key.replace("~1", "/").replace("~0", "~");
        let target = pod
            .pointer_mut(parent)
            .unwrap_or_else(|| panic!("no {parent}"));
        match target {
            Value::Array(a) if key == "-" => a.push(op["value"].clone()),
            Value::Object(o) => {
                o.insert(key, op["value"].clone());
            }
            other => panic!("cannot add at {path} in {other}"),
        }
    }
}

fn pod(labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "reviews-v1-5d8f9c7b9-", "namespace": NS, "labels": labels,
                     "ownerReferences": [{"kind": "ReplicaSet", "name": "reviews-v1-5d8f9c7b9"}]},
        "spec": {"serviceAccountName": "reviews", "containers": [
            {"name": "app", "image": "reviews:1", "env": [{"name": "PORT", "value": "9080"}]},
        ]},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_pod_gets_its_config_and_identity_with_no_kubernetes_code() {
    let api = FakeApiServer::start().await;
    api.on_token_review(Arc::new(|token: &str, audiences: &[String]| {
        if token == "projected-token-of-reviews" && audiences.iter().any(|a| a == "istio-ca") {
            json!({"authenticated": true, "audiences": ["istio-ca"],
                   "user": {"username": "system:serviceaccount:shop:reviews"}})
        } else {
            json!({"authenticated": false, "error": "invalid bearer token"})
        }
    }));
    api.apply(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "mesh-control-plane-mesh-system"},
        "webhooks": [{"name": "inject.meshlib.dev", "clientConfig": {"service":
            {"name": "mesh-control-plane", "namespace": "mesh-system", "path": "/inject", "port": 443}}}],
    }));
    api.apply(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "ratings", "namespace": NS},
        "spec": {"ports": [{"name": "http", "port": 9080}]},
    }));
    // A real gRPC backend behind a Service, for a stock grpcio client in the injected pod.
    let echo = mesh_test::backend::grpc_echo("echo-k8s").await;
    api.apply(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "echo", "namespace": NS},
        "spec": {"ports": [{"name": "grpc", "port": 50051}]},
    }));
    api.apply(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "echo-1", "namespace": NS,
                     "labels": {"kubernetes.io/service-name": "echo"}},
        "addressType": "IPv4",
        "ports": [{"name": "grpc", "port": echo.addr.port()}],
        "endpoints": [{"addresses": ["127.0.0.1"]}],
    }));
    let cp = start(&api).await;
    let root = cp.ca().unwrap().root_pem().to_string();
    let webhook = cp.injection_addr().unwrap();

    // Not opted in: allowed, unchanged.
    let plain = review(webhook, &root, &pod(json!({"app": "reviews"}))).await;
    assert_eq!(plain["response"]["uid"], "7c1f");
    assert_eq!(plain["response"]["allowed"], true);
    assert!(plain["response"]["patch"].is_null());

    // Opted in: patched.
    let mut p = pod(json!({"app": "reviews", "version": "v1", "meshlib.dev/inject": "true"}));
    let answer = review(webhook, &root, &p).await;
    assert_eq!(answer["response"]["patchType"], "JSONPatch");
    let patch: k8s_openapi::ByteString =
        serde_json::from_value(answer["response"]["patch"].clone()).unwrap();
    let ops: Vec<Value> = serde_json::from_slice(&patch.0).unwrap();
    apply(&mut p, &ops);
    let container = &p["spec"]["containers"][0];
    let env: Vec<&str> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(env, ["PORT", "GRPC_XDS_BOOTSTRAP"]);
    assert_eq!(
        container["env"][1]["value"],
        "/etc/mesh/bootstrap/bootstrap.json"
    );
    let token = &p["spec"]["volumes"][1]["projected"]["sources"][0]["serviceAccountToken"];
    assert_eq!(token["audience"], "istio-ca");

    // The kubelet's part: the downwardAPI files and the projected token (under a temp dir here).
    let dir = tempfile::tempdir().unwrap();
    let (etc, run) = (dir.path().join("etc"), dir.path().join("run"));
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&run).unwrap();
    let annotations = &p["metadata"]["annotations"];
    let bootstrap = annotations["meshlib.dev/bootstrap"]
        .as_str()
        .unwrap()
        .replace("/etc/mesh/bootstrap", etc.to_str().unwrap())
        .replace("/var/run/secrets/mesh/tokens", run.to_str().unwrap());
    std::fs::write(etc.join("bootstrap.json"), bootstrap).unwrap();
    std::fs::write(
        etc.join("root-cert.pem"),
        annotations["meshlib.dev/root-cert"].as_str().unwrap(),
    )
    .unwrap();
    std::fs::write(run.join("mesh-token"), "projected-token-of-reviews").unwrap();

    // The application's part: library calls only, no Kubernetes code.
    let bootstrap = Bootstrap::from_file(&etc.join("bootstrap.json")).unwrap();
    let identity = IdentityOptions::from_bootstrap(&bootstrap)
        .unwrap()
        .expect("the bootstrap names the CA");
    let identity = IdentityClient::start(identity);
    let svid = identity.ready(Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        svid.id.to_string(),
        "spiffe://cluster.local/ns/shop/sa/reviews"
    );
    let xds = XdsClient::start(bootstrap, Default::default());
    let target = "ratings.shop.svc.cluster.local:9080";
    let _t = xds.subscribe(target);
    xds.ready(target, Duration::from_secs(10)).await.unwrap();
    let node = cp
        .registry()
        .list()
        .into_iter()
        .find(|c| !c.node_id.is_empty())
        .expect("the pod's client is connected");
    assert_eq!(
        node.node_id,
        "sidecar~0.0.0.0~reviews-v1.shop~shop.svc.cluster.local"
    );

    // A stock gRPC client (grpcio) in the same pod reads the same bootstrap: our CA settings are
    // a top-level key it ignores, not a certificate provider plugin it would refuse.
    let results = mesh_test::grpcio::GrpcioClient::run(
        "xds:///echo.shop.svc.cluster.local:50051",
        Some(&etc.join("bootstrap.json")),
        mesh_test::grpcio::Load::Calls(5),
    )
    .await;
    assert!(
        results.errors().is_empty(),
        "grpcio with the injected bootstrap: {:?}\n{}",
        results.errors(),
        results.stderr
    );
    assert_eq!(results.counts().get("echo-k8s"), Some(&5));

    // The leader wrote the CA root into the webhook configuration.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let config = api
            .get(
                "admissionregistration.k8s.io/v1",
                "MutatingWebhookConfiguration",
                "",
                "mesh-control-plane-mesh-system",
            )
            .unwrap();
        let bundle = &config["webhooks"][0]["clientConfig"]["caBundle"];
        if let Ok(b) = serde_json::from_value::<k8s_openapi::ByteString>(bundle.clone()) {
            assert_eq!(String::from_utf8(b.0).unwrap(), root);
            break;
        }
        assert!(Instant::now() < deadline, "caBundle not set: {config}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
