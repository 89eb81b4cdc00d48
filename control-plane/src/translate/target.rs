//! What VirtualService and HTTPRoute translation share: resolving destinations to clusters,
//! Istio's default route and retry policy, and the output of one routing document.

use std::collections::BTreeMap;
use std::time::Duration;

use mesh_core::Validate;
use mesh_core::route::{
    ForwardAction, HashPolicy, HeaderMutation, RetryPolicy, Route, RouteAction, RouteMatch,
};

use super::policy::Policies;
use super::registry::Registry;

/// Istio's default `retryOn` (applied when a route says nothing about retries).
pub const ISTIO_DEFAULT_RETRY_ON: &str =
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";
/// Istio's default number of retries.
pub const ISTIO_DEFAULT_RETRY_ATTEMPTS: u32 = 2;
/// The status Istio's default policy retries under `retriable-status-codes`.
pub const ISTIO_DEFAULT_RETRIABLE_STATUS: u16 = 503;

/// Istio's default retry policy: 2 retries on connect failure, refused stream, gRPC unavailable
/// or cancelled, and HTTP 503; Envoy's default backoff (25 ms base).
pub fn istio_default_retry() -> RetryPolicy {
    RetryPolicy {
        retry_on: crate::config::parse_retry_on(ISTIO_DEFAULT_RETRY_ON).conditions,
        num_retries: ISTIO_DEFAULT_RETRY_ATTEMPTS,
        retriable_status_codes: vec![ISTIO_DEFAULT_RETRIABLE_STATUS],
        ..RetryPolicy::default()
    }
}

/// Everything one routing document contributes, once it is known to be valid.
#[derive(Debug, Default)]
pub(crate) struct Attached {
    /// Hosts it claims, with the field that names each.
    pub(crate) hosts: Vec<(String, String)>,
    /// Routes per `(host, port)` table.
    pub(crate) tables: BTreeMap<(String, u16), Vec<Route>>,
}

/// Problems found while translating one document: `(field, reason)`, deduplicated.
#[derive(Debug, Default)]
pub(crate) struct Problems(pub(crate) Vec<(String, String)>);

impl Problems {
    pub(crate) fn push(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        let item = (field.into(), reason.into());
        if !self.0.contains(&item) {
            self.0.push(item);
        }
    }
}

/// Resolution of destinations to clusters, for one route table of one document.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resolver<'r, 'a> {
    pub(crate) reg: &'r Registry<'a>,
    pub(crate) policies: &'r Policies<'a>,
    /// Namespace of the document (short names are qualified with it).
    pub(crate) namespace: &'r str,
    /// Port of the route table being built.
    pub(crate) table_port: u16,
}

/// A resolved destination.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) cluster: String,
    pub(crate) hash: Vec<HashPolicy>,
}

impl Resolver<'_, '_> {
    /// The cluster for `host` (registered host, already resolved), port and subset.
    pub(crate) fn target(
        &self,
        host: &str,
        port: Option<u16>,
        subset: Option<&str>,
    ) -> Result<Target, String> {
        let port = self.reg.destination_port(host, port, self.table_port)?;
        if let Some(s) = subset
            && !self.policies.has_subset(host, s)
        {
            return Err(match self.policies.by_host.contains_key(host) {
                true => format!(
                    "unknown subset {s:?}: the DestinationRule of {host} does not define it"
                ),
                false => {
                    format!("unknown subset {s:?}: no DestinationRule defines subsets for {host}")
                }
            });
        }
        Ok(Target {
            cluster: mesh_core::cluster_name(host, port, subset),
            hash: self.policies.hash_policies(host, subset).to_vec(),
        })
    }

    /// Like [`Self::target`] for a host as the user wrote it.
    pub(crate) fn target_of(
        &self,
        written: &str,
        port: Option<u16>,
        subset: Option<&str>,
    ) -> Result<Target, String> {
        let host = self.reg.resolve(written, self.namespace)?;
        self.target(&host, port, subset)
    }
}

/// Hash policies of every target, each once, in order.
pub(crate) fn merged_hash(targets: &[Target]) -> Vec<HashPolicy> {
    let mut out: Vec<HashPolicy> = Vec::new();
    for h in targets.iter().flat_map(|t| t.hash.iter()) {
        if !out.contains(h) {
            out.push(h.clone());
        }
    }
    out
}

/// The route used when no VirtualService or HTTPRoute covers a `host:port`: everything to the
/// host's cluster, with Istio's default retry policy and no timeout.
pub(crate) fn default_route(cluster: &str, hash: Vec<HashPolicy>) -> Route {
    let mut action = ForwardAction::to_cluster(cluster);
    action.retry = Some(istio_default_retry());
    action.hash_policies = hash;
    Route {
        name: "default".into(),
        matcher: RouteMatch::default(),
        action: RouteAction::Forward(action),
        request_headers: HeaderMutation::default(),
        response_headers: HeaderMutation::default(),
        fault: None,
        rate_limit: None,
    }
}

/// `0s` means "no timeout" in Istio and Gateway API; the model wants `None` for that.
pub(crate) fn timeout(t: Option<Duration>) -> Option<Duration> {
    t.filter(|t| !t.is_zero())
}

/// Validates a built route, reporting problems at `field`.
pub(crate) fn validated(route: Route, field: &str, problems: &mut Problems) -> Option<Route> {
    match route.validate() {
        Ok(()) => Some(route),
        Err(e) => {
            let name = if route.name.is_empty() {
                String::new()
            } else {
                format!("route {:?}: ", route.name)
            };
            for fe in e.0 {
                problems.push(field, format!("{name}{}: {}", fe.field, fe.reason));
            }
            None
        }
    }
}
