//! State-of-the-world ADS (`StreamAggregatedResources`).
//!
//! Per type the stream remembers the subscription, the view last sent (names and versions) and the
//! nonce of the last response. A new config generation is pushed only when the view of this client
//! changed; a NACK is recorded and not retried until the config changes.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use futures::{Stream, StreamExt};
use mesh_core::Snapshot;
use tokio::sync::{mpsc, watch};
use tonic::Status;

use super::cache::{Subscription, XdsSnapshot, fnv1a, is_full_state_type, short_type};
use super::status::{ClientHandle, ClientRegistry, StreamKind};
use super::stopped;

#[derive(Debug, Default)]
struct TypeState {
    sub: Subscription,
    seen_request: bool,
    /// The (name, version) list last sent; pushes happen when it changes.
    last_view: Option<Vec<(String, String)>>,
    last_nonce: String,
}

pub(crate) async fn run<S>(
    mut incoming: S,
    tx: mpsc::Sender<Result<DiscoveryResponse, Status>>,
    snapshot: Snapshot<XdsSnapshot>,
    registry: ClientRegistry,
    mut shutdown: watch::Receiver<bool>,
    peer: Option<String>,
) where
    S: Stream<Item = Result<DiscoveryRequest, Status>> + Unpin,
{
    let client = registry.register(StreamKind::Sotw, peer);
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
                        tracing::debug!(node = %client.node_id(), error = %e, "ADS stream ended with an error");
                        return;
                    }
                    None => return,
                };
                if let Some(node) = &req.node && !client.has_node() {
                    client.set_node(node);
                    tracing::info!(node = %node.id, "state-of-the-world ADS client connected");
                }
                let current = snapshot.load_full();
                let state = types.entry(req.type_url.clone()).or_default();
                if handle_request(&client, state, &req) {
                    let resp = respond(&client, state, &req.type_url, &current, true, &mut nonce);
                    if let Some(resp) = resp && tx.send(Ok(resp)).await.is_err() {
                        return;
                    }
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

/// Applies a request to the type's state; returns true when a response is due.
fn handle_request(client: &ClientHandle, state: &mut TypeState, req: &DiscoveryRequest) -> bool {
    if !req.response_nonce.is_empty() {
        if req.response_nonce != state.last_nonce {
            // An answer to a response that was superseded: the client will answer the newer one.
            return false;
        }
        let sent = state.last_view.clone().unwrap_or_default();
        let error = req.error_detail.as_ref().map(|s| s.message.as_str());
        if let Some(e) = error {
            tracing::warn!(node = %client.node_id(), r#type = short_type(&req.type_url), error = %e, "NACK");
        }
        client.answered(&req.type_url, &sent, error);
    }
    let names: BTreeSet<String> = req.resource_names.iter().cloned().collect();
    let first = !state.seen_request;
    let sub = Subscription {
        // Legacy wildcard: an empty first request for LDS/CDS; explicit wildcard: "*".
        wildcard: names.contains("*")
            || (first && names.is_empty() && is_full_state_type(&req.type_url))
            || (state.sub.wildcard && names.is_empty()),
        names: names.into_iter().filter(|n| n != "*").collect(),
    };
    let changed = sub != state.sub;
    state.sub = sub;
    state.seen_request = true;
    if changed || first {
        client.subscribed(&req.type_url, &state.sub);
    }
    // A request without a nonce is a (re)subscription and always gets an answer.
    first || changed || req.response_nonce.is_empty()
}

/// Builds the response for one type, or `None` when this client's view did not change.
fn respond(
    client: &ClientHandle,
    state: &mut TypeState,
    type_url: &str,
    current: &Arc<XdsSnapshot>,
    force: bool,
    nonce: &mut u64,
) -> Option<DiscoveryResponse> {
    let selected: Vec<_> = current.select(type_url, &state.sub).collect();
    let view: Vec<(String, String)> = selected
        .iter()
        .map(|r| (r.name.clone(), r.version.clone()))
        .collect();
    if !force && state.last_view.as_ref() == Some(&view) {
        return None;
    }
    *nonce += 1;
    let version_info = {
        let joined: String = view.iter().map(|(n, v)| format!("{n}={v};")).collect();
        format!("{:016x}", fnv1a(joined.as_bytes()))
    };
    state.last_nonce = nonce.to_string();
    client.sent(type_url, &view, &[]);
    state.last_view = Some(view);
    Some(DiscoveryResponse {
        version_info,
        resources: selected.iter().map(|r| r.any.clone()).collect(),
        type_url: type_url.to_string(),
        nonce: state.last_nonce.clone(),
        ..Default::default()
    })
}
