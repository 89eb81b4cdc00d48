//! From config documents (a directory, Kubernetes) to a published [`XdsSnapshot`]: load, translate, encode.

use std::path::Path;
use std::sync::Arc;

use mesh_core::MeshResources;
use mesh_xds_client::codec;
use serde::Serialize;

use crate::config::{self, Diagnostic, Severity};
use crate::provenance::DocumentResources;
use crate::translate;
use crate::xds::{XdsResource, XdsSnapshot};

/// The outcome of the latest load, shown by the admin API.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConfigStatus {
    /// Generation of the published snapshot.
    pub generation: u64,
    /// True once a config has been published.
    pub loaded: bool,
    /// Documents accepted.
    pub documents: usize,
    /// Problems: errors rejected a document, warnings name ignored fields.
    pub diagnostics: Vec<DiagnosticView>,
    /// The model that was published.
    #[serde(skip)]
    pub resources: Arc<MeshResources>,
    /// The resources each accepted document shaped (for `/debug/syncz`).
    #[serde(skip)]
    pub provenance: Arc<Vec<DocumentResources>>,
}

/// A diagnostic as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct DiagnosticView {
    /// `error` or `warning`.
    pub severity: &'static str,
    /// The whole message: file, document, field and reason.
    pub message: String,
}

impl ConfigStatus {
    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == "error")
            .count()
    }
}

/// Loads and translates every document in `dir`.
pub fn compile_dir(dir: &Path) -> (MeshResources, Vec<Diagnostic>, usize) {
    compile_dir_in(dir, translate::DEFAULT_TRUST_DOMAIN, &[])
}

/// As [`compile_dir`], with workload identities in `trust_domain` and inbound listeners for the
/// servers that described themselves over xDS (`nodes`).
pub fn compile_dir_in(
    dir: &Path,
    trust_domain: &str,
    nodes: &[crate::xds::NodeWorkload],
) -> (MeshResources, Vec<Diagnostic>, usize) {
    let c = compile(config::load_dir(dir), trust_domain, nodes);
    (c.resources, c.diagnostics, c.accepted)
}

/// The outcome of one build.
#[derive(Debug, Default)]
pub struct Compiled {
    /// The model.
    pub resources: MeshResources,
    /// Every diagnostic, reading ones first.
    pub diagnostics: Vec<Diagnostic>,
    /// How many documents were accepted.
    pub accepted: usize,
    /// The resources each accepted document shaped.
    pub provenance: Vec<DocumentResources>,
}

/// Translates documents from any source (a directory, Kubernetes, both).
pub fn compile(
    loaded: config::LoadedConfig,
    trust_domain: &str,
    nodes: &[crate::xds::NodeWorkload],
) -> Compiled {
    let (resources, mut diags) = translate::build_with(&loaded.documents, trust_domain, nodes);
    let mut all = loaded.diagnostics;
    all.append(&mut diags);
    let rejected: std::collections::BTreeSet<_> = all
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| (d.file.clone(), d.document))
        .collect();
    let accepted: Vec<&config::Document> = loaded
        .documents
        .iter()
        .filter(|d| !rejected.contains(&(d.source.file.clone(), d.source.index)))
        .collect();
    let provenance = crate::provenance::attribute(&accepted, &resources, nodes);
    Compiled {
        accepted: accepted.len(),
        resources,
        diagnostics: all,
        provenance,
    }
}

/// Encodes a model into a snapshot of generation `generation`; resources that cannot be encoded
/// are left out and reported.
pub fn encode(generation: u64, resources: &MeshResources) -> (XdsSnapshot, Vec<String>) {
    let (encoded, errors) = codec::encode_all(resources);
    let items = encoded
        .into_iter()
        .map(|e| {
            let model = model_json(resources, e.type_url, &e.name);
            let inbound = resources.inbound.contains_key(&e.name);
            let r = XdsResource::new(e.name, e.resource, model);
            (e.type_url, if inbound { r.named_only() } else { r })
        })
        .collect();
    (
        XdsSnapshot::new(generation, items),
        errors.iter().map(|e| e.to_string()).collect(),
    )
}

fn model_json(r: &MeshResources, type_url: &str, name: &str) -> serde_json::Value {
    let v = match type_url {
        codec::LISTENER_TYPE => match r.listeners.get(name) {
            Some(l) => Some(serde_json::to_value(l)),
            None => r.inbound.get(name).map(serde_json::to_value),
        },
        codec::ROUTE_TYPE => r.route_tables.get(name).map(serde_json::to_value),
        codec::CLUSTER_TYPE => r.clusters.get(name).map(serde_json::to_value),
        codec::ENDPOINT_TYPE => r.assignments.get(name).map(serde_json::to_value),
        _ => None,
    };
    v.and_then(Result::ok).unwrap_or(serde_json::Value::Null)
}

/// Turns diagnostics into their JSON view.
pub fn views(diags: &[Diagnostic]) -> Vec<DiagnosticView> {
    diags
        .iter()
        .map(|d| DiagnosticView {
            severity: match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            },
            message: d.to_string(),
        })
        .collect()
}
