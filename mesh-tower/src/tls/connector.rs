//! [`TlsConnector`]: TCP, then a TLS handshake, then the cluster's identity check.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use mesh_core::StringMatch;
use mesh_core::cluster::Cluster;
use mesh_xds_client::tls::handshake;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;

use super::TlsStream;
use crate::client::BoxError;

/// The server name sent when a cluster sets no SNI. The mesh's verifiers ignore it (SPIFFE
/// certificates carry a URI SAN, not a DNS name); `.invalid` says it names nothing.
pub const DEFAULT_SNI: &str = "mesh.invalid";

/// A hyper-util connector (`tower::Service<Uri>`) for one TLS cluster: connects over TCP, does
/// the TLS handshake with a mesh client config, and refuses the connection unless the server's
/// SPIFFE ID matches the cluster's SAN matchers, all before hyper gets the connection, so no
/// request byte reaches a server with the wrong identity.
///
/// Errors are [`TlsError`](mesh_xds_client::tls::TlsError)s (handshake refused, identity not allowed) or I/O errors (connect,
/// reset, timeout), boxed as hyper-util wants them.
#[derive(Clone)]
pub struct TlsConnector {
    http: HttpConnector,
    tls: tokio_rustls::TlsConnector,
    policy: Arc<Policy>,
}

struct Policy {
    server_name: ServerName<'static>,
    san: Vec<StringMatch>,
    handshake_timeout: Duration,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("server_name", &self.policy.server_name)
            .field("san", &self.policy.san)
            .finish_non_exhaustive()
    }
}

impl TlsConnector {
    /// A connector for `cluster`, using its `tls` settings (SNI, SAN matchers; none: any
    /// identity the bundle vouches for) and its `connect_timeout` for the TCP connect and again
    /// for the handshake. `config` is a mesh client config
    /// ([`mesh_xds_client::tls::client_config`]); its ALPN decides HTTP/1.1 or HTTP/2.
    pub fn new(config: Arc<ClientConfig>, cluster: &Cluster) -> TlsConnector {
        let tls = cluster.tls.as_ref();
        let server_name = tls
            .and_then(|t| t.sni.as_deref())
            .and_then(|sni| match ServerName::try_from(sni.to_string()) {
                Ok(name) => Some(name),
                Err(e) => {
                    tracing::warn!(cluster = %cluster.name, sni, error = %e, "cluster SNI is not a valid server name; sending {DEFAULT_SNI}");
                    None
                }
            })
            .unwrap_or_else(|| ServerName::try_from(DEFAULT_SNI).expect("a valid DNS name"));
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(cluster.connect_timeout));
        TlsConnector {
            http,
            tls: tokio_rustls::TlsConnector::from(config),
            policy: Arc::new(Policy {
                server_name,
                san: tls.map(|t| t.san_matchers.clone()).unwrap_or_default(),
                handshake_timeout: cluster.connect_timeout,
            }),
        }
    }
}

impl tower::Service<Uri> for TlsConnector {
    type Response = TlsStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<TlsStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.http.call(uri);
        let tls = self.tls.clone();
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            let tcp = connecting.await?.into_inner();
            let (stream, peer) = handshake(
                &tls,
                policy.server_name.clone(),
                tcp,
                policy.handshake_timeout,
                &policy.san,
            )
            .await?;
            Ok(TlsStream::new(stream, peer))
        })
    }
}
