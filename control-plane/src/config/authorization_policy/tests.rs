//! Reading `AuthorizationPolicy` documents: every field, and every refusal with its path.

use std::path::Path;

use crate::config::{Diagnostic, Document, Kind, Severity, parse_file};

fn parse(text: &str) -> (Vec<Document>, Vec<Diagnostic>) {
    parse_file(Path::new("config/authz.yaml"), text)
}

fn policy(spec: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: p, namespace: shop}}\nspec:\n{spec}"
    )
}

/// The diagnostics of a one-document file, as (severity, field, reason).
fn diags_of(spec: &str) -> (bool, Vec<(Severity, String, String)>) {
    let (docs, diags) = parse(&policy(spec));
    let list = diags
        .into_iter()
        .map(|d| (d.severity, d.field, d.reason))
        .collect();
    (docs.len() == 1, list)
}

#[track_caller]
fn refused(spec: &str, field: &str, why: &str) {
    let (accepted, diags) = diags_of(spec);
    assert!(!accepted, "accepted: {diags:?}");
    assert!(
        diags
            .iter()
            .any(|(s, f, r)| *s == Severity::Error && f == field && r.contains(why)),
        "no error at {field} containing {why:?}: {diags:?}"
    );
}

#[track_caller]
fn warned(spec: &str, field: &str, why: &str) {
    let (accepted, diags) = diags_of(spec);
    assert!(accepted, "refused: {diags:?}");
    assert!(
        diags
            .iter()
            .any(|(s, f, r)| *s == Severity::Warning && f == field && r.contains(why)),
        "no warning at {field} containing {why:?}: {diags:?}"
    );
}

const EVERY_FIELD: &str = r#"  selector:
    matchLabels: {app: reviews, version: v2}
  action: DENY
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/shop/sa/web", "*"]
        notPrincipals: ["cluster.local/ns/shop/sa/batch"]
        namespaces: [shop, "test-*"]
        notNamespaces: [legacy]
        serviceAccounts: [web, "other/api"]
        notServiceAccounts: [robot]
        ipBlocks: [10.0.0.0/8, 192.168.1.7]
        notIpBlocks: [10.9.0.0/16]
        remoteIpBlocks: ["2001:db8::/32"]
        notRemoteIpBlocks: ["2001:db8:1::/48"]
    to:
    - operation:
        hosts: ["reviews.shop.svc.cluster.local", "*.example.com"]
        notHosts: ["admin.example.com"]
        ports: ["9080", 8080]
        notPorts: [15000]
        methods: [GET, "PO*"]
        notMethods: [DELETE]
        paths: ["/api/{*}/items", "/static/{**}", "/exact", "/pre/*", "*.png", "*"]
        notPaths: ["/api/admin*"]
    when:
    - key: request.headers[X-Team]
      values: [blue]
      notValues: [red]
    - key: source.principal
      values: ["cluster.local/ns/shop/sa/web"]
    - key: source.namespace
      notValues: [kube-system]
    - key: source.ip
      values: [10.1.0.0/16]
    - key: remote.ip
      values: [10.1.0.0/16]
    - key: destination.port
      values: ["9080"]
  - {}
"#;

#[test]
fn every_field_is_read_without_a_diagnostic() {
    let (docs, diags) = parse(&policy(EVERY_FIELD));
    assert!(diags.is_empty(), "{diags:?}");
    let Kind::AuthorizationPolicy(ap) = &docs[0].kind else {
        panic!()
    };
    assert_eq!(docs[0].qualified_name(), "shop/p");
    assert_eq!(ap.rules.len(), 2);
    let op = ap.rules[0].to.as_ref().unwrap()[0]
        .operation
        .as_ref()
        .unwrap();
    assert_eq!(op.ports[1].0, "8080", "numbers are read as strings");
    assert_eq!(ap.rules[0].when.len(), 6);
    assert_eq!(
        ap.policy_action(),
        Some(crate::config::authorization_policy::PolicyAction::Deny)
    );
}

#[test]
fn both_api_versions_and_an_empty_spec_are_accepted() {
    let text = "apiVersion: security.istio.io/v1beta1\nkind: AuthorizationPolicy\nmetadata: {name: deny-all}\nspec: {}\n";
    let (docs, diags) = parse(text);
    assert!(diags.is_empty(), "{diags:?}");
    let Kind::AuthorizationPolicy(ap) = &docs[0].kind else {
        panic!()
    };
    assert!(ap.rules.is_empty() && ap.selector.is_none());
    let wrong = text.replace("security.istio.io/v1beta1", "networking.istio.io/v1");
    let (docs, diags) = parse(&wrong);
    assert!(docs.is_empty());
    assert_eq!(diags[0].field, "apiVersion");
}

#[test]
fn an_invalid_path_pattern_is_refused_naming_the_pattern_and_why() {
    let spec = "  rules:\n  - to:\n    - operation:\n        paths: [/ok, \"/api/*/items\"]\n";
    refused(
        spec,
        "spec.rules[0].to[0].operation.paths[1]",
        "\"/api/*/items\": '*' is a wildcard only as the whole pattern",
    );
    let spec = "  rules:\n  - to:\n    - operation:\n        notPaths: [\"/{**}/admin\"]\n";
    refused(
        spec,
        "spec.rules[0].to[0].operation.notPaths[0]",
        "{**} matches the rest of the path, so it must be the last segment",
    );
    let spec = "  rules:\n  - to:\n    - operation:\n        paths: [\"/users/{id}\"]\n";
    refused(
        spec,
        "spec.rules[0].to[0].operation.paths[0]",
        "outside a whole-segment {*} or {**}",
    );
    let spec = "  rules:\n  - to:\n    - operation:\n        paths: [admin]\n";
    warned(
        spec,
        "spec.rules[0].to[0].operation.paths[0]",
        "does not start with '/'",
    );
}

#[test]
fn custom_and_unknown_actions_are_refused() {
    refused(
        "  action: CUSTOM\n  provider: {name: opa}\n  rules: [{}]\n",
        "spec.action",
        "CUSTOM (an external authorizer) is not supported",
    );
    refused(
        "  action: ALLOW\n  provider: {name: opa}\n",
        "spec.provider",
        "only allowed with action CUSTOM",
    );
    refused(
        "  action: PERMIT\n",
        "spec.action",
        "\"PERMIT\" is not ALLOW",
    );
    refused(
        "  targetRefs: [{kind: Service, name: reviews}]\n",
        "spec.targetRefs",
        "use `selector`",
    );
}

#[test]
fn empty_lists_and_empty_items_are_refused() {
    refused(
        "  rules:\n  - from: []\n",
        "spec.rules[0].from",
        "must not be empty",
    );
    refused(
        "  rules:\n  - to: []\n",
        "spec.rules[0].to",
        "must not be empty",
    );
    refused(
        "  rules:\n  - from: [{}]\n",
        "spec.rules[0].from[0].source",
        "required",
    );
    refused(
        "  rules:\n  - from: [{source: {}}]\n",
        "spec.rules[0].from[0].source",
        "must set at least one field",
    );
    refused(
        "  rules:\n  - to: [{operation: {}}]\n",
        "spec.rules[0].to[0].operation",
        "must set at least one field",
    );
    refused(
        "  rules:\n  - from: [{source: {principals: [\"\"]}}]\n",
        "spec.rules[0].from[0].source.principals[0]",
        "empty value not allowed",
    );
}

#[test]
fn conditions_are_checked_by_key() {
    refused(
        "  rules:\n  - when: [{key: \"request.auth.claims[iss]\", values: [x]}]\n",
        "spec.rules[0].when[0].key",
        "condition key \"request.auth.claims[iss]\" is not supported",
    );
    refused(
        "  rules:\n  - when: [{key: destination.port}]\n",
        "spec.rules[0].when[0]",
        "at least one of `values` or `notValues`",
    );
    refused(
        "  rules:\n  - when: [{values: [x]}]\n",
        "spec.rules[0].when[0].key",
        "required",
    );
    refused(
        "  rules:\n  - when: [{key: \"request.headers[grpc-timeout]\", values: [1S]}]\n",
        "spec.rules[0].when[0].key",
        "gRFC A41",
    );
    refused(
        "  rules:\n  - when: [{key: \"request.headers[]\", values: [x]}]\n",
        "spec.rules[0].when[0].key",
        "is not a header name",
    );
    refused(
        "  rules:\n  - when: [{key: destination.port, values: [http]}]\n",
        "spec.rules[0].when[0].values[0]",
        "is not a port",
    );
}

#[test]
fn bad_ports_addresses_and_service_accounts_are_refused() {
    refused(
        "  rules:\n  - to: [{operation: {ports: [\"0\"]}}]\n",
        "spec.rules[0].to[0].operation.ports[0]",
        "is not a port (1–65535)",
    );
    refused(
        "  rules:\n  - from: [{source: {ipBlocks: [10.0.0.0/33]}}]\n",
        "spec.rules[0].from[0].source.ipBlocks[0]",
        "prefix length 33",
    );
    refused(
        "  rules:\n  - from: [{source: {notRemoteIpBlocks: [localhost]}}]\n",
        "spec.rules[0].from[0].source.notRemoteIpBlocks[0]",
        "is not an IP address",
    );
    refused(
        "  rules:\n  - from: [{source: {serviceAccounts: [\"a/b/c\"]}}]\n",
        "spec.rules[0].from[0].source.serviceAccounts[0]",
        "is not `<serviceAccount>`",
    );
}

#[test]
fn unknown_fields_in_rules_are_errors_elsewhere_warnings() {
    refused(
        "  rules:\n  - to: [{operation: {paths: [/x], queryParams: {a: b}}}]\n",
        "spec.rules[0].to[0].operation.queryParams",
        "ignoring it would widen",
    );
    refused(
        "  selector:\n    matchExpressions: [{key: app}]\n",
        "spec.selector.matchExpressions",
        "ignoring it would widen",
    );
    warned(
        "  rules: [{}]\n  priority: 3\n",
        "spec.priority",
        "field not supported, ignored",
    );
}

#[test]
fn request_principals_are_warned_as_never_present() {
    warned(
        "  rules:\n  - from: [{source: {requestPrincipals: [\"*\"]}}]\n",
        "spec.rules[0].from[0].source.requestPrincipals",
        "so this never matches",
    );
    warned(
        "  rules:\n  - from: [{source: {notRequestPrincipals: [\"*\"]}}]\n",
        "spec.rules[0].from[0].source.notRequestPrincipals",
        "so this always holds",
    );
}

#[test]
fn a_literal_star_is_warned() {
    warned(
        "  rules:\n  - from: [{source: {principals: [\"cluster.local/ns/*/sa/web\"]}}]\n",
        "spec.rules[0].from[0].source.principals[0]",
        "compared literally",
    );
}

#[test]
fn dry_run_policies_are_refused() {
    let text = policy("  rules: [{}]\n").replace(
        "metadata: {name: p, namespace: shop}",
        "metadata:\n  name: p\n  annotations: {istio.io/dry-run: \"true\"}",
    );
    let (docs, diags) = parse(&text);
    assert!(docs.is_empty(), "{diags:?}");
    assert_eq!(diags[0].field, "metadata.annotations.istio.io/dry-run");
}
