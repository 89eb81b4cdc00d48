use std::time::Duration;

use crate::cluster::{Cluster, LbPolicy};
use crate::endpoint::{ClusterLoadAssignment, Endpoint, LocalityEndpoints};
use crate::route::*;
use crate::{Percent, Validate};

fn route(action: RouteAction) -> Route {
    Route {
        name: "r".into(),
        matcher: RouteMatch::default(),
        action,
        request_headers: HeaderMutation::default(),
        response_headers: HeaderMutation::default(),
        fault: None,
        rate_limit: None,
    }
}

fn table(routes: Vec<Route>) -> RouteTable {
    RouteTable {
        name: "t".into(),
        virtual_hosts: vec![VirtualHost {
            name: "vh".into(),
            domains: vec!["*".into()],
            routes,
        }],
    }
}

#[test]
fn weights_summing_to_zero_are_rejected_with_the_field_path() {
    let mut fwd = ForwardAction::to_cluster("a");
    fwd.clusters[0].weight = 0;
    let err = table(vec![route(RouteAction::Forward(fwd))])
        .validate()
        .unwrap_err();
    assert_eq!(err.0.len(), 1);
    assert_eq!(err.0[0].field, "virtual_hosts[0].routes[0].action.clusters");
    assert!(err.0[0].reason.contains("sum to zero"));
}

#[test]
fn duplicate_domains_and_bad_statuses_are_all_reported() {
    let mut t = table(vec![route(RouteAction::DirectResponse {
        status: 99,
        body: None,
    })]);
    t.virtual_hosts.push(VirtualHost {
        name: "vh2".into(),
        domains: vec!["*".into()],
        routes: vec![],
    });
    let err = t.validate().unwrap_err();
    let fields: Vec<_> = err.0.iter().map(|e| e.field.as_str()).collect();
    assert!(
        fields.contains(&"virtual_hosts[0].routes[0].action.direct_response.status"),
        "{fields:?}"
    );
    assert!(
        fields.contains(&"virtual_hosts[1].domains[0]"),
        "{fields:?}"
    );
}

#[test]
fn fault_percentages_over_100_are_rejected() {
    let mut r = route(RouteAction::Forward(ForwardAction::to_cluster("a")));
    r.fault = Some(FaultPolicy {
        delay: Some(FaultDelay {
            delay: Duration::from_millis(5),
            percent: Percent::from_percent(120.0),
        }),
        abort: None,
        headers: vec![],
    });
    let err = r.validate().unwrap_err();
    assert_eq!(err.0[0].field, "fault.delay.percent");
}

#[test]
fn cluster_rules() {
    let mut c = Cluster::new("c");
    assert!(c.validate().is_ok());
    c.lb_policy = LbPolicy::LeastRequest { choice_count: 1 };
    assert_eq!(
        c.validate().unwrap_err().0[0].field,
        "lb_policy.choice_count"
    );
}

#[test]
fn endpoint_weight_zero_is_rejected() {
    let mut e = Endpoint::new("127.0.0.1:80".parse().unwrap());
    e.weight = 0;
    let cla = ClusterLoadAssignment {
        cluster_name: "c".into(),
        localities: vec![LocalityEndpoints {
            endpoints: vec![e],
            ..Default::default()
        }],
    };
    assert_eq!(
        cla.validate().unwrap_err().0[0].field,
        "localities[0].endpoints[0].weight"
    );
}

#[test]
fn retry_on_round_trips_envoy_spelling() {
    for (r, s) in RetryOn::ALL {
        assert_eq!(RetryOn::parse(s), Some(r));
        assert_eq!(r.as_str(), s);
    }
    assert_eq!(RetryOn::parse("nope"), None);
}

#[test]
fn percent_conversions() {
    assert_eq!(Percent::from_percent(12.5).per_million(), 125_000);
    assert_eq!(Percent::from_percent(100.0), Percent::ALL);
    assert!(!Percent::from_percent(100.1).is_valid());
}

#[test]
fn header_changes_envoy_would_refuse_are_rejected() {
    let mut r = route(RouteAction::Forward(ForwardAction::to_cluster("a")));
    r.request_headers.remove.push("host".into());
    r.response_headers
        .set
        .push((":status".into(), "200".into()));
    let fields: Vec<_> = r
        .validate()
        .unwrap_err()
        .0
        .into_iter()
        .map(|e| e.field)
        .collect();
    assert_eq!(fields, ["request_headers[0]", "response_headers[0]"]);
}

#[test]
fn endpoint_priorities_must_be_contiguous_and_localities_unique() {
    let e = Endpoint::new("127.0.0.1:80".parse().unwrap());
    let group = |priority| LocalityEndpoints {
        priority,
        endpoints: vec![e.clone()],
        ..Default::default()
    };
    let cla = ClusterLoadAssignment {
        cluster_name: "c".into(),
        localities: vec![group(0), group(0), group(2)],
    };
    let fields: Vec<_> = cla
        .validate()
        .unwrap_err()
        .0
        .into_iter()
        .map(|e| e.field)
        .collect();
    assert_eq!(fields, ["localities[1].locality", "localities"]);
}
