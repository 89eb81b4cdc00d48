//! One Istio rule → one RBAC policy, with istiod's structure: the permissions are the `to`
//! items (any), the principals the `from` items (any); inside an item every field is a
//! condition (all), a field's values are alternatives (any) and its `not…` values exclusions;
//! the `when` conditions join every item on their side.

use mesh_core::rbac::{Permission, Policy, Principal};

use super::values::{self, Pattern};
use super::{Condition, Operation, Rule, Source, Text};
use crate::config::diagnostic::Findings;

/// Condition keys that are supported, for messages.
const KEYS: &str = "request.headers[<name>], source.principal, source.namespace, source.ip, remote.ip, destination.port";

/// Compiles `rule` (at field `at`, in a policy of `namespace`) for a mesh whose trust domain is
/// `trust_domain`. Problems are recorded in `f`; the policy returned is meaningful only when
/// none is an error.
pub(crate) fn compile_rule(
    rule: &Rule,
    at: &str,
    namespace: &str,
    trust_domain: &str,
    f: &mut Findings,
) -> Policy {
    let mut when_perm = Vec::new();
    let mut when_prin = Vec::new();
    for (i, c) in rule.when.iter().enumerate() {
        condition(
            c,
            &format!("{at}.when[{i}]"),
            trust_domain,
            &mut when_perm,
            &mut when_prin,
            f,
        );
    }

    let principals = clauses(
        rule.from.as_deref(),
        &format!("{at}.from"),
        "source",
        &when_prin,
        f,
        |item, at, f| {
            let s = item.source.as_ref()?;
            Some(source(s, at, namespace, trust_domain, f))
        },
    );
    let permissions = clauses(
        rule.to.as_deref(),
        &format!("{at}.to"),
        "operation",
        &when_perm,
        f,
        |item, at, f| Some(operation(item.operation.as_ref()?, at, f)),
    );

    Policy {
        permissions,
        principals,
    }
}

/// One side of a rule (`from` or `to` at `list`): absent, one clause of the `when` terms;
/// empty, an error; else one clause per item — its `inner` field compiled by `compile` (`None`
/// when the field is missing, an error) and ANDed with the `when` terms.
fn clauses<I, T: Term + Clone>(
    items: Option<&[I]>,
    list: &str,
    inner: &str,
    when: &[T],
    f: &mut Findings,
    mut compile: impl FnMut(&I, &str, &mut Findings) -> Option<Vec<T>>,
) -> Vec<T> {
    match items {
        None => vec![all(when.to_vec())],
        Some([]) => {
            f.error(list, "must not be empty when given");
            vec![T::any()]
        }
        Some(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let at = format!("{list}[{i}].{inner}");
                let mut terms = compile(item, &at, f).unwrap_or_else(|| {
                    f.error(&at, "required");
                    Vec::new()
                });
                terms.extend(when.iter().cloned());
                all(terms)
            })
            .collect(),
    }
}

/// What permissions and principals have in common: the combinators.
trait Term: Sized {
    fn any() -> Self;
    fn and(all: Vec<Self>) -> Self;
    fn or(any: Vec<Self>) -> Self;
    fn not(self) -> Self;
}

impl Term for Permission {
    fn any() -> Self {
        Permission::Any
    }
    fn and(all: Vec<Self>) -> Self {
        Permission::And(all)
    }
    fn or(any: Vec<Self>) -> Self {
        Permission::Or(any)
    }
    fn not(self) -> Self {
        Permission::Not(Box::new(self))
    }
}

impl Term for Principal {
    fn any() -> Self {
        Principal::Any
    }
    fn and(all: Vec<Self>) -> Self {
        Principal::And(all)
    }
    fn or(any: Vec<Self>) -> Self {
        Principal::Or(any)
    }
    fn not(self) -> Self {
        Principal::Not(Box::new(self))
    }
}

/// All of `terms`: `any` when there are none, the term itself when there is one.
fn all<T: Term>(mut terms: Vec<T>) -> T {
    match terms.len() {
        0 => T::any(),
        1 => terms.pop().unwrap_or_else(T::any),
        _ => T::and(terms),
    }
}

/// Any of `terms` (at least one): the term itself when there is one.
fn any_of<T: Term>(mut terms: Vec<T>) -> T {
    if terms.len() == 1 {
        terms.remove(0)
    } else {
        T::or(terms)
    }
}

/// Adds the terms of one field: its values (one must match) and its `not` values (none may).
fn field<T: Term, V: AsRef<str>>(
    terms: &mut Vec<T>,
    at: &str,
    (name, values): (&str, &[V]),
    (not_name, not_values): (&str, &[V]),
    f: &mut Findings,
    mut one: impl FnMut(&str, &str, &mut Findings) -> Option<T>,
) {
    let mut compile = |field: &str, vals: &[V], f: &mut Findings| -> Vec<T> {
        vals.iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let v = v.as_ref();
                let at = format!("{at}.{field}[{i}]");
                if v.is_empty() {
                    f.error(at, "empty value not allowed");
                    return None;
                }
                one(v, &at, f)
            })
            .collect()
    };
    let yes = compile(name, values, f);
    if !yes.is_empty() {
        terms.push(any_of(yes));
    }
    let no = compile(not_name, not_values, f);
    if !no.is_empty() {
        terms.push(any_of(no).not());
    }
}

/// Warns about a `*` Istio would compare literally.
fn literal_star(v: &str, at: &str, f: &mut Findings) {
    if Pattern::of(v).has_inner_star() {
        f.warn(
            at,
            format!(
                "{v:?}: '*' is a wildcard only as the first or last character; here it is compared literally"
            ),
        );
    }
}

fn source(s: &Source, at: &str, ns: &str, td: &str, f: &mut Findings) -> Vec<Principal> {
    let Source {
        principals,
        not_principals,
        request_principals,
        not_request_principals,
        namespaces,
        not_namespaces,
        service_accounts,
        not_service_accounts,
        ip_blocks,
        not_ip_blocks,
        remote_ip_blocks,
        not_remote_ip_blocks,
    } = s;
    let lists = [
        principals,
        not_principals,
        request_principals,
        not_request_principals,
        namespaces,
        not_namespaces,
        service_accounts,
        not_service_accounts,
        ip_blocks,
        not_ip_blocks,
        remote_ip_blocks,
        not_remote_ip_blocks,
    ];
    if lists.iter().all(|l| l.is_empty()) {
        f.error(at, "must set at least one field");
    }
    let mut t = Vec::new();
    let principal = |v: &str, at: &str, f: &mut Findings| {
        literal_star(v, at, f);
        Some(values::principal(v, td))
    };
    field(
        &mut t,
        at,
        ("principals", principals),
        ("notPrincipals", not_principals),
        f,
        principal,
    );
    for (name, list, effect) in [
        (
            "requestPrincipals",
            request_principals,
            "no request has one, so this never matches",
        ),
        (
            "notRequestPrincipals",
            not_request_principals,
            "no request has one, so this always holds",
        ),
    ] {
        if !list.is_empty() {
            f.warn(
                format!("{at}.{name}"),
                format!("JWT authentication (RequestAuthentication) is not supported: {effect}"),
            );
        }
    }
    if !request_principals.is_empty() {
        t.push(Principal::Not(Box::new(Principal::Any)));
    }
    field(
        &mut t,
        at,
        ("namespaces", namespaces),
        ("notNamespaces", not_namespaces),
        f,
        |v, _, _| Some(values::namespace(v)),
    );
    field(
        &mut t,
        at,
        ("serviceAccounts", service_accounts),
        ("notServiceAccounts", not_service_accounts),
        f,
        |v, at, f| {
            values::service_account(v, ns)
                .map_err(|e| f.error(at, e))
                .ok()
        },
    );
    let ip = |v: &str, at: &str, f: &mut Findings| {
        values::cidr(v)
            .map(Principal::DirectRemoteIp)
            .map_err(|e| f.error(at, e))
            .ok()
    };
    field(
        &mut t,
        at,
        ("ipBlocks", ip_blocks),
        ("notIpBlocks", not_ip_blocks),
        f,
        ip,
    );
    let remote = |v: &str, at: &str, f: &mut Findings| {
        values::cidr(v)
            .map(Principal::RemoteIp)
            .map_err(|e| f.error(at, e))
            .ok()
    };
    field(
        &mut t,
        at,
        ("remoteIpBlocks", remote_ip_blocks),
        ("notRemoteIpBlocks", not_remote_ip_blocks),
        f,
        remote,
    );
    t
}

fn operation(o: &Operation, at: &str, f: &mut Findings) -> Vec<Permission> {
    let Operation {
        hosts,
        not_hosts,
        ports,
        not_ports,
        methods,
        not_methods,
        paths,
        not_paths,
    } = o;
    let empty = [hosts, not_hosts, methods, not_methods, paths, not_paths]
        .iter()
        .all(|l| l.is_empty())
        && ports.is_empty()
        && not_ports.is_empty();
    if empty {
        f.error(at, "must set at least one field");
    }
    let mut t = Vec::new();
    let host = |v: &str, at: &str, f: &mut Findings| {
        literal_star(v, at, f);
        Some(Permission::Header(values::host(v)))
    };
    field(
        &mut t,
        at,
        ("hosts", hosts),
        ("notHosts", not_hosts),
        f,
        host,
    );
    let method = |v: &str, at: &str, f: &mut Findings| {
        literal_star(v, at, f);
        Some(Permission::Header(values::header(":method", v)))
    };
    field(
        &mut t,
        at,
        ("methods", methods),
        ("notMethods", not_methods),
        f,
        method,
    );
    let path = |v: &str, at: &str, f: &mut Findings| match values::path(v) {
        Ok(m) => {
            if !v.starts_with(['/', '*']) {
                f.warn(
                    at,
                    format!("{v:?} does not start with '/', so it matches no request path"),
                );
            }
            Some(Permission::UrlPath(m))
        }
        Err(e) => {
            f.error(at, e);
            None
        }
    };
    field(
        &mut t,
        at,
        ("paths", paths),
        ("notPaths", not_paths),
        f,
        path,
    );
    field(
        &mut t,
        at,
        ("ports", ports),
        ("notPorts", not_ports),
        f,
        port,
    );
    t
}

fn port(v: &str, at: &str, f: &mut Findings) -> Option<Permission> {
    values::port(v)
        .map(Permission::DestinationPort)
        .map_err(|e| f.error(at, e))
        .ok()
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

fn condition(
    c: &Condition,
    at: &str,
    td: &str,
    perm: &mut Vec<Permission>,
    prin: &mut Vec<Principal>,
    f: &mut Findings,
) {
    let key = c.key.as_str();
    if key.is_empty() {
        f.error(format!("{at}.key"), "required");
        return;
    }
    if c.values.is_empty() && c.not_values.is_empty() {
        f.error(
            at,
            format!("at least one of `values` or `notValues` must be set for key {key}"),
        );
        return;
    }
    let (yes, no) = (("values", &c.values[..]), ("notValues", &c.not_values[..]));
    if let Some(name) = key
        .strip_prefix("request.headers[")
        .and_then(|k| k.strip_suffix(']'))
    {
        let Some(name) = header_name(name, &format!("{at}.key"), f) else {
            return;
        };
        let one = |v: &str, at: &str, f: &mut Findings| {
            literal_star(v, at, f);
            Some(Principal::Header(values::header(&name, v)))
        };
        field(prin, at, yes, no, f, one);
        return;
    }
    match key {
        "source.principal" => {
            let one = |v: &str, at: &str, f: &mut Findings| {
                literal_star(v, at, f);
                Some(values::principal(v, td))
            };
            field(prin, at, yes, no, f, one);
        }
        "source.namespace" => {
            let one = |v: &str, _: &str, _: &mut Findings| Some(values::namespace(v));
            field(prin, at, yes, no, f, one);
        }
        "source.ip" | "remote.ip" => {
            let remote = key == "remote.ip";
            let one = |v: &str, at: &str, f: &mut Findings| {
                values::cidr(v)
                    .map(|c| {
                        if remote {
                            Principal::RemoteIp(c)
                        } else {
                            Principal::DirectRemoteIp(c)
                        }
                    })
                    .map_err(|e| f.error(at, e))
                    .ok()
            };
            field(prin, at, yes, no, f, one);
        }
        "destination.port" => {
            field(perm, at, yes, no, f, port);
        }
        other => f.error(
            format!("{at}.key"),
            format!("condition key {other:?} is not supported (supported: {KEYS})"),
        ),
    }
}

/// The lower-cased name of `request.headers[<name>]`, or an error: empty, invalid, or a name
/// gRPC servers do not see (`grpc-*`, `:scheme`; gRFC A41).
fn header_name(name: &str, at: &str, f: &mut Findings) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let plain = lower.strip_prefix(':').unwrap_or(&lower);
    let valid = !plain.is_empty()
        && plain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        f.error(at, format!("{name:?} is not a header name"));
        None
    } else if lower.starts_with("grpc-") || lower == ":scheme" {
        f.error(
            at,
            format!("header {name:?} cannot be matched: gRPC servers do not see it (gRFC A41)"),
        );
        None
    } else {
        Some(lower)
    }
}
