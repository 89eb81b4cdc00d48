//! The watch cache as config documents: the same parser as the directory source, so the same
//! document means the same xDS whichever source it came from.

use std::path::{Path, PathBuf};

use kube::api::DynamicObject;
use serde_json::{Value, json};

use super::kinds::{KINDS, Role, WatchedKind};
use super::services::service_entries;
use super::store::Store;
use crate::config::{LoadedConfig, parse_file};

/// The pseudo file a Kubernetes object's diagnostics name: `kubernetes:<Kind>/<ns>/<name>`.
pub fn object_path(kind: &str, namespace: &str, name: &str) -> PathBuf {
    PathBuf::from(format!("kubernetes:{kind}/{namespace}/{name}"))
}

/// Every document of the cache, in [`KINDS`] order then namespace and name: Services (as
/// ServiceEntries) first, then each custom resource kind.
pub fn load(store: &Store, cluster_domain: &str) -> LoadedConfig {
    let mut out = LoadedConfig::default();
    let mut add = |path: &Path, doc: &Value| {
        let (docs, diags) = parse_file(path, &doc.to_string());
        out.documents.extend(docs);
        out.diagnostics.extend(diags);
    };
    for ((ns, name), entry) in service_entries(store, cluster_domain) {
        add(&object_path("Service", &ns, &name), &entry);
    }
    for (i, kind) in KINDS.iter().enumerate() {
        if kind.role != Role::Document {
            continue;
        }
        for ((ns, name), o) in store.objects(i) {
            add(&object_path(kind.kind, ns, name), &document(kind, o));
        }
    }
    out
}

/// The object as the YAML document a user would write: apiVersion, kind, metadata (name,
/// namespace, labels, annotations) and spec; server-side fields are left out.
fn document(kind: &WatchedKind, o: &DynamicObject) -> Value {
    let mut metadata = json!({
        "name": o.metadata.name,
        "namespace": o.metadata.namespace,
    });
    if let Some(l) = &o.metadata.labels {
        metadata["labels"] = json!(l);
    }
    if let Some(a) = &o.metadata.annotations {
        // kubectl's copy of the last applied object is not part of the document.
        let kept: std::collections::BTreeMap<_, _> = a
            .iter()
            .filter(|(k, _)| *k != "kubectl.kubernetes.io/last-applied-configuration")
            .collect();
        if !kept.is_empty() {
            metadata["annotations"] = json!(kept);
        }
    }
    let mut doc = json!({
        "apiVersion": o.types.as_ref().map_or_else(|| kind.api_version(), |t| t.api_version.clone()),
        "kind": kind.kind,
        "metadata": metadata,
    });
    if let Some(spec) = o.data.get("spec") {
        doc["spec"] = spec.clone();
    }
    doc
}
