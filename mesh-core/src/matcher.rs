//! String and regex matchers with Envoy's `StringMatcher` meaning.

use std::fmt;

use serde::{Serialize, Serializer};

/// A compiled regular expression that compares and prints as its source text.
///
/// Envoy uses RE2; the `regex` crate accepts the same syntax minus a few RE2 extensions and, like
/// RE2, guarantees linear-time matching.
#[derive(Clone)]
pub struct Regex(regex::Regex);

impl Regex {
    /// Compiles `pattern`, anchored at both ends as Envoy's `safe_regex` full-match semantics require.
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        // Validate the pattern as written first so the error points at the user's text.
        regex::Regex::new(pattern)?;
        regex::Regex::new(&format!("^(?:{pattern})$")).map(Self)
    }

    /// The pattern as written by the user.
    pub fn as_str(&self) -> &str {
        let s = self.0.as_str();
        &s[4..s.len() - 2]
    }

    /// True when the whole of `text` matches.
    #[inline]
    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

impl PartialEq for Regex {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Regex {}

impl fmt::Debug for Regex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Regex({:?})", self.as_str())
    }
}

impl Serialize for Regex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Envoy's `StringMatcher`: how a header value, query parameter or SAN is compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StringMatch {
    /// The whole value equals this string.
    Exact(String),
    /// The value starts with this string.
    Prefix(String),
    /// The value ends with this string.
    Suffix(String),
    /// The value contains this string.
    Contains(String),
    /// The whole value matches this regex.
    Regex(Regex),
}

impl StringMatch {
    /// True when `value` matches.
    #[inline]
    pub fn matches(&self, value: &str) -> bool {
        match self {
            StringMatch::Exact(s) => value == s,
            StringMatch::Prefix(s) => value.starts_with(s.as_str()),
            StringMatch::Suffix(s) => value.ends_with(s.as_str()),
            StringMatch::Contains(s) => value.contains(s.as_str()),
            StringMatch::Regex(r) => r.is_match(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_is_a_full_match_and_keeps_its_source() {
        let r = Regex::new("/api/v[0-9]+").unwrap();
        assert!(r.is_match("/api/v2"));
        assert!(!r.is_match("/api/v2/x"));
        assert_eq!(r.as_str(), "/api/v[0-9]+");
        assert!(Regex::new("(").is_err());
    }

    #[test]
    fn string_matchers() {
        assert!(StringMatch::Prefix("ab".into()).matches("abc"));
        assert!(StringMatch::Suffix("bc".into()).matches("abc"));
        assert!(StringMatch::Contains("b".into()).matches("abc"));
        assert!(!StringMatch::Exact("ab".into()).matches("abc"));
    }
}
