//! Inbound listeners (gRFC A36): a socket listener per workload address whose filter chains,
//! matched by destination port and transport, carry the downstream TLS and the HTTP filters.
//!
//! Each chain holds one `HttpConnectionManager` with an inline route configuration whose single
//! catch-all route has a `non_forwarding_action` (the request goes to the application, as A36
//! requires for servers). TLS chains carry a `DownstreamTlsContext` naming the workload's
//! certificate-provider instances (gRFC A29) and `require_client_certificate` for mTLS.
//! Permissive chains match `transport_protocol` `tls` / `raw_buffer`. The listener carries no
//! `listener_filters` (gRPC NACKs any, A36), so an Envoy consuming a PERMISSIVE listener needs its
//! own TLS inspector; gRPC servers match every connection as `raw_buffer`.

use envoy_types::pb::envoy::config::core::v3::{
    Address, SocketAddress, TransportSocket, address, socket_address::PortSpecifier,
    transport_socket,
};
use envoy_types::pb::envoy::config::listener::v3::{
    Filter, FilterChain as PbChain, FilterChainMatch, Listener, filter,
};
use envoy_types::pb::envoy::config::route::v3::{
    NonForwardingAction, Route, RouteConfiguration, RouteMatch, VirtualHost, route,
    route_match::PathSpecifier,
};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, HttpFilter, http_connection_manager::RouteSpecifier,
    http_filter::ConfigType,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateProviderPluginInstance, CertificateValidationContext, CommonTlsContext,
    DownstreamTlsContext, common_tls_context::ValidationContextType,
};
use envoy_types::pb::google::protobuf::{BoolValue, UInt32Value};
use mesh_core::inbound::{FilterChain, InboundFilter, InboundListener, Transport};

use super::{IDENTITY_CERT, IDENTITY_PROVIDER, ROOT_CERT, TLS_TRANSPORT_SOCKET, to_any};

/// The HTTP filter name of the local rate limit.
const LOCAL_RATE_LIMIT_FILTER: &str = "envoy.filters.http.local_ratelimit";
/// The network filter name of the HTTP connection manager.
pub(super) const HCM_FILTER: &str = "envoy.filters.network.http_connection_manager";

/// Encodes an inbound listener.
pub fn encode_inbound(l: &InboundListener) -> Listener {
    Listener {
        name: l.name.clone(),
        address: Some(Address {
            address: Some(address::Address::SocketAddress(SocketAddress {
                address: l.address.ip().to_string(),
                port_specifier: Some(PortSpecifier::PortValue(u32::from(l.address.port()))),
                ..Default::default()
            })),
        }),
        filter_chains: l.filter_chains.iter().map(chain).collect(),
        traffic_direction: envoy_types::pb::envoy::config::core::v3::TrafficDirection::Inbound
            as i32,
        ..Default::default()
    }
}

fn chain(c: &FilterChain) -> PbChain {
    let hcm = HttpConnectionManager {
        stat_prefix: c.name.clone(),
        route_specifier: Some(RouteSpecifier::RouteConfig(RouteConfiguration {
            name: format!("{}|routes", c.name),
            virtual_hosts: vec![VirtualHost {
                name: "inbound".into(),
                domains: vec!["*".into()],
                routes: vec![Route {
                    name: "default".into(),
                    r#match: Some(RouteMatch {
                        path_specifier: Some(PathSpecifier::Prefix("/".into())),
                        ..Default::default()
                    }),
                    action: Some(route::Action::NonForwardingAction(NonForwardingAction {})),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        })),
        http_filters: c.http_filters.iter().map(http_filter).collect(),
        ..Default::default()
    };
    PbChain {
        name: c.name.clone(),
        filter_chain_match: Some(FilterChainMatch {
            destination_port: c.destination_port.map(|p| UInt32Value {
                value: u32::from(p),
            }),
            transport_protocol: match c.transport {
                Transport::Any => String::new(),
                Transport::Tls => "tls".into(),
                Transport::Plaintext => "raw_buffer".into(),
            },
            ..Default::default()
        }),
        filters: vec![Filter {
            name: HCM_FILTER.into(),
            config_type: Some(filter::ConfigType::TypedConfig(to_any(&hcm))),
        }],
        transport_socket: c.tls.map(|t| {
            let instance = |certificate_name: &str| CertificateProviderPluginInstance {
                instance_name: IDENTITY_PROVIDER.into(),
                certificate_name: certificate_name.into(),
            };
            let context = DownstreamTlsContext {
                common_tls_context: Some(CommonTlsContext {
                    tls_certificate_provider_instance: Some(instance(IDENTITY_CERT)),
                    validation_context_type: Some(ValidationContextType::ValidationContext(
                        CertificateValidationContext {
                            ca_certificate_provider_instance: Some(instance(ROOT_CERT)),
                            ..Default::default()
                        },
                    )),
                    ..Default::default()
                }),
                require_client_certificate: Some(BoolValue {
                    value: t.require_client_certificate,
                }),
                ..Default::default()
            };
            TransportSocket {
                name: TLS_TRANSPORT_SOCKET.into(),
                config_type: Some(transport_socket::ConfigType::TypedConfig(to_any(&context))),
            }
        }),
        ..Default::default()
    }
}

fn http_filter(f: &InboundFilter) -> HttpFilter {
    let (name, config) = match f {
        InboundFilter::Rbac(r) => (super::RBAC_FILTER_NAME, super::encode_rbac(r)),
        InboundFilter::Fault(f) => (
            super::listener::FAULT_FILTER,
            to_any(&super::route::fault(f)),
        ),
        InboundFilter::RateLimit(rl) => (
            LOCAL_RATE_LIMIT_FILTER,
            to_any(&super::route::local_rate_limit(rl)),
        ),
        InboundFilter::Router => (super::listener::ROUTER_FILTER, to_any(&Router::default())),
    };
    HttpFilter {
        name: name.to_owned(),
        config_type: Some(ConfigType::TypedConfig(config)),
        ..Default::default()
    }
}
