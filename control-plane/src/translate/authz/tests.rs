//! Istio's authorization semantics, end to end: YAML → RBAC filters → decisions.

use std::collections::BTreeMap;
use std::path::Path;

use mesh_core::rbac::{
    Decision, Permission, Policy, Principal, Rbac, RbacAction, RequestFacts, authorize,
};
use mesh_core::{StringMatch, Validate};

use super::*;
use crate::config::parse_file;

const WEB: &str = "spiffe://cluster.local/ns/shop/sa/web";
const BATCH: &str = "spiffe://cluster.local/ns/jobs/sa/batch";

fn docs(text: &str) -> Vec<Document> {
    let (docs, diags) = parse_file(Path::new("config/authz.yaml"), text);
    assert!(
        diags.iter().all(|d| !d.is_error()),
        "unexpected errors: {diags:?}"
    );
    docs
}

fn policy(ns: &str, name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n{spec}"
    )
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The filters of workload `app=reviews` in namespace `shop`.
fn reviews(text: &str) -> Vec<Rbac> {
    let filters = rbac_filters(
        &docs(text),
        "shop",
        &labels(&[("app", "reviews"), ("version", "v1")]),
        "cluster.local",
    );
    for f in &filters {
        f.validate().unwrap_or_else(|e| panic!("{e}: {f:?}"));
    }
    filters
}

fn req<'a>(method: &'a str, path: &'a str, peer: Option<&'a str>) -> RequestFacts<'a> {
    let mut r = RequestFacts::new(method, path);
    r.peer = peer;
    r.authority = Some("reviews.shop.svc.cluster.local:9080");
    r.local_port = Some(9080);
    r
}

/// A request whose only header is `x-team`.
struct Team(&'static str);

impl mesh_core::rbac::HeaderSource for Team {
    fn header(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        (name == "x-team").then_some(std::borrow::Cow::Borrowed(self.0))
    }
}

static BLUE: Team = Team("blue");
static RED: Team = Team("red");

fn allowed(filters: &[Rbac], r: &RequestFacts<'_>) -> bool {
    authorize(filters, r).is_allowed()
}

#[test]
fn no_policy_no_filter() {
    assert!(reviews("").is_empty());
}

#[test]
fn allow_nothing_denies_everything() {
    let f = reviews(&policy("shop", "allow-nothing", "  {}\n"));
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].action, RbacAction::Allow);
    assert_eq!(
        f[0].policies,
        vec![("shop/allow-nothing".into(), Policy::never())]
    );
    assert!(!allowed(&f, &req("GET", "/", Some(WEB))));
    assert!(!allowed(&f, &req("GET", "/", None)));
}

#[test]
fn an_empty_rule_matches_everything() {
    let f = reviews(&policy("shop", "allow-all", "  rules: [{}]\n"));
    assert_eq!(
        f[0].policies,
        vec![(
            "shop/allow-all[0]".into(),
            Policy {
                permissions: vec![Permission::Any],
                principals: vec![Principal::Any]
            }
        )]
    );
    assert!(allowed(&f, &req("DELETE", "/x", None)));
}

#[test]
fn principals_allow_one_peer_and_deny_the_rest() {
    let f = reviews(&policy(
        "shop",
        "web-only",
        "  rules:\n  - from: [{source: {principals: [cluster.local/ns/shop/sa/web]}}]\n",
    ));
    assert_eq!(
        f[0].policies[0].1.principals,
        vec![Principal::Authenticated(Some(StringMatch::Exact(
            WEB.into()
        )))]
    );
    assert!(allowed(&f, &req("GET", "/", Some(WEB))));
    let v = authorize(&f, &req("GET", "/", Some(BATCH)));
    assert_eq!(v.decision, Decision::Denied(None));
    assert!(
        !allowed(&f, &req("GET", "/", None)),
        "plaintext has no principal"
    );
}

#[test]
fn the_local_trust_domain_replaces_cluster_local() {
    let text = policy(
        "shop",
        "web-only",
        "  rules:\n  - from: [{source: {principals: [cluster.local/ns/shop/sa/web, \"*\"]}}]\n",
    );
    let f = rbac_filters(&docs(&text), "shop", &BTreeMap::new(), "mesh.example");
    assert_eq!(
        f[0].policies[0].1.principals,
        vec![Principal::Or(vec![
            Principal::Authenticated(Some(StringMatch::Exact(
                "spiffe://mesh.example/ns/shop/sa/web".into()
            ))),
            Principal::Authenticated(None),
        ])]
    );
}

#[test]
fn namespaces_and_not_namespaces() {
    let f = reviews(&policy(
        "shop",
        "from-shop",
        "  rules:\n  - from: [{source: {namespaces: [shop, \"job*\"], notNamespaces: [jobs]}}]\n",
    ));
    assert!(allowed(&f, &req("GET", "/", Some(WEB))));
    assert!(
        allowed(
            &f,
            &req("GET", "/", Some("spiffe://cluster.local/ns/jobs-2/sa/x"))
        ),
        "prefix match on the namespace"
    );
    assert!(
        !allowed(&f, &req("GET", "/", Some(BATCH))),
        "excluded by notNamespaces"
    );
    assert!(
        !allowed(
            &f,
            &req("GET", "/", Some("spiffe://cluster.local/ns/other/sa/shop"))
        ),
        "only the namespace segment counts"
    );
}

#[test]
fn deny_wins_over_allow_and_audit_comes_first() {
    let text = [
        policy(
            "shop",
            "allow-web",
            "  rules:\n  - from: [{source: {principals: [\"*\"]}}]\n",
        ),
        policy(
            "shop",
            "deny-admin",
            "  action: DENY\n  rules:\n  - to: [{operation: {paths: [\"/admin/*\"]}}]\n",
        ),
        policy(
            "shop",
            "audit-writes",
            "  action: AUDIT\n  rules:\n  - to: [{operation: {methods: [POST, PUT]}}]\n",
        ),
    ]
    .concat();
    let f = reviews(&text);
    let actions: Vec<RbacAction> = f.iter().map(|f| f.action).collect();
    assert_eq!(
        actions,
        [RbacAction::Log, RbacAction::Deny, RbacAction::Allow]
    );

    let v = authorize(&f, &req("POST", "/admin/users", Some(WEB)));
    assert_eq!(v.decision.policy().unwrap().name, "shop/deny-admin[0]");
    assert!(!v.is_allowed());
    assert_eq!(
        v.audit[0].name, "shop/audit-writes[0]",
        "audited even when denied"
    );

    let v = authorize(&f, &req("GET", "/reviews/1", Some(WEB)));
    assert_eq!(v.decision.policy().unwrap().name, "shop/allow-web[0]");
    assert!(v.audit.is_empty());
}

#[test]
fn without_allow_policies_what_is_not_denied_is_allowed() {
    let f = reviews(&policy(
        "shop",
        "deny-delete",
        "  action: DENY\n  rules:\n  - to: [{operation: {methods: [DELETE]}}]\n",
    ));
    assert_eq!(f.len(), 1);
    assert!(allowed(&f, &req("GET", "/", None)));
    assert!(!allowed(&f, &req("DELETE", "/", Some(WEB))));
}

#[test]
fn selectors_namespaces_and_the_root_namespace() {
    let text = [
        policy(
            "shop",
            "for-reviews",
            "  selector: {matchLabels: {app: reviews}}\n  rules: [{}]\n",
        ),
        policy(
            "shop",
            "for-ratings",
            "  selector: {matchLabels: {app: ratings}}\n  rules: [{}]\n",
        ),
        policy(
            "shop",
            "whole-namespace",
            "  action: AUDIT\n  rules: [{}]\n",
        ),
        policy("other", "elsewhere", "  rules: [{}]\n"),
        policy(
            "istio-system",
            "mesh-wide",
            "  action: DENY\n  rules:\n  - to: [{operation: {paths: [/debug]}}]\n",
        ),
        policy(
            "istio-system",
            "root-for-ratings",
            "  action: DENY\n  selector: {matchLabels: {app: ratings}}\n  rules: [{}]\n",
        ),
    ]
    .concat();
    let names = |f: &[Rbac]| -> Vec<String> {
        f.iter()
            .flat_map(|r| r.policies.iter().map(|(n, _)| n.clone()))
            .collect()
    };
    assert_eq!(
        names(&reviews(&text)),
        [
            "shop/whole-namespace[0]",
            "istio-system/mesh-wide[0]",
            "shop/for-reviews[0]"
        ]
    );
    // A workload of another namespace gets the root policies and its own namespace's.
    let d = docs(&text);
    let other = rbac_filters(&d, "other", &labels(&[("app", "ratings")]), "cluster.local");
    assert_eq!(
        names(&other),
        [
            "istio-system/mesh-wide[0]",
            "istio-system/root-for-ratings[0]",
            "other/elsewhere[0]"
        ]
    );
    // Another root namespace.
    let f = rbac_filters_in(&d, "jobs", &BTreeMap::new(), "cluster.local", "shop");
    assert_eq!(names(&f), ["shop/whole-namespace[0]"]);
}

#[test]
fn from_to_and_when_combine_as_in_istio() {
    let f = reviews(&policy(
        "shop",
        "api",
        r#"  rules:
  - from:
    - source: {principals: [cluster.local/ns/shop/sa/web]}
    - source: {namespaces: [jobs]}
    to:
    - operation: {methods: [GET], paths: ["/api/{*}/items"]}
    - operation: {ports: ["9090"]}
    when:
    - key: request.headers[x-team]
      values: [blue]
    - key: destination.port
      notValues: ["9091"]
"#,
    ));
    let with = |mut r: RequestFacts<'static>, team: &'static Team| {
        r.headers = team;
        r
    };
    let (blue, red) = (&BLUE, &RED);
    assert!(allowed(
        &f,
        &with(req("GET", "/api/v1/items", Some(WEB)), blue)
    ));
    assert!(allowed(
        &f,
        &with(req("GET", "/api/v1/items", Some(BATCH)), blue)
    ));
    assert!(
        !allowed(&f, &with(req("GET", "/api/v1/items", Some(WEB)), red)),
        "when: header"
    );
    assert!(
        !allowed(&f, &with(req("POST", "/api/v1/items", Some(WEB)), blue)),
        "method"
    );
    assert!(
        !allowed(&f, &with(req("GET", "/api/v1/x/items", Some(WEB)), blue)),
        "template"
    );
    let mut other_port = with(req("POST", "/anything", Some(WEB)), blue);
    other_port.local_port = Some(9090);
    assert!(allowed(&f, &other_port), "second operation");
    other_port.local_port = Some(9091);
    assert!(!allowed(&f, &other_port));
}

#[test]
fn hosts_methods_and_not_values() {
    let f = reviews(&policy(
        "shop",
        "ops",
        "  rules:\n  - to: [{operation: {hosts: [\"REVIEWS.shop.svc.cluster.local*\"], notMethods: [DELETE], notPaths: [\"/private*\"]}}]\n",
    ));
    assert!(allowed(&f, &req("GET", "/x?q=/private", None)));
    assert!(!allowed(&f, &req("DELETE", "/x", None)));
    assert!(!allowed(&f, &req("GET", "/private/x", None)));
    let mut other_host = req("GET", "/x", None);
    other_host.authority = Some("details:9080");
    assert!(!allowed(&f, &other_host));
}

#[test]
fn request_principals_never_match() {
    let f = reviews(&policy(
        "shop",
        "jwt",
        "  rules:\n  - from: [{source: {requestPrincipals: [\"*\"]}}]\n",
    ));
    assert!(!allowed(&f, &req("GET", "/", Some(WEB))));
}

#[test]
fn a_second_policy_with_the_same_name_is_reported_and_skipped() {
    let text = [
        policy("shop", "p", "  rules: [{}]\n"),
        policy("shop", "p", "  action: DENY\n  rules: [{}]\n"),
    ]
    .concat();
    let d = docs(&text);
    let f = rbac_filters(&d, "shop", &BTreeMap::new(), "cluster.local");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].action, RbacAction::Allow);
    let (_, diags) = crate::translate::build(&d);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].document, 1);
    assert!(diags[0].reason.contains("already defined"), "{}", diags[0]);
}

#[test]
fn policies_are_sorted_by_name_like_the_wire() {
    let text = [
        policy("shop", "zeta", "  rules: [{}, {}]\n"),
        policy("shop", "alpha", "  rules: [{}]\n"),
    ]
    .concat();
    let f = reviews(&text);
    let names: Vec<&str> = f[0].policies.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["shop/alpha[0]", "shop/zeta[0]", "shop/zeta[1]"]);
}

#[test]
fn what_the_control_plane_emits_round_trips_through_the_codec_cleanly() {
    use mesh_xds_client::codec::{decode_rbac, encode_rbac};
    let spec = r#"  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/shop/sa/web", "*", "cluster.local/ns/shop/*", "*/sa/x"]
        notPrincipals: ["cluster.local/ns/shop/sa/batch"]
        namespaces: [shop, "test-*"]
        serviceAccounts: [web, "other/api"]
        ipBlocks: [10.0.0.0/8, 192.168.1.7]
        notRemoteIpBlocks: ["2001:db8:1::/48"]
        requestPrincipals: ["*"]
    to:
    - operation:
        hosts: ["reviews.shop.svc.cluster.local", "*.example.com", "api.*", "*"]
        ports: ["9080", 8080]
        notPorts: [15000]
        methods: [GET, "PO*", "*"]
        paths: ["/api/{*}/items", "/static/{**}", "/exact", "/pre/*", "*.png", "*"]
        notPaths: ["/api/admin*"]
    when:
    - key: request.headers[X-Team]
      values: [blue, "*"]
      notValues: [red]
    - key: destination.port
      values: ["9080"]
"#;
    let text = [
        policy("shop", "allow", spec),
        policy("shop", "deny", &format!("  action: DENY\n{spec}")),
        policy("shop", "audit", &format!("  action: AUDIT\n{spec}")),
        policy("shop", "nothing", "  {}\n"),
    ]
    .concat();
    let (docs, diags) = parse_file(Path::new("config/authz.yaml"), &text);
    assert!(diags.iter().all(|d| !d.is_error()), "{diags:?}");
    let filters = rbac_filters(&docs, "shop", &BTreeMap::new(), "cluster.local");
    assert_eq!(filters.len(), 3);
    for f in &filters {
        let back = decode_rbac("envoy.filters.http.rbac", &encode_rbac(f))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(back.warnings.is_empty(), "{:?}", back.warnings);
        assert_eq!(&back.value, f);
    }
}
