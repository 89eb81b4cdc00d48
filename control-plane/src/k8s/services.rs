//! Kubernetes `Service`s with their `EndpointSlice`s and `Pod`s, as `ServiceEntry` documents.
//!
//! What Istio's Kubernetes registry does, for the fields the mesh uses:
//! - host `<name>.<namespace>.svc.<cluster domain>`, one port per Service port (UDP and SCTP
//!   ports are left out); the protocol comes from `appProtocol`, else from the port name's
//!   prefix (`http`, `http2`, `grpc`, `grpc-web`, as in `grpc-api`), else HTTP;
//! - one endpoint per ready address of the Service's EndpointSlices (label
//!   `kubernetes.io/service-name`), with the slice's port numbers by port name;
//! - an endpoint backed by a Pod carries the Pod's labels (so `DestinationRule` subsets select
//!   them) and its service account;
//! - its locality, as Istio: the Pod's `istio-locality` label (`region.zone.subzone`), else the
//!   topology labels of its Node (the endpoint's `nodeName`, else the Pod's `spec.nodeName`):
//!   `topology.kubernetes.io/region`, `topology.kubernetes.io/zone` (else the endpoint's `zone`)
//!   and `topology.istio.io/subzone`.
//!
//! `ExternalName` Services are left out (no DNS resolution).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::kinds::Role;
use super::store::{Key, Store};

/// The `ServiceEntry` (as a JSON document) of every Service, by namespace and name.
pub fn service_entries(store: &Store, cluster_domain: &str) -> Vec<(Key, Value)> {
    let services = store.objects(Store::index(Role::Service));
    let slices = store.objects(Store::index(Role::EndpointSlice));
    let pods = store.objects(Store::index(Role::Pod));
    let nodes = store.objects(Store::index(Role::Node));
    let mut by_service: BTreeMap<Key, Vec<&Value>> = BTreeMap::new();
    for ((ns, _), slice) in slices {
        let labels = slice.metadata.labels.as_ref();
        if let Some(svc) = labels.and_then(|l| l.get("kubernetes.io/service-name")) {
            by_service
                .entry((ns.clone(), svc.clone()))
                .or_default()
                .push(&slice.data);
        }
    }
    let lookup = Lookup { pods, nodes };
    services
        .iter()
        .filter(|(_, s)| s.data["spec"]["type"].as_str() != Some("ExternalName"))
        .map(|(key, s)| {
            let slices = by_service.get(key).map(Vec::as_slice).unwrap_or_default();
            let entry = service_entry(key, &s.data["spec"], slices, &lookup, cluster_domain);
            (key.clone(), entry)
        })
        .collect()
}

type Labels = BTreeMap<String, String>;

type Objects = BTreeMap<Key, std::sync::Arc<kube::api::DynamicObject>>;

/// Finds the Pod (by namespace and name) and the Node labels (by name) behind an endpoint.
struct Lookup<'a> {
    pods: &'a Objects,
    nodes: &'a Objects,
}

impl<'a> Lookup<'a> {
    fn pod(&self, ns: &str, name: &str) -> Option<(&'a kube::api::ObjectMeta, &'a Value)> {
        self.pods
            .get(&(ns.to_string(), name.to_string()))
            .map(|p| (&p.metadata, &p.data))
    }

    fn node(&self, name: &str) -> Option<&'a Labels> {
        self.nodes
            .get(&(String::new(), name.to_string()))
            .and_then(|n| n.metadata.labels.as_ref())
    }
}

fn service_entry(
    (ns, name): &Key,
    spec: &Value,
    slices: &[&Value],
    lookup: &Lookup<'_>,
    cluster_domain: &str,
) -> Value {
    let mut ports = Vec::new();
    for p in spec["ports"].as_array().into_iter().flatten() {
        if p["protocol"].as_str().is_some_and(|proto| proto != "TCP") {
            continue;
        }
        let Some(number) = p["port"].as_u64() else {
            continue;
        };
        let port_name = p["name"].as_str().unwrap_or_default();
        let mut port = json!({"number": number, "name": entry_port_name(port_name, number)});
        if let Some(proto) = protocol(p["appProtocol"].as_str(), port_name) {
            port["protocol"] = json!(proto);
        }
        if let Some(target) = p["targetPort"].as_u64() {
            port["targetPort"] = json!(target);
        }
        ports.push((port_name.to_string(), port));
    }
    let mut endpoints = Vec::new();
    for slice in slices {
        if !matches!(slice["addressType"].as_str(), Some("IPv4" | "IPv6")) {
            continue;
        }
        // The slice's port numbers, by the Service port they serve (matched by name).
        let mut numbers = BTreeMap::new();
        for sp in slice["ports"].as_array().into_iter().flatten() {
            let sp_name = sp["name"].as_str().unwrap_or_default();
            if let (Some((_, p)), Some(n)) = (
                ports.iter().find(|(n, _)| n == sp_name),
                sp["port"].as_u64(),
            ) {
                numbers.insert(p["name"].as_str().unwrap_or_default().to_string(), n);
            }
        }
        for ep in slice["endpoints"].as_array().into_iter().flatten() {
            // Kubernetes: an absent `ready` means ready.
            if ep["conditions"]["ready"].as_bool() == Some(false) {
                continue;
            }
            let target = &ep["targetRef"];
            let backing = match (target["kind"].as_str(), target["name"].as_str()) {
                (Some("Pod"), Some(p)) => lookup.pod(ns, p),
                _ => None,
            };
            let node_name = ep["nodeName"]
                .as_str()
                .or_else(|| backing.and_then(|(_, d)| d["spec"]["nodeName"].as_str()));
            let node = node_name.and_then(|n| lookup.node(n));
            for addr in ep["addresses"].as_array().into_iter().flatten() {
                let Some(addr) = addr.as_str() else { continue };
                let mut we = json!({"address": addr, "ports": numbers});
                if let Some((meta, data)) = backing {
                    if let Some(labels) = &meta.labels {
                        we["labels"] = json!(labels);
                    }
                    if let Some(sa) = data["spec"]["serviceAccountName"].as_str() {
                        we["serviceAccount"] = json!(sa);
                    }
                }
                let pod_labels = backing.and_then(|(m, _)| m.labels.as_ref());
                if let Some(l) = locality(pod_labels, node, ep["zone"].as_str()) {
                    we["locality"] = json!(l);
                }
                endpoints.push(we);
            }
        }
    }
    json!({
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "hosts": [format!("{name}.{ns}.svc.{cluster_domain}")],
            "ports": ports.into_iter().map(|(_, p)| p).collect::<Vec<_>>(),
            "resolution": "STATIC",
            "endpoints": endpoints,
        },
    })
}

/// A ServiceEntry port needs a name; an unnamed Service port (allowed when it is the only one)
/// gets `port-<number>`.
fn entry_port_name(name: &str, number: u64) -> String {
    if name.is_empty() {
        format!("port-{number}")
    } else {
        name.to_string()
    }
}

/// Istio's protocol selection: `appProtocol`, else the port name's `<protocol>[-<suffix>]`.
fn protocol(app_protocol: Option<&str>, port_name: &str) -> Option<&'static str> {
    let by_name = |p: &str| match p.to_ascii_lowercase().as_str() {
        "http" => Some("HTTP"),
        "http2" | "kubernetes.io/h2c" | "h2c" => Some("HTTP2"),
        "grpc" => Some("GRPC"),
        "grpc-web" => Some("GRPC-WEB"),
        _ => None,
    };
    if let Some(p) = app_protocol.and_then(by_name) {
        return Some(p);
    }
    let lower = port_name.to_ascii_lowercase();
    if lower == "grpc-web" || lower.starts_with("grpc-web-") {
        return Some("GRPC-WEB");
    }
    by_name(lower.split('-').next().unwrap_or_default())
}

/// `region/zone/subzone` of an endpoint: the Pod's `istio-locality` label, else its Node's
/// topology labels (the zone falling back to the endpoint's), else the Pod's region label.
fn locality(pod: Option<&Labels>, node: Option<&Labels>, zone: Option<&str>) -> Option<String> {
    if let Some(l) = pod.and_then(|l| l.get("istio-locality")) {
        return Some(l.replace('.', "/"));
    }
    let label = |key: &str| {
        node.and_then(|l| l.get(key))
            .or_else(|| pod.and_then(|l| l.get(key)))
            .map(String::as_str)
    };
    let region = label("topology.kubernetes.io/region");
    let zone = label("topology.kubernetes.io/zone").or(zone);
    let subzone = label("topology.istio.io/subzone");
    match (region, zone, subzone) {
        (None, None, None) => None,
        (r, z, None) => Some(format!(
            "{}/{}",
            r.unwrap_or_default(),
            z.unwrap_or_default()
        )),
        (r, z, Some(s)) => Some(format!(
            "{}/{}/{s}",
            r.unwrap_or_default(),
            z.unwrap_or_default()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_follow_istio_selection() {
        assert_eq!(protocol(Some("grpc"), "web"), Some("GRPC"));
        assert_eq!(protocol(Some("kubernetes.io/h2c"), ""), Some("HTTP2"));
        assert_eq!(protocol(None, "grpc-api"), Some("GRPC"));
        assert_eq!(protocol(None, "grpc-web-ui"), Some("GRPC-WEB"));
        assert_eq!(protocol(None, "http2"), Some("HTTP2"));
        assert_eq!(protocol(None, "metrics"), None);
        assert_eq!(protocol(None, ""), None);
    }

    #[test]
    fn locality_comes_from_the_istio_label_then_the_node() {
        let labels = |pairs: &[(&str, &str)]| -> Labels {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let pod = labels(&[("istio-locality", "eu.eu-1a.rack2")]);
        let node = labels(&[
            ("topology.kubernetes.io/region", "us"),
            ("topology.kubernetes.io/zone", "us-1b"),
            ("topology.istio.io/subzone", "r7"),
        ]);
        assert_eq!(
            locality(Some(&pod), Some(&node), Some("z")).as_deref(),
            Some("eu/eu-1a/rack2")
        );
        assert_eq!(
            locality(None, Some(&node), Some("z")).as_deref(),
            Some("us/us-1b/r7")
        );
        let region_only = labels(&[("topology.kubernetes.io/region", "us")]);
        assert_eq!(
            locality(None, Some(&region_only), Some("us-1c")).as_deref(),
            Some("us/us-1c")
        );
        assert_eq!(
            locality(Some(&region_only), None, Some("us-1c")).as_deref(),
            Some("us/us-1c")
        );
        assert_eq!(locality(None, None, None), None);
    }
}
