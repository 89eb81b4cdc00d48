//! The connection a [`super::TlsConnector`] hands to hyper.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use mesh_core::identity::SpiffeId;
use tokio::net::TcpStream;

/// A client TLS connection whose server identity has been verified and allowed.
#[derive(Debug)]
pub struct TlsStream {
    io: TokioIo<tokio_rustls::client::TlsStream<TcpStream>>,
    peer: SpiffeId,
}

impl TlsStream {
    pub(crate) fn new(tls: tokio_rustls::client::TlsStream<TcpStream>, peer: SpiffeId) -> Self {
        TlsStream {
            io: TokioIo::new(tls),
            peer,
        }
    }

    /// The server's verified identity.
    pub fn peer(&self) -> &SpiffeId {
        &self.peer
    }

    /// The rustls connection (negotiated protocol, ALPN, peer certificates).
    pub fn tls(&self) -> &rustls::ClientConnection {
        self.io.inner().get_ref().1
    }
}

impl Connection for TlsStream {
    fn connected(&self) -> Connected {
        let connected = self.io.inner().get_ref().0.connected();
        if self.tls().alpn_protocol() == Some(b"h2") {
            connected.negotiated_h2()
        } else {
            connected
        }
    }
}

impl Read for TlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for TlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}
