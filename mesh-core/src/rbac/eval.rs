//! Evaluation: what a request is, as RBAC sees it, and Envoy's decision over a chain of filters.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use super::{Permission, Policy, Principal, Rbac, RbacAction};

/// Where [`RequestFacts`] reads ordinary (non-pseudo) request headers.
pub trait HeaderSource {
    /// The value of header `name` (lower case), or `None` when absent or not visible text. A
    /// repeated header is its values joined with `,` (no spaces), as Envoy and gRPC (A41) read it.
    fn header(&self, name: &str) -> Option<Cow<'_, str>>;
}

/// A request without headers beyond the pseudo-headers.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHeaders;

impl HeaderSource for NoHeaders {
    fn header(&self, _name: &str) -> Option<Cow<'_, str>> {
        None
    }
}

/// Hop-by-hop headers: never matched (A41), whatever the transport exposes.
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "upgrade",
    "trailer",
];

/// What RBAC knows about one request, borrowed from it.
pub struct RequestFacts<'a> {
    /// `:method`.
    pub method: &'a str,
    /// `:path`: the path with its query string, as sent. [`Permission::UrlPath`] sees the part
    /// before `?`.
    pub path: &'a str,
    /// `:authority` (or `Host`). Default: none.
    pub authority: Option<&'a str>,
    /// The other request headers. Default: none.
    pub headers: &'a dyn HeaderSource,
    /// The SPIFFE ID (`spiffe://…`) of a peer authenticated by mutual TLS; `None` for plaintext.
    /// Default: none.
    pub peer: Option<&'a str>,
    /// The local port the request arrived on. Default: unknown (no port condition matches).
    pub local_port: Option<u16>,
    /// The peer's address. Default: unknown (no address condition matches).
    pub remote_ip: Option<IpAddr>,
}

impl<'a> RequestFacts<'a> {
    /// A request with `method` and `path` and nothing else known.
    pub fn new(method: &'a str, path: &'a str) -> Self {
        Self {
            method,
            path,
            authority: None,
            headers: &NoHeaders,
            peer: None,
            local_port: None,
            remote_ip: None,
        }
    }

    /// The path without query string or fragment.
    pub fn url_path(&self) -> &'a str {
        let end = self.path.find(['?', '#']).unwrap_or(self.path.len());
        &self.path[..end]
    }

    /// A header as RBAC sees it: pseudo-headers from the fields (`host` is `:authority`, as
    /// Envoy aliases them), hop-by-hop headers never, the rest from [`Self::headers`].
    pub fn header(&self, name: &str) -> Option<Cow<'a, str>> {
        match name {
            ":method" => Some(Cow::Borrowed(self.method)),
            ":path" => Some(Cow::Borrowed(self.path)),
            n if n == ":authority" || n.eq_ignore_ascii_case("host") => {
                self.authority.map(Cow::Borrowed)
            }
            n if n.starts_with(':') => None,
            n if HOP_BY_HOP.iter().any(|h| n.eq_ignore_ascii_case(h)) => None,
            n => self.headers.header(n),
        }
    }
}

impl fmt::Debug for RequestFacts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestFacts")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("authority", &self.authority)
            .field("peer", &self.peer)
            .field("local_port", &self.local_port)
            .field("remote_ip", &self.remote_ip)
            .finish_non_exhaustive()
    }
}

impl Permission {
    /// True when the request asks for what this permission describes.
    pub fn matches(&self, r: &RequestFacts<'_>) -> bool {
        match self {
            Permission::Any => true,
            Permission::And(all) => all.iter().all(|p| p.matches(r)),
            Permission::Or(any) => any.iter().any(|p| p.matches(r)),
            Permission::Not(p) => !p.matches(r),
            Permission::Header(h) => h.matches_value(r.header(&h.name).as_deref()),
            Permission::UrlPath(m) => m.matches(r.url_path()),
            Permission::DestinationPort(port) => r.local_port == Some(*port),
        }
    }
}

impl Principal {
    /// True when the request's sender is who this principal describes.
    pub fn matches(&self, r: &RequestFacts<'_>) -> bool {
        match self {
            Principal::Any => true,
            Principal::And(all) => all.iter().all(|p| p.matches(r)),
            Principal::Or(any) => any.iter().any(|p| p.matches(r)),
            Principal::Not(p) => !p.matches(r),
            Principal::Authenticated(None) => r.peer.is_some(),
            Principal::Authenticated(Some(m)) => r.peer.is_some_and(|id| m.matches(id)),
            Principal::Header(h) => h.matches_value(r.header(&h.name).as_deref()),
            Principal::UrlPath(m) => m.matches(r.url_path()),
            Principal::DirectRemoteIp(c) | Principal::RemoteIp(c) => {
                r.remote_ip.is_some_and(|ip| c.contains(ip))
            }
        }
    }
}

impl Policy {
    /// True when some permission and some principal match.
    pub fn matches(&self, r: &RequestFacts<'_>) -> bool {
        self.permissions.iter().any(|p| p.matches(r))
            && self.principals.iter().any(|p| p.matches(r))
    }
}

impl Rbac {
    /// The index of the first policy matching the request.
    pub fn first_match(&self, r: &RequestFacts<'_>) -> Option<usize> {
        self.policies.iter().position(|(_, p)| p.matches(r))
    }

    /// The name of the first policy matching the request. What that means depends on
    /// [`Rbac::action`]; [`authorize`] turns it into a decision.
    pub fn decide(&self, r: &RequestFacts<'_>) -> Option<&str> {
        self.first_match(r).map(|i| self.policies[i].0.as_str())
    }
}

/// A policy that took part in a decision: its filter's position in the chain, its position in
/// the filter, and its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyRef<'a> {
    /// Index of the filter in the chain.
    pub filter: usize,
    /// Index of the policy in [`Rbac::policies`].
    pub policy: usize,
    /// The policy's name.
    pub name: &'a str,
}

/// Allowed or denied, and by which policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision<'a> {
    /// The request may proceed. The ALLOW policy that let it through (of the first `Allow`
    /// filter), or `None` when no `Allow` filter is in the chain.
    Allowed(Option<PolicyRef<'a>>),
    /// The request is refused: by a DENY policy that matched, or (`None`) because an `Allow`
    /// filter had no policy matching it.
    Denied(Option<PolicyRef<'a>>),
}

impl<'a> Decision<'a> {
    /// True for [`Decision::Allowed`].
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed(_))
    }

    /// The policy that decided, if one did.
    pub fn policy(&self) -> Option<PolicyRef<'a>> {
        match self {
            Decision::Allowed(p) | Decision::Denied(p) => *p,
        }
    }
}

impl fmt::Display for Decision<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Allowed(Some(p)) => write!(f, "allowed by policy {}", p.name),
            Decision::Allowed(None) => f.write_str("allowed: no ALLOW policy applies"),
            Decision::Denied(Some(p)) => write!(f, "denied by policy {}", p.name),
            Decision::Denied(None) => f.write_str("denied: no ALLOW policy matched"),
        }
    }
}

/// The outcome of a chain of RBAC filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict<'a> {
    /// Allowed or denied.
    pub decision: Decision<'a>,
    /// The `Log` policies that matched, one per `Log` filter reached, in chain order. Empty
    /// (and not allocated) unless one matched.
    pub audit: Vec<PolicyRef<'a>>,
}

impl Verdict<'_> {
    /// True when the request may proceed.
    pub fn is_allowed(&self) -> bool {
        self.decision.is_allowed()
    }
}

/// Runs `filters` in chain order with Envoy's semantics: a `Deny` filter refuses a request one
/// of its policies matches; an `Allow` filter refuses a request none of its policies matches
/// (an `Allow` filter without policies refuses everything); a `Log` filter records its first
/// matching policy and never refuses. The first refusal ends the chain, so filters after it
/// (including `Log` filters) are not consulted. No filters: allowed.
///
/// Allocates nothing unless a `Log` policy matches or a matched header is repeated.
pub fn authorize<'a>(filters: &'a [Rbac], r: &RequestFacts<'_>) -> Verdict<'a> {
    let mut allowed_by = None;
    let mut audit = Vec::new();
    for (fi, f) in filters.iter().enumerate() {
        let hit = f.first_match(r).map(|pi| PolicyRef {
            filter: fi,
            policy: pi,
            name: f.policies[pi].0.as_str(),
        });
        match (f.action, hit) {
            (RbacAction::Log, Some(h)) => audit.push(h),
            (RbacAction::Log, None) | (RbacAction::Deny, None) => {}
            (RbacAction::Deny, Some(h)) => {
                return Verdict {
                    decision: Decision::Denied(Some(h)),
                    audit,
                };
            }
            (RbacAction::Allow, Some(h)) => {
                allowed_by.get_or_insert(h);
            }
            (RbacAction::Allow, None) => {
                return Verdict {
                    decision: Decision::Denied(None),
                    audit,
                };
            }
        }
    }
    Verdict {
        decision: Decision::Allowed(allowed_by),
        audit,
    }
}
