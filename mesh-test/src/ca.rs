//! A throwaway certificate authority for mTLS tests (rcgen, ECDSA P-256): SVIDs for any SPIFFE
//! ID, plus the bad ones tests need — expired, self-signed, from another trust domain, with the
//! wrong SANs.
//!
//! ```no_run
//! use std::time::Duration;
//! use mesh_core::identity::SpiffeId;
//! use mesh_test::ca::TestCa;
//!
//! let ca = TestCa::new("mesh.local");
//! let web: SpiffeId = "spiffe://mesh.local/ns/default/sa/web".parse().unwrap();
//! let svid = ca.svid(&web, Duration::from_secs(3600));
//! assert_eq!(svid.bundle, ca.bundle());
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mesh_core::identity::{SpiffeId, Svid};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};

/// A root CA (optionally with an intermediate that signs the leaves) for one trust domain.
pub struct TestCa {
    trust_domain: String,
    root_der: Vec<u8>,
    // Signs leaves: the root, or the intermediate.
    signer: (CertificateParams, KeyPair),
    // The intermediate's certificate, sent after the leaf.
    intermediate_der: Option<Vec<u8>>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa")
            .field("trust_domain", &self.trust_domain)
            .field("intermediate", &self.intermediate_der.is_some())
            .finish()
    }
}

/// Whole seconds: X.509 times have no fraction, and `Svid` should say what the certificate says.
fn seconds(t: SystemTime) -> SystemTime {
    let s = t.duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
    UNIX_EPOCH + Duration::from_secs(s)
}

fn ca_params(name: String, not_after: SystemTime) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = seconds(SystemTime::now() - Duration::from_secs(3600)).into();
    p.not_after = seconds(not_after).into();
    p.serial_number = Some(SerialNumber::from(fastrand::u64(..)));
    p
}

fn leaf_params(uris: &[&str], not_before: SystemTime, not_after: SystemTime) -> CertificateParams {
    let mut p = CertificateParams::default();
    // Istio's SVIDs have an empty subject; the identity is the URI SAN.
    p.distinguished_name = DistinguishedName::new();
    p.subject_alt_names = uris
        .iter()
        .map(|u| SanType::URI((*u).try_into().expect("URI SAN is ASCII")))
        .collect();
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.not_before = not_before.into();
    p.not_after = not_after.into();
    p.serial_number = Some(SerialNumber::from(fastrand::u64(1..)));
    p
}

fn generate_key() -> KeyPair {
    KeyPair::generate().expect("generate an ECDSA P-256 key")
}

impl TestCa {
    /// A root CA for `trust_domain`, valid from an hour ago for ten years, signing leaves itself.
    pub fn new(trust_domain: &str) -> TestCa {
        let key = generate_key();
        let params = ca_params(
            format!("Test root CA {trust_domain}"),
            SystemTime::now() + Duration::from_secs(10 * 365 * 86_400),
        );
        let root = params.self_signed(&key).expect("self-sign the root");
        TestCa {
            trust_domain: trust_domain.to_string(),
            root_der: root.der().to_vec(),
            signer: (params, key),
            intermediate_der: None,
        }
    }

    /// As [`TestCa::new`], but leaves are signed by an intermediate CA that the chains carry
    /// after the leaf (the bundle holds only the root).
    pub fn with_intermediate(trust_domain: &str) -> TestCa {
        let root = TestCa::new(trust_domain);
        let key = generate_key();
        let params = ca_params(
            format!("Test intermediate CA {trust_domain}"),
            SystemTime::now() + Duration::from_secs(365 * 86_400),
        );
        let issuer = Issuer::from_params(&root.signer.0, &root.signer.1);
        let cert = params
            .signed_by(&key, &issuer)
            .expect("sign the intermediate");
        TestCa {
            intermediate_der: Some(cert.der().to_vec()),
            signer: (params, key),
            ..root
        }
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// `spiffe://<trust domain>/ns/<ns>/sa/<sa>`.
    pub fn id(&self, ns: &str, sa: &str) -> SpiffeId {
        SpiffeId::new(&self.trust_domain, ns, sa).expect("a valid SPIFFE ID")
    }

    /// The trust bundle: the root certificate, DER.
    pub fn bundle(&self) -> Vec<Vec<u8>> {
        vec![self.root_der.clone()]
    }

    /// An SVID for `id`, valid from a minute ago for `validity`, with this CA's bundle.
    pub fn svid(&self, id: &SpiffeId, validity: Duration) -> Svid {
        let now = SystemTime::now();
        self.svid_between(id, now - Duration::from_secs(60), now + validity)
    }

    /// An SVID for `id` valid between the given times (whole seconds).
    pub fn svid_between(
        &self,
        id: &SpiffeId,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Svid {
        self.svid_with_uris(id, &[&id.to_string()], not_before, not_after)
    }

    /// An SVID whose validity ended an hour ago.
    pub fn expired_svid(&self, id: &SpiffeId) -> Svid {
        let now = SystemTime::now();
        self.svid_between(
            id,
            now - Duration::from_secs(2 * 3600),
            now - Duration::from_secs(3600),
        )
    }

    /// An SVID signed by this CA whose leaf carries `uris` as URI SANs (none, several, not
    /// SPIFFE...); `id` is only what the `Svid` struct claims.
    pub fn svid_with_uris(
        &self,
        id: &SpiffeId,
        uris: &[&str],
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Svid {
        let (not_before, not_after) = (seconds(not_before), seconds(not_after));
        let key = generate_key();
        let params = leaf_params(uris, not_before, not_after);
        let issuer = Issuer::from_params(&self.signer.0, &self.signer.1);
        let leaf = params.signed_by(&key, &issuer).expect("sign the leaf");
        let mut chain = vec![leaf.der().to_vec()];
        chain.extend(self.intermediate_der.clone());
        Svid {
            id: id.clone(),
            chain,
            key: key.serialize_der(),
            bundle: self.bundle(),
            not_before,
            not_after,
        }
    }

    /// A self-signed SVID for `id` (no CA issued it), with this CA's bundle: it trusts this
    /// CA's peers but is trusted by no one.
    pub fn self_signed_svid(&self, id: &SpiffeId, validity: Duration) -> Svid {
        let now = SystemTime::now();
        let (not_before, not_after) = (
            seconds(now - Duration::from_secs(60)),
            seconds(now + validity),
        );
        let key = generate_key();
        let params = leaf_params(&[&id.to_string()], not_before, not_after);
        let leaf = params.self_signed(&key).expect("self-sign the leaf");
        Svid {
            id: id.clone(),
            chain: vec![leaf.der().to_vec()],
            key: key.serialize_der(),
            bundle: self.bundle(),
            not_before,
            not_after,
        }
    }
}

/// Files a gRPC `file_watcher` certificate provider reads, written from `svid` into `dir` with
/// `prefix`: the chain (leaf first), the PKCS#8 key, and the trust bundle, as PEM.
#[derive(Debug, Clone)]
pub struct SvidFiles {
    /// `certificate_file`.
    pub cert_chain: std::path::PathBuf,
    /// `private_key_file`.
    pub key: std::path::PathBuf,
    /// `ca_certificate_file`.
    pub roots: std::path::PathBuf,
}

impl SvidFiles {
    /// Writes the three files.
    pub fn write(dir: &std::path::Path, prefix: &str, svid: &Svid) -> SvidFiles {
        let pems = |label: &str, ders: &[Vec<u8>]| {
            ders.iter()
                .map(|d| pem::encode(&pem::Pem::new(label, d.clone())))
                .collect::<String>()
        };
        let files = SvidFiles {
            cert_chain: dir.join(format!("{prefix}-cert-chain.pem")),
            key: dir.join(format!("{prefix}-key.pem")),
            roots: dir.join(format!("{prefix}-root-cert.pem")),
        };
        let write = |p: &std::path::Path, text: String| {
            std::fs::write(p, text).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()))
        };
        write(&files.cert_chain, pems("CERTIFICATE", &svid.chain));
        write(
            &files.key,
            pems("PRIVATE KEY", std::slice::from_ref(&svid.key)),
        );
        write(&files.roots, pems("CERTIFICATE", &svid.bundle));
        files
    }

    /// The bootstrap's `certificate_providers` with these files as instance `default` (the
    /// instance name the control plane's clusters and inbound listeners refer to).
    pub fn certificate_providers(&self) -> serde_json::Value {
        serde_json::json!({
            "default": {
                "plugin_name": "file_watcher",
                "config": {
                    "certificate_file": self.cert_chain,
                    "private_key_file": self.key,
                    "ca_certificate_file": self.roots,
                    "refresh_interval": "600s",
                },
            },
        })
    }
}
