//! [`AcceptError`]: why a connection was not accepted, naming the peer address.

use std::net::SocketAddr;
use std::time::Duration;

use mesh_xds_client::tls::TlsError;

use super::PeerAuthMode;

/// Why [`super::Acceptor::accept`] refused or lost a connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcceptError {
    /// The peer spoke plaintext and the mode requires mTLS.
    #[error(
        "plaintext connection from {peer} refused: peer authentication is {mode}, which requires mTLS"
    )]
    PlaintextRefused {
        /// The peer's address.
        peer: SocketAddr,
        /// The mode in force.
        mode: PeerAuthMode,
    },
    /// The server's inbound listener has no filter chain for this connection (its port, or TLS
    /// against a plaintext-only chain).
    #[error("connection from {peer} refused: inbound listener {listener}: {reason}")]
    NoFilterChain {
        /// The peer's address.
        peer: SocketAddr,
        /// The inbound listener's name.
        listener: String,
        /// Why no chain applies.
        reason: String,
    },
    /// The TLS handshake failed: the peer's certificate was refused, this workload has no
    /// certificate yet, or the protocol failed.
    #[error("TLS from {peer} refused: {source}")]
    Tls {
        /// The peer's address.
        peer: SocketAddr,
        /// What failed.
        source: TlsError,
    },
    /// The peer sent nothing, or did not finish its handshake, in time.
    #[error("connection from {peer}: no handshake after {after:?}")]
    Timeout {
        /// The peer's address.
        peer: SocketAddr,
        /// The handshake timeout.
        after: Duration,
    },
    /// The connection failed (reset, closed before a handshake).
    #[error("connection from {peer}: {source}")]
    Io {
        /// The peer's address.
        peer: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl AcceptError {
    /// True when the connection was refused by policy: plaintext against STRICT, or a peer
    /// certificate that does not verify. False for network trouble and for this workload having
    /// no certificate yet.
    pub fn is_refused(&self) -> bool {
        match self {
            AcceptError::PlaintextRefused { .. } | AcceptError::NoFilterChain { .. } => true,
            AcceptError::Tls { source, .. } => source.is_untrusted(),
            _ => false,
        }
    }

    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        match self {
            AcceptError::PlaintextRefused { peer, .. }
            | AcceptError::NoFilterChain { peer, .. }
            | AcceptError::Tls { peer, .. }
            | AcceptError::Timeout { peer, .. }
            | AcceptError::Io { peer, .. } => *peer,
        }
    }
}
