use std::collections::{BTreeMap, HashMap};

use envoy_types::pb::envoy::config::core::v3::{
    Address, HealthStatus as PbHealth, Pipe, address,
    socket_address::{PortSpecifier, Protocol},
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint as PbEndpoint, LbEndpoint, LedsClusterLocalityConfig,
    cluster_load_assignment::{Policy, policy::DropOverload},
    lb_endpoint::HostIdentifier,
    locality_lb_endpoints::LbConfig,
};
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use mesh_core::Validate;
use mesh_core::endpoint::{
    ClusterLoadAssignment as ModelAssignment, Endpoint, HealthStatus, Locality, LocalityEndpoints,
};

use super::{clean, rejected, warned};
use crate::codec::{decode_assignment, encode_assignment, to_any};

const NAME: &str = "outbound|9080||reviews.default.svc.cluster.local";

fn endpoint(addr: &str, weight: u32, health: HealthStatus, labels: &[(&str, &str)]) -> Endpoint {
    Endpoint {
        address: addr.parse().unwrap(),
        weight,
        health,
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
            .into(),
    }
}

fn model() -> ModelAssignment {
    let a = ModelAssignment {
        cluster_name: NAME.into(),
        localities: vec![
            LocalityEndpoints {
                locality: Locality::parse("us-east1/us-east1-b/rack7"),
                priority: 0,
                weight: None,
                endpoints: vec![
                    endpoint(
                        "10.0.0.1:9080",
                        3,
                        HealthStatus::Healthy,
                        &[("app", "reviews"), ("version", "v2")],
                    ),
                    endpoint("[fd00::2]:9080", 1, HealthStatus::Draining, &[]),
                    endpoint("10.0.0.3:9080", 1, HealthStatus::Unknown, &[]),
                ],
            },
            LocalityEndpoints {
                locality: Locality::parse("us-east1/us-east1-c"),
                priority: 0,
                weight: Some(7),
                endpoints: vec![
                    endpoint("10.0.1.1:9080", 2, HealthStatus::Degraded, &[("v", "1")]),
                    endpoint("10.0.1.2:9080", 1, HealthStatus::Unhealthy, &[]),
                ],
            },
            LocalityEndpoints {
                locality: Locality::parse("europe-west1"),
                priority: 1,
                weight: Some(2),
                endpoints: Vec::new(),
            },
            LocalityEndpoints {
                locality: Locality::parse("europe-west2"),
                priority: 1,
                weight: None,
                endpoints: Vec::new(),
            },
        ],
    };
    a.validate().expect("the test model is valid");
    a
}

fn encoded() -> ClusterLoadAssignment {
    encode_assignment(&model())
}

fn first_endpoint(a: &mut ClusterLoadAssignment) -> &mut LbEndpoint {
    &mut a.endpoints[0].lb_endpoints[0]
}

fn socket(a: &mut ClusterLoadAssignment) -> &mut address::Address {
    match &mut first_endpoint(a).host_identifier {
        Some(HostIdentifier::Endpoint(PbEndpoint {
            address: Some(Address { address: Some(a) }),
            ..
        })) => a,
        other => panic!("no address: {other:?}"),
    }
}

#[test]
fn round_trip() {
    let m = model();
    assert_eq!(clean(decode_assignment(&to_any(&encode_assignment(&m)))), m);
    let empty = ModelAssignment {
        cluster_name: NAME.into(),
        localities: Vec::new(),
    };
    let any = to_any(&encode_assignment(&empty));
    assert_eq!(clean(decode_assignment(&any)), empty);
}

#[test]
fn envoy_defaults_and_istio_shapes() {
    let mut a = encoded();
    // No weight means 1; TIMEOUT is unhealthy; named endpoints are resolved.
    let e = first_endpoint(&mut a);
    e.load_balancing_weight = None;
    e.health_status = PbHealth::Timeout as i32;
    let Some(HostIdentifier::Endpoint(pb)) = e.host_identifier.take() else {
        panic!("not an endpoint")
    };
    e.host_identifier = Some(HostIdentifier::EndpointName("ep1".into()));
    a.named_endpoints = HashMap::from([("ep1".to_owned(), pb)]);
    // Other metadata namespaces carry no behaviour for us.
    let md = first_endpoint(&mut a).metadata.as_mut().unwrap();
    md.filter_metadata.insert("istio".into(), Struct::default());
    let got = clean(decode_assignment(&to_any(&a)));
    let first = &got.localities[0].endpoints[0];
    assert_eq!(first.weight, 1);
    assert_eq!(first.health, HealthStatus::Unhealthy);
    assert_eq!(first.labels.len(), 2);
    assert_eq!(first.address, "10.0.0.1:9080".parse().unwrap());
}

#[test]
fn addresses_must_be_ip_sockets_with_numeric_tcp_ports() {
    let at = "endpoints[0].lb_endpoints[0].endpoint.address";
    let mut a = encoded();
    if let address::Address::SocketAddress(s) = socket(&mut a) {
        s.address = "reviews.default.svc".into();
    }
    let shown = rejected(decode_assignment(&to_any(&a)), NAME, at);
    assert!(shown.contains("not an IP address"), "{shown}");

    let mut a = encoded();
    if let address::Address::SocketAddress(s) = socket(&mut a) {
        s.port_specifier = Some(PortSpecifier::NamedPort("http".into()));
    }
    rejected(decode_assignment(&to_any(&a)), NAME, "named_port");

    let mut a = encoded();
    if let address::Address::SocketAddress(s) = socket(&mut a) {
        s.port_specifier = Some(PortSpecifier::PortValue(70000));
    }
    rejected(decode_assignment(&to_any(&a)), NAME, "port_value");

    let mut a = encoded();
    if let address::Address::SocketAddress(s) = socket(&mut a) {
        s.protocol = Protocol::Udp as i32;
    }
    rejected(decode_assignment(&to_any(&a)), NAME, "protocol");

    let mut a = encoded();
    *socket(&mut a) = address::Address::Pipe(Pipe::default());
    rejected(decode_assignment(&to_any(&a)), NAME, at);
}

#[test]
fn leds_and_unknown_endpoint_names_are_rejected() {
    let mut a = encoded();
    a.endpoints[2].lb_config = Some(LbConfig::LedsClusterLocalityConfig(
        LedsClusterLocalityConfig::default(),
    ));
    rejected(
        decode_assignment(&to_any(&a)),
        NAME,
        "endpoints[2].leds_cluster_locality_config",
    );

    let mut a = encoded();
    first_endpoint(&mut a).host_identifier = Some(HostIdentifier::EndpointName("nope".into()));
    rejected(
        decode_assignment(&to_any(&a)),
        NAME,
        "endpoints[0].lb_endpoints[0].endpoint_name",
    );
}

#[test]
fn validation_rules_apply() {
    // Priorities must be contiguous from 0.
    let mut a = encoded();
    for l in &mut a.endpoints {
        l.priority += 1;
    }
    rejected(decode_assignment(&to_any(&a)), NAME, "localities");
    // A zero endpoint weight.
    let mut a = encoded();
    first_endpoint(&mut a).load_balancing_weight = Some(Default::default());
    rejected(decode_assignment(&to_any(&a)), NAME, "weight");
}

#[test]
fn unsupported_settings_are_warnings() {
    let mut a = encoded();
    a.policy = Some(Policy {
        drop_overloads: vec![DropOverload::default()],
        ..Default::default()
    });
    assert_eq!(
        warned(decode_assignment(&to_any(&a)), "policy.drop_overloads"),
        model()
    );

    let mut a = encoded();
    if let Some(HostIdentifier::Endpoint(e)) = &mut first_endpoint(&mut a).host_identifier {
        e.health_check_config = Some(Default::default());
    }
    assert_eq!(
        warned(
            decode_assignment(&to_any(&a)),
            "endpoints[0].lb_endpoints[0].endpoint.health_check_config"
        ),
        model()
    );

    let mut a = encoded();
    let md = first_endpoint(&mut a).metadata.as_mut().unwrap();
    md.filter_metadata
        .get_mut("envoy.lb")
        .unwrap()
        .fields
        .insert(
            "canary".into(),
            Value {
                kind: Some(Kind::BoolValue(true)),
            },
        );
    let got = warned(decode_assignment(&to_any(&a)), "canary");
    assert_eq!(
        *got.localities[0].endpoints[0].labels,
        BTreeMap::from([
            ("app".to_owned(), "reviews".to_owned()),
            ("version".to_owned(), "v2".to_owned()),
        ])
    );
}
