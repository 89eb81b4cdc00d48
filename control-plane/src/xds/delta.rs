//! Incremental ADS (`DeltaAggregatedResources`).
//!
//! Per type the stream remembers the subscription and the version of each resource the client
//! holds (seeded from `initial_resource_versions` on reconnect). Each response carries only the
//! resources whose version differs and the names that disappeared; an explicitly subscribed name
//! that does not exist is reported once in `removed_resources`, so the client need not wait for its
//! does-not-exist timer.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource,
};
use futures::{Stream, StreamExt};
use mesh_core::Snapshot;
use tokio::sync::{mpsc, watch};
use tonic::Status;

use super::cache::Subscription;
use super::cache::{XdsSnapshot, is_full_state_type, short_type};
use super::status::{ClientHandle, ClientRegistry, StreamKind};
use super::stopped;

#[derive(Debug, Default)]
struct TypeState {
    sub: Subscription,
    seen_request: bool,
    /// Versions the client holds (or is being sent).
    known: BTreeMap<String, String>,
    /// Subscribed names already reported as absent.
    absent: BTreeSet<String>,
    last_nonce: String,
    /// The resources of the last response, for its ACK or NACK.
    in_flight: Vec<(String, String)>,
}

pub(crate) async fn run<S>(
    mut incoming: S,
    tx: mpsc::Sender<Result<DeltaDiscoveryResponse, Status>>,
    snapshot: Snapshot<XdsSnapshot>,
    registry: ClientRegistry,
    mut shutdown: watch::Receiver<bool>,
    peer: Option<String>,
) where
    S: Stream<Item = Result<DeltaDiscoveryRequest, Status>> + Unpin,
{
    let client = registry.register(StreamKind::Delta, peer);
    if !super::first_config(&snapshot, &mut shutdown).await {
        return;
    }
    let mut watcher = snapshot.watch();
    let mut types: HashMap<String, TypeState> = HashMap::new();
    let mut nonce = 0u64;
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => return,
            req = incoming.next() => {
                let req = match req {
                    Some(Ok(r)) => r,
                    Some(Err(e)) => {
                        tracing::debug!(node = %client.node_id(), error = %e, "delta ADS stream ended with an error");
                        return;
                    }
                    None => return,
                };
                if let Some(node) = &req.node && !client.has_node() {
                    client.set_node(node);
                    tracing::info!(node = %node.id, "delta ADS client connected");
                }
                let current = snapshot.load_full();
                let state = types.entry(req.type_url.clone()).or_default();
                let first = handle_request(&client, state, &req);
                if let Some(resp) = respond(&client, state, &req.type_url, &current, first, &mut nonce)
                    && tx.send(Ok(resp)).await.is_err()
                {
                    return;
                }
            }
            current = watcher.changed() => {
                for (type_url, state) in types.iter_mut() {
                    if !state.seen_request { continue; }
                    if let Some(resp) = respond(&client, state, type_url, &current, false, &mut nonce) {
                        metrics::histogram!("mesh_xds_push_latency_seconds").record(current.created.elapsed().as_secs_f64());
                        if tx.send(Ok(resp)).await.is_err() { return; }
                    }
                }
            }
        }
    }
}

/// Applies a request; returns true when it was the first of its type on this stream.
fn handle_request(
    client: &ClientHandle,
    state: &mut TypeState,
    req: &DeltaDiscoveryRequest,
) -> bool {
    if !req.response_nonce.is_empty() && req.response_nonce == state.last_nonce {
        let error = req.error_detail.as_ref().map(|s| s.message.as_str());
        if let Some(e) = error {
            tracing::warn!(node = %client.node_id(), r#type = short_type(&req.type_url), error = %e, "NACK");
        }
        client.answered(&req.type_url, &state.in_flight, error);
        state.in_flight.clear();
    }
    let first = !state.seen_request;
    if first {
        state.known = req
            .initial_resource_versions
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        state.sub.wildcard =
            req.resource_names_subscribe.is_empty() && is_full_state_type(&req.type_url);
    }
    for name in &req.resource_names_subscribe {
        if name == "*" {
            state.sub.wildcard = true;
        } else {
            state.sub.names.insert(name.clone());
        }
    }
    for name in &req.resource_names_unsubscribe {
        if name == "*" {
            state.sub.wildcard = false;
        } else {
            state.sub.names.remove(name);
            state.absent.remove(name);
        }
    }
    if !state.sub.wildcard {
        let sub = &state.sub;
        state.known.retain(|n, _| sub.names.contains(n));
    }
    state.seen_request = true;
    if first
        || !req.resource_names_subscribe.is_empty()
        || !req.resource_names_unsubscribe.is_empty()
    {
        client.subscribed(&req.type_url, &state.sub);
    }
    if first && !state.known.is_empty() {
        let held: Vec<(String, String)> = state
            .known
            .iter()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        client.holds(&req.type_url, &held);
    }
    first
}

fn respond(
    client: &ClientHandle,
    state: &mut TypeState,
    type_url: &str,
    current: &Arc<XdsSnapshot>,
    force: bool,
    nonce: &mut u64,
) -> Option<DeltaDiscoveryResponse> {
    let mut resources = Vec::new();
    let mut sent = Vec::new();
    let mut present = BTreeSet::new();
    for r in current.select(type_url, &state.sub) {
        present.insert(r.name.as_str());
        if state.known.get(&r.name) != Some(&r.version) {
            resources.push(Resource {
                name: r.name.clone(),
                version: r.version.clone(),
                resource: Some(r.any.clone()),
                ..Default::default()
            });
            sent.push((r.name.clone(), r.version.clone()));
        }
    }
    let mut removed: Vec<String> = state
        .known
        .keys()
        .filter(|n| !present.contains(n.as_str()))
        .cloned()
        .collect();
    for name in &state.sub.names {
        if !present.contains(name.as_str())
            && !state.known.contains_key(name)
            && state.absent.insert(name.clone())
        {
            removed.push(name.clone());
        }
    }
    if resources.is_empty() && removed.is_empty() && !force {
        return None;
    }
    for (n, v) in &sent {
        state.known.insert(n.clone(), v.clone());
        state.absent.remove(n);
    }
    for n in &removed {
        state.known.remove(n);
        if state.sub.names.contains(n) {
            state.absent.insert(n.clone());
        }
    }
    *nonce += 1;
    state.last_nonce = nonce.to_string();
    client.sent(type_url, &sent, &removed);
    state.in_flight = sent;
    Some(DeltaDiscoveryResponse {
        system_version_info: current.generation.to_string(),
        resources,
        type_url: type_url.to_string(),
        removed_resources: removed,
        nonce: state.last_nonce.clone(),
        ..Default::default()
    })
}
