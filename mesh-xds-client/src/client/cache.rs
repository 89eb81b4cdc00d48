//! What the client holds: every subscribed resource with its last good value, its status, and
//! the dependency walk from targets to endpoints.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use envoy_types::pb::google::protobuf::Any;
use mesh_core::MeshResources;
use mesh_core::route::RouteAction;
use serde::Serialize;
use tokio::time::{Duration, Instant};

use super::kind::Kind;
use crate::codec::{self, DecodeError};

/// Where one resource stands, with the names of CSDS's `ClientResourceStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResourceStatus {
    /// Subscribed, nothing received yet.
    Requested,
    /// The server says (or the does-not-exist timer concluded) it does not exist.
    DoesNotExist,
    /// The latest version was accepted.
    Acked,
    /// The latest version was rejected; the last good one (if any) is still in use.
    Nacked,
}

/// A decoded resource.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Listener(Arc<mesh_core::listener::Listener>),
    Inbound(Arc<mesh_core::inbound::InboundListener>),
    Route(Arc<mesh_core::route::RouteTable>),
    Cluster(Arc<mesh_core::cluster::Cluster>),
    Endpoint(Arc<mesh_core::endpoint::ClusterLoadAssignment>),
}

/// One resource as the client knows it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Version of the value in use (empty until one is accepted).
    pub(crate) version: String,
    pub(crate) value: Option<Value>,
    pub(crate) status: ResourceStatus,
    /// Why the latest version was rejected.
    pub(crate) error: Option<String>,
    /// The version that was rejected.
    pub(crate) rejected_version: Option<String>,
    /// Fields of the value in use that are present but not implemented.
    pub(crate) warnings: Vec<codec::Warning>,
    /// When the subscription started waiting (for the does-not-exist timer).
    pub(crate) waiting_since: Option<Instant>,
}

impl Entry {
    fn requested(now: Instant) -> Self {
        Entry {
            version: String::new(),
            value: None,
            status: ResourceStatus::Requested,
            error: None,
            rejected_version: None,
            warnings: Vec::new(),
            waiting_since: Some(now),
        }
    }
}

/// One resource of a response.
#[derive(Debug)]
pub(crate) struct Incoming {
    /// Name from the envelope (delta) or empty (SotW: taken from the decoded value).
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) any: Any,
}

/// The client's whole view.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    pub(crate) entries: [BTreeMap<String, Entry>; 4],
    /// Targets (`host:port`) the app asked for, with how many handles hold each.
    pub(crate) targets: BTreeMap<String, usize>,
    /// Keep resources the server deletes (gRFC A53 `ignore_resource_deletion`).
    pub(crate) ignore_deletion: bool,
}

impl Cache {
    /// Applies one response of type `kind`; returns the NACK detail when any resource was rejected.
    /// `full_state`: the response lists every resource of the type (SotW LDS/CDS).
    pub(crate) fn apply(
        &mut self,
        kind: Kind,
        incoming: Vec<Incoming>,
        removed: &[String],
        full_state: bool,
    ) -> Option<String> {
        let mut errors = Vec::new();
        let mut seen = BTreeSet::new();
        for inc in incoming {
            let any = unwrap_resource(inc.any);
            let decoded = decode(kind, &any);
            let name = match &decoded {
                Ok((v, _)) => value_name(v).to_string(),
                Err(e) if inc.name.is_empty() => e.resource().unwrap_or_default().to_string(),
                Err(_) => inc.name.clone(),
            };
            if !inc.name.is_empty() && inc.name != name {
                errors.push(format!(
                    "{} {}: the resource inside is named {name:?}",
                    kind.short(),
                    inc.name
                ));
                continue;
            }
            seen.insert(name.clone());
            let Some(entry) = self.entries[kind.idx()].get_mut(&name) else {
                // Not subscribed (a wildcard server, or a race with an unsubscribe): ignore.
                continue;
            };
            entry.waiting_since = None;
            match decoded {
                Ok((value, warnings)) => {
                    for w in warnings.iter().filter(|w| !entry.warnings.contains(w)) {
                        metrics::counter!("mesh_xds_client_unsupported_fields_total", "type" => kind.short()).increment(1);
                        tracing::warn!("xDS field not supported, ignored: {w}");
                    }
                    entry.value = Some(value);
                    entry.version = inc.version;
                    entry.status = ResourceStatus::Acked;
                    entry.error = None;
                    entry.rejected_version = None;
                    entry.warnings = warnings;
                }
                Err(e) => {
                    // Name the resource even when its bytes could not be read.
                    let detail = match e.resource() {
                        Some(_) => e.to_string(),
                        None => format!("{} {name:?}: {e}", kind.short()),
                    };
                    tracing::warn!(resource = %name, version = %inc.version, "xDS resource rejected: {detail}");
                    entry.status = ResourceStatus::Nacked;
                    entry.error = Some(detail.clone());
                    entry.rejected_version = Some(inc.version);
                    errors.push(detail);
                }
            }
        }
        let mut gone: Vec<String> = removed.to_vec();
        if full_state {
            // Only what was received before can be deleted; a name still waiting may simply have
            // been subscribed after the server built this response.
            gone.extend(
                self.entries[kind.idx()]
                    .iter()
                    .filter(|(n, e)| e.value.is_some() && !seen.contains(*n))
                    .map(|(n, _)| n.clone()),
            );
        }
        for name in gone {
            let Some(entry) = self.entries[kind.idx()].get_mut(&name) else {
                continue;
            };
            if entry.value.is_some() && self.ignore_deletion {
                tracing::warn!(resource = %name, "server deleted the resource; kept (ignore_resource_deletion)");
                continue;
            }
            entry.value = None;
            entry.version.clear();
            entry.status = ResourceStatus::DoesNotExist;
            entry.waiting_since = None;
        }
        (!errors.is_empty()).then(|| errors.join("; "))
    }

    /// The names each type should be subscribed to: the dependency walk from the targets.
    pub(crate) fn wanted(&self) -> [BTreeSet<String>; 4] {
        let lds: BTreeSet<String> = self.targets.keys().cloned().collect();
        let rds: BTreeSet<String> = lds
            .iter()
            .filter_map(|n| match self.value(Kind::Listener, n) {
                Some(Value::Listener(l)) => Some(l.route_config_name.clone()),
                _ => None,
            })
            .collect();
        let mut cds = BTreeSet::new();
        for n in &rds {
            if let Some(Value::Route(t)) = self.value(Kind::Route, n) {
                for r in t.virtual_hosts.iter().flat_map(|v| &v.routes) {
                    if let RouteAction::Forward(f) = &r.action {
                        cds.extend(f.clusters.iter().map(|c| c.name.clone()));
                        cds.extend(f.mirrors.iter().map(|m| m.cluster.clone()));
                    }
                }
            }
        }
        let eds: BTreeSet<String> = cds
            .iter()
            .filter_map(|n| match self.value(Kind::Cluster, n) {
                Some(Value::Cluster(c)) => Some(c.eds_service_name.clone()),
                _ => None,
            })
            .collect();
        [lds, rds, cds, eds]
    }

    fn value(&self, kind: Kind, name: &str) -> Option<&Value> {
        self.entries[kind.idx()]
            .get(name)
            .and_then(|e| e.value.as_ref())
    }

    /// Adds entries for newly wanted names and drops those no longer wanted; returns whether the
    /// subscription of each type changed.
    pub(crate) fn resubscribe(&mut self, now: Instant) -> [bool; 4] {
        let wanted = self.wanted();
        let mut changed = [false; 4];
        for kind in Kind::ALL {
            let entries = &mut self.entries[kind.idx()];
            let before = entries.len();
            entries.retain(|n, _| wanted[kind.idx()].contains(n));
            let mut added = false;
            for n in &wanted[kind.idx()] {
                if !entries.contains_key(n) {
                    entries.insert(n.clone(), Entry::requested(now));
                    added = true;
                }
            }
            changed[kind.idx()] = added || entries.len() != before;
        }
        changed
    }

    /// Subscribed names of one type.
    pub(crate) fn names(&self, kind: Kind) -> Vec<String> {
        self.entries[kind.idx()].keys().cloned().collect()
    }

    /// Versions held, for a delta reconnect's `initial_resource_versions`.
    pub(crate) fn versions(&self, kind: Kind) -> std::collections::HashMap<String, String> {
        self.entries[kind.idx()]
            .iter()
            .filter(|(_, e)| e.value.is_some())
            .map(|(n, e)| (n.clone(), e.version.clone()))
            .collect()
    }

    /// Restarts the does-not-exist timers of everything still waiting (after a reconnect).
    pub(crate) fn restart_timers(&mut self, now: Instant) {
        for e in self.entries.iter_mut().flat_map(|m| m.values_mut()) {
            if e.value.is_none() && e.status == ResourceStatus::Requested {
                e.waiting_since = Some(now);
            }
        }
    }

    /// Marks resources that waited longer than `timeout` as not existing; returns true if any did.
    pub(crate) fn expire(&mut self, now: Instant, timeout: Duration) -> bool {
        let mut any = false;
        for (kind, m) in Kind::ALL.iter().zip(self.entries.iter_mut()) {
            for (name, e) in m.iter_mut() {
                if e.waiting_since.is_some_and(|t| now >= t + timeout) {
                    tracing::warn!(r#type = kind.short(), resource = %name, "xDS resource does not exist (no answer within {timeout:?})");
                    e.waiting_since = None;
                    e.status = ResourceStatus::DoesNotExist;
                    any = true;
                }
            }
        }
        any
    }

    /// The earliest does-not-exist deadline, if anything is waiting.
    pub(crate) fn next_deadline(&self, timeout: Duration) -> Option<Instant> {
        self.entries
            .iter()
            .flat_map(|m| m.values())
            .filter_map(|e| e.waiting_since)
            .min()
            .map(|t| t + timeout)
    }

    /// The model of everything subscribed that has a good value.
    pub(crate) fn resources(&self) -> MeshResources {
        let mut r = MeshResources::default();
        for e in self.entries.iter().flat_map(|m| m.values()) {
            match &e.value {
                Some(Value::Listener(v)) => {
                    r.listeners.insert(v.name.clone(), v.clone());
                }
                Some(Value::Inbound(v)) => {
                    r.inbound.insert(v.name.clone(), v.clone());
                }
                Some(Value::Route(v)) => {
                    r.route_tables.insert(v.name.clone(), v.clone());
                }
                Some(Value::Cluster(v)) => {
                    r.clusters.insert(v.name.clone(), v.clone());
                }
                Some(Value::Endpoint(v)) => {
                    r.assignments.insert(v.cluster_name.clone(), v.clone());
                }
                None => {}
            }
        }
        r
    }
}

fn decode(kind: Kind, any: &Any) -> Result<(Value, Vec<codec::Warning>), DecodeError> {
    fn w<T>(d: codec::Decoded<T>, f: fn(Arc<T>) -> Value) -> (Value, Vec<codec::Warning>) {
        (f(Arc::new(d.value)), d.warnings)
    }
    Ok(match kind {
        Kind::Listener if codec::is_api_listener(any) => {
            w(codec::decode_listener(any)?, Value::Listener)
        }
        Kind::Listener => w(codec::decode_inbound_listener(any)?, Value::Inbound),
        Kind::Route => w(codec::decode_route_table(any)?, Value::Route),
        Kind::Cluster => w(codec::decode_cluster(any)?, Value::Cluster),
        Kind::Endpoint => w(codec::decode_assignment(any)?, Value::Endpoint),
    })
}

fn value_name(v: &Value) -> &str {
    match v {
        Value::Listener(l) => &l.name,
        Value::Inbound(l) => &l.name,
        Value::Route(r) => &r.name,
        Value::Cluster(c) => &c.name,
        Value::Endpoint(e) => &e.cluster_name,
    }
}

/// SotW servers may wrap each resource in `envoy.service.discovery.v3.Resource`
/// (client feature `xds.config.resource-in-sotw`).
fn unwrap_resource(any: Any) -> Any {
    use prost::Message;
    const RESOURCE: &str = "type.googleapis.com/envoy.service.discovery.v3.Resource";
    if any.type_url != RESOURCE {
        return any;
    }
    match envoy_types::pb::envoy::service::discovery::v3::Resource::decode(any.value.as_slice()) {
        Ok(r) => r.resource.unwrap_or_default(),
        Err(_) => any,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::core::v3::TransportSocket;

    fn cluster_any(name: &str, tls: bool) -> Any {
        let mut c = codec::encode_cluster(&mesh_core::cluster::Cluster::new(name)).unwrap();
        if tls {
            c.transport_socket = Some(TransportSocket {
                name: "envoy.transport_sockets.tls".into(),
                ..Default::default()
            });
        }
        codec::to_any(&c)
    }

    fn incoming(name: &str, version: &str, any: Any) -> Incoming {
        Incoming {
            name: name.into(),
            version: version.into(),
            any,
        }
    }

    #[test]
    fn a_rejected_update_keeps_the_last_good_version_and_the_rest_applies() {
        let mut cache = Cache::default();
        let now = Instant::now();
        for n in ["a", "b"] {
            cache.entries[Kind::Cluster.idx()].insert(n.into(), Entry::requested(now));
        }
        let nack = cache.apply(
            Kind::Cluster,
            vec![
                incoming("a", "1", cluster_any("a", false)),
                incoming("b", "1", cluster_any("b", false)),
            ],
            &[],
            false,
        );
        assert_eq!(nack, None);
        // Version 2 of `a` asks for TLS we cannot honour; version 2 of `b` is fine.
        let mut b2 = mesh_core::cluster::Cluster::new("b");
        b2.connect_timeout = Duration::from_secs(3);
        let b2 = codec::to_any(&codec::encode_cluster(&b2).unwrap());
        let nack = cache
            .apply(
                Kind::Cluster,
                vec![
                    incoming("a", "2", cluster_any("a", true)),
                    incoming("b", "2", b2),
                ],
                &[],
                false,
            )
            .unwrap();
        assert!(
            nack.contains("\"a\"") && nack.contains("transport_socket"),
            "{nack}"
        );
        assert!(!nack.contains("\"b\""), "{nack}");
        let a = &cache.entries[Kind::Cluster.idx()]["a"];
        assert_eq!(
            (a.status, a.version.as_str(), a.rejected_version.as_deref()),
            (ResourceStatus::Nacked, "1", Some("2"))
        );
        assert!(a.value.is_some(), "the last good version stays in use");
        let b = &cache.entries[Kind::Cluster.idx()]["b"];
        assert_eq!((b.status, b.version.as_str()), (ResourceStatus::Acked, "2"));
        assert_eq!(
            cache.resources().clusters["b"].connect_timeout,
            Duration::from_secs(3)
        );
        assert!(cache.resources().clusters.contains_key("a"));
    }

    #[test]
    fn sotw_deletes_only_what_was_received() {
        let mut cache = Cache::default();
        let now = Instant::now();
        for n in ["a", "late"] {
            cache.entries[Kind::Cluster.idx()].insert(n.into(), Entry::requested(now));
        }
        cache.apply(
            Kind::Cluster,
            vec![incoming("", "1", cluster_any("a", false))],
            &[],
            true,
        );
        assert_eq!(
            cache.entries[Kind::Cluster.idx()]["late"].status,
            ResourceStatus::Requested
        );
        cache.apply(Kind::Cluster, vec![], &[], true);
        assert_eq!(
            cache.entries[Kind::Cluster.idx()]["a"].status,
            ResourceStatus::DoesNotExist
        );
        assert!(cache.resources().clusters.is_empty());
    }
}
