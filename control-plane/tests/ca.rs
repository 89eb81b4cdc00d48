//! The CA as a workload sees it: `IstioCertificateService.CreateCertificate` on the xDS port of a
//! real control plane on 127.0.0.1, called with the generated tonic client; the trust bundle and
//! the metrics from the admin API.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use control_plane::ca::{CaOptions, CaService, CaSource};
use control_plane::server::{ControlPlane, Options};
use mesh_core::identity::{PeerIdentity, SpiffeId};
use mesh_xds_client::ca_proto::IstioCertificateRequest;
use mesh_xds_client::ca_proto::istio_certificate_service_client::IstioCertificateServiceClient;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
#[path = "../src/ca/test_support.rs"]
mod test_support;

use test_support::{csr_for, csr_with, der, uri, verify};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use tonic::transport::Channel;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

const WEB: &str = "spiffe://cluster.local/ns/default/sa/web";
const WEB_TOKEN: &str = "web-token-0123456789abcdef";
const DB_TOKEN: &str = "db-token-0123456789abcdef";
const DAY: i64 = 24 * 3600;

fn tokens_yaml(entries: &[(&str, &str)]) -> String {
    let mut s = String::from("tokens:\n");
    for (token, sa) in entries {
        s.push_str(&format!(
            "- token: \"{token}\"\n  namespace: default\n  serviceAccount: {sa}\n"
        ));
    }
    s
}

/// A control plane whose CA keeps its root in `state` and accepts the tokens of `token_file`.
async fn start(source: CaSource, token_file: Option<&Path>) -> ControlPlane {
    ControlPlane::start(Options {
        xds_addr: "127.0.0.1:0".parse().unwrap(),
        admin_addr: "127.0.0.1:0".parse().unwrap(),
        ca: Some(CaOptions {
            source,
            token_file: token_file.map(Path::to_path_buf),
            ..CaOptions::default()
        }),
        ..Options::default()
    })
    .await
    .expect("control plane starts")
}

/// A state directory and a token file granting `web` to [`WEB_TOKEN`].
fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.yaml");
    std::fs::write(&tokens, tokens_yaml(&[(WEB_TOKEN, "web")])).unwrap();
    (dir, tokens)
}

async fn client(cp: &ControlPlane) -> IstioCertificateServiceClient<Channel> {
    IstioCertificateServiceClient::connect(format!("http://{}", cp.xds_addr()))
        .await
        .expect("connect to the xDS port")
}

fn request(
    csr: String,
    token: Option<&str>,
    validity_secs: i64,
) -> tonic::Request<IstioCertificateRequest> {
    let mut req = tonic::Request::new(IstioCertificateRequest {
        csr,
        validity_duration: validity_secs,
        metadata: None,
    });
    if let Some(t) = token {
        req.metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    req
}

async fn create(
    c: &mut IstioCertificateServiceClient<Channel>,
    csr: String,
    token: Option<&str>,
) -> Result<Vec<String>, tonic::Status> {
    c.create_certificate(request(csr, token, 0))
        .await
        .map(|r| r.into_inner().cert_chain)
}

/// Verifies `chain` (leaf first) as a client certificate chain up to `root`, as rustls does.
fn verify_up_to(chain: &[String], root: &str) {
    verify(chain, &[der(root)]).expect("the chain verifies up to the returned root");
}

/// (URI SANs and all SANs count, is CA, seconds until not_after) of a PEM leaf.
fn inspect(leaf_pem: &str) -> (Vec<String>, usize, bool, i64) {
    let d = der(leaf_pem);
    let (_, leaf) = X509Certificate::from_der(&d).unwrap();
    let names = &leaf
        .subject_alternative_name()
        .unwrap()
        .expect("a SAN extension")
        .value
        .general_names;
    let uris = names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some(u.to_string()),
            _ => None,
        })
        .collect();
    let is_ca = leaf
        .basic_constraints()
        .unwrap()
        .is_some_and(|bc| bc.value.ca);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    (
        uris,
        names.len(),
        is_ca,
        leaf.validity().not_after.timestamp() - now,
    )
}

/// `GET path` on the admin port: (status, body).
async fn admin_get(cp: &ControlPlane, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(cp.admin_addr())
        .await
        .unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// The value of `mesh_ca_csr_total{result="refused",reason=...}` on /metrics (0 if absent).
async fn refused(cp: &ControlPlane, reason: &str) -> u64 {
    let (_, body) = admin_get(cp, "/metrics").await;
    body.lines()
        .filter(|l| {
            l.starts_with("mesh_ca_csr_total{")
                && l.contains("result=\"refused\"")
                && l.contains(&format!("reason=\"{reason}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn a_token_gets_a_chain_for_exactly_its_identity_that_verifies_up_to_the_root() {
    let (dir, tokens) = setup();
    let cp = start(CaSource::StateDir(dir.path().into()), Some(&tokens)).await;
    let mut c = client(&cp).await;

    let chain = create(&mut c, csr_for(WEB), Some(WEB_TOKEN)).await.unwrap();
    assert_eq!(chain.len(), 2, "leaf and root");
    let (uris, sans, is_ca, life) = inspect(&chain[0]);
    assert_eq!(uris, vec![WEB.to_string()]);
    assert_eq!(sans, 1, "exactly one SAN");
    assert!(!is_ca);
    assert!(
        (life - DAY).abs() <= 120,
        "24 h default lifetime, got {life} s"
    );
    verify_up_to(&chain, chain.last().unwrap());

    // The root is the trust bundle the admin API serves.
    let (status, bundle) = admin_get(&cp, "/ca/root-cert.pem").await;
    assert_eq!(status, 200);
    assert_eq!(&bundle, chain.last().unwrap());
    assert_eq!(cp.ca().unwrap().root_pem(), bundle);
}

#[tokio::test]
async fn a_shorter_requested_validity_is_honoured_and_a_longer_one_capped() {
    let (dir, tokens) = setup();
    let cp = start(CaSource::StateDir(dir.path().into()), Some(&tokens)).await;
    let mut c = client(&cp).await;
    for (asked, want) in [(600, 600), (90 * DAY, DAY)] {
        let chain = c
            .create_certificate(request(csr_for(WEB), Some(WEB_TOKEN), asked))
            .await
            .unwrap()
            .into_inner()
            .cert_chain;
        let (_, _, _, life) = inspect(&chain[0]);
        assert!((life - want).abs() <= 120, "asked {asked} s: got {life} s");
    }
}

#[tokio::test]
async fn unknown_and_missing_tokens_are_unauthenticated() {
    let (dir, tokens) = setup();
    let cp = start(CaSource::StateDir(dir.path().into()), Some(&tokens)).await;
    let mut c = client(&cp).await;

    let wrong = "not-a-token-0123456789abcdef";
    let e = create(&mut c, csr_for(WEB), Some(wrong)).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    assert!(e.message().contains("unknown bootstrap token"), "{e:?}");
    assert!(!e.message().contains(wrong), "the token is never echoed");

    let e = create(&mut c, csr_for(WEB), None).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    assert!(e.message().contains("no credentials"), "{e:?}");
}

#[tokio::test]
async fn a_csr_for_another_identity_is_permission_denied_naming_both() {
    let (dir, tokens) = setup();
    let cp = start(CaSource::StateDir(dir.path().into()), Some(&tokens)).await;
    let mut c = client(&cp).await;
    let db = "spiffe://cluster.local/ns/default/sa/db";
    let e = create(&mut c, csr_for(db), Some(WEB_TOKEN))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(
        e.message().contains(db) && e.message().contains(WEB),
        "{e:?}"
    );
}

#[tokio::test]
async fn bad_csrs_are_invalid_arguments_counted_by_reason_and_harm_no_later_request() {
    let (dir, tokens) = setup();
    let cp = start(CaSource::StateDir(dir.path().into()), Some(&tokens)).await;
    let mut c = client(&cp).await;
    let before = [
        refused(&cp, "malformed").await,
        refused(&cp, "san").await,
        refused(&cp, "ca_requested").await,
        refused(&cp, "unauthenticated").await,
        refused(&cp, "identity_mismatch").await,
    ];

    let cases = [
        (
            "garbage",
            "-----BEGIN CERTIFICATE REQUEST-----\nnot base64!\n-----END CERTIFICATE REQUEST-----\n"
                .to_string(),
            "malformed CSR",
        ),
        ("garbage", "hello".to_string(), "malformed CSR"),
        (
            "two SANs",
            csr_with(
                vec![uri(WEB), uri("spiffe://cluster.local/ns/default/sa/db")],
                |_| {},
            ),
            "exactly one subject alternative name",
        ),
        (
            "CA bit",
            csr_with(vec![uri(WEB)], |p| {
                p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained)
            }),
            "asks for a CA certificate",
        ),
    ];
    for (what, bad, text) in cases {
        let e = create(&mut c, bad, Some(WEB_TOKEN)).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e:?}");
        assert!(e.message().contains(text), "{what}: {e:?}");
        // A good request right after a bad one, on the same connection, is signed.
        let chain = create(&mut c, csr_for(WEB), Some(WEB_TOKEN)).await.unwrap();
        assert_eq!(inspect(&chain[0]).0, vec![WEB.to_string()]);
    }
    create(&mut c, csr_for(WEB), Some("nope-nope-nope-nope-nope"))
        .await
        .unwrap_err();
    create(
        &mut c,
        csr_for("spiffe://cluster.local/ns/default/sa/db"),
        Some(WEB_TOKEN),
    )
    .await
    .unwrap_err();

    // The recorder is process-wide and other tests run alongside: at least ours are counted.
    let after = [
        refused(&cp, "malformed").await,
        refused(&cp, "san").await,
        refused(&cp, "ca_requested").await,
        refused(&cp, "unauthenticated").await,
        refused(&cp, "identity_mismatch").await,
    ];
    for (i, (reason, n)) in [
        "malformed",
        "san",
        "ca_requested",
        "unauthenticated",
        "identity_mismatch",
    ]
    .iter()
    .zip([2, 1, 1, 1, 1])
    .enumerate()
    {
        assert!(
            after[i] >= before[i] + n,
            "{reason}: {} -> {}",
            before[i],
            after[i]
        );
    }
    let (_, metrics) = admin_get(&cp, "/metrics").await;
    assert!(
        metrics.contains("mesh_ca_csr_total{result=\"signed\",reason=\"token\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_root_survives_a_restart_with_the_same_state_dir() {
    let (dir, tokens) = setup();
    let cp = start(CaSource::StateDir(dir.path().into()), Some(&tokens)).await;
    let first = create(&mut client(&cp).await, csr_for(WEB), Some(WEB_TOKEN))
        .await
        .unwrap();
    cp.shutdown().await;

    let cp = start(CaSource::StateDir(dir.path().into()), Some(&tokens)).await;
    let second = create(&mut client(&cp).await, csr_for(WEB), Some(WEB_TOKEN))
        .await
        .unwrap();
    assert_eq!(first.last(), second.last(), "same root");
    // A certificate issued before the restart still verifies against the served bundle.
    let (_, bundle) = admin_get(&cp, "/ca/root-cert.pem").await;
    verify_up_to(&first, &bundle);
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Example Corp");
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p
}

#[tokio::test]
async fn a_plugged_in_intermediate_ca_gives_leaf_intermediate_root() {
    let (dir, tokens) = setup();
    let root_key = KeyPair::generate().unwrap();
    let root_params = ca_params("Example Root");
    let root = root_params.self_signed(&root_key).unwrap();
    let inter_key = KeyPair::generate().unwrap();
    let inter = ca_params("Example Intermediate")
        .signed_by(&inter_key, &rcgen::Issuer::new(root_params, root_key))
        .unwrap();
    let cacerts = dir.path().join("cacerts");
    std::fs::create_dir(&cacerts).unwrap();
    std::fs::write(cacerts.join("ca-cert.pem"), inter.pem()).unwrap();
    std::fs::write(cacerts.join("ca-key.pem"), inter_key.serialize_pem()).unwrap();
    std::fs::write(
        cacerts.join("cert-chain.pem"),
        format!("{}{}", inter.pem(), root.pem()),
    )
    .unwrap();
    std::fs::write(cacerts.join("root-cert.pem"), root.pem()).unwrap();

    let cp = start(CaSource::Plugged(cacerts), Some(&tokens)).await;
    let chain = create(&mut client(&cp).await, csr_for(WEB), Some(WEB_TOKEN))
        .await
        .unwrap();
    assert_eq!(chain.len(), 3, "leaf, intermediate, root");
    assert_eq!(der(&chain[1]), *inter.der());
    assert_eq!(der(&chain[2]), *root.der());
    verify_up_to(&chain, &root.pem());
    assert_eq!(admin_get(&cp, "/ca/root-cert.pem").await.1, root.pem());
}

#[tokio::test]
async fn a_token_added_to_the_file_is_accepted_without_restart() {
    let (dir, tokens) = setup();
    let cp = start(CaSource::StateDir(dir.path().into()), Some(&tokens)).await;
    let mut c = client(&cp).await;
    let db = "spiffe://cluster.local/ns/default/sa/db";
    let e = create(&mut c, csr_for(db), Some(DB_TOKEN))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);

    std::fs::write(
        &tokens,
        tokens_yaml(&[(WEB_TOKEN, "web"), (DB_TOKEN, "db")]),
    )
    .unwrap();
    let chain = create(&mut c, csr_for(db), Some(DB_TOKEN)).await.unwrap();
    assert_eq!(inspect(&chain[0]).0, vec![db.to_string()]);

    // A broken edit keeps the tokens that were there.
    std::fs::write(&tokens, "tokens: [ {token: ").unwrap();
    create(&mut c, csr_for(db), Some(DB_TOKEN)).await.unwrap();
}

#[tokio::test]
async fn a_peer_identity_extension_grants_renewal_through_the_grpc_stack() {
    // Stands in for the mTLS acceptor: a layer that puts the verified peer identity in the
    // HTTP request's extensions, where CaService reads it.
    let ca = Arc::new(control_plane::ca::Ca::new(&CaOptions::default()).unwrap());
    let svc = CaService::new(ca, None).into_service();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer: SpiffeId = WEB.parse().unwrap();
    let layer =
        tower::util::MapRequestLayer::new(move |mut req: tonic::codegen::http::Request<_>| {
            req.extensions_mut().insert(PeerIdentity(peer.clone()));
            req
        });
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(layer)
            .add_service(svc)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let mut c = IstioCertificateServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let chain = create(&mut c, csr_for(WEB), None).await.unwrap();
    assert_eq!(inspect(&chain[0]).0, vec![WEB.to_string()]);
    let e = create(
        &mut c,
        csr_for("spiffe://cluster.local/ns/default/sa/db"),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.code(),
        Code::PermissionDenied,
        "a renewal is for the same identity only"
    );
}

#[tokio::test]
async fn without_a_ca_nothing_is_served() {
    let cp = ControlPlane::start(Options {
        xds_addr: "127.0.0.1:0".parse().unwrap(),
        admin_addr: "127.0.0.1:0".parse().unwrap(),
        ..Options::default()
    })
    .await
    .unwrap();
    assert!(cp.ca().is_none());
    assert_eq!(admin_get(&cp, "/ca/root-cert.pem").await.0, 404);
    let e = create(&mut client(&cp).await, csr_for(WEB), Some(WEB_TOKEN))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
}

#[tokio::test]
async fn a_bad_ca_directory_fails_the_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca-cert.pem"), "not a certificate").unwrap();
    let e = ControlPlane::start(Options {
        xds_addr: "127.0.0.1:0".parse().unwrap(),
        admin_addr: "127.0.0.1:0".parse().unwrap(),
        ca: Some(CaOptions {
            source: CaSource::Plugged(dir.path().into()),
            ..CaOptions::default()
        }),
        ..Options::default()
    })
    .await
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("ca-cert.pem: holds no CERTIFICATE PEM block"),
        "{e}"
    );
}
