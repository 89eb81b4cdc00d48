//! The client's status as data: per resource (CSDS-style) and per target.

use std::collections::BTreeMap;

use serde::Serialize;

use super::cache::{Cache, ResourceStatus, Value};
use super::kind::Kind;
use mesh_core::route::RouteAction;

/// Everything the client knows about its own state; `/debug/xds`-style views serialize it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct XdsStatus {
    /// The control plane in use.
    pub server: String,
    /// `delta` or `state-of-the-world`.
    pub protocol: &'static str,
    /// True while an ADS stream is open.
    pub connected: bool,
    /// Why the last stream or connection attempt ended.
    pub last_error: Option<String>,
    /// Each target the app asked for.
    pub targets: BTreeMap<String, TargetState>,
    /// Each subscribed resource, in type then name order.
    pub resources: Vec<ResourceView>,
}

/// Where a target stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "detail", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TargetState {
    /// Some resource of its chain has not arrived yet.
    Resolving,
    /// Listener, route table, clusters and endpoints are all present.
    Ready,
    /// A resource of its chain does not exist (named).
    Missing(String),
}

/// One resource, with CSDS's vocabulary.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceView {
    /// Full type URL.
    pub type_url: &'static str,
    /// `LDS`, `RDS`, `CDS`, `EDS`.
    pub kind: &'static str,
    /// Resource name.
    pub name: String,
    /// Version in use (empty when none).
    pub version: String,
    /// `REQUESTED`, `DOES_NOT_EXIST`, `ACKED` or `NACKED`.
    pub client_status: ResourceStatus,
    /// The rejected version and why, when the latest was NACKed.
    pub error_state: Option<ErrorState>,
    /// Fields present in the resource that are not implemented (ignored).
    pub warnings: Vec<FieldWarning>,
}

/// A field present in a received resource that the client does not implement and ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldWarning {
    /// Path of the field, e.g. `virtual_hosts[0].routes[1].route.cors`.
    pub field: String,
    /// What was not honoured.
    pub reason: String,
}

/// CSDS's `UpdateFailureState`.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorState {
    /// The rejected version.
    pub version_info: String,
    /// Why.
    pub details: String,
}

impl XdsStatus {
    /// Recomputes the per-resource and per-target views from the cache.
    pub(crate) fn refresh(&mut self, cache: &Cache) {
        self.resources = Kind::ALL
            .iter()
            .flat_map(|k| {
                cache.entries[k.idx()]
                    .iter()
                    .map(move |(name, e)| ResourceView {
                        type_url: k.type_url(),
                        kind: k.short(),
                        name: name.clone(),
                        version: e.version.clone(),
                        client_status: e.status,
                        error_state: e.error.as_ref().map(|d| ErrorState {
                            version_info: e.rejected_version.clone().unwrap_or_default(),
                            details: d.clone(),
                        }),
                        warnings: e
                            .warnings
                            .iter()
                            .map(|w| FieldWarning {
                                field: w.field.clone(),
                                reason: w.reason.clone(),
                            })
                            .collect(),
                    })
            })
            .collect();
        self.targets = cache
            .targets
            .keys()
            .map(|t| (t.clone(), target_state(cache, t)))
            .collect();
    }
}

fn target_state(cache: &Cache, target: &str) -> TargetState {
    let get = |k: Kind, n: &str| cache.entries[k.idx()].get(n);
    let check = |k: Kind, n: &str| -> Result<Option<Value>, TargetState> {
        match get(k, n) {
            Some(e) if e.value.is_some() => Ok(e.value.clone()),
            Some(e) if e.status == ResourceStatus::DoesNotExist => {
                Err(TargetState::Missing(format!("{} {n}", k.short())))
            }
            _ => Err(TargetState::Resolving),
        }
    };
    let inner = || -> Result<(), TargetState> {
        let l = match check(Kind::Listener, target)? {
            Some(Value::Listener(l)) => l,
            // A server's inbound listener carries everything inline.
            Some(Value::Inbound(_)) => return Ok(()),
            _ => return Err(TargetState::Resolving),
        };
        let Some(Value::Route(t)) = check(Kind::Route, &l.route_config_name)? else {
            return Err(TargetState::Resolving);
        };
        for r in t.virtual_hosts.iter().flat_map(|v| &v.routes) {
            if let RouteAction::Forward(f) = &r.action {
                for c in &f.clusters {
                    let Some(Value::Cluster(c)) = check(Kind::Cluster, &c.name)? else {
                        return Err(TargetState::Resolving);
                    };
                    check(Kind::Endpoint, &c.eds_service_name)?;
                }
            }
        }
        Ok(())
    };
    match inner() {
        Ok(()) => TargetState::Ready,
        Err(s) => s,
    }
}
