//! API listeners: an `HttpConnectionManager` in `api_listener` whose routes come from RDS.

use envoy_types::pb::envoy::config::listener::v3::{ApiListener, Listener};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, Rds, http_connection_manager::RouteSpecifier,
    http_filter::ConfigType,
};
use envoy_types::pb::google::protobuf::Any;
use mesh_core::listener::{HttpFilter as ModelFilter, Listener as ModelListener};
use prost::Name;

use super::filters::{FilterKind, skip_or_reject};
use super::{Ctx, DecodeError, Decoded, expect_ads, is_set, type_name, unpack, unpack_nested};
use crate::codec::LISTENER_TYPE;

/// The one field of a `Listener` that tells an API listener (a client's) from an inbound one.
#[derive(Clone, PartialEq, prost::Message)]
struct ListenerKind {
    #[prost(message, optional, tag = "19")]
    api_listener: Option<ApiListener>,
    #[prost(message, repeated, tag = "3")]
    filter_chains: Vec<envoy_types::pb::envoy::config::listener::v3::FilterChain>,
}

/// True unless `any` is a `Listener` with filter chains and no `api_listener` (an inbound
/// listener, for [`super::decode_inbound_listener`]); anything unreadable counts as an API
/// listener, so [`decode_listener`] reports it.
pub fn is_api_listener(any: &Any) -> bool {
    match <ListenerKind as prost::Message>::decode(any.value.as_slice()) {
        Ok(k) => k.api_listener.is_some() || k.filter_chains.is_empty(),
        Err(_) => true,
    }
}

/// Decodes and validates a `Listener`.
///
/// Only API listeners are supported (the form proxyless gRPC resolves for `xds:///<target>`):
/// `api_listener` must hold an `HttpConnectionManager` that takes its routes from RDS. The
/// `address`, `stat_prefix`, `traffic_direction` and `metadata` of an API listener carry no
/// behaviour and are not read; every other listener field set is a warning.
///
/// HTTP filters are known by their `typed_config` type: the fault filter and the router. An
/// unknown filter is skipped with a warning when `is_optional`, otherwise rejected; RBAC and
/// other authorization or authentication filters are always rejected, since we cannot enforce
/// them yet.
///
/// # Errors
/// [`DecodeError::WrongType`] and [`DecodeError::Malformed`] for an `Any` that is not a
/// `Listener`; [`DecodeError::Invalid`] for a listener that is not an API listener, an API listener
/// that is not an `HttpConnectionManager`, an inline `route_config` or scoped routes (use RDS), the
/// filters above, and whatever [`mesh_core::Validate`] rejects.
pub fn decode_listener(any: &Any) -> Result<Decoded<ModelListener>, DecodeError> {
    let pb: Listener = unpack(any, LISTENER_TYPE)?;
    let mut ctx = Ctx::new("Listener", &pb.name);
    let mut model = ModelListener {
        name: String::new(),
        route_config_name: String::new(),
        http_filters: Vec::new(),
    };
    let Listener {
        name,
        address: _,
        stat_prefix: _,
        metadata: _,
        traffic_direction: _,
        api_listener,
        additional_addresses,
        stats_matcher,
        filter_chains,
        fcds_config,
        filter_chain_matcher,
        use_original_dst,
        default_filter_chain,
        per_connection_buffer_limit_bytes,
        per_connection_buffer_high_watermark_timeout,
        deprecated_v1,
        drain_type,
        listener_filters,
        listener_filters_timeout,
        continue_on_listener_filters_timeout,
        transparent,
        freebind,
        socket_options,
        tcp_fast_open_queue_length,
        udp_listener_config,
        connection_balance_config,
        reuse_port,
        enable_reuse_port,
        access_log,
        tcp_backlog_size,
        max_connections_to_accept_per_socket_event,
        bind_to_port,
        enable_mptcp,
        ignore_global_conn_limit,
        bypass_overload_manager,
        tcp_keepalive,
        listener_specifier,
    } = pb;
    model.name = name;
    ignore_set!(
        ctx,
        "",
        additional_addresses,
        stats_matcher,
        filter_chains,
        fcds_config,
        filter_chain_matcher,
        use_original_dst,
        default_filter_chain,
        per_connection_buffer_limit_bytes,
        per_connection_buffer_high_watermark_timeout,
        deprecated_v1,
        drain_type,
        listener_filters,
        listener_filters_timeout,
        continue_on_listener_filters_timeout,
        transparent,
        freebind,
        socket_options,
        tcp_fast_open_queue_length,
        udp_listener_config,
        connection_balance_config,
        reuse_port,
        enable_reuse_port,
        access_log,
        tcp_backlog_size,
        max_connections_to_accept_per_socket_event,
        bind_to_port,
        enable_mptcp,
        ignore_global_conn_limit,
        bypass_overload_manager,
        tcp_keepalive,
        listener_specifier,
    );

    match api_listener {
        Some(ApiListener {
            api_listener: Some(hcm),
        }) => http_connection_manager(&mut ctx, &hcm, &mut model),
        _ => ctx.error(
            "api_listener",
            "only API listeners are supported (not listeners with sockets and filter chains)",
        ),
    }
    ctx.finish(model)
}

fn http_connection_manager(ctx: &mut Ctx, any: &Any, model: &mut ModelListener) {
    let Some((http_filters, route_specifier)) = hcm(ctx, "api_listener", any) else {
        return;
    };
    match route_specifier {
        Some(RouteSpecifier::Rds(Rds {
            config_source,
            route_config_name,
        })) => {
            expect_ads(
                ctx,
                "api_listener.rds.config_source",
                config_source.as_ref(),
            );
            model.route_config_name = route_config_name;
        }
        Some(RouteSpecifier::RouteConfig(_)) => ctx.error(
            "api_listener.route_config",
            "inline route_config is not supported; use RDS",
        ),
        Some(RouteSpecifier::ScopedRoutes(_)) => ctx.error(
            "api_listener.scoped_routes",
            "scoped routes are not supported; use RDS",
        ),
        None => ctx.error("api_listener.rds", "required: routes must come from RDS"),
    }
    model.http_filters = filters(ctx, "api_listener", http_filters);
}

/// An `HttpConnectionManager` at `at`: its HTTP filters and route specifier; every other field
/// set is a warning.
pub(super) fn hcm(
    ctx: &mut Ctx,
    at: &str,
    any: &Any,
) -> Option<(Vec<HttpFilter>, Option<RouteSpecifier>)> {
    if type_name(&any.type_url) != HttpConnectionManager::full_name() {
        ctx.error(
            at,
            format!(
                "must hold an HttpConnectionManager, not {}",
                type_name(&any.type_url)
            ),
        );
        return None;
    }
    let hcm = unpack_nested::<HttpConnectionManager>(ctx, at, any)?;
    let HttpConnectionManager {
        stat_prefix: _,
        http_filters,
        route_specifier,
        codec_type,
        add_user_agent,
        tracing,
        common_http_protocol_options,
        http1_safe_max_connection_duration,
        http_protocol_options,
        http2_protocol_options,
        http3_protocol_options,
        server_name,
        server_header_transformation,
        scheme_header_transformation,
        max_request_headers_kb,
        stream_idle_timeout,
        stream_flush_timeout,
        request_timeout,
        request_headers_timeout,
        drain_timeout,
        drain_timeout_jitter,
        delayed_close_timeout,
        access_log,
        access_log_flush_interval,
        flush_access_log_on_new_request,
        access_log_options,
        use_remote_address,
        xff_num_trusted_hops,
        original_ip_detection_extensions,
        early_header_mutation_extensions,
        internal_address_config,
        skip_xff_append,
        via,
        generate_request_id,
        preserve_external_request_id,
        always_set_request_id_in_response,
        forward_client_cert_details,
        set_current_client_cert_details,
        forward_client_cert_matcher,
        proxy_100_continue,
        represent_ipv4_remote_address_as_ipv4_mapped_ipv6,
        upgrade_configs,
        normalize_path,
        merge_slashes,
        path_with_escaped_slashes_action,
        request_id_extension,
        local_reply_config,
        strip_matching_host_port,
        stream_error_on_invalid_http_message,
        path_normalization_options,
        strip_trailing_host_dot,
        proxy_status_config,
        typed_header_validation_config,
        append_x_forwarded_port,
        append_local_overload,
        add_proxy_protocol_connection_state,
        forward_proto_config,
        strip_port_mode,
    } = hcm;
    ignore_set!(
        ctx,
        at,
        codec_type,
        add_user_agent,
        tracing,
        common_http_protocol_options,
        http1_safe_max_connection_duration,
        http_protocol_options,
        http2_protocol_options,
        http3_protocol_options,
        server_name,
        server_header_transformation,
        scheme_header_transformation,
        max_request_headers_kb,
        stream_idle_timeout,
        stream_flush_timeout,
        request_timeout,
        request_headers_timeout,
        drain_timeout,
        drain_timeout_jitter,
        delayed_close_timeout,
        access_log,
        access_log_flush_interval,
        flush_access_log_on_new_request,
        access_log_options,
        use_remote_address,
        xff_num_trusted_hops,
        original_ip_detection_extensions,
        early_header_mutation_extensions,
        internal_address_config,
        skip_xff_append,
        via,
        generate_request_id,
        preserve_external_request_id,
        always_set_request_id_in_response,
        forward_client_cert_details,
        set_current_client_cert_details,
        forward_client_cert_matcher,
        proxy_100_continue,
        represent_ipv4_remote_address_as_ipv4_mapped_ipv6,
        upgrade_configs,
        normalize_path,
        merge_slashes,
        path_with_escaped_slashes_action,
        request_id_extension,
        local_reply_config,
        strip_matching_host_port,
        stream_error_on_invalid_http_message,
        path_normalization_options,
        strip_trailing_host_dot,
        proxy_status_config,
        typed_header_validation_config,
        append_x_forwarded_port,
        append_local_overload,
        add_proxy_protocol_connection_state,
        forward_proto_config,
        strip_port_mode,
    );

    Some((http_filters, route_specifier))
}

fn filters(ctx: &mut Ctx, at: &str, filters: Vec<HttpFilter>) -> Vec<ModelFilter> {
    let mut out = Vec::with_capacity(filters.len());
    for (i, f) in filters.into_iter().enumerate() {
        let at = format!("{at}.http_filters[{i}]");
        let HttpFilter {
            name,
            is_optional,
            disabled,
            config_type,
        } = f;
        let any = match config_type {
            Some(ConfigType::TypedConfig(any)) => any,
            Some(ConfigType::ConfigDiscovery(_)) => {
                let reason = format!("{name:?}: config discovery (ECDS) is not supported");
                skip_or_reject(ctx, &at, None, is_optional, reason);
                continue;
            }
            None => {
                let reason = format!("{name:?}: typed_config is required");
                skip_or_reject(ctx, &at, None, is_optional, reason);
                continue;
            }
        };
        let field = format!("{at}.typed_config");
        let kind = FilterKind::of(&any);
        match kind {
            FilterKind::Fault | FilterKind::Router if disabled => {
                let reason = format!("{name:?}: filters disabled by default are not supported");
                skip_or_reject(ctx, &format!("{at}.disabled"), None, is_optional, reason);
            }
            FilterKind::Fault => {
                if unpack_nested::<HttpFault>(ctx, &field, &any).is_some_and(|f| is_set(&f)) {
                    ctx.warn(
                        field,
                        "filter-level fault settings are not supported; only per-route faults apply",
                    );
                }
                out.push(ModelFilter::Fault);
            }
            FilterKind::Router => {
                if unpack_nested::<Router>(ctx, &field, &any).is_some_and(|r| is_set(&r)) {
                    ctx.warn(field, "router options are not supported; ignored");
                }
                out.push(ModelFilter::Router);
            }
            other => {
                let reason = format!("{name:?}: {}", other.reason());
                skip_or_reject(ctx, &field, Some(&other), is_optional, reason);
            }
        }
    }
    out
}
