use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3::{
    HealthStatus as PbHealth, address, socket_address::PortSpecifier,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, LbEndpoint, lb_endpoint::HostIdentifier,
};
use envoy_types::pb::google::protobuf::value::Kind;
use mesh_core::Validate;
use mesh_core::endpoint::{
    ClusterLoadAssignment as ModelAssignment, Endpoint, HealthStatus, Locality, LocalityEndpoints,
};
use prost::{Message, Name};

use crate::codec::{ENDPOINT_TYPE, encode_assignment, to_any};

fn endpoint(addr: &str, weight: u32) -> Endpoint {
    Endpoint {
        weight,
        ..Endpoint::new(addr.parse().unwrap())
    }
}

fn model() -> ModelAssignment {
    let mut labeled = endpoint("10.0.0.1:9080", 3);
    labeled.labels = BTreeMap::from([
        ("app".to_owned(), "reviews".to_owned()),
        ("version".to_owned(), "v2".to_owned()),
    ])
    .into();
    let mut draining = endpoint("[fd00::2]:9080", 1);
    draining.health = HealthStatus::Draining;
    let a = ModelAssignment {
        cluster_name: "outbound|9080||reviews".into(),
        localities: vec![
            LocalityEndpoints {
                locality: Locality::parse("us-east1/us-east1-b/rack7"),
                priority: 0,
                weight: None,
                endpoints: vec![labeled, draining],
            },
            LocalityEndpoints {
                locality: Locality::parse("us-east1/us-east1-c"),
                priority: 0,
                weight: Some(10),
                endpoints: vec![endpoint("10.0.1.1:9080", 1)],
            },
            LocalityEndpoints {
                locality: Locality::parse("us-west1"),
                priority: 1,
                weight: None,
                endpoints: Vec::new(),
            },
        ],
    };
    a.validate().expect("the test model is valid");
    a
}

fn socket(e: &LbEndpoint) -> (String, u32) {
    let Some(HostIdentifier::Endpoint(ep)) = &e.host_identifier else {
        panic!("expected an endpoint");
    };
    let Some(address::Address::SocketAddress(sa)) = &ep.address.as_ref().unwrap().address else {
        panic!("expected a socket address");
    };
    let Some(PortSpecifier::PortValue(port)) = sa.port_specifier else {
        panic!("expected a port value");
    };
    (sa.address.clone(), port)
}

#[test]
fn localities_priorities_and_weight_defaulting() {
    let cla = encode_assignment(&model());
    assert_eq!(cla.cluster_name, "outbound|9080||reviews");
    assert_eq!(cla.endpoints.len(), 3);

    let l0 = &cla.endpoints[0];
    let loc = l0.locality.as_ref().unwrap();
    assert_eq!(
        (
            loc.region.as_str(),
            loc.zone.as_str(),
            loc.sub_zone.as_str()
        ),
        ("us-east1", "us-east1-b", "rack7")
    );
    assert_eq!(l0.priority, 0);
    // No model weight: the sum of the endpoint weights (3 + 1), so gRPC does not drop it.
    assert_eq!(l0.load_balancing_weight.map(|w| w.value), Some(4));

    assert_eq!(
        cla.endpoints[1].load_balancing_weight.map(|w| w.value),
        Some(10)
    );

    let l2 = &cla.endpoints[2];
    assert_eq!(l2.priority, 1);
    assert!(l2.lb_endpoints.is_empty());
    assert!(
        l2.load_balancing_weight.is_none(),
        "Envoy rejects a weight of 0"
    );
}

#[test]
fn endpoints_addresses_health_weights_and_labels() {
    let cla = encode_assignment(&model());
    let eps = &cla.endpoints[0].lb_endpoints;

    assert_eq!(socket(&eps[0]), ("10.0.0.1".to_owned(), 9080));
    assert_eq!(eps[0].health_status, PbHealth::Healthy as i32);
    assert_eq!(eps[0].load_balancing_weight.map(|w| w.value), Some(3));
    let md = eps[0].metadata.as_ref().expect("labels as metadata");
    let lb = &md.filter_metadata["envoy.lb"];
    let labels: BTreeMap<_, _> = lb
        .fields
        .iter()
        .map(|(k, v)| match &v.kind {
            Some(Kind::StringValue(s)) => (k.as_str(), s.as_str()),
            other => panic!("label {k} is not a string: {other:?}"),
        })
        .collect();
    assert_eq!(
        labels,
        BTreeMap::from([("app", "reviews"), ("version", "v2")])
    );

    assert_eq!(socket(&eps[1]), ("fd00::2".to_owned(), 9080));
    assert_eq!(eps[1].health_status, PbHealth::Draining as i32);
    assert!(eps[1].metadata.is_none(), "no labels, no metadata");
}

#[test]
fn health_statuses_map_one_to_one() {
    for (model, pb) in [
        (HealthStatus::Unknown, PbHealth::Unknown),
        (HealthStatus::Healthy, PbHealth::Healthy),
        (HealthStatus::Unhealthy, PbHealth::Unhealthy),
        (HealthStatus::Draining, PbHealth::Draining),
        (HealthStatus::Degraded, PbHealth::Degraded),
    ] {
        assert_eq!(super::health(model), pb);
    }
}

#[test]
fn assignment_round_trips_through_any() {
    let cla = encode_assignment(&model());
    let any = to_any(&cla);
    assert_eq!(any.type_url, ENDPOINT_TYPE);
    assert_eq!(any.type_url, ClusterLoadAssignment::type_url());
    assert_eq!(
        ClusterLoadAssignment::decode(any.value.as_slice()).unwrap(),
        cla
    );
}
