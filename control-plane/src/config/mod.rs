//! Stub until the document loader lands.
#![allow(missing_docs)]
use std::path::{Path, PathBuf};
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    pub document: usize,
    pub reason: String,
}
impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.reason)
    }
}
#[derive(Debug, Clone)]
pub struct Source {
    pub file: PathBuf,
    pub index: usize,
}
#[derive(Debug, Clone)]
pub struct Document {
    pub source: Source,
}
#[derive(Debug, Default)]
pub struct LoadedConfig {
    pub documents: Vec<Document>,
    pub diagnostics: Vec<Diagnostic>,
}
pub fn load_dir(_dir: &Path) -> LoadedConfig {
    LoadedConfig::default()
}
