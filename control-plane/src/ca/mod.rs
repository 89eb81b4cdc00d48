//! The certificate authority: workload identities (X.509 SVIDs) for the mesh.
//!
//! A workload generates its key, sends a CSR for its SPIFFE ID
//! (`spiffe://<trust-domain>/ns/<ns>/sa/<sa>`) to Istio's `IstioCertificateService.CreateCertificate`
//! on the xDS port, and gets back a chain: its certificate first, the root last.
//!
//! - **Who may get which identity.** The first certificate is granted by a bootstrap token the
//!   operator created ([`tokens`]); renewals by the current certificate, verified by mTLS
//!   ([`auth::authenticate`]). A CSR for any other identity is refused (PERMISSION_DENIED).
//! - **What is signed.** Only the CSR's public key and its one URI SAN are used; the CA decides
//!   everything else ([`Ca::sign`]). A malformed CSR, a bad signature, not exactly one URI SAN, or
//!   a request for a CA certificate is refused (INVALID_ARGUMENT).
//! - **Where the key lives.** A root generated on first start and kept in
//!   `<state_dir>/ca/`, or an operator's CA directory in Istio's plugged-in layout (which makes
//!   intermediate CAs work), or, for tests, an in-memory root ([`CaSource`]).
//! - **The trust bundle** is the last element of every chain and is served by the admin API at
//!   `/ca/root-cert.pem`.
//!
//! What it does not do: revocation (certificates are short-lived instead), Kubernetes
//! service-account tokens (they come with the Kubernetes source), and TLS on the xDS port itself
//! (wired separately; [`CaService`] reads the [`PeerIdentity`](mesh_core::identity::PeerIdentity)
//! request extension that acceptor will insert).
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use control_plane::ca::{Ca, CaOptions, CaSource};
//! let ca = Ca::new(&CaOptions {
//!     source: CaSource::StateDir("/var/lib/mesh".into()),
//!     token_file: Some("/etc/mesh/tokens.yaml".into()),
//!     ..CaOptions::default()
//! })?;
//! print!("{}", ca.root_pem());
//! # Ok(()) }
//! ```

pub mod auth;
mod authority;
mod csr;
mod error;
mod pem;
mod service;
pub mod store;
pub mod tokens;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

use mesh_core::identity::SpiffeId;

pub use authority::{Ca, ServerCert};
pub use error::{CaError, CsrError, IssueError};
pub use service::CaService;
pub use store::CLOCK_SKEW;

/// Where the CA's signing key and certificates come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CaSource {
    /// A root generated at start and kept in memory only: every restart invalidates every
    /// certificate issued. For tests and demos (a warning is logged).
    #[default]
    InMemory,
    /// A state directory: the CA lives in `<dir>/ca/` (Istio's file names). Generated and saved
    /// on first start (key file mode 0600, directory 0700), loaded on every later start.
    StateDir(PathBuf),
    /// An operator-provided CA directory in Istio's plugged-in layout: `ca-cert.pem`,
    /// `ca-key.pem` (PKCS#8), `cert-chain.pem` (the signing certificate's chain up to the root)
    /// and `root-cert.pem`. Never written to.
    Plugged(PathBuf),
}

impl CaSource {
    /// The signing certificate's file, for messages.
    pub(crate) fn ca_cert_path(&self) -> PathBuf {
        match self {
            CaSource::InMemory => PathBuf::from("(in-memory root)"),
            CaSource::StateDir(d) => store::state_ca_dir(d).join(store::CA_CERT),
            CaSource::Plugged(d) => d.join(store::CA_CERT),
        }
    }
}

/// How the CA runs.
#[derive(Debug, Clone)]
pub struct CaOptions {
    /// Where the signing key comes from. Default: [`CaSource::InMemory`].
    pub source: CaSource,
    /// Trust domain of every identity issued and of the bootstrap tokens. Default: `cluster.local`.
    pub trust_domain: String,
    /// Lifetime of a certificate whose request asks for none. Default: 24 h.
    pub cert_ttl: Duration,
    /// Longest lifetime a request may ask for; a longer request gets this. Default: 24 h
    /// (a workload cannot make its credential outlive what the operator chose as the default;
    /// raise it together with `cert_ttl`). Must be at least `cert_ttl`.
    pub max_cert_ttl: Duration,
    /// The bootstrap token file (see [`tokens`]). Default: none, so only renewals over mTLS are
    /// accepted.
    pub token_file: Option<PathBuf>,
}

impl Default for CaOptions {
    fn default() -> Self {
        Self {
            source: CaSource::InMemory,
            trust_domain: "cluster.local".into(),
            cert_ttl: Duration::from_secs(24 * 3600),
            max_cert_ttl: Duration::from_secs(24 * 3600),
            token_file: None,
        }
    }
}

impl CaOptions {
    /// Checks the options against each other.
    pub fn validate(&self) -> Result<(), CaError> {
        if let Err(e) = SpiffeId::new(&self.trust_domain, "ns", "sa") {
            return Err(CaError::Options(format!(
                "trust domain {:?} is not valid: {e}",
                self.trust_domain
            )));
        }
        if self.cert_ttl.is_zero() {
            return Err(CaError::Options(
                "the certificate lifetime must not be zero".into(),
            ));
        }
        if self.cert_ttl > self.max_cert_ttl {
            return Err(CaError::Options(format!(
                "the default certificate lifetime ({} s) exceeds the maximum ({} s); raise the maximum (--max-cert-ttl) too",
                self.cert_ttl.as_secs(),
                self.max_cert_ttl.as_secs()
            )));
        }
        Ok(())
    }
}
