//! RBAC HTTP filter configs: [`mesh_core::rbac::Rbac`] as
//! `envoy.extensions.filters.http.rbac.v3.RBAC`, the standard form Envoy and gRPC (A41) enforce.

use envoy_types::pb::envoy::config::core::v3::CidrRange;
use envoy_types::pb::envoy::config::rbac::v3::{
    Permission as PbPermission, Policy as PbPolicy, Principal as PbPrincipal, permission,
    principal, rbac::Action,
};
use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::Rbac as PbHttpRbac;
use envoy_types::pb::envoy::r#type::matcher::v3::{
    PathMatcher, RegexMatcher, StringMatcher, path_matcher, string_matcher::MatchPattern,
};
use envoy_types::pb::google::protobuf::Any;
use mesh_core::StringMatch;
use mesh_core::rbac::{Cidr, Permission, Policy, Principal, Rbac, RbacAction};
use prost::Message;

use super::route::{header_matcher, value_matcher};
use super::u32v;

/// The filter name Envoy and Istio give the RBAC HTTP filter.
pub const RBAC_FILTER_NAME: &str = "envoy.filters.http.rbac";
/// Type URL of `envoy.extensions.filters.http.rbac.v3.RBAC`, the filter's `typed_config`.
pub const RBAC_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC";

/// Encodes one RBAC filter as the `typed_config` of an `HttpFilter` (name it
/// [`RBAC_FILTER_NAME`]): `rules` only, no shadow rules, no stat prefixes.
///
/// The bytes are deterministic: the `policies` map is written in name order (prost would write a
/// `HashMap` in a random order, and every re-encoding would then look like a new resource
/// version). Decoding them with [`rbac_filter_config`]'s message type gives the same proto.
pub fn encode_rbac(r: &Rbac) -> Any {
    let mut entries: Vec<PolicyEntry> = r
        .policies
        .iter()
        .map(|(name, p)| PolicyEntry {
            key: name.clone(),
            value: Some(policy(p)),
        })
        .collect();
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    let msg = SortedHttpRbac {
        rules: Some(SortedRules {
            action: action(r.action) as i32,
            policies: entries,
        }),
    };
    Any {
        type_url: RBAC_TYPE.to_owned(),
        value: msg.encode_to_vec(),
    }
}

/// The filter config as the Envoy proto, for callers that build their own messages. Prefer
/// [`encode_rbac`] for anything hashed or compared: this proto holds its policies in a `HashMap`.
pub fn rbac_filter_config(r: &Rbac) -> PbHttpRbac {
    PbHttpRbac {
        rules: Some(envoy_types::pb::envoy::config::rbac::v3::Rbac {
            action: action(r.action) as i32,
            policies: r
                .policies
                .iter()
                .map(|(name, p)| (name.clone(), policy(p)))
                .collect(),
            audit_logging_options: None,
        }),
        ..Default::default()
    }
}

/// `envoy.extensions.filters.http.rbac.v3.RBAC` with only `rules` (tag 1), wire-compatible.
#[derive(Clone, PartialEq, Message)]
struct SortedHttpRbac {
    #[prost(message, optional, tag = "1")]
    rules: Option<SortedRules>,
}

/// `envoy.config.rbac.v3.RBAC` with the `policies` map (tag 2) as the repeated entry messages
/// protobuf defines a map to be on the wire, in a chosen order.
#[derive(Clone, PartialEq, Message)]
struct SortedRules {
    #[prost(int32, tag = "1")]
    action: i32,
    #[prost(message, repeated, tag = "2")]
    policies: Vec<PolicyEntry>,
}

/// One `map<string, Policy>` entry.
#[derive(Clone, PartialEq, Message)]
struct PolicyEntry {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(message, optional, tag = "2")]
    value: Option<PbPolicy>,
}

fn action(a: RbacAction) -> Action {
    match a {
        RbacAction::Allow => Action::Allow,
        RbacAction::Deny => Action::Deny,
        RbacAction::Log => Action::Log,
    }
}

fn policy(p: &Policy) -> PbPolicy {
    PbPolicy {
        permissions: p.permissions.iter().map(permission).collect(),
        principals: p.principals.iter().map(principal).collect(),
        ..Default::default()
    }
}

fn permission(p: &Permission) -> PbPermission {
    use permission::{Rule, Set};
    let rule = match p {
        Permission::Any => Rule::Any(true),
        Permission::And(v) => Rule::AndRules(Set {
            rules: v.iter().map(permission).collect(),
        }),
        Permission::Or(v) => Rule::OrRules(Set {
            rules: v.iter().map(permission).collect(),
        }),
        Permission::Not(q) => Rule::NotRule(Box::new(permission(q))),
        Permission::Header(h) => Rule::Header(header_matcher(h)),
        Permission::UrlPath(m) => Rule::UrlPath(path(m)),
        Permission::DestinationPort(port) => Rule::DestinationPort(u32::from(*port)),
    };
    PbPermission { rule: Some(rule) }
}

fn principal(p: &Principal) -> PbPrincipal {
    use principal::{Authenticated, Identifier, Set};
    let id = match p {
        Principal::Any => Identifier::Any(true),
        Principal::And(v) => Identifier::AndIds(Set {
            ids: v.iter().map(principal).collect(),
        }),
        Principal::Or(v) => Identifier::OrIds(Set {
            ids: v.iter().map(principal).collect(),
        }),
        Principal::Not(q) => Identifier::NotId(Box::new(principal(q))),
        // An empty prefix, suffix or substring (which validation refuses) matches any
        // authenticated peer: that is what an absent `principal_name` says.
        Principal::Authenticated(m) => Identifier::Authenticated(Authenticated {
            principal_name: value_matcher(m.as_ref()),
        }),
        Principal::Header(h) => Identifier::Header(header_matcher(h)),
        Principal::UrlPath(m) => Identifier::UrlPath(path(m)),
        Principal::DirectRemoteIp(c) => Identifier::DirectRemoteIp(cidr(c)),
        Principal::RemoteIp(c) => Identifier::RemoteIp(cidr(c)),
    };
    PbPrincipal {
        identifier: Some(id),
    }
}

/// A `PathMatcher`. Envoy refuses an empty prefix, suffix or substring (validation refuses them
/// too); such a matcher, meaning "every path", is written as the regex `.*`.
fn path(m: &StringMatch) -> PathMatcher {
    let matcher = value_matcher(Some(m)).unwrap_or_else(|| StringMatcher {
        match_pattern: Some(MatchPattern::SafeRegex(RegexMatcher {
            regex: ".*".to_owned(),
            engine_type: None,
        })),
        ignore_case: false,
    });
    PathMatcher {
        rule: Some(path_matcher::Rule::Path(matcher)),
    }
}

fn cidr(c: &Cidr) -> CidrRange {
    CidrRange {
        address_prefix: c.addr().to_string(),
        prefix_len: Some(u32v(u32::from(c.prefix_len()))),
    }
}

#[cfg(test)]
mod tests;
