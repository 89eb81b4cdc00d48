//! Status back to the user: conditions on every accepted or rejected custom resource, and an
//! Event when one is rejected. Only the leader writes ([`super::lease`]).
//!
//! Conditions follow Gateway API's shape (`type`, `status`, `reason`, `message`,
//! `observedGeneration`, `lastTransitionTime`):
//! - `Accepted`: `True`/`Accepted`, or `False`/`Invalid` with every error of the document;
//! - `ResolvedRefs`: `True`/`ResolvedRefs`, or `False`/`BackendNotFound` when a host, subset,
//!   port or ServiceEntry it names does not exist.
//!
//! Istio kinds get them in `status.conditions`; `HTTPRoute` and `GRPCRoute` in
//! `status.parents[]`, one entry per `parentRef` under our controller name, leaving other
//! controllers' entries alone. A status that already says the same is not written again, and
//! writing status never triggers a rebuild.

use std::sync::{Arc, Mutex};

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::documents::object_path;
use super::kinds::{KINDS, Role};
use super::store::Store;
use crate::config::Diagnostic;

/// The `controllerName` of our `status.parents` entries.
pub const CONTROLLER_NAME: &str = "meshlib.dev/control-plane";

/// What the latest build said of one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Index in [`KINDS`].
    pub kind: usize,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `field: reason` of each error that is not about a reference.
    pub invalid: Vec<String>,
    /// `field: reason` of each unresolved reference.
    pub unresolved: Vec<String>,
}

impl Verdict {
    /// True when the document was accepted.
    pub fn accepted(&self) -> bool {
        self.invalid.is_empty() && self.unresolved.is_empty()
    }
}

/// The verdict on every custom resource in `store`, from the build's diagnostics.
pub fn verdicts(store: &Store, diags: &[Diagnostic]) -> Vec<Verdict> {
    let mut out = Vec::new();
    for (i, kind) in KINDS.iter().enumerate() {
        if kind.role != Role::Document {
            continue;
        }
        for (ns, name) in store.objects(i).keys() {
            let path = object_path(kind.kind, ns, name);
            let mut v = Verdict {
                kind: i,
                namespace: ns.clone(),
                name: name.clone(),
                invalid: Vec::new(),
                unresolved: Vec::new(),
            };
            for d in diags.iter().filter(|d| d.is_error() && d.file == path) {
                let text = if d.field.is_empty() {
                    d.reason.clone()
                } else {
                    format!("{}: {}", d.field, d.reason)
                };
                if d.reason.starts_with("unknown ") {
                    v.unresolved.push(text);
                } else {
                    v.invalid.push(text);
                }
            }
            out.push(v);
        }
    }
    out
}

fn condition(kind: &str, ok: bool, reason_ok: &str, reason_bad: &str, msgs: &[String]) -> Value {
    json!({
        "type": kind,
        "status": if ok { "True" } else { "False" },
        "reason": if ok { reason_ok } else { reason_bad },
        "message": if ok { "ok".to_string() } else { msgs.join("; ") },
    })
}

/// The conditions of a verdict for an object at `generation`, keeping `lastTransitionTime` of
/// conditions whose status did not change from `previous`.
pub fn conditions(v: &Verdict, generation: i64, previous: &Value, now: &str) -> Vec<Value> {
    let mut problems = v.invalid.clone();
    problems.extend(v.unresolved.iter().cloned());
    let mut out = vec![
        condition("Accepted", v.accepted(), "Accepted", "Invalid", &problems),
        condition(
            "ResolvedRefs",
            v.unresolved.is_empty(),
            "ResolvedRefs",
            "BackendNotFound",
            &v.unresolved,
        ),
    ];
    for c in &mut out {
        c["observedGeneration"] = json!(generation);
        let before = previous
            .as_array()
            .and_then(|a| a.iter().find(|p| p["type"] == c["type"]));
        c["lastTransitionTime"] = match before {
            Some(p) if p["status"] == c["status"] => p["lastTransitionTime"].clone(),
            _ => json!(now),
        };
    }
    out
}

/// The status to write for `v` on `object`, or `None` when it already says that.
pub fn desired_status(v: &Verdict, object: &DynamicObject, now: &str) -> Option<Value> {
    let generation = object.metadata.generation.unwrap_or(0);
    let status = object.data.get("status").cloned().unwrap_or(Value::Null);
    if !KINDS[v.kind].is_route() {
        let conds = conditions(v, generation, &status["conditions"], now);
        if status["conditions"] == json!(conds) {
            return None;
        }
        return Some(json!({"conditions": conds, "observedGeneration": generation}));
    }
    let previous = status["parents"].as_array().cloned().unwrap_or_default();
    let ours = |p: &Value| p["controllerName"] == CONTROLLER_NAME;
    let mut parents: Vec<Value> = previous.iter().filter(|p| !ours(p)).cloned().collect();
    let mut changed = false;
    for parent_ref in object.data["spec"]["parentRefs"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let before = previous
            .iter()
            .find(|p| ours(p) && p["parentRef"] == *parent_ref);
        let before_conds = before.map_or(Value::Null, |p| p["conditions"].clone());
        let conds = conditions(v, generation, &before_conds, now);
        changed |= before_conds != json!(conds);
        parents.push(json!({
            "parentRef": parent_ref,
            "controllerName": CONTROLLER_NAME,
            "conditions": conds,
        }));
    }
    changed |= parents.len() != previous.len();
    changed.then(|| json!({"parents": parents}))
}

/// Writes the status of every verdict that changed; creates a Warning Event for each document
/// that is newly rejected (or rejected at a new generation).
pub async fn write(
    client: &kube::Client,
    store: &Arc<Mutex<Store>>,
    verdicts: &[Verdict],
    reporter: &str,
) {
    let now = mesh_core::time::rfc3339_utc(std::time::SystemTime::now(), false);
    for v in verdicts {
        let object = {
            let store = store.lock().unwrap_or_else(|e| e.into_inner());
            store
                .objects(v.kind)
                .get(&(v.namespace.clone(), v.name.clone()))
                .cloned()
        };
        let Some(object) = object else { continue };
        let Some(status) = desired_status(v, &object, &now) else {
            continue;
        };
        let kind = &KINDS[v.kind];
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &v.namespace, &kind.api_resource());
        let patch = Patch::Merge(json!({"status": status}));
        match api
            .patch_status(&v.name, &PatchParams::default(), &patch)
            .await
        {
            Ok(_) => {
                tracing::debug!(kind = kind.kind, namespace = %v.namespace, name = %v.name, accepted = v.accepted(), "status written")
            }
            Err(e) => {
                tracing::warn!(kind = kind.kind, namespace = %v.namespace, name = %v.name, error = %e, "cannot write status");
                continue;
            }
        }
        if !v.accepted() {
            event(client, kind.kind, &object, v, reporter, &now).await;
        }
    }
}

async fn event(
    client: &kube::Client,
    kind: &str,
    object: &DynamicObject,
    v: &Verdict,
    reporter: &str,
    now: &str,
) {
    let mut note = [v.invalid.as_slice(), v.unresolved.as_slice()]
        .concat()
        .join("; ");
    if note.len() > 1000 {
        let mut cut = 1000;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
    }
    let api_version = object
        .types
        .as_ref()
        .map_or_else(|| KINDS[v.kind].api_version(), |t| t.api_version.clone());
    let event = json!({
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"generateName": format!("{}.", v.name), "namespace": v.namespace},
        "eventTime": now.replace('Z', ".000000Z"),
        "reportingController": CONTROLLER_NAME,
        "reportingInstance": reporter,
        "action": "Validate",
        "reason": "Rejected",
        "type": "Warning",
        "note": note,
        "regarding": {
            "apiVersion": api_version,
            "kind": kind,
            "namespace": v.namespace,
            "name": v.name,
            "uid": object.metadata.uid,
            "resourceVersion": object.metadata.resource_version,
        },
    });
    let ar = kube::api::ApiResource {
        group: "events.k8s.io".into(),
        version: "v1".into(),
        api_version: "events.k8s.io/v1".into(),
        kind: "Event".into(),
        plural: "events".into(),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &v.namespace, &ar);
    let result = match serde_json::from_value::<DynamicObject>(event) {
        Ok(e) => api.create(&PostParams::default(), &e).await.map(|_| ()),
        Err(e) => Err(kube::Error::SerdeError(e)),
    };
    if let Err(e) = result {
        tracing::warn!(kind, namespace = %v.namespace, name = %v.name, error = %e, "cannot record event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(invalid: &[&str], unresolved: &[&str]) -> Verdict {
        Verdict {
            kind: KINDS
                .iter()
                .position(|k| k.kind == "VirtualService")
                .unwrap(),
            namespace: "default".into(),
            name: "reviews".into(),
            invalid: invalid.iter().map(|s| s.to_string()).collect(),
            unresolved: unresolved.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn conditions_name_the_reason_and_keep_transition_times() {
        let bad = verdict(
            &[],
            &["spec.http[0].route[0].destination.host: unknown host"],
        );
        let c = conditions(&bad, 3, &Value::Null, "T1");
        assert_eq!(c[0]["status"], "False");
        assert_eq!(c[0]["reason"], "Invalid");
        assert_eq!(c[1]["reason"], "BackendNotFound");
        assert_eq!(c[1]["observedGeneration"], 3);
        assert!(c[1]["message"].as_str().unwrap().contains("unknown host"));
        // Same status later: the transition time stays; a flip takes the new time.
        let again = conditions(&bad, 3, &json!(c), "T2");
        assert_eq!(again[0]["lastTransitionTime"], "T1");
        let good = conditions(&verdict(&[], &[]), 4, &json!(c), "T3");
        assert_eq!(good[0]["status"], "True");
        assert_eq!(good[0]["lastTransitionTime"], "T3");
    }

    #[test]
    fn unchanged_status_is_not_written_again() {
        let v = verdict(&["spec.http[0].timeout: bad duration"], &[]);
        let mut object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": {"name": "reviews", "namespace": "default", "generation": 2},
            "spec": {},
        }))
        .unwrap();
        let status = desired_status(&v, &object, "T1").expect("first write");
        object.data["status"] = status;
        assert_eq!(desired_status(&v, &object, "T2"), None);
        object.metadata.generation = Some(3);
        assert!(desired_status(&v, &object, "T2").is_some());
    }

    #[test]
    fn route_status_keeps_other_controllers() {
        let v = Verdict {
            kind: KINDS.iter().position(|k| k.kind == "HTTPRoute").unwrap(),
            ..verdict(&[], &[])
        };
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "r", "namespace": "default", "generation": 1},
            "spec": {"parentRefs": [{"name": "reviews", "kind": "Service", "group": ""}]},
            "status": {"parents": [{"controllerName": "other.io/gw", "parentRef": {"name": "gw"}}]},
        }))
        .unwrap();
        let status = desired_status(&v, &object, "T").unwrap();
        let parents = status["parents"].as_array().unwrap();
        assert_eq!(parents.len(), 2);
        assert_eq!(parents[0]["controllerName"], "other.io/gw");
        assert_eq!(parents[1]["controllerName"], CONTROLLER_NAME);
        assert_eq!(parents[1]["conditions"][0]["status"], "True");
    }
}
