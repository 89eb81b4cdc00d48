//! [`TlsError`]: why a certificate or a handshake was refused, naming the certificate (by SPIFFE ID
//! or subject) and the reason.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mesh_core::StringMatch;
use mesh_core::identity::SpiffeId;
use rustls::{CertificateError, OtherError};

/// Why mutual TLS failed. Cloneable, so that it can travel inside rustls errors and be recovered
/// on the other side of a handshake ([`TlsError::find_in`]).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The workload has no certificate yet (the identity snapshot holds `None`).
    #[error("no identity yet: the workload has no certificate")]
    NoIdentity,
    /// The workload's own SVID cannot be used (bad key, bad certificate, empty trust bundle).
    #[error("the workload's certificate for {id} cannot be used: {reason}")]
    InvalidSvid {
        /// The identity the SVID claims.
        id: SpiffeId,
        /// What is wrong with it.
        reason: String,
    },
    /// A trust bundle given on its own ([`super::bootstrap_client_config`]) cannot be used.
    #[error("the trust bundle of {trust_domain} cannot be used: {reason}")]
    InvalidBundle {
        /// The trust domain it was given for.
        trust_domain: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The peer presented no certificate.
    #[error("the peer presented no certificate")]
    NoPeerCertificate,
    /// The peer's certificate is not parseable X.509.
    #[error("the peer's certificate is not valid X.509: {reason}")]
    Malformed {
        /// The parser's complaint.
        reason: String,
    },
    /// The peer's leaf certificate does not carry exactly one URI SAN that is a mesh SPIFFE ID.
    #[error("certificate {subject} is not a mesh identity: {reason}")]
    NoSpiffeId {
        /// The certificate's subject (or its URI SANs when the subject is empty).
        subject: String,
        /// What is missing or wrong.
        reason: String,
    },
    /// The peer's certificate (or one in its chain) has expired.
    #[error("certificate of {peer} expired at {} (now {})", utc(*.not_after), utc(*.now))]
    Expired {
        /// The peer, by SPIFFE ID or subject.
        peer: String,
        /// When it expired.
        not_after: SystemTime,
        /// The verification time.
        now: SystemTime,
    },
    /// The peer's certificate (or one in its chain) is not valid yet.
    #[error("certificate of {peer} is not valid before {} (now {})", utc(*.not_before), utc(*.now))]
    NotYetValid {
        /// The peer, by SPIFFE ID or subject.
        peer: String,
        /// When it becomes valid.
        not_before: SystemTime,
        /// The verification time.
        now: SystemTime,
    },
    /// The peer's chain does not lead to the workload's trust bundle.
    #[error(
        "certificate of {peer} is not vouched for by the trust bundle of {trust_domain}: {reason}"
    )]
    Untrusted {
        /// The peer, by SPIFFE ID or subject.
        peer: String,
        /// The trust domain of the workload whose bundle was used.
        trust_domain: String,
        /// Why (unknown issuer, self-signed, bad signature, ...).
        reason: String,
    },
    /// The peer is trusted but its identity is not one of those allowed (Envoy's SAN matchers).
    #[error("peer presented {peer}, allowed are [{}]", matchers(.allowed))]
    NotAllowed {
        /// The identity the peer proved.
        peer: SpiffeId,
        /// The matchers none of which matched.
        allowed: Vec<StringMatch>,
    },
    /// The peer aborted the handshake with an alert. Certificate alerts mean it did not accept
    /// this workload's certificate; with TLS 1.3 a client learns it only when it first reads,
    /// after the handshake looked complete.
    #[error("the peer refused the handshake with alert {alert:?}{}", if refused_certificate(*.alert) { " (it does not accept this workload's certificate)" } else { "" })]
    RefusedByPeer {
        /// The alert the peer sent.
        alert: rustls::AlertDescription,
    },
    /// The handshake failed for another reason (protocol error, unexpected message).
    #[error("TLS handshake failed: {0}")]
    Handshake(#[source] rustls::Error),
}

impl TlsError {
    /// True when the peer's certificate was refused: missing, malformed, without a SPIFFE ID,
    /// expired, not yet valid, or not vouched for by the trust bundle.
    pub fn is_untrusted(&self) -> bool {
        matches!(
            self,
            TlsError::NoPeerCertificate
                | TlsError::Malformed { .. }
                | TlsError::NoSpiffeId { .. }
                | TlsError::Expired { .. }
                | TlsError::NotYetValid { .. }
                | TlsError::Untrusted { .. }
        )
    }

    /// True when the peer is trusted but its identity is not allowed.
    pub fn is_not_allowed(&self) -> bool {
        matches!(self, TlsError::NotAllowed { .. })
    }

    /// True when the peer refused this workload's certificate (a certificate alert).
    pub fn is_refused_by_peer(&self) -> bool {
        matches!(self, TlsError::RefusedByPeer { alert } if refused_certificate(*alert))
    }

    /// True when this workload cannot speak mTLS yet: no certificate, or an unusable one.
    pub fn is_no_identity(&self) -> bool {
        matches!(
            self,
            TlsError::NoIdentity | TlsError::InvalidSvid { .. } | TlsError::InvalidBundle { .. }
        )
    }

    /// This error as a rustls error, so a verifier can return it and the handshake's caller can
    /// get it back with [`TlsError::find_in`]. Certificate problems become
    /// `InvalidCertificate` (the peer gets a `bad_certificate` alert).
    pub fn into_rustls(self) -> rustls::Error {
        match self {
            TlsError::Handshake(e) => e,
            e @ (TlsError::NoIdentity
            | TlsError::InvalidSvid { .. }
            | TlsError::InvalidBundle { .. }) => rustls::Error::Other(OtherError(Arc::new(e))),
            e => {
                rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
            }
        }
    }

    /// A rustls error as a `TlsError`: the one a mesh verifier embedded, else
    /// [`TlsError::Handshake`].
    pub fn from_rustls(err: &rustls::Error) -> TlsError {
        let embedded = match err {
            rustls::Error::InvalidCertificate(CertificateError::Other(o))
            | rustls::Error::Other(o) => o.0.downcast_ref::<TlsError>(),
            _ => None,
        };
        if let Some(e) = embedded {
            return e.clone();
        }
        match err {
            rustls::Error::AlertReceived(alert) => TlsError::RefusedByPeer { alert: *alert },
            _ => TlsError::Handshake(err.clone()),
        }
    }

    /// The first `TlsError` in `err` and its source chain, also looking inside `io::Error`s and
    /// rustls errors (which is how tokio-rustls reports a failed handshake).
    pub fn find_in(err: &(dyn StdError + 'static)) -> Option<TlsError> {
        let mut next = Some(err);
        while let Some(e) = next {
            if let Some(t) = e.downcast_ref::<TlsError>() {
                return Some(t.clone());
            }
            if let Some(r) = e.downcast_ref::<rustls::Error>() {
                return Some(TlsError::from_rustls(r));
            }
            // `io::Error::source` skips the wrapped error itself; look at it directly.
            if let Some(io) = e.downcast_ref::<std::io::Error>()
                && let Some(inner) = io.get_ref()
                && let Some(found) = TlsError::find_in(inner)
            {
                return Some(found);
            }
            next = e.source();
        }
        None
    }
}

/// Alerts a peer sends when it does not accept the certificate it was shown.
fn refused_certificate(alert: rustls::AlertDescription) -> bool {
    use rustls::AlertDescription as A;
    matches!(
        alert,
        A::BadCertificate
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::UnknownCA
            | A::AccessDenied
            | A::CertificateRequired
    )
}

/// Matchers as a user would write them: `exact spiffe://…, prefix spiffe://…`.
fn matchers(allowed: &[StringMatch]) -> String {
    let mut out = String::new();
    for (i, m) in allowed.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = match m {
            StringMatch::Exact(s) => write!(out, "exact {s}"),
            StringMatch::Prefix(s) => write!(out, "prefix {s}"),
            StringMatch::Suffix(s) => write!(out, "suffix {s}"),
            StringMatch::Contains(s) => write!(out, "contains {s}"),
            StringMatch::Regex(r) => write!(out, "regex {}", r.as_str()),
        };
    }
    out
}

/// RFC 3339 UTC (`2025-03-01T12:00:00Z`).
pub(crate) fn utc(t: SystemTime) -> String {
    mesh_core::time::rfc3339_utc(t, false)
}

/// A UNIX time from rustls as a `SystemTime`.
pub(crate) fn system_time(t: rustls::pki_types::UnixTime) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(t.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc() {
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_294_400 + 3_661);
        assert_eq!(utc(t), "2024-03-01T13:01:01Z");
    }

    #[test]
    fn survives_a_round_trip_through_rustls_and_io() {
        let e = TlsError::NoSpiffeId {
            subject: "CN=x".into(),
            reason: "no URI SAN".into(),
        };
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, e.clone().into_rustls());
        let found = TlsError::find_in(&io).expect("found");
        assert!(found.is_untrusted());
        assert_eq!(found.to_string(), e.to_string());
        let plain = TlsError::from_rustls(&rustls::Error::DecryptError);
        assert!(matches!(plain, TlsError::Handshake(_)));
    }
}
