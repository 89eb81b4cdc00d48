//! Value types shared by several document kinds.

use std::fmt;

use mesh_core::{Regex, StringMatch};
use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::diagnostic::Findings;

/// A TCP port number, 1–65535; anything else is refused when the document is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Port(u16);

impl Port {
    /// A port; `None` for 0.
    pub fn new(port: u16) -> Option<Self> {
        (port != 0).then_some(Self(port))
    }

    /// The number.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        u16::try_from(n)
            .ok()
            .and_then(Port::new)
            .ok_or_else(|| de::Error::custom(format!("port {n} is out of range 1–65535")))
    }
}

/// A regular expression, compiled (RE2 syntax, full match) when the document is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegexSpec(pub Regex);

impl<'de> Deserialize<'de> for RegexSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        compile_regex(&s).map(RegexSpec).map_err(de::Error::custom)
    }
}

/// Compiles an RE2-style regex for a full match; the error names the pattern and the problem on
/// one line (the regex crate's own message spans several lines).
pub(crate) fn compile_regex(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| {
        let text = e.to_string();
        let why = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim().trim_start_matches("error: ").to_string())
            .unwrap_or(text);
        format!("invalid regex {pattern:?}: {why}")
    })
}

/// Istio's `StringMatch`: at most one of `exact`, `prefix`, `regex`. Empty means "present".
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct StringMatchSpec {
    /// The whole value equals this.
    pub exact: Option<String>,
    /// The value starts with this.
    pub prefix: Option<String>,
    /// The whole value matches this RE2 regex.
    pub regex: Option<RegexSpec>,
}

impl StringMatchSpec {
    /// The model matcher; `None` when no condition is set.
    pub(crate) fn to_model(&self) -> Option<StringMatch> {
        if let Some(s) = &self.exact {
            Some(StringMatch::Exact(s.clone()))
        } else if let Some(s) = &self.prefix {
            Some(StringMatch::Prefix(s.clone()))
        } else {
            self.regex.as_ref().map(|r| StringMatch::Regex(r.0.clone()))
        }
    }

    pub(crate) fn check(&self, at: &str, f: &mut Findings) {
        let set = [
            self.exact.is_some(),
            self.prefix.is_some(),
            self.regex.is_some(),
        ];
        if set.iter().filter(|b| **b).count() > 1 {
            f.error(at, "set only one of exact, prefix, regex");
        }
    }
}

/// Istio's `Percent`: `{value: 12.5}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PercentSpec {
    /// Percentage, 0–100. Default: 0.
    pub value: f64,
}

impl PercentSpec {
    pub(crate) fn check(&self, at: &str, f: &mut Findings) {
        check_percent(self.value, &format!("{at}.value"), f);
    }
}

pub(crate) fn check_percent(value: f64, at: &str, f: &mut Findings) {
    if !(0.0..=100.0).contains(&value) {
        f.error(at, format!("{value} is not a percentage within 0–100"));
    }
}

/// Checks `host` is a DNS name we can serve: not empty, no wildcard, no scheme or port.
pub(crate) fn check_host(host: &str, at: &str, f: &mut Findings) {
    if host.is_empty() {
        f.error(at, "must not be empty");
    } else if host.contains('*') {
        f.error(at, format!("wildcard host {host:?} is not supported"));
    } else if host.contains('/') || host.contains(':') || host.contains(char::is_whitespace) {
        f.error(
            at,
            format!("{host:?} is not a host name (no scheme, port or path)"),
        );
    }
}

/// Istio's short-name rule: a host without a dot, written in `namespace`, means
/// `<host>.<namespace>.svc.cluster.local`.
pub(crate) fn fqdn(host: &str, namespace: &str) -> String {
    if host.contains('.') {
        host.to_string()
    } else {
        format!("{host}.{namespace}.svc.cluster.local")
    }
}

/// Accepted with a warning: visibility is not implemented, every config is visible everywhere.
pub(crate) fn check_export_to(export_to: &[String], f: &mut Findings) {
    if export_to.iter().any(|e| e != "*") {
        f.warn(
            "spec.exportTo",
            "field not supported, ignored: every resource is visible to every namespace",
        );
    }
}
