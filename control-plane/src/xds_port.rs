//! The xDS port serves plaintext and TLS on one socket: the first byte of a connection says which
//! (0x16 opens a TLS handshake). TLS uses the control plane's own SVID, issued by its CA, and
//! accepts an optional client certificate: a workload that presents one (a renewal, or xDS over
//! mTLS) is known by its verified SPIFFE ID, which reaches every gRPC handler as a
//! [`PeerIdentity`] request extension. Plaintext stays open for bootstrapping workloads, Envoy and
//! grpcio peers.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use mesh_core::Snapshot;
use mesh_core::identity::{PeerIdentity, SpiffeId, Svid};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::ca::Ca;

/// How long a connection may take to send its first byte and finish a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a gRPC handler learns about the connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The client's address.
    pub remote: Option<SocketAddr>,
    /// The verified identity of a client that presented a certificate.
    pub peer: Option<PeerIdentity>,
}

/// One accepted connection, TLS or plaintext.
#[derive(Debug)]
pub struct Conn {
    io: Io,
    info: ConnInfo,
}

#[derive(Debug)]
enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// Accepts connections on `listener` and yields them once their kind is known and any TLS
/// handshake is done; a slow or failed handshake never holds up the others. Ends when the
/// receiver is dropped.
pub(crate) fn incoming(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
) -> (
    tokio_stream::wrappers::ReceiverStream<std::io::Result<Conn>>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let task = tokio::spawn(async move {
        loop {
            let (stream, remote) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "xDS port: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if tx.is_closed() {
                return;
            }
            let (tx, tls) = (tx.clone(), tls.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, classify(stream, remote, tls)).await {
                    Ok(Ok(conn)) => {
                        let _ = tx.send(Ok(conn)).await;
                    }
                    Ok(Err(e)) => {
                        tracing::info!(%remote, error = %e, "xDS port: connection refused")
                    }
                    Err(_) => {
                        tracing::info!(%remote, "xDS port: no handshake within {HANDSHAKE_TIMEOUT:?}")
                    }
                }
            });
        }
    });
    (tokio_stream::wrappers::ReceiverStream::new(rx), task)
}

async fn classify(
    stream: TcpStream,
    remote: SocketAddr,
    tls: Option<TlsAcceptor>,
) -> std::io::Result<Conn> {
    let _ = stream.set_nodelay(true);
    let mut first = [0u8; 1];
    let n = stream.peek(&mut first).await?;
    let info = |peer| ConnInfo {
        remote: Some(remote),
        peer,
    };
    match tls {
        Some(acceptor) if n == 1 && first[0] == 0x16 => {
            let tls = acceptor.accept(stream).await?;
            let peer = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| mesh_xds_client::tls::peer_identity(certs).ok())
                .map(PeerIdentity);
            Ok(Conn {
                io: Io::Tls(Box::new(tls)),
                info: info(peer),
            })
        }
        _ => Ok(Conn {
            io: Io::Plain(stream),
            info: info(None),
        }),
    }
}

/// Copies the connection's verified peer into each request as [`PeerIdentity`], where the CA and
/// other handlers look for it.
pub(crate) fn copy_peer<B>(mut req: http::Request<B>) -> http::Request<B> {
    let peer = req
        .extensions()
        .get::<ConnInfo>()
        .and_then(|c| c.peer.clone());
    if let Some(p) = peer {
        req.extensions_mut().insert(p);
    }
    req
}

/// The control plane's own SVID for the xDS port (`spiffe://<td>/ns/istio-system/sa/mesh-control-plane`,
/// also valid for `names`), re-issued at half its lifetime by the returned task.
pub(crate) fn serving_identity(
    ca: Arc<Ca>,
    names: Vec<String>,
) -> Result<(Snapshot<Option<Svid>>, tokio::task::JoinHandle<()>), String> {
    let id = SpiffeId::control_plane(ca.trust_domain()).map_err(|e| e.to_string())?;
    let first = issue(&ca, &id, &names)?;
    let live = Snapshot::new(Some(first));
    let task = {
        let live = live.clone();
        tokio::spawn(async move {
            loop {
                let at = live
                    .load()
                    .as_ref()
                    .as_ref()
                    .map(|s| s.refresh_at())
                    .unwrap_or_else(std::time::SystemTime::now);
                let wait = at
                    .duration_since(std::time::SystemTime::now())
                    .unwrap_or_default()
                    .max(Duration::from_secs(1));
                tokio::time::sleep(wait).await;
                match issue(&ca, &id, &names) {
                    Ok(svid) => live.store(Some(svid)),
                    Err(e) => tracing::error!(error = %e, "re-issuing the xDS port's certificate"),
                }
            }
        })
    };
    Ok((live, task))
}

fn issue(ca: &Ca, id: &SpiffeId, names: &[String]) -> Result<Svid, String> {
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::PemObject;
    let cert = ca
        .issue_server(id, names, ca.cert_ttl())
        .map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes())
        .map_err(|e| format!("the issued key: {e}"))?;
    let trusted: Vec<Vec<u8>> = ca.trust_bundle().iter().map(|c| c.to_vec()).collect();
    mesh_xds_client::identity::svid_from_pem(
        id,
        key.secret_der().to_vec(),
        &cert.chain_pem,
        Some(&trusted),
    )
    .map_err(|e| e.to_string())
}
