//! `istio.v1.auth.IstioCertificateService/CreateCertificate`, served on the xDS port.

use std::sync::Arc;
use std::time::Duration;

use mesh_core::identity::PeerIdentity;
use mesh_xds_client::ca_proto::istio_certificate_service_server::{
    IstioCertificateService, IstioCertificateServiceServer,
};
use mesh_xds_client::ca_proto::{IstioCertificateRequest, IstioCertificateResponse};
use tonic::{Request, Response, Status};

use super::auth::{self, AuthError, Grant, GrantedBy, TokenReview};
use super::csr::MAX_CSR_BYTES;
use super::tokens::TokenFile;
use super::{Ca, CsrError};

/// The certificate service: authenticates the caller, then has the [`Ca`] sign its CSR.
///
/// | outcome | gRPC status | `mesh_ca_csr_total` labels |
/// |---|---|---|
/// | signed | OK, chain leaf first, root last | `result="signed"`, `reason="token"` or `"certificate"` |
/// | no, malformed or unknown credentials | UNAUTHENTICATED | `result="refused"`, `reason="unauthenticated"` |
/// | CSR for another identity than granted | PERMISSION_DENIED | `reason="identity_mismatch"` |
/// | malformed CSR, bad signature, SANs, CA bit, negative validity | INVALID_ARGUMENT | [`CsrError::reason`] |
/// | the CA failed | INTERNAL | `reason="internal"` |
///
/// Checking and signing run on the calling task: an ECDSA signature costs tens of microseconds,
/// an RSA-2048 one about a millisecond, at certificate (not request) rates.
#[derive(Debug, Clone)]
pub struct CaService {
    ca: Arc<Ca>,
    tokens: Option<Arc<TokenFile>>,
    reviewer: Option<Arc<dyn TokenReview>>,
}

impl CaService {
    /// A service signing with `ca`, accepting the bootstrap tokens of `tokens` (`None`: only
    /// renewals over mTLS are accepted).
    pub fn new(ca: Arc<Ca>, tokens: Option<Arc<TokenFile>>) -> Self {
        Self {
            ca,
            tokens,
            reviewer: None,
        }
    }

    /// Also accepts bearer tokens that `reviewer` vouches for (a Kubernetes service account
    /// token, through TokenReview), after the token file.
    pub fn with_token_review(mut self, reviewer: Arc<dyn TokenReview>) -> Self {
        self.reviewer = Some(reviewer);
        self
    }

    /// The tonic service to add to a server.
    pub fn into_service(self) -> IstioCertificateServiceServer<Self> {
        // A CSR is a few KiB; the limit only bounds what a caller can make us buffer.
        IstioCertificateServiceServer::new(self).max_decoding_message_size(MAX_CSR_BYTES * 2)
    }

    async fn handle(
        &self,
        request: &Request<IstioCertificateRequest>,
    ) -> Result<Vec<String>, Refusal> {
        let peer = request.extensions().get::<PeerIdentity>();
        let authorization = request
            .metadata()
            .get("authorization")
            .map(|v| v.as_bytes());
        let tokens = match (&self.tokens, peer) {
            // A renewal does not need the token file: do not even stat it.
            (Some(file), None) if authorization.is_some() => Some(file.current()),
            _ => None,
        };
        let grant = match auth::authenticate(
            peer,
            authorization,
            tokens.as_deref(),
            self.ca.trust_domain(),
        ) {
            Ok(g) => g,
            // Not a bootstrap token: perhaps a Kubernetes service account token.
            Err(e @ (AuthError::UnknownToken | AuthError::NoTokenFile)) => {
                let token = authorization
                    .and_then(auth::bearer)
                    .and_then(|t| std::str::from_utf8(t).ok());
                match (&self.reviewer, token) {
                    (Some(r), Some(token)) => Grant {
                        id: r.review(token).await.map_err(Refusal::Auth)?,
                        by: GrantedBy::KubernetesToken,
                    },
                    _ => return Err(Refusal::Auth(e)),
                }
            }
            Err(e) => return Err(Refusal::Auth(e)),
        };
        let body = request.get_ref();
        let ttl = match body.validity_duration {
            d if d < 0 => return Err(Refusal::Csr(CsrError::Validity(d), grant.by.as_str())),
            0 => None,
            d => Some(Duration::from_secs(d as u64)),
        };
        let started = tokio::time::Instant::now();
        let chain = self
            .ca
            .sign(&body.csr, &grant.id, ttl)
            .map_err(|e| Refusal::Csr(e, grant.by.as_str()))?;
        metrics::histogram!("mesh_ca_sign_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("mesh_ca_csr_total", "result" => "signed", "reason" => grant.by.as_str())
            .increment(1);
        tracing::info!(identity = %grant.id, by = grant.by.as_str(), ttl_s = self.ca.lifetime(ttl).as_secs(), "CA: certificate issued");
        Ok(chain)
    }
}

/// Why a call was refused.
enum Refusal {
    Auth(AuthError),
    /// The CSR error and how the caller had authenticated.
    Csr(CsrError, &'static str),
}

impl Refusal {
    fn reason(&self) -> &'static str {
        match self {
            Refusal::Auth(_) => "unauthenticated",
            Refusal::Csr(e, _) => e.reason(),
        }
    }

    fn status(&self) -> Status {
        match self {
            // Transient: the caller should retry.
            Refusal::Auth(e @ AuthError::ReviewUnavailable(_)) => {
                Status::unavailable(e.to_string())
            }
            Refusal::Auth(e) => Status::unauthenticated(e.to_string()),
            Refusal::Csr(e, _) if e.is_permission_denied() => {
                Status::permission_denied(e.to_string())
            }
            Refusal::Csr(e, _) if e.is_internal() => Status::internal(e.to_string()),
            Refusal::Csr(e, _) => Status::invalid_argument(e.to_string()),
        }
    }
}

#[tonic::async_trait]
impl IstioCertificateService for CaService {
    async fn create_certificate(
        &self,
        request: Request<IstioCertificateRequest>,
    ) -> Result<Response<IstioCertificateResponse>, Status> {
        let remote = request.remote_addr();
        match self.handle(&request).await {
            Ok(cert_chain) => Ok(Response::new(IstioCertificateResponse { cert_chain })),
            Err(refusal) => {
                let reason = refusal.reason();
                metrics::counter!("mesh_ca_csr_total", "result" => "refused", "reason" => reason)
                    .increment(1);
                let status = refusal.status();
                let by = match &refusal {
                    Refusal::Csr(_, by) => *by,
                    Refusal::Auth(_) => "none",
                };
                tracing::warn!(
                    ?remote,
                    reason,
                    authenticated_by = by,
                    error = status.message(),
                    "CA: certificate request refused"
                );
                Err(status)
            }
        }
    }
}
