//! Who is talking to whom: the label values of Istio's standard metrics.

use std::sync::Arc;

use mesh_core::identity::SpiffeId;

/// Istio's value for a label the mesh does not know.
pub(crate) const UNKNOWN: &str = "unknown";

/// This workload, as Istio's labels name it (`source_*` on the client stack, `destination_*` on
/// the server stack).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// The workload name (a Deployment's name on Kubernetes). Default: `unknown`.
    pub name: String,
    /// Its namespace. Default: `unknown`.
    pub namespace: String,
    /// Its `app` label. Default: `unknown`.
    pub app: String,
    /// Its `version` label. Default: `unknown`.
    pub version: String,
    /// The service the server stack reports as `destination_service` (for example
    /// `reviews.default.svc.cluster.local`). Default: none; the request's `Host` is used.
    pub service: Option<String>,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            name: UNKNOWN.into(),
            namespace: UNKNOWN.into(),
            app: UNKNOWN.into(),
            version: UNKNOWN.into(),
            service: None,
        }
    }
}

impl Workload {
    /// A workload named `name` in `namespace`.
    pub fn new(name: impl Into<String>, namespace: impl Into<String>) -> Self {
        Workload {
            name: name.into(),
            namespace: namespace.into(),
            ..Workload::default()
        }
    }

    /// The workload an xDS bootstrap node describes, as Istio's proxyless bootstrap fills it:
    /// `metadata.WORKLOAD_NAME`, `metadata.NAMESPACE`, and the `app` / `version` entries of
    /// `metadata.LABELS` (or `app.kubernetes.io/name` / `app.kubernetes.io/version`).
    pub fn from_node(node: &mesh_xds_client::bootstrap::NodeInfo) -> Self {
        let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(String::from);
        let labels = node.metadata.get("LABELS").and_then(|l| l.as_object());
        let label =
            |keys: [&str; 2]| labels.and_then(|l| keys.iter().find_map(|k| text(l.get(*k))));
        let d = Workload::default();
        Workload {
            name: text(node.metadata.get("WORKLOAD_NAME")).unwrap_or(d.name),
            namespace: text(node.metadata.get("NAMESPACE")).unwrap_or(d.namespace),
            app: label(["app", "app.kubernetes.io/name"]).unwrap_or(d.app),
            version: label(["version", "app.kubernetes.io/version"]).unwrap_or(d.version),
            service: None,
        }
    }

    /// Sets `service` ([`Workload::service`]).
    pub fn with_service(mut self, service: impl Into<String>) -> Self {
        self.service = Some(service.into());
        self
    }

    /// The W3C `baggage` the client stack sends so servers can name their caller (Istio's
    /// baggage-based peer metadata: `k8s.deployment.name`, `k8s.namespace.name`, `app.name`,
    /// `service.version`).
    pub(crate) fn baggage(&self) -> Option<http::HeaderValue> {
        let v = format!(
            "k8s.deployment.name={},k8s.namespace.name={},app.name={},service.version={}",
            self.name, self.namespace, self.app, self.version
        );
        http::HeaderValue::try_from(v).ok()
    }
}

/// The other side of an exchange: its workload labels as far as they are known.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Peer {
    pub(crate) workload: Arc<str>,
    pub(crate) namespace: Arc<str>,
    pub(crate) principal: Arc<str>,
    pub(crate) app: Arc<str>,
    pub(crate) version: Arc<str>,
}

impl Peer {
    /// Nothing known.
    pub(crate) fn unknown() -> Peer {
        static U: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
        let u = U.get_or_init(|| Arc::from(UNKNOWN)).clone();
        Peer {
            workload: u.clone(),
            namespace: u.clone(),
            principal: u.clone(),
            app: u.clone(),
            version: u,
        }
    }

    /// A peer known by its SPIFFE identity: namespace and principal.
    pub(crate) fn from_identity(id: &SpiffeId) -> Peer {
        Peer {
            namespace: Arc::from(id.namespace()),
            principal: Arc::from(id.as_uri()),
            ..Peer::unknown()
        }
    }

    /// A caller as a server sees it: its verified identity, then the workload labels of its
    /// `baggage` header (never overriding what the certificate proves).
    pub(crate) fn from_caller(id: Option<&SpiffeId>, baggage: Option<&http::HeaderValue>) -> Peer {
        let mut peer = match id {
            Some(id) => Peer::from_identity(id),
            None => Peer::unknown(),
        };
        let Some(b) = baggage.and_then(|b| b.to_str().ok()) else {
            return peer;
        };
        for member in b.split(',') {
            let Some((k, v)) = member.split_once('=') else {
                continue;
            };
            // Drop `;property` suffixes; bound the value so a caller cannot bloat labels.
            let v = v.split(';').next().unwrap_or("").trim();
            if v.is_empty() || v.len() > 253 {
                continue;
            }
            match k.trim() {
                "k8s.deployment.name" | "k8s.workload.name" => peer.workload = Arc::from(v),
                "k8s.namespace.name" if id.is_none() => peer.namespace = Arc::from(v),
                "app.name" | "service.name" => peer.app = Arc::from(v),
                "service.version" => peer.version = Arc::from(v),
                _ => {}
            }
        }
        peer
    }
}

/// The server side of a cluster as the client stack labels it: the SPIFFE identity its TLS
/// settings expect (one exact SAN), and the service host of its name.
pub(crate) fn destination_of(cluster: &mesh_core::cluster::Cluster) -> (Arc<Peer>, Arc<str>) {
    use mesh_core::matcher::StringMatch;
    let expected = match cluster.tls.as_ref().map(|t| t.san_matchers.as_slice()) {
        Some([StringMatch::Exact(san)]) => san.parse::<SpiffeId>().ok(),
        _ => None,
    };
    let peer = match &expected {
        Some(id) => Peer::from_identity(id),
        None => Peer::unknown(),
    };
    (Arc::new(peer), Arc::from(service_host(&cluster.name)))
}

/// `request_protocol`: `grpc` for `application/grpc` requests, else `http`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Protocol {
    Http,
    Grpc,
}

impl Protocol {
    pub(crate) fn of(headers: &http::HeaderMap) -> Protocol {
        match headers.get(http::header::CONTENT_TYPE) {
            Some(ct) if ct.as_bytes().starts_with(b"application/grpc") => Protocol::Grpc,
            _ => Protocol::Http,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Grpc => "grpc",
        }
    }
}

/// `reporter`: which side recorded the series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Reporter {
    /// The client stack.
    Source,
    /// The server stack.
    Destination,
}

impl Reporter {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reporter::Source => "source",
            Reporter::Destination => "destination",
        }
    }
}

/// The host of a service name (`outbound|9080|v1|reviews.default.svc.cluster.local` →
/// `reviews.default.svc.cluster.local`, `reviews:9080` → `reviews`).
pub(crate) fn service_host(name: &str) -> &str {
    if let Some(host) = name
        .strip_prefix("outbound|")
        .and_then(|r| r.rsplit('|').next())
    {
        return host;
    }
    match name.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => name,
    }
}

/// `destination_service_name` and `destination_service_namespace` of a service host
/// (`reviews.default.svc.cluster.local` → `reviews`, `default`).
pub(crate) fn service_parts(host: &str) -> (&str, &str) {
    let mut it = host.splitn(3, '.');
    match (it.next(), it.next(), it.next()) {
        (Some(name), Some(ns), Some(rest)) if rest.starts_with("svc") => (name, ns),
        (Some(name), Some(ns), None) => (name, ns),
        _ => (host, UNKNOWN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_from_istio_node_metadata() {
        let metadata = serde_json::json!({
            "WORKLOAD_NAME": "reviews-v2",
            "NAMESPACE": "shop",
            "LABELS": { "app": "reviews", "version": "v2" },
        });
        let node = mesh_xds_client::bootstrap::NodeInfo {
            id: "sidecar~10.0.0.7~reviews-v2-abc.shop~shop.svc.cluster.local".into(),
            cluster: String::new(),
            metadata: metadata.as_object().unwrap().clone(),
            locality: Default::default(),
        };
        let w = Workload::from_node(&node);
        assert_eq!(
            (
                w.name.as_str(),
                w.namespace.as_str(),
                w.app.as_str(),
                w.version.as_str()
            ),
            ("reviews-v2", "shop", "reviews", "v2")
        );
        let bare = mesh_xds_client::bootstrap::NodeInfo {
            metadata: Default::default(),
            ..node
        };
        assert_eq!(Workload::from_node(&bare), Workload::default());
    }

    #[test]
    fn service_names() {
        let h = service_host("outbound|9080|v1|reviews.default.svc.cluster.local");
        assert_eq!(h, "reviews.default.svc.cluster.local");
        assert_eq!(service_parts(h), ("reviews", "default"));
        assert_eq!(service_host("reviews:9080"), "reviews");
        assert_eq!(service_parts("reviews"), ("reviews", UNKNOWN));
        assert_eq!(service_parts("ratings.prod"), ("ratings", "prod"));
    }

    #[test]
    fn caller_from_baggage_never_overrides_the_certificate() {
        let id = SpiffeId::new("cluster.local", "shop", "frontend").unwrap();
        let b = http::HeaderValue::from_static(
            "k8s.deployment.name=frontend-v1,k8s.namespace.name=evil,app.name=frontend;p=1,other=x",
        );
        let p = Peer::from_caller(Some(&id), Some(&b));
        assert_eq!(&*p.workload, "frontend-v1");
        assert_eq!(&*p.namespace, "shop");
        assert_eq!(&*p.app, "frontend");
        assert_eq!(&*p.principal, "spiffe://cluster.local/ns/shop/sa/frontend");
        let anonymous = Peer::from_caller(None, Some(&b));
        assert_eq!(&*anonymous.namespace, "evil");
        assert_eq!(&*anonymous.principal, UNKNOWN);
    }
}
