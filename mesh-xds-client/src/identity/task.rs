//! The rotation loop: fetch, publish, sleep until half the lifetime, repeat; back off on failure.

use std::time::{Duration, SystemTime};

use mesh_core::Snapshot;
use mesh_core::StringMatch;
use mesh_core::identity::{SpiffeId, Svid};

use super::csr::{key_and_csr, svid_from_chain};
use super::{IdentityError, IdentityOptions, Token};
use crate::ca_proto::IstioCertificateRequest;
use crate::ca_proto::istio_certificate_service_client::IstioCertificateServiceClient;
use crate::client::backoff::Backoff;
use crate::tls;

pub(super) async fn run(
    options: IdentityOptions,
    svid: Snapshot<Option<Svid>>,
    last_error: Snapshot<Option<IdentityError>>,
) {
    let mut backoff = Backoff::new(options.backoff_base, options.backoff_max);
    loop {
        match fetch(&options, &svid).await {
            Ok(new) => {
                let wait = new
                    .refresh_at()
                    .duration_since(SystemTime::now())
                    .unwrap_or_default();
                tracing::info!(id = %new.id, not_after = ?new.not_after, renew_in = ?wait, "workload certificate issued");
                metrics::counter!("mesh_identity_renewals_total", "result" => "ok").increment(1);
                svid.store(Some(new));
                last_error.store(None);
                backoff.reset();
                tokio::time::sleep(wait).await;
            }
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in = ?delay, "workload certificate not issued; keeping the current one");
                metrics::counter!("mesh_identity_renewals_total", "result" => "error").increment(1);
                last_error.store(Some(e));
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// One issuance: key, CSR, call, checks. While the current certificate is valid, the call goes
/// over mutual TLS with it and needs no token (the CA grants the identity the certificate
/// proves); otherwise it carries the bootstrap token, over TLS verified against the configured
/// trust bundle, or plaintext without one.
pub(super) async fn fetch(
    options: &IdentityOptions,
    current: &Snapshot<Option<Svid>>,
) -> Result<Svid, IdentityError> {
    let renewal = current
        .load()
        .as_ref()
        .as_ref()
        .is_some_and(|s| s.not_after > SystemTime::now() + Duration::from_secs(5));
    let unreachable = |reason: String| IdentityError::Unreachable {
        ca: options.ca.clone(),
        reason,
    };
    let token = if renewal {
        None
    } else {
        Some(read_token(&options.token).await?)
    };
    let (key, csr) = key_and_csr(&options.id)?;
    let endpoint = tonic::transport::Endpoint::from_shared(options.ca.clone())
        .map_err(|e| unreachable(e.to_string()))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10));
    let control_plane = SpiffeId::control_plane(options.id.trust_domain())
        .map_err(|e| IdentityError::Csr(e.to_string()))?;
    let expect = vec![StringMatch::Exact(control_plane.to_string())];
    let tls_config = if renewal {
        Some(tls::client_config(current.clone(), &[tls::ALPN_H2]))
    } else if let Some(bundle) = &options.trust_bundle {
        Some(
            tls::bootstrap_client_config(options.id.trust_domain(), bundle, &[tls::ALPN_H2])
                .map_err(|e| IdentityError::BadChain(e.to_string()))?,
        )
    } else {
        None
    };
    let connected = match tls_config {
        Some(config) => {
            let connector = tls::ChannelConnector::new(config, expect, Duration::from_secs(5));
            endpoint.connect_with_connector(connector).await
        }
        None => endpoint.connect().await,
    };
    let channel = connected.map_err(|e| unreachable(error_chain(&e)))?;
    let mut request = tonic::Request::new(IstioCertificateRequest {
        csr,
        validity_duration: options.lifetime.map_or(0, |d| d.as_secs() as i64),
        metadata: None,
    });
    if let Some(token) = token {
        let bearer = format!("Bearer {token}")
            .parse()
            .map_err(|_| IdentityError::Token {
                path: token_origin(&options.token),
                reason: "the token has characters a header cannot carry".into(),
            })?;
        request.metadata_mut().insert("authorization", bearer);
    }
    let response = IstioCertificateServiceClient::new(channel)
        .create_certificate(request)
        .await
        .map_err(|s| match s.code() {
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
                unreachable(error_chain(&s))
            }
            code => IdentityError::Refused {
                ca: options.ca.clone(),
                id: options.id.to_string(),
                code: format!("{code:?}"),
                message: s.message().to_string(),
            },
        })?;
    // A renewal keeps the bundle it trusts; a first issuance trusts the configured bundle, or
    // (without one) the root the CA returned.
    let trusted = match current.load().as_ref() {
        Some(s) if renewal => Some(s.bundle.clone()),
        _ => options.trust_bundle.clone(),
    };
    svid_from_chain(
        &options.id,
        key,
        &response.into_inner().cert_chain,
        trusted.as_deref(),
    )
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

async fn read_token(token: &Token) -> Result<String, IdentityError> {
    match token {
        Token::Inline(t) => Ok(t.clone()),
        Token::File(path) => tokio::fs::read_to_string(path)
            .await
            .map(|t| t.trim().to_string())
            .map_err(|e| IdentityError::Token {
                path: path.display().to_string(),
                reason: e.to_string(),
            }),
    }
}

fn token_origin(token: &Token) -> String {
    match token {
        Token::Inline(_) => "(inline)".into(),
        Token::File(p) => p.display().to_string(),
    }
}
