use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::{
    Cluster, LoadBalancingPolicy, OutlierDetection as PbOutlierDetection,
    cluster::{ClusterDiscoveryType, CommonLbConfig, DiscoveryType, LbPolicy as PbLbPolicy},
    load_balancing_policy::Policy,
};
use envoy_types::pb::envoy::config::core::v3::{
    ConfigSource, HealthCheck, TransportSocket, TypedExtensionConfig,
    config_source::ConfigSourceSpecifier, transport_socket,
};
use envoy_types::pb::envoy::extensions::load_balancing_policies::{
    client_side_weighted_round_robin::v3::ClientSideWeightedRoundRobin, ring_hash::v3::RingHash,
    wrr_locality::v3::WrrLocality,
};
use envoy_types::pb::envoy::extensions::transport_sockets::raw_buffer::v3::RawBuffer;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, UpstreamTlsContext,
    certificate_validation_context::TrustChainVerification,
    common_tls_context::ValidationContextType,
};
use envoy_types::pb::google::protobuf::{Any, UInt32Value, UInt64Value};
use mesh_core::StringMatch;
use mesh_core::Validate;
use mesh_core::cluster::{
    Cluster as ModelCluster, FailurePercentageEjection, LbPolicy, OutlierDetection, RetryBudget,
    SuccessRateEjection, UpstreamTls,
};

use super::{clean, rejected, warned};
use crate::codec::{
    IDENTITY_CERT, IDENTITY_PROVIDER, TLS_TRANSPORT_SOCKET, decode_cluster, encode_cluster, to_any,
};

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
        consecutive_5xx: None,
        consecutive_gateway_failure: Some(3),
        interval: Duration::from_secs(5),
        base_ejection_time: Duration::from_secs(15),
        max_ejection_time: Duration::from_secs(120),
        max_ejection_percent: 50,
        success_rate: Some(SuccessRateEjection {
            minimum_hosts: 3,
            request_volume: 20,
            stdev_factor: 1500,
        }),
        failure_percentage: Some(FailurePercentageEjection {
            threshold: 70,
            minimum_hosts: 2,
            request_volume: 10,
        }),
    });
    c.validate().expect("the test model is valid");
    c
}

fn encoded() -> Cluster {
    encode_cluster(&model()).unwrap()
}

#[test]
fn round_trip() {
    let lb_policies = [
        LbPolicy::RoundRobin,
        LbPolicy::LeastRequest { choice_count: 3 },
        LbPolicy::Random,
        LbPolicy::RingHash {
            minimum_ring_size: 512,
            maximum_ring_size: 4096,
        },
        LbPolicy::Maglev,
    ];
    for lb_policy in lb_policies {
        let m = ModelCluster {
            lb_policy,
            ..model()
        };
        let any = to_any(&encode_cluster(&m).unwrap());
        assert_eq!(clean(decode_cluster(&any)), m);
    }
    // Defaults, and outlier detection with only consecutive 5xx on.
    let mut m = ModelCluster::new(NAME);
    m.outlier_detection = Some(OutlierDetection::default());
    let any = to_any(&encode_cluster(&m).unwrap());
    assert_eq!(clean(decode_cluster(&any)), m);
    let m = ModelCluster::new(NAME);
    assert_eq!(
        clean(decode_cluster(&to_any(&encode_cluster(&m).unwrap()))),
        m
    );
}

#[test]
fn envoy_defaults_apply_to_unset_fields() {
    let c = Cluster {
        name: NAME.into(),
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Eds as i32)),
        eds_cluster_config: Some(Default::default()),
        outlier_detection: Some(PbOutlierDetection::default()),
        ..Default::default()
    };
    // `eds_config` is unset: a warning; the assignment is requested on the ADS stream anyway.
    let got = warned(decode_cluster(&to_any(&c)), "eds_cluster_config.eds_config");
    let mut want = ModelCluster::new(NAME);
    want.connect_timeout = Duration::from_secs(5);
    want.lb_policy = LbPolicy::RoundRobin;
    want.outlier_detection = Some(OutlierDetection {
        // Envoy enforces success-rate ejection by default (enforcing_success_rate: 100).
        success_rate: Some(SuccessRateEjection {
            minimum_hosts: 5,
            request_volume: 100,
            stdev_factor: 1900,
        }),
        ..OutlierDetection::default()
    });
    assert_eq!(got, want);
}

fn tls_model() -> ModelCluster {
    let mut c = model();
    c.tls = Some(UpstreamTls {
        sni: Some("reviews.default.svc.cluster.local".into()),
        san_matchers: vec![
            StringMatch::Exact("spiffe://cluster.local/ns/default/sa/reviews".into()),
            StringMatch::Prefix("spiffe://cluster.local/ns/canary/".into()),
        ],
    });
    c
}

/// The `UpstreamTlsContext` inside an encoded TLS cluster, to tamper with.
fn tls_context(c: &Cluster) -> UpstreamTlsContext {
    let Some(TransportSocket {
        config_type: Some(transport_socket::ConfigType::TypedConfig(any)),
        ..
    }) = &c.transport_socket
    else {
        panic!("no transport socket: {c:?}")
    };
    prost::Message::decode(any.value.as_slice()).unwrap()
}

fn with_tls_context(mut c: Cluster, ctx: &UpstreamTlsContext) -> Cluster {
    c.transport_socket = Some(TransportSocket {
        name: TLS_TRANSPORT_SOCKET.into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(to_any(ctx))),
    });
    c
}

#[test]
fn upstream_mtls_round_trips_in_a29_form() {
    let model = tls_model();
    let pb = encode_cluster(&model).unwrap();
    let ctx = tls_context(&pb);
    let common = ctx.common_tls_context.clone().unwrap();
    let identity = common.tls_certificate_provider_instance.unwrap();
    assert_eq!(
        (
            identity.instance_name.as_str(),
            identity.certificate_name.as_str()
        ),
        (IDENTITY_PROVIDER, IDENTITY_CERT)
    );
    let decoded = clean(decode_cluster(&to_any(&pb)));
    assert_eq!(decoded, model);
}

#[test]
fn tls_that_would_weaken_verification_is_rejected_not_downgraded() {
    let pb = encode_cluster(&tls_model()).unwrap();
    let base = tls_context(&pb);
    fn validation(ctx: &mut UpstreamTlsContext) -> &mut CertificateValidationContext {
        match ctx
            .common_tls_context
            .as_mut()
            .unwrap()
            .validation_context_type
            .as_mut()
            .unwrap()
        {
            ValidationContextType::CombinedValidationContext(c) => {
                c.default_validation_context.as_mut().unwrap()
            }
            other => panic!("{other:?}"),
        }
    }
    type Tamper = Box<dyn Fn(&mut UpstreamTlsContext)>;
    let cases: Vec<(&str, Tamper)> = vec![
        (
            "trust_chain_verification",
            Box::new(|c| {
                validation(c).trust_chain_verification =
                    TrustChainVerification::AcceptUntrusted as i32
            }),
        ),
        (
            "allow_expired_certificate",
            Box::new(|c| validation(c).allow_expired_certificate = true),
        ),
        (
            "ca_certificate_provider_instance",
            Box::new(|c| validation(c).ca_certificate_provider_instance = None),
        ),
        (
            "verify_certificate_hash",
            Box::new(|c| validation(c).verify_certificate_hash = vec!["ab:cd".into()]),
        ),
        (
            "tls_certificates",
            Box::new(|c| {
                c.common_tls_context.as_mut().unwrap().tls_certificates = vec![Default::default()]
            }),
        ),
        (
            "common_tls_context",
            Box::new(|c| {
                c.common_tls_context
                    .as_mut()
                    .unwrap()
                    .validation_context_type = None
            }),
        ),
    ];
    for (field, tamper) in cases {
        let mut ctx = base.clone();
        tamper(&mut ctx);
        let shown = rejected(
            decode_cluster(&to_any(&with_tls_context(pb.clone(), &ctx))),
            NAME,
            field,
        );
        assert!(shown.contains(NAME), "{shown}");
    }

    let mut other = pb.clone();
    other.transport_socket = Some(TransportSocket {
        name: "envoy.transport_sockets.raw_buffer".into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(to_any(
            &RawBuffer::default(),
        ))),
    });
    let shown = rejected(decode_cluster(&to_any(&other)), NAME, "transport_socket");
    assert!(shown.contains("raw_buffer"), "{shown}");

    let mut c = encoded();
    c.transport_socket_matches = vec![Default::default()];
    rejected(
        decode_cluster(&to_any(&c)),
        NAME,
        "transport_socket_matches",
    );
}

#[test]
fn cluster_types_other_than_eds_are_rejected() {
    for t in [
        DiscoveryType::OriginalDst,
        DiscoveryType::Static,
        DiscoveryType::StrictDns,
        DiscoveryType::LogicalDns,
    ] {
        let mut c = encoded();
        c.cluster_discovery_type = Some(ClusterDiscoveryType::Type(t as i32));
        let shown = rejected(decode_cluster(&to_any(&c)), NAME, "type");
        assert!(shown.contains(t.as_str_name()), "{shown}");
    }
    // Unset is STATIC.
    let mut c = encoded();
    c.cluster_discovery_type = None;
    rejected(decode_cluster(&to_any(&c)), NAME, "type");
}

#[test]
fn subsets_upstream_filters_and_oversized_rings_are_rejected() {
    let mut c = encoded();
    c.lb_subset_config = Some(Default::default());
    rejected(decode_cluster(&to_any(&c)), NAME, "lb_subset_config");

    let mut c = encoded();
    c.filters = vec![Default::default()];
    rejected(decode_cluster(&to_any(&c)), NAME, "filters");

    let mut ring = ModelCluster::new(NAME);
    ring.lb_policy = LbPolicy::RingHash {
        minimum_ring_size: 1024,
        maximum_ring_size: 8 * 1024 * 1024,
    };
    let mut pb = encode_cluster(&ring).unwrap();
    // The legacy `lb_config` is read only without a `load_balancing_policy`.
    pb.load_balancing_policy = None;
    if let Some(envoy_types::pb::envoy::config::cluster::v3::cluster::LbConfig::RingHashLbConfig(
        r,
    )) = &mut pb.lb_config
    {
        r.maximum_ring_size = Some(UInt64Value {
            value: 16 * 1024 * 1024,
        });
    }
    rejected(
        decode_cluster(&to_any(&pb)),
        NAME,
        "ring_hash_lb_config.maximum_ring_size",
    );

    let mut c = encoded();
    c.lb_policy = PbLbPolicy::ClusterProvided as i32;
    c.lb_config = None;
    c.load_balancing_policy = None;
    rejected(decode_cluster(&to_any(&c)), NAME, "lb_policy");
}

#[test]
fn zero_connect_timeout_is_rejected_by_validation() {
    let mut c = encoded();
    c.connect_timeout = Some(Default::default());
    rejected(decode_cluster(&to_any(&c)), NAME, "connect_timeout");
}

#[test]
fn unsupported_settings_are_warnings() {
    let mut c = encoded();
    c.health_checks = vec![HealthCheck::default()];
    assert_eq!(
        warned(decode_cluster(&to_any(&c)), "health_checks"),
        model()
    );

    let mut c = encoded();
    c.common_lb_config = Some(CommonLbConfig {
        update_merge_window: Some(Default::default()),
        ..Default::default()
    });
    assert_eq!(
        warned(decode_cluster(&to_any(&c)), "common_lb_config"),
        model()
    );

    let mut c = encoded();
    c.max_requests_per_connection = Some(UInt32Value { value: 1 });
    warned(decode_cluster(&to_any(&c)), "max_requests_per_connection");

    // Istio's upstream HTTP protocol options.
    let mut c = encoded();
    c.typed_extension_protocol_options.insert(
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions".into(),
        Any {
            type_url: "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
                .into(),
            value: Vec::new(),
        },
    );
    warned(
        decode_cluster(&to_any(&c)),
        "typed_extension_protocol_options",
    );

    let mut c = encoded();
    c.eds_cluster_config.as_mut().unwrap().eds_config = Some(ConfigSource {
        config_source_specifier: Some(ConfigSourceSpecifier::Path("/eds".into())),
        ..Default::default()
    });
    warned(decode_cluster(&to_any(&c)), "eds_cluster_config.eds_config");
}

#[test]
fn partial_enforcement_is_read_as_full_with_a_warning() {
    let mut c = encoded();
    c.outlier_detection
        .as_mut()
        .unwrap()
        .enforcing_consecutive_gateway_failure = Some(UInt32Value { value: 50 });
    let got = warned(
        decode_cluster(&to_any(&c)),
        "outlier_detection.enforcing_consecutive_gateway_failure",
    );
    assert_eq!(got, model());
}

fn typed_policy(any: Any) -> Policy {
    Policy {
        typed_extension_config: Some(TypedExtensionConfig {
            name: "lb".into(),
            typed_config: Some(any),
        }),
    }
}

#[test]
fn typed_load_balancing_policies() {
    // gRPC's shape: wrr_locality around ring_hash, after a policy we do not support.
    let ring = RingHash {
        minimum_ring_size: Some(UInt64Value { value: 2048 }),
        ..Default::default()
    };
    let wrr = WrrLocality {
        endpoint_picking_policy: Some(LoadBalancingPolicy {
            policies: vec![typed_policy(to_any(&ring))],
        }),
    };
    let mut c = encoded();
    c.lb_policy = 0;
    c.lb_config = None;
    c.load_balancing_policy = Some(LoadBalancingPolicy {
        policies: vec![
            typed_policy(to_any(&ClientSideWeightedRoundRobin::default())),
            typed_policy(to_any(&wrr)),
        ],
    });
    let got = warned(
        decode_cluster(&to_any(&c)),
        "load_balancing_policy.policies[0]",
    );
    assert_eq!(
        got.lb_policy,
        LbPolicy::RingHash {
            minimum_ring_size: 2048,
            maximum_ring_size: 8 * 1024 * 1024
        }
    );

    // Nothing we support: a warning, and Envoy's default.
    c.load_balancing_policy = Some(LoadBalancingPolicy {
        policies: vec![typed_policy(to_any(
            &ClientSideWeightedRoundRobin::default(),
        ))],
    });
    let got = warned(decode_cluster(&to_any(&c)), "load_balancing_policy");
    assert_eq!(got.lb_policy, LbPolicy::RoundRobin);
}
