//! Config documents as users write them: Istio `ServiceEntry`, `WorkloadEntry`, `VirtualService`,
//! `DestinationRule`, `PeerAuthentication`, `AuthorizationPolicy` and Gateway API `HTTPRoute` and
//! `GRPCRoute`, read from YAML files.
//!
//! Reading is forgiving per document and strict per field: a malformed or invalid document is
//! reported with its file, index, line and field, and skipped; the other documents of the same
//! file still load. A field we do not implement is reported as a [`Severity::Warning`] with its
//! path (`spec.http[0].corsPolicy`) and ignored, never dropped silently. A value we cannot honour
//! for a field we do implement (resolution `DNS`, load balancer `PASSTHROUGH`, …) is an error.
//!
//! Checks that involve several documents (references, conflicts) are made by
//! [`crate::translate::build`].
//!
//! ```no_run
//! let loaded = control_plane::config::load_dir(std::path::Path::new("config"));
//! for d in &loaded.diagnostics {
//!     eprintln!("{}: {d}", d.severity);
//! }
//! let (resources, semantic) = control_plane::translate::build(&loaded.documents);
//! # let _ = (resources, semantic);
//! ```

pub mod authorization_policy;
mod common;
pub mod destination_rule;
mod diagnostic;
mod duration;
pub mod grpc_route;
pub mod http_route;
mod http_route_check;
mod loader;
pub mod peer_authentication;
pub mod service_entry;
mod split;
pub mod virtual_service;
mod virtual_service_check;

use std::path::PathBuf;

pub use common::{PercentSpec, Port, RegexSpec, StringMatchSpec};
pub use diagnostic::{Diagnostic, Severity};
pub use duration::{DurationError, parse_duration};
pub use loader::{load_dir, parse_file};

pub(crate) use common::{compile_regex, fqdn};
pub(crate) use virtual_service::grpc_status_code;
pub(crate) use virtual_service_check::parse_retry_on;

pub use authorization_policy::AuthorizationPolicy;
pub use destination_rule::DestinationRule;
pub use http_route::HttpRoute;
pub use peer_authentication::PeerAuthentication;
pub use service_entry::{ServiceEntry, WorkloadEntry};
pub use virtual_service::VirtualService;

/// Where a document came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The file.
    pub file: PathBuf,
    /// Index among the non-empty documents of the file, from 0.
    pub index: usize,
    /// 1-based line of the document's first content line.
    pub line: usize,
}

/// One accepted document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Where it came from.
    pub source: Source,
    /// `metadata.namespace`. Default: `default`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// The kind and its typed `spec`.
    pub kind: Kind,
}

impl Document {
    /// A diagnostic about `field` of this document.
    pub fn diagnostic(
        &self,
        severity: Severity,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            severity,
            file: self.source.file.clone(),
            document: self.source.index,
            line: self.source.line,
            kind: Some(self.kind.name().to_string()),
            name: Some(self.qualified_name()),
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// `<Kind> <namespace>/<name>`, as used in messages.
    pub fn describe(&self) -> String {
        format!("{} {}", self.kind.name(), self.qualified_name())
    }

    /// `<namespace>/<name>`.
    pub fn qualified_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// A document's kind with its typed `spec`.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `networking.istio.io` `ServiceEntry`.
    ServiceEntry(ServiceEntry),
    /// `networking.istio.io` `WorkloadEntry`.
    WorkloadEntry(WorkloadEntry),
    /// `networking.istio.io` `VirtualService`.
    VirtualService(VirtualService),
    /// `networking.istio.io` `DestinationRule`.
    DestinationRule(DestinationRule),
    /// `gateway.networking.k8s.io` `HTTPRoute`.
    HttpRoute(HttpRoute),
    /// `gateway.networking.k8s.io` `GRPCRoute`, as the `HTTPRoute` it means
    /// ([`grpc_route::GrpcRoute::to_http_route`]).
    GrpcRoute(HttpRoute),
    /// `security.istio.io` `PeerAuthentication`.
    PeerAuthentication(PeerAuthentication),
    /// `security.istio.io` `AuthorizationPolicy`.
    AuthorizationPolicy(AuthorizationPolicy),
}

impl Kind {
    /// The `kind` as written in YAML.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::ServiceEntry(_) => "ServiceEntry",
            Kind::WorkloadEntry(_) => "WorkloadEntry",
            Kind::VirtualService(_) => "VirtualService",
            Kind::DestinationRule(_) => "DestinationRule",
            Kind::HttpRoute(_) => "HTTPRoute",
            Kind::GrpcRoute(_) => "GRPCRoute",
            Kind::PeerAuthentication(_) => "PeerAuthentication",
            Kind::AuthorizationPolicy(_) => "AuthorizationPolicy",
        }
    }
}

/// Everything read from a directory.
#[derive(Debug, Clone, Default)]
pub struct LoadedConfig {
    /// Accepted documents, in file then document order.
    pub documents: Vec<Document>,
    /// Problems found while reading, in the same order.
    pub diagnostics: Vec<Diagnostic>,
}

impl LoadedConfig {
    /// True when some document was rejected.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

#[cfg(test)]
mod tests;
