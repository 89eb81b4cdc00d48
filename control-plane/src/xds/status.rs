//! Per-client xDS status: who is connected, what each was sent, what each ACKed or NACKed.
//!
//! This is what `/debug/syncz` shows, in the spirit of `istioctl proxy-status`. The registry is
//! touched once per request or push on a stream, never on a data-plane request path, so a plain
//! mutex is enough.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde::Serialize;

use super::cache::{Subscription, short_type};
use super::workloads::{NodeFacts, NodeWorkloads};

/// All connected clients.
#[derive(Debug, Clone, Default)]
pub struct ClientRegistry {
    clients: Arc<Mutex<BTreeMap<u64, Arc<Mutex<ClientStatus>>>>>,
    next_id: Arc<AtomicU64>,
    workloads: NodeWorkloads,
}

/// The protocol variant of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum StreamKind {
    /// `StreamAggregatedResources`.
    #[serde(rename = "state-of-the-world")]
    Sotw,
    /// `DeltaAggregatedResources`.
    #[serde(rename = "delta")]
    Delta,
}

/// One connected client.
#[derive(Debug, Clone, Serialize)]
pub struct ClientStatus {
    /// Connection id, unique for the life of the process.
    pub connection: u64,
    /// `node.id`, empty until the first request names it.
    pub node_id: String,
    /// `node.cluster`.
    pub node_cluster: String,
    /// `node.user_agent_name` and version.
    pub user_agent: String,
    /// `node.client_features`.
    pub client_features: Vec<String>,
    /// Protocol variant.
    pub stream: StreamKind,
    /// The SPIFFE ID the client proved over mutual TLS; `None` on a plaintext connection.
    pub peer: Option<String>,
    /// Seconds since the Unix epoch when the stream opened.
    pub connected_at: u64,
    /// Per type (LDS, RDS, CDS, EDS).
    pub types: BTreeMap<&'static str, TypeStatus>,
}

/// One resource type on one stream.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TypeStatus {
    /// Every resource of the type.
    pub wildcard: bool,
    /// Resources asked for by name.
    pub subscribed: Vec<String>,
    /// Responses sent.
    pub pushes: u64,
    /// ACKs received.
    pub acks: u64,
    /// NACKs received.
    pub nacks: u64,
    /// The error detail of the most recent NACK.
    pub last_nack: Option<String>,
    /// Each resource sent.
    pub resources: BTreeMap<String, ResourceStatus>,
}

/// Where one resource stands with one client.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceStatus {
    /// Version last sent.
    pub sent_version: String,
    /// Version last ACKed, if any.
    pub acked_version: Option<String>,
    /// `SENT` (awaiting an answer), `ACKED`, `NACKED`, or `DOES_NOT_EXIST` (told it is absent).
    pub state: &'static str,
    /// The client's error for a NACKed version.
    pub error: Option<String>,
}

impl ClientRegistry {
    /// Registers a new stream; the returned handle deregisters on drop.
    pub fn register(&self, stream: StreamKind, peer: Option<String>) -> ClientHandle {
        let peer_id = peer.as_deref().and_then(|p| p.parse().ok());
        let connection = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let connected_at = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let status = Arc::new(Mutex::new(ClientStatus {
            connection,
            node_id: String::new(),
            node_cluster: String::new(),
            user_agent: String::new(),
            client_features: Vec::new(),
            stream,
            peer,
            connected_at,
            types: BTreeMap::new(),
        }));
        lock(&self.clients).insert(connection, status.clone());
        metrics::gauge!("mesh_xds_connected_clients").increment(1.0);
        ClientHandle {
            registry: self.clone(),
            connection,
            status,
            peer: peer_id,
            facts: Mutex::new(NodeFacts::default()),
        }
    }

    /// The servers the connected clients described (gRFC A36 subscriptions + node metadata).
    pub fn workloads(&self) -> &NodeWorkloads {
        &self.workloads
    }

    /// A copy of every client's status, in connection order.
    pub fn list(&self) -> Vec<ClientStatus> {
        let clients: Vec<_> = lock(&self.clients).values().cloned().collect();
        clients.iter().map(|c| lock(c).clone()).collect()
    }

    /// The status of the clients whose node id is `node_id`.
    pub fn by_node(&self, node_id: &str) -> Vec<ClientStatus> {
        self.list()
            .into_iter()
            .filter(|c| c.node_id == node_id)
            .collect()
    }
}

/// A stream's entry in the registry.
#[derive(Debug)]
pub struct ClientHandle {
    registry: ClientRegistry,
    connection: u64,
    status: Arc<Mutex<ClientStatus>>,
    /// The verified identity of an mTLS client.
    peer: Option<mesh_core::identity::SpiffeId>,
    /// Who the node is, for the server workloads it describes.
    facts: Mutex<NodeFacts>,
}

impl ClientHandle {
    /// Records the node from the first request that carries one.
    pub fn set_node(&self, node: &envoy_types::pb::envoy::config::core::v3::Node) {
        *lock(&self.facts) = NodeFacts::new(node, self.peer.as_ref());
        let mut s = lock(&self.status);
        s.node_id = node.id.clone();
        s.node_cluster = node.cluster.clone();
        let version = match &node.user_agent_version_type {
            Some(
                envoy_types::pb::envoy::config::core::v3::node::UserAgentVersionType::UserAgentVersion(
                    v,
                ),
            ) => v.clone(),
            _ => String::new(),
        };
        s.user_agent = format!("{} {}", node.user_agent_name, version)
            .trim()
            .to_string();
        s.client_features = node.client_features.clone();
    }

    /// True once a node was recorded.
    pub fn has_node(&self) -> bool {
        !lock(&self.status).node_id.is_empty() || !lock(&self.status).user_agent.is_empty()
    }

    /// The node id, for logs.
    pub fn node_id(&self) -> String {
        lock(&self.status).node_id.clone()
    }

    /// Records the current subscription of a type.
    pub fn subscribed(&self, type_url: &str, sub: &Subscription) {
        if type_url == mesh_xds_client::codec::LISTENER_TYPE {
            let names: Vec<String> = sub.names.iter().cloned().collect();
            let facts = lock(&self.facts).clone();
            self.registry.workloads.set(self.connection, &facts, &names);
        }
        let mut s = lock(&self.status);
        let t = s.types.entry(short_type(type_url)).or_default();
        t.wildcard = sub.wildcard;
        t.subscribed = sub.names.iter().cloned().collect();
        t.resources
            .retain(|name, _| sub.wildcard || sub.names.contains(name));
    }

    /// Records a response: `sent` resources (name, version) and names reported removed or absent.
    pub fn sent(&self, type_url: &str, sent: &[(String, String)], removed: &[String]) {
        metrics::counter!("mesh_xds_pushes_total", "type" => short_type(type_url)).increment(1);
        let mut s = lock(&self.status);
        let t = s.types.entry(short_type(type_url)).or_default();
        t.pushes += 1;
        for (name, version) in sent {
            let acked = t.resources.get(name).and_then(|r| r.acked_version.clone());
            t.resources.insert(
                name.clone(),
                ResourceStatus {
                    sent_version: version.clone(),
                    acked_version: acked,
                    state: "SENT",
                    error: None,
                },
            );
        }
        for name in removed {
            t.resources.insert(
                name.clone(),
                ResourceStatus {
                    sent_version: String::new(),
                    acked_version: None,
                    state: "DOES_NOT_EXIST",
                    error: None,
                },
            );
        }
    }

    /// Records the versions a client says it already holds (delta `initial_resource_versions` on
    /// reconnect): they count as ACKed at those versions, since the client applied them before.
    pub fn holds(&self, type_url: &str, held: &[(String, String)]) {
        let mut s = lock(&self.status);
        let t = s.types.entry(short_type(type_url)).or_default();
        for (name, version) in held {
            t.resources.insert(
                name.clone(),
                ResourceStatus {
                    sent_version: version.clone(),
                    acked_version: Some(version.clone()),
                    state: "ACKED",
                    error: None,
                },
            );
        }
    }

    /// Records the answer to a response that carried `resources`. With `error`, the response was
    /// NACKed: resources the error names are marked NACKED (clients with per-resource semantics,
    /// gRFC A46/A88, applied the rest); when it names none, all of them are.
    pub fn answered(&self, type_url: &str, resources: &[(String, String)], error: Option<&str>) {
        let kind = short_type(type_url);
        let mut s = lock(&self.status);
        let t = s.types.entry(kind).or_default();
        let named: Vec<bool> = match error {
            Some(e) => {
                let v: Vec<bool> = resources
                    .iter()
                    .map(|(n, _)| e.contains(n.as_str()))
                    .collect();
                if v.iter().any(|b| *b) {
                    v
                } else {
                    vec![true; resources.len()]
                }
            }
            None => vec![false; resources.len()],
        };
        match error {
            Some(e) => {
                t.nacks += 1;
                t.last_nack = Some(e.to_string());
                metrics::counter!("mesh_xds_nacks_total", "type" => kind).increment(1);
            }
            None => {
                t.acks += 1;
                metrics::counter!("mesh_xds_acks_total", "type" => kind).increment(1);
            }
        }
        for ((name, version), nacked) in resources.iter().zip(named) {
            let Some(r) = t.resources.get_mut(name) else {
                continue;
            };
            if r.sent_version != *version {
                continue; // a newer version was sent since
            }
            if nacked {
                r.state = "NACKED";
                r.error = error.map(str::to_string);
            } else {
                r.state = "ACKED";
                r.acked_version = Some(version.clone());
                r.error = None;
            }
        }
    }
}

impl Drop for ClientHandle {
    fn drop(&mut self) {
        lock(&self.registry.clients).remove(&self.connection);
        self.registry.workloads.remove(self.connection);
        metrics::gauge!("mesh_xds_connected_clients").decrement(1.0);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
