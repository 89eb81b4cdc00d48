//! Reading files: splitting documents, reading the header, decoding the typed `spec`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::diagnostic::{Diagnostic, Findings, Severity};
use super::grpc_route::GrpcRoute;
use super::split::{Chunk, split_documents};
use super::{Document, Kind, LoadedConfig, Source};

const ISTIO_VERSIONS: [&str; 3] = [
    "networking.istio.io/v1",
    "networking.istio.io/v1beta1",
    "networking.istio.io/v1alpha3",
];
const GATEWAY_VERSIONS: [&str; 2] = [
    "gateway.networking.k8s.io/v1",
    "gateway.networking.k8s.io/v1beta1",
];
const GRPC_ROUTE_VERSIONS: [&str; 2] = [
    "gateway.networking.k8s.io/v1",
    "gateway.networking.k8s.io/v1alpha2",
];
const SECURITY_VERSIONS: [&str; 2] = ["security.istio.io/v1", "security.istio.io/v1beta1"];
const KINDS: &str = concat!(
    "ServiceEntry, WorkloadEntry, VirtualService, DestinationRule, HTTPRoute, GRPCRoute, ",
    "PeerAuthentication, AuthorizationPolicy"
);

/// Where an unknown field is an error rather than a warning, by kind: in an authorization rule
/// or selector, ignoring a field would widen what the policy allows or where it applies.
const STRICT_UNDER: [&str; 2] = ["spec.rules", "spec.selector"];

/// Reads every `*.yaml` / `*.yml` file directly in `dir` (not recursively), in path order.
pub fn load_dir(dir: &Path) -> LoadedConfig {
    let mut out = LoadedConfig::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            out.diagnostics
                .push(io_error(dir, format!("cannot read directory: {e}")));
            return out;
        }
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
        })
        .collect();
    files.sort();
    for file in files {
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                let (docs, diags) = parse_file(&file, &text);
                out.documents.extend(docs);
                out.diagnostics.extend(diags);
            }
            Err(e) => out
                .diagnostics
                .push(io_error(&file, format!("cannot read file: {e}"))),
        }
    }
    out
}

fn io_error(path: &Path, reason: String) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        file: path.to_path_buf(),
        document: 0,
        line: 0,
        kind: None,
        name: None,
        field: String::new(),
        reason,
    }
}

/// Parses the documents of one file. A malformed document is reported and skipped; the others
/// are still returned. Documents are numbered from 0, skipping empty ones.
pub fn parse_file(path: &Path, text: &str) -> (Vec<Document>, Vec<Diagnostic>) {
    let mut docs = Vec::new();
    let mut diags = Vec::new();
    let mut index = 0;
    for chunk in split_documents(text) {
        let mut ctx = Ctx {
            source: Source {
                file: path.to_path_buf(),
                index,
                line: chunk.content_line,
            },
            kind: None,
            name: None,
            diags: &mut diags,
        };
        match parse_document(&chunk, &mut ctx) {
            Parsed::Empty => continue,
            Parsed::Rejected => {}
            Parsed::Accepted(doc) => docs.push(*doc),
        }
        index += 1;
    }
    (docs, diags)
}

struct Ctx<'a> {
    source: Source,
    kind: Option<String>,
    name: Option<String>,
    diags: &'a mut Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn push(&mut self, severity: Severity, field: &str, reason: String, line: Option<usize>) {
        self.diags.push(Diagnostic {
            severity,
            file: self.source.file.clone(),
            document: self.source.index,
            line: line.unwrap_or(self.source.line),
            kind: self.kind.clone(),
            name: self.name.clone(),
            field: field.to_string(),
            reason,
        });
    }
}

enum Parsed {
    Empty,
    Rejected,
    Accepted(Box<Document>),
}

fn parse_document(chunk: &Chunk<'_>, ctx: &mut Ctx<'_>) -> Parsed {
    let at_line = |loc: Option<serde_yaml_ng::Location>| {
        loc.map(|l| chunk.first_line + l.line().saturating_sub(1))
    };
    let value: serde_yaml_ng::Value = match serde_yaml_ng::from_str(chunk.text) {
        Ok(v) => v,
        Err(e) => {
            let line = at_line(e.location());
            ctx.push(
                Severity::Error,
                "",
                format!("malformed YAML: {}", clean_message(&e)),
                line,
            );
            return Parsed::Rejected;
        }
    };
    if value.is_null() {
        return Parsed::Empty;
    }
    let Some(header) = read_header(&value, ctx) else {
        return Parsed::Rejected;
    };
    let mut findings = Findings::default();
    let kind = match header.kind.as_str() {
        "ServiceEntry" => decode(chunk, ctx, &mut findings).map(Kind::ServiceEntry),
        "WorkloadEntry" => decode(chunk, ctx, &mut findings).map(Kind::WorkloadEntry),
        "VirtualService" => decode(chunk, ctx, &mut findings).map(Kind::VirtualService),
        "DestinationRule" => decode(chunk, ctx, &mut findings).map(Kind::DestinationRule),
        "PeerAuthentication" => decode(chunk, ctx, &mut findings).map(Kind::PeerAuthentication),
        "AuthorizationPolicy" => {
            check_dry_run(&value, &mut findings);
            decode_strict(chunk, ctx, &mut findings, &STRICT_UNDER).map(Kind::AuthorizationPolicy)
        }
        "GRPCRoute" => decode::<GrpcRoute>(chunk, ctx, &mut findings).map(|g| {
            g.check(&mut findings);
            Kind::GrpcRoute(g.to_http_route())
        }),
        _ => decode(chunk, ctx, &mut findings).map(Kind::HttpRoute),
    };
    if let Some(kind) = &kind {
        match kind {
            Kind::ServiceEntry(s) => s.check(&mut findings),
            Kind::WorkloadEntry(w) => w.check("spec.", &mut findings),
            Kind::VirtualService(v) => v.check(&mut findings),
            Kind::DestinationRule(d) => d.check(&mut findings),
            Kind::HttpRoute(h) | Kind::GrpcRoute(h) => h.check(&mut findings),
            Kind::PeerAuthentication(p) => p.check(&mut findings),
            Kind::AuthorizationPolicy(a) => a.check(&header.namespace, &mut findings),
        }
    }
    let rejected = kind.is_none() || findings.has_errors();
    for (severity, field, reason) in findings.items {
        ctx.push(severity, &field, reason, None);
    }
    match kind {
        Some(kind) if !rejected => Parsed::Accepted(Box::new(Document {
            source: ctx.source.clone(),
            namespace: header.namespace,
            name: header.name,
            kind,
        })),
        _ => Parsed::Rejected,
    }
}

/// Istio's `istio.io/dry-run` annotation asks for a policy that is evaluated but not enforced.
/// Enforcing it instead could refuse traffic the author only meant to observe: refused.
fn check_dry_run(value: &serde_yaml_ng::Value, findings: &mut Findings) {
    let dry_run = value
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get("istio.io/dry-run"))
        .and_then(|v| v.as_str());
    if dry_run.is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        findings.error(
            "metadata.annotations.istio.io/dry-run",
            "dry-run policies are not supported; remove the annotation to enforce the policy",
        );
    }
}

struct Header {
    kind: String,
    name: String,
    namespace: String,
}

/// Reads `apiVersion`, `kind` and `metadata`; reports and returns `None` when unusable.
fn read_header(value: &serde_yaml_ng::Value, ctx: &mut Ctx<'_>) -> Option<Header> {
    if !value.is_mapping() {
        ctx.push(
            Severity::Error,
            "",
            "a document must be a mapping with apiVersion, kind, metadata and spec".into(),
            None,
        );
        return None;
    }
    let text = |v: Option<&serde_yaml_ng::Value>| v.and_then(|v| v.as_str()).map(str::to_string);
    let kind = text(value.get("kind"));
    let api_version = text(value.get("apiVersion"));
    let metadata = value.get("metadata");
    let name = text(metadata.and_then(|m| m.get("name"))).filter(|n| !n.is_empty());
    let namespace = text(metadata.and_then(|m| m.get("namespace")))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into());
    ctx.kind = kind.clone();
    ctx.name = name.as_ref().map(|n| format!("{namespace}/{n}"));
    let Some(kind) = kind else {
        ctx.push(Severity::Error, "kind", "required".into(), None);
        return None;
    };
    let versions: &[&str] = match kind.as_str() {
        "ServiceEntry" | "WorkloadEntry" | "VirtualService" | "DestinationRule" => &ISTIO_VERSIONS,
        "HTTPRoute" => &GATEWAY_VERSIONS,
        "GRPCRoute" => &GRPC_ROUTE_VERSIONS,
        "PeerAuthentication" | "AuthorizationPolicy" => &SECURITY_VERSIONS,
        other => {
            ctx.push(
                Severity::Error,
                "kind",
                format!("unknown kind {other:?} (supported: {KINDS})"),
                None,
            );
            return None;
        }
    };
    match api_version {
        Some(v) if versions.contains(&v.as_str()) => {}
        Some(v) => {
            ctx.push(
                Severity::Error,
                "apiVersion",
                format!(
                    "{v:?} is not supported for {kind} (use one of {})",
                    versions.join(", ")
                ),
                None,
            );
            return None;
        }
        None => {
            ctx.push(Severity::Error, "apiVersion", "required".into(), None);
            return None;
        }
    }
    let Some(name) = name else {
        ctx.push(Severity::Error, "metadata.name", "required".into(), None);
        return None;
    };
    Some(Header {
        kind,
        name,
        namespace,
    })
}

/// The whole document as typed; only `spec` matters, the rest is accepted for compatibility
/// with `kubectl get -o yaml` output.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<S> {
    #[serde(rename = "apiVersion")]
    _api_version: String,
    #[serde(rename = "kind")]
    _kind: String,
    #[serde(rename = "metadata")]
    _metadata: Metadata,
    spec: Option<S>,
    #[serde(default, rename = "status")]
    _status: Option<serde_yaml_ng::Value>,
}

/// Kubernetes object metadata: `name` and `namespace` are used, the rest is accepted unused.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    #[serde(rename = "name")]
    _name: String,
    #[serde(default, rename = "namespace")]
    _namespace: Option<String>,
    #[serde(default, rename = "labels")]
    _labels: BTreeMap<String, String>,
    #[serde(default, rename = "annotations")]
    _annotations: BTreeMap<String, String>,
    #[serde(default, rename = "uid")]
    _uid: Option<serde_yaml_ng::Value>,
    #[serde(default, rename = "resourceVersion")]
    _resource_version: Option<serde_yaml_ng::Value>,
    #[serde(default, rename = "generation")]
    _generation: Option<serde_yaml_ng::Value>,
    #[serde(default, rename = "creationTimestamp")]
    _creation_timestamp: Option<serde_yaml_ng::Value>,
    #[serde(default, rename = "managedFields")]
    _managed_fields: Option<serde_yaml_ng::Value>,
}

/// Decodes the typed document; unknown fields become warnings, the first type error an error.
fn decode<S: DeserializeOwned>(
    chunk: &Chunk<'_>,
    ctx: &mut Ctx<'_>,
    findings: &mut Findings,
) -> Option<S> {
    decode_strict(chunk, ctx, findings, &[])
}

/// As [`decode`], but an unknown field under one of the `strict` paths is an error.
fn decode_strict<S: DeserializeOwned>(
    chunk: &Chunk<'_>,
    ctx: &mut Ctx<'_>,
    findings: &mut Findings,
    strict: &[&str],
) -> Option<S> {
    let mut ignored = Vec::new();
    let mut on_ignored = |path: serde_ignored::Path<'_>| ignored.push(ignored_path(&path));
    let de = serde_yaml_ng::Deserializer::from_str(chunk.text);
    let result: Result<Envelope<S>, _> =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(de, &mut on_ignored));
    for path in ignored {
        let under = |p: &str| {
            path.strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        };
        if strict.iter().any(|p| under(p)) {
            findings.error(
                path,
                "field not supported; refused, since ignoring it would widen what the policy allows or where it applies",
            );
        } else {
            findings.warn(path, "field not supported, ignored");
        }
    }
    match result {
        Ok(Envelope {
            spec: Some(spec), ..
        }) => Some(spec),
        Ok(_) => {
            findings.error("spec", "required");
            None
        }
        Err(e) => {
            let field = error_path(e.path());
            let line = e
                .inner()
                .location()
                .map(|l| chunk.first_line + l.line().saturating_sub(1));
            ctx.push(Severity::Error, &field, clean_message(e.inner()), line);
            None
        }
    }
}

/// `spec.http[0].corsPolicy` from serde_ignored's path.
fn ignored_path(p: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    match p {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        P::Map { parent, key } => match ignored_path(parent) {
            par if par.is_empty() => key.clone(),
            par => format!("{par}.{key}"),
        },
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            ignored_path(parent)
        }
    }
}

/// `spec.http[0].timeout` from serde_path_to_error's path.
fn error_path(p: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in p.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

/// The YAML error's message without the location suffix and path prefix (reported separately).
fn clean_message(e: &serde_yaml_ng::Error) -> String {
    let mut text = e.to_string();
    if let Some(loc) = e.location() {
        let suffix = format!(" at line {} column {}", loc.line(), loc.column());
        if let Some(stripped) = text.strip_suffix(&suffix) {
            text = stripped.to_string();
        }
    }
    match text.split_once(": ") {
        Some((head, rest)) if !head.contains(char::is_whitespace) && !head.is_empty() => {
            rest.to_string()
        }
        _ => text,
    }
}
