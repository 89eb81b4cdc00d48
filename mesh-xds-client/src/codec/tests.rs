use std::collections::BTreeSet;
use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::google::protobuf::Any;
use mesh_core::cluster::Cluster as ModelCluster;
use mesh_core::endpoint::{ClusterLoadAssignment as ModelAssignment, Endpoint, LocalityEndpoints};
use mesh_core::listener::Listener as ModelListener;
use mesh_core::route::{ForwardAction, Route, RouteAction, RouteMatch, RouteTable, VirtualHost};
use mesh_core::{MeshResources, Percent, cluster_name, target_name};
use prost::{Message, Name};

use super::*;

#[test]
fn type_url_constants_are_the_messages_own() {
    assert_eq!(LISTENER_TYPE, Listener::type_url());
    assert_eq!(ROUTE_TYPE, RouteConfiguration::type_url());
    assert_eq!(CLUSTER_TYPE, Cluster::type_url());
    assert_eq!(ENDPOINT_TYPE, ClusterLoadAssignment::type_url());
}

#[test]
fn to_any_uses_the_type_url_and_the_encoded_bytes() {
    let l = encode_listener(&ModelListener::api("ratings:9080"));
    let any = to_any(&l);
    assert_eq!(any.type_url, LISTENER_TYPE);
    assert_eq!(any.value, l.encode_to_vec());
    // An Any of an Any still names the inner message as a google.protobuf.Any.
    assert_eq!(
        to_any(&any).type_url,
        "type.googleapis.com/google.protobuf.Any"
    );
}

#[test]
fn durations_and_percentages() {
    let d = duration(Duration::new(3, 7));
    assert_eq!((d.seconds, d.nanos), (3, 7));
    let max = duration(Duration::MAX);
    assert_eq!((max.seconds, max.nanos), (315_576_000_000, 0));
    let f = fractional(Percent::from_percent(0.01));
    assert_eq!(f.numerator, 100);
    assert_eq!(
        f.denominator,
        envoy_types::pb::envoy::r#type::v3::fractional_percent::DenominatorType::Million as i32
    );
}

fn route_table(name: &str, cluster: &str) -> RouteTable {
    RouteTable {
        name: name.into(),
        virtual_hosts: vec![VirtualHost {
            name: "all".into(),
            domains: vec!["*".into()],
            routes: vec![Route {
                name: "default".into(),
                matcher: RouteMatch::default(),
                action: RouteAction::Forward(ForwardAction::to_cluster(cluster)),
                request_headers: Default::default(),
                response_headers: Default::default(),
                fault: None,
                rate_limit: None,
            }],
        }],
    }
}

fn assignment(name: &str, addr: &str) -> ModelAssignment {
    ModelAssignment {
        cluster_name: name.into(),
        localities: vec![LocalityEndpoints {
            endpoints: vec![Endpoint::new(addr.parse().unwrap())],
            ..Default::default()
        }],
    }
}

fn mesh() -> MeshResources {
    let mut r = MeshResources::default();
    for (host, addr) in [("reviews", "10.0.0.1:9080"), ("ratings", "10.0.0.2:9080")] {
        let target = target_name(host, 9080);
        let cluster = cluster_name(host, 9080, None);
        r.listeners
            .insert(target.clone(), ModelListener::api(target.clone()).into());
        r.route_tables
            .insert(target.clone(), route_table(&target, &cluster).into());
        r.clusters
            .insert(cluster.clone(), ModelCluster::new(cluster.clone()).into());
        r.assignments
            .insert(cluster.clone(), assignment(&cluster, addr).into());
    }
    r
}

fn decode_name(type_url: &str, any: &Any) -> String {
    assert_eq!(any.type_url, type_url);
    let bytes = any.value.as_slice();
    match type_url {
        LISTENER_TYPE => Listener::decode(bytes).unwrap().name,
        ROUTE_TYPE => RouteConfiguration::decode(bytes).unwrap().name,
        CLUSTER_TYPE => Cluster::decode(bytes).unwrap().name,
        ENDPOINT_TYPE => ClusterLoadAssignment::decode(bytes).unwrap().cluster_name,
        other => panic!("unexpected type {other}"),
    }
}

#[test]
fn encode_all_covers_every_resource() {
    let r = mesh();
    let (encoded, errors) = encode_all(&r);
    assert!(errors.is_empty(), "{errors:?}");

    let got: BTreeSet<(&str, String)> = encoded
        .iter()
        .map(|e| {
            assert_eq!(decode_name(e.type_url, &e.resource), e.name);
            (e.type_url, e.name.clone())
        })
        .collect();
    let want: BTreeSet<(&str, String)> = (r.listeners.keys().map(|k| (LISTENER_TYPE, k.clone())))
        .chain(r.route_tables.keys().map(|k| (ROUTE_TYPE, k.clone())))
        .chain(r.clusters.keys().map(|k| (CLUSTER_TYPE, k.clone())))
        .chain(r.assignments.keys().map(|k| (ENDPOINT_TYPE, k.clone())))
        .collect();
    assert_eq!(encoded.len(), 8);
    assert_eq!(got, want);

    // Kinds come in dependency order: listeners, routes, clusters, endpoints.
    let kinds: Vec<_> = encoded.iter().map(|e| e.type_url).collect();
    let mut sorted = kinds.clone();
    let rank = |t: &&str| {
        [LISTENER_TYPE, ROUTE_TYPE, CLUSTER_TYPE, ENDPOINT_TYPE]
            .iter()
            .position(|k| k == t)
    };
    sorted.sort_by_key(rank);
    assert_eq!(kinds, sorted);
}

#[test]
fn encode_all_reports_bad_resources_and_keeps_the_rest() {
    let mut r = mesh();
    let bad = cluster_name("reviews", 9080, None);
    std::sync::Arc::make_mut(r.clusters.get_mut(&bad).unwrap()).connect_timeout =
        std::time::Duration::ZERO;
    r.listeners.insert(
        "misfiled".into(),
        ModelListener::api(target_name("details", 9080)).into(),
    );

    let (encoded, errors) = encode_all(&r);
    assert_eq!(encoded.len(), 7, "everything else is still encoded");
    assert!(
        !encoded
            .iter()
            .any(|e| e.name == bad && e.type_url == CLUSTER_TYPE)
    );
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().any(|e| matches!(
        e,
        EncodeError::NameMismatch { kind: "Listener", key, .. } if key == "misfiled"
    )));
    assert!(
        errors
            .iter()
            .any(|e| matches!(e, EncodeError::OutOfRange { .. }) && e.resource() == bad)
    );
}
