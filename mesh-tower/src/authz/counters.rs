//! `mesh_authz_decisions_total` handles, registered once per set of filters.
//!
//! Registering a counter with a label built from a policy name allocates and hashes the label
//! set; doing it per request would put that on the allow path. The handles are made when the
//! filters change (recognized by the `Arc` the snapshot holds) and looked up by position.

use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use mesh_core::rbac::{Decision, Rbac, RbacAction};
use metrics::Counter;

const NAME: &str = "mesh_authz_decisions_total";

/// The counters of one set of filters.
struct Set {
    /// The filters these counters were made for; kept alive so that a pointer match is exact.
    source: Arc<Vec<Rbac>>,
    allow_none: Counter,
    deny_none: Counter,
    /// Per filter, per policy: the counter of the decision that policy makes (`Log` policies
    /// decide nothing and get none).
    by_policy: Vec<Vec<Option<Counter>>>,
}

impl Set {
    fn new(source: Arc<Vec<Rbac>>) -> Self {
        let counter = |decision: &'static str, policy: String| metrics::counter!(NAME, "decision" => decision, "policy" => policy);
        let by_policy = source
            .iter()
            .map(|f| {
                let decision = match f.action {
                    RbacAction::Allow => Some("allow"),
                    RbacAction::Deny => Some("deny"),
                    RbacAction::Log => None,
                };
                f.policies
                    .iter()
                    .map(|(name, _)| decision.map(|d| counter(d, name.clone())))
                    .collect()
            })
            .collect();
        Self {
            allow_none: counter("allow", String::new()),
            deny_none: counter("deny", String::new()),
            by_policy,
            source,
        }
    }

    fn count(&self, decision: &Decision<'_>) {
        let by = |p: mesh_core::rbac::PolicyRef<'_>| {
            self.by_policy
                .get(p.filter)
                .and_then(|f| f.get(p.policy))
                .and_then(Option::as_ref)
        };
        let counter = match decision {
            Decision::Allowed(None) => Some(&self.allow_none),
            Decision::Denied(None) => Some(&self.deny_none),
            Decision::Allowed(Some(p)) | Decision::Denied(Some(p)) => by(*p),
        };
        if let Some(c) = counter {
            c.increment(1);
        }
    }
}

/// The cache shared by the services of one layer.
#[derive(Default)]
pub(super) struct Counters {
    current: ArcSwapOption<Set>,
}

impl Counters {
    /// Counts `decision`, made by `filters`.
    pub(super) fn count(&self, filters: &Arc<Vec<Rbac>>, decision: &Decision<'_>) {
        let current = self.current.load();
        match current.as_ref() {
            Some(set) if Arc::ptr_eq(&set.source, filters) => set.count(decision),
            _ => {
                let set = Arc::new(Set::new(filters.clone()));
                set.count(decision);
                self.current.store(Some(set));
            }
        }
    }
}

impl fmt::Debug for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Counters").finish_non_exhaustive()
    }
}
