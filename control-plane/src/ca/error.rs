//! What can go wrong when the CA is set up and when it is asked to sign.

use std::path::{Path, PathBuf};

use mesh_core::identity::{SpiffeId, SpiffeIdError};

/// Why the CA could not be loaded, generated or saved. Every message names the file (or
/// directory) and the reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// A file could not be read (missing, permissions, …).
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file could not be written (or a directory created).
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A state directory holds some of the CA files but not all: refusing to generate a new
    /// root over a partial one.
    #[error(
        "{}: incomplete CA state, missing {}; restore the files or empty the directory to generate a new root",
        dir.display(),
        missing.join(", ")
    )]
    Incomplete {
        /// The `<state_dir>/ca` directory.
        dir: PathBuf,
        /// The file names that are missing.
        missing: Vec<&'static str>,
    },
    /// A file's content is not what it must be (not PEM, not a certificate, not a CA, a key that
    /// does not match, a chain that does not lead to the root, expired, …).
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The options contradict each other (e.g. a default lifetime above the maximum).
    #[error("CA options: {0}")]
    Options(String),
    /// Generating a key or certificate failed.
    #[error("cannot generate the CA: {0}")]
    Generate(String),
    /// The control plane's own serving certificate could not be issued.
    #[error("cannot issue the xDS port's certificate: {0}")]
    Serving(String),
}

impl CaError {
    /// The file or directory the error is about, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            CaError::Read { path, .. }
            | CaError::Write { path, .. }
            | CaError::Invalid { path, .. } => Some(path),
            CaError::Incomplete { dir, .. } => Some(dir),
            CaError::Options(_) | CaError::Generate(_) | CaError::Serving(_) => None,
        }
    }

    pub(crate) fn invalid(path: &Path, reason: impl Into<String>) -> Self {
        CaError::Invalid {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// Why a certificate signing request was refused. Every message names what was wrong with the
/// CSR; none repeats a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CsrError {
    /// Not a PEM `CERTIFICATE REQUEST`, or its DER is not a PKCS#10 request.
    #[error("malformed CSR: {0}")]
    Malformed(String),
    /// The request's signature does not verify with the request's own public key.
    #[error("CSR signature does not verify with its public key: {0}")]
    BadSignature(String),
    /// A key or signature algorithm this CA cannot verify or certify.
    #[error("CSR uses an unsupported key or signature algorithm: {0}")]
    UnsupportedKey(String),
    /// The subject alternative names are not exactly one URI.
    #[error(
        "CSR must carry exactly one subject alternative name, a URI SAN with the SPIFFE ID; it has {0}"
    )]
    SanCount(String),
    /// The one URI SAN is not a mesh SPIFFE ID.
    #[error("CSR URI SAN is not a valid SPIFFE ID: {0}")]
    InvalidSpiffeId(SpiffeIdError),
    /// The SPIFFE ID asked for is not the one the caller was granted.
    #[error("CSR asks for identity {requested} but the caller is granted {granted}")]
    IdentityMismatch {
        /// The SPIFFE ID in the CSR.
        requested: Box<SpiffeId>,
        /// The SPIFFE ID the caller authenticated as.
        granted: Box<SpiffeId>,
    },
    /// The request asks for a CA certificate (`basicConstraints cA=true`) or for `keyCertSign`.
    #[error("CSR asks for a CA certificate ({0}); workload certificates cannot sign others")]
    CaRequested(&'static str),
    /// The requested validity is negative.
    #[error("requested validity {0} s is negative; send 0 for the default lifetime")]
    Validity(i64),
    /// The CA failed to produce the certificate (not the caller's fault).
    #[error("the CA could not sign the certificate: {0}")]
    Signing(String),
}

impl CsrError {
    /// A short stable word for metrics and logs: `malformed`, `bad_signature`,
    /// `unsupported_key`, `san`, `identity_mismatch`, `ca_requested`, `validity` or `internal`.
    pub fn reason(&self) -> &'static str {
        match self {
            CsrError::Malformed(_) => "malformed",
            CsrError::BadSignature(_) => "bad_signature",
            CsrError::UnsupportedKey(_) => "unsupported_key",
            CsrError::SanCount(_) | CsrError::InvalidSpiffeId(_) => "san",
            CsrError::IdentityMismatch { .. } => "identity_mismatch",
            CsrError::CaRequested(_) => "ca_requested",
            CsrError::Validity(_) => "validity",
            CsrError::Signing(_) => "internal",
        }
    }

    /// True when the caller asked for an identity it was not granted (PERMISSION_DENIED),
    /// rather than sending a bad request (INVALID_ARGUMENT) or hitting a CA fault.
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, CsrError::IdentityMismatch { .. })
    }

    /// True when the CA, not the request, is at fault (INTERNAL); retrying may help.
    pub fn is_internal(&self) -> bool {
        matches!(self, CsrError::Signing(_))
    }
}

/// Why a server certificate could not be issued by [`Ca::issue_server`](super::Ca::issue_server).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// A DNS name that is not a valid IA5 string.
    #[error("invalid DNS name {0:?} for a server certificate")]
    Name(String),
    /// Key generation or signing failed.
    #[error("cannot issue the server certificate: {0}")]
    Signing(String),
}
