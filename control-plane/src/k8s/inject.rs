//! Injection for library users: a mutating admission webhook that gives an opted-in pod what
//! Istio's proxyless gRPC template gives it, so the application needs no Kubernetes-specific code.
//!
//! A pod labelled `meshlib.dev/inject: "true"` gets, in every container:
//! - `GRPC_XDS_BOOTSTRAP=/etc/mesh/bootstrap/bootstrap.json`: the standard gRPC xDS bootstrap
//!   (the control plane's address, the node with Istio's metadata: namespace, service account,
//!   labels, workload name), and under [`CA_BOOTSTRAP_KEY`] the CA, the pod's SPIFFE ID, the
//!   token file and the trust bundle, read by
//!   `mesh_xds_client::identity::IdentityOptions::from_bootstrap` (a top-level key, which stock
//!   gRPC clients ignore, not a `certificate_providers` plugin, which they refuse);
//! - `/etc/mesh/bootstrap/root-cert.pem`: the trust bundle. Both files come from pod
//!   annotations through a downwardAPI volume, so nothing else needs creating in the namespace;
//! - `/var/run/secrets/mesh/tokens/mesh-token`: a projected service account token bound to the
//!   CA's audience (`istio-ca`), rotated by the kubelet, with which the CA authenticates the
//!   first CSR ([`super::token_review`]).
//!
//! A pod without the label, or already injected (annotation `meshlib.dev/injected`), is allowed
//! unchanged. The webhook never refuses a pod: a pod it cannot read is allowed as it is, with a
//! warning in the response.

use std::net::SocketAddr;

use k8s_openapi::ByteString;
use serde_json::{Value, json};

/// The pod label that opts a pod in.
pub const INJECT_LABEL: &str = "meshlib.dev/inject";
/// The annotation that marks an injected pod (and holds nothing else).
pub const INJECTED_ANNOTATION: &str = "meshlib.dev/injected";
/// The annotation holding the bootstrap JSON.
pub const BOOTSTRAP_ANNOTATION: &str = "meshlib.dev/bootstrap";
/// The annotation holding the trust bundle (PEM).
pub const ROOT_CERT_ANNOTATION: &str = "meshlib.dev/root-cert";
/// Where the bootstrap and the trust bundle are mounted.
pub const BOOTSTRAP_DIR: &str = "/etc/mesh/bootstrap";
/// Where the service account token is mounted.
pub const TOKEN_DIR: &str = "/var/run/secrets/mesh/tokens";
/// The token's file name in [`TOKEN_DIR`].
pub const TOKEN_FILE: &str = "mesh-token";
pub use mesh_xds_client::identity::CA_BOOTSTRAP_KEY;
/// Lifetime of the projected token (the kubelet rotates it at 80 %).
const TOKEN_SECONDS: u64 = 3600;

/// How the webhook runs.
#[derive(Debug, Clone)]
pub struct InjectionOptions {
    /// Where the webhook listens (HTTPS; the path is `/inject`).
    pub addr: SocketAddr,
    /// DNS names of its serving certificate (the Service's `<name>.<namespace>.svc`).
    pub dns_names: Vec<String>,
    /// The xDS and CA address injected pods dial, `host:port`.
    pub xds_address: String,
    /// The MutatingWebhookConfiguration whose `caBundle` the leader keeps equal to the CA
    /// root. Default: none.
    pub webhook_config: Option<String>,
}

/// Builds the patch for a pod.
#[derive(Debug, Clone)]
pub struct Injector {
    /// The xDS and CA address, `host:port`.
    pub xds_address: String,
    /// Trust domain of the pod's SPIFFE ID.
    pub trust_domain: String,
    /// The cluster's DNS domain.
    pub cluster_domain: String,
    /// The audience of the projected token.
    pub token_audience: String,
    /// The trust bundle, PEM.
    pub root_pem: String,
}

/// Escapes a key for a JSON pointer (RFC 6901).
fn pointer_key(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

/// `add` of `item` to the array at `path` of `object`, creating the array when absent.
fn add_to_array(ops: &mut Vec<Value>, object: &Value, path: &str, items: Vec<Value>) {
    let exists = object.pointer(path).is_some_and(Value::is_array);
    if exists {
        for item in items {
            ops.push(json!({"op": "add", "path": format!("{path}/-"), "value": item}));
        }
    } else {
        ops.push(json!({"op": "add", "path": path, "value": items}));
    }
}

/// The workload's name as Istio derives it: the pod's name, or its generateName without the
/// ReplicaSet's hash (`reviews-v1-5d8f9c7b9-` → `reviews-v1`).
fn workload_name(pod: &Value) -> String {
    if let Some(n) = pod["metadata"]["name"].as_str().filter(|n| !n.is_empty()) {
        return n.to_string();
    }
    let generated = pod["metadata"]["generateName"]
        .as_str()
        .unwrap_or_default()
        .trim_end_matches('-');
    let owned_by_replica_set = pod["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|o| o.iter().any(|r| r["kind"] == "ReplicaSet"));
    match generated.rsplit_once('-') {
        Some((deployment, _hash)) if owned_by_replica_set => deployment.to_string(),
        _ => generated.to_string(),
    }
}

impl Injector {
    /// The bootstrap JSON for a pod of `namespace` running as `service_account`.
    pub fn bootstrap(&self, pod: &Value, namespace: &str, service_account: &str) -> Value {
        let labels = pod["metadata"]["labels"].clone();
        let workload = workload_name(pod);
        let id = format!(
            "spiffe://{}/ns/{namespace}/sa/{service_account}",
            self.trust_domain
        );
        json!({
            "xds_servers": [{
                "server_uri": self.xds_address,
                "channel_creds": [{"type": "insecure"}],
                "server_features": ["xds_v3"],
            }],
            "node": {
                "id": format!("sidecar~0.0.0.0~{workload}.{namespace}~{namespace}.svc.{}", self.cluster_domain),
                "cluster": labels["app"].as_str().unwrap_or(&workload),
                "metadata": {
                    "NAMESPACE": namespace,
                    "SERVICE_ACCOUNT": service_account,
                    "WORKLOAD_NAME": workload,
                    "LABELS": if labels.is_object() { labels.clone() } else { json!({}) },
                    "TRUST_DOMAIN": self.trust_domain,
                    "GENERATOR": "grpc",
                },
            },
            "server_listener_resource_name_template": "xds.istio.io/grpc/lds/inbound/%s",
            CA_BOOTSTRAP_KEY: {
                "ca_address": format!("http://{}", self.xds_address),
                "spiffe_id": id,
                "token_file": format!("{TOKEN_DIR}/{TOKEN_FILE}"),
                "root_cert_file": format!("{BOOTSTRAP_DIR}/root-cert.pem"),
            },
        })
    }

    /// The JSON patch (RFC 6902) that injects `pod` of `namespace`, or `None` when the pod did
    /// not opt in or is injected already.
    pub fn patch(&self, pod: &Value, namespace: &str) -> Option<Vec<Value>> {
        let meta = &pod["metadata"];
        if meta["labels"][INJECT_LABEL].as_str() != Some("true")
            || meta["annotations"][INJECTED_ANNOTATION].is_string()
        {
            return None;
        }
        let sa = pod["spec"]["serviceAccountName"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("default");
        let bootstrap = self.bootstrap(pod, namespace, sa).to_string();
        let mut ops = Vec::new();
        let annotations = [
            (INJECTED_ANNOTATION, "true".to_string()),
            (BOOTSTRAP_ANNOTATION, bootstrap),
            (ROOT_CERT_ANNOTATION, self.root_pem.clone()),
        ];
        if meta["annotations"].is_object() {
            for (k, v) in annotations {
                ops.push(json!({"op": "add", "path": format!("/metadata/annotations/{}", pointer_key(k)), "value": v}));
            }
        } else {
            let all: serde_json::Map<String, Value> = annotations
                .into_iter()
                .map(|(k, v)| (k.to_string(), Value::String(v)))
                .collect();
            ops.push(json!({"op": "add", "path": "/metadata/annotations", "value": all}));
        }
        let annotation_file = |key: &str, path: &str| json!({"path": path, "fieldRef": {"fieldPath": format!("metadata.annotations['{key}']")}});
        add_to_array(
            &mut ops,
            pod,
            "/spec/volumes",
            vec![
                json!({"name": "mesh-bootstrap", "downwardAPI": {"items": [
                    annotation_file(BOOTSTRAP_ANNOTATION, "bootstrap.json"),
                    annotation_file(ROOT_CERT_ANNOTATION, "root-cert.pem"),
                ]}}),
                json!({"name": "mesh-token", "projected": {"sources": [{"serviceAccountToken": {
                    "audience": self.token_audience,
                    "expirationSeconds": TOKEN_SECONDS,
                    "path": TOKEN_FILE,
                }}]}}),
            ],
        );
        for (i, _) in pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let base = format!("/spec/containers/{i}");
            add_to_array(
                &mut ops,
                pod,
                &format!("{base}/env"),
                vec![
                    json!({"name": "GRPC_XDS_BOOTSTRAP", "value": format!("{BOOTSTRAP_DIR}/bootstrap.json")}),
                ],
            );
            add_to_array(
                &mut ops,
                pod,
                &format!("{base}/volumeMounts"),
                vec![
                    json!({"name": "mesh-bootstrap", "mountPath": BOOTSTRAP_DIR, "readOnly": true}),
                    json!({"name": "mesh-token", "mountPath": TOKEN_DIR, "readOnly": true}),
                ],
            );
        }
        Some(ops)
    }

    /// Answers an `admission.k8s.io/v1` AdmissionReview.
    pub fn review(&self, review: &Value) -> Value {
        let request = &review["request"];
        let uid = request["uid"].clone();
        let namespace = request["namespace"]
            .as_str()
            .or_else(|| request["object"]["metadata"]["namespace"].as_str())
            .unwrap_or("default");
        let mut response = json!({"uid": uid, "allowed": true});
        if request["kind"]["kind"] != "Pod" || !request["object"].is_object() {
            response["warnings"] = json!(["meshlib.dev injection: not a pod; left unchanged"]);
        } else if let Some(ops) = self.patch(&request["object"], namespace) {
            let bytes = serde_json::to_vec(&ops).unwrap_or_default();
            response["patchType"] = json!("JSONPatch");
            response["patch"] = serde_json::to_value(ByteString(bytes)).unwrap_or_default();
        }
        json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": response,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn injector() -> Injector {
        Injector {
            xds_address: "mesh.mesh-system.svc:15010".into(),
            trust_domain: "cluster.local".into(),
            cluster_domain: "cluster.local".into(),
            token_audience: "istio-ca".into(),
            root_pem: "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n".into(),
        }
    }

    fn pod(labels: Value) -> Value {
        json!({
            "metadata": {"generateName": "reviews-v1-5d8f9c7b9-", "labels": labels,
                         "ownerReferences": [{"kind": "ReplicaSet", "name": "reviews-v1-5d8f9c7b9"}]},
            "spec": {"serviceAccountName": "reviews", "containers": [
                {"name": "app", "env": [{"name": "A", "value": "1"}]},
                {"name": "helper"},
            ]},
        })
    }

    #[test]
    fn only_opted_in_pods_are_patched_once() {
        let i = injector();
        assert!(i.patch(&pod(json!({"app": "reviews"})), "shop").is_none());
        let mut p = pod(json!({"app": "reviews", INJECT_LABEL: "true"}));
        assert!(i.patch(&p, "shop").is_some());
        p["metadata"]["annotations"] = json!({INJECTED_ANNOTATION: "true"});
        assert!(i.patch(&p, "shop").is_none());
    }

    #[test]
    fn the_patch_appends_to_existing_arrays_and_creates_missing_ones() {
        let ops = injector()
            .patch(
                &pod(json!({"app": "reviews", INJECT_LABEL: "true"})),
                "shop",
            )
            .unwrap();
        let paths: Vec<&str> = ops.iter().map(|o| o["path"].as_str().unwrap()).collect();
        assert_eq!(
            paths,
            [
                "/metadata/annotations",
                "/spec/volumes",
                "/spec/containers/0/env/-",
                "/spec/containers/0/volumeMounts",
                "/spec/containers/1/env",
                "/spec/containers/1/volumeMounts",
            ]
        );
        assert!(ops.iter().all(|o| o["op"] == "add"));
        let token = &ops[1]["value"][1]["projected"]["sources"][0]["serviceAccountToken"];
        assert_eq!(token["audience"], "istio-ca");
    }

    #[test]
    fn the_bootstrap_names_the_workload_as_istio_does() {
        let p = pod(json!({"app": "reviews", "version": "v1", INJECT_LABEL: "true"}));
        let b = injector().bootstrap(&p, "shop", "reviews");
        let node = &b["node"];
        assert_eq!(node["metadata"]["WORKLOAD_NAME"], "reviews-v1");
        assert_eq!(node["metadata"]["LABELS"]["version"], "v1");
        assert_eq!(node["cluster"], "reviews");
        let ca = &b[CA_BOOTSTRAP_KEY];
        assert_eq!(ca["spiffe_id"], "spiffe://cluster.local/ns/shop/sa/reviews");
        assert_eq!(ca["ca_address"], "http://mesh.mesh-system.svc:15010");
    }

    #[test]
    fn a_review_answers_with_a_base64_patch_and_never_refuses() {
        let review = json!({"request": {"uid": "u-1", "namespace": "shop",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "object": pod(json!({INJECT_LABEL: "true"}))}});
        let r = injector().review(&review);
        assert_eq!(r["response"]["uid"], "u-1");
        assert_eq!(r["response"]["allowed"], true);
        assert_eq!(r["response"]["patchType"], "JSONPatch");
        let patch: ByteString = serde_json::from_value(r["response"]["patch"].clone()).unwrap();
        let ops: Vec<Value> = serde_json::from_slice(&patch.0).unwrap();
        assert_eq!(ops.len(), 6);
        let other = json!({"request": {"uid": "u-2", "kind": {"kind": "Secret"}, "object": {}}});
        let r = injector().review(&other);
        assert_eq!(r["response"]["allowed"], true);
        assert!(r["response"]["patch"].is_null());
    }
}
