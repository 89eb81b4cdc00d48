//! Dialing a mesh peer: TCP, the TLS handshake, then the peer's SPIFFE ID against what is
//! allowed, before a byte of application data goes out. [`ChannelConnector`] does it for tonic
//! channels (the xDS stream and the CA once a workload has its certificate); `mesh_tower`'s
//! connector does it for the client stack with [`handshake`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use mesh_core::StringMatch;
use mesh_core::identity::SpiffeId;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::{TlsError, check_san, peer_identity};

/// The error type of connectors (what hyper and tonic take).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The TLS handshake on `tcp`, bounded by `timeout`, then the server's SPIFFE ID checked against
/// `allowed` (empty: any identity the bundle vouches for). TLS failures come back as
/// [`TlsError`] when rustls reported one.
pub async fn handshake(
    tls: &tokio_rustls::TlsConnector,
    server_name: ServerName<'static>,
    tcp: TcpStream,
    timeout: Duration,
    allowed: &[StringMatch],
) -> Result<(TlsStream<TcpStream>, SpiffeId), BoxError> {
    let stream = match tokio::time::timeout(timeout, tls.connect(server_name, tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Err(match TlsError::find_in(&e) {
                Some(t) => Box::new(t),
                None => Box::new(e),
            });
        }
        Err(_) => {
            return Err(Box::new(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("TLS handshake not done after {timeout:?}"),
            )));
        }
    };
    let certs = stream.get_ref().1.peer_certificates().unwrap_or_default();
    let peer = peer_identity(certs)?;
    check_san(&peer, allowed)?;
    Ok((stream, peer))
}

/// A tonic/hyper connector for `https://host:port` URIs: mutual TLS with `config`, the server's
/// SPIFFE ID checked against `allowed`.
#[derive(Clone)]
pub struct ChannelConnector {
    tls: tokio_rustls::TlsConnector,
    allowed: Arc<[StringMatch]>,
    timeout: Duration,
}

impl std::fmt::Debug for ChannelConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelConnector")
            .field("allowed", &self.allowed)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ChannelConnector {
    /// A connector presenting and verifying with `config`; `timeout` bounds the TCP connect and
    /// the handshake each.
    pub fn new(config: Arc<ClientConfig>, allowed: Vec<StringMatch>, timeout: Duration) -> Self {
        ChannelConnector {
            tls: tokio_rustls::TlsConnector::from(config),
            allowed: allowed.into(),
            timeout,
        }
    }
}

impl tower::Service<http::Uri> for ChannelConnector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let authority = uri
                .authority()
                .ok_or_else(|| format!("{uri} has no host:port"))?
                .clone();
            let port = authority.port_u16().unwrap_or(443);
            let host = authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']');
            let tcp = tokio::time::timeout(this.timeout, TcpStream::connect((host, port)))
                .await
                .map_err(|_| {
                    format!(
                        "connecting to {authority}: no answer after {:?}",
                        this.timeout
                    )
                })??;
            let _ = tcp.set_nodelay(true);
            let name = ServerName::try_from(host.to_string())
                .unwrap_or_else(|_| ServerName::try_from("mesh.invalid").expect("a DNS name"));
            let (stream, _) = handshake(&this.tls, name, tcp, this.timeout, &this.allowed).await?;
            Ok(TokioIo::new(stream))
        })
    }
}
