use envoy_types::pb::envoy::config::core::v3::{CidrRange, transport_socket};
use envoy_types::pb::envoy::config::listener::v3::{Filter, Listener, filter};
use envoy_types::pb::envoy::config::route::v3::route;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    HttpConnectionManager, http_connection_manager::RouteSpecifier,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    DownstreamTlsContext, TlsCertificate,
};
use mesh_core::inbound::{
    FilterChain, INBOUND_TEMPLATE, InboundFilter, InboundListener, MtlsMode, inbound_name,
};

use super::{clean, rejected};
use crate::codec::{
    decode_inbound_listener, encode_inbound, encode_listener, is_api_listener, to_any,
};

fn listener(mode: MtlsMode) -> InboundListener {
    let address = "127.0.0.7:9080".parse().unwrap();
    InboundListener {
        name: inbound_name(INBOUND_TEMPLATE, address),
        address,
        filter_chains: FilterChain::for_mode(mode, 9080, vec![InboundFilter::Router]),
    }
}

fn name() -> String {
    listener(MtlsMode::Strict).name
}

#[test]
fn every_mode_round_trips() {
    for mode in [MtlsMode::Strict, MtlsMode::Permissive, MtlsMode::Disable] {
        let model = listener(mode);
        let any = to_any(&encode_inbound(&model));
        assert!(!is_api_listener(&any));
        assert_eq!(clean(decode_inbound_listener(&any)), model, "{mode:?}");
    }
    let api = to_any(&encode_listener(&mesh_core::listener::Listener::api(
        "a:80",
    )));
    assert!(is_api_listener(&api));
}

/// The first chain's `(HttpConnectionManager, DownstreamTlsContext)` of an encoded strict listener.
fn parts(pb: &Listener) -> (HttpConnectionManager, DownstreamTlsContext) {
    let chain = &pb.filter_chains[0];
    let Some(filter::ConfigType::TypedConfig(any)) = &chain.filters[0].config_type else {
        panic!()
    };
    let hcm = prost::Message::decode(any.value.as_slice()).unwrap();
    let Some(transport_socket::ConfigType::TypedConfig(any)) =
        &chain.transport_socket.as_ref().unwrap().config_type
    else {
        panic!()
    };
    (hcm, prost::Message::decode(any.value.as_slice()).unwrap())
}

fn with_parts(
    mut pb: Listener,
    hcm: &HttpConnectionManager,
    tls: &DownstreamTlsContext,
) -> Listener {
    let chain = &mut pb.filter_chains[0];
    chain.filters[0].config_type = Some(filter::ConfigType::TypedConfig(to_any(hcm)));
    chain.transport_socket.as_mut().unwrap().config_type =
        Some(transport_socket::ConfigType::TypedConfig(to_any(tls)));
    pb
}

#[test]
fn what_would_widen_a_chain_or_weaken_its_tls_is_rejected() {
    let pb = encode_inbound(&listener(MtlsMode::Strict));
    let (hcm, tls) = parts(&pb);

    let mut narrowed = pb.clone();
    narrowed.filter_chains[0]
        .filter_chain_match
        .as_mut()
        .unwrap()
        .source_prefix_ranges = vec![CidrRange::default()];
    rejected(
        decode_inbound_listener(&to_any(&narrowed)),
        &name(),
        "source_prefix_ranges",
    );

    let mut two = pb.clone();
    two.filter_chains[0].filters.push(Filter::default());
    let shown = rejected(decode_inbound_listener(&to_any(&two)), &name(), "filters");
    assert!(shown.contains("got 2"), "{shown}");

    let mut forwarding = hcm.clone();
    let Some(RouteSpecifier::RouteConfig(rc)) = &mut forwarding.route_specifier else {
        panic!()
    };
    rc.virtual_hosts[0].routes[0].action = Some(route::Action::Route(Default::default()));
    rejected(
        decode_inbound_listener(&to_any(&with_parts(pb.clone(), &forwarding, &tls))),
        &name(),
        "route_config",
    );

    let mut no_bundle = tls.clone();
    no_bundle
        .common_tls_context
        .as_mut()
        .unwrap()
        .validation_context_type = None;
    rejected(
        decode_inbound_listener(&to_any(&with_parts(pb.clone(), &hcm, &no_bundle))),
        &name(),
        "require_client_certificate",
    );

    let mut inline_key = tls.clone();
    inline_key
        .common_tls_context
        .as_mut()
        .unwrap()
        .tls_certificates = vec![TlsCertificate::default()];
    rejected(
        decode_inbound_listener(&to_any(&with_parts(pb.clone(), &hcm, &inline_key))),
        &name(),
        "tls_certificates",
    );

    let mut quic = pb.clone();
    quic.filter_chains[0]
        .filter_chain_match
        .as_mut()
        .unwrap()
        .transport_protocol = "quic".into();
    rejected(
        decode_inbound_listener(&to_any(&quic)),
        &name(),
        "transport_protocol",
    );

    // The untouched listener still decodes: the checks above are about the tampering only.
    let ok = clean(decode_inbound_listener(&to_any(&pb)));
    assert!(matches!(
        ok.filter_chains[0].tls,
        Some(t) if t.require_client_certificate
    ));
}

#[test]
fn inbound_fault_and_rate_limit_filters_round_trip() {
    use mesh_core::Percent;
    use mesh_core::route::{AbortStatus, FaultAbort, FaultPolicy, LocalRateLimit};
    let mut model = listener(MtlsMode::Disable);
    model.filter_chains[0].http_filters = vec![
        InboundFilter::RateLimit(LocalRateLimit {
            max_tokens: 2,
            tokens_per_fill: 1,
            fill_interval: std::time::Duration::from_secs(60),
        }),
        InboundFilter::Fault(FaultPolicy {
            delay: None,
            abort: Some(FaultAbort {
                status: AbortStatus::Http(503),
                percent: Percent::ALL,
            }),
            headers: Vec::new(),
        }),
        InboundFilter::Router,
    ];
    let decoded = clean(decode_inbound_listener(&to_any(&encode_inbound(&model))));
    assert_eq!(decoded, model);
    let chain = &decoded.filter_chains[0];
    assert_eq!(chain.rate_limit().map(|r| r.max_tokens), Some(2));
    assert!(chain.fault().is_some());
}
