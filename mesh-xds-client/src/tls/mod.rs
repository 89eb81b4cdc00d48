//! SPIFFE mutual TLS on rustls (ring provider only): the configs both the xDS connection and
//! mesh-tower's client and server stacks use.
//!
//! # What it does
//! - **Verifies peers against the current trust bundle.** The verifiers read the workload's
//!   identity, a [`Snapshot<Option<Svid>>`](mesh_core::Snapshot), at each handshake, so a rotated
//!   bundle applies to the next handshake. A peer's chain must lead to a trust anchor of the
//!   bundle (signatures, validity, key usage checked by webpki), and its leaf must carry exactly
//!   one URI SAN that is a mesh SPIFFE ID. DNS names and SNI are ignored: SPIFFE certificates
//!   carry only the URI SAN.
//! - **Presents the current SVID.** The certificate resolvers read the same snapshot at each
//!   handshake (parsing each new `Svid` once), so storing a new `Svid` rotates the certificate
//!   without touching established connections.
//! - **Names what it refuses.** Every failure is a [`TlsError`] naming the certificate and the
//!   reason ("certificate of spiffe://… expired at …"); verifiers embed it in the rustls error,
//!   and [`TlsError::find_in`] gets it back out of the handshake's `io::Error`.
//!
//! Before its first certificate a workload can still verify the control plane:
//! [`bootstrap_client_config`] checks the server the same way against a fixed bundle and presents
//! no certificate (the control plane's port accepts that with [`ClientAuth::Optional`]).
//!
//! Which identities a client accepts for a given cluster is checked after the handshake with
//! [`check_san`] on [`peer_identity`]; mesh-tower's connector does it before handing the
//! connection to hyper, so no request byte reaches a server with the wrong identity.
//!
//! # What it does not do
//! No session resumption (a resumed session would skip verification against a rotated bundle
//! and keep presenting a retired certificate), no revocation checking, no trust-domain
//! federation (one bundle per workload), no SNI-based certificate selection.
//!
//! # Example
//! ```no_run
//! use mesh_core::Snapshot;
//! use mesh_core::identity::Svid;
//! use mesh_xds_client::tls::{self, ClientAuth};
//!
//! // Filled by the certificate fetcher; `None` until the first certificate arrives.
//! let identity: Snapshot<Option<Svid>> = Snapshot::new(None);
//! let client = tls::client_config(identity.clone(), &[tls::ALPN_H2]);
//! let server = tls::server_config(identity, ClientAuth::Required, &[tls::ALPN_H2, tls::ALPN_HTTP1]);
//! # let _ = (client, server);
//! ```

mod connect;
mod error;
mod material;
mod peer;
mod resolve;
#[cfg(test)]
mod tests;
mod verify;

use std::sync::Arc;

use mesh_core::Snapshot;
use mesh_core::identity::Svid;
use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::server::NoServerSessionStorage;
use rustls::{ClientConfig, ServerConfig};

pub use connect::{BoxError, ChannelConnector, handshake};
pub use error::TlsError;
pub use peer::{check_san, peer_identity};

use material::Live;
use material::Trust;
use resolve::SvidResolver;
use verify::{Anchors, SpiffeClientVerifier, SpiffeServerVerifier};

/// ALPN protocol ID of HTTP/2.
pub const ALPN_H2: &str = "h2";
/// ALPN protocol ID of HTTP/1.1.
pub const ALPN_HTTP1: &str = "http/1.1";

/// Whether a server requires a client certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// Every client must present a certificate the bundle vouches for (mesh workloads).
    /// Default.
    #[default]
    Required,
    /// A client may present no certificate (the control plane's port, where a workload without
    /// an identity yet authenticates with a bootstrap token); one it does present must verify.
    Optional,
}

/// The crypto provider every mesh config is built with: rustls' ring provider.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client config that presents the current SVID of `identity` and verifies servers against
/// its current trust bundle, offering `alpn` (e.g. `&[ALPN_H2]`; empty offers none).
///
/// Handshakes fail with [`TlsError::NoIdentity`] while `identity` holds `None`.
pub fn client_config(identity: Snapshot<Option<Svid>>, alpn: &[&str]) -> Arc<ClientConfig> {
    let provider = provider();
    let live = Arc::new(Live::new(identity, Arc::clone(&provider)));
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports TLS 1.2 and 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(SpiffeServerVerifier::new(Anchors::Live(
            Arc::clone(&live),
        ))))
        .with_client_cert_resolver(Arc::new(SvidResolver::new(live)));
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    config.resumption = Resumption::disabled();
    Arc::new(config)
}

/// A client config for a workload that has no certificate yet (its first call to the control
/// plane's CA, authenticated by a bootstrap token): verifies the server as [`client_config`] does,
/// against a fixed `bundle` of `trust_domain` (DER trust anchors, e.g. from the bootstrap file),
/// and presents no certificate.
pub fn bootstrap_client_config(
    trust_domain: &str,
    bundle: &[Vec<u8>],
    alpn: &[&str],
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let trust = Trust::parse(trust_domain, bundle, &provider).map_err(|reason| {
        TlsError::InvalidBundle {
            trust_domain: trust_domain.to_string(),
            reason,
        }
    })?;
    let verifier =
        SpiffeServerVerifier::new(Anchors::Fixed(Arc::new(trust), Arc::clone(&provider)));
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports TLS 1.2 and 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// A server config that presents the current SVID of `identity` and verifies client
/// certificates against its current trust bundle (`auth` says whether one is required),
/// negotiating `alpn` (e.g. `&[ALPN_H2, ALPN_HTTP1]`).
///
/// Handshakes fail while `identity` holds `None`: the server has no certificate to present.
pub fn server_config(
    identity: Snapshot<Option<Svid>>,
    auth: ClientAuth,
    alpn: &[&str],
) -> Arc<ServerConfig> {
    let provider = provider();
    let live = Arc::new(Live::new(identity, Arc::clone(&provider)));
    let verifier = SpiffeClientVerifier::new(
        Anchors::Live(Arc::clone(&live)),
        auth == ClientAuth::Required,
    );
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports TLS 1.2 and 1.3")
        .with_client_cert_verifier(Arc::new(verifier))
        .with_cert_resolver(Arc::new(SvidResolver::new(live)));
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    // Every connection is a full handshake against the current bundle and certificate.
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Arc::new(config)
}
