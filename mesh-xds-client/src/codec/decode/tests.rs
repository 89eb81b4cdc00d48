//! Decoder tests: the `Any` checks and error shapes here; each resource kind in its own file.

use std::fmt::Debug;

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster::LbConfig};
use envoy_types::pb::google::protobuf::{self as pbwk, Any, UInt32Value};
use mesh_core::cluster::Cluster as ModelCluster;
use mesh_core::listener::Listener as ModelListener;

use super::*;
use crate::codec::{
    CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, encode_cluster, encode_listener, to_any,
};

mod cluster;
mod endpoint;
mod inbound;
mod listener;
mod rbac;
mod route;

/// Asserts that decoding failed with [`DecodeError::Invalid`] for `resource`, whose Display names
/// the resource and a field containing `field`.
#[track_caller]
pub(super) fn rejected<T: Debug>(
    r: Result<Decoded<T>, DecodeError>,
    resource: &str,
    field: &str,
) -> String {
    let e = r.expect_err("the resource must be rejected");
    let shown = e.to_string();
    assert_eq!(e.resource(), Some(resource), "{shown}");
    assert!(shown.contains(&format!("{resource:?}")), "{shown}");
    assert!(shown.contains(field), "{shown} does not name {field}");
    assert!(
        matches!(&e, DecodeError::Invalid { .. }),
        "{shown}: not Invalid"
    );
    shown
}

/// Asserts that decoding succeeded with a warning on a field containing `field`, and returns the
/// value.
#[track_caller]
pub(super) fn warned<T: Debug>(r: Result<Decoded<T>, DecodeError>, field: &str) -> T {
    let d = r.unwrap_or_else(|e| panic!("the resource must be accepted: {e}"));
    assert!(
        d.warnings.iter().any(|w| w.field.contains(field)),
        "no warning on {field}: {:?}",
        d.warnings
    );
    d.value
}

/// Asserts that decoding succeeded without warnings, and returns the value.
#[track_caller]
pub(super) fn clean<T: Debug>(r: Result<Decoded<T>, DecodeError>) -> T {
    let d = r.unwrap_or_else(|e| panic!("the resource must be accepted: {e}"));
    assert!(
        d.warnings.is_empty(),
        "unexpected warnings: {:?}",
        d.warnings
    );
    d.value
}

fn cluster_any() -> Any {
    to_any(&encode_cluster(&ModelCluster::new("outbound|80||a")).unwrap())
}

#[test]
fn every_decoder_checks_the_type_url() {
    let listener = to_any(&encode_listener(&ModelListener::api("a:80")));
    let cluster = cluster_any();
    let e = decode_cluster(&listener).unwrap_err();
    assert_eq!(
        e,
        DecodeError::WrongType {
            expected: CLUSTER_TYPE,
            got: LISTENER_TYPE.into()
        }
    );
    assert!(e.is_undecodable());
    assert_eq!(e.resource(), None);
    let shown = e.to_string();
    assert!(
        shown.contains(CLUSTER_TYPE) && shown.contains(LISTENER_TYPE),
        "{shown}"
    );
    for (expected, err) in [
        (LISTENER_TYPE, decode_listener(&cluster).unwrap_err()),
        (ROUTE_TYPE, decode_route_table(&cluster).unwrap_err()),
        (ENDPOINT_TYPE, decode_assignment(&cluster).unwrap_err()),
        (
            LISTENER_TYPE,
            decode_inbound_listener(&cluster).unwrap_err(),
        ),
    ] {
        assert!(
            matches!(err, DecodeError::WrongType { expected: e, .. } if e == expected),
            "{err}"
        );
    }
}

#[test]
fn any_type_url_prefix_is_accepted() {
    // The message name follows the last '/'; the host part is not checked, as protobuf's Any.
    let mut any = cluster_any();
    any.type_url = "example.com/envoy.config.cluster.v3.Cluster".into();
    assert_eq!(clean(decode_cluster(&any)).name, "outbound|80||a");
}

#[test]
fn garbage_bytes_are_malformed() {
    let any = Any {
        type_url: CLUSTER_TYPE.into(),
        // Field 1 (name) as length-delimited with a length running past the end.
        value: vec![0x0a, 0x7f, b'x'],
    };
    let e = decode_cluster(&any).unwrap_err();
    assert!(
        matches!(&e, DecodeError::Malformed { type_url, .. } if *type_url == CLUSTER_TYPE),
        "{e:?}"
    );
    assert!(e.is_undecodable());
    assert!(std::error::Error::source(&e).is_some());
    assert!(e.to_string().contains(CLUSTER_TYPE), "{e}");
}

#[test]
fn several_errors_are_reported_together() {
    let mut c = encode_cluster(&ModelCluster::new("outbound|80||a")).unwrap();
    c.connect_timeout = Some(pbwk::Duration {
        seconds: 0,
        nanos: 0,
    });
    // The default model balances by least request, so the encoder wrote a least-request config;
    // the legacy `lb_config` is read only without a `load_balancing_policy`.
    c.load_balancing_policy = None;
    if let Some(LbConfig::LeastRequestLbConfig(l)) = &mut c.lb_config {
        l.choice_count = Some(UInt32Value { value: 1 });
    }
    let e = decode_cluster(&to_any(&c)).unwrap_err();
    assert_eq!(e.field(), Some("connect_timeout"));
    let shown = e.to_string();
    assert!(
        shown.starts_with("Cluster \"outbound|80||a\": connect_timeout: "),
        "{shown}"
    );
    assert!(shown.contains("; also lb_policy.choice_count: "), "{shown}");
}

#[test]
fn warnings_name_the_resource_and_field() {
    let w = Warning {
        resource: "outbound|80||a".into(),
        field: "health_checks".into(),
        reason: "not supported; ignored".into(),
    };
    assert_eq!(
        w.to_string(),
        "outbound|80||a: health_checks: not supported; ignored"
    );
}

#[test]
fn an_unset_cluster_is_not_mistaken_for_a_set_one() {
    // `is_set` compares with the protobuf default, which is what an absent field decodes to.
    assert!(!is_set(&Cluster::default()));
    assert!(is_set(&Cluster {
        name: "x".into(),
        ..Default::default()
    }));
}
