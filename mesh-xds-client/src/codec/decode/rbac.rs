//! RBAC HTTP filter configs: `envoy.extensions.filters.http.rbac.v3.RBAC` → [`Rbac`], as gRPC
//! reads them (gRFC A41), failing closed on everything we cannot evaluate.

use envoy_types::pb::envoy::config::core::v3::CidrRange;
use envoy_types::pb::envoy::config::rbac::v3::{
    Permission as PbPermission, Policy as PbPolicy, Principal as PbPrincipal, Rbac as PbRules,
    permission, principal, rbac::Action,
};
use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::Rbac as PbHttpRbac;
use envoy_types::pb::envoy::r#type::matcher::v3::{PathMatcher, path_matcher};
use envoy_types::pb::google::protobuf::Any;
use mesh_core::Validate;
use mesh_core::rbac::{Cidr, Permission, Policy, Principal, Rbac, RbacAction};

use super::route::matching::{header_match, string_match};
use super::{Ctx, DecodeError, Decoded, join, type_name, unpack, unpack_nested};
use crate::codec::RBAC_TYPE;

/// Decodes and validates the config of an RBAC HTTP filter (an `HttpFilter`'s `typed_config`);
/// `filter_name` names it in errors and warnings.
///
/// Read as gRPC does (A41): `rules` with action `ALLOW`, `DENY` or `LOG`, policies with
/// permissions and principals. Absent `rules` means no enforcement, and decodes as a `DENY`
/// filter without policies (which denies nothing). Policies come back sorted by name, the order
/// in which Envoy and gRPC evaluate them.
///
/// Warned and ignored (they never change a decision): `shadow_rules`, `shadow_matcher`,
/// `rules.audit_logging_options`, `policies[].cel_config`. Stat prefixes and
/// `track_per_rule_stats` carry no behaviour and are not read.
///
/// Rejected (NACK), since ignoring them would change who is let in: the `matcher` API,
/// `condition` / `checked_condition` (CEL), and in a permission or principal anything the model
/// cannot evaluate: `destination_ip`, `destination_port_range`, `requested_server_name`,
/// `metadata`, `sourced_metadata`, `filter_state`, `matcher`, `uri_template`, `custom`, an
/// unset rule, `any: false`, a port above 65535, an invalid CIDR or regex, and whatever
/// [`mesh_core::Validate`] refuses (`grpc-*` and `:scheme` headers, empty policy lists, …).
/// Nothing unsupported is ever read as "matches everything".
///
/// # Errors
/// [`DecodeError::WrongType`] and [`DecodeError::Malformed`] for an `Any` that is not an RBAC
/// filter config; [`DecodeError::Invalid`] (kind `RBAC`) for the cases above.
pub fn decode_rbac(filter_name: &str, any: &Any) -> Result<Decoded<Rbac>, DecodeError> {
    let pb: PbHttpRbac = unpack(any, RBAC_TYPE)?;
    let mut ctx = Ctx::new("RBAC", filter_name);
    let model = rbac_config(&mut ctx, "", pb);
    ctx.finish(model)
}

/// For the HTTP filters of a listener: reads the RBAC config in `any` (whose type the caller
/// matched against [`RBAC_TYPE`]) at field `at` (`…http_filters[2].typed_config`), validates it
/// and reports every problem into `ctx`. `None` when it cannot be used; the listener must then
/// be rejected, which the recorded errors already ensure.
#[allow(dead_code)] // Used by the inbound listener decoder (A36), which is being written.
pub(in crate::codec::decode) fn rbac_filter(ctx: &mut Ctx, at: &str, any: &Any) -> Option<Rbac> {
    if type_name(&any.type_url) != type_name(RBAC_TYPE) {
        ctx.error(
            at,
            format!(
                "expected {}, got {}",
                type_name(RBAC_TYPE),
                type_name(&any.type_url)
            ),
        );
        return None;
    }
    let pb = unpack_nested::<PbHttpRbac>(ctx, at, any)?;
    let before = ctx.errors.0.len();
    let model = rbac_config(ctx, at, pb);
    if ctx.errors.0.len() > before {
        return None;
    }
    match model.validate() {
        Ok(()) => Some(model),
        Err(e) => {
            ctx.errors.extend_at(at, e);
            None
        }
    }
}

fn rbac_config(ctx: &mut Ctx, at: &str, pb: PbHttpRbac) -> Rbac {
    let PbHttpRbac {
        rules,
        rules_stat_prefix: _,
        matcher,
        shadow_rules,
        shadow_matcher,
        shadow_rules_stat_prefix: _,
        track_per_rule_stats: _,
    } = pb;
    reject_set!(
        ctx, at, "the matcher API is not supported; send the policies in `rules`";
        matcher,
    );
    if shadow_rules.is_some() || shadow_matcher.is_some() {
        let field = if shadow_rules.is_some() {
            "shadow_rules"
        } else {
            "shadow_matcher"
        };
        ctx.warn(
            join(at, field),
            "shadow rules are not evaluated (they never change a decision); ignored",
        );
    }
    match rules {
        Some(r) => rules_of(ctx, &join(at, "rules"), r),
        // Envoy: "If absent, no RBAC enforcement occurs."
        None => Rbac::new(RbacAction::Deny),
    }
}

fn rules_of(ctx: &mut Ctx, at: &str, r: PbRules) -> Rbac {
    let PbRules {
        action,
        policies,
        audit_logging_options,
    } = r;
    let action = match Action::try_from(action) {
        Ok(Action::Allow) => RbacAction::Allow,
        Ok(Action::Deny) => RbacAction::Deny,
        Ok(Action::Log) => RbacAction::Log,
        Err(_) => {
            ctx.error(join(at, "action"), format!("unknown action {action}"));
            RbacAction::Deny
        }
    };
    if audit_logging_options.is_some() {
        ctx.warn(
            join(at, "audit_logging_options"),
            "audit loggers are not supported (decisions are logged with tracing); ignored",
        );
    }
    let mut policies: Vec<(String, PbPolicy)> = policies.into_iter().collect();
    policies.sort_by(|a, b| a.0.cmp(&b.0));
    let policies = policies
        .into_iter()
        .map(|(name, p)| {
            let at = format!("{at}.policies[{name:?}]");
            let p = policy(ctx, &at, p);
            (name, p)
        })
        .collect();
    Rbac { action, policies }
}

fn policy(ctx: &mut Ctx, at: &str, p: PbPolicy) -> Policy {
    let PbPolicy {
        permissions,
        principals,
        condition,
        checked_condition,
        cel_config,
    } = p;
    reject_set!(
        ctx, at, "CEL conditions are not supported (gRFC A41)";
        condition, checked_condition,
    );
    ignore_set!(ctx, at, cel_config);
    Policy {
        permissions: permissions
            .into_iter()
            .enumerate()
            .map(|(i, p)| permission_of(ctx, &format!("{at}.permissions[{i}]"), p))
            .collect(),
        principals: principals
            .into_iter()
            .enumerate()
            .map(|(i, p)| principal_of(ctx, &format!("{at}.principals[{i}]"), p))
            .collect(),
    }
}

/// What a permission or principal that could not be read stands for. The resource is rejected
/// whenever it is used, so it never takes part in a decision.
const UNREADABLE: &str = "cannot be evaluated here; refusing the filter rather than guessing";

fn permission_of(ctx: &mut Ctx, at: &str, p: PbPermission) -> Permission {
    use permission::{Rule, Set};
    let Some(rule) = p.rule else {
        ctx.error(at, "a rule is required");
        return Permission::Any;
    };
    let list = |ctx: &mut Ctx, field: &str, set: Set| -> Vec<Permission> {
        set.rules
            .into_iter()
            .enumerate()
            .map(|(i, p)| permission_of(ctx, &format!("{at}.{field}.rules[{i}]"), p))
            .collect()
    };
    match rule {
        Rule::AndRules(set) => Permission::And(list(ctx, "and_rules", set)),
        Rule::OrRules(set) => Permission::Or(list(ctx, "or_rules", set)),
        Rule::Any(true) => Permission::Any,
        Rule::Any(false) => {
            ctx.error(join(at, "any"), "must be true when set (Envoy's rule)");
            Permission::Any
        }
        Rule::NotRule(p) => {
            Permission::Not(Box::new(permission_of(ctx, &join(at, "not_rule"), *p)))
        }
        Rule::Header(h) => Permission::Header(header_match(ctx, &join(at, "header"), h)),
        Rule::UrlPath(m) => Permission::UrlPath(url_path(ctx, &join(at, "url_path"), m)),
        Rule::DestinationPort(port) => match u16::try_from(port) {
            Ok(port) => Permission::DestinationPort(port),
            Err(_) => {
                let reason = format!("{port} is not a port (0–65535)");
                ctx.error(join(at, "destination_port"), reason);
                Permission::Any
            }
        },
        other => {
            let field = match other {
                Rule::DestinationIp(_) => "destination_ip",
                Rule::DestinationPortRange(_) => "destination_port_range",
                Rule::Metadata(_) => "metadata",
                Rule::RequestedServerName(_) => "requested_server_name",
                Rule::Matcher(_) => "matcher",
                Rule::UriTemplate(_) => "uri_template",
                Rule::SourcedMetadata(_) => "sourced_metadata",
                _ => "rule",
            };
            ctx.error(join(at, field), UNREADABLE);
            Permission::Any
        }
    }
}

fn principal_of(ctx: &mut Ctx, at: &str, p: PbPrincipal) -> Principal {
    use principal::{Authenticated, Identifier, Set};
    let Some(id) = p.identifier else {
        ctx.error(at, "an identifier is required");
        return Principal::Any;
    };
    let list = |ctx: &mut Ctx, field: &str, set: Set| -> Vec<Principal> {
        set.ids
            .into_iter()
            .enumerate()
            .map(|(i, p)| principal_of(ctx, &format!("{at}.{field}.ids[{i}]"), p))
            .collect()
    };
    match id {
        Identifier::AndIds(set) => Principal::And(list(ctx, "and_ids", set)),
        Identifier::OrIds(set) => Principal::Or(list(ctx, "or_ids", set)),
        Identifier::Any(true) => Principal::Any,
        Identifier::Any(false) => {
            ctx.error(join(at, "any"), "must be true when set (Envoy's rule)");
            Principal::Any
        }
        Identifier::NotId(p) => {
            Principal::Not(Box::new(principal_of(ctx, &join(at, "not_id"), *p)))
        }
        Identifier::Authenticated(Authenticated { principal_name }) => match principal_name {
            None => Principal::Authenticated(None),
            Some(m) => {
                let field = join(at, "authenticated.principal_name");
                match string_match(ctx, &field, m) {
                    Some(m) => Principal::Authenticated(Some(m)),
                    None => {
                        empty_matcher(ctx, field);
                        Principal::Any
                    }
                }
            }
        },
        // `source_ip` is the peer's address as long as the PROXY protocol is not supported (A41).
        Identifier::SourceIp(c) => {
            cidr(ctx, &join(at, "source_ip"), c).map_or(Principal::Any, Principal::DirectRemoteIp)
        }
        Identifier::DirectRemoteIp(c) => cidr(ctx, &join(at, "direct_remote_ip"), c)
            .map_or(Principal::Any, Principal::DirectRemoteIp),
        Identifier::RemoteIp(c) => {
            cidr(ctx, &join(at, "remote_ip"), c).map_or(Principal::Any, Principal::RemoteIp)
        }
        Identifier::Header(h) => Principal::Header(header_match(ctx, &join(at, "header"), h)),
        Identifier::UrlPath(m) => Principal::UrlPath(url_path(ctx, &join(at, "url_path"), m)),
        other => {
            let field = match other {
                Identifier::Metadata(_) => "metadata",
                Identifier::FilterState(_) => "filter_state",
                Identifier::SourcedMetadata(_) => "sourced_metadata",
                Identifier::Custom(_) => "custom",
                _ => "identifier",
            };
            ctx.error(join(at, field), UNREADABLE);
            Principal::Any
        }
    }
}

fn url_path(ctx: &mut Ctx, at: &str, m: PathMatcher) -> mesh_core::StringMatch {
    let Some(path_matcher::Rule::Path(sm)) = m.rule else {
        ctx.error(at, "a path matcher is required");
        return mesh_core::StringMatch::Exact(String::new());
    };
    let field = join(at, "path");
    match string_match(ctx, &field, sm) {
        Some(m) => m,
        None => {
            empty_matcher(ctx, field);
            mesh_core::StringMatch::Exact(String::new())
        }
    }
}

fn empty_matcher(ctx: &mut Ctx, field: String) {
    ctx.error(
        field,
        "an empty prefix, suffix or substring is refused (Envoy's rule); use `any`",
    );
}

fn cidr(ctx: &mut Ctx, at: &str, c: CidrRange) -> Option<Cidr> {
    let CidrRange {
        address_prefix,
        prefix_len,
    } = c;
    let addr = match address_prefix.parse() {
        Ok(a) => a,
        Err(_) => {
            let reason = format!("{address_prefix:?} is not an IP address");
            ctx.error(join(at, "address_prefix"), reason);
            return None;
        }
    };
    // Envoy: an unset length is 0.
    match Cidr::new(addr, prefix_len.map_or(0, |l| l.value)) {
        Ok(c) => Some(c),
        Err(e) => {
            ctx.error(join(at, "prefix_len"), e.to_string());
            None
        }
    }
}
