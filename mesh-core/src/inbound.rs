//! Inbound listeners: how a meshed server accepts connections (gRFC A36, as proxyless gRPC
//! servers read them).
//!
//! The control plane sends one [`InboundListener`] per workload address, named with the
//! bootstrap's `server_listener_resource_name_template` (Istio's
//! `xds.istio.io/grpc/lds/inbound/%s`, `%s` = `ip:port`). Its filter chains say, per destination
//! port, whether the connection must be mutual TLS (PeerAuthentication `STRICT`), may be either
//! (`PERMISSIVE`: one chain for TLS, one for plaintext) or is plaintext (`DISABLE`), and which
//! HTTP filters (authorization) run before the application.

use std::net::SocketAddr;

use serde::Serialize;

use crate::validate::{FieldErrors, Validate};

/// Istio's template for the names of inbound listeners of proxyless servers.
pub const INBOUND_TEMPLATE: &str = "xds.istio.io/grpc/lds/inbound/%s";

/// The inbound listener name for a server listening on `addr`, from a name template (`%s` is
/// replaced by `ip:port`, IPv6 in brackets).
///
/// ```
/// use mesh_core::inbound::{INBOUND_TEMPLATE, inbound_name};
/// assert_eq!(inbound_name(INBOUND_TEMPLATE, "10.0.0.7:9080".parse().unwrap()),
///            "xds.istio.io/grpc/lds/inbound/10.0.0.7:9080");
/// ```
pub fn inbound_name(template: &str, addr: SocketAddr) -> String {
    template.replace("%s", &addr.to_string())
}

/// A server-side listener.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InboundListener {
    /// Resource name (see [`inbound_name`]).
    pub name: String,
    /// The address the server listens on.
    pub address: SocketAddr,
    /// Chains in order; a connection uses the first whose match fits.
    pub filter_chains: Vec<FilterChain>,
}

/// What a connection must look like to use a chain (Envoy's `FilterChainMatch`,
/// `transport_protocol`). gRPC servers (A36) see every connection as `raw_buffer`: a PERMISSIVE
/// listener serves them plaintext only, since its TLS chain never matches there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// Any connection.
    Any,
    /// Connections that open with a TLS ClientHello (`transport_protocol: tls`).
    Tls,
    /// Connections that do not (`transport_protocol: raw_buffer`).
    Plaintext,
}

/// One filter chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilterChain {
    /// Name, for logs and debug views.
    pub name: String,
    /// Matches only connections to this port. Default: any port.
    pub destination_port: Option<u16>,
    /// Matches only this transport. Default: any.
    pub transport: Transport,
    /// TLS the server terminates: its certificate and trust bundle are the workload's identity
    /// (certificate-provider instances, gRFC A29). `None`: plaintext.
    pub tls: Option<DownstreamTls>,
    /// HTTP filters before the application, in order; the router is last.
    pub http_filters: Vec<InboundFilter>,
}

/// TLS on an inbound chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DownstreamTls {
    /// Clients must present a certificate the trust bundle vouches for (mutual TLS).
    pub require_client_certificate: bool,
}

/// HTTP filters of an inbound chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum InboundFilter {
    /// `envoy.filters.http.rbac`: authorization (AuthorizationPolicy), in chain order.
    Rbac(crate::rbac::Rbac),
    /// `envoy.filters.http.fault` with its filter-level config: delays and aborts for inbound
    /// requests.
    Fault(crate::route::FaultPolicy),
    /// `envoy.filters.http.local_ratelimit` with its filter-level token bucket: one bucket for
    /// all of the chain's requests, 429 when empty.
    RateLimit(crate::route::LocalRateLimit),
    /// `envoy.filters.http.router` with a catch-all `non_forwarding_action` route: hand the
    /// request to the application.
    Router,
}

impl FilterChain {
    /// The chain a PeerAuthentication mode implies for `port`: `STRICT` → mTLS required,
    /// `PERMISSIVE` → two chains (TLS and plaintext), `DISABLE` → plaintext.
    pub fn for_mode(
        mode: MtlsMode,
        port: u16,
        http_filters: Vec<InboundFilter>,
    ) -> Vec<FilterChain> {
        // No destination_port: the listener is per address and port already, and gRPC (A36)
        // never matches a chain that sets one.
        let chain = |name: &str, transport, tls| FilterChain {
            name: format!("inbound|{port}|{name}"),
            destination_port: None,
            transport,
            tls,
            http_filters: http_filters.clone(),
        };
        let mtls = Some(DownstreamTls {
            require_client_certificate: true,
        });
        match mode {
            MtlsMode::Strict => vec![chain("mtls", Transport::Any, mtls)],
            MtlsMode::Permissive => vec![
                chain("mtls", Transport::Tls, mtls),
                chain("plaintext", Transport::Plaintext, None),
            ],
            MtlsMode::Disable => vec![chain("plaintext", Transport::Any, None)],
        }
    }
}

/// PeerAuthentication's mutual-TLS modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MtlsMode {
    /// Only mutual TLS. The mesh's default.
    #[default]
    Strict,
    /// Mutual TLS or plaintext on the same port (migration).
    Permissive,
    /// Plaintext only.
    Disable,
}

impl FilterChain {
    /// The chain's RBAC filters, in order.
    pub fn rbac(&self) -> Vec<crate::rbac::Rbac> {
        self.http_filters
            .iter()
            .filter_map(|f| match f {
                InboundFilter::Rbac(r) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    /// The chain's fault filter config, if any (the first).
    pub fn fault(&self) -> Option<&crate::route::FaultPolicy> {
        self.http_filters.iter().find_map(|f| match f {
            InboundFilter::Fault(p) => Some(p),
            _ => None,
        })
    }

    /// The chain's local rate limit, if any (the first).
    pub fn rate_limit(&self) -> Option<&crate::route::LocalRateLimit> {
        self.http_filters.iter().find_map(|f| match f {
            InboundFilter::RateLimit(r) => Some(r),
            _ => None,
        })
    }
}

impl InboundListener {
    /// The chain a connection to `port` that does (`tls`) or does not start with a TLS
    /// ClientHello uses, if any.
    pub fn chain_for(&self, port: u16, tls: bool) -> Option<&FilterChain> {
        self.filter_chains.iter().find(|c| {
            c.destination_port.is_none_or(|p| p == port)
                && match c.transport {
                    Transport::Any => true,
                    Transport::Tls => tls,
                    Transport::Plaintext => !tls,
                }
        })
    }
}

impl Validate for InboundListener {
    fn validate(&self) -> Result<(), FieldErrors> {
        let mut errs = FieldErrors::default();
        if self.name.is_empty() {
            errs.push("name", "must not be empty");
        }
        if self.filter_chains.is_empty() {
            errs.push("filter_chains", "must not be empty");
        }
        for (i, c) in self.filter_chains.iter().enumerate() {
            for (j, f) in c.http_filters.iter().enumerate() {
                if let InboundFilter::Rbac(r) = f
                    && let Err(e) = r.validate()
                {
                    for fe in e.0 {
                        errs.push(
                            format!("filter_chains[{i}].http_filters[{j}].{}", fe.field),
                            fe.reason,
                        );
                    }
                }
            }
            if c.http_filters.last() != Some(&InboundFilter::Router) {
                errs.push(
                    format!("filter_chains[{i}].http_filters"),
                    "the router must be the last filter",
                );
            }
            if c.transport == Transport::Tls && c.tls.is_none() {
                errs.push(
                    format!("filter_chains[{i}].tls"),
                    "a chain matching TLS connections must terminate TLS",
                );
            }
        }
        errs.into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_pick_the_chain_a_connection_uses() {
        let l = |mode| InboundListener {
            name: "l".into(),
            address: "127.0.0.1:9080".parse().unwrap(),
            filter_chains: FilterChain::for_mode(mode, 9080, vec![InboundFilter::Router]),
        };
        let strict = l(MtlsMode::Strict);
        assert!(strict.validate().is_ok());
        assert!(
            strict.chain_for(9080, false).unwrap().tls.is_some(),
            "plaintext meets a TLS chain, and fails its handshake"
        );
        let mut pinned = strict.clone();
        pinned.filter_chains[0].destination_port = Some(9080);
        assert!(
            pinned.chain_for(9081, true).is_none(),
            "a chain for another port"
        );
        let permissive = l(MtlsMode::Permissive);
        assert!(permissive.chain_for(9080, true).unwrap().tls.is_some());
        assert!(permissive.chain_for(9080, false).unwrap().tls.is_none());
        assert!(
            l(MtlsMode::Disable)
                .chain_for(9080, true)
                .unwrap()
                .tls
                .is_none()
        );
    }
}
