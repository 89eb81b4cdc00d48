//! `AuthorizationPolicy` (security.istio.io): who may call a workload, and how.
//!
//! Each rule of a policy becomes one RBAC policy (see [`crate::translate::authz`]); this module
//! reads and checks the document, and `compile_rule` turns one rule into the RBAC model with
//! Istio's meaning, so that checking and translating share one code path.
//!
//! Unknown fields under `spec.rules` and `spec.selector` are errors, not warnings: ignoring a
//! condition would widen what an ALLOW rule lets in, and ignoring part of a selector would
//! apply the policy to workloads it was not meant for.

mod compile;
mod values;

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::diagnostic::Findings;

pub(crate) use compile::compile_rule;

/// The `spec` of an `AuthorizationPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AuthorizationPolicy {
    /// The workloads of the policy's namespace (of every namespace, for a policy in the root
    /// namespace) whose labels include all of `matchLabels`. Default: all of them.
    pub selector: Option<Selector>,
    /// `ALLOW`, `DENY` or `AUDIT`; `CUSTOM` is refused. Default: `ALLOW`.
    pub action: Option<String>,
    /// Rules; a request matching any rule matches the policy. An ALLOW policy without rules
    /// matches nothing (it allows nothing); a rule `{}` matches every request. Default: none.
    pub rules: Vec<Rule>,
    /// Only for `CUSTOM`: refused.
    pub provider: Option<serde_yaml_ng::Value>,
    /// Refused: only `selector` chooses workloads here.
    pub target_ref: Option<serde_yaml_ng::Value>,
    /// Refused: only `selector` chooses workloads here.
    pub target_refs: Option<serde_yaml_ng::Value>,
}

/// `selector`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Selector {
    /// Labels a workload must all carry. Default: none (every workload).
    pub match_labels: BTreeMap<String, String>,
}

/// The action of a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyAction {
    /// Requests must match some ALLOW policy (when any applies to the workload).
    Allow,
    /// Matching requests are refused, before ALLOW policies are consulted.
    Deny,
    /// Matching requests are logged; the decision is unchanged.
    Audit,
}

/// `rules[]`: `from`, `to` and `when` must all match; within `from` (and `to`) any one item is
/// enough.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Rule {
    /// Who. Default: anyone. Must not be empty when given.
    pub from: Option<Vec<From>>,
    /// What. Default: anything. Must not be empty when given.
    pub to: Option<Vec<To>>,
    /// Further conditions, all of which must hold. Default: none.
    pub when: Vec<Condition>,
}

/// `from[]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct From {
    /// Required, with at least one field.
    pub source: Option<Source>,
}

/// `from[].source`: every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Source {
    /// Peer identities, `<trust-domain>/ns/<ns>/sa/<sa>`; `*` is any authenticated peer.
    pub principals: Vec<String>,
    /// Peer identities that must not match.
    pub not_principals: Vec<String>,
    /// JWT principals: not supported (warning); no request has one, so this never matches.
    pub request_principals: Vec<String>,
    /// JWT principals that must not match: not supported (warning); always holds.
    pub not_request_principals: Vec<String>,
    /// Namespaces of authenticated peers (from their SPIFFE ID).
    pub namespaces: Vec<String>,
    /// Namespaces that must not match.
    pub not_namespaces: Vec<String>,
    /// Service accounts of authenticated peers, `<sa>` (in the policy's namespace) or
    /// `<ns>/<sa>`.
    pub service_accounts: Vec<String>,
    /// Service accounts that must not match.
    pub not_service_accounts: Vec<String>,
    /// Peer addresses or CIDR ranges.
    pub ip_blocks: Vec<String>,
    /// Peer addresses that must not match.
    pub not_ip_blocks: Vec<String>,
    /// Client addresses; the same as the peer's (no `x-forwarded-for` is trusted).
    pub remote_ip_blocks: Vec<String>,
    /// Client addresses that must not match.
    pub not_remote_ip_blocks: Vec<String>,
}

/// `to[]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct To {
    /// Required, with at least one field.
    pub operation: Option<Operation>,
}

/// `to[].operation`: every field given must match.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Operation {
    /// `:authority` values, case-insensitive.
    pub hosts: Vec<String>,
    /// Authorities that must not match.
    pub not_hosts: Vec<String>,
    /// Local ports, as strings or numbers.
    pub ports: Vec<Text>,
    /// Local ports that must not match.
    pub not_ports: Vec<Text>,
    /// HTTP methods (for gRPC always `POST`).
    pub methods: Vec<String>,
    /// Methods that must not match.
    pub not_methods: Vec<String>,
    /// Paths without the query: exact, `prefix*`, `*suffix`, `*`, or templates with `{*}` and
    /// a final `{**}`.
    pub paths: Vec<String>,
    /// Paths that must not match.
    pub not_paths: Vec<String>,
}

/// `when[]`: a condition on an attribute.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Condition {
    /// `request.headers[<name>]`, `source.principal`, `source.namespace`, `source.ip`,
    /// `remote.ip` or `destination.port`. Required.
    pub key: String,
    /// The attribute matches one of these.
    pub values: Vec<String>,
    /// The attribute matches none of these.
    pub not_values: Vec<String>,
}

/// A list item Istio types as a string but YAML users often write as a number (`ports: [8080]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            N(i64),
        }
        match Raw::deserialize(d) {
            Ok(Raw::S(s)) => Ok(Text(s)),
            Ok(Raw::N(n)) => Ok(Text(n.to_string())),
            Err(_) => Err(de::Error::custom("expected a string or a number")),
        }
    }
}

impl AuthorizationPolicy {
    /// The action, `ALLOW` when unset; `None` for a value that is refused.
    pub fn policy_action(&self) -> Option<PolicyAction> {
        match self.action.as_deref() {
            None | Some("ALLOW") => Some(PolicyAction::Allow),
            Some("DENY") => Some(PolicyAction::Deny),
            Some("AUDIT") => Some(PolicyAction::Audit),
            Some(_) => None,
        }
    }

    /// True when the selector picks a workload with `labels` (an absent or empty selector picks
    /// every workload).
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.selector
            .as_ref()
            .is_none_or(|s| s.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v)))
    }

    pub(crate) fn check(&self, namespace: &str, f: &mut Findings) {
        match self.action.as_deref() {
            None | Some("ALLOW" | "DENY" | "AUDIT") => {}
            Some("CUSTOM") => f.error(
                "spec.action",
                "CUSTOM (an external authorizer) is not supported; use ALLOW, DENY or AUDIT",
            ),
            Some(other) => f.error(
                "spec.action",
                format!("{other:?} is not ALLOW, DENY, AUDIT or CUSTOM"),
            ),
        }
        if self.provider.is_some() && self.action.as_deref() != Some("CUSTOM") {
            f.error("spec.provider", "only allowed with action CUSTOM");
        }
        let targets = [
            ("targetRef", self.target_ref.is_some()),
            ("targetRefs", self.target_refs.is_some()),
        ];
        for (field, set) in targets {
            if set {
                f.error(
                    format!("spec.{field}"),
                    "not supported: use `selector` to choose workloads (ignoring it would apply the policy to every workload of the namespace)",
                );
            }
        }
        if let Some(s) = &self.selector {
            for (k, v) in &s.match_labels {
                if k.is_empty() {
                    f.error(
                        "spec.selector.matchLabels",
                        "a label name must not be empty",
                    );
                } else if v.contains('*') {
                    f.error(
                        format!("spec.selector.matchLabels.{k}"),
                        format!("{v:?}: wildcards are not allowed in label values"),
                    );
                }
            }
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let at = format!("spec.rules[{i}]");
            let policy = compile_rule(rule, &at, namespace, "cluster.local", f);
            // What compiles must also be a valid RBAC policy; report it at the rule if not.
            let rbac = mesh_core::rbac::Rbac {
                action: mesh_core::rbac::RbacAction::Allow,
                policies: vec![("rule".into(), policy)],
            };
            if let Err(e) = mesh_core::Validate::validate(&rbac) {
                for fe in e.0 {
                    f.error(&at, fe.to_string());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
