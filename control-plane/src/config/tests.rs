//! Reading documents: splitting, headers, typed decoding, warnings and per-document checks.

use std::path::Path;

use super::*;

fn parse(text: &str) -> (Vec<Document>, Vec<Diagnostic>) {
    parse_file(Path::new("config/test.yaml"), text)
}

fn errors(diags: &[Diagnostic]) -> Vec<&Diagnostic> {
    diags.iter().filter(|d| d.is_error()).collect()
}

const SE: &str = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: reviews
spec:
  hosts: [reviews.default.svc.cluster.local]
  ports:
  - {number: 9080, name: http}
  resolution: STATIC
  endpoints:
  - address: 10.0.0.1
";

const WE: &str = "\
apiVersion: networking.istio.io/v1beta1
kind: WorkloadEntry
metadata:
  name: ratings-1
  namespace: shop
spec:
  address: 10.0.0.9
  labels: {app: ratings}
";

#[test]
fn multi_document_file_keeps_the_good_documents_around_a_malformed_one() {
    let text =
        format!("{SE}---\nkind: VirtualService\n  bad: [indent\n--- # trailing comment\n{WE}");
    let (docs, diags) = parse(&text);
    assert_eq!(docs.len(), 2, "{diags:?}");
    assert_eq!(docs[0].name, "reviews");
    assert_eq!(docs[0].namespace, "default");
    assert_eq!(docs[0].source.index, 0);
    assert_eq!(docs[0].source.line, 1);
    assert_eq!(docs[1].name, "ratings-1");
    assert_eq!(docs[1].namespace, "shop");
    assert_eq!(docs[1].source.index, 2);
    assert_eq!(docs[1].source.line, 16);
    let errs = errors(&diags);
    assert_eq!(errs.len(), 1, "{diags:?}");
    assert_eq!(errs[0].document, 1);
    assert_eq!(errs[0].file, Path::new("config/test.yaml"));
    assert!(errs[0].reason.starts_with("malformed YAML"), "{}", errs[0]);
    assert!((13..=14).contains(&errs[0].line), "line {}", errs[0].line);
}

#[test]
fn empty_documents_are_not_counted() {
    let text = format!("---\n# only a comment\n---\n{SE}---\n\n---\n{WE}---\n");
    let (docs, diags) = parse(&text);
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(
        docs.iter().map(|d| d.source.index).collect::<Vec<_>>(),
        [0, 1]
    );
    // `----` or `--- x` are not separators.
    assert!(!split::is_separator_for_tests("----"));
    assert!(!split::is_separator_for_tests("--- x"));
    assert!(split::is_separator_for_tests("---   # c\r\n"));
}

#[test]
fn unknown_kind_and_bad_headers_are_errors_naming_the_field() {
    let text = "\
apiVersion: v1
kind: ConfigMap
metadata: {name: x}
---
apiVersion: networking.istio.io/v2
kind: VirtualService
metadata: {name: y}
spec: {}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {namespace: prod}
spec: {host: a}
";
    let (docs, diags) = parse(text);
    assert!(docs.is_empty());
    let got: Vec<(usize, &str)> = diags
        .iter()
        .map(|d| (d.document, d.field.as_str()))
        .collect();
    assert_eq!(got, [(0, "kind"), (1, "apiVersion"), (2, "metadata.name")]);
    assert!(diags[0].reason.contains("unknown kind \"ConfigMap\""));
    assert_eq!(
        diags[0].to_string(),
        "config/test.yaml: document 0 (ConfigMap default/x), field kind: unknown kind \"ConfigMap\" \
         (supported: ServiceEntry, WorkloadEntry, VirtualService, DestinationRule, HTTPRoute, \
         GRPCRoute, PeerAuthentication, AuthorizationPolicy)"
    );
}

#[test]
fn unsupported_fields_are_warnings_with_their_path() {
    let text = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, labels: {app: r}}
spec:
  hosts: [reviews]
  http:
  - corsPolicy: {allowOrigins: [{exact: x}]}
    match:
    - uri: {prefix: /}
      sourceLabels: {app: a}
    route:
    - destination: {host: reviews}
status: {}
";
    let (docs, diags) = parse(text);
    assert_eq!(docs.len(), 1, "{diags:?}");
    let warnings: Vec<(Severity, &str, &str)> = diags
        .iter()
        .map(|d| (d.severity, d.field.as_str(), d.reason.as_str()))
        .collect();
    assert_eq!(
        warnings,
        [
            (
                Severity::Warning,
                "spec.http[0].corsPolicy",
                "field not supported, ignored"
            ),
            (
                Severity::Warning,
                "spec.http[0].match[0].sourceLabels",
                "field not supported, ignored"
            ),
        ]
    );
    assert_eq!(diags[0].name.as_deref(), Some("default/reviews"));
    assert_eq!(diags[0].kind.as_deref(), Some("VirtualService"));
}

#[test]
fn type_errors_carry_field_path_and_line() {
    let text = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
    timeout: 10
";
    let (docs, diags) = parse(text);
    assert!(docs.is_empty());
    assert_eq!(diags.len(), 1, "{diags:?}");
    let d = &diags[0];
    assert_eq!(d.field, "spec.http[0].timeout");
    assert_eq!(d.line, 9);
    assert_eq!(
        d.reason,
        "invalid duration \"10\": missing unit (one of h, m, s, ms, us, ns)"
    );
}

#[test]
fn ports_out_of_range_and_invalid_regex_are_errors() {
    let port = SE.replace("number: 9080", "number: 70000");
    let (docs, diags) = parse(&port);
    assert!(docs.is_empty());
    assert_eq!(diags[0].field, "spec.ports[0].number");
    assert_eq!(diags[0].reason, "port 70000 is out of range 1–65535");
    assert_eq!(diags[0].line, 8);

    let regex = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match:
    - uri: {regex: \"/api/(v1\"}
    route:
    - destination: {host: reviews}
";
    let (docs, diags) = parse(regex);
    assert!(docs.is_empty());
    assert_eq!(diags[0].field, "spec.http[0].match[0].uri.regex");
    assert!(
        diags[0].reason.starts_with("invalid regex \"/api/(v1\": "),
        "{}",
        diags[0].reason
    );
}

#[test]
fn weights_summing_to_zero_and_duplicate_matches_reject_the_document() {
    let text = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /a}, name: first}]
    route:
    - destination: {host: reviews, subset: v1}
      weight: 0
    - destination: {host: reviews, subset: v2}
  - match: [{uri: {prefix: /a}, name: again}]
    route:
    - destination: {host: reviews}
  - route:
    - destination: {host: reviews}
  - route:
    - destination: {host: reviews}
";
    let (docs, diags) = parse(text);
    assert!(docs.is_empty());
    let errs: Vec<String> = errors(&diags).iter().map(|d| d.to_string()).collect();
    assert_eq!(
        errs,
        [
            "config/test.yaml: document 0 (VirtualService default/reviews), field \
             spec.http[0].route[1].weight: weights sum to zero",
            "config/test.yaml: document 0 (VirtualService default/reviews), field \
             spec.http[1].match: could never match: the same match as spec.http[0]",
            "config/test.yaml: document 0 (VirtualService default/reviews), field \
             spec.http[3].match: could never match: the same match as spec.http[2]",
        ]
    );
}

#[test]
fn unsupported_values_are_errors() {
    let dns = SE.replace("STATIC", "DNS");
    let (_, diags) = parse(&dns);
    assert_eq!(diags[0].field, "spec.resolution");
    assert!(diags[0].reason.contains("only STATIC is supported"));

    let dr = "\
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: r}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: PASSTHROUGH}
    tls: {mode: SIMPLE}
    outlierDetection: {minHealthPercent: 50}
";
    let (docs, diags) = parse(dr);
    assert!(docs.is_empty());
    let got: Vec<(Severity, &str)> = diags
        .iter()
        .map(|d| (d.severity, d.field.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                Severity::Warning,
                "spec.trafficPolicy.outlierDetection.minHealthPercent"
            ),
            (Severity::Error, "spec.trafficPolicy.loadBalancer.simple"),
            (Severity::Error, "spec.trafficPolicy.tls.mode"),
        ]
    );

    let endpoint = SE.replace("10.0.0.1", "reviews.example.com");
    let (_, diags) = parse(&endpoint);
    assert_eq!(diags[0].field, "spec.endpoints[0].address");
}

#[test]
fn http_route_checks() {
    let text = "\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{group: '', kind: Service, name: reviews}]
  hostnames: [reviews]
  rules:
  - matches:
    - headers: [{type: RegularExpression, name: x-user, value: '(a'}]
      method: FETCH
    filters:
    - type: RequestRedirect
      requestRedirect: {scheme: https}
    backendRefs:
    - {name: reviews, port: 9080, weight: 0}
";
    let (docs, diags) = parse(text);
    assert!(docs.is_empty());
    let got: Vec<(Severity, &str)> = diags
        .iter()
        .map(|d| (d.severity, d.field.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (Severity::Warning, "spec.hostnames"),
            (
                Severity::Warning,
                "spec.rules[0].filters[0].requestRedirect"
            ),
            (Severity::Error, "spec.rules[0].matches[0].headers[0].value"),
            (Severity::Error, "spec.rules[0].matches[0].method"),
            (Severity::Error, "spec.rules[0].filters[0].type"),
            (Severity::Error, "spec.rules[0].backendRefs[0].weight"),
        ]
    );
}

#[test]
fn load_dir_reads_yaml_files_in_path_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.yml"), WE).unwrap();
    std::fs::write(dir.path().join("a.yaml"), SE).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "kind: nonsense").unwrap();
    std::fs::write(dir.path().join("c.yaml"), "kind: [").unwrap();
    let loaded = load_dir(dir.path());
    let names: Vec<&str> = loaded.documents.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["reviews", "ratings-1"]);
    assert!(loaded.has_errors());
    assert_eq!(loaded.diagnostics.len(), 1);
    assert_eq!(loaded.diagnostics[0].file, dir.path().join("c.yaml"));
}

#[test]
fn retry_and_fault_pitfalls_are_warned() {
    let text = "\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: r}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}]
    retries: {perTryTimeout: 1s, retryOn: \"5xx,envoy-ratelimited\"}
    fault:
      delay: {fixedDelay: 1s}
";
    let (docs, diags) = parse(text);
    assert_eq!(docs.len(), 1, "warnings do not reject: {diags:?}");
    let got: Vec<(&str, &str)> = diags
        .iter()
        .map(|d| (d.field.as_str(), d.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "spec.http[0].retries.attempts",
                "not set: as in Istio, retries are disabled and perTryTimeout/retryOn have no effect"
            ),
            (
                "spec.http[0].retries.retryOn",
                "retry condition \"envoy-ratelimited\" not supported, ignored"
            ),
            (
                "spec.http[0].fault.delay.percentage",
                "not set: as in Istio, no request is delayed"
            ),
        ]
    );
    assert!(diags.iter().all(|d| d.severity == Severity::Warning));
}
