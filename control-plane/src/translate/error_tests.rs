//! Bad input: each case adds one bad document to a valid set; the bad document is rejected with
//! an error naming file, document and field, and everything else translates as before.

use super::tests::{MESH, build_text};
use crate::config::Severity;

/// Index of the appended document (MESH holds documents 0–7).
const BAD: usize = 8;

fn vs(spec: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: bad}}\nspec:\n{spec}"
    )
}

fn dr(spec: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: bad}}\nspec:\n{spec}"
    )
}

fn route(spec: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: bad}}\nspec:\n{spec}"
    )
}

fn se(spec: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: bad}}\nspec:\n{spec}"
    )
}

#[test]
fn each_bad_document_is_rejected_alone() {
    let (clean, clean_diags) = build_text(MESH);
    assert!(clean_diags.is_empty());
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "malformed YAML",
            "kind: VirtualService\nspec: [unclosed\n".into(),
            "",
            "malformed YAML",
        ),
        (
            "unknown kind",
            "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n".into(),
            "kind",
            "unknown kind \"Service\"",
        ),
        (
            "unknown VirtualService host",
            vs("  hosts: [nosuch]\n  http: [{route: [{destination: {host: reviews}}]}]\n"),
            "spec.hosts[0]",
            "unknown host \"nosuch\" (nosuch.default.svc.cluster.local): no ServiceEntry defines it",
        ),
        (
            "unknown destination host",
            vs("  hosts: [ratings]\n  http: [{route: [{destination: {host: details}}]}]\n"),
            "spec.http[0].route[0].destination",
            "unknown host \"details\"",
        ),
        (
            "unknown subset",
            vs(
                "  hosts: [ratings]\n  http: [{route: [{destination: {host: reviews, subset: v3}}]}]\n",
            ),
            "spec.http[0].route[0].destination",
            "unknown subset \"v3\": the DestinationRule of reviews.default.svc.cluster.local does not define it",
        ),
        (
            "unknown mirror port",
            vs(
                "  hosts: [ratings]\n  http: [{route: [{destination: {host: reviews}}], mirror: {host: reviews, port: {number: 1}}}]\n",
            ),
            "spec.http[0].mirror",
            "host reviews.default.svc.cluster.local has no port 1 (ports: 9080)",
        ),
        (
            "weights sum to zero",
            vs(
                "  hosts: [ratings]\n  http:\n  - route:\n    - {destination: {host: reviews}, weight: 0}\n    - {destination: {host: ratings}}\n",
            ),
            "spec.http[0].route[1].weight",
            "weights sum to zero",
        ),
        (
            "duplicate route",
            vs(
                "  hosts: [ratings]\n  http:\n  - {match: [{uri: {exact: /x}}], route: [{destination: {host: reviews}}]}\n  - {match: [{uri: {exact: /x}}], route: [{destination: {host: ratings}}]}\n",
            ),
            "spec.http[1].match",
            "could never match: the same match as spec.http[0]",
        ),
        (
            "invalid regex",
            route(
                "  parentRefs: [{kind: Service, name: ratings}]\n  rules:\n  - matches: [{path: {type: RegularExpression, value: '[z-a]'}}]\n",
            ),
            "spec.rules[0].matches[0].path.value",
            "invalid regex \"[z-a]\"",
        ),
        (
            "port out of range",
            se(
                "  hosts: [x.example.com]\n  ports: [{number: 0, name: http}]\n  resolution: STATIC\n",
            ),
            "spec.ports[0].number",
            "port 0 is out of range 1–65535",
        ),
        (
            "second VirtualService for a host",
            vs(
                "  hosts: [reviews.default.svc.cluster.local]\n  http: [{route: [{destination: {host: reviews}}]}]\n",
            ),
            "spec.hosts[0]",
            "host reviews.default.svc.cluster.local already has routes from VirtualService default/reviews (config/mesh.yaml, document 6); only the first applies",
        ),
        (
            "HTTPRoute for a host with a VirtualService",
            route(
                "  parentRefs: [{group: '', kind: Service, name: reviews}]\n  rules: [{backendRefs: [{name: reviews, port: 9080}]}]\n",
            ),
            "spec.parentRefs[0]",
            "already has routes from VirtualService default/reviews",
        ),
        (
            "unknown HTTPRoute parent",
            route("  parentRefs: [{kind: Service, name: details}]\n"),
            "spec.parentRefs[0]",
            "unknown host \"details.default.svc.cluster.local\": no ServiceEntry defines it",
        ),
        (
            "unknown HTTPRoute backend",
            route(
                "  parentRefs: [{kind: ServiceEntry, group: networking.istio.io, name: nosuch}]\n",
            ),
            "spec.parentRefs[0]",
            "unknown ServiceEntry default/nosuch",
        ),
        (
            "unknown DestinationRule host",
            dr("  host: details\n"),
            "spec.host",
            "unknown host \"details\"",
        ),
        (
            "second DestinationRule for a host",
            dr("  host: reviews.default.svc.cluster.local\n"),
            "spec.host",
            "host reviews.default.svc.cluster.local already has DestinationRule default/reviews (config/mesh.yaml, document 5); only the first applies",
        ),
        (
            "second ServiceEntry for a host:port",
            se(
                "  hosts: [new.example.com, ratings.default.svc.cluster.local]\n  ports: [{number: 9080, name: http}]\n  resolution: STATIC\n",
            ),
            "spec.hosts[1]",
            "ratings.default.svc.cluster.local:9080 is already defined by ServiceEntry default/ratings (config/mesh.yaml, document 4); only the first definition applies",
        ),
        (
            "mesh-core validation",
            vs("  hosts: [ratings]\n  http: [{directResponse: {status: 700}}]\n"),
            "spec.http[0]",
            "action.direct_response.status: 700 is not within 200–599",
        ),
        (
            "mesh-core validation of headers",
            vs(
                "  hosts: [ratings]\n  http: [{route: [{destination: {host: ratings}}], headers: {request: {set: {'bad header': x}}}}]\n",
            ),
            "spec.http[0]",
            "request_headers[0]: \"bad header\" is not a header name that may be changed",
        ),
    ];
    for (case, doc, field, reason) in cases {
        let text = format!("{MESH}---\n{doc}");
        let (res, diags) = build_text(&text);
        let errors: Vec<_> = diags.iter().filter(|d| d.is_error()).collect();
        assert!(!errors.is_empty(), "{case}: no error");
        for e in &errors {
            assert_eq!(e.document, BAD, "{case}: {e}");
            assert_eq!(e.file, std::path::Path::new("config/mesh.yaml"), "{case}");
        }
        assert!(
            errors
                .iter()
                .any(|e| e.field == field && e.reason.contains(reason)),
            "{case}: expected {field}: {reason}; got {errors:#?}"
        );
        assert_eq!(
            res, clean,
            "{case}: the other documents must translate unchanged"
        );
    }
}

#[test]
fn semantic_diagnostics_display_file_document_kind_name_and_field() {
    // Without the HTTPRoute for ratings (document 7), the bad VirtualService is document 7.
    let (without_route, _) = MESH.rsplit_once("\n---\n").unwrap();
    let text = format!(
        "{without_route}\n---\n{}",
        vs(
            "  hosts: [ratings]\n  http:\n  - route:\n    - {destination: {host: reviews, subset: v9}}\n"
        )
    );
    let (_, diags) = build_text(&text);
    assert_eq!(
        diags.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        [
            "config/mesh.yaml: document 7 (VirtualService default/bad), field \
          spec.http[0].route[0].destination: unknown subset \"v9\": the DestinationRule of \
          reviews.default.svc.cluster.local does not define it"
        ]
    );
}

#[test]
fn references_to_a_rejected_service_entry_say_so() {
    let text = format!(
        "{}---\n{}",
        se("  hosts: [pay.example.com]\n  ports: [{number: 80, name: http}]\n  resolution: DNS\n"),
        vs(
            "  hosts: [pay.example.com]\n  http: [{route: [{destination: {host: pay.example.com}}]}]\n"
        )
    );
    let (res, diags) = build_text(&text);
    assert!(res.listeners.is_empty());
    let vs_errors: Vec<_> = diags.iter().filter(|d| d.document == 1).collect();
    assert_eq!(vs_errors.len(), 1, "{diags:#?}");
    assert_eq!(vs_errors[0].severity, Severity::Error);
    assert!(
        vs_errors[0].reason.contains("unknown host"),
        "{}",
        vs_errors[0]
    );
}

#[test]
fn gateway_only_routes_warn_and_do_not_apply() {
    let text = format!(
        "{MESH}---\n{}",
        vs(
            "  hosts: [ratings]\n  gateways: [ingress]\n  http: [{route: [{destination: {host: reviews}}]}]\n"
        )
    );
    let (res, diags) = build_text(&text);
    let (clean, _) = build_text(MESH);
    assert_eq!(res, clean);
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].severity, Severity::Warning);
    assert_eq!(diags[0].field, "spec.gateways");
}
