//! Authorization: Envoy's RBAC HTTP filter config (`envoy.extensions.filters.http.rbac.v3.RBAC`)
//! without the protobuf, as gRPC supports it (gRFC A41), and its evaluation.
//!
//! An [`Rbac`] is one RBAC filter: an [`RbacAction`] and named [`Policy`]s. A policy matches a
//! request when **any** of its [`Permission`]s (what is asked: method, path, authority, headers,
//! port) **and any** of its [`Principal`]s (who asks: the peer's SPIFFE ID, its address, headers)
//! match. A filter then decides:
//!
//! | action | a policy matches | no policy matches |
//! |---|---|---|
//! | `Allow` | allowed | **denied** (also when the filter has no policies) |
//! | `Deny` | **denied** | allowed |
//! | `Log` | allowed, the policy is reported for audit | allowed |
//!
//! A listener may hold several RBAC filters; [`authorize`] runs them in chain order as Envoy
//! does: the first filter that denies ends the evaluation, and a request passes only when every
//! filter lets it through. The control plane emits, for one workload, a `Log` filter (Istio's
//! AUDIT policies), then a `Deny` filter, then an `Allow` filter, each only when it has policies:
//! so DENY policies win over ALLOW policies, and a workload with no ALLOW policy allows whatever
//! is not denied.
//!
//! Evaluation reads a request through [`RequestFacts`], borrowed from the request, and allocates
//! nothing unless a repeated header has to be joined or a `Log` policy matches.
//!
//! ```
//! use mesh_core::StringMatch;
//! use mesh_core::rbac::{Decision, Permission, Policy, Principal, Rbac, RbacAction, RequestFacts, authorize};
//!
//! let allow_web = Rbac {
//!     action: RbacAction::Allow,
//!     policies: vec![(
//!         "default/allow-web[0]".into(),
//!         Policy {
//!             permissions: vec![Permission::Any],
//!             principals: vec![Principal::Authenticated(Some(StringMatch::Exact(
//!                 "spiffe://cluster.local/ns/default/sa/web".into(),
//!             )))],
//!         },
//!     )],
//! };
//! let filters = [allow_web];
//! let mut facts = RequestFacts::new("GET", "/reviews/1");
//! facts.peer = Some("spiffe://cluster.local/ns/default/sa/web");
//! assert!(authorize(&filters, &facts).is_allowed());
//! facts.peer = Some("spiffe://cluster.local/ns/default/sa/batch");
//! assert!(matches!(authorize(&filters, &facts).decision, Decision::Denied(None)));
//! ```

mod cidr;
mod eval;
mod validate;

use serde::Serialize;

use crate::matcher::StringMatch;
use crate::route::HeaderMatch;

pub use cidr::{Cidr, CidrError};
pub use eval::{Decision, HeaderSource, NoHeaders, PolicyRef, RequestFacts, Verdict, authorize};

/// One RBAC filter (`envoy.config.rbac.v3.RBAC` inside the HTTP filter's `rules`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rbac {
    /// What a matching policy does.
    pub action: RbacAction,
    /// Named policies, unique names. They are tried in this order and the first match is the one
    /// reported. The wire form is a map, which Envoy and gRPC walk in name order; the decoder
    /// and the control plane keep names sorted, so every reader reports the same policy.
    pub policies: Vec<(String, Policy)>,
}

impl Rbac {
    /// A filter with `action` and no policies: for `Allow` it denies everything, for `Deny` and
    /// `Log` it does nothing.
    pub fn new(action: RbacAction) -> Self {
        Self {
            action,
            policies: Vec::new(),
        }
    }
}

/// `RBAC.Action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RbacAction {
    /// Only requests that some policy matches pass.
    Allow,
    /// Requests that some policy matches are refused.
    Deny,
    /// Every request passes; matches are reported for audit logging (Istio's AUDIT). gRPC
    /// ignores such filters entirely (A41); Envoy and this library never let them change a
    /// decision.
    Log,
}

impl RbacAction {
    /// `ALLOW`, `DENY` or `LOG`.
    pub fn as_str(self) -> &'static str {
        match self {
            RbacAction::Allow => "ALLOW",
            RbacAction::Deny => "DENY",
            RbacAction::Log => "LOG",
        }
    }
}

/// A policy (`envoy.config.rbac.v3.Policy`): it matches when any permission and any principal
/// match. Both lists must be non-empty, as Envoy requires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// What is asked; any one matching is enough.
    pub permissions: Vec<Permission>,
    /// Who asks; any one matching is enough.
    pub principals: Vec<Principal>,
}

impl Policy {
    /// A policy that matches no request (Istio's "allow nothing"): `not any` on both sides.
    pub fn never() -> Self {
        Self {
            permissions: vec![Permission::Not(Box::new(Permission::Any))],
            principals: vec![Principal::Not(Box::new(Principal::Any))],
        }
    }
}

/// A condition on what the request asks for (`envoy.config.rbac.v3.Permission`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Every request.
    Any,
    /// All of these; at least one.
    And(Vec<Permission>),
    /// Any of these; at least one.
    Or(Vec<Permission>),
    /// The inverse.
    Not(Box<Permission>),
    /// A request header. `:method`, `:path` (with the query), `:authority` (also reachable as
    /// `host`) are pseudo-headers. `:scheme` and `grpc-*` names are refused (A41).
    Header(HeaderMatch),
    /// The path without the query string.
    UrlPath(StringMatch),
    /// The local port the request arrived on; a request whose port is unknown never matches.
    DestinationPort(u16),
}

/// A condition on who sends the request (`envoy.config.rbac.v3.Principal`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Principal {
    /// Everyone, including plaintext peers.
    Any,
    /// All of these; at least one.
    And(Vec<Principal>),
    /// Any of these; at least one.
    Or(Vec<Principal>),
    /// The inverse.
    Not(Box<Principal>),
    /// A peer authenticated by mutual TLS whose SPIFFE ID (the URI SAN, `spiffe://…`) matches;
    /// `None` matches any authenticated peer. A plaintext peer never matches (Envoy).
    Authenticated(Option<StringMatch>),
    /// A request header, as in [`Permission::Header`].
    Header(HeaderMatch),
    /// The path without the query string.
    UrlPath(StringMatch),
    /// The address of the connection's peer.
    DirectRemoteIp(Cidr),
    /// The client's address; the same as the peer's, since neither `x-forwarded-for` nor the
    /// PROXY protocol is trusted (A41).
    RemoteIp(Cidr),
}

#[cfg(test)]
mod tests;
