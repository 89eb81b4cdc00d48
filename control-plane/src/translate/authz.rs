//! `AuthorizationPolicy` documents → the RBAC HTTP filters of one workload's inbound listener.
//!
//! Which policies apply to a workload (Istio's rules): those of the workload's namespace whose
//! selector picks it (no selector: every workload of the namespace), and those of the root
//! namespace (`istio-system` by default) whose selector picks it, whatever its namespace.
//!
//! Each rule of an applying policy becomes one RBAC policy named `<namespace>/<name>[<rule>]`;
//! an ALLOW (or AUDIT, DENY) policy without rules becomes one policy named
//! `<namespace>/<name>` that matches nothing. The filters, in chain order:
//!
//! 1. `Log` with the AUDIT policies, so that audit sees every request, denied ones included;
//! 2. `Deny` with the DENY policies: a match is refused whatever ALLOW policies say;
//! 3. `Allow` with the ALLOW policies: when there is at least one, a request matching none is
//!    refused (an allow-nothing policy alone refuses everything).
//!
//! Each is present only when it has policies, so a workload without ALLOW policies allows what
//! no DENY policy refuses. Policies are sorted by name in each filter, the order in which Envoy
//! and gRPC walk the wire's map, so every reader reports the same policy.

use std::collections::{BTreeMap, HashMap};

use mesh_core::rbac::{Policy, Rbac, RbacAction};

use super::inbound::ROOT_NAMESPACE;
use crate::config::authorization_policy::{PolicyAction, compile_rule};
use crate::config::{AuthorizationPolicy, Diagnostic, Document, Kind, Severity};

/// The RBAC filters of a workload in `workload_namespace` with `workload_labels`, in chain order
/// (Log, Deny, Allow; only those with policies), with [`ROOT_NAMESPACE`] (`istio-system`) as the
/// root namespace.
/// Principals written with trust domain `cluster.local` mean `trust_domain`.
///
/// `docs` are accepted documents (documents that failed their checks are not passed here); other
/// kinds are ignored.
///
/// ```no_run
/// use std::collections::BTreeMap;
/// # let docs: Vec<control_plane::config::Document> = Vec::new();
/// let labels = BTreeMap::from([("app".to_string(), "reviews".to_string())]);
/// let filters = control_plane::translate::authz::rbac_filters(&docs, "shop", &labels, "cluster.local");
/// for f in &filters {
///     let _typed_config = mesh_xds_client::codec::encode_rbac(f);
/// }
/// ```
pub fn rbac_filters(
    docs: &[Document],
    workload_namespace: &str,
    workload_labels: &BTreeMap<String, String>,
    trust_domain: &str,
) -> Vec<Rbac> {
    rbac_filters_in(
        docs,
        workload_namespace,
        workload_labels,
        trust_domain,
        ROOT_NAMESPACE,
    )
}

/// As [`rbac_filters`], with another root namespace (Istio's `meshConfig.rootNamespace`).
pub fn rbac_filters_in(
    docs: &[Document],
    workload_namespace: &str,
    workload_labels: &BTreeMap<String, String>,
    trust_domain: &str,
    root_namespace: &str,
) -> Vec<Rbac> {
    let mut audit = Rbac::new(RbacAction::Log);
    let mut deny = Rbac::new(RbacAction::Deny);
    let mut allow = Rbac::new(RbacAction::Allow);
    for (doc, ap) in policies(docs, &mut Vec::new()) {
        let in_scope = doc.namespace == workload_namespace || doc.namespace == root_namespace;
        if !in_scope || !ap.selects(workload_labels) {
            continue;
        }
        let target = match ap.policy_action() {
            Some(PolicyAction::Audit) => &mut audit,
            Some(PolicyAction::Deny) => &mut deny,
            Some(PolicyAction::Allow) => &mut allow,
            // Refused when the document was read; never reaches here.
            None => continue,
        };
        let qualified = doc.qualified_name();
        if ap.rules.is_empty() {
            target.policies.push((qualified, Policy::never()));
            continue;
        }
        for (i, rule) in ap.rules.iter().enumerate() {
            // Problems were reported when the document was read.
            let mut scratch = Default::default();
            let at = format!("spec.rules[{i}]");
            let policy = compile_rule(rule, &at, &doc.namespace, trust_domain, &mut scratch);
            target.policies.push((format!("{qualified}[{i}]"), policy));
        }
    }
    [audit, deny, allow]
        .into_iter()
        .filter(|f| !f.policies.is_empty())
        .map(|mut f| {
            f.policies.sort_by(|a, b| a.0.cmp(&b.0));
            f
        })
        .collect()
}

/// The `AuthorizationPolicy` documents, the first of each `namespace/name` only; a later one
/// with the same name is reported in `diags` and skipped (two policies with one name would
/// become one RBAC policy name, and one of them would be lost on the wire).
fn policies<'a>(
    docs: &'a [Document],
    diags: &mut Vec<Diagnostic>,
) -> Vec<(&'a Document, &'a AuthorizationPolicy)> {
    let mut seen: HashMap<(&str, &str), &Document> = HashMap::new();
    let mut out = Vec::new();
    for doc in docs {
        let Kind::AuthorizationPolicy(ap) = &doc.kind else {
            continue;
        };
        if let Some(earlier) = seen.get(&(doc.namespace.as_str(), doc.name.as_str())) {
            diags.push(doc.diagnostic(
                Severity::Error,
                "metadata.name",
                format!(
                    "an AuthorizationPolicy named {} is already defined ({}, document {}); only the first applies",
                    doc.qualified_name(),
                    earlier.source.file.display(),
                    earlier.source.index
                ),
            ));
            continue;
        }
        seen.insert((doc.namespace.as_str(), doc.name.as_str()), doc);
        out.push((doc, ap));
    }
    out
}

/// Reports what only shows across documents: a second policy with the same `namespace/name`.
pub(crate) fn check(docs: &[Document], diags: &mut Vec<Diagnostic>) {
    policies(docs, diags);
}

#[cfg(test)]
mod tests;
