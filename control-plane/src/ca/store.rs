//! The CA's key material on disk, in Istio's file layout (`cacerts` / plugged-in CA):
//!
//! | file | holds |
//! |---|---|
//! | `ca-cert.pem` | the signing certificate (a root, or an intermediate) |
//! | `ca-key.pem` | its private key, PKCS#8 PEM (written with mode 0600) |
//! | `cert-chain.pem` | the signing certificate's chain: itself (optional), its intermediates, and (optionally) the root |
//! | `root-cert.pem` | the trust anchors clients are given; the chain must end at one of them |
//!
//! A generated CA is a self-signed root, so all three certificate files hold that one root.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SerialNumber,
};
use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use x509_parser::certificate::X509Certificate;

use super::{CaError, pem};

/// The signing certificate.
pub const CA_CERT: &str = "ca-cert.pem";
/// The signing key.
pub const CA_KEY: &str = "ca-key.pem";
/// The signing certificate's chain up to the root.
pub const CERT_CHAIN: &str = "cert-chain.pem";
/// The trust anchors.
pub const ROOT_CERT: &str = "root-cert.pem";

/// Lifetime of a generated root: 10 years, as Istio's self-signed root.
pub(crate) const ROOT_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// How far back `not_before` is set on every certificate the CA makes, so that a peer whose clock
/// is a little behind already accepts it: 1 minute.
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// A signing key with its chain and the trust anchors.
pub(crate) struct Material {
    /// The signing key.
    pub(crate) key: KeyPair,
    /// Signing certificate first, each next one its issuer, the root last.
    pub(crate) chain: Vec<CertificateDer<'static>>,
    /// Every trust anchor of `root-cert.pem` (the chain's root among them).
    pub(crate) roots: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Material")
            .field("key", &"<redacted>")
            .field("chain_len", &self.chain.len())
            .field("roots_len", &self.roots.len())
            .finish()
    }
}

/// A fresh self-signed root for `trust_domain` (ECDSA P-256, 10 years).
pub(crate) fn generate(trust_domain: &str) -> Result<Material, CaError> {
    let gen_err = |e: rcgen::Error| CaError::Generate(e.to_string());
    let key = KeyPair::generate().map_err(gen_err)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, trust_domain);
    dn.push(DnType::CommonName, "mesh root CA");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = SystemTime::now();
    params.not_before = (now - CLOCK_SKEW).into();
    params.not_after = (now + ROOT_LIFETIME).into();
    params.serial_number = Some(random_serial().map_err(CaError::Generate)?);
    let cert = params.self_signed(&key).map_err(gen_err)?;
    let der = cert.der().clone();
    Ok(Material {
        key,
        chain: vec![der.clone()],
        roots: vec![der],
    })
}

/// What a state directory's `ca/` holds.
#[derive(Debug)]
pub(crate) enum StateDir {
    /// None of the files: a new root is to be generated.
    Empty,
    /// All four files.
    Complete,
}

/// Looks at `dir` (`<state_dir>/ca`): empty or missing, complete, or an error naming the missing
/// files.
pub(crate) fn inspect(dir: &Path) -> Result<StateDir, CaError> {
    let files = [CA_CERT, CA_KEY, CERT_CHAIN, ROOT_CERT];
    let missing: Vec<&'static str> = files
        .into_iter()
        .filter(|f| !dir.join(f).exists())
        .collect();
    match missing.len() {
        0 => Ok(StateDir::Complete),
        4 => Ok(StateDir::Empty),
        _ => Err(CaError::Incomplete {
            dir: dir.to_path_buf(),
            missing,
        }),
    }
}

/// Writes `m` to `dir` (which must not hold CA files yet): into a sibling temporary directory
/// first, renamed into place, so a crash never leaves half a CA behind.
pub(crate) fn persist(dir: &Path, m: &Material) -> Result<(), CaError> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    create_private_dir(parent)?;
    let tmp = parent.join(format!(".ca-new-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    create_private_dir(&tmp)?;
    let result = (|| {
        write_files(&tmp, &files(m))?;
        // Replaces `dir` only if it is missing or empty (rename(2) onto an empty directory).
        std::fs::rename(&tmp, dir).map_err(|source| CaError::Write {
            path: dir.to_path_buf(),
            source,
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// The four files of `m`, by name, as PEM text.
pub(crate) fn files(m: &Material) -> Vec<(&'static str, String)> {
    let chain: String = m.chain.iter().map(|c| pem::cert(c)).collect();
    let roots: String = m.roots.iter().map(|c| pem::cert(c)).collect();
    vec![
        (CA_KEY, m.key.serialize_pem()),
        (CA_CERT, pem::cert(&m.chain[0])),
        (CERT_CHAIN, chain),
        (ROOT_CERT, roots),
    ]
}

/// Writes CA files (by name) into `dir`, which must exist; the key with mode 0600.
pub(crate) fn write_files(dir: &Path, files: &[(&str, String)]) -> Result<(), CaError> {
    for (name, text) in files {
        write_file(&dir.join(name), text.as_bytes(), *name == CA_KEY)?;
    }
    Ok(())
}

pub(crate) fn create_private_dir(dir: &Path) -> Result<(), CaError> {
    let werr = |source| CaError::Write {
        path: dir.to_path_buf(),
        source,
    };
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir).map_err(werr)
}

fn write_file(path: &Path, contents: &[u8], secret: bool) -> Result<(), CaError> {
    use std::io::Write;
    let werr = |source| CaError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, if secret { 0o600 } else { 0o644 });
    #[cfg(not(unix))]
    let _ = secret;
    let mut f = o.open(path).map_err(werr)?;
    f.write_all(contents).map_err(werr)?;
    f.sync_all().map_err(werr)
}

/// Loads and checks the four files of `dir`: the key matches the signing certificate, which is a
/// CA; each certificate of the chain is signed by the next; the chain ends at a root of
/// `root-cert.pem`; nothing has expired.
pub(crate) fn load(dir: &Path) -> Result<Material, CaError> {
    let cert_path = dir.join(CA_CERT);
    let key_path = dir.join(CA_KEY);
    let chain_path = dir.join(CERT_CHAIN);
    let root_path = dir.join(ROOT_CERT);

    let mut ca = pem::read_certs(&cert_path)?;
    if ca.len() != 1 {
        return Err(CaError::invalid(
            &cert_path,
            format!(
                "holds {} certificates; it must hold only the signing certificate (its issuers belong in {CERT_CHAIN})",
                ca.len()
            ),
        ));
    }
    let ca = ca.remove(0);
    let key = read_key(&key_path)?;
    let listed = pem::read_certs(&chain_path)?;
    let roots = pem::read_certs(&root_path)?;
    for (i, r) in roots.iter().enumerate() {
        parse(&root_path, r, i)?;
    }

    let ca_x = parse(&cert_path, &ca, 0)?;
    require_ca(&cert_path, &ca_x)?;
    require_current(&cert_path, &ca_x)?;
    if key.public_key_raw() != ca_x.public_key().subject_public_key.data.as_ref() {
        return Err(CaError::invalid(
            &key_path,
            format!(
                "is not the key of the certificate in {CA_CERT} ({})",
                ca_x.subject()
            ),
        ));
    }

    // The chain from the signing certificate up: cert-chain.pem may or may not repeat ca-cert.pem
    // first and may or may not end with the root.
    let mut chain = vec![ca.clone()];
    chain.extend(listed.into_iter().skip_while(|c| *c == ca));
    for i in 1..chain.len() {
        let (child, parent) = (
            parse(&chain_path, &chain[i - 1], i - 1)?,
            parse(&chain_path, &chain[i], i)?,
        );
        check_link(&chain_path, &child, &parent)?;
        require_ca(&chain_path, &parent)?;
        require_current(&chain_path, &parent)?;
    }
    let last_der = chain.last().cloned().unwrap_or_else(|| ca.clone());
    let last = parse(&chain_path, &last_der, chain.len() - 1)?;
    if !roots.contains(&last_der) {
        // Not ending at an anchor: the anchor must be the last one's issuer.
        let issuer = roots.iter().find(|r| {
            parse(&root_path, r, 0)
                .map(|rx| check_link(&chain_path, &last, &rx).is_ok())
                .unwrap_or(false)
        });
        match issuer {
            Some(root) => chain.push(root.clone()),
            None => {
                return Err(CaError::invalid(
                    &chain_path,
                    format!(
                        "the chain ends at \"{}\" (issued by \"{}\"), which is neither a root in {ROOT_CERT} nor issued by one",
                        last.subject(),
                        last.issuer()
                    ),
                ));
            }
        }
    }
    let root = parse(&root_path, chain.last().unwrap_or(&ca), 0)?;
    require_current(&root_path, &root)?;
    Ok(Material { key, chain, roots })
}

fn read_key(path: &Path) -> Result<KeyPair, CaError> {
    let bytes = pem::read(path)?;
    let section = <(SectionKind, Vec<u8>)>::pem_slice_iter(&bytes)
        .next()
        .ok_or_else(|| CaError::invalid(path, "holds no PEM private key"))?
        .map_err(|e| CaError::invalid(path, format!("not valid PEM: {e}")))?;
    match section {
        (SectionKind::PrivateKey, der) => {
            let der = PrivatePkcs8KeyDer::from(der);
            KeyPair::try_from(&der).map_err(|e| {
                CaError::invalid(
                    path,
                    format!("unsupported PKCS#8 key ({e}); ECDSA P-256/P-384, Ed25519 and RSA are supported"),
                )
            })
        }
        (SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey, _) => Err(CaError::invalid(
            path,
            "holds a PKCS#1/SEC1 key; convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt -in ca-key.pem -out ca-key.pem.new`",
        )),
        (kind, _) => Err(CaError::invalid(
            path,
            format!("holds a {kind:?} PEM block where a PRIVATE KEY belongs"),
        )),
    }
}

/// Parses a certificate for the checks (the `index`-th of `path`).
pub(crate) fn parse<'a>(
    path: &Path,
    der: &'a CertificateDer<'_>,
    index: usize,
) -> Result<X509Certificate<'a>, CaError> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c)
        .map_err(|e| CaError::invalid(path, format!("certificate #{index} does not parse: {e}")))
}

fn require_ca(path: &Path, c: &X509Certificate<'_>) -> Result<(), CaError> {
    let is_ca = matches!(c.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
    if !is_ca {
        return Err(CaError::invalid(
            path,
            format!(
                "\"{}\" is not a CA certificate (basicConstraints cA is not true)",
                c.subject()
            ),
        ));
    }
    if let Ok(Some(ku)) = c.key_usage()
        && !ku.value.key_cert_sign()
    {
        return Err(CaError::invalid(
            path,
            format!("\"{}\" has a keyUsage without keyCertSign", c.subject()),
        ));
    }
    Ok(())
}

fn require_current(path: &Path, c: &X509Certificate<'_>) -> Result<(), CaError> {
    let now = unix_now();
    let not_after = c.validity().not_after.timestamp();
    if not_after <= now {
        return Err(CaError::invalid(
            path,
            format!("\"{}\" expired at {}", c.subject(), c.validity().not_after),
        ));
    }
    Ok(())
}

fn check_link(
    path: &Path,
    child: &X509Certificate<'_>,
    parent: &X509Certificate<'_>,
) -> Result<(), CaError> {
    if child.issuer().as_raw() != parent.subject().as_raw() {
        return Err(CaError::invalid(
            path,
            format!(
                "\"{}\" is issued by \"{}\", not by the next certificate \"{}\"",
                child.subject(),
                child.issuer(),
                parent.subject()
            ),
        ));
    }
    child
        .verify_signature(Some(parent.public_key()))
        .map_err(|e| {
            CaError::invalid(
                path,
                format!(
                    "the signature of \"{}\" does not verify with the key of \"{}\": {e}",
                    child.subject(),
                    parent.subject()
                ),
            )
        })
}

/// Seconds since the Unix epoch, now.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The given Unix time as a `SystemTime` (clamped at the epoch).
pub(crate) fn system_time(unix: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64)
}

/// A random positive 128-bit serial number from the ring provider's CSPRNG.
pub(crate) fn random_serial() -> Result<SerialNumber, String> {
    let mut bytes = [0u8; 16];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| "the system random number generator failed".to_string())?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01; // never a leading zero byte, so the serial is always 16 bytes long
    Ok(SerialNumber::from_slice(&bytes))
}

/// The conventional `<state_dir>/ca` folder.
pub(crate) fn state_ca_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("ca")
}
