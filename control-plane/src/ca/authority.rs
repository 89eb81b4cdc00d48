//! [`Ca`]: the signing authority.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use mesh_core::identity::SpiffeId;
use rcgen::{
    CertificateParams, DistinguishedName, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SubjectPublicKeyInfo,
};
use rustls_pki_types::CertificateDer;

use super::store::{self, CLOCK_SKEW, Material, StateDir};
use super::{CaError, CaOptions, CaSource, CsrError, IssueError, csr, pem};

/// The certificate authority: it holds the signing key and issues X.509 SVIDs.
///
/// Create it with [`Ca::new`] (from [`CaOptions`]); the control plane does so when
/// [`Options::ca`](crate::server::Options::ca) is set and exposes it as
/// [`ControlPlane::ca`](crate::server::ControlPlane::ca).
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// Signing certificate first, the root last.
    chain: Vec<CertificateDer<'static>>,
    /// `chain` as PEM, one string per certificate.
    chain_pem: Vec<String>,
    /// Every trust anchor, DER.
    bundle: Vec<CertificateDer<'static>>,
    /// Every trust anchor, concatenated PEM.
    bundle_pem: String,
    /// The earliest `not_after` of the chain: no leaf outlives it.
    chain_not_after: SystemTime,
    trust_domain: String,
    cert_ttl: Duration,
    max_cert_ttl: Duration,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("trust_domain", &self.trust_domain)
            .field("chain_len", &self.chain.len())
            .field("bundle_len", &self.bundle.len())
            .field("chain_not_after", &self.chain_not_after)
            .field("cert_ttl", &self.cert_ttl)
            .field("max_cert_ttl", &self.max_cert_ttl)
            .finish_non_exhaustive()
    }
}

/// A certificate and key for a server (see [`Ca::issue_server`]).
#[derive(Clone)]
pub struct ServerCert {
    /// PEM certificates, the leaf first, the root last.
    pub chain_pem: Vec<String>,
    /// The leaf's private key, PKCS#8 PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCert")
            .field("chain_len", &self.chain_pem.len())
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl Ca {
    /// Sets up the CA as `opts` says: loads a plugged-in CA directory, loads (or generates and
    /// saves, on first start) the CA of a state directory, or generates an in-memory root
    /// (logging a warning: every restart then invalidates all issued certificates).
    pub fn new(opts: &CaOptions) -> Result<Ca, CaError> {
        opts.validate()?;
        let material = match &opts.source {
            CaSource::InMemory => {
                tracing::warn!(
                    "CA: no state directory; using an in-memory root that changes on every restart (set --state-dir or --ca-dir)"
                );
                store::generate(&opts.trust_domain)?
            }
            CaSource::StateDir(state_dir) => {
                let dir = store::state_ca_dir(state_dir);
                match store::inspect(&dir)? {
                    StateDir::Complete => {
                        let m = store::load(&dir)?;
                        tracing::info!(dir = %dir.display(), "CA: loaded the root from the state directory");
                        m
                    }
                    StateDir::Empty => {
                        let m = store::generate(&opts.trust_domain)?;
                        store::persist(&dir, &m)?;
                        tracing::info!(dir = %dir.display(), "CA: generated a new root and saved it");
                        m
                    }
                }
            }
            CaSource::Plugged(dir) => {
                let m = store::load(dir)?;
                tracing::info!(dir = %dir.display(), chain = m.chain.len(), "CA: loaded the plugged-in CA");
                m
            }
        };
        let ca = Ca::from_material(material, opts, &opts.source.ca_cert_path())?;
        ca.record_expiry();
        Ok(ca)
    }

    fn from_material(m: Material, opts: &CaOptions, cert_path: &Path) -> Result<Ca, CaError> {
        let Material { key, chain, roots } = m;
        let signing = &chain[0];
        let issuer = Issuer::from_ca_cert_der(signing, key)
            .map_err(|e| CaError::Generate(format!("cannot use the signing certificate: {e}")))?;
        // The loaders parsed every certificate already; one that did not would end the chain now.
        let chain_not_after = chain
            .iter()
            .map(|c| {
                x509_parser::parse_x509_certificate(c)
                    .map(|(_, x)| store::system_time(x.validity().not_after.timestamp()))
                    .unwrap_or(SystemTime::UNIX_EPOCH)
            })
            .min()
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let ca = Ca {
            issuer,
            chain_pem: chain.iter().map(|c| pem::cert(c)).collect(),
            bundle_pem: roots.iter().map(|c| pem::cert(c)).collect(),
            chain,
            bundle: roots,
            chain_not_after,
            trust_domain: opts.trust_domain.clone(),
            cert_ttl: opts.cert_ttl,
            max_cert_ttl: opts.max_cert_ttl,
        };
        ca.self_test(cert_path)?;
        if ca.chain_not_after < SystemTime::now() + opts.max_cert_ttl {
            tracing::warn!(
                not_after = ?ca.chain_not_after,
                "CA: the signing chain expires sooner than the longest certificate lifetime; certificates will be shortened"
            );
        }
        Ok(ca)
    }

    /// Signs a probe certificate and checks it names and verifies against the signing
    /// certificate, so a CA whose subject rcgen cannot reproduce byte for byte is refused at start
    /// rather than issuing chains that do not verify.
    fn self_test(&self, cert_path: &Path) -> Result<(), CaError> {
        let probe = KeyPair::generate().map_err(|e| CaError::Generate(e.to_string()))?;
        let id = SpiffeId::new(&self.trust_domain, "mesh-system", "ca-self-test")
            .map_err(|e| CaError::Options(format!("trust domain: {e}")))?;
        let leaf = self
            .issue(
                &probe,
                san_uri(&id).map_err(CaError::Generate)?,
                Duration::from_secs(60),
            )
            .map_err(CaError::Generate)?;
        let bad = |reason: String| CaError::invalid(cert_path, reason);
        let (_, leaf_x) = x509_parser::parse_x509_certificate(&leaf)
            .map_err(|e| bad(format!("issued probe does not parse: {e}")))?;
        let (_, ca_x) = x509_parser::parse_x509_certificate(&self.chain[0])
            .map_err(|e| bad(format!("does not parse: {e}")))?;
        if leaf_x.issuer().as_raw() != ca_x.subject().as_raw() {
            return Err(bad(format!(
                "its subject \"{}\" cannot be reproduced byte for byte in issued certificates (multi-valued or repeated name attributes are not supported)",
                ca_x.subject()
            )));
        }
        leaf_x
            .verify_signature(Some(ca_x.public_key()))
            .map_err(|e| {
                bad(format!(
                    "a probe certificate signed with the key does not verify: {e}"
                ))
            })
    }

    fn record_expiry(&self) {
        let ts = |c: &CertificateDer<'_>| {
            x509_parser::parse_x509_certificate(c)
                .map(|(_, x)| x.validity().not_after.timestamp() as f64)
                .unwrap_or(0.0)
        };
        metrics::gauge!("mesh_ca_cert_expiry_timestamp_seconds", "cert" => "signing")
            .set(ts(&self.chain[0]));
        if let Some(root) = self.chain.last() {
            metrics::gauge!("mesh_ca_cert_expiry_timestamp_seconds", "cert" => "root")
                .set(ts(root));
        }
    }

    /// Signs `csr_pem` for `granted`: checks the request (see [`CsrError`] for every refusal)
    /// and returns the PEM chain as Istio's `CreateCertificate` does: the new leaf first, then
    /// the signing certificate and any intermediates, the root last.
    ///
    /// The leaf carries exactly one URI SAN, `granted`; it is not a CA; its key usage is
    /// digitalSignature + keyEncipherment and its extended key usage serverAuth + clientAuth; its
    /// serial is 128 random bits. It is valid from [`CLOCK_SKEW`] ago until `requested_ttl` from
    /// now (`None` or zero: [`CaOptions::cert_ttl`]), at most [`CaOptions::max_cert_ttl`] and
    /// never beyond the signing chain's own expiry.
    pub fn sign(
        &self,
        csr_pem: &str,
        granted: &SpiffeId,
        requested_ttl: Option<Duration>,
    ) -> Result<Vec<String>, CsrError> {
        let checked = csr::check(csr_pem.as_bytes())?;
        if checked.id != *granted {
            return Err(CsrError::IdentityMismatch {
                requested: Box::new(checked.id),
                granted: Box::new(granted.clone()),
            });
        }
        let key = SubjectPublicKeyInfo::from_der(&checked.spki)
            .map_err(|e| CsrError::UnsupportedKey(e.to_string()))?;
        let ttl = self.lifetime(requested_ttl);
        let leaf = self
            .issue(&key, san_uri(granted).map_err(CsrError::Signing)?, ttl)
            .map_err(CsrError::Signing)?;
        let mut out = Vec::with_capacity(self.chain.len() + 1);
        out.push(pem::cert(&leaf));
        out.extend(self.chain_pem.iter().cloned());
        Ok(out)
    }

    /// Issues a certificate and a fresh ECDSA P-256 key for a server of identity `id` that is
    /// also reached by `names` (each an IP address or a DNS name), valid for `ttl` (capped at the
    /// signing chain's expiry). The control plane uses it for its own TLS serving certificate.
    pub fn issue_server(
        &self,
        id: &SpiffeId,
        names: &[String],
        ttl: Duration,
    ) -> Result<ServerCert, IssueError> {
        let mut sans = san_uri(id).map_err(IssueError::Signing)?;
        for n in names {
            sans.push(match n.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(
                    n.as_str()
                        .try_into()
                        .map_err(|_| IssueError::Name(n.clone()))?,
                ),
            });
        }
        let key = KeyPair::generate().map_err(|e| IssueError::Signing(e.to_string()))?;
        let leaf = self.issue(&key, sans, ttl).map_err(IssueError::Signing)?;
        let mut chain_pem = vec![pem::cert(&leaf)];
        chain_pem.extend(self.chain_pem.iter().cloned());
        Ok(ServerCert {
            chain_pem,
            key_pem: key.serialize_pem(),
        })
    }

    /// The lifetime for a request asking for `requested`.
    pub(crate) fn lifetime(&self, requested: Option<Duration>) -> Duration {
        match requested {
            None | Some(Duration::ZERO) => self.cert_ttl,
            Some(d) => d.min(self.max_cert_ttl),
        }
    }

    fn issue(
        &self,
        key: &impl rcgen::PublicKeyData,
        sans: Vec<SanType>,
        ttl: Duration,
    ) -> Result<CertificateDer<'static>, String> {
        let now = SystemTime::now();
        if self.chain_not_after <= now {
            return Err(format!(
                "the CA's signing chain expired at {}",
                display_time(self.chain_not_after)
            ));
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(store::random_serial()?);
        params.not_before = (now - CLOCK_SKEW).into();
        params.not_after = now
            .checked_add(ttl)
            .map_or(self.chain_not_after, |t| t.min(self.chain_not_after))
            .into();
        params
            .signed_by(key, &self.issuer)
            .map(|c| c.der().clone())
            .map_err(|e| e.to_string())
    }

    /// The trust anchors (every certificate of `root-cert.pem`), concatenated PEM: what clients
    /// verify peers against. Served at the admin API's `/ca/root-cert.pem`.
    pub fn root_pem(&self) -> &str {
        &self.bundle_pem
    }

    /// The trust anchors, DER.
    pub fn trust_bundle(&self) -> &[CertificateDer<'static>] {
        &self.bundle
    }

    /// The signing chain, DER: the signing certificate first, the root last (what follows the
    /// leaf in every issued chain).
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The trust domain of the identities this CA issues.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// Lifetime of a certificate whose request asks for none.
    pub fn cert_ttl(&self) -> Duration {
        self.cert_ttl
    }

    /// Longest lifetime a request may get.
    pub fn max_cert_ttl(&self) -> Duration {
        self.max_cert_ttl
    }
}

fn san_uri(id: &SpiffeId) -> Result<Vec<SanType>, String> {
    let uri = id
        .to_string()
        .try_into()
        .map_err(|e| format!("SPIFFE ID {id} is not an IA5 string: {e}"))?;
    Ok(vec![SanType::URI(uri)])
}

/// A time as messages show it (`Jan  1 00:00:00 2030 +00:00`).
fn display_time(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    x509_parser::time::ASN1Time::from_timestamp(secs)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| format!("{secs} s after the Unix epoch"))
}
