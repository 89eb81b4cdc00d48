//! The live identity as rustls wants it: the current [`Svid`] parsed once into a signing key and
//! a trust store, re-parsed only when the snapshot holds a new `Svid`.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use mesh_core::Snapshot;
use mesh_core::identity::{SpiffeId, Svid};
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::sign::CertifiedKey;

use super::TlsError;

/// One `Svid`, ready for handshakes.
pub(crate) struct Material {
    /// Whose certificate this is.
    pub(crate) id: SpiffeId,
    /// Chain and signing key, presented to peers.
    pub(crate) key: Arc<CertifiedKey>,
    /// What peers are verified against.
    pub(crate) trust: Arc<Trust>,
}

impl fmt::Debug for Material {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Material")
            .field("id", &self.id.to_string())
            .field("trust", &self.trust)
            .finish_non_exhaustive()
    }
}

/// A trust bundle, ready for verifying peers.
pub(crate) struct Trust {
    /// The trust domain the bundle belongs to, for messages.
    pub(crate) trust_domain: String,
    /// The trust anchors peers' chains must lead to.
    pub(crate) roots: Arc<RootCertStore>,
    /// rustls' chain check for client certificates (client-auth usage) over `roots`.
    pub(crate) client_chain: Arc<dyn ClientCertVerifier>,
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trust")
            .field("trust_domain", &self.trust_domain)
            .field("anchors", &self.roots.len())
            .finish_non_exhaustive()
    }
}

impl Trust {
    /// Parses `bundle` (DER trust anchors); the error says which certificate is wrong.
    pub(crate) fn parse(
        trust_domain: &str,
        bundle: &[Vec<u8>],
        provider: &Arc<CryptoProvider>,
    ) -> Result<Trust, String> {
        let mut roots = RootCertStore::empty();
        for (i, anchor) in bundle.iter().enumerate() {
            roots
                .add(CertificateDer::from(anchor.as_slice()))
                .map_err(|e| format!("trust bundle certificate #{i}: {e}"))?;
        }
        if roots.is_empty() {
            return Err("the trust bundle is empty".into());
        }
        let roots = Arc::new(roots);
        let client_chain =
            WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(provider))
                .build()
                .map_err(|e| format!("trust bundle: {e}"))?;
        Ok(Trust {
            trust_domain: trust_domain.to_string(),
            roots,
            client_chain,
        })
    }
}

/// The snapshot of the workload's identity plus a one-entry cache of its parsed form. Shared by
/// the verifier and the resolver of one config.
pub(crate) struct Live {
    identity: Snapshot<Option<Svid>>,
    provider: Arc<CryptoProvider>,
    cache: ArcSwapOption<Cached>,
}

struct Cached {
    // Held (not only compared) so its address cannot be reused by a later `Svid`.
    source: Arc<Option<Svid>>,
    parsed: Result<Arc<Material>, TlsError>,
}

impl Live {
    pub(crate) fn new(identity: Snapshot<Option<Svid>>, provider: Arc<CryptoProvider>) -> Self {
        Live {
            identity,
            provider,
            cache: ArcSwapOption::empty(),
        }
    }

    pub(crate) fn provider(&self) -> &Arc<CryptoProvider> {
        &self.provider
    }

    /// The material of the `Svid` the snapshot holds now. Parses only after a rotation; two
    /// handshakes racing right after one may both parse, which is harmless.
    pub(crate) fn current(&self) -> Result<Arc<Material>, TlsError> {
        let svid = self.identity.load();
        if let Some(c) = &*self.cache.load()
            && Arc::ptr_eq(&c.source, &svid)
        {
            return c.parsed.clone();
        }
        let source = Arc::clone(&svid);
        drop(svid);
        let parsed = match &*source {
            None => Err(TlsError::NoIdentity),
            Some(s) => parse(s, &self.provider).map(Arc::new),
        };
        if let Err(e) = &parsed
            && !matches!(e, TlsError::NoIdentity)
        {
            tracing::error!(error = %e, "the workload's SVID is unusable; handshakes fail until the next one");
        }
        self.cache.store(Some(Arc::new(Cached {
            source,
            parsed: parsed.clone(),
        })));
        parsed
    }
}

impl fmt::Debug for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Live")
            .field("identity", &*self.identity.load())
            .finish_non_exhaustive()
    }
}

fn parse(svid: &Svid, provider: &Arc<CryptoProvider>) -> Result<Material, TlsError> {
    let invalid = |reason: String| TlsError::InvalidSvid {
        id: svid.id.clone(),
        reason,
    };
    if svid.chain.is_empty() {
        return Err(invalid("the certificate chain is empty".into()));
    }
    let chain: Vec<CertificateDer<'static>> = svid
        .chain
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(svid.key.clone()));
    let key = CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| invalid(format!("key and certificate: {e}")))?;
    let trust = Trust::parse(svid.id.trust_domain(), &svid.bundle, provider).map_err(invalid)?;
    Ok(Material {
        id: svid.id.clone(),
        key: Arc::new(key),
        trust: Arc::new(trust),
    })
}
