//! Reading the SPIFFE ID out of a peer's leaf certificate, and checking it against a cluster's
//! allowed identities.

use mesh_core::StringMatch;
use mesh_core::identity::SpiffeId;
use rustls::pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;

use super::TlsError;

/// The SPIFFE ID of the leaf (first) certificate of `certs`: its only URI SAN.
///
/// This does not verify anything; call it on the certificates of a connection whose handshake a
/// mesh verifier accepted (`conn.peer_certificates()`).
pub fn peer_identity(certs: &[CertificateDer<'_>]) -> Result<SpiffeId, TlsError> {
    let leaf = certs.first().ok_or(TlsError::NoPeerCertificate)?;
    inspect(leaf)?.id
}

/// Checks that `id` is allowed by `allowed` (Envoy's SAN matchers on the full
/// `spiffe://…` URI). An empty list allows any identity the trust bundle vouches for.
pub fn check_san(id: &SpiffeId, allowed: &[StringMatch]) -> Result<(), TlsError> {
    if allowed.is_empty() {
        return Ok(());
    }
    let uri = id.to_string();
    if allowed.iter().any(|m| m.matches(&uri)) {
        Ok(())
    } else {
        Err(TlsError::NotAllowed {
            peer: id.clone(),
            allowed: allowed.to_vec(),
        })
    }
}

/// What a verifier needs to know about a leaf before (and besides) the chain check.
#[derive(Debug)]
pub(crate) struct Leaf {
    /// Its SPIFFE ID, or why it has none.
    pub(crate) id: Result<SpiffeId, TlsError>,
    /// How to name it in errors: the SPIFFE ID, else the subject, else its URI SANs.
    pub(crate) name: String,
    /// Issuer and subject are the same name.
    pub(crate) self_signed: bool,
}

pub(crate) fn inspect(der: &CertificateDer<'_>) -> Result<Leaf, TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| TlsError::Malformed {
        reason: e.to_string(),
    })?;
    let subject = cert.subject().to_string();
    let self_signed = cert.subject().as_raw() == cert.issuer().as_raw();
    let uris: Vec<&str> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::URI(u) => Some(*u),
                _ => None,
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(e) => {
            return Err(TlsError::Malformed {
                reason: format!("subject alternative names of {subject:?}: {e}"),
            });
        }
    };
    let described = if subject.is_empty() {
        format!("with URI SANs {uris:?}")
    } else {
        subject
    };
    let no_id = |reason: String| TlsError::NoSpiffeId {
        subject: described.clone(),
        reason,
    };
    let id = match uris.as_slice() {
        [] => Err(no_id(
            "it has no URI SAN; a mesh certificate carries exactly one spiffe:// ID".into(),
        )),
        [one] => one
            .parse::<SpiffeId>()
            .map_err(|e| no_id(format!("its URI SAN is not a mesh SPIFFE ID: {e}"))),
        many => Err(no_id(format!(
            "it has {} URI SANs; a mesh certificate carries exactly one",
            many.len()
        ))),
    };
    let name = match &id {
        Ok(id) => id.to_string(),
        Err(_) => described,
    };
    Ok(Leaf {
        id,
        name,
        self_signed,
    })
}
