//! The ADS client: on-demand subscriptions from targets down to endpoints, per-resource
//! validation with precise NACKs, and a live [`MeshState`] that survives control-plane outages.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use mesh_xds_client::{Bootstrap, XdsClient};
//!
//! let client = XdsClient::start(Bootstrap::from_env()?, Default::default());
//! let target = client.subscribe("reviews.default.svc.cluster.local:9080");
//! client.ready(target.name(), Duration::from_secs(5)).await?;
//! let state = client.state();
//! let routes = &state.load().route_tables["reviews.default.svc.cluster.local:9080"];
//! println!("{} virtual hosts", routes.virtual_hosts.len());
//! # Ok(()) }
//! ```

pub(crate) mod backoff;
mod cache;
mod engine;
mod kind;
mod node;
mod status;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::Guard;
use mesh_core::identity::Svid;
use mesh_core::{MeshResources, Snapshot, Watcher};
use tokio::sync::mpsc;

pub use cache::ResourceStatus;
pub use kind::Kind;
pub use node::CLIENT_FEATURES;
pub use status::{ErrorState, FieldWarning, ResourceView, TargetState, XdsStatus};

use crate::bootstrap::Bootstrap;
use engine::{Command, Engine};

/// Which ADS variant to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// Incremental (`DeltaAggregatedResources`). The default.
    #[default]
    Delta,
    /// State of the world (`StreamAggregatedResources`), as gRPC and older control planes use.
    StateOfTheWorld,
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// ADS variant. Default: delta.
    pub protocol: Protocol,
    /// First reconnect delay; it grows by 1.6× per failed attempt, ±20 % jitter. Default: 1 s.
    pub backoff_base: Duration,
    /// Longest reconnect delay. Default: 30 s.
    pub backoff_max: Duration,
    /// How long a subscribed resource may stay unanswered before it is reported as not existing.
    /// Default: 15 s (gRPC's value).
    pub does_not_exist_timeout: Duration,
    /// Timeout of one connection attempt. Default: 5 s.
    pub connect_timeout: Duration,
    /// The workload's live certificate (from an `identity::IdentityClient`). While it holds a
    /// valid one, the client connects over mutual TLS and expects the control plane's identity
    /// (`spiffe://<trust domain>/ns/istio-system/sa/mesh-control-plane`); a plaintext stream is
    /// replaced by an mTLS one as soon as the first certificate arrives. Default: none.
    pub identity: Option<Snapshot<Option<Svid>>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            protocol: Protocol::Delta,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            does_not_exist_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            identity: None,
        }
    }
}

/// Why a target is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// A resource of the target's chain does not exist.
    #[error("xDS target {target}: {resource} does not exist")]
    Missing {
        /// The target.
        target: String,
        /// The missing resource, e.g. `RDS reviews:9080`.
        resource: String,
    },
    /// Not resolved in time.
    #[error("xDS target {target}: not resolved within {waited:?} ({detail})")]
    Timeout {
        /// The target.
        target: String,
        /// How long we waited.
        waited: Duration,
        /// What was still missing or why the stream was down.
        detail: String,
    },
}

/// The live mesh state as the layers read it: one `Snapshot` of every resource the app's targets
/// need (the last good version of each), plus the client's status.
#[derive(Debug, Clone)]
pub struct MeshState {
    resources: Snapshot<MeshResources>,
    status: Snapshot<XdsStatus>,
}

impl MeshState {
    /// The current resources; lock-free, once per request.
    #[inline]
    pub fn load(&self) -> Guard<Arc<MeshResources>> {
        self.resources.load()
    }

    /// The current resources as an owned `Arc`, for values kept across await points.
    pub fn load_full(&self) -> Arc<MeshResources> {
        self.resources.load_full()
    }

    /// A watcher for tasks that react to changes.
    pub fn watch(&self) -> Watcher<MeshResources> {
        self.resources.watch()
    }

    /// The underlying snapshot.
    pub fn resources(&self) -> &Snapshot<MeshResources> {
        &self.resources
    }

    /// The client's status: connection, targets, each resource's version and ACK/NACK state.
    pub fn status(&self) -> Arc<XdsStatus> {
        self.status.load_full()
    }

    /// A CSDS-style JSON dump: each resource with its version, status and last error.
    pub fn dump(&self) -> serde_json::Value {
        serde_json::to_value(&*self.status.load_full()).unwrap_or_default()
    }
}

/// A running xDS client. Cloning is cheap; the background task stops when the last clone and
/// every [`Target`] handle are dropped.
#[derive(Debug, Clone)]
pub struct XdsClient {
    commands: mpsc::UnboundedSender<Command>,
    state: MeshState,
    inbound_template: Arc<str>,
    node: Arc<crate::bootstrap::NodeInfo>,
}

impl XdsClient {
    /// Starts the client on the current tokio runtime. It connects in the background and keeps
    /// reconnecting with backoff; nothing here blocks.
    pub fn start(bootstrap: Bootstrap, opts: Options) -> XdsClient {
        let (tx, rx) = mpsc::unbounded_channel();
        let inbound_template: Arc<str> = bootstrap
            .server_listener_resource_name_template
            .as_deref()
            .unwrap_or(mesh_core::inbound::INBOUND_TEMPLATE)
            .into();
        let node = Arc::new(bootstrap.node.clone());
        let state = MeshState {
            resources: Snapshot::new(MeshResources::default()),
            status: Snapshot::new(XdsStatus {
                server: bootstrap.servers[0].uri.clone(),
                protocol: match opts.protocol {
                    Protocol::Delta => "delta",
                    Protocol::StateOfTheWorld => "state-of-the-world",
                },
                ..XdsStatus::default()
            }),
        };
        let engine = Engine {
            cache: cache::Cache {
                ignore_deletion: bootstrap.servers[0].ignores_resource_deletion(),
                ..Default::default()
            },
            state: state.resources.clone(),
            status: state.status.clone(),
            current: (*state.status.load_full()).clone(),
            bootstrap,
            upgrade: opts.identity.as_ref().map(|s| s.watch()),
            secure: false,
            opts,
            commands: rx,
            closed: false,
        };
        tokio::spawn(engine.run());
        XdsClient {
            commands: tx,
            state,
            inbound_template,
            node,
        }
    }

    /// The name of the inbound listener (gRFC A36) for a server listening on `addr`, from the
    /// bootstrap's `server_listener_resource_name_template`. Subscribe to it (as a target) to
    /// follow the server's mTLS mode and authorization.
    pub fn inbound_listener_name(&self, addr: std::net::SocketAddr) -> String {
        mesh_core::inbound::inbound_name(&self.inbound_template, addr)
    }

    /// Starts a client from the bootstrap named by the environment (`MESH_XDS_BOOTSTRAP`,
    /// `GRPC_XDS_BOOTSTRAP`), with default options.
    pub fn from_env() -> Result<XdsClient, crate::bootstrap::BootstrapError> {
        Ok(Self::start(Bootstrap::from_env()?, Options::default()))
    }

    /// Follows `target` (`host:port`): its Listener, then the route table, clusters and endpoints
    /// it needs. Dropping the returned handle unsubscribes what no other target needs.
    pub fn subscribe(&self, target: &str) -> Target {
        let name = target.strip_prefix("xds:///").unwrap_or(target).to_string();
        let _ = self.commands.send(Command::Subscribe(name.clone()));
        Target {
            name,
            commands: self.commands.clone(),
        }
    }

    /// The node this client announces (the bootstrap's `node`: id, cluster, metadata such as
    /// `NAMESPACE` and `WORKLOAD_NAME`, locality).
    pub fn node(&self) -> &crate::bootstrap::NodeInfo {
        &self.node
    }

    /// The live state.
    pub fn state(&self) -> MeshState {
        self.state.clone()
    }

    /// Waits until `target` is fully resolved, or fails when part of it does not exist.
    pub async fn ready(&self, target: &str, timeout: Duration) -> Result<(), TargetError> {
        let target = target.strip_prefix("xds:///").unwrap_or(target);
        let mut watcher = self.state.status.watch();
        let check = |s: &XdsStatus| match s.targets.get(target) {
            Some(TargetState::Ready) => Some(Ok(())),
            Some(TargetState::Missing(r)) => Some(Err(TargetError::Missing {
                target: target.into(),
                resource: r.clone(),
            })),
            _ => None,
        };
        let wait = async {
            if let Some(r) = check(&self.state.status.load_full()) {
                return r;
            }
            loop {
                let s = watcher.changed().await;
                if let Some(r) = check(&s) {
                    return r;
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(r) => r,
            Err(_) => {
                let s = self.state.status.load_full();
                let detail = match (&s.last_error, s.connected) {
                    (Some(e), false) => format!("not connected: {e}"),
                    _ => {
                        let waiting: Vec<_> = s
                            .resources
                            .iter()
                            .filter(|r| r.client_status == ResourceStatus::Requested)
                            .map(|r| format!("{} {}", r.kind, r.name))
                            .collect();
                        format!("waiting for {}", waiting.join(", "))
                    }
                };
                Err(TargetError::Timeout {
                    target: target.into(),
                    waited: timeout,
                    detail,
                })
            }
        }
    }
}

/// A subscription to one target; dropping it unsubscribes.
#[derive(Debug)]
pub struct Target {
    name: String,
    commands: mpsc::UnboundedSender<Command>,
}

impl Target {
    /// The target, `host:port`.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self
            .commands
            .send(Command::Unsubscribe(std::mem::take(&mut self.name)));
    }
}
