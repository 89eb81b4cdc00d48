use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::cluster::v3::cluster::{
    ClusterDiscoveryType, DiscoveryType, LbConfig, LbPolicy as PbLbPolicy,
};
use envoy_types::pb::envoy::config::core::v3::{
    ApiVersion, RoutingPriority, config_source::ConfigSourceSpecifier,
};
use envoy_types::pb::google::protobuf as pbwk;
use mesh_core::Validate;
use mesh_core::cluster::{
    Cluster as ModelCluster, FailurePercentageEjection, LbPolicy, OutlierDetection, RetryBudget,
    SuccessRateEjection, UpstreamTls,
};
use prost::{Message, Name};

use crate::codec::{CLUSTER_TYPE, EncodeError, encode_cluster, to_any};

const NAME: &str = "outbound|9080|v2|reviews.default.svc.cluster.local";

fn model() -> ModelCluster {
    let mut c = ModelCluster::new(NAME);
    c.eds_service_name = "reviews-v2".into();
    c.connect_timeout = Duration::from_millis(250);
    c.circuit_breakers.max_connections = 100;
    c.circuit_breakers.max_pending_requests = 50;
    c.circuit_breakers.max_requests = 200;
    c.circuit_breakers.max_retries = 7;
    c.circuit_breakers.retry_budget = Some(RetryBudget {
        budget_percent: 25.0,
        min_retry_concurrency: 4,
    });
    c.outlier_detection = Some(OutlierDetection {
        consecutive_gateway_failure: Some(3),
        success_rate: Some(SuccessRateEjection {
            minimum_hosts: 5,
            request_volume: 100,
            stdev_factor: 1900,
        }),
        ..OutlierDetection::default()
    });
    c.validate().expect("the test model is valid");
    c
}

fn u32v(value: u32) -> Option<pbwk::UInt32Value> {
    Some(pbwk::UInt32Value { value })
}

fn secs(seconds: i64) -> Option<pbwk::Duration> {
    Some(pbwk::Duration { seconds, nanos: 0 })
}

#[test]
fn eds_over_ads_with_least_request() {
    let c = encode_cluster(&model()).expect("encodes");
    assert_eq!(c.name, NAME);
    assert_eq!(
        c.cluster_discovery_type,
        Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32))
    );
    let eds = c.eds_cluster_config.as_ref().expect("eds_cluster_config");
    assert_eq!(eds.service_name, "reviews-v2");
    let source = eds.eds_config.as_ref().expect("eds_config");
    assert!(matches!(
        source.config_source_specifier,
        Some(ConfigSourceSpecifier::Ads(_))
    ));
    assert_eq!(source.resource_api_version, ApiVersion::V3 as i32);
    assert_eq!(
        c.connect_timeout,
        Some(pbwk::Duration {
            seconds: 0,
            nanos: 250_000_000
        })
    );
    assert_eq!(c.lb_policy, PbLbPolicy::LeastRequest as i32);
    let Some(LbConfig::LeastRequestLbConfig(lr)) = &c.lb_config else {
        panic!("expected least_request_lb_config, got {:?}", c.lb_config);
    };
    assert_eq!(lr.choice_count, u32v(2));
    assert!(c.transport_socket.is_none());
}

#[test]
fn circuit_breaker_thresholds() {
    let c = encode_cluster(&model()).unwrap();
    let cb = c.circuit_breakers.expect("circuit_breakers");
    assert_eq!(cb.thresholds.len(), 1);
    let t = &cb.thresholds[0];
    assert_eq!(t.priority, RoutingPriority::Default as i32);
    assert_eq!(t.max_connections, u32v(100));
    assert_eq!(t.max_pending_requests, u32v(50));
    assert_eq!(t.max_requests, u32v(200));
    assert_eq!(t.max_retries, u32v(7));
    let b = t.retry_budget.expect("retry_budget");
    assert_eq!(b.budget_percent.map(|p| p.value), Some(25.0));
    assert_eq!(b.min_retry_concurrency, u32v(4));
}

#[test]
fn outlier_detection_enables_exactly_the_model_algorithms() {
    let c = encode_cluster(&model()).unwrap();
    let o = c.outlier_detection.expect("outlier_detection");
    assert_eq!(o.consecutive_5xx, u32v(5));
    assert_eq!(o.enforcing_consecutive_5xx, u32v(100));
    assert_eq!(o.consecutive_gateway_failure, u32v(3));
    assert_eq!(o.enforcing_consecutive_gateway_failure, u32v(100));
    assert_eq!(o.interval, secs(10));
    assert_eq!(o.base_ejection_time, secs(30));
    assert_eq!(o.max_ejection_time, secs(300));
    assert_eq!(o.max_ejection_percent, u32v(10));
    assert_eq!(o.enforcing_success_rate, u32v(100));
    assert_eq!(o.success_rate_minimum_hosts, u32v(5));
    assert_eq!(o.success_rate_request_volume, u32v(100));
    assert_eq!(o.success_rate_stdev_factor, u32v(1900));
    // Off explicitly: Envoy's default for failure percentage is off too, gRPC reads the field.
    assert_eq!(o.enforcing_failure_percentage, u32v(0));
    assert_eq!(o.failure_percentage_threshold, None);

    let mut m = model();
    m.outlier_detection = Some(OutlierDetection {
        consecutive_5xx: None,
        failure_percentage: Some(FailurePercentageEjection {
            threshold: 85,
            minimum_hosts: 5,
            request_volume: 50,
        }),
        ..OutlierDetection::default()
    });
    let o = encode_cluster(&m).unwrap().outlier_detection.unwrap();
    // Envoy enforces consecutive 5xx and success rate by default: both must be turned off.
    assert_eq!(o.enforcing_consecutive_5xx, u32v(0));
    assert_eq!(o.enforcing_success_rate, u32v(0));
    assert_eq!(o.enforcing_consecutive_gateway_failure, u32v(0));
    assert_eq!(o.enforcing_failure_percentage, u32v(100));
    assert_eq!(o.failure_percentage_threshold, u32v(85));
    assert_eq!(o.failure_percentage_minimum_hosts, u32v(5));
    assert_eq!(o.failure_percentage_request_volume, u32v(50));

    let mut none = model();
    none.outlier_detection = None;
    assert!(encode_cluster(&none).unwrap().outlier_detection.is_none());
}

#[test]
fn lb_policies() {
    let mut m = model();
    for (policy, expected) in [
        (LbPolicy::RoundRobin, PbLbPolicy::RoundRobin),
        (LbPolicy::Random, PbLbPolicy::Random),
        (LbPolicy::Maglev, PbLbPolicy::Maglev),
    ] {
        m.lb_policy = policy;
        let c = encode_cluster(&m).unwrap();
        assert_eq!(c.lb_policy, expected as i32);
        assert!(c.lb_config.is_none());
    }

    m.lb_policy = LbPolicy::RingHash {
        minimum_ring_size: 1024,
        maximum_ring_size: 8 * 1024 * 1024,
    };
    let c = encode_cluster(&m).unwrap();
    assert_eq!(c.lb_policy, PbLbPolicy::RingHash as i32);
    let Some(LbConfig::RingHashLbConfig(rh)) = c.lb_config else {
        panic!("expected ring_hash_lb_config");
    };
    assert_eq!(rh.minimum_ring_size.map(|v| v.value), Some(1024));
    assert_eq!(rh.maximum_ring_size.map(|v| v.value), Some(8 * 1024 * 1024));
}

#[test]
fn values_envoy_would_reject_are_errors_naming_the_field() {
    let mut m = model();
    m.lb_policy = LbPolicy::RingHash {
        minimum_ring_size: 1024,
        maximum_ring_size: 16 * 1024 * 1024,
    };
    let e = encode_cluster(&m).unwrap_err();
    assert!(matches!(
        &e,
        EncodeError::OutOfRange { field: "lb_policy.maximum_ring_size", resource, .. } if resource == NAME
    ));

    let mut m = model();
    if let Some(o) = &mut m.outlier_detection {
        o.base_ejection_time = Duration::ZERO;
    }
    let e = encode_cluster(&m).unwrap_err();
    assert!(
        matches!(
            &e,
            EncodeError::OutOfRange {
                field: "outlier_detection.base_ejection_time",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains(NAME), "{e}");
}

#[test]
fn tls_is_written_as_a_transport_socket() {
    let mut m = model();
    m.tls = Some(UpstreamTls {
        sni: Some("reviews".into()),
        san_matchers: vec![mesh_core::StringMatch::Exact(
            "spiffe://cluster.local/ns/default/sa/reviews".into(),
        )],
    });
    let c = encode_cluster(&m).unwrap();
    let ts = c.transport_socket.expect("TLS is never dropped");
    assert_eq!(ts.name, crate::codec::TLS_TRANSPORT_SOCKET);
    assert!(encode_cluster(&model()).unwrap().transport_socket.is_none());
}

#[test]
fn cluster_round_trips_through_any() {
    let c = encode_cluster(&model()).unwrap();
    let any = to_any(&c);
    assert_eq!(any.type_url, CLUSTER_TYPE);
    assert_eq!(any.type_url, Cluster::type_url());
    assert_eq!(Cluster::decode(any.value.as_slice()).unwrap(), c);
}

#[test]
fn load_balancing_policy_lists_a_fallback_grpc_implements() {
    use envoy_types::pb::envoy::extensions::load_balancing_policies::least_request::v3::LeastRequest;
    use prost::Message;

    let mut c = mesh_core::cluster::Cluster::new("c");
    c.lb_policy = mesh_core::cluster::LbPolicy::LeastRequest { choice_count: 3 };
    let pb = super::encode_cluster(&c).unwrap();
    let policies = pb.load_balancing_policy.unwrap().policies;
    let names: Vec<_> = policies
        .iter()
        .map(|p| p.typed_extension_config.as_ref().unwrap().name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "envoy.load_balancing_policies.least_request",
            "envoy.load_balancing_policies.round_robin"
        ]
    );
    let any = policies[0]
        .typed_extension_config
        .as_ref()
        .unwrap()
        .typed_config
        .as_ref()
        .unwrap();
    let lr = LeastRequest::decode(any.value.as_slice()).unwrap();
    assert_eq!(lr.choice_count.unwrap().value, 3);
}
