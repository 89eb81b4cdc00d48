//! Servers known from their own xDS connection (gRFC A36): a workload that subscribes to its
//! inbound listener tells where it listens (the listener's name, `…/inbound/<ip>:<port>`) and,
//! in its bootstrap's node metadata, who it is — Istio's `NAMESPACE`, `SERVICE_ACCOUNT` and
//! `LABELS`. When the xDS connection is mutual TLS, the verified SPIFFE ID decides namespace and
//! service account instead of the metadata. The control plane builds that workload's inbound
//! listener (PeerAuthentication, AuthorizationPolicy selectors) from this, as Istio does for
//! proxyless servers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::google::protobuf::{Struct, value::Kind};
use mesh_core::identity::SpiffeId;

/// A server workload as its xDS connection describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeWorkload {
    /// Where it listens (from the inbound listener name it subscribed to).
    pub address: SocketAddr,
    /// Its namespace. Default: `default`.
    pub namespace: String,
    /// Its service account, if known.
    pub service_account: Option<String>,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
}

/// Who a node says it is (metadata), or proves it is (peer identity).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NodeFacts {
    namespace: Option<String>,
    service_account: Option<String>,
    labels: BTreeMap<String, String>,
}

impl NodeFacts {
    /// Reads Istio's node metadata keys, then lets a verified peer identity override namespace
    /// and service account.
    pub(crate) fn new(node: &Node, peer: Option<&SpiffeId>) -> NodeFacts {
        let meta = node.metadata.as_ref();
        let text = |k: &str| {
            meta.and_then(|m| m.fields.get(k))
                .and_then(|v| match &v.kind {
                    Some(Kind::StringValue(s)) if !s.is_empty() => Some(s.clone()),
                    _ => None,
                })
        };
        let labels = meta
            .and_then(|m| m.fields.get("LABELS"))
            .and_then(|v| match &v.kind {
                Some(Kind::StructValue(s)) => Some(strings(s)),
                _ => None,
            })
            .unwrap_or_default();
        NodeFacts {
            namespace: peer
                .map(|p| p.namespace().to_string())
                .or_else(|| text("NAMESPACE")),
            service_account: peer
                .map(|p| p.service_account().to_string())
                .or_else(|| text("SERVICE_ACCOUNT")),
            labels,
        }
    }

    fn workload(&self, address: SocketAddr) -> NodeWorkload {
        NodeWorkload {
            address,
            namespace: self.namespace.clone().unwrap_or_else(|| "default".into()),
            service_account: self.service_account.clone(),
            labels: self.labels.clone(),
        }
    }
}

fn strings(s: &Struct) -> BTreeMap<String, String> {
    s.fields
        .iter()
        .filter_map(|(k, v)| match &v.kind {
            Some(Kind::StringValue(s)) => Some((k.clone(), s.clone())),
            _ => None,
        })
        .collect()
}

/// The address in an inbound listener name made from `template` (`%s` = `ip:port`).
pub(crate) fn inbound_address(template: &str, name: &str) -> Option<SocketAddr> {
    let (prefix, suffix) = template.split_once("%s")?;
    name.strip_prefix(prefix)?
        .strip_suffix(suffix)?
        .parse()
        .ok()
}

/// The servers of every connected client, by connection; a change wakes whoever watches.
#[derive(Debug, Clone)]
pub struct NodeWorkloads {
    by_connection: Arc<Mutex<BTreeMap<u64, Vec<NodeWorkload>>>>,
    changed: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Default for NodeWorkloads {
    fn default() -> Self {
        NodeWorkloads {
            by_connection: Arc::default(),
            changed: Arc::new(tokio::sync::watch::channel(0).0),
        }
    }
}

impl NodeWorkloads {
    /// Records what connection `conn` serves (from the inbound listeners it subscribes to).
    pub(crate) fn set(&self, conn: u64, facts: &NodeFacts, listener_names: &[String]) {
        let list: Vec<NodeWorkload> = listener_names
            .iter()
            .filter_map(|n| inbound_address(mesh_core::inbound::INBOUND_TEMPLATE, n))
            .map(|a| facts.workload(a))
            .collect();
        let mut map = self.by_connection.lock().unwrap_or_else(|e| e.into_inner());
        let changed = if list.is_empty() {
            map.remove(&conn).is_some()
        } else {
            map.insert(conn, list.clone()).as_ref() != Some(&list)
        };
        drop(map);
        if changed {
            self.changed.send_modify(|v| *v += 1);
        }
    }

    /// Forgets a closed connection.
    pub(crate) fn remove(&self, conn: u64) {
        self.set(conn, &NodeFacts::default(), &[]);
    }

    /// Every known server workload; for an address claimed twice, the oldest connection's.
    pub fn all(&self) -> Vec<NodeWorkload> {
        let map = self.by_connection.lock().unwrap_or_else(|e| e.into_inner());
        let mut seen = std::collections::BTreeSet::new();
        map.values()
            .flatten()
            .filter(|w| seen.insert(w.address))
            .cloned()
            .collect()
    }

    /// A receiver that changes whenever [`NodeWorkloads::all`] may have.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::google::protobuf::Value;

    fn string(s: &str) -> Value {
        Value {
            kind: Some(Kind::StringValue(s.into())),
        }
    }

    #[test]
    fn metadata_describes_the_node_and_a_verified_peer_overrides_it() {
        let mut labels = Struct::default();
        labels.fields.insert("app".into(), string("echo"));
        let mut meta = Struct::default();
        meta.fields.insert("NAMESPACE".into(), string("shop"));
        meta.fields.insert("SERVICE_ACCOUNT".into(), string("echo"));
        meta.fields.insert(
            "LABELS".into(),
            Value {
                kind: Some(Kind::StructValue(labels)),
            },
        );
        let node = Node {
            metadata: Some(meta),
            ..Node::default()
        };
        let name = "xds.istio.io/grpc/lds/inbound/10.0.0.7:9080";
        let w = NodeWorkloads::default();
        let mut watch = w.watch();
        w.set(
            1,
            &NodeFacts::new(&node, None),
            &[name.into(), "reviews:9080".into()],
        );
        assert!(watch.has_changed().unwrap());
        watch.mark_unchanged();
        let all = w.all();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].address, "10.0.0.7:9080".parse().unwrap());
        assert_eq!(all[0].namespace, "shop");
        assert_eq!(all[0].labels["app"], "echo");

        let peer: SpiffeId = "spiffe://cluster.local/ns/prod/sa/api".parse().unwrap();
        w.set(1, &NodeFacts::new(&node, Some(&peer)), &[name.into()]);
        let all = w.all();
        assert_eq!(
            (all[0].namespace.as_str(), all[0].service_account.as_deref()),
            ("prod", Some("api"))
        );

        w.remove(1);
        assert!(w.all().is_empty());
        assert!(watch.has_changed().unwrap());
        assert_eq!(
            inbound_address("a/%s/b", "a/[::1]:80/b"),
            Some("[::1]:80".parse().unwrap())
        );
        assert_eq!(inbound_address("a/%s", "b/1.2.3.4:80"), None);
    }
}
