//! Who is asking: the decision that turns a `CreateCertificate` call's credentials into the one
//! identity it may be issued. Pure, so that every rule is a unit test.

use mesh_core::identity::{PeerIdentity, SpiffeId};

use super::tokens::TokenTable;

/// How a caller proved the identity it was granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrantedBy {
    /// Its current certificate, verified by the mTLS handshake (a renewal).
    Certificate,
    /// A bootstrap token from the token file.
    Token,
    /// A Kubernetes service account token, checked by the API server (TokenReview).
    KubernetesToken,
}

impl GrantedBy {
    /// `certificate` or `token`, for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantedBy::Certificate => "certificate",
            GrantedBy::Token => "token",
            GrantedBy::KubernetesToken => "kubernetes-token",
        }
    }
}

/// The identity a caller may be issued, and how it proved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The identity.
    pub id: SpiffeId,
    /// The credential that proved it.
    pub by: GrantedBy,
}

/// Why a caller is not authenticated (gRPC UNAUTHENTICATED). No message repeats a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Neither a client certificate nor an `authorization` header.
    #[error(
        "no credentials: present the current certificate over mTLS, or send `authorization: Bearer <bootstrap token>`"
    )]
    NoCredentials,
    /// An `authorization` value that is not `Bearer <token>`.
    #[error("the authorization metadata is not of the form `Bearer <token>`")]
    NotBearer,
    /// A bearer token that is in no token file entry.
    #[error("unknown bootstrap token")]
    UnknownToken,
    /// A bearer token while the control plane has no token file.
    #[error("bootstrap tokens are not enabled on this control plane (no token file)")]
    NoTokenFile,
    /// The Kubernetes API server did not authenticate the token (expired, revoked, forged, or
    /// bound to a pod that is gone).
    #[error("the Kubernetes API server did not authenticate the token: {reason}")]
    TokenRejected {
        /// The API server's reason.
        reason: String,
    },
    /// A valid token, but not for this CA's audience.
    #[error(
        "the token is not for audience {audience:?} (request a projected token with that audience)"
    )]
    WrongAudience {
        /// The audience this CA accepts.
        audience: String,
    },
    /// A valid token of a user, not of a service account.
    #[error("the token belongs to {username:?}, not to a service account")]
    NotServiceAccount {
        /// The token's user name.
        username: String,
    },
    /// The token could not be reviewed (the API server is unreachable or refused us).
    #[error("cannot review the token with the Kubernetes API server: {0}")]
    ReviewUnavailable(String),
    /// A client certificate of another trust domain.
    #[error("the client certificate's identity {id} is not in trust domain {trust_domain}")]
    ForeignTrustDomain {
        /// The peer's identity.
        id: SpiffeId,
        /// This CA's trust domain.
        trust_domain: String,
    },
}

/// Decides which identity a caller is granted, in this order:
///
/// 1. a verified mTLS peer (`peer`, the [`PeerIdentity`] the TLS acceptor put in the request's
///    extensions) is granted its own identity: a renewal with the current, valid certificate;
/// 2. else an `authorization: Bearer <token>` value (`authorization`, the raw metadata value) is
///    looked up in `tokens` (`None`: no token file configured);
/// 3. else the caller is not authenticated.
pub fn authenticate(
    peer: Option<&PeerIdentity>,
    authorization: Option<&[u8]>,
    tokens: Option<&TokenTable>,
    trust_domain: &str,
) -> Result<Grant, AuthError> {
    if let Some(PeerIdentity(id)) = peer {
        if id.trust_domain() != trust_domain {
            return Err(AuthError::ForeignTrustDomain {
                id: id.clone(),
                trust_domain: trust_domain.to_string(),
            });
        }
        return Ok(Grant {
            id: id.clone(),
            by: GrantedBy::Certificate,
        });
    }
    let Some(value) = authorization else {
        return Err(AuthError::NoCredentials);
    };
    let token = bearer(value).ok_or(AuthError::NotBearer)?;
    let tokens = tokens.ok_or(AuthError::NoTokenFile)?;
    tokens
        .lookup(token)
        .map(|id| Grant {
            id: id.clone(),
            by: GrantedBy::Token,
        })
        .ok_or(AuthError::UnknownToken)
}

/// Checks a bearer token with an outside authority (Kubernetes' TokenReview) and returns the
/// identity it proves.
pub trait TokenReview: Send + Sync + std::fmt::Debug {
    /// The identity `token` proves, or why it proves none.
    fn review<'a>(
        &'a self,
        token: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<SpiffeId, AuthError>> + Send + 'a>>;
}

/// The token of `Bearer <token>` (scheme case-insensitive, RFC 6750), if that is the form.
pub(crate) fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123";

    fn tokens() -> TokenTable {
        TokenTable::parse(
            &format!("tokens:\n- token: {TOKEN}\n  namespace: default\n  serviceAccount: web\n"),
            "cluster.local",
        )
        .unwrap()
    }

    fn id(s: &str) -> SpiffeId {
        s.parse().unwrap()
    }

    #[test]
    fn a_bootstrap_token_grants_its_identity() {
        let t = tokens();
        let g = authenticate(
            None,
            Some(format!("Bearer {TOKEN}").as_bytes()),
            Some(&t),
            "cluster.local",
        );
        assert_eq!(
            g,
            Ok(Grant {
                id: id("spiffe://cluster.local/ns/default/sa/web"),
                by: GrantedBy::Token
            })
        );
        // The scheme is case-insensitive.
        let g = authenticate(
            None,
            Some(format!("bearer {TOKEN}").as_bytes()),
            Some(&t),
            "cluster.local",
        );
        assert!(g.is_ok());
    }

    #[test]
    fn a_verified_peer_certificate_grants_renewal_of_its_own_identity() {
        let t = tokens();
        let peer = PeerIdentity(id("spiffe://cluster.local/ns/shop/sa/cart"));
        // The certificate wins over any token sent along.
        let g = authenticate(
            Some(&peer),
            Some(format!("Bearer {TOKEN}").as_bytes()),
            Some(&t),
            "cluster.local",
        )
        .unwrap();
        assert_eq!(g.id, peer.0);
        assert_eq!(g.by, GrantedBy::Certificate);
        // Without a token file, too.
        assert!(authenticate(Some(&peer), None, None, "cluster.local").is_ok());
    }

    #[test]
    fn a_peer_of_another_trust_domain_is_refused() {
        let peer = PeerIdentity(id("spiffe://other.local/ns/shop/sa/cart"));
        let e = authenticate(Some(&peer), None, None, "cluster.local").unwrap_err();
        assert!(matches!(e, AuthError::ForeignTrustDomain { .. }));
        assert!(
            e.to_string()
                .contains("spiffe://other.local/ns/shop/sa/cart"),
            "{e}"
        );
    }

    #[test]
    fn missing_malformed_and_unknown_credentials_are_refused_without_echo() {
        let t = tokens();
        let td = "cluster.local";
        assert_eq!(
            authenticate(None, None, Some(&t), td),
            Err(AuthError::NoCredentials)
        );
        assert_eq!(
            authenticate(None, Some(TOKEN.as_bytes()), Some(&t), td),
            Err(AuthError::NotBearer)
        );
        assert_eq!(
            authenticate(None, Some(b"Basic dXNlcjpwYXNz"), Some(&t), td),
            Err(AuthError::NotBearer)
        );
        assert_eq!(
            authenticate(None, Some(b"Bearer "), Some(&t), td),
            Err(AuthError::NotBearer)
        );
        let wrong = "Bearer 0123456789abcdef0124";
        let e = authenticate(None, Some(wrong.as_bytes()), Some(&t), td).unwrap_err();
        assert_eq!(e, AuthError::UnknownToken);
        assert!(!e.to_string().contains("0123456789abcdef0124"));
        assert_eq!(
            authenticate(None, Some(format!("Bearer {TOKEN}").as_bytes()), None, td),
            Err(AuthError::NoTokenFile)
        );
    }
}
