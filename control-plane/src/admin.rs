//! The admin HTTP API: health, readiness, Prometheus metrics and the debug views.
//!
//! | path | what |
//! |---|---|
//! | `/healthz` | 200 while the process runs |
//! | `/readyz` | 200 once the first config was published, 503 before |
//! | `/metrics` | Prometheus exposition |
//! | `/debug/syncz` | every connected client: node, stream type, each resource's version and ACK/NACK state; per accepted document, how many clients ACKed or NACKed the xDS built from it |
//! | `/debug/config_dump?node=ID` | what the clients with that node id were sent, as JSON |
//! | `/debug/config_status` | the latest load: accepted documents, errors and warnings |
//! | `/ca/root-cert.pem` | the CA's trust anchors (PEM); 404 when the control plane runs no CA |

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use mesh_core::Snapshot;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;
use serde_json::json;

use crate::ca::Ca;
use crate::publish::ConfigStatus;
use crate::xds::{ClientRegistry, XdsSnapshot, short_type};

/// What the admin handlers read.
#[derive(Debug, Clone)]
pub struct AdminState {
    /// The served resources.
    pub snapshot: Snapshot<XdsSnapshot>,
    /// Connected clients.
    pub registry: ClientRegistry,
    /// The latest load.
    pub config: Snapshot<ConfigStatus>,
    /// The certificate authority, if the control plane runs one.
    pub ca: Option<Arc<Ca>>,
}

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ])
            .expect("static buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (an embedding app's); ours still renders
        // what it records through the handle only if it is the global one, so say so.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics shows only ours");
        }
        handle
    })
}

/// The admin router.
pub fn router(state: AdminState) -> Router {
    prometheus();
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(|| async { prometheus().render() }))
        .route("/debug/syncz", get(syncz))
        .route("/debug/config_dump", get(config_dump))
        .route("/debug/config_status", get(config_status))
        .route("/ca/root-cert.pem", get(root_cert))
        .with_state(state)
}

async fn readyz(State(s): State<AdminState>) -> impl IntoResponse {
    if s.config.load().loaded {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "no config loaded yet\n")
    }
}

async fn syncz(State(s): State<AdminState>) -> impl IntoResponse {
    let snap = s.snapshot.load_full();
    let clients: Vec<_> = s
        .registry
        .list()
        .into_iter()
        .map(|c| {
            // STALE: a resource whose ACKed version is not the one currently served.
            let mut stale = 0usize;
            for (t, ts) in &c.types {
                let type_url = crate::xds::TYPES.iter().find(|u| short_type(u) == *t);
                for (name, r) in &ts.resources {
                    let current = type_url
                        .and_then(|u| snap.get(u, name))
                        .map(|x| x.version.as_str());
                    if current.is_some() && r.acked_version.as_deref() != current {
                        stale += 1;
                    }
                }
            }
            let mut v = serde_json::to_value(&c).unwrap_or_default();
            v["status"] = json!(if stale == 0 { "SYNCED" } else { "STALE" });
            v["stale_resources"] = json!(stale);
            v
        })
        .collect();
    let listed = s.registry.list();
    let documents = document_sync(&s.config.load().provenance, &listed, &snap);
    Json(json!({ "generation": snap.generation, "clients": clients, "documents": documents }))
}

/// Per accepted document: how many connected clients hold xDS built from it, and how many of
/// them ACKed all of it at the version served now, NACKed some of it, or have not answered yet.
fn document_sync(
    docs: &[crate::provenance::DocumentResources],
    clients: &[crate::xds::ClientStatus],
    snap: &XdsSnapshot,
) -> Vec<serde_json::Value> {
    docs.iter()
        .map(|d| {
            let (mut acked, mut nacked, mut pending) = (0usize, 0usize, 0usize);
            let mut errors = std::collections::BTreeSet::new();
            for c in clients {
                let held: Vec<_> = d
                    .resources
                    .iter()
                    .filter_map(|(t, name)| {
                        let r = c.types.get(short_type(t))?.resources.get(name)?;
                        Some((r, snap.get(t, name).map(|x| x.version.as_str())))
                    })
                    .collect();
                if held.is_empty() {
                    continue;
                }
                if held.iter().any(|(r, _)| r.state == "NACKED") {
                    nacked += 1;
                    errors.extend(held.iter().filter_map(|(r, _)| r.error.clone()));
                } else if held
                    .iter()
                    .all(|(r, current)| r.acked_version.as_deref() == *current)
                {
                    acked += 1;
                } else {
                    pending += 1;
                }
            }
            json!({
                "kind": d.kind,
                "namespace": d.namespace,
                "name": d.name,
                "source": d.source,
                "resources": d.resources.len(),
                "clients": {"acked": acked, "nacked": nacked, "pending": pending},
                "nack_errors": errors.into_iter().take(3).collect::<Vec<_>>(),
            })
        })
        .collect()
}

#[derive(Debug, Deserialize)]
struct NodeQuery {
    node: Option<String>,
}

async fn config_dump(State(s): State<AdminState>, Query(q): Query<NodeQuery>) -> impl IntoResponse {
    let Some(node) = q.node else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "missing ?node=ID"})),
        );
    };
    let clients = s.registry.by_node(&node);
    if clients.is_empty() {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no connected client has node id {node:?}")})),
        );
    }
    let snap = s.snapshot.load_full();
    let dumps: Vec<_> = clients
        .iter()
        .map(|c| {
            let mut types = BTreeMap::new();
            for (t, ts) in &c.types {
                let type_url = crate::xds::TYPES.iter().find(|u| short_type(u) == *t).copied().unwrap_or("");
                let resources: Vec<_> = ts
                    .resources
                    .iter()
                    .map(|(name, r)| {
                        let current = snap.get(type_url, name);
                        let model = current
                            .filter(|x| x.version == r.sent_version)
                            .map(|x| x.model.clone())
                            .unwrap_or(serde_json::Value::Null);
                        json!({
                            "name": name,
                            "type_url": type_url,
                            "version": r.sent_version,
                            "state": r.state,
                            "acked_version": r.acked_version,
                            "error": r.error,
                            "resource": model,
                        })
                    })
                    .collect();
                types.insert(*t, resources);
            }
            json!({ "connection": c.connection, "stream": c.stream, "node_id": c.node_id, "resources": types })
        })
        .collect();
    (
        StatusCode::OK,
        Json(json!({ "node": node, "clients": dumps })),
    )
}

async fn config_status(State(s): State<AdminState>) -> impl IntoResponse {
    Json(serde_json::to_value(&*s.config.load_full()).unwrap_or_default())
}

async fn root_cert(State(s): State<AdminState>) -> impl IntoResponse {
    match &s.ca {
        Some(ca) => (
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, "application/x-pem-file")],
            ca.root_pem().to_string(),
        ),
        None => (
            StatusCode::NOT_FOUND,
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8",
            )],
            "this control plane runs no certificate authority\n".to_string(),
        ),
    }
}
