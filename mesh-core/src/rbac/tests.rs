use std::borrow::Cow;
use std::collections::HashMap;

use super::*;
use crate::{Regex, Validate};

const WEB: &str = "spiffe://cluster.local/ns/default/sa/web";
const BATCH: &str = "spiffe://cluster.local/ns/jobs/sa/batch";

fn exact(s: &str) -> StringMatch {
    StringMatch::Exact(s.into())
}

fn peer(id: &str) -> Principal {
    Principal::Authenticated(Some(exact(id)))
}

fn header(name: &str, value: Option<StringMatch>) -> HeaderMatch {
    HeaderMatch {
        name: name.into(),
        value,
        invert: false,
    }
}

fn policy(permissions: Vec<Permission>, principals: Vec<Principal>) -> Policy {
    Policy {
        permissions,
        principals,
    }
}

fn filter(action: RbacAction, policies: Vec<(&str, Policy)>) -> Rbac {
    Rbac {
        action,
        policies: policies
            .into_iter()
            .map(|(n, p)| (n.to_string(), p))
            .collect(),
    }
}

struct Map(HashMap<&'static str, &'static str>);

impl HeaderSource for Map {
    fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        self.0.get(name).map(|v| Cow::Borrowed(*v))
    }
}

#[test]
fn envoy_semantics_of_one_filter() {
    let admin = policy(
        vec![Permission::UrlPath(StringMatch::Prefix("/admin".into()))],
        vec![Principal::Any],
    );
    let mut facts = RequestFacts::new("GET", "/admin/users?x=1");
    facts.peer = Some(WEB);
    let other = RequestFacts::new("GET", "/reviews");

    // (action, policies, request, allowed?)
    let table: [(RbacAction, bool, &RequestFacts<'_>, bool); 10] = [
        (RbacAction::Allow, true, &facts, true),
        (RbacAction::Allow, true, &other, false),
        (RbacAction::Allow, false, &facts, false), // ALLOW without policies: deny all
        (RbacAction::Allow, false, &other, false),
        (RbacAction::Deny, true, &facts, false),
        (RbacAction::Deny, true, &other, true),
        (RbacAction::Deny, false, &facts, true),
        (RbacAction::Log, true, &facts, true),
        (RbacAction::Log, true, &other, true),
        (RbacAction::Log, false, &facts, true),
    ];
    for (i, (action, with_policy, req, allowed)) in table.into_iter().enumerate() {
        let policies = if with_policy {
            vec![("p", admin.clone())]
        } else {
            vec![]
        };
        let f = [filter(action, policies)];
        assert_eq!(
            authorize(&f, req).is_allowed(),
            allowed,
            "row {i}: {action:?}"
        );
    }
}

#[test]
fn deny_before_allow_and_the_first_refusal_ends_the_chain() {
    let deny_admin = filter(
        RbacAction::Deny,
        vec![(
            "ns/deny-admin[0]",
            policy(
                vec![Permission::UrlPath(StringMatch::Prefix("/admin".into()))],
                vec![Principal::Any],
            ),
        )],
    );
    let allow_web = filter(
        RbacAction::Allow,
        vec![(
            "ns/allow-web[0]",
            policy(vec![Permission::Any], vec![peer(WEB)]),
        )],
    );
    let audit = filter(
        RbacAction::Log,
        vec![(
            "ns/audit[0]",
            policy(vec![Permission::Any], vec![Principal::Any]),
        )],
    );
    let chain = [audit.clone(), deny_admin, allow_web];

    let mut admin = RequestFacts::new("GET", "/admin");
    admin.peer = Some(WEB);
    let v = authorize(&chain, &admin);
    assert_eq!(v.decision.policy().unwrap().name, "ns/deny-admin[0]");
    assert!(!v.is_allowed());
    assert_eq!(v.audit.len(), 1, "the audit filter ran first");
    assert_eq!(v.decision.to_string(), "denied by policy ns/deny-admin[0]");

    let mut ok = RequestFacts::new("GET", "/reviews");
    ok.peer = Some(WEB);
    let v = authorize(&chain, &ok);
    assert_eq!(
        v.decision,
        Decision::Allowed(Some(PolicyRef {
            filter: 2,
            policy: 0,
            name: "ns/allow-web[0]"
        }))
    );
    assert_eq!(v.audit[0].name, "ns/audit[0]");

    let mut batch = RequestFacts::new("GET", "/reviews");
    batch.peer = Some(BATCH);
    let v = authorize(&chain, &batch);
    assert_eq!(v.decision, Decision::Denied(None));
    assert_eq!(v.decision.to_string(), "denied: no ALLOW policy matched");

    // An audit filter after the refusing one is never reached, as in Envoy.
    let late_audit = [chain[1].clone(), audit];
    assert!(authorize(&late_audit, &admin).audit.is_empty());

    // No filters: allowed, by nobody.
    assert_eq!(authorize(&[], &batch).decision, Decision::Allowed(None));
}

#[test]
fn policy_needs_a_permission_and_a_principal_and_lists_are_or() {
    let p = policy(
        vec![
            Permission::Header(header(":method", Some(exact("POST")))),
            Permission::DestinationPort(8080),
        ],
        vec![peer(WEB), peer(BATCH)],
    );
    let mut r = RequestFacts::new("GET", "/");
    r.peer = Some(BATCH);
    assert!(!p.matches(&r), "neither permission");
    r.local_port = Some(8080);
    assert!(p.matches(&r), "second permission, second principal");
    r.peer = None;
    assert!(!p.matches(&r), "plaintext is no principal");
}

#[test]
fn and_or_not_compose() {
    let get = Permission::Header(header(":method", Some(exact("GET"))));
    let api = Permission::UrlPath(StringMatch::Prefix("/api/".into()));
    let r = RequestFacts::new("GET", "/api/x");
    let w = RequestFacts::new("GET", "/web");
    let and = Permission::And(vec![get.clone(), api.clone()]);
    let or = Permission::Or(vec![
        api.clone(),
        Permission::Not(Box::new(Permission::Any)),
    ]);
    let not = Permission::Not(Box::new(and.clone()));
    assert!(and.matches(&r) && !and.matches(&w));
    assert!(or.matches(&r) && !or.matches(&w));
    assert!(!not.matches(&r) && not.matches(&w));
    let never = Policy::never();
    assert!(!never.matches(&r));
}

#[test]
fn principals_authenticated_addresses_and_headers() {
    let mut r = RequestFacts::new("GET", "/");
    let any_peer = Principal::Authenticated(None);
    let ns = Principal::Authenticated(Some(StringMatch::Regex(
        Regex::new(".*/ns/default/.*").unwrap(),
    )));
    assert!(!any_peer.matches(&r) && !ns.matches(&r));
    assert!(Principal::Not(Box::new(ns.clone())).matches(&r));
    r.peer = Some(WEB);
    assert!(any_peer.matches(&r) && ns.matches(&r));
    r.peer = Some(BATCH);
    assert!(any_peer.matches(&r) && !ns.matches(&r));

    let lan = Principal::DirectRemoteIp("10.0.0.0/8".parse().unwrap());
    assert!(!lan.matches(&r), "unknown address");
    r.remote_ip = Some("10.3.2.1".parse().unwrap());
    assert!(lan.matches(&r));
    assert!(Principal::RemoteIp("10.3.2.1".parse().unwrap()).matches(&r));
    r.remote_ip = Some("192.168.1.1".parse().unwrap());
    assert!(!lan.matches(&r));

    let headers = Map(HashMap::from([("x-team", "blue"), ("te", "trailers")]));
    r.headers = &headers;
    assert!(Principal::Header(header("x-team", Some(exact("blue")))).matches(&r));
    assert!(!Principal::Header(header("x-team", Some(exact("red")))).matches(&r));
    assert!(
        !Principal::Header(header("te", None)).matches(&r),
        "hop-by-hop headers are never matched"
    );
}

#[test]
fn pseudo_headers_and_paths() {
    let mut r = RequestFacts::new("PUT", "/a/b?q=1");
    r.authority = Some("reviews:9080");
    let h = |name: &str, m: StringMatch| Permission::Header(header(name, Some(m)));
    assert!(h(":method", exact("PUT")).matches(&r));
    assert!(
        h(":path", exact("/a/b?q=1")).matches(&r),
        ":path keeps the query"
    );
    assert!(
        Permission::UrlPath(exact("/a/b")).matches(&r),
        "url_path drops it"
    );
    assert!(h(":authority", exact("reviews:9080")).matches(&r));
    assert!(
        h("host", exact("reviews:9080")).matches(&r),
        "host is :authority"
    );
    assert!(h("Host", exact("reviews:9080")).matches(&r));
    assert!(!Permission::Header(header(":status", None)).matches(&r));
    let absent = Permission::Header(HeaderMatch {
        name: "x-missing".into(),
        value: None,
        invert: true,
    });
    assert!(absent.matches(&r), "inverted presence: absent header");
    assert_eq!(RequestFacts::new("GET", "/p#frag").url_path(), "/p");
}

#[test]
fn decide_names_the_first_matching_policy() {
    let f = filter(
        RbacAction::Deny,
        vec![
            (
                "a",
                policy(vec![Permission::DestinationPort(1)], vec![Principal::Any]),
            ),
            ("b", policy(vec![Permission::Any], vec![Principal::Any])),
            ("c", policy(vec![Permission::Any], vec![Principal::Any])),
        ],
    );
    let r = RequestFacts::new("GET", "/");
    assert_eq!(f.decide(&r), Some("b"));
    assert_eq!(f.first_match(&r), Some(1));
}

#[test]
fn validation_names_the_field() {
    let bad = Rbac {
        action: RbacAction::Allow,
        policies: vec![
            ("p".into(), policy(vec![], vec![Principal::Any])),
            (
                "p".into(),
                policy(
                    vec![Permission::And(vec![Permission::Header(header(
                        "grpc-timeout",
                        None,
                    ))])],
                    vec![
                        Principal::Or(vec![]),
                        Principal::Authenticated(Some(StringMatch::Prefix(String::new()))),
                    ],
                ),
            ),
            (
                "q".into(),
                policy(
                    vec![Permission::Header(header(":scheme", None))],
                    vec![Principal::Header(header("bad name", None))],
                ),
            ),
        ],
    };
    let errs = bad.validate().unwrap_err();
    let fields: Vec<&str> = errs.0.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "policies[0].permissions",
            "policies[1].name",
            "policies[1].permissions[0].and[0].header.name",
            "policies[1].principals[0].or",
            "policies[1].principals[1].authenticated",
            "policies[2].permissions[0].header.name",
            "policies[2].principals[0].header.name",
        ],
        "{errs}"
    );
    assert!(errs.0[2].reason.contains("A41"), "{}", errs.0[2].reason);

    let good = filter(RbacAction::Allow, vec![("ns/p[0]", Policy::never())]);
    assert!(good.validate().is_ok());
}

#[test]
fn cidr_ranges() {
    let v6: Cidr = "2001:db8::/32".parse().unwrap();
    assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
    assert!(!v6.contains("10.0.0.1".parse().unwrap()));
    let all: Cidr = "0.0.0.0/0".parse().unwrap();
    assert!(all.contains("203.0.113.9".parse().unwrap()));
    assert_eq!(v6.to_string(), "2001:db8::/32");
    assert!("10.0.0.0/33".parse::<Cidr>().is_err());
    assert!("10.0.0/8".parse::<Cidr>().is_err());
    assert!("10.0.0.0/x".parse::<Cidr>().is_err());
}
