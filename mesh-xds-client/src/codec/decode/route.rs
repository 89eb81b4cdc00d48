//! Route tables: `RouteConfiguration` → [`RouteTable`].

use envoy_types::pb::envoy::config::core::v3::{DataSource, data_source};
use envoy_types::pb::envoy::config::route::v3::{
    DirectResponseAction, Route, RouteConfiguration, VirtualHost, route::Action,
};
use envoy_types::pb::google::protobuf::Any;
use mesh_core::route::{
    Route as ModelRoute, RouteAction, RouteTable, VirtualHost as ModelVirtualHost,
};

use super::{Ctx, DecodeError, Decoded, join, unpack};
use crate::codec::ROUTE_TYPE;

mod action;
pub(super) mod fault;
mod headers;
pub(super) mod matching;
mod policy;
pub(super) mod rate_limit;

use action::{Inherited, forward};
use fault::per_filter;
use headers::mutation;
use policy::mirrors;

/// Envoy's limit on direct-response bodies when `max_direct_response_body_size_bytes` is unset.
const DEFAULT_MAX_BODY: usize = 4096;

/// Decodes and validates a `RouteConfiguration`.
///
/// Routes forward to `cluster` or `weighted_clusters`, or answer with `direct_response` (an
/// inline body). A virtual host's `retry_policy`, and the mirrors and fault configs of the virtual
/// host and route configuration, apply to routes that set none, as in Envoy. Header changes are
/// read from routes only.
///
/// Rejected, since ignoring them would change who receives a request or what it carries:
/// `cluster_header` and cluster specifier plugins, subset `metadata_match`, path and host rewrites
/// other than `prefix_rewrite` and `host_rewrite_literal`, redirects and filter actions, match
/// conditions we cannot evaluate, invalid regexes, weights that sum to zero, header changes at the
/// virtual-host or route-configuration level, `vhds`, `require_tls`, and append actions other than
/// append and overwrite. Other unsupported fields (CORS, rate limits, hedging, retry predicates,
/// decorators, …) are warnings.
///
/// # Errors
/// [`DecodeError::WrongType`] and [`DecodeError::Malformed`] for an `Any` that is not a
/// `RouteConfiguration`; [`DecodeError::Invalid`] for the cases above and whatever
/// [`mesh_core::Validate`] rejects.
pub fn decode_route_table(any: &Any) -> Result<Decoded<RouteTable>, DecodeError> {
    let pb: RouteConfiguration = unpack(any, ROUTE_TYPE)?;
    let mut ctx = Ctx::new("RouteConfiguration", &pb.name);
    let RouteConfiguration {
        name,
        virtual_hosts,
        max_direct_response_body_size_bytes,
        request_mirror_policies,
        typed_per_filter_config,
        metadata: _,
        vhds,
        response_headers_to_add,
        response_headers_to_remove,
        request_headers_to_add,
        request_headers_to_remove,
        ignore_port_in_host_matching,
        vhost_header,
        ignore_path_parameters_in_path_matching,
        route_specifiers,
        internal_only_headers,
        most_specific_header_mutations_wins,
        validate_clusters,
        cluster_specifier_plugins,
    } = pb;
    ignore_set!(
        ctx,
        "",
        internal_only_headers,
        most_specific_header_mutations_wins,
        validate_clusters,
        cluster_specifier_plugins,
    );
    reject_set!(ctx, "", "on-demand virtual hosts are not supported"; vhds);
    reject_set!(
        ctx, "", HEADERS_ON_ROUTES;
        request_headers_to_add, request_headers_to_remove, response_headers_to_add,
        response_headers_to_remove,
    );
    reject_set!(
        ctx, "", CHANGES_MATCHING;
        ignore_port_in_host_matching, vhost_header, ignore_path_parameters_in_path_matching,
    );
    reject_set!(ctx, "", ROUTE_SPECIFIERS; route_specifiers);
    let max_body =
        max_direct_response_body_size_bytes.map_or(DEFAULT_MAX_BODY, |v| v.value as usize);
    let top = Inherited {
        retry: None,
        mirrors: mirrors(&mut ctx, "request_mirror_policies", request_mirror_policies),
        fault: per_filter(&mut ctx, "typed_per_filter_config", typed_per_filter_config),
    };
    let virtual_hosts = virtual_hosts
        .into_iter()
        .enumerate()
        .map(|(i, vh)| virtual_host(&mut ctx, &format!("virtual_hosts[{i}]"), vh, &top, max_body))
        .collect();
    ctx.finish(RouteTable {
        name,
        virtual_hosts,
    })
}

const HEADERS_ON_ROUTES: &str = "header changes are supported on routes only";
const CHANGES_MATCHING: &str = "not supported: it changes which route matches";
const ROUTE_SPECIFIERS: &str = "route specifiers are not supported: they can replace the route";

fn virtual_host(
    ctx: &mut Ctx,
    at: &str,
    vh: VirtualHost,
    top: &Inherited,
    max_body: usize,
) -> ModelVirtualHost {
    let VirtualHost {
        name,
        domains,
        routes,
        retry_policy,
        request_mirror_policies,
        typed_per_filter_config,
        metadata: _,
        matcher,
        require_tls,
        request_headers_to_add,
        request_headers_to_remove,
        response_headers_to_add,
        response_headers_to_remove,
        route_specifiers,
        virtual_clusters,
        rate_limits,
        cors,
        include_request_attempt_count,
        include_attempt_count_in_response,
        retry_policy_typed_config,
        hedge_policy,
        include_is_timeout_retry_header,
        per_request_buffer_limit_bytes,
        request_body_buffer_limit,
    } = vh;
    ignore_set!(
        ctx,
        at,
        virtual_clusters,
        rate_limits,
        cors,
        include_request_attempt_count,
        include_attempt_count_in_response,
        retry_policy_typed_config,
        hedge_policy,
        include_is_timeout_retry_header,
        per_request_buffer_limit_bytes,
        request_body_buffer_limit,
    );
    reject_set!(ctx, at, "matcher trees are not supported; use routes"; matcher);
    reject_set!(ctx, at, "requiring TLS from the caller is not supported"; require_tls);
    reject_set!(
        ctx, at, HEADERS_ON_ROUTES;
        request_headers_to_add, request_headers_to_remove, response_headers_to_add,
        response_headers_to_remove,
    );
    reject_set!(ctx, at, ROUTE_SPECIFIERS; route_specifiers);
    let retry = retry_policy.and_then(|r| policy::retry_policy(ctx, &join(at, "retry_policy"), r));
    let mut mirrors = mirrors(
        ctx,
        &join(at, "request_mirror_policies"),
        request_mirror_policies,
    );
    if mirrors.is_empty() {
        mirrors = top.mirrors.clone();
    }
    let up = Inherited {
        retry,
        mirrors,
        fault: per_filter(
            ctx,
            &join(at, "typed_per_filter_config"),
            typed_per_filter_config,
        )
        .or(&top.fault),
    };
    ModelVirtualHost {
        name,
        domains,
        routes: routes
            .into_iter()
            .enumerate()
            .map(|(i, r)| route(ctx, &format!("{at}.routes[{i}]"), r, &up, max_body))
            .collect(),
    }
}

fn route(ctx: &mut Ctx, at: &str, r: Route, up: &Inherited, max_body: usize) -> ModelRoute {
    let Route {
        name,
        r#match,
        action,
        typed_per_filter_config,
        request_headers_to_add,
        request_headers_to_remove,
        response_headers_to_add,
        response_headers_to_remove,
        metadata: _,
        route_specifiers,
        decorator,
        tracing,
        per_request_buffer_limit_bytes,
        stat_prefix,
        request_body_buffer_limit,
    } = r;
    ignore_set!(
        ctx,
        at,
        decorator,
        tracing,
        per_request_buffer_limit_bytes,
        stat_prefix,
        request_body_buffer_limit,
    );
    reject_set!(ctx, at, ROUTE_SPECIFIERS; route_specifiers);
    let matcher = matching::route_match(ctx, &join(at, "match"), r#match);
    let action = match action {
        Some(Action::Route(a)) => RouteAction::Forward(forward(ctx, &join(at, "route"), a, up)),
        Some(Action::DirectResponse(d)) => {
            direct_response(ctx, &join(at, "direct_response"), d, max_body)
        }
        Some(other) => {
            let field = match other {
                Action::Redirect(_) => "redirect",
                Action::FilterAction(_) => "filter_action",
                _ => "non_forwarding_action",
            };
            ctx.error(
                join(at, field),
                "not supported; only route and direct_response",
            );
            RouteAction::DirectResponse {
                status: 500,
                body: None,
            }
        }
        None => {
            ctx.error(at, "an action (route or direct_response) is required");
            RouteAction::DirectResponse {
                status: 500,
                body: None,
            }
        }
    };
    let mut typed_per_filter_config = typed_per_filter_config;
    let rate_limit = rate_limit::take(
        ctx,
        &join(at, "typed_per_filter_config"),
        &mut typed_per_filter_config,
    );
    let fault = per_filter(
        ctx,
        &join(at, "typed_per_filter_config"),
        typed_per_filter_config,
    );
    ModelRoute {
        name,
        matcher,
        action,
        request_headers: mutation(
            ctx,
            at,
            "request_headers_to_add",
            request_headers_to_add,
            request_headers_to_remove,
        ),
        response_headers: mutation(
            ctx,
            at,
            "response_headers_to_add",
            response_headers_to_add,
            response_headers_to_remove,
        ),
        fault: fault.or(&up.fault).into_policy(),
        rate_limit,
    }
}

fn direct_response(
    ctx: &mut Ctx,
    at: &str,
    d: DirectResponseAction,
    max_body: usize,
) -> RouteAction {
    let DirectResponseAction {
        status,
        body,
        body_format,
    } = d;
    ignore_set!(ctx, at, body_format);
    let status = u16::try_from(status).unwrap_or_else(|_| {
        ctx.error(
            join(at, "status"),
            format!("{status} is not an HTTP status"),
        );
        500
    });
    let body = body.and_then(
        |DataSource {
             specifier,
             watched_directory,
         }| {
            ignore_set!(ctx, &join(at, "body"), watched_directory);
            match specifier? {
                data_source::Specifier::InlineString(s) => Some(s),
                data_source::Specifier::InlineBytes(b) => String::from_utf8(b)
                    .map_err(|_| ctx.error(join(at, "body.inline_bytes"), "not UTF-8"))
                    .ok(),
                data_source::Specifier::Filename(_)
                | data_source::Specifier::EnvironmentVariable(_) => {
                    let reason = "bodies from files or environment variables are not supported";
                    ctx.error(join(at, "body"), reason);
                    None
                }
            }
        },
    );
    if let Some(b) = &body
        && b.len() > max_body
    {
        ctx.error(
            join(at, "body"),
            format!(
                "{} bytes exceed max_direct_response_body_size_bytes ({max_body})",
                b.len()
            ),
        );
    }
    RouteAction::DirectResponse { status, body }
}
