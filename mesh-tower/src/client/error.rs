//! Errors of the client stack: each names what failed and why, and classifies itself.

use std::net::SocketAddr;
use std::time::Duration;

use mesh_xds_client::tls::TlsError;

/// Why a request through [`super::Client`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No listener or route table is known for the request's authority.
    #[error(
        "no route for {authority}: the mesh has no listener {target} (is the target subscribed and does it exist?)"
    )]
    NoTarget {
        /// The request's authority.
        authority: String,
        /// The listener looked up, `host:port`.
        target: String,
    },
    /// The route table has no virtual host or route matching the request.
    #[error("no route in {table} matches {method} {authority}{path}")]
    NoRoute {
        /// Route table name.
        table: String,
        /// Method.
        method: String,
        /// Authority.
        authority: String,
        /// Path.
        path: String,
    },
    /// A route names a cluster the client does not have (yet).
    #[error("cluster {cluster} (from route {route:?}) is not known")]
    NoCluster {
        /// The cluster.
        cluster: String,
        /// The route.
        route: String,
    },
    /// The cluster has no endpoint that may receive requests.
    #[error("cluster {cluster} has no healthy endpoint")]
    NoHealthyEndpoint {
        /// The cluster.
        cluster: String,
    },
    /// The route timeout expired.
    #[error("route {route:?} timed out after {timeout:?}")]
    Timeout {
        /// The route.
        route: String,
        /// The timeout.
        timeout: Duration,
    },
    /// Connecting to or talking with an endpoint failed.
    #[error("upstream {endpoint} of cluster {cluster}: {source}")]
    Upstream {
        /// The cluster.
        cluster: String,
        /// The endpoint.
        endpoint: SocketAddr,
        /// True when the connection could not be made (nothing was sent).
        connect: bool,
        /// What failed.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The cluster requires mutual TLS and the workload has no certificate: the client was
    /// built without an identity, or the identity snapshot holds none yet. Nothing is sent, not
    /// even in plaintext.
    #[error(
        "cluster {cluster} requires mTLS and the workload has no certificate yet (no identity): nothing sent"
    )]
    NoIdentity {
        /// The cluster.
        cluster: String,
    },
    /// The mutual-TLS handshake with an endpoint failed, the server's identity is not one the
    /// cluster allows, or the server refused this workload's certificate. The server's app never
    /// saw the request: the connection is closed before a request is written, except when the
    /// server refuses our certificate under TLS 1.3, which the client learns only after writing
    /// (and the server discards unread).
    #[error("mTLS with {endpoint} of cluster {cluster} refused: {source}")]
    Tls {
        /// The cluster.
        cluster: String,
        /// The endpoint.
        endpoint: SocketAddr,
        /// What was refused and why.
        source: Box<TlsError>,
    },
    /// The request is not a valid absolute-form request.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl Error {
    /// The HTTP status Envoy would have answered with in the caller's place (404 for no route,
    /// 504 for a timeout, 503 for the other upstream failures, 400 for an invalid request): the
    /// `response_code` metrics and access logs record for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::NoTarget { .. } | Error::NoRoute { .. } => 404,
            Error::Timeout { .. } => 504,
            Error::InvalidRequest(_) => 400,
            _ => 503,
        }
    }

    /// Envoy's response flag for this error (`NR`, `NC`, `UH`, `UT`, `UF`, `UC`).
    pub fn response_flags(&self) -> crate::telemetry::ResponseFlags {
        use crate::telemetry::ResponseFlags as F;
        match self {
            Error::NoTarget { .. } | Error::NoRoute { .. } => F::NO_ROUTE_FOUND,
            Error::NoCluster { .. } => F::NO_CLUSTER_FOUND,
            Error::NoHealthyEndpoint { .. } => F::NO_HEALTHY_UPSTREAM,
            Error::Timeout { .. } => F::UPSTREAM_REQUEST_TIMEOUT,
            Error::Upstream { connect: false, .. } => F::UPSTREAM_CONNECTION_TERMINATION,
            Error::Upstream { .. } | Error::NoIdentity { .. } | Error::Tls { .. } => {
                F::UPSTREAM_CONNECTION_FAILURE
            }
            Error::InvalidRequest(_) => F::NONE,
        }
    }

    /// True when the request certainly never reached an endpoint.
    pub fn never_sent(&self) -> bool {
        match self {
            Error::Upstream { connect, .. } => *connect,
            Error::NoIdentity { .. } | Error::Tls { .. } => true,
            Error::Timeout { .. } => false,
            _ => true,
        }
    }
}
