//! A cluster's `transport_socket`, read as gRFC A29 reads it: TLS whose certificates come from
//! certificate-provider instances (the workload's in-process identity), with the server's
//! identity checked against `match_subject_alt_names`. Anything that would weaken the check
//! (accepting untrusted or expired chains, custom validators, pinned hashes we cannot honour) is
//! an error, never a silent downgrade.

use envoy_types::pb::envoy::config::core::v3::{TransportSocket, transport_socket::ConfigType};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, UpstreamTlsContext,
    certificate_validation_context::TrustChainVerification,
    common_tls_context::{CombinedCertificateValidationContext, ValidationContextType},
    subject_alt_name_matcher::SanType,
};
use mesh_core::cluster::UpstreamTls;

use super::super::route::matching::string_match;
use super::super::{Ctx, type_name, unpack_nested};
use crate::codec::TLS_TRANSPORT_SOCKET;

const UPSTREAM_TLS_TYPE: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";

pub(super) fn decode(ctx: &mut Ctx, ts: TransportSocket) -> Option<UpstreamTls> {
    let at = "transport_socket";
    let TransportSocket { name, config_type } = ts;
    let any = match config_type {
        Some(ConfigType::TypedConfig(any)) => any,
        None => {
            ctx.error(at, format!("{name:?} has no typed_config"));
            return None;
        }
    };
    if type_name(&any.type_url) != type_name(UPSTREAM_TLS_TYPE) {
        let reason = format!(
            "transport socket {name:?} ({}) is not supported; only {TLS_TRANSPORT_SOCKET} with an UpstreamTlsContext",
            any.type_url
        );
        ctx.error(at, reason);
        return None;
    }
    let at = "transport_socket.typed_config";
    let UpstreamTlsContext {
        common_tls_context,
        sni,
        auto_host_sni,
        auto_sni_san_validation,
        allow_renegotiation,
        max_session_keys,
        #[allow(deprecated)]
        enforce_rsa_key_usage,
    } = unpack_nested(ctx, at, &any)?;
    ignore_set!(
        ctx,
        at,
        auto_host_sni,
        auto_sni_san_validation,
        allow_renegotiation,
        max_session_keys,
        enforce_rsa_key_usage
    );
    let Some(common) = common_tls_context else {
        ctx.error(format!("{at}.common_tls_context"), "required");
        return None;
    };
    let san_matchers = common_context(ctx, &format!("{at}.common_tls_context"), common)?;
    Some(UpstreamTls {
        sni: (!sni.is_empty()).then_some(sni),
        san_matchers,
    })
}

/// The parts of a `CommonTlsContext` both sides read, after refusing certificates that do not
/// come from a certificate-provider instance: whether it names the workload's own certificate,
/// and its validation context. Shared by upstream (cluster) and downstream (inbound) TLS.
#[allow(deprecated)]
pub(in crate::codec::decode) fn certificate_sources(
    ctx: &mut Ctx,
    at: &str,
    c: CommonTlsContext,
) -> (bool, Option<ValidationContextType>) {
    let CommonTlsContext {
        tls_params,
        tls_certificates,
        tls_certificate_sds_secret_configs,
        tls_certificate_provider_instance,
        custom_tls_certificate_selector,
        tls_certificate_certificate_provider,
        tls_certificate_certificate_provider_instance,
        alpn_protocols,
        custom_handshaker,
        key_log,
        validation_context_type,
    } = c;
    ignore_set!(ctx, at, tls_params, alpn_protocols, key_log);
    reject_set!(ctx, at, "certificates must come from a certificate-provider instance (the workload's identity), not inline or over SDS";
        tls_certificates, tls_certificate_sds_secret_configs, tls_certificate_certificate_provider, custom_tls_certificate_selector);
    reject_set!(ctx, at, "custom handshakers are not supported"; custom_handshaker);
    let own = tls_certificate_provider_instance.is_some()
        || tls_certificate_certificate_provider_instance.is_some();
    (own, validation_context_type)
}

/// The SAN matchers, after checking the certificates come from provider instances.
#[allow(deprecated)]
fn common_context(
    ctx: &mut Ctx,
    at: &str,
    c: CommonTlsContext,
) -> Option<Vec<mesh_core::StringMatch>> {
    // A client certificate is optional here: the client presents its own when it has one.
    let (_, validation_context_type) = certificate_sources(ctx, at, c);
    let validation = match validation_context_type {
        Some(ValidationContextType::ValidationContext(v)) => v,
        Some(ValidationContextType::CombinedValidationContext(
            CombinedCertificateValidationContext {
                default_validation_context,
                validation_context_sds_secret_config,
                validation_context_certificate_provider,
                validation_context_certificate_provider_instance,
            },
        )) => {
            let at = format!("{at}.combined_validation_context");
            reject_set!(ctx, &at, "the trust bundle must come from a certificate-provider instance";
                validation_context_sds_secret_config, validation_context_certificate_provider);
            match (
                default_validation_context,
                validation_context_certificate_provider_instance,
            ) {
                (Some(v), _) => v,
                // The deprecated form names only the CA instance: no SAN check beyond the bundle.
                (None, Some(_)) => return Some(Vec::new()),
                (None, None) => {
                    ctx.error(&at, "a default_validation_context is required");
                    return None;
                }
            }
        }
        Some(ValidationContextType::ValidationContextCertificateProviderInstance(_)) => {
            return Some(Vec::new());
        }
        Some(_) => {
            ctx.error(
                at,
                "the trust bundle must come from a certificate-provider instance, not SDS",
            );
            return None;
        }
        None => {
            ctx.error(
                at,
                "a validation context is required: server certificates must be verified",
            );
            return None;
        }
    };
    validation_context(ctx, &format!("{at}.validation_context"), validation)
}

fn validation_context(
    ctx: &mut Ctx,
    at: &str,
    v: CertificateValidationContext,
) -> Option<Vec<mesh_core::StringMatch>> {
    let CertificateValidationContext {
        trusted_ca,
        ca_certificate_provider_instance,
        system_root_certs,
        watched_directory,
        verify_certificate_spki,
        verify_certificate_hash,
        match_typed_subject_alt_names,
        match_subject_alt_names,
        require_signed_certificate_timestamp,
        crl,
        allow_expired_certificate,
        trust_chain_verification,
        custom_validator_config,
        only_verify_leaf_cert_crl,
        max_verify_depth,
        suppress_client_ca_list,
    } = v;
    reject_set!(ctx, at, "the trust bundle must come from a certificate-provider instance (the mesh's CA)";
        trusted_ca, system_root_certs, watched_directory);
    reject_set!(ctx, at, "not supported, and ignoring it would accept certificates it is meant to refuse";
        verify_certificate_spki, verify_certificate_hash, crl, custom_validator_config, require_signed_certificate_timestamp, only_verify_leaf_cert_crl);
    ignore_set!(ctx, at, max_verify_depth, suppress_client_ca_list);
    if allow_expired_certificate {
        ctx.error(
            format!("{at}.allow_expired_certificate"),
            "expired certificates are always refused",
        );
    }
    if trust_chain_verification == TrustChainVerification::AcceptUntrusted as i32 {
        ctx.error(
            format!("{at}.trust_chain_verification"),
            "ACCEPT_UNTRUSTED is refused: the chain is always verified",
        );
    }
    if ca_certificate_provider_instance.is_none() {
        ctx.error(
            format!("{at}.ca_certificate_provider_instance"),
            "required: the trust bundle comes from the workload's certificate provider",
        );
    }
    let mut out = Vec::new();
    for (i, m) in match_subject_alt_names.into_iter().enumerate() {
        let at = format!("{at}.match_subject_alt_names[{i}]");
        out.extend(string_match(ctx, &at, m));
    }
    for (i, m) in match_typed_subject_alt_names.into_iter().enumerate() {
        let at = format!("{at}.match_typed_subject_alt_names[{i}]");
        if m.san_type != SanType::Uri as i32 {
            ctx.error(&at, "only URI SANs (SPIFFE IDs) identify mesh workloads");
            continue;
        }
        match m.matcher {
            Some(sm) => out.extend(string_match(ctx, &format!("{at}.matcher"), sm)),
            None => ctx.error(format!("{at}.matcher"), "required"),
        }
    }
    Some(out)
}
