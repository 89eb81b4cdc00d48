//! Istio's value syntax in authorization rules, mapped to RBAC matchers exactly as istiod does.
//!
//! Strings: `*` alone (present / any), `*suffix`, `prefix*`, otherwise exact. Paths add the
//! templates `{*}` (one segment) and a final `{**}` (the rest), which become regexes with the
//! meaning of Envoy's `uri_template` matcher (a regex is what gRPC can evaluate).

use mesh_core::rbac::{Cidr, Principal};
use mesh_core::route::HeaderMatch;
use mesh_core::{Regex, StringMatch};

/// Characters of a path segment (RFC 3986 `pchar`), as Envoy's URI templates define a segment.
const PCHAR: &str = "-a-zA-Z0-9._~%!$&'()+,;:@=";

/// The trust domain that, in a principal, stands for the mesh's own (Istio's rule).
const LOCAL_TRUST_DOMAIN: &str = "cluster.local";

/// An Istio string value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pattern<'a> {
    /// `*`: any value.
    Any,
    /// `prefix*`.
    Prefix(&'a str),
    /// `*suffix`.
    Suffix(&'a str),
    /// Anything else, compared whole.
    Exact(&'a str),
}

impl<'a> Pattern<'a> {
    /// Istio's reading; a leading `*` wins over a trailing one (`*a*` is the suffix `a*`).
    pub(super) fn of(v: &'a str) -> Self {
        if v == "*" {
            Pattern::Any
        } else if let Some(s) = v.strip_prefix('*') {
            Pattern::Suffix(s)
        } else if let Some(p) = v.strip_suffix('*') {
            Pattern::Prefix(p)
        } else {
            Pattern::Exact(v)
        }
    }

    /// The literal part.
    fn text(self) -> &'a str {
        match self {
            Pattern::Any => "",
            Pattern::Prefix(s) | Pattern::Suffix(s) | Pattern::Exact(s) => s,
        }
    }

    /// True when a `*` is left inside the literal part: Istio compares it literally.
    pub(super) fn has_inner_star(self) -> bool {
        self.text().contains('*')
    }

    /// The model matcher; `None` for [`Pattern::Any`].
    fn string_match(self) -> Option<StringMatch> {
        match self {
            Pattern::Any => None,
            Pattern::Prefix(p) => Some(StringMatch::Prefix(p.to_owned())),
            Pattern::Suffix(s) => Some(StringMatch::Suffix(s.to_owned())),
            Pattern::Exact(e) => Some(StringMatch::Exact(e.to_owned())),
        }
    }
}

fn regex(pattern: &str) -> StringMatch {
    // Every pattern here is built from escaped literals and fixed classes.
    StringMatch::Regex(Regex::new(pattern).expect("generated regex compiles"))
}

/// A header condition (`methods`, `request.headers[…]`): `*` means present.
pub(super) fn header(name: &str, v: &str) -> HeaderMatch {
    HeaderMatch {
        name: name.to_ascii_lowercase(),
        value: Pattern::of(v).string_match(),
        invert: false,
    }
}

/// A `hosts` value: `:authority`, compared case-insensitively (Istio's `HostMatcher`).
pub(super) fn host(v: &str) -> HeaderMatch {
    let ci = |s: &str| format!("(?i:{})", regex::escape(s));
    let value = match Pattern::of(v) {
        Pattern::Any => None,
        Pattern::Prefix(p) => Some(regex(&format!("{}.*", ci(p)))),
        Pattern::Suffix(s) => Some(regex(&format!(".*{}", ci(s)))),
        Pattern::Exact(e) => Some(regex(&ci(e))),
    };
    HeaderMatch {
        name: ":authority".into(),
        value,
        invert: false,
    }
}

/// A `principals` / `source.principal` value, `<trust-domain>/ns/<ns>/sa/<sa>` matched against
/// the peer's `spiffe://` ID. `*` is any authenticated peer; `cluster.local` stands for the
/// mesh's `trust_domain`.
pub(super) fn principal(v: &str, trust_domain: &str) -> Principal {
    let local = |s: &str| match s.strip_prefix(LOCAL_TRUST_DOMAIN) {
        Some(rest) if rest.starts_with('/') => format!("{trust_domain}{rest}"),
        _ => s.to_owned(),
    };
    let m = match Pattern::of(v) {
        Pattern::Any => return Principal::Authenticated(None),
        Pattern::Prefix(p) => StringMatch::Prefix(format!("spiffe://{}", local(p))),
        Pattern::Suffix(s) => regex(&format!("spiffe://.*{}", regex::escape(s))),
        Pattern::Exact(e) => StringMatch::Exact(format!("spiffe://{}", local(e))),
    };
    Principal::Authenticated(Some(m))
}

/// A `namespaces` / `source.namespace` value: a regex on the `/ns/<namespace>/` part of the
/// peer's SPIFFE ID, where every `*` is a wildcard within the segment (Istio's
/// `.*/ns/<ns>/.*`).
pub(super) fn namespace(v: &str) -> Principal {
    let ns = v
        .split('*')
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join("[^/]*");
    Principal::Authenticated(Some(regex(&format!(".*/ns/{ns}/.*"))))
}

/// A `serviceAccounts` value: `<sa>` of `policy_namespace`, or `<ns>/<sa>`; no wildcards.
pub(super) fn service_account(v: &str, policy_namespace: &str) -> Result<Principal, String> {
    if v.contains('*') {
        return Err(format!(
            "{v:?}: wildcards are not allowed in service accounts"
        ));
    }
    let (ns, sa) = match v.split_once('/') {
        Some((ns, sa)) => (ns, sa),
        None => (policy_namespace, v),
    };
    if ns.is_empty() || sa.is_empty() || sa.contains('/') {
        return Err(format!(
            "{v:?} is not `<serviceAccount>` or `<namespace>/<serviceAccount>`"
        ));
    }
    let pattern = format!(
        "spiffe://[^/]+/ns/{}/sa/{}",
        regex::escape(ns),
        regex::escape(sa)
    );
    Ok(Principal::Authenticated(Some(regex(&pattern))))
}

/// A `paths` value. Errors say why the pattern is refused.
pub(super) fn path(v: &str) -> Result<StringMatch, String> {
    if v.contains(['{', '}']) {
        return template(v);
    }
    let p = Pattern::of(v);
    if p.has_inner_star() {
        return Err(format!(
            "path pattern {v:?}: '*' is a wildcard only as the whole pattern, its first character (suffix match) or its last (prefix match); use {{*}} for one segment or a final {{**}} for the rest of the path"
        ));
    }
    Ok(p.string_match().unwrap_or_else(|| regex(".+")))
}

/// A path template: `/`-separated segments, each a literal, `{*}` (one segment) or, last only,
/// `{**}` (the rest: zero or more segments).
fn template(v: &str) -> Result<StringMatch, String> {
    let Some(rest) = v.strip_prefix('/') else {
        return Err(format!("path template {v:?} must start with '/'"));
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let one = format!("[{PCHAR}]+");
    let any = format!("[{PCHAR}/]*");
    let mut pattern = String::new();
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        pattern.push('/');
        match *seg {
            "{*}" => pattern.push_str(&one),
            "{**}" if last => pattern.push_str(&any),
            "{**}" => {
                return Err(format!(
                    "path template {v:?}: {{**}} matches the rest of the path, so it must be the last segment"
                ));
            }
            "" if last => {}
            "" => return Err(format!("path template {v:?}: empty segment ('//')")),
            s if s.contains(['{', '}']) => {
                return Err(format!(
                    "path template {v:?}: segment {s:?} has '{{' or '}}' outside a whole-segment {{*}} or {{**}}"
                ));
            }
            s if !s.bytes().all(is_pchar) => {
                return Err(format!(
                    "path template {v:?}: segment {s:?} has characters a template segment may not hold ('*' is not a wildcard in templates; use {{*}})"
                ));
            }
            s => pattern.push_str(&regex::escape(s)),
        }
    }
    Ok(regex(&pattern))
}

fn is_pchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~%!$&'()+,;:@=".contains(&b)
}

/// A port value, 1–65535.
pub(super) fn port(v: &str) -> Result<u16, String> {
    match v.parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(format!("{v:?} is not a port (1–65535)")),
    }
}

/// An address or CIDR range.
pub(super) fn cidr(v: &str) -> Result<Cidr, String> {
    v.parse::<Cidr>().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(m: &StringMatch, s: &str) -> bool {
        m.matches(s)
    }

    #[test]
    fn path_templates_are_segment_wise() {
        let one = path("/api/{*}/items").unwrap();
        assert!(matches(&one, "/api/v1/items"));
        assert!(!matches(&one, "/api/v1/x/items"));
        assert!(!matches(&one, "/api//items"));
        let rest = path("/static/{**}").unwrap();
        assert!(matches(&rest, "/static/"));
        assert!(matches(&rest, "/static/css/site.css"));
        assert!(!matches(&rest, "/static"));
        assert!(!matches(&rest, "/other/x"));
        let both = path("/{*}/v1/{**}").unwrap();
        assert!(matches(&both, "/shop/v1/a/b"));
        assert!(!matches(&both, "/shop/v2/a"));
        assert!(matches(&path("/a.b/{*}/").unwrap(), "/a.b/x/"));
        assert!(
            !matches(&path("/a.b/{*}").unwrap(), "/aXb/x"),
            "literal dots"
        );
    }

    #[test]
    fn invalid_path_patterns_say_why() {
        for (bad, why) in [
            ("/a*b", "only as the whole pattern"),
            ("*/admin*", "only as the whole pattern"),
            ("/api/**", "only as the whole pattern"),
            ("/{**}/x", "must be the last segment"),
            ("/{**}/{*}", "must be the last segment"),
            ("/x{*}", "outside a whole-segment"),
            ("/{id}", "outside a whole-segment"),
            ("/a/{*", "outside a whole-segment"),
            ("/a/*/{*}", "'*' is not a wildcard in templates"),
            ("/a//{*}", "empty segment"),
            ("{*}/a", "must start with '/'"),
        ] {
            let e = path(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }

    #[test]
    fn plain_paths() {
        assert_eq!(path("/x").unwrap(), StringMatch::Exact("/x".into()));
        assert_eq!(path("/x/*").unwrap(), StringMatch::Prefix("/x/".into()));
        assert_eq!(path("*.png").unwrap(), StringMatch::Suffix(".png".into()));
        assert!(matches(&path("*").unwrap(), "/anything"));
    }

    #[test]
    fn principals_hosts_namespaces() {
        let Principal::Authenticated(Some(m)) = principal("cluster.local/ns/a/sa/b", "mesh.local")
        else {
            panic!()
        };
        assert_eq!(
            m,
            StringMatch::Exact("spiffe://mesh.local/ns/a/sa/b".into())
        );
        assert_eq!(principal("*", "td"), Principal::Authenticated(None));
        let Principal::Authenticated(Some(m)) = principal("*/sa/b", "td") else {
            panic!()
        };
        assert!(m.matches("spiffe://td/ns/a/sa/b") && !m.matches("spiffe://td/ns/a/sa/bb"));
        let Principal::Authenticated(Some(m)) = principal("other.td/ns/a/*", "td") else {
            panic!()
        };
        assert_eq!(m, StringMatch::Prefix("spiffe://other.td/ns/a/".into()));

        let h = host("Reviews.example.com");
        let m = h.value.unwrap();
        assert!(m.matches("reviews.EXAMPLE.com") && !m.matches("reviewsXexample.com"));
        assert!(
            host("*.example.com")
                .value
                .unwrap()
                .matches("a.Example.com")
        );
        assert!(host("*").value.is_none());

        let Principal::Authenticated(Some(m)) = namespace("test-*") else {
            panic!()
        };
        assert!(m.matches("spiffe://td/ns/test-1/sa/x"));
        assert!(!m.matches("spiffe://td/ns/prod/sa/test-1"));
        let Principal::Authenticated(Some(m)) = service_account("web", "shop").unwrap() else {
            panic!()
        };
        assert!(
            m.matches("spiffe://td/ns/shop/sa/web") && !m.matches("spiffe://td/ns/shop/sa/web2")
        );
        assert!(service_account("a/b/c", "x").is_err());
        assert!(service_account("web-*", "x").is_err());
        assert_eq!(port("8080"), Ok(8080));
        assert!(port("0").is_err() && port("http").is_err() && port("70000").is_err());
        assert!(cidr("10.0.0.0/8").is_ok() && cidr("10.0.0.0/40").is_err());
    }
}
