//! Inbound listeners (gRFC A36): what a meshed server reads to accept connections.

use envoy_types::pb::envoy::config::core::v3::{TransportSocket, transport_socket};
use envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain as PbChain, FilterChainMatch, Listener, filter,
};
use envoy_types::pb::envoy::config::route::v3::{
    RouteConfiguration, route, route_match::PathSpecifier,
};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use envoy_types::pb::envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpFilter, http_connection_manager::RouteSpecifier, http_filter::ConfigType,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, DownstreamTlsContext, common_tls_context::ValidationContextType,
};
use envoy_types::pb::google::protobuf::Any;
use mesh_core::inbound::{DownstreamTls, FilterChain, InboundFilter, InboundListener, Transport};

use super::endpoint::address_of;
use super::filters::{FilterKind, skip_or_reject};
use super::listener::hcm;
use super::{Ctx, DecodeError, Decoded, join, type_name, unpack, unpack_nested};
use crate::codec::{LISTENER_TYPE, TLS_TRANSPORT_SOCKET};

const LOCAL_RATE_LIMIT_TYPE: &str =
    "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";
const DOWNSTREAM_TLS_TYPE: &str = "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";

/// Decodes and validates an inbound `Listener` (one with an `address` and filter chains).
///
/// Read: `address` (a literal IP and port), `filter_chains` (and `default_filter_chain`, used
/// last) with `filter_chain_match.destination_port` and `transport_protocol` (`tls` /
/// `raw_buffer`), exactly one `HttpConnectionManager` per chain whose inline route configuration
/// is one catch-all `non_forwarding_action` route, its HTTP filters (the router), and a TLS
/// `transport_socket` with a `DownstreamTlsContext` naming certificate-provider instances.
/// Matching on sources, server names or application protocols, other network filters, and TLS
/// settings we cannot honour are errors (a chain that applies more widely than written, or a
/// weaker TLS, must not be served), as are `listener_filters` (as in gRPC, A36); the other
/// listener fields are not read.
///
/// # Errors
/// [`DecodeError::WrongType`] / [`DecodeError::Malformed`] for an `Any` that is not a
/// `Listener`; [`DecodeError::Invalid`] for the cases above.
pub fn decode_inbound_listener(any: &Any) -> Result<Decoded<InboundListener>, DecodeError> {
    let pb: Listener = unpack(any, LISTENER_TYPE)?;
    let mut ctx = Ctx::new("Listener", &pb.name);
    if pb.use_original_dst.is_some_and(|b| b.value) {
        ctx.error("use_original_dst", "not supported by proxyless servers");
    }
    if !pb.listener_filters.is_empty() {
        ctx.error(
            "listener_filters",
            "not supported on proxyless servers (gRPC NACKs them too, A36)",
        );
    }
    if pb.api_listener.is_some() {
        ctx.error(
            "api_listener",
            "an inbound listener has an address and filter chains, not an API listener",
        );
    }
    let address = address_of(&mut ctx, "address", pb.address)
        .unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut filter_chains = Vec::with_capacity(pb.filter_chains.len() + 1);
    for (i, c) in pb.filter_chains.into_iter().enumerate() {
        filter_chains.extend(chain(&mut ctx, &format!("filter_chains[{i}]"), c));
    }
    if let Some(c) = pb.default_filter_chain {
        filter_chains.extend(chain(&mut ctx, "default_filter_chain", c));
    }
    ctx.finish(InboundListener {
        name: pb.name,
        address,
        filter_chains,
    })
}

fn chain(ctx: &mut Ctx, at: &str, c: PbChain) -> Option<FilterChain> {
    #[allow(deprecated)]
    let PbChain {
        filter_chain_match,
        filters,
        use_proxy_proto,
        metadata: _,
        transport_socket,
        transport_socket_connect_timeout,
        name,
    } = c;
    reject_set!(ctx, at, "PROXY protocol is not supported"; use_proxy_proto);
    ignore_set!(ctx, at, transport_socket_connect_timeout);
    let (destination_port, transport) =
        chain_match(ctx, &join(at, "filter_chain_match"), filter_chain_match);
    let tls = transport_socket.and_then(|t| downstream_tls(ctx, &join(at, "transport_socket"), t));
    let http_filters = network_filters(ctx, &join(at, "filters"), filters)?;
    Some(FilterChain {
        name,
        destination_port,
        transport,
        tls,
        http_filters,
    })
}

fn chain_match(ctx: &mut Ctx, at: &str, m: Option<FilterChainMatch>) -> (Option<u16>, Transport) {
    let Some(FilterChainMatch {
        destination_port,
        prefix_ranges,
        address_suffix,
        suffix_len,
        direct_source_prefix_ranges,
        source_type,
        source_prefix_ranges,
        source_ports,
        server_names,
        transport_protocol,
        application_protocols,
    }) = m
    else {
        return (None, Transport::Any);
    };
    const NARROWS: &str = "matching on this is not supported; the chain would apply to connections it is not meant for";
    reject_set!(ctx, at, NARROWS; prefix_ranges, direct_source_prefix_ranges, source_type, source_prefix_ranges, source_ports, server_names, application_protocols);
    ignore_set!(ctx, at, address_suffix, suffix_len);
    let port = destination_port.and_then(|p| match u16::try_from(p.value) {
        Ok(p) if p > 0 => Some(p),
        _ => {
            ctx.error(
                join(at, "destination_port"),
                format!("{} is not a port", p.value),
            );
            None
        }
    });
    let transport = match transport_protocol.as_str() {
        "" => Transport::Any,
        "tls" => Transport::Tls,
        "raw_buffer" => Transport::Plaintext,
        other => {
            ctx.error(
                join(at, "transport_protocol"),
                format!("{other:?} is not tls or raw_buffer"),
            );
            Transport::Any
        }
    };
    (port, transport)
}

fn downstream_tls(ctx: &mut Ctx, at: &str, ts: TransportSocket) -> Option<DownstreamTls> {
    let any = match ts.config_type {
        Some(transport_socket::ConfigType::TypedConfig(any))
            if type_name(&any.type_url) == DOWNSTREAM_TLS_TYPE =>
        {
            any
        }
        _ => {
            ctx.error(
                at,
                format!("transport socket {:?} is not supported; only {TLS_TRANSPORT_SOCKET} with a DownstreamTlsContext", ts.name),
            );
            return None;
        }
    };
    let at = join(at, "typed_config");
    let DownstreamTlsContext {
        common_tls_context,
        require_client_certificate,
        require_sni,
        disable_stateful_session_resumption,
        session_timeout,
        ocsp_staple_policy,
        full_scan_certs_on_sni_mismatch,
        prefer_client_ciphers,
        session_ticket_keys_type,
    } = unpack_nested(ctx, &at, &any)?;
    reject_set!(ctx, &at, "SNI is not required by mesh servers"; require_sni);
    ignore_set!(
        ctx,
        &at,
        disable_stateful_session_resumption,
        session_timeout,
        ocsp_staple_policy,
        full_scan_certs_on_sni_mismatch,
        prefer_client_ciphers,
        session_ticket_keys_type
    );
    let require = require_client_certificate.is_some_and(|b| b.value);
    let at = join(&at, "common_tls_context");
    let Some(common) = common_tls_context else {
        ctx.error(at, "required");
        return None;
    };
    common_context(ctx, &at, common, require);
    Some(DownstreamTls {
        require_client_certificate: require,
    })
}

/// The server certificate and (for mTLS) the trust bundle must come from provider instances.
fn common_context(ctx: &mut Ctx, at: &str, c: CommonTlsContext, require_client: bool) {
    let (own, validation_context_type) = super::cluster::tls::certificate_sources(ctx, at, c);
    if !own {
        ctx.error(
            join(at, "tls_certificate_provider_instance"),
            "required: the server presents the workload's certificate",
        );
    }
    let has_bundle = match validation_context_type {
        Some(ValidationContextType::ValidationContext(v)) => {
            if v.trusted_ca.is_some()
                || v.system_root_certs.is_some()
                || v.watched_directory.is_some()
            {
                ctx.error(
                    join(at, "validation_context"),
                    "the trust bundle must come from a certificate-provider instance",
                );
            }
            if v.allow_expired_certificate {
                ctx.error(
                    join(at, "validation_context.allow_expired_certificate"),
                    "expired certificates are always refused",
                );
            }
            if !v.match_subject_alt_names.is_empty() || !v.match_typed_subject_alt_names.is_empty()
            {
                ctx.warn(join(at, "validation_context"), "client SAN matching is not supported; use an authorization policy on principals");
            }
            v.ca_certificate_provider_instance.is_some()
        }
        Some(ValidationContextType::CombinedValidationContext(c)) => {
            c.default_validation_context
                .is_some_and(|v| v.ca_certificate_provider_instance.is_some())
                || c.validation_context_certificate_provider_instance.is_some()
        }
        Some(ValidationContextType::ValidationContextCertificateProviderInstance(_)) => true,
        Some(_) => {
            ctx.error(
                join(at, "validation_context"),
                "the trust bundle must come from a certificate-provider instance, not SDS",
            );
            false
        }
        None => false,
    };
    if require_client && !has_bundle {
        ctx.error(
            join(at, "validation_context"),
            "require_client_certificate needs a ca_certificate_provider_instance to verify clients with",
        );
    }
}

/// Exactly one network filter, an HTTP connection manager with a catch-all non-forwarding route.
fn network_filters(ctx: &mut Ctx, at: &str, filters: Vec<Filter>) -> Option<Vec<InboundFilter>> {
    let count = filters.len();
    let Ok([Filter { name, config_type }]) = <[Filter; 1]>::try_from(filters) else {
        ctx.error(
            at,
            format!(
                "exactly one network filter, the HttpConnectionManager, is supported; got {count}"
            ),
        );
        return None;
    };
    let at = format!("{at}[0]");
    let any = match config_type {
        Some(filter::ConfigType::TypedConfig(any)) => any,
        _ => {
            ctx.error(&at, format!("{name:?}: typed_config is required"));
            return None;
        }
    };
    let (http_filters, routes) = hcm(ctx, &join(&at, "typed_config"), &any)?;
    match routes {
        Some(RouteSpecifier::RouteConfig(rc)) if catch_all(&rc) => {}
        _ => ctx.error(
            join(&at, "typed_config.route_config"),
            "only an inline route configuration with one catch-all non_forwarding_action route is supported",
        ),
    }
    Some(inbound_filters(
        ctx,
        &join(&at, "typed_config.http_filters"),
        http_filters,
    ))
}

fn catch_all(rc: &RouteConfiguration) -> bool {
    rc.virtual_hosts.iter().any(|v| {
        v.domains.iter().any(|d| d == "*")
            && v.routes.first().is_some_and(|r| {
                let everything = r.r#match.as_ref().is_some_and(|m| {
                    matches!(&m.path_specifier, Some(PathSpecifier::Prefix(p)) if p.is_empty() || p == "/")
                        && m.headers.is_empty()
                        && m.query_parameters.is_empty()
                });
                everything && matches!(r.action, Some(route::Action::NonForwardingAction(_)))
            })
    })
}

fn inbound_filters(ctx: &mut Ctx, at: &str, filters: Vec<HttpFilter>) -> Vec<InboundFilter> {
    let mut out = Vec::with_capacity(filters.len());
    for (i, f) in filters.into_iter().enumerate() {
        let at = format!("{at}[{i}]");
        let HttpFilter {
            name,
            is_optional,
            disabled,
            config_type,
        } = f;
        let Some(ConfigType::TypedConfig(any)) = config_type else {
            let reason = format!("{name:?}: typed_config is required");
            skip_or_reject(ctx, &at, None, is_optional, reason);
            continue;
        };
        if type_name(&any.type_url) == type_name(crate::codec::RBAC_TYPE) {
            if disabled {
                ctx.error(
                    join(&at, "disabled"),
                    "an RBAC filter disabled by default would serve without the check",
                );
            } else if let Some(r) = super::rbac::rbac_filter(ctx, &join(&at, "typed_config"), &any)
            {
                out.push(InboundFilter::Rbac(r));
            }
            continue;
        }
        if type_name(&any.type_url) == LOCAL_RATE_LIMIT_TYPE && !disabled {
            let field = join(&at, "typed_config");
            if let Some(rl) = unpack_nested::<LocalRateLimit>(ctx, &field, &any)
                .and_then(|rl| super::route::rate_limit::decode(ctx, &field, rl))
            {
                out.push(InboundFilter::RateLimit(rl));
            }
            continue;
        }
        let kind = FilterKind::of(&any);
        match kind {
            FilterKind::Router if !disabled => out.push(InboundFilter::Router),
            FilterKind::Fault if !disabled => {
                let field = join(&at, "typed_config");
                if let Some(f) = unpack_nested::<HttpFault>(ctx, &field, &any) {
                    let policy = super::route::fault::fault(ctx, &field, f);
                    out.push(InboundFilter::Fault(policy));
                }
            }
            other => {
                let reason = format!("{name:?}: {}", other.reason());
                skip_or_reject(
                    ctx,
                    &join(&at, "typed_config"),
                    Some(&other),
                    is_optional,
                    reason,
                );
            }
        }
    }
    out
}
