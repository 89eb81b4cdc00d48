//! Certificate resolvers that present the *current* SVID at each handshake: after a rotation,
//! new handshakes present the new certificate while established connections carry on.

use std::sync::Arc;

use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::material::Live;

/// Presents the snapshot's current SVID, as client or as server. With no identity yet (or an
/// unusable one) it presents nothing: a server handshake then fails, and a client offers no
/// certificate (which a server requiring one refuses).
#[derive(Debug)]
pub(crate) struct SvidResolver {
    live: Arc<Live>,
}

impl SvidResolver {
    pub(crate) fn new(live: Arc<Live>) -> Self {
        SvidResolver { live }
    }

    fn key(&self) -> Option<Arc<CertifiedKey>> {
        self.live.current().ok().map(|m| Arc::clone(&m.key))
    }
}

impl ResolvesClientCert for SvidResolver {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.key()
    }

    fn has_certs(&self) -> bool {
        // Asked once per config use; the answer can change with the snapshot, so always let
        // rustls ask `resolve`.
        true
    }
}

impl ResolvesServerCert for SvidResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.key()
    }
}
