//! Problems found in config documents, located by file, document and field.

use std::fmt;
use std::path::PathBuf;

/// How bad a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The document is rejected; every other document still applies.
    Error,
    /// The document applies, but something in it (usually an unsupported field) is ignored.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem in one document.
///
/// Displays as
/// `config/routes.yaml: document 2 (VirtualService default/reviews), field spec.http[0].route[1].weight: weights sum to zero`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error rejects the document; warning does not.
    pub severity: Severity,
    /// The file the document came from.
    pub file: PathBuf,
    /// Index of the document in its file, counting non-empty documents from 0.
    pub document: usize,
    /// 1-based line: of the offending text when the YAML parser knows it, else of the document.
    pub line: usize,
    /// The document's `kind`, when it could be read.
    pub kind: Option<String>,
    /// The document's `namespace/name`, when it could be read.
    pub name: Option<String>,
    /// Path of the field in the document, e.g. `spec.http[0].timeout`; empty for the whole document.
    pub field: String,
    /// What is wrong, in words a user can act on.
    pub reason: String,
}

impl Diagnostic {
    /// True for [`Severity::Error`].
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document {}", self.file.display(), self.document)?;
        match (&self.kind, &self.name) {
            (Some(k), Some(n)) => write!(f, " ({k} {n})")?,
            (Some(k), None) => write!(f, " ({k})")?,
            (None, Some(n)) => write!(f, " ({n})")?,
            (None, None) => {}
        }
        if !self.field.is_empty() {
            write!(f, ", field {}", self.field)?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// Problems found while checking one document, before they are given the document's location.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub(crate) items: Vec<(Severity, String, String)>,
}

impl Findings {
    /// Records an error at `field`.
    pub(crate) fn error(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.items
            .push((Severity::Error, field.into(), reason.into()));
    }

    /// Records a warning at `field`.
    pub(crate) fn warn(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.items
            .push((Severity::Warning, field.into(), reason.into()));
    }

    /// True when an error was recorded.
    pub(crate) fn has_errors(&self) -> bool {
        self.items.iter().any(|(s, _, _)| *s == Severity::Error)
    }
}
