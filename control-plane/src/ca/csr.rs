//! Checking a certificate signing request before anything is signed.
//!
//! Only two things are taken from a CSR: its public key (after its signature proved possession
//! of the private key) and its one URI SAN (which must equal the granted identity). Everything
//! else a certificate says — subject, lifetime, key usages, extensions — is decided by the CA, so
//! a request cannot smuggle in a name or a capability. A request that *asks* for a capability a
//! workload must not have (a CA certificate, `keyCertSign`) is refused rather than silently
//! downgraded, so the mistake is visible to whoever made it.

use mesh_core::identity::SpiffeId;
use rustls_pki_types::pem::{PemObject, SectionKind};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::error::X509Error;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use super::CsrError;

/// The largest CSR accepted, in bytes of PEM. A P-256 or RSA-4096 request is well under 4 KiB.
pub(crate) const MAX_CSR_BYTES: usize = 64 * 1024;

/// A request whose signature verified and whose one URI SAN is a mesh SPIFFE ID.
#[derive(Debug)]
pub(crate) struct CheckedCsr {
    /// The identity asked for.
    pub(crate) id: SpiffeId,
    /// The subject public key info, DER.
    pub(crate) spki: Vec<u8>,
}

/// Parses and checks `csr` (PEM, or the DER bytes of a request if it holds no PEM block).
pub(crate) fn check(csr: &[u8]) -> Result<CheckedCsr, CsrError> {
    if csr.len() > MAX_CSR_BYTES {
        return Err(CsrError::Malformed(format!(
            "{} bytes; at most {MAX_CSR_BYTES} are accepted",
            csr.len()
        )));
    }
    if csr.iter().all(u8::is_ascii_whitespace) {
        return Err(CsrError::Malformed("empty".into()));
    }
    let der = decode(csr)?;
    let (rest, req) = X509CertificationRequest::from_der(&der)
        .map_err(|e| CsrError::Malformed(format!("not a PKCS#10 certification request: {e}")))?;
    if !rest.is_empty() {
        return Err(CsrError::Malformed(format!(
            "{} bytes of trailing data after the request",
            rest.len()
        )));
    }
    req.verify_signature().map_err(|e| match e {
        X509Error::SignatureUnsupportedAlgorithm => CsrError::UnsupportedKey(format!(
            "signature algorithm {} with key algorithm {}",
            req.signature_algorithm.algorithm,
            req.certification_request_info
                .subject_pki
                .algorithm
                .algorithm
        )),
        other => CsrError::BadSignature(other.to_string()),
    })?;

    let mut extension_requests = 0;
    let mut sans: Vec<String> = Vec::new();
    let mut uris: Vec<&str> = Vec::new();
    for attr in req.certification_request_info.iter_attributes() {
        let ParsedCriAttribute::ExtensionRequest(ext) = attr.parsed_attribute() else {
            continue;
        };
        extension_requests += 1;
        for e in &ext.extensions {
            match e.parsed_extension() {
                ParsedExtension::BasicConstraints(bc) if bc.ca => {
                    return Err(CsrError::CaRequested("basicConstraints cA=true"));
                }
                ParsedExtension::KeyUsage(ku) if ku.key_cert_sign() => {
                    return Err(CsrError::CaRequested("keyUsage keyCertSign"));
                }
                ParsedExtension::KeyUsage(ku) if ku.crl_sign() => {
                    return Err(CsrError::CaRequested("keyUsage cRLSign"));
                }
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        if let GeneralName::URI(uri) = name {
                            uris.push(uri);
                        }
                        sans.push(describe(name));
                    }
                }
                ParsedExtension::ParseError { error } => {
                    return Err(CsrError::Malformed(format!(
                        "requested extension {} does not parse: {error}",
                        e.oid
                    )));
                }
                _ => {}
            }
        }
    }
    if extension_requests > 1 {
        return Err(CsrError::Malformed(format!(
            "{extension_requests} extensionRequest attributes; at most one is allowed"
        )));
    }
    let uri = match (sans.len(), uris.as_slice()) {
        (1, [uri]) => *uri,
        (0, _) => return Err(CsrError::SanCount("none".into())),
        _ => {
            return Err(CsrError::SanCount(format!(
                "{}: {}",
                sans.len(),
                sans.join(", ")
            )));
        }
    };
    let id: SpiffeId = uri.parse().map_err(CsrError::InvalidSpiffeId)?;
    Ok(CheckedCsr {
        id,
        spki: req.certification_request_info.subject_pki.raw.to_vec(),
    })
}

/// The DER of the request: the first `CERTIFICATE REQUEST` PEM block, or `csr` itself if it
/// holds no PEM at all (some clients send DER).
fn decode(csr: &[u8]) -> Result<Vec<u8>, CsrError> {
    let looks_like_pem = csr.windows(11).any(|w| w == b"-----BEGIN ");
    if !looks_like_pem {
        return Ok(csr.to_vec());
    }
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(csr) {
        match section {
            Ok((SectionKind::Csr, der)) => return Ok(der),
            Ok(_) => continue,
            Err(e) => return Err(CsrError::Malformed(format!("not valid PEM: {e}"))),
        }
    }
    Err(CsrError::Malformed(
        "no CERTIFICATE REQUEST PEM block".into(),
    ))
}

/// A SAN as a message shows it (`URI spiffe://…`, `DNS web`).
fn describe(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::URI(u) => format!("URI {u}"),
        GeneralName::DNSName(d) => format!("DNS {d}"),
        GeneralName::RFC822Name(e) => format!("email {e}"),
        GeneralName::IPAddress(ip) => match ip.len() {
            4 => format!(
                "IP {}",
                std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*ip).unwrap_or_default())
            ),
            16 => format!(
                "IP {}",
                std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*ip).unwrap_or_default())
            ),
            _ => "IP (invalid)".into(),
        },
        other => format!("{other}"),
    }
}
