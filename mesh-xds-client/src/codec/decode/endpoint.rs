//! Endpoints: `ClusterLoadAssignment` → [`mesh_core::endpoint::ClusterLoadAssignment`].

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

use envoy_types::pb::envoy::config::core::v3::{
    Address, HealthStatus as PbHealth, Locality as PbLocality, Metadata, SocketAddress, address,
    socket_address::{PortSpecifier, Protocol},
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint as PbEndpoint, LbEndpoint, LocalityLbEndpoints,
    cluster_load_assignment::Policy, lb_endpoint::HostIdentifier, locality_lb_endpoints,
};
use envoy_types::pb::google::protobuf::{Any, value::Kind};
use mesh_core::endpoint::{
    ClusterLoadAssignment as ModelAssignment, Endpoint, HealthStatus, Locality, LocalityEndpoints,
};

use super::{Ctx, DecodeError, Decoded, join, unpack};
use crate::codec::ENDPOINT_TYPE;

/// Metadata namespace Envoy's subset load balancer reads endpoint labels from.
const LB_METADATA: &str = "envoy.lb";
/// Envoy's default overprovisioning factor, in percent.
const DEFAULT_OVERPROVISIONING: u32 = 140;

/// Decodes and validates a `ClusterLoadAssignment`.
///
/// Endpoints must be IP socket addresses with a numeric TCP port (no DNS names, pipes, named
/// ports or resolvers); `endpoint_name` is resolved through `named_endpoints`. Labels are the
/// string values of the `envoy.lb` metadata namespace; other namespaces carry no behaviour for us
/// and are not read. An absent endpoint weight is 1; `TIMEOUT` health is read as unhealthy.
///
/// A locality's `load_balancing_weight` equal to the sum of its endpoints' weights is read as no
/// locality weight (`None`): that is how the encoder renders `None`, and the two give every
/// endpoint the same share. An absent weight is also `None`. Drop overloads, the
/// overprovisioning factor, `proximity` and endpoint health-check settings are warnings; LEDS is an
/// error.
///
/// # Errors
/// [`DecodeError::WrongType`] and [`DecodeError::Malformed`] for an `Any` that is not a
/// `ClusterLoadAssignment`; [`DecodeError::Invalid`] for the cases above and whatever
/// [`mesh_core::Validate`] rejects.
pub fn decode_assignment(any: &Any) -> Result<Decoded<ModelAssignment>, DecodeError> {
    let pb: ClusterLoadAssignment = unpack(any, ENDPOINT_TYPE)?;
    let mut ctx = Ctx::new("ClusterLoadAssignment", &pb.cluster_name);
    let ClusterLoadAssignment {
        cluster_name,
        endpoints,
        named_endpoints,
        policy,
    } = pb;
    if let Some(Policy {
        drop_overloads,
        overprovisioning_factor,
        endpoint_stale_after,
        weighted_priority_health,
    }) = policy
    {
        ignore_set!(
            ctx,
            "policy",
            drop_overloads,
            endpoint_stale_after,
            weighted_priority_health
        );
        if overprovisioning_factor.is_some_and(|f| f.value != DEFAULT_OVERPROVISIONING) {
            ctx.ignored("policy", "overprovisioning_factor");
        }
    }
    let localities = endpoints
        .into_iter()
        .enumerate()
        .map(|(i, l)| locality(&mut ctx, &format!("endpoints[{i}]"), l, &named_endpoints))
        .collect();
    let mut assignment = ModelAssignment {
        cluster_name,
        localities,
    };
    assignment.share_labels();
    ctx.finish(assignment)
}

fn locality(
    ctx: &mut Ctx,
    at: &str,
    l: LocalityLbEndpoints,
    named: &HashMap<String, PbEndpoint>,
) -> LocalityEndpoints {
    let LocalityLbEndpoints {
        locality,
        metadata: _,
        mut lb_endpoints,
        load_balancing_weight,
        priority,
        proximity,
        lb_config,
    } = l;
    ignore_set!(ctx, at, proximity);
    match lb_config {
        Some(locality_lb_endpoints::LbConfig::LoadBalancerEndpoints(list)) => {
            if lb_endpoints.is_empty() {
                lb_endpoints = list.lb_endpoints;
            } else {
                let reason = "lb_endpoints is set too; use one of them";
                ctx.error(join(at, "load_balancer_endpoints"), reason);
            }
        }
        Some(locality_lb_endpoints::LbConfig::LedsClusterLocalityConfig(_)) => {
            ctx.error(
                join(at, "leds_cluster_locality_config"),
                "LEDS is not supported",
            );
        }
        None => {}
    }
    // Not `collect()`: it would reuse the proto's much larger allocation in place and keep it
    // (~700 bytes per 48-byte endpoint) for as long as the endpoints live.
    let mut endpoints = Vec::with_capacity(lb_endpoints.len());
    endpoints.extend(
        lb_endpoints
            .into_iter()
            .enumerate()
            .filter_map(|(i, e)| endpoint(ctx, &format!("{at}.lb_endpoints[{i}]"), e, named)),
    );
    let sum = endpoints
        .iter()
        .fold(0u32, |sum, e| sum.saturating_add(e.weight));
    let weight = load_balancing_weight
        .map(|w| w.value)
        .filter(|w| endpoints.is_empty() || *w != sum);
    let PbLocality {
        region,
        zone,
        sub_zone,
    } = locality.unwrap_or_default();
    LocalityEndpoints {
        locality: Locality {
            region,
            zone,
            sub_zone,
        },
        priority,
        weight,
        endpoints,
    }
}

fn endpoint(
    ctx: &mut Ctx,
    at: &str,
    e: LbEndpoint,
    named: &HashMap<String, PbEndpoint>,
) -> Option<Endpoint> {
    let LbEndpoint {
        health_status,
        metadata,
        load_balancing_weight,
        host_identifier,
    } = e;
    let health = match PbHealth::try_from(health_status) {
        Ok(PbHealth::Unknown) => HealthStatus::Unknown,
        Ok(PbHealth::Healthy) => HealthStatus::Healthy,
        Ok(PbHealth::Unhealthy | PbHealth::Timeout) => HealthStatus::Unhealthy,
        Ok(PbHealth::Draining) => HealthStatus::Draining,
        Ok(PbHealth::Degraded) => HealthStatus::Degraded,
        Err(_) => {
            let reason = format!("unknown health status {health_status}");
            ctx.error(join(at, "health_status"), reason);
            HealthStatus::Unknown
        }
    };
    let (ep_at, pb) = match host_identifier {
        Some(HostIdentifier::Endpoint(e)) => (join(at, "endpoint"), e),
        Some(HostIdentifier::EndpointName(n)) => match named.get(&n) {
            Some(e) => (format!("named_endpoints[{n:?}]"), e.clone()),
            None => {
                let reason = format!("{n:?} is not in named_endpoints");
                ctx.error(join(at, "endpoint_name"), reason);
                return None;
            }
        },
        None => {
            ctx.error(join(at, "endpoint"), "required");
            return None;
        }
    };
    let address = socket_address(ctx, &ep_at, pb);
    let labels = labels(ctx, at, metadata);
    Some(Endpoint {
        address: address?,
        weight: load_balancing_weight.map_or(1, |w| w.value),
        health,
        labels: labels.into(),
    })
}

fn socket_address(ctx: &mut Ctx, at: &str, e: PbEndpoint) -> Option<SocketAddr> {
    let PbEndpoint {
        address,
        health_check_config,
        hostname,
        additional_addresses,
        observability_name,
    } = e;
    ignore_set!(
        ctx,
        at,
        health_check_config,
        hostname,
        additional_addresses,
        observability_name
    );
    address_of(ctx, &join(at, "address"), address)
}

/// A TCP socket address with a literal IP (`at` is the path of the `Address`).
pub(super) fn address_of(ctx: &mut Ctx, at: &str, address: Option<Address>) -> Option<SocketAddr> {
    let at = at.to_string();
    let sa = match address {
        Some(Address {
            address: Some(address::Address::SocketAddress(sa)),
        }) => sa,
        Some(Address { address: Some(_) }) => {
            ctx.error(
                at,
                "only socket addresses are supported (not pipes or internal addresses)",
            );
            return None;
        }
        _ => {
            ctx.error(at, "required");
            return None;
        }
    };
    let SocketAddress {
        protocol,
        address,
        resolver_name,
        ipv4_compat,
        network_namespace_filepath,
        port_specifier,
    } = sa;
    let at = join(&at, "socket_address");
    ignore_set!(ctx, &at, ipv4_compat, network_namespace_filepath);
    if protocol != Protocol::Tcp as i32 {
        ctx.error(join(&at, "protocol"), "only TCP is supported");
    }
    if !resolver_name.is_empty() {
        ctx.error(
            join(&at, "resolver_name"),
            "custom resolvers are not supported",
        );
    }
    let ip = match address.parse::<IpAddr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            let reason = format!("{address:?} is not an IP address (names are not resolved)");
            ctx.error(join(&at, "address"), reason);
            None
        }
    };
    let port = match port_specifier {
        Some(PortSpecifier::PortValue(p)) => u16::try_from(p).ok().or_else(|| {
            ctx.error(join(&at, "port_value"), format!("{p} is not a port"));
            None
        }),
        Some(PortSpecifier::NamedPort(_)) => {
            ctx.error(join(&at, "named_port"), "named ports are not supported");
            None
        }
        None => {
            ctx.error(join(&at, "port_value"), "required");
            None
        }
    };
    Some(SocketAddr::new(ip?, port?))
}

/// The string values of `filter_metadata["envoy.lb"]`.
fn labels(ctx: &mut Ctx, at: &str, m: Option<Metadata>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(mut m) = m else { return out };
    let Some(lb) = m.filter_metadata.remove(LB_METADATA) else {
        return out;
    };
    for (k, v) in lb.fields {
        match v.kind {
            Some(Kind::StringValue(s)) => {
                out.insert(k, s);
            }
            _ => ctx.warn(
                format!("{at}.metadata.filter_metadata[{LB_METADATA:?}][{k:?}]"),
                "only string label values are supported; ignored",
            ),
        }
    }
    out
}
