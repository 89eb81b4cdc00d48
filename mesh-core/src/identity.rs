//! Workload identity: the SPIFFE ID a workload proves with its X.509 SVID.
//!
//! Istio's form, `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`, is the only one the
//! mesh issues and the one authorization policies match (`principals: ["cluster.local/ns/default/sa/web"]`
//! is the ID without its scheme).
//!
//! ```
//! use mesh_core::identity::SpiffeId;
//!
//! let id: SpiffeId = "spiffe://mesh.local/ns/default/sa/web".parse().unwrap();
//! assert_eq!(id.namespace(), "default");
//! assert_eq!(id.principal(), "mesh.local/ns/default/sa/web");
//! assert!("spiffe://mesh.local/web".parse::<SpiffeId>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;

/// The namespace of the control plane's own identity (Istio's root namespace).
pub const CONTROL_PLANE_NAMESPACE: &str = "istio-system";
/// The service account of the control plane's own identity.
pub const CONTROL_PLANE_SERVICE_ACCOUNT: &str = "mesh-control-plane";

/// A workload's identity, `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.
///
/// Cloning is a reference-count increment (the server side hands one to every request), and the
/// parts are slices of the whole ID, so matching needs no formatting.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId {
    // The whole ID; the parts below are byte ranges of it, so equality, order and hashing on
    // `uri` alone are the ID's.
    uri: std::sync::Arc<str>,
    namespace: (usize, usize),
    service_account: usize,
}

/// Why a string is not a mesh SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpiffeIdError {
    /// It does not start with `spiffe://`.
    #[error("{0:?} is not a SPIFFE ID: it must start with spiffe://")]
    Scheme(String),
    /// The path is not `/ns/<namespace>/sa/<service-account>`.
    #[error("{0:?} is not a mesh SPIFFE ID: the path must be /ns/<namespace>/sa/<service-account>")]
    Path(String),
    /// A part is empty or has characters SPIFFE does not allow.
    #[error(
        "{id:?}: {part} {value:?} is empty or has characters other than a-z, 0-9, '.', '-', '_'"
    )]
    Invalid {
        /// The whole ID.
        id: String,
        /// Which part: trust domain, namespace or service account.
        part: &'static str,
        /// The offending value.
        value: String,
    },
}

impl SpiffeId {
    /// The identity of service account `sa` in namespace `ns` of `trust_domain`.
    pub fn new(trust_domain: &str, ns: &str, sa: &str) -> Result<SpiffeId, SpiffeIdError> {
        format!("spiffe://{trust_domain}/ns/{ns}/sa/{sa}").parse()
    }

    /// The control plane's identity in `trust_domain`: what workloads expect the xDS port (and
    /// its CA) to present.
    pub fn control_plane(trust_domain: &str) -> Result<SpiffeId, SpiffeIdError> {
        SpiffeId::new(
            trust_domain,
            CONTROL_PLANE_NAMESPACE,
            CONTROL_PLANE_SERVICE_ACCOUNT,
        )
    }

    /// The trust domain (`cluster.local`).
    pub fn trust_domain(&self) -> &str {
        // `spiffe://<td>/ns/<ns>/…`: the namespace starts 4 bytes after the trust domain ends.
        &self.uri[SCHEME.len()..self.namespace.0 - "/ns/".len()]
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.uri[self.namespace.0..self.namespace.1]
    }

    /// The service account.
    pub fn service_account(&self) -> &str {
        &self.uri[self.service_account..]
    }

    /// The ID without `spiffe://`, as Istio's `principals` and `source.principal` write it.
    pub fn principal(&self) -> String {
        self.uri[SCHEME.len()..].to_string()
    }

    /// The whole ID, `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`, without
    /// formatting: what Envoy's RBAC `authenticated.principal_name` is matched against.
    pub fn as_uri(&self) -> &str {
        &self.uri
    }
}

const SCHEME: &str = "spiffe://";

fn valid_part(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

impl FromStr for SpiffeId {
    type Err = SpiffeIdError;

    fn from_str(s: &str) -> Result<SpiffeId, SpiffeIdError> {
        let rest = s
            .strip_prefix("spiffe://")
            .ok_or_else(|| SpiffeIdError::Scheme(s.to_string()))?;
        let mut parts = rest.split('/');
        let (Some(td), Some("ns"), Some(ns), Some("sa"), Some(sa), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(SpiffeIdError::Path(s.to_string()));
        };
        for (part, value) in [
            ("trust domain", td),
            ("namespace", ns),
            ("service account", sa),
        ] {
            // Service accounts may carry upper case in some platforms; SPIFFE paths allow it.
            let ok = if part == "service account" {
                valid_part(&value.to_ascii_lowercase())
            } else {
                valid_part(value)
            };
            if !ok {
                return Err(SpiffeIdError::Invalid {
                    id: s.to_string(),
                    part,
                    value: value.to_string(),
                });
            }
        }
        let ns_start = SCHEME.len() + td.len() + "/ns/".len();
        let ns_end = ns_start + ns.len();
        Ok(SpiffeId {
            uri: s.into(),
            namespace: (ns_start, ns_end),
            service_account: ns_end + "/sa/".len(),
        })
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri)
    }
}

/// The verified identity of the peer of a mutual-TLS connection. The mesh's server side puts it
/// in each request's extensions (`req.extensions().get::<PeerIdentity>()`); a plaintext request
/// (PERMISSIVE mode) has none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerIdentity(pub SpiffeId);

/// An X.509 SVID, its private key and the trust bundle that verifies peers: everything a workload
/// holds to speak mTLS. DER throughout; the library keeps the live one in a
/// `Snapshot<Option<Svid>>` (`None` until the first certificate arrives) and swaps it on rotation.
#[derive(Clone, PartialEq, Eq)]
pub struct Svid {
    /// The identity the leaf certificate carries as its only URI SAN.
    pub id: SpiffeId,
    /// The certificate chain, leaf first, then intermediates (without the root).
    pub chain: Vec<Vec<u8>>,
    /// The leaf's private key, PKCS#8 DER. Never leaves the process.
    pub key: Vec<u8>,
    /// Trust anchors (root certificates, DER) that peers' chains must lead to.
    pub bundle: Vec<Vec<u8>>,
    /// Start of the leaf's validity.
    pub not_before: std::time::SystemTime,
    /// End of the leaf's validity.
    pub not_after: std::time::SystemTime,
}

impl Svid {
    /// When to rotate: half-way through the leaf's lifetime, as Istio does.
    pub fn refresh_at(&self) -> std::time::SystemTime {
        let life = self
            .not_after
            .duration_since(self.not_before)
            .unwrap_or_default();
        self.not_before + life / 2
    }
}

impl fmt::Debug for Svid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Svid")
            .field("id", &self.id.to_string())
            .field("chain_len", &self.chain.len())
            .field("key", &"<redacted>")
            .field("bundle_len", &self.bundle.len())
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let id = SpiffeId::new("cluster.local", "shop", "reviews-v2").unwrap();
        assert_eq!(
            id.to_string(),
            "spiffe://cluster.local/ns/shop/sa/reviews-v2"
        );
        assert_eq!(id.to_string().parse::<SpiffeId>().unwrap(), id);
        assert_eq!(id.service_account(), "reviews-v2");
        assert_eq!(
            (id.trust_domain(), id.namespace()),
            ("cluster.local", "shop")
        );
        assert_eq!(id.principal(), "cluster.local/ns/shop/sa/reviews-v2");
        assert_eq!(id.as_uri(), "spiffe://cluster.local/ns/shop/sa/reviews-v2");
        assert_eq!(id.principal(), "cluster.local/ns/shop/sa/reviews-v2");
    }

    #[test]
    fn refuses_what_is_not_a_mesh_identity() {
        for bad in [
            "http://cluster.local/ns/a/sa/b",
            "spiffe://cluster.local/ns/a",
            "spiffe://cluster.local/ns/a/sa/b/extra",
            "spiffe://cluster.local/sa/b/ns/a",
            "spiffe:///ns/a/sa/b",
            "spiffe://cluster.local/ns//sa/b",
            "spiffe://Cluster.Local/ns/a/sa/b",
            "spiffe://cluster.local/ns/a b/sa/b",
        ] {
            assert!(bad.parse::<SpiffeId>().is_err(), "{bad} accepted");
        }
    }
}
