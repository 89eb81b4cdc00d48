//! [`Acceptor`]: turns an accepted TCP connection into a mutual-TLS (or, in PERMISSIVE mode,
//! plaintext) stream and the peer's verified identity.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use mesh_core::identity::{PeerIdentity, Svid};
use mesh_core::{MeshResources, Snapshot};
use mesh_xds_client::tls::{
    ALPN_H2, ALPN_HTTP1, ClientAuth, TlsError, peer_identity, server_config,
};
use rustls::ServerConfig;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::AcceptError;

/// How long a peer has to send its first byte and finish the TLS handshake. Default of
/// [`Acceptor::handshake_timeout`].
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The first byte of a TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Istio's `PeerAuthentication` modes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PeerAuthMode {
    /// Only mutual TLS; plaintext connections are refused. Default.
    #[default]
    Strict,
    /// Mutual TLS and plaintext on the same port (told apart by the first byte), for migrations.
    /// Plaintext requests carry no `PeerIdentity`.
    Permissive,
}

impl fmt::Display for PeerAuthMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PeerAuthMode::Strict => "STRICT",
            PeerAuthMode::Permissive => "PERMISSIVE",
        })
    }
}

/// Accepts mesh connections: the TLS handshake presents the workload's current SVID and
/// verifies the client's certificate against its current trust bundle. Cheap to clone.
///
/// Defaults: [`PeerAuthMode::Strict`], client certificates required, ALPN `h2` and `http/1.1`,
/// [`DEFAULT_HANDSHAKE_TIMEOUT`].
#[derive(Clone)]
pub struct Acceptor {
    identity: Snapshot<Option<Svid>>,
    mode: PeerAuthMode,
    tls: tokio_rustls::TlsAcceptor,
    /// For chains that do not require a client certificate.
    tls_optional: tokio_rustls::TlsAcceptor,
    handshake_timeout: Duration,
    inbound: Option<Inbound>,
}

/// The inbound listener an acceptor follows.
#[derive(Clone)]
struct Inbound {
    resources: Snapshot<MeshResources>,
    name: Arc<str>,
}

/// What a connection gets, from the inbound listener or the static mode.
enum Decision {
    Plain,
    Tls { require_client_certificate: bool },
    Refuse(AcceptError),
}

impl fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acceptor")
            .field("mode", &self.mode)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("inbound", &self.inbound.as_ref().map(|i| &*i.name))
            .finish_non_exhaustive()
    }
}

impl Acceptor {
    /// An acceptor presenting `identity`'s current SVID, in STRICT mode, requiring client
    /// certificates.
    pub fn new(identity: Snapshot<Option<Svid>>) -> Acceptor {
        let config = server_config(
            identity.clone(),
            ClientAuth::Required,
            &[ALPN_H2, ALPN_HTTP1],
        );
        Acceptor::with_config(identity, config)
    }

    /// An acceptor using a mesh server config of your own
    /// ([`mesh_xds_client::tls::server_config`], e.g. with [`ClientAuth::Optional`] or other
    /// ALPN). `identity` must be the snapshot the config was built from.
    pub fn with_config(identity: Snapshot<Option<Svid>>, config: Arc<ServerConfig>) -> Acceptor {
        let optional = server_config(
            identity.clone(),
            ClientAuth::Optional,
            &[ALPN_H2, ALPN_HTTP1],
        );
        Acceptor {
            identity,
            mode: PeerAuthMode::default(),
            tls: tokio_rustls::TlsAcceptor::from(config),
            tls_optional: tokio_rustls::TlsAcceptor::from(optional),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            inbound: None,
        }
    }

    /// Follows the inbound listener `name` (gRFC A36) in `resources` (an xDS client's live
    /// state): each connection uses the listener's filter chain for its destination port and
    /// transport, so PeerAuthentication changes (STRICT, PERMISSIVE, DISABLE) apply to the next
    /// connection. A connection no chain matches is refused. Until the listener arrives, or
    /// after it is removed, the acceptor's own [`Acceptor::mode`] applies.
    #[must_use]
    pub fn inbound(mut self, resources: Snapshot<MeshResources>, name: impl Into<String>) -> Self {
        self.inbound = Some(Inbound {
            resources,
            name: name.into().into(),
        });
        self
    }

    fn decide(&self, tcp: &TcpStream, peer: std::net::SocketAddr, tls: bool) -> Decision {
        let listener = self
            .inbound
            .as_ref()
            .and_then(|i| Some((i, i.resources.load().inbound.get(&*i.name).cloned()?)));
        let Some((inbound, listener)) = listener else {
            return match (tls, self.mode) {
                (true, _) => Decision::Tls {
                    require_client_certificate: true,
                },
                (false, PeerAuthMode::Permissive) => Decision::Plain,
                (false, PeerAuthMode::Strict) => Decision::Refuse(AcceptError::PlaintextRefused {
                    peer,
                    mode: self.mode,
                }),
            };
        };
        let port = tcp.local_addr().map(|a| a.port()).unwrap_or_default();
        let refuse = |reason: String| {
            Decision::Refuse(AcceptError::NoFilterChain {
                peer,
                listener: inbound.name.to_string(),
                reason,
            })
        };
        match listener.chain_for(port, tls) {
            Some(chain) => match (&chain.tls, tls) {
                (Some(t), true) => Decision::Tls {
                    require_client_certificate: t.require_client_certificate,
                },
                (None, false) => Decision::Plain,
                (Some(_), false) => Decision::Refuse(AcceptError::PlaintextRefused {
                    peer,
                    mode: PeerAuthMode::Strict,
                }),
                (None, true) => refuse(format!(
                    "chain {} on port {port} is plaintext (PeerAuthentication DISABLE); TLS is not served",
                    chain.name
                )),
            },
            None => refuse(format!(
                "no filter chain for port {port} and {} connections",
                if tls { "TLS" } else { "plaintext" }
            )),
        }
    }

    /// Sets the peer authentication mode. Default: [`PeerAuthMode::Strict`].
    #[must_use]
    pub fn mode(mut self, mode: PeerAuthMode) -> Self {
        self.mode = mode;
        self
    }

    /// Whether client certificates are required (keeps ALPN `h2`, `http/1.1`). Default:
    /// [`ClientAuth::Required`].
    #[must_use]
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        let config = server_config(self.identity.clone(), auth, &[ALPN_H2, ALPN_HTTP1]);
        self.tls = tokio_rustls::TlsAcceptor::from(config);
        self
    }

    /// How long a peer has to send its first byte and finish the handshake. Default:
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`].
    #[must_use]
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The mode in force.
    pub fn peer_auth_mode(&self) -> PeerAuthMode {
        self.mode
    }

    /// Performs the server side of the handshake on `tcp`. Returns the stream to serve and the
    /// peer's verified identity (`None` for a plaintext peer in PERMISSIVE mode, or a TLS peer
    /// that presented no certificate where client certificates are optional).
    ///
    /// Peeks at the first byte to tell TLS (a handshake record) from plaintext, in both modes,
    /// so that a plaintext peer against STRICT gets a clear [`AcceptError::PlaintextRefused`].
    pub async fn accept(
        &self,
        tcp: TcpStream,
    ) -> Result<(ServerStream, Option<PeerIdentity>), AcceptError> {
        let peer = tcp.peer_addr().map_err(|source| AcceptError::Io {
            peer: ([0, 0, 0, 0], 0).into(),
            source,
        })?;
        match tokio::time::timeout(self.handshake_timeout, self.handshake(tcp, peer)).await {
            Ok(result) => result,
            Err(_) => Err(AcceptError::Timeout {
                peer,
                after: self.handshake_timeout,
            }),
        }
    }

    async fn handshake(
        &self,
        tcp: TcpStream,
        peer: std::net::SocketAddr,
    ) -> Result<(ServerStream, Option<PeerIdentity>), AcceptError> {
        let io = |source| AcceptError::Io { peer, source };
        let mut first = [0u8; 1];
        if tcp.peek(&mut first).await.map_err(io)? == 0 {
            return Err(io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before sending anything",
            )));
        }
        let require_client_certificate =
            match self.decide(&tcp, peer, first[0] == TLS_HANDSHAKE_RECORD) {
                Decision::Plain => return Ok((ServerStream::Plain(tcp), None)),
                Decision::Refuse(e) => return Err(e),
                Decision::Tls {
                    require_client_certificate,
                } => require_client_certificate,
            };
        if self.identity.load().is_none() {
            return Err(AcceptError::Tls {
                peer,
                source: TlsError::NoIdentity,
            });
        }
        let acceptor = if require_client_certificate {
            &self.tls
        } else {
            &self.tls_optional
        };
        let tls = acceptor
            .accept(tcp)
            .await
            .map_err(|e| match TlsError::find_in(&e) {
                Some(source) => AcceptError::Tls { peer, source },
                None => io(e),
            })?;
        let id = match tls.get_ref().1.peer_certificates() {
            Some(certs) => Some(PeerIdentity(
                peer_identity(certs).map_err(|source| AcceptError::Tls { peer, source })?,
            )),
            None => None,
        };
        Ok((ServerStream::Tls(Box::new(tls)), id))
    }
}

/// An accepted connection: mutual TLS, or plaintext (PERMISSIVE mode only).
#[derive(Debug)]
pub enum ServerStream {
    /// A TLS connection.
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// A plaintext connection.
    Plain(TcpStream),
}

impl ServerStream {
    /// True for a TLS connection.
    pub fn is_tls(&self) -> bool {
        matches!(self, ServerStream::Tls(_))
    }

    /// The certificates the peer presented (leaf first), if any.
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        match self {
            ServerStream::Tls(t) => t.get_ref().1.peer_certificates(),
            ServerStream::Plain(_) => None,
        }
    }

    /// The TCP connection underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            ServerStream::Tls(t) => t.get_ref().0,
            ServerStream::Plain(s) => s,
        }
    }
}

impl AsyncRead for ServerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerStream::Tls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
            ServerStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ServerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ServerStream::Tls(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
            ServerStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerStream::Tls(t) => Pin::new(t.as_mut()).poll_flush(cx),
            ServerStream::Plain(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ServerStream::Tls(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
            ServerStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ServerStream::Tls(t) => Pin::new(t.as_mut()).poll_write_vectored(cx, bufs),
            ServerStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ServerStream::Tls(t) => t.is_write_vectored(),
            ServerStream::Plain(s) => s.is_write_vectored(),
        }
    }
}
