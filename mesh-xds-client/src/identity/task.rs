//! The rotation loop: fetch, publish, sleep until half the lifetime, repeat; back off on failure.

use std::time::{Duration, SystemTime};

use mesh_core::Snapshot;
use mesh_core::identity::Svid;

use super::csr::{key_and_csr, svid_from_chain};
use super::{IdentityError, IdentityOptions, Token};
use crate::ca_proto::IstioCertificateRequest;
use crate::ca_proto::istio_certificate_service_client::IstioCertificateServiceClient;
use crate::client::backoff::Backoff;

pub(super) async fn run(
    options: IdentityOptions,
    svid: Snapshot<Option<Svid>>,
    last_error: Snapshot<Option<IdentityError>>,
) {
    let mut backoff = Backoff::new(options.backoff_base, options.backoff_max);
    loop {
        match fetch(&options).await {
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

/// One issuance: key, CSR, call, checks.
pub(super) async fn fetch(options: &IdentityOptions) -> Result<Svid, IdentityError> {
    let token = read_token(&options.token).await?;
    let (key, csr) = key_and_csr(&options.id)?;
    let unreachable = |reason: String| IdentityError::Unreachable {
        ca: options.ca.clone(),
        reason,
    };
    let endpoint = tonic::transport::Endpoint::from_shared(options.ca.clone())
        .map_err(|e| unreachable(e.to_string()))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10));
    let channel = endpoint.connect().await.map_err(|e| {
        unreachable(std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string()))
    })?;
    let mut request = tonic::Request::new(IstioCertificateRequest {
        csr,
        validity_duration: options.lifetime.map_or(0, |d| d.as_secs() as i64),
        metadata: None,
    });
    let bearer = format!("Bearer {token}")
        .parse()
        .map_err(|_| IdentityError::Token {
            path: token_origin(&options.token),
            reason: "the token has characters a header cannot carry".into(),
        })?;
    request.metadata_mut().insert("authorization", bearer);
    let response = IstioCertificateServiceClient::new(channel)
        .create_certificate(request)
        .await
        .map_err(|s| match s.code() {
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
                unreachable(s.message().to_string())
            }
            code => IdentityError::Refused {
                ca: options.ca.clone(),
                id: options.id.to_string(),
                code: format!("{code:?}"),
                message: s.message().to_string(),
            },
        })?;
    svid_from_chain(
        &options.id,
        key,
        &response.into_inner().cert_chain,
        options.trust_bundle.as_deref(),
    )
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
