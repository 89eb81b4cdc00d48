//! Certificate verifiers that trust what the workload's *current* trust bundle vouches for and
//! require a SPIFFE ID, ignoring DNS names (SPIFFE certificates carry only a URI SAN).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::{
    CryptoProvider, WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature,
};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use super::TlsError;
use super::error::system_time;
use super::material::{Live, Trust};
use super::peer::{Leaf, inspect};

/// Which side's certificate is checked: the key usage differs.
#[derive(Debug, Clone, Copy)]
enum Usage {
    Server,
    Client,
}

/// Where a verifier gets the bundle it trusts.
#[derive(Debug, Clone)]
pub(crate) enum Anchors {
    /// The bundle of the workload's current SVID.
    Live(Arc<Live>),
    /// A fixed bundle (a workload's first connection to the control plane, before it has an
    /// SVID).
    Fixed(Arc<Trust>, Arc<CryptoProvider>),
}

impl Anchors {
    fn trust(&self) -> Result<Arc<Trust>, TlsError> {
        match self {
            Anchors::Live(live) => live.current().map(|m| Arc::clone(&m.trust)),
            Anchors::Fixed(trust, _) => Ok(Arc::clone(trust)),
        }
    }

    fn algorithms(&self) -> &WebPkiSupportedAlgorithms {
        let provider = match self {
            Anchors::Live(live) => live.provider(),
            Anchors::Fixed(_, provider) => provider,
        };
        &provider.signature_verification_algorithms
    }
}

/// Checks the peer's chain against the bundle and that its leaf carries one SPIFFE ID.
fn verify(
    anchors: &Anchors,
    usage: Usage,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    now: UnixTime,
) -> Result<(), TlsError> {
    let trust = anchors.trust()?;
    let leaf = inspect(end_entity)?;
    let chain = match usage {
        Usage::Server => ParsedCertificate::try_from(end_entity).and_then(|cert| {
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                &trust.roots,
                intermediates,
                now,
                anchors.algorithms().all,
            )
        }),
        Usage::Client => trust
            .client_chain
            .verify_client_cert(end_entity, intermediates, now)
            .map(|_| ()),
    };
    chain.map_err(|e| classify(&e, &leaf, &trust, now))?;
    leaf.id.map(|_| ())
}

/// A rustls/webpki chain error as a `TlsError` naming the peer.
fn classify(err: &rustls::Error, leaf: &Leaf, trust: &Trust, now: UnixTime) -> TlsError {
    let peer = leaf.name.clone();
    let now = system_time(now);
    let untrusted = |reason: String| TlsError::Untrusted {
        peer: peer.clone(),
        trust_domain: trust.trust_domain.clone(),
        reason,
    };
    let rustls::Error::InvalidCertificate(cert) = err else {
        return untrusted(err.to_string());
    };
    match cert {
        CertificateError::ExpiredContext { not_after, .. } => TlsError::Expired {
            peer,
            not_after: system_time(*not_after),
            now,
        },
        CertificateError::NotValidYetContext { not_before, .. } => TlsError::NotYetValid {
            peer,
            not_before: system_time(*not_before),
            now,
        },
        CertificateError::Expired => untrusted("it has expired".into()),
        CertificateError::NotValidYet => untrusted("it is not valid yet".into()),
        CertificateError::UnknownIssuer if leaf.self_signed => {
            untrusted("it is self-signed, not issued by a CA of the bundle".into())
        }
        CertificateError::UnknownIssuer => {
            untrusted("its issuer is not a CA of the bundle (unknown issuer)".into())
        }
        CertificateError::BadSignature => untrusted("a signature in its chain is invalid".into()),
        other => untrusted(other.to_string()),
    }
}

/// Verifies servers for a client: the chain must lead to the current bundle and the leaf must
/// carry one SPIFFE ID. Which identities are *allowed* is the caller's check after the handshake
/// ([`super::check_san`]), since it depends on the cluster.
#[derive(Debug)]
pub(crate) struct SpiffeServerVerifier {
    anchors: Anchors,
}

impl SpiffeServerVerifier {
    pub(crate) fn new(anchors: Anchors) -> Self {
        SpiffeServerVerifier { anchors }
    }
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        verify(&self.anchors, Usage::Server, end_entity, intermediates, now)
            .map(|()| ServerCertVerified::assertion())
            .map_err(TlsError::into_rustls)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, self.anchors.algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, self.anchors.algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.anchors.algorithms().supported_schemes()
    }
}

/// Verifies clients for a server: as [`SpiffeServerVerifier`] with the client-auth key usage;
/// a certificate may be required or optional.
#[derive(Debug)]
pub(crate) struct SpiffeClientVerifier {
    anchors: Anchors,
    mandatory: bool,
}

impl SpiffeClientVerifier {
    pub(crate) fn new(anchors: Anchors, mandatory: bool) -> Self {
        SpiffeClientVerifier { anchors, mandatory }
    }
}

impl ClientCertVerifier for SpiffeClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Hints are optional; the bundle changes on rotation and mesh clients hold one SVID.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        verify(&self.anchors, Usage::Client, end_entity, intermediates, now)
            .map(|()| ClientCertVerified::assertion())
            .map_err(TlsError::into_rustls)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, self.anchors.algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, self.anchors.algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.anchors.algorithms().supported_schemes()
    }
}
