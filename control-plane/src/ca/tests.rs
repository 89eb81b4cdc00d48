//! Unit tests of signing, CSR checks and the CA directories.

use std::time::{Duration, SystemTime};

use mesh_core::identity::SpiffeId;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls_pki_types::pem::PemObject;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::test_support::*;
use super::*;

const WEB: &str = "spiffe://cluster.local/ns/default/sa/web";
const DAY: Duration = Duration::from_secs(24 * 3600);

fn id(s: &str) -> SpiffeId {
    s.parse().unwrap()
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn a_valid_csr_gets_a_leaf_carrying_exactly_its_spiffe_id() {
    let ca = Ca::new(&CaOptions::default()).unwrap();
    let chain = ca.sign(&csr_for(WEB), &id(WEB), None).unwrap();
    assert_eq!(chain.len(), 2, "leaf and root");
    assert_eq!(chain[1], ca.root_pem(), "the root is last");

    let leaf_der = der(&chain[0]);
    let (_, leaf) = X509Certificate::from_der(&leaf_der).unwrap();
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    assert_eq!(san.value.general_names, vec![GeneralName::URI(WEB)]);
    assert!(san.critical, "empty subject, so the SAN is critical");
    assert!(!leaf.basic_constraints().unwrap().unwrap().value.ca);
    let ku = leaf.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && ku.key_encipherment() && !ku.key_cert_sign());
    let eku = leaf.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth && eku.client_auth);

    let now = unix(SystemTime::now());
    let life = leaf.validity().not_after.timestamp() - now;
    assert!(
        (life - DAY.as_secs() as i64).abs() < 120,
        "lifetime {life}s"
    );
    let skew = now - leaf.validity().not_before.timestamp();
    assert!((55..=125).contains(&skew), "not_before {skew}s ago");

    verify(&chain, ca.trust_bundle()).unwrap();

    let again = ca.sign(&csr_for(WEB), &id(WEB), None).unwrap();
    let again_der = der(&again[0]);
    let (_, leaf2) = X509Certificate::from_der(&again_der).unwrap();
    assert_ne!(leaf.serial, leaf2.serial, "serials are random");
    assert_eq!(leaf.raw_serial().len(), 16);
}

#[test]
fn requested_lifetimes_are_honoured_and_capped() {
    let ca = Ca::new(&CaOptions {
        cert_ttl: Duration::from_secs(3600),
        max_cert_ttl: Duration::from_secs(7200),
        ..CaOptions::default()
    })
    .unwrap();
    let life = |ttl: Option<Duration>| {
        let chain = ca.sign(&csr_for(WEB), &id(WEB), ttl).unwrap();
        let d = der(&chain[0]);
        let (_, leaf) = X509Certificate::from_der(&d).unwrap();
        leaf.validity().not_after.timestamp() - unix(SystemTime::now())
    };
    let close = |got: i64, want: u64| (got - want as i64).abs() < 5;
    assert!(close(life(None), 3600));
    assert!(close(life(Some(Duration::ZERO)), 3600));
    assert!(close(life(Some(Duration::from_secs(10))), 10));
    assert!(close(life(Some(Duration::from_secs(7000))), 7000));
    assert!(close(life(Some(Duration::from_secs(90 * 24 * 3600))), 7200));
}

#[test]
fn every_bad_csr_is_refused_with_its_reason() {
    let ca = Ca::new(&CaOptions::default()).unwrap();
    let mut tampered = CertificateSigningRequestDerBytes::of(&csr_for(WEB));
    let n = tampered.0.len();
    tampered.0[n - 3] ^= 0x55;
    let cases: Vec<(&str, String, &str, &str)> = vec![
        ("garbage", "hello".into(), "malformed", "not a PKCS#10"),
        ("empty", "".into(), "malformed", "empty"),
        (
            "bad PEM",
            "-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n".into(),
            "malformed",
            "not valid PEM",
        ),
        (
            "PEM of something else",
            ca.root_pem().to_string(),
            "malformed",
            "no CERTIFICATE REQUEST",
        ),
        (
            "bad signature",
            tampered.pem(),
            "bad_signature",
            "does not verify",
        ),
        ("no SAN", csr_with(vec![], |_| {}), "san", "it has none"),
        (
            "two SANs",
            csr_with(
                vec![uri(WEB), SanType::DnsName("web".try_into().unwrap())],
                |_| {},
            ),
            "san",
            "2: URI spiffe://cluster.local/ns/default/sa/web, DNS web",
        ),
        (
            "a DNS SAN only",
            csr_with(vec![SanType::DnsName("web".try_into().unwrap())], |_| {}),
            "san",
            "1: DNS web",
        ),
        (
            "not a SPIFFE ID",
            csr_for("https://cluster.local/ns/default/sa/web"),
            "san",
            "must start with spiffe://",
        ),
        (
            "another identity",
            csr_for("spiffe://cluster.local/ns/default/sa/db"),
            "identity_mismatch",
            "asks for identity spiffe://cluster.local/ns/default/sa/db but the caller is granted spiffe://cluster.local/ns/default/sa/web",
        ),
        (
            "a CA",
            csr_with(vec![uri(WEB)], |p| {
                p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained)
            }),
            "ca_requested",
            "basicConstraints cA=true",
        ),
        (
            "keyCertSign",
            csr_with(vec![uri(WEB)], |p| {
                p.key_usages = vec![KeyUsagePurpose::KeyCertSign]
            }),
            "ca_requested",
            "keyCertSign",
        ),
    ];
    for (what, csr, reason, text) in cases {
        let e = ca.sign(&csr, &id(WEB), None).unwrap_err();
        assert_eq!(e.reason(), reason, "{what}: {e}");
        assert!(e.to_string().contains(text), "{what}: {e:?} lacks {text:?}");
        assert_eq!(
            e.is_permission_denied(),
            reason == "identity_mismatch",
            "{what}"
        );
    }
}

/// A CSR's DER, to tamper with.
struct CertificateSigningRequestDerBytes(Vec<u8>);

impl CertificateSigningRequestDerBytes {
    fn of(pem: &str) -> Self {
        Self(
            rustls_pki_types::CertificateSigningRequestDer::from_pem_slice(pem.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
        )
    }

    fn pem(&self) -> String {
        super::pem::encode("CERTIFICATE REQUEST", &self.0)
    }
}

#[test]
fn a_der_csr_is_accepted_by_the_check() {
    let d = CertificateSigningRequestDerBytes::of(&csr_for(WEB));
    let checked = csr::check(&d.0).unwrap();
    assert_eq!(checked.id, id(WEB));
}

#[test]
fn the_state_dir_root_survives_a_restart_and_its_key_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let opts = CaOptions {
        source: CaSource::StateDir(dir.path().to_path_buf()),
        ..CaOptions::default()
    };
    let first = Ca::new(&opts).unwrap();
    let ca_dir = dir.path().join("ca");
    for f in [
        "ca-cert.pem",
        "ca-key.pem",
        "cert-chain.pem",
        "root-cert.pem",
    ] {
        assert!(ca_dir.join(f).is_file(), "{f} written");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(ca_dir.join("ca-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let chain = first.sign(&csr_for(WEB), &id(WEB), None).unwrap();
    drop(first);

    let second = Ca::new(&opts).unwrap();
    assert_eq!(second.root_pem(), chain[1], "same root after a restart");
    verify(&chain, second.trust_bundle()).unwrap();
    let again = second.sign(&csr_for(WEB), &id(WEB), None).unwrap();
    assert_eq!(again[1], chain[1]);
}

#[test]
fn an_incomplete_state_dir_is_refused_naming_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let opts = CaOptions {
        source: CaSource::StateDir(dir.path().to_path_buf()),
        ..CaOptions::default()
    };
    Ca::new(&opts).unwrap();
    std::fs::remove_file(dir.path().join("ca/ca-key.pem")).unwrap();
    let e = Ca::new(&opts).unwrap_err();
    assert!(matches!(e, CaError::Incomplete { .. }), "{e}");
    assert!(e.to_string().contains("missing ca-key.pem"), "{e}");
}

/// A root and an intermediate signed by it, as an operator's PKI would make them.
pub(super) struct Pki {
    pub(super) root_pem: String,
    pub(super) inter_pem: String,
    pub(super) inter_key_pem: String,
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

pub(super) fn pki() -> Pki {
    let root_key = KeyPair::generate().unwrap();
    let root_params = ca_params("Example Root");
    let root = root_params.self_signed(&root_key).unwrap();
    let inter_key = KeyPair::generate().unwrap();
    let issuer = rcgen::Issuer::new(root_params, root_key);
    let inter = ca_params("Example Intermediate")
        .signed_by(&inter_key, &issuer)
        .unwrap();
    Pki {
        root_pem: root.pem(),
        inter_pem: inter.pem(),
        inter_key_pem: inter_key.serialize_pem(),
    }
}

fn write_plugged(dir: &std::path::Path, pki: &Pki, chain: &str) {
    std::fs::write(dir.join("ca-cert.pem"), &pki.inter_pem).unwrap();
    std::fs::write(dir.join("ca-key.pem"), &pki.inter_key_pem).unwrap();
    std::fs::write(dir.join("cert-chain.pem"), chain).unwrap();
    std::fs::write(dir.join("root-cert.pem"), &pki.root_pem).unwrap();
}

#[test]
fn a_plugged_in_intermediate_issues_leaf_intermediate_root() {
    let pki = pki();
    // Istio's layout (intermediate + root), and the shorter forms operators also write.
    for chain in [
        format!("{}{}", pki.inter_pem, pki.root_pem),
        pki.inter_pem.clone(),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write_plugged(dir.path(), &pki, &chain);
        let ca = Ca::new(&CaOptions {
            source: CaSource::Plugged(dir.path().to_path_buf()),
            ..CaOptions::default()
        })
        .unwrap();
        let issued = ca.sign(&csr_for(WEB), &id(WEB), None).unwrap();
        assert_eq!(issued.len(), 3, "leaf, intermediate, root");
        assert_eq!(der(&issued[1]), der(&pki.inter_pem));
        assert_eq!(der(&issued[2]), der(&pki.root_pem));
        assert_eq!(ca.root_pem(), pki.root_pem);
        verify(&issued, &[der(&pki.root_pem)]).unwrap();
    }
}

#[test]
fn a_bad_plugged_in_ca_is_refused_naming_the_file_and_reason() {
    let pki = pki();
    let other = self::pki();
    let plugged = |edit: &dyn Fn(&std::path::Path)| {
        let dir = tempfile::tempdir().unwrap();
        write_plugged(
            dir.path(),
            &pki,
            &format!("{}{}", pki.inter_pem, pki.root_pem),
        );
        edit(dir.path());
        Ca::new(&CaOptions {
            source: CaSource::Plugged(dir.path().to_path_buf()),
            ..CaOptions::default()
        })
        .unwrap_err()
        .to_string()
    };
    type Edit<'a> = Box<dyn Fn(&std::path::Path) + 'a>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "missing key",
            Box::new(|d| std::fs::remove_file(d.join("ca-key.pem")).unwrap()),
            "ca-key.pem: No such file",
        ),
        (
            "key of another CA",
            Box::new(|d| std::fs::write(d.join("ca-key.pem"), &other.inter_key_pem).unwrap()),
            "ca-key.pem: is not the key of the certificate in ca-cert.pem",
        ),
        (
            "garbage certificate",
            Box::new(|d| std::fs::write(d.join("ca-cert.pem"), "hello").unwrap()),
            "ca-cert.pem: holds no CERTIFICATE PEM block",
        ),
        (
            "a root of another PKI",
            Box::new(|d| std::fs::write(d.join("root-cert.pem"), &other.root_pem).unwrap()),
            "cert-chain.pem: the chain ends at",
        ),
        (
            "a chain of another PKI",
            Box::new(|d| {
                std::fs::write(
                    d.join("cert-chain.pem"),
                    format!("{}{}", pki.inter_pem, other.root_pem),
                )
                .unwrap()
            }),
            "cert-chain.pem:",
        ),
        (
            "a leaf as the CA",
            Box::new(|d| {
                let key = KeyPair::generate().unwrap();
                let leaf = CertificateParams::new(vec!["x".to_string()])
                    .unwrap()
                    .self_signed(&key)
                    .unwrap();
                std::fs::write(d.join("ca-cert.pem"), leaf.pem()).unwrap();
                std::fs::write(d.join("ca-key.pem"), key.serialize_pem()).unwrap();
            }),
            "ca-cert.pem: \"CN=rcgen self signed cert\" is not a CA certificate",
        ),
    ];
    for (what, edit, want) in cases {
        let e = plugged(&*edit);
        assert!(e.contains(want), "{what}: {e:?} lacks {want:?}");
    }
}

#[test]
fn a_server_certificate_carries_the_identity_and_the_names() {
    let ca = Ca::new(&CaOptions::default()).unwrap();
    let cp = id("spiffe://cluster.local/ns/mesh-system/sa/control-plane");
    let sc = ca
        .issue_server(
            &cp,
            &["cp.mesh-system.svc".into(), "127.0.0.1".into()],
            Duration::from_secs(600),
        )
        .unwrap();
    assert_eq!(sc.chain_pem.len(), 2);
    assert!(sc.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(
        !format!("{sc:?}").contains("PRIVATE KEY"),
        "the key is redacted"
    );
    let d = der(&sc.chain_pem[0]);
    let (_, leaf) = X509Certificate::from_der(&d).unwrap();
    let names = &leaf
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names;
    assert_eq!(
        names[0],
        GeneralName::URI("spiffe://cluster.local/ns/mesh-system/sa/control-plane")
    );
    assert_eq!(names[1], GeneralName::DNSName("cp.mesh-system.svc"));
    assert_eq!(names[2], GeneralName::IPAddress(&[127, 0, 0, 1]));
    verify(&sc.chain_pem, ca.trust_bundle()).unwrap();
}

#[test]
fn contradicting_options_are_refused() {
    let e = Ca::new(&CaOptions {
        cert_ttl: Duration::from_secs(48 * 3600),
        ..CaOptions::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("exceeds the maximum"), "{e}");
    let e = Ca::new(&CaOptions {
        trust_domain: "Not Valid".into(),
        ..CaOptions::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("trust domain"), "{e}");
}
