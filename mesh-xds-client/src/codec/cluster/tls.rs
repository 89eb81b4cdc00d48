//! Upstream mTLS in standard form: the cluster's `transport_socket` is
//! `envoy.transport_sockets.tls` with an `UpstreamTlsContext` naming certificate-provider
//! instances (gRFC A29, as Istio's proxyless gRPC config does), not inline keys: the workload's
//! own certificate is instance [`IDENTITY_PROVIDER`] / certificate [`IDENTITY_CERT`], the trust
//! bundle is instance [`IDENTITY_PROVIDER`] / certificate [`ROOT_CERT`], and the accepted server
//! identities are `match_subject_alt_names`.

use envoy_types::pb::envoy::config::core::v3::{TransportSocket, transport_socket};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateProviderPluginInstance, CertificateValidationContext, CommonTlsContext,
    UpstreamTlsContext,
    common_tls_context::{CombinedCertificateValidationContext, ValidationContextType},
};
use mesh_core::cluster::UpstreamTls;

/// The transport socket name of TLS.
pub const TLS_TRANSPORT_SOCKET: &str = "envoy.transport_sockets.tls";
/// The certificate-provider instance holding the workload's identity (Istio's name).
pub const IDENTITY_PROVIDER: &str = "default";
/// The certificate name of the workload's own certificate.
pub const IDENTITY_CERT: &str = "default";
/// The certificate name of the trust bundle (Istio's name).
pub const ROOT_CERT: &str = "ROOTCA";

/// The cluster's `transport_socket` for `tls`. SANs go in `match_subject_alt_names`, the field
/// gRPC reads (A29) and Istio writes for proxyless clients; Envoy still honours it.
#[allow(deprecated)]
pub(super) fn transport_socket(tls: &UpstreamTls) -> TransportSocket {
    let instance = |certificate_name: &str| CertificateProviderPluginInstance {
        instance_name: IDENTITY_PROVIDER.into(),
        certificate_name: certificate_name.into(),
    };
    let validation = CertificateValidationContext {
        ca_certificate_provider_instance: Some(instance(ROOT_CERT)),
        match_subject_alt_names: tls
            .san_matchers
            .iter()
            .filter_map(|m| crate::codec::route::value_matcher(Some(m)))
            .collect(),
        ..Default::default()
    };
    let context = UpstreamTlsContext {
        common_tls_context: Some(CommonTlsContext {
            tls_certificate_provider_instance: Some(instance(IDENTITY_CERT)),
            validation_context_type: Some(ValidationContextType::CombinedValidationContext(
                CombinedCertificateValidationContext {
                    default_validation_context: Some(validation),
                    ..Default::default()
                },
            )),
            ..Default::default()
        }),
        sni: tls.sni.clone().unwrap_or_default(),
        ..Default::default()
    };
    TransportSocket {
        name: TLS_TRANSPORT_SOCKET.into(),
        config_type: Some(transport_socket::ConfigType::TypedConfig(
            crate::codec::to_any(&context),
        )),
    }
}
