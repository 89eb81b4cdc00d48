//! The task behind an [`super::XdsClient`]: connect, stream, apply, ACK/NACK, reconnect.
//!
//! The engine owns the cache; the app talks to it through a command channel and reads what it
//! publishes through snapshots. For every response it decodes and validates each resource, keeps
//! the good ones (and the last good version of a bad one), publishes the new state, and only then
//! ACKs or NACKs — naming each rejected resource in `error_detail`.

use std::collections::BTreeSet;
use std::time::Duration;

use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use mesh_core::identity::{SpiffeId, Svid};
use mesh_core::{MeshResources, Snapshot, StringMatch, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::Streaming;
use tonic::transport::{Channel, Endpoint};

use super::backoff::Backoff;
use super::cache::{Cache, Incoming};
use super::kind::Kind;
use super::node::node;
use super::status::XdsStatus;
use super::{Options, Protocol};
use crate::bootstrap::Bootstrap;

/// What the app asks of the engine.
#[derive(Debug)]
pub(crate) enum Command {
    Subscribe(String),
    Unsubscribe(String),
}

enum Event<R> {
    Response(R),
    Closed(String),
    Command(Command),
    Expired,
    Stop,
}

/// Responses and requests larger than this are refused (a 10,000-endpoint assignment is ~1 MB).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

pub(crate) struct Engine {
    pub(crate) cache: Cache,
    pub(crate) state: Snapshot<MeshResources>,
    pub(crate) status: Snapshot<XdsStatus>,
    pub(crate) current: XdsStatus,
    pub(crate) bootstrap: Bootstrap,
    pub(crate) opts: Options,
    pub(crate) commands: mpsc::UnboundedReceiver<Command>,
    pub(crate) closed: bool,
    /// Follows the workload's certificate, to move a plaintext stream to mTLS.
    pub(crate) upgrade: Option<Watcher<Option<Svid>>>,
    /// The current stream runs over mTLS.
    pub(crate) secure: bool,
}

impl Engine {
    pub(crate) async fn run(mut self) {
        let mut backoff = Backoff::new(self.opts.backoff_base, self.opts.backoff_max);
        while !self.closed {
            let server = self.bootstrap.servers[0].uri.clone();
            let svid = self.opts.identity.as_ref().and_then(valid);
            self.secure = svid.is_some();
            match connect(&server, self.opts.connect_timeout, svid).await {
                Ok(channel) => {
                    let worked = match self.opts.protocol {
                        Protocol::Delta => self.delta(channel).await,
                        Protocol::StateOfTheWorld => self.sotw(channel).await,
                    };
                    if worked {
                        backoff.reset();
                    }
                }
                Err(e) => self.closed_with(format!("cannot connect to {server}: {e}")),
            }
            if self.closed {
                break;
            }
            let delay = backoff.next_delay();
            tracing::debug!(?delay, "xDS reconnect backoff");
            let sleep = tokio::time::sleep(delay);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    c = self.commands.recv() => match c {
                        Some(c) => self.command(c),
                        None => return,
                    },
                }
            }
        }
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Subscribe(t) => *self.cache.targets.entry(t).or_default() += 1,
            Command::Unsubscribe(t) => {
                if let Some(n) = self.cache.targets.get_mut(&t) {
                    *n -= 1;
                    if *n == 0 {
                        self.cache.targets.remove(&t);
                    }
                }
            }
        }
        self.cache.resubscribe(Instant::now());
        self.publish();
    }

    /// Applies a response, follows new dependencies, publishes; returns the NACK detail.
    fn on_response(
        &mut self,
        kind: Kind,
        incoming: Vec<Incoming>,
        removed: &[String],
        full_state: bool,
    ) -> Option<String> {
        let nack = self.cache.apply(kind, incoming, removed, full_state);
        self.cache.resubscribe(Instant::now());
        self.publish();
        if let Some(n) = &nack {
            metrics::counter!("mesh_xds_client_nacks_total", "type" => kind.short()).increment(1);
            tracing::warn!(r#type = kind.short(), "NACK: {n}");
        }
        metrics::counter!("mesh_xds_client_updates_total", "type" => kind.short()).increment(1);
        nack
    }

    /// Stores the new state (only when it changed, so watchers wake for real changes) and status.
    fn publish(&mut self) {
        let resources = self.cache.resources();
        if **self.state.load() != resources {
            self.state.store(resources);
        }
        self.current.refresh(&self.cache);
        self.status.store(self.current.clone());
    }

    fn set_connected(&mut self) {
        self.current.connected = true;
        self.current.last_error = None;
        self.publish();
    }

    fn closed_with(&mut self, why: String) {
        tracing::warn!("xDS stream down: {why}");
        self.current.connected = false;
        self.current.last_error = Some(why);
        self.publish();
    }

    async fn next_event<R>(&mut self, stream: &mut Streaming<R>) -> Event<R> {
        let deadline = self.cache.next_deadline(self.opts.does_not_exist_timeout);
        let expiry = async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            m = stream.message() => match m {
                Ok(Some(r)) => Event::Response(r),
                Ok(None) => Event::Closed("the server closed the stream".into()),
                Err(s) => Event::Closed(format!("stream error: {} {}", s.code(), s.message())),
            },
            c = self.commands.recv() => match c {
                Some(c) => Event::Command(c),
                None => Event::Stop,
            },
            _ = expiry => Event::Expired,
            _ = identity_arrives(self.upgrade.as_mut()), if !self.secure => {
                Event::Closed("the workload has a certificate now; reconnecting over mTLS".into())
            }
        }
    }

    fn expire(&mut self) {
        if self
            .cache
            .expire(Instant::now(), self.opts.does_not_exist_timeout)
        {
            self.publish();
        }
    }

    /// One delta stream; returns true when at least one response arrived.
    async fn delta(&mut self, channel: Channel) -> bool {
        let mut client =
            AggregatedDiscoveryServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE);
        let (tx, rx) = mpsc::unbounded_channel();
        let now = Instant::now();
        self.cache.resubscribe(now);
        self.cache.restart_timers(now);
        let mut node = Some(node(&self.bootstrap.node));
        let mut told: [BTreeSet<String>; 4] = Default::default();
        for kind in Kind::ALL {
            let names = self.cache.names(kind);
            if names.is_empty() {
                continue;
            }
            let _ = tx.send(DeltaDiscoveryRequest {
                node: node.take(),
                type_url: kind.type_url().into(),
                resource_names_subscribe: names.clone(),
                initial_resource_versions: self.cache.versions(kind),
                ..Default::default()
            });
            told[kind.idx()] = names.into_iter().collect();
        }
        let mut stream = match client
            .delta_aggregated_resources(UnboundedReceiverStream::new(rx))
            .await
        {
            Ok(r) => r.into_inner(),
            Err(s) => {
                self.closed_with(format!(
                    "cannot open the delta stream: {} {}",
                    s.code(),
                    s.message()
                ));
                return false;
            }
        };
        self.set_connected();
        let mut got = false;
        loop {
            match self.next_event(&mut stream).await {
                Event::Response(resp) => {
                    got = true;
                    let nack = match Kind::from_type_url(&resp.type_url) {
                        Some(kind) => {
                            let incoming = resp
                                .resources
                                .into_iter()
                                .map(|r| Incoming {
                                    name: r.name,
                                    version: r.version,
                                    any: r.resource.unwrap_or_default(),
                                })
                                .collect();
                            self.on_response(kind, incoming, &resp.removed_resources, false)
                        }
                        None => Some(format!("type {} was not subscribed", resp.type_url)),
                    };
                    let _ = tx.send(DeltaDiscoveryRequest {
                        node: node.take(),
                        type_url: resp.type_url,
                        response_nonce: resp.nonce,
                        error_detail: nack.map(rpc_status),
                        ..Default::default()
                    });
                    delta_subscriptions(&self.cache, &tx, &mut told, &mut node);
                }
                Event::Command(c) => {
                    self.command(c);
                    delta_subscriptions(&self.cache, &tx, &mut told, &mut node);
                }
                Event::Expired => self.expire(),
                Event::Closed(why) => {
                    self.closed_with(why);
                    return got;
                }
                Event::Stop => {
                    self.closed = true;
                    return got;
                }
            }
        }
    }

    /// One state-of-the-world stream; returns true when at least one response arrived.
    async fn sotw(&mut self, channel: Channel) -> bool {
        let mut client =
            AggregatedDiscoveryServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE);
        let (tx, rx) = mpsc::unbounded_channel();
        let now = Instant::now();
        self.cache.resubscribe(now);
        self.cache.restart_timers(now);
        let mut node = Some(node(&self.bootstrap.node));
        let mut st: [SotwType; 4] = Default::default();
        sotw_subscriptions(&self.cache, &tx, &mut st, &mut node);
        let mut stream = match client
            .stream_aggregated_resources(UnboundedReceiverStream::new(rx))
            .await
        {
            Ok(r) => r.into_inner(),
            Err(s) => {
                self.closed_with(format!(
                    "cannot open the ADS stream: {} {}",
                    s.code(),
                    s.message()
                ));
                return false;
            }
        };
        self.set_connected();
        let mut got = false;
        loop {
            match self.next_event(&mut stream).await {
                Event::Response(resp) => {
                    got = true;
                    let Some(kind) = Kind::from_type_url(&resp.type_url) else {
                        let _ = tx.send(DiscoveryRequest {
                            node: node.take(),
                            type_url: resp.type_url.clone(),
                            response_nonce: resp.nonce,
                            error_detail: Some(rpc_status(format!(
                                "type {} was not subscribed",
                                resp.type_url
                            ))),
                            ..Default::default()
                        });
                        continue;
                    };
                    let incoming = resp
                        .resources
                        .into_iter()
                        .map(|any| Incoming {
                            name: String::new(),
                            version: resp.version_info.clone(),
                            any,
                        })
                        .collect();
                    let nack = self.on_response(kind, incoming, &[], kind.full_state());
                    let t = &mut st[kind.idx()];
                    t.nonce = resp.nonce;
                    if nack.is_none() {
                        t.version = resp.version_info;
                    }
                    let names = self.cache.names(kind);
                    let _ = tx.send(DiscoveryRequest {
                        node: node.take(),
                        version_info: t.version.clone(),
                        resource_names: names.clone(),
                        type_url: kind.type_url().into(),
                        response_nonce: t.nonce.clone(),
                        error_detail: nack.map(rpc_status),
                        ..Default::default()
                    });
                    t.told = Some(names);
                    sotw_subscriptions(&self.cache, &tx, &mut st, &mut node);
                }
                Event::Command(c) => {
                    self.command(c);
                    sotw_subscriptions(&self.cache, &tx, &mut st, &mut node);
                }
                Event::Expired => self.expire(),
                Event::Closed(why) => {
                    self.closed_with(why);
                    return got;
                }
                Event::Stop => {
                    self.closed = true;
                    return got;
                }
            }
        }
    }
}

/// Per-type state of a state-of-the-world stream.
#[derive(Debug, Default)]
struct SotwType {
    /// The last accepted version.
    version: String,
    /// The nonce of the last response.
    nonce: String,
    /// The names last requested (`None`: never requested on this stream).
    told: Option<Vec<String>>,
}

fn delta_subscriptions(
    cache: &Cache,
    tx: &mpsc::UnboundedSender<DeltaDiscoveryRequest>,
    told: &mut [BTreeSet<String>; 4],
    node: &mut Option<envoy_types::pb::envoy::config::core::v3::Node>,
) {
    for kind in Kind::ALL {
        let now: BTreeSet<String> = cache.names(kind).into_iter().collect();
        let before = &told[kind.idx()];
        let subscribe: Vec<String> = now.difference(before).cloned().collect();
        let unsubscribe: Vec<String> = before.difference(&now).cloned().collect();
        if subscribe.is_empty() && unsubscribe.is_empty() {
            continue;
        }
        let _ = tx.send(DeltaDiscoveryRequest {
            node: node.take(),
            type_url: kind.type_url().into(),
            resource_names_subscribe: subscribe,
            resource_names_unsubscribe: unsubscribe,
            ..Default::default()
        });
        told[kind.idx()] = now;
    }
}

fn sotw_subscriptions(
    cache: &Cache,
    tx: &mpsc::UnboundedSender<DiscoveryRequest>,
    st: &mut [SotwType; 4],
    node: &mut Option<envoy_types::pb::envoy::config::core::v3::Node>,
) {
    for kind in Kind::ALL {
        let names = cache.names(kind);
        let t = &mut st[kind.idx()];
        let changed = match &t.told {
            Some(told) => *told != names,
            None => !names.is_empty(),
        };
        if !changed {
            continue;
        }
        let _ = tx.send(DiscoveryRequest {
            node: node.take(),
            version_info: t.version.clone(),
            resource_names: names.clone(),
            type_url: kind.type_url().into(),
            response_nonce: t.nonce.clone(),
            ..Default::default()
        });
        t.told = Some(names);
    }
}

fn rpc_status(message: String) -> RpcStatus {
    // INVALID_ARGUMENT, as Envoy and gRPC use for rejected resources.
    RpcStatus {
        code: 3,
        message,
        details: Vec::new(),
    }
}

/// The snapshot's certificate while it is valid for a few more seconds.
fn valid(identity: &Snapshot<Option<Svid>>) -> Option<Snapshot<Option<Svid>>> {
    let soon = std::time::SystemTime::now() + Duration::from_secs(5);
    let ok = identity
        .load()
        .as_ref()
        .as_ref()
        .is_some_and(|s| s.not_after > soon);
    ok.then(|| identity.clone())
}

/// Resolves once the watched snapshot holds a certificate (never without a watcher).
async fn identity_arrives(watcher: Option<&mut Watcher<Option<Svid>>>) {
    let Some(w) = watcher else {
        return std::future::pending().await;
    };
    loop {
        if w.changed().await.is_some() {
            return;
        }
    }
}

/// A channel to `uri`: mutual TLS with `identity` (expecting the control plane's SPIFFE ID in
/// the same trust domain) when given, else what the URI says.
async fn connect(
    uri: &str,
    timeout: Duration,
    identity: Option<Snapshot<Option<Svid>>>,
) -> Result<Channel, String> {
    let endpoint = Endpoint::from_shared(uri.to_string())
        .map_err(|e| format!("invalid server URI {uri:?}: {e}"))?
        .connect_timeout(timeout)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    let connected = match identity {
        Some(identity) => {
            let trust_domain = identity
                .load()
                .as_ref()
                .as_ref()
                .map(|s| s.id.trust_domain().to_string())
                .unwrap_or_default();
            let expect = SpiffeId::control_plane(&trust_domain)
                .map_err(|e| e.to_string())?
                .to_string();
            let config = crate::tls::client_config(identity, &[crate::tls::ALPN_H2]);
            let connector = crate::tls::ChannelConnector::new(
                config,
                vec![StringMatch::Exact(expect)],
                timeout,
            );
            endpoint.connect_with_connector(connector).await
        }
        None => endpoint.connect().await,
    };
    connected.map_err(|e| {
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        msg
    })
}
