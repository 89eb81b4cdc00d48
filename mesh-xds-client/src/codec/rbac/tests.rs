use envoy_types::pb::envoy::config::rbac::v3::{permission::Rule, principal::Identifier};
use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::Rbac as PbHttpRbac;
use mesh_core::StringMatch;
use mesh_core::rbac::{Permission, Policy, Principal, Rbac, RbacAction};
use prost::{Message, Name};

use super::{RBAC_TYPE, encode_rbac, rbac_filter_config};

fn many_policies() -> Rbac {
    Rbac {
        action: RbacAction::Allow,
        policies: (0..40)
            .map(|i| {
                (
                    format!("ns/p{i:02}[0]"),
                    Policy {
                        permissions: vec![Permission::DestinationPort(8000 + i)],
                        principals: vec![Principal::Authenticated(Some(StringMatch::Exact(
                            format!("spiffe://cluster.local/ns/ns/sa/sa{i}"),
                        )))],
                    },
                )
            })
            .rev()
            .collect(),
    }
}

#[test]
fn the_type_url_is_envoys() {
    assert_eq!(
        RBAC_TYPE,
        format!("type.googleapis.com/{}", PbHttpRbac::full_name())
    );
}

#[test]
fn encoding_is_deterministic_and_wire_compatible() {
    let model = many_policies();
    // The same model always gives the same bytes, whatever HashMap order prost would pick.
    let first = encode_rbac(&model);
    for _ in 0..5 {
        assert_eq!(encode_rbac(&model), first);
    }
    // And Envoy's message reads them back as the proto the encoder means.
    let read = PbHttpRbac::decode(first.value.as_slice()).unwrap();
    assert_eq!(read, rbac_filter_config(&model));
    let rules = read.rules.unwrap();
    assert_eq!(rules.action, 0, "ALLOW");
    assert_eq!(rules.policies.len(), 40);
    let p = &rules.policies["ns/p07[0]"];
    assert_eq!(p.permissions[0].rule, Some(Rule::DestinationPort(8007)));
    let Some(Identifier::Authenticated(a)) = &p.principals[0].identifier else {
        panic!("{:?}", p.principals[0]);
    };
    assert!(format!("{a:?}").contains("spiffe://cluster.local/ns/ns/sa/sa7"));
}

#[test]
fn absent_principal_name_means_any_authenticated_peer() {
    let model = Rbac {
        action: RbacAction::Deny,
        policies: vec![(
            "p".into(),
            Policy {
                permissions: vec![Permission::Any],
                principals: vec![Principal::Not(Box::new(Principal::Authenticated(None)))],
            },
        )],
    };
    let pb = rbac_filter_config(&model);
    let rules = pb.rules.unwrap();
    assert_eq!(rules.action, 1, "DENY");
    let Some(Identifier::NotId(inner)) = &rules.policies["p"].principals[0].identifier else {
        panic!();
    };
    let Some(Identifier::Authenticated(a)) = &inner.identifier else {
        panic!();
    };
    assert!(a.principal_name.is_none());
}
