//! The CA on Kubernetes, against the fake API server (`mesh_test::kube_api`): a CSR is
//! authenticated with a service account token through the TokenReview API, the identity comes
//! from the token (never the CSR), expired and wrong-audience tokens are refused; the CA's root
//! lives in a Secret that every replica shares.
//!
//! Nothing here ran against a real cluster.

use std::sync::{Arc, Mutex};

use control_plane::ca::CaOptions;
use control_plane::k8s::KubeOptions;
use control_plane::server::{ControlPlane, Options};
use mesh_test::kube_api::FakeApiServer;
use mesh_xds_client::ca_proto::IstioCertificateRequest;
use mesh_xds_client::ca_proto::istio_certificate_service_client::IstioCertificateServiceClient;
use serde_json::{Value, json};
use tonic::Code;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

#[path = "../../control-plane/src/ca/test_support.rs"]
mod test_support;

const REVIEWS: &str = "spiffe://cluster.local/ns/shop/sa/reviews";
const RATINGS: &str = "spiffe://cluster.local/ns/shop/sa/ratings";

/// What a real API server answers for each test token: (token, audiences it is bound to,
/// user, valid).
const TOKENS: [(&str, &str, &str, bool); 4] = [
    (
        "tok-reviews",
        "istio-ca",
        "system:serviceaccount:shop:reviews",
        true,
    ),
    (
        "tok-expired",
        "istio-ca",
        "system:serviceaccount:shop:reviews",
        false,
    ),
    (
        "tok-vault",
        "vault",
        "system:serviceaccount:shop:reviews",
        true,
    ),
    ("tok-alice", "istio-ca", "alice", true),
];

/// Answers TokenReviews as the API server does; records the audiences asked for.
fn reviewer(asked: Arc<Mutex<Vec<Vec<String>>>>) -> mesh_test::kube_api::TokenReviewer {
    Arc::new(move |token: &str, audiences: &[String]| -> Value {
        asked.lock().unwrap().push(audiences.to_vec());
        let Some((_, bound, user, valid)) = TOKENS.iter().find(|t| t.0 == token) else {
            return json!({"authenticated": false, "error": "invalid bearer token"});
        };
        if !valid {
            return json!({"authenticated": false, "error": "service account token has expired"});
        }
        if !audiences.iter().any(|a| a == bound) {
            return json!({"authenticated": false, "error":
                format!("token audiences [{bound:?}] is invalid for the target audiences {audiences:?}")});
        }
        json!({"authenticated": true, "audiences": [bound], "user": {"username": user}})
    })
}

/// A control plane with a CA kept in Secret `mesh-system/mesh-ca`.
fn options(api: &FakeApiServer, replica: &str) -> Options {
    let mut kube = KubeOptions::new(api.client(), "mesh-system", replica);
    kube.ca_secret = Some("mesh-ca".into());
    Options {
        kubernetes: Some(kube),
        ca: Some(CaOptions::default()),
        xds_addr: "127.0.0.1:0".parse().unwrap(),
        admin_addr: "127.0.0.1:0".parse().unwrap(),
        ..Options::default()
    }
}

async fn start(api: &FakeApiServer, replica: &str) -> ControlPlane {
    ControlPlane::start(options(api, replica))
        .await
        .expect("control plane starts")
}

async fn create(cp: &ControlPlane, id: &str, token: &str) -> Result<Vec<String>, tonic::Status> {
    let mut client = IstioCertificateServiceClient::connect(format!("http://{}", cp.xds_addr()))
        .await
        .unwrap();
    let mut req = tonic::Request::new(IstioCertificateRequest {
        csr: test_support::csr_for(id),
        validity_duration: 3600,
        metadata: None,
    });
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    client
        .create_certificate(req)
        .await
        .map(|r| r.into_inner().cert_chain)
}

fn uri_sans(leaf_pem: &str) -> Vec<String> {
    let der = test_support::der(leaf_pem);
    let (_, leaf) = X509Certificate::from_der(&der).unwrap();
    leaf.subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some(u.to_string()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_token_gets_its_own_identity_and_nothing_else() {
    let api = FakeApiServer::start().await;
    let asked = Arc::new(Mutex::new(Vec::new()));
    api.on_token_review(reviewer(asked.clone()));
    let cp = start(&api, "cp-0").await;
    let root = test_support::der(cp.ca().unwrap().root_pem());

    // The token's own identity: issued, and the chain verifies up to the CA root.
    let chain = create(&cp, REVIEWS, "tok-reviews").await.expect("issued");
    assert_eq!(uri_sans(&chain[0]), [REVIEWS]);
    test_support::verify(&chain, &[root]).expect("chain verifies");

    // Another service account's identity with this token: refused, naming both.
    let e = create(&cp, RATINGS, "tok-reviews").await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(
        e.message().contains("ratings") && e.message().contains("reviews"),
        "{e:?}"
    );

    let refused = [
        ("tok-expired", "expired"),
        ("tok-vault", "audience"),
        ("tok-alice", "not to a service account"),
        ("tok-unknown", "invalid bearer token"),
    ];
    for (token, why) in refused {
        let e = create(&cp, REVIEWS, token).await.unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{token}: {e:?}");
        assert!(e.message().contains(why), "{token}: {}", e.message());
    }
    // Every review asked for the CA's audience only.
    let asked = asked.lock().unwrap();
    assert_eq!(asked.len(), 6);
    assert!(
        asked.iter().all(|a| a == &["istio-ca".to_string()]),
        "{asked:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_ca_kept_in_a_secret() {
    let api = FakeApiServer::start().await;
    api.on_token_review(reviewer(Arc::new(Mutex::new(Vec::new()))));
    let cp0 = start(&api, "cp-0").await;
    let secret = api
        .get("v1", "Secret", "mesh-system", "mesh-ca")
        .expect("created");
    let mut keys: Vec<&str> = secret["data"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "ca-cert.pem",
            "ca-key.pem",
            "cert-chain.pem",
            "root-cert.pem"
        ]
    );

    // A second replica (and a restart) loads the same root instead of making its own.
    let cp1 = start(&api, "cp-1").await;
    let root0 = cp0.ca().unwrap().root_pem().to_string();
    assert_eq!(cp1.ca().unwrap().root_pem(), root0);
    let chain = create(&cp1, REVIEWS, "tok-reviews").await.expect("issued");
    test_support::verify(&chain, &[test_support::der(&root0)]).expect("cp-0's root trusts it");
    drop(cp0);
    let again = start(&api, "cp-0").await;
    assert_eq!(again.ca().unwrap().root_pem(), root0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incomplete_ca_secret_is_refused_by_name() {
    let api = FakeApiServer::start().await;
    api.apply(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "mesh-ca", "namespace": "mesh-system"},
        "data": {"root-cert.pem": "LS0t"},
    }));
    let e = ControlPlane::start(options(&api, "cp-0"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("mesh-system/mesh-ca") && e.contains("ca-key.pem") && e.contains("lacks"),
        "{e}"
    );
}
