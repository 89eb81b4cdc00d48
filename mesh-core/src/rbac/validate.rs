//! The rules an RBAC filter must follow beyond its Rust type: Envoy's proto constraints and the
//! header restrictions of gRFC A41.

use std::collections::HashSet;

use super::{Permission, Principal, Rbac};
use crate::matcher::StringMatch;
use crate::route::{HeaderMatch, http_name_invalid};
use crate::validate::{FieldErrors, Validate};

impl Validate for Rbac {
    fn validate(&self) -> Result<(), FieldErrors> {
        let mut errs = FieldErrors::default();
        let mut names = HashSet::new();
        for (i, (name, policy)) in self.policies.iter().enumerate() {
            let at = format!("policies[{i}]");
            if name.is_empty() {
                errs.push(format!("{at}.name"), "must not be empty");
            } else if !names.insert(name.as_str()) {
                errs.push(format!("{at}.name"), format!("duplicate policy {name:?}"));
            }
            if policy.permissions.is_empty() {
                errs.push(
                    format!("{at}.permissions"),
                    "must hold at least one permission (use `any` to match every request)",
                );
            }
            if policy.principals.is_empty() {
                errs.push(
                    format!("{at}.principals"),
                    "must hold at least one principal (use `any` to match every sender)",
                );
            }
            for (j, p) in policy.permissions.iter().enumerate() {
                permission(p, &format!("{at}.permissions[{j}]"), &mut errs);
            }
            for (j, p) in policy.principals.iter().enumerate() {
                principal(p, &format!("{at}.principals[{j}]"), &mut errs);
            }
        }
        errs.into_result()
    }
}

fn permission(p: &Permission, at: &str, errs: &mut FieldErrors) {
    match p {
        Permission::Any | Permission::DestinationPort(_) => {}
        Permission::And(v) | Permission::Or(v) => {
            let which = if matches!(p, Permission::And(_)) {
                "and"
            } else {
                "or"
            };
            if v.is_empty() {
                errs.push(format!("{at}.{which}"), "must hold at least one rule");
            }
            for (i, q) in v.iter().enumerate() {
                permission(q, &format!("{at}.{which}[{i}]"), errs);
            }
        }
        Permission::Not(q) => permission(q, &format!("{at}.not"), errs),
        Permission::Header(h) => header(h, &format!("{at}.header"), errs),
        Permission::UrlPath(m) => non_empty(m, &format!("{at}.url_path"), errs),
    }
}

fn principal(p: &Principal, at: &str, errs: &mut FieldErrors) {
    match p {
        Principal::Any
        | Principal::Authenticated(None)
        | Principal::DirectRemoteIp(_)
        | Principal::RemoteIp(_) => {}
        Principal::And(v) | Principal::Or(v) => {
            let which = if matches!(p, Principal::And(_)) {
                "and"
            } else {
                "or"
            };
            if v.is_empty() {
                errs.push(format!("{at}.{which}"), "must hold at least one rule");
            }
            for (i, q) in v.iter().enumerate() {
                principal(q, &format!("{at}.{which}[{i}]"), errs);
            }
        }
        Principal::Not(q) => principal(q, &format!("{at}.not"), errs),
        Principal::Authenticated(Some(m)) => {
            non_empty(m, &format!("{at}.authenticated"), errs);
        }
        Principal::Header(h) => header(h, &format!("{at}.header"), errs),
        Principal::UrlPath(m) => non_empty(m, &format!("{at}.url_path"), errs),
    }
}

/// Header names RBAC may test: valid names, and not `:scheme` nor `grpc-*`, which gRPC does not
/// expose as metadata (A41 makes them a validation failure).
fn header(h: &HeaderMatch, at: &str, errs: &mut FieldErrors) {
    let name = h.name.as_str();
    if http_name_invalid(name) {
        errs.push(
            format!("{at}.name"),
            format!("{name:?} is not a valid header name"),
        );
    } else if name.eq_ignore_ascii_case(":scheme") || name.to_ascii_lowercase().starts_with("grpc-")
    {
        errs.push(
            format!("{at}.name"),
            format!("{name:?} cannot be matched: gRPC servers do not see it (gRFC A41)"),
        );
    }
}

/// Envoy refuses empty prefixes, suffixes and substrings in these matchers (they would match
/// everything; `any` says so explicitly).
fn non_empty(m: &StringMatch, at: &str, errs: &mut FieldErrors) {
    if let StringMatch::Prefix(s) | StringMatch::Suffix(s) | StringMatch::Contains(s) = m
        && s.is_empty()
    {
        errs.push(
            at,
            "an empty prefix, suffix or substring matches everything; use `any` instead",
        );
    }
}
