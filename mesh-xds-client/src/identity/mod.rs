//! The workload's identity, obtained in-process: no agent beside the application.
//!
//! [`IdentityClient::start`] generates a key in memory, sends a CSR for the workload's SPIFFE ID
//! to the control plane's CA (Istio's `IstioCertificateService.CreateCertificate`, authenticated
//! with a bootstrap token), and publishes the resulting [`Svid`] in a
//! `Snapshot<Option<Svid>>`. Halfway through the certificate's lifetime it does it again with a
//! new key; while the CA is unreachable it retries with backoff (1 s doubling-ish to 30 s) and
//! keeps serving the current certificate. TLS configs built on the snapshot (see
//! `mesh_tower`) pick each new certificate up at their next handshake, so rotation drops no
//! connection.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use mesh_xds_client::identity::{IdentityClient, IdentityOptions, Token};
//!
//! let id = "spiffe://cluster.local/ns/shop/sa/frontend".parse()?;
//! let identity = IdentityClient::start(IdentityOptions::new(
//!     "http://127.0.0.1:15010",
//!     id,
//!     Token::File("/var/run/mesh/token".into()),
//! ));
//! let svid = identity.ready(std::time::Duration::from_secs(10)).await?;
//! println!("{} valid until {:?}", svid.id, svid.not_after);
//! # Ok(()) }
//! ```
//!
//! Renewals (at half the certificate's lifetime) go over mutual TLS with the current certificate,
//! without the token. On Kubernetes the token is the pod's projected service account token
//! (`Token::File`, re-read at each request as the kubelet rotates it), and an injected pod's
//! bootstrap names everything: [`IdentityOptions::from_bootstrap`].

mod csr;
mod task;

use std::path::PathBuf;
use std::time::Duration;

use mesh_core::Snapshot;
use mesh_core::identity::{SpiffeId, Svid};

/// An [`Svid`] from a CA's answer: `chain_pem` leaf first and root last (Istio's
/// `CreateCertificate` response), `key` the leaf's PKCS#8 DER key. The leaf must carry exactly
/// `id`; with `trusted` roots, the chain's root must be one of them, else it becomes the bundle.
pub fn svid_from_pem(
    id: &SpiffeId,
    key: Vec<u8>,
    chain_pem: &[String],
    trusted: Option<&[Vec<u8>]>,
) -> Result<Svid, IdentityError> {
    csr::svid_from_chain(id, key, chain_pem, trusted)
}

/// The bootstrap's top-level key that [`IdentityOptions::from_bootstrap`] reads. Not a
/// `certificate_providers` plugin: gRPC implementations refuse a bootstrap naming a plugin they
/// do not know, and ignore unknown top-level keys, so one bootstrap serves a stock gRPC client
/// in the same pod too.
pub const CA_BOOTSTRAP_KEY: &str = "meshlib_ca";

/// How the workload proves who it is to the CA.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Token {
    /// A token given inline.
    Inline(String),
    /// A file holding the token (re-read at every request, so it can be replaced).
    File(PathBuf),
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Inline(_) => f.write_str("Token::Inline(<redacted>)"),
            Token::File(p) => write!(f, "Token::File({})", p.display()),
        }
    }
}

/// Where and how to get the identity.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IdentityOptions {
    /// The CA, `http://host:port` (the control plane's xDS port).
    pub ca: String,
    /// The identity to ask for.
    pub id: SpiffeId,
    /// The bootstrap token.
    pub token: Token,
    /// Trust anchors (DER) the CA's root must be one of. Default: none, the root the CA returns
    /// becomes the bundle (trust on first use; use it only over a trusted channel).
    pub trust_bundle: Option<Vec<Vec<u8>>>,
    /// Requested certificate lifetime. Default: none, the CA's default (24 h).
    pub lifetime: Option<Duration>,
    /// First retry delay after a failure. Default: 1 s.
    pub backoff_base: Duration,
    /// Longest retry delay. Default: 30 s.
    pub backoff_max: Duration,
}

impl IdentityOptions {
    /// Options with the defaults above.
    pub fn new(ca: impl Into<String>, id: SpiffeId, token: Token) -> IdentityOptions {
        IdentityOptions {
            ca: ca.into(),
            id,
            token,
            trust_bundle: None,
            lifetime: None,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
        }
    }

    /// Sets [`IdentityOptions::lifetime`].
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = Some(lifetime);
        self
    }

    /// Sets [`IdentityOptions::trust_bundle`].
    pub fn with_trust_bundle(mut self, roots: Vec<Vec<u8>>) -> Self {
        self.trust_bundle = Some(roots);
        self
    }

    /// The options a bootstrap names under [`CA_BOOTSTRAP_KEY`] (what the control plane's
    /// injection webhook writes into a pod): `ca_address`, `spiffe_id`, `token_file` (a
    /// projected service account token, re-read at every request) and `root_cert_file` (the trust
    /// bundle, PEM). `Ok(None)` when the bootstrap has no such key.
    pub fn from_bootstrap(
        bootstrap: &crate::Bootstrap,
    ) -> Result<Option<IdentityOptions>, IdentityError> {
        let Some(config) = bootstrap.mesh_ca.as_ref() else {
            return Ok(None);
        };
        let field = |name: &str| {
            config[name]
                .as_str()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| IdentityError::Bootstrap(format!("{name} is required")))
        };
        let id: SpiffeId = field("spiffe_id")?
            .parse()
            .map_err(|e| IdentityError::Bootstrap(format!("spiffe_id: {e}")))?;
        let mut options = IdentityOptions::new(
            field("ca_address")?,
            id,
            Token::File(field("token_file")?.into()),
        );
        if let Some(path) = config["root_cert_file"].as_str() {
            use rustls_pki_types::CertificateDer;
            use rustls_pki_types::pem::PemObject;
            let bad =
                |e: String| IdentityError::Bootstrap(format!("config.root_cert_file {path}: {e}"));
            let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
            let roots = CertificateDer::pem_slice_iter(&pem)
                .map(|c| c.map(|c| c.to_vec()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(e.to_string()))?;
            if roots.is_empty() {
                return Err(bad("no certificate in it".into()));
            }
            options.trust_bundle = Some(roots);
        }
        Ok(Some(options))
    }

    /// Sets the retry delays.
    pub fn with_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max;
        self
    }
}

/// Why getting a certificate failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The CA could not be reached.
    #[error("CA {ca} unreachable: {reason}")]
    Unreachable {
        /// The CA address.
        ca: String,
        /// Why.
        reason: String,
    },
    /// The CA refused the request.
    #[error("CA {ca} refused {id}: {code}: {message}")]
    Refused {
        /// The CA address.
        ca: String,
        /// The identity asked for.
        id: String,
        /// The gRPC status code.
        code: String,
        /// The CA's reason.
        message: String,
    },
    /// The token could not be read.
    #[error("bootstrap token {path}: {reason}")]
    Token {
        /// The token file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The key or CSR could not be made.
    #[error("creating the CSR: {0}")]
    Csr(String),
    /// The CA's answer is not a usable chain for us.
    #[error("the CA's certificate chain: {0}")]
    BadChain(String),
    /// The bootstrap's certificate provider cannot be used.
    #[error("the bootstrap's {CA_BOOTSTRAP_KEY}: {0}")]
    Bootstrap(String),
    /// No certificate arrived in time.
    #[error("no certificate after {0:?}; last error: {1}")]
    Timeout(Duration, String),
}

impl IdentityError {
    /// True when retrying cannot help without an operator (a refusal or a bad chain).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            IdentityError::Refused { .. }
                | IdentityError::BadChain(_)
                | IdentityError::Bootstrap(_)
        )
    }
}

/// The live identity of this workload; dropping it stops renewals (the last certificate stays in
/// the snapshot).
#[derive(Debug)]
pub struct IdentityClient {
    svid: Snapshot<Option<Svid>>,
    last_error: Snapshot<Option<IdentityError>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for IdentityClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl IdentityClient {
    /// Starts fetching and rotating the certificate. Must be called inside a tokio runtime.
    pub fn start(options: IdentityOptions) -> IdentityClient {
        let svid = Snapshot::new(None);
        let last_error = Snapshot::new(None);
        let task = tokio::spawn(task::run(options, svid.clone(), last_error.clone()));
        IdentityClient {
            svid,
            last_error,
            task,
        }
    }

    /// The live certificate: `None` until the first one arrives. TLS configs read this.
    pub fn svid(&self) -> &Snapshot<Option<Svid>> {
        &self.svid
    }

    /// The last failure, cleared by the next success.
    pub fn last_error(&self) -> Option<IdentityError> {
        self.last_error.load().as_ref().clone()
    }

    /// Waits for a certificate.
    pub async fn ready(&self, timeout: Duration) -> Result<Svid, IdentityError> {
        let mut watch = self.svid.watch();
        let wait = async {
            loop {
                if let Some(s) = self.svid.load().as_ref() {
                    return s.clone();
                }
                watch.changed().await;
            }
        };
        tokio::time::timeout(timeout, wait).await.map_err(|_| {
            IdentityError::Timeout(
                timeout,
                self.last_error()
                    .map_or_else(|| "none".into(), |e| e.to_string()),
            )
        })
    }
}
