//! CSR and chain helpers shared by the CA's unit tests and the integration tests
//! (`tests/ca.rs` includes this file by path).

#![allow(dead_code)]

use std::sync::Arc;

use rcgen::{CertificateParams, KeyPair, SanType};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;

/// A PEM CSR with these SANs and a fresh key, after `edit` (extensions, key usages, …).
pub(crate) fn csr_with(sans: Vec<SanType>, edit: impl FnOnce(&mut CertificateParams)) -> String {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.subject_alt_names = sans;
    edit(&mut params);
    params.serialize_request(&key).unwrap().pem().unwrap()
}

/// A URI SAN.
pub(crate) fn uri(s: &str) -> SanType {
    SanType::URI(s.try_into().unwrap())
}

/// A CSR for exactly this SPIFFE ID.
pub(crate) fn csr_for(id: &str) -> String {
    csr_with(vec![uri(id)], |_| {})
}

/// A certificate from PEM.
pub(crate) fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

/// Verifies `chain` (PEM, leaf first) as a client certificate against `roots`, as rustls would.
pub(crate) fn verify(
    chain: &[String],
    roots: &[CertificateDer<'static>],
) -> Result<(), rustls::Error> {
    let mut store = RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).unwrap();
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(
        Arc::new(store),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .unwrap();
    let ders: Vec<_> = chain.iter().map(|p| der(p)).collect();
    verifier
        .verify_client_cert(&ders[0], &ders[1..], UnixTime::now())
        .map(|_| ())
}
