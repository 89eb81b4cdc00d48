//! The workload's side of issuance: a key generated in-process, a CSR naming exactly our SPIFFE
//! ID, and the CA's answer checked and turned into an [`Svid`].

use std::time::{Duration, SystemTime};

use mesh_core::identity::{SpiffeId, Svid};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::IdentityError;

/// A fresh ECDSA P-256 key (PKCS#8 DER) and a PEM CSR whose only SAN is `id`.
pub(crate) fn key_and_csr(id: &SpiffeId) -> Result<(Vec<u8>, String), IdentityError> {
    let csr_error = |e: rcgen::Error| IdentityError::Csr(e.to_string());
    let key = rcgen::KeyPair::generate().map_err(csr_error)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(csr_error)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let uri = rcgen::string::Ia5String::try_from(id.to_string()).map_err(csr_error)?;
    params.subject_alt_names = vec![rcgen::SanType::URI(uri)];
    let csr = params.serialize_request(&key).map_err(csr_error)?;
    Ok((key.serialize_der(), csr.pem().map_err(csr_error)?))
}

/// Checks the CA's chain (leaf first, root last, PEM) and builds the SVID. When `trusted` roots
/// are configured, the returned root must be one of them; otherwise the returned root becomes the
/// trust bundle.
pub(crate) fn svid_from_chain(
    id: &SpiffeId,
    key: Vec<u8>,
    chain_pem: &[String],
    trusted: Option<&[Vec<u8>]>,
) -> Result<Svid, IdentityError> {
    let mut chain = Vec::new();
    for (i, pem) in chain_pem.iter().enumerate() {
        for der in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let der = der.map_err(|e| {
                IdentityError::BadChain(format!("certificate {i} of the chain is not PEM: {e}"))
            })?;
            chain.push(der.as_ref().to_vec());
        }
    }
    if chain.len() < 2 {
        return Err(IdentityError::BadChain(format!(
            "the CA returned {} certificate(s); expected the leaf and at least the root",
            chain.len()
        )));
    }
    let root = chain.pop().expect("at least two");
    let bundle = match trusted {
        Some(roots) if roots.contains(&root) => roots.to_vec(),
        Some(_) => {
            return Err(IdentityError::BadChain(
                "the CA's root is not in the configured trust bundle".into(),
            ));
        }
        None => vec![root],
    };
    let (not_before, not_after, got) = leaf_facts(&chain[0])?;
    if got.as_ref() != Some(id) {
        return Err(IdentityError::BadChain(format!(
            "the CA issued {} instead of {id}",
            got.map_or_else(
                || "a certificate without a SPIFFE ID".into(),
                |g| g.to_string()
            )
        )));
    }
    Ok(Svid {
        id: id.clone(),
        chain,
        key,
        bundle,
        not_before,
        not_after,
    })
}

/// Validity and SPIFFE ID of a leaf certificate.
fn leaf_facts(der: &[u8]) -> Result<(SystemTime, SystemTime, Option<SpiffeId>), IdentityError> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| IdentityError::BadChain(format!("the leaf does not parse: {e}")))?;
    let at = |t: ASN1Time| {
        let secs = t.timestamp();
        if secs >= 0 {
            SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
        } else {
            SystemTime::UNIX_EPOCH
        }
    };
    let validity = cert.validity();
    let id = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .and_then(|san| {
            san.value.general_names.iter().find_map(|n| match n {
                GeneralName::URI(u) => u.parse().ok(),
                _ => None,
            })
        });
    Ok((at(validity.not_before), at(validity.not_after), id))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CA that signs whatever CSR it is given (the CA's own checks are the control plane's).
    fn sign(csr_pem: &str) -> (Vec<String>, Vec<u8>) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let root = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem).unwrap();
        let leaf = csr.signed_by(&issuer).unwrap();
        (vec![leaf.pem(), root.pem()], root.der().to_vec())
    }

    #[test]
    fn csr_names_exactly_our_identity_and_the_chain_becomes_an_svid() {
        let id: SpiffeId = "spiffe://mesh.local/ns/shop/sa/web".parse().unwrap();
        let (key, csr) = key_and_csr(&id).unwrap();
        let parsed = rcgen::CertificateSigningRequestParams::from_pem(&csr).unwrap();
        assert_eq!(parsed.params.subject_alt_names.len(), 1);
        assert!(
            matches!(&parsed.params.subject_alt_names[0], rcgen::SanType::URI(u) if u.as_str() == id.to_string())
        );

        let (chain, root) = sign(&csr);
        let svid = svid_from_chain(&id, key.clone(), &chain, None).unwrap();
        assert_eq!(svid.id, id);
        assert_eq!(
            svid.chain.len(),
            1,
            "the root is not part of the presented chain"
        );
        assert_eq!(svid.bundle, vec![root.clone()]);
        assert!(svid.not_after > svid.not_before);
        assert!(svid_from_chain(&id, key, &chain, Some(&[root])).is_ok());
    }

    #[test]
    fn refuses_a_chain_for_someone_else_or_from_an_untrusted_root() {
        let id: SpiffeId = "spiffe://mesh.local/ns/shop/sa/web".parse().unwrap();
        let other: SpiffeId = "spiffe://mesh.local/ns/shop/sa/admin".parse().unwrap();
        let (key, csr) = key_and_csr(&other).unwrap();
        let (chain, _) = sign(&csr);
        let err = svid_from_chain(&id, key.clone(), &chain, None).unwrap_err();
        assert!(err.to_string().contains("issued spiffe://mesh.local/ns/shop/sa/admin instead of spiffe://mesh.local/ns/shop/sa/web"), "{err}");

        let (_, csr) = key_and_csr(&id).unwrap();
        let (chain, _) = sign(&csr);
        let (_, unrelated_root) = sign(&csr);
        let err = svid_from_chain(&id, key.clone(), &chain, Some(&[unrelated_root])).unwrap_err();
        assert!(
            err.to_string()
                .contains("not in the configured trust bundle"),
            "{err}"
        );

        let err = svid_from_chain(&id, key, &chain[..1], None).unwrap_err();
        assert!(
            err.is_permanent() && err.to_string().contains("1 certificate(s)"),
            "{err}"
        );
    }
}
