//! Kubernetes service account tokens as CA credentials, checked with the TokenReview API, as
//! Istio's CA does: a workload sends its projected, audience-bound token
//! (`authorization: Bearer <token>`), the API server says whether it is valid, for our audience,
//! and whose it is; the SPIFFE ID comes from that answer (`system:serviceaccount:<ns>:<sa>`),
//! never from the CSR.

use std::future::Future;
use std::pin::Pin;

use k8s_openapi::api::authentication::v1::{TokenReview as Review, TokenReviewSpec};
use kube::api::{Api, PostParams};
use mesh_core::identity::SpiffeId;

use crate::ca::auth::{AuthError, TokenReview};

/// The audience Istio's CA accepts, and ours by default.
pub const DEFAULT_AUDIENCE: &str = "istio-ca";

/// Reviews tokens with the API server.
#[derive(Clone)]
pub struct TokenReviewer {
    client: kube::Client,
    audience: String,
    trust_domain: String,
}

impl std::fmt::Debug for TokenReviewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenReviewer")
            .field("audience", &self.audience)
            .field("trust_domain", &self.trust_domain)
            .finish_non_exhaustive()
    }
}

impl TokenReviewer {
    /// Accepts tokens for `audience`, issuing identities in `trust_domain`.
    pub fn new(client: kube::Client, audience: &str, trust_domain: &str) -> Self {
        Self {
            client,
            audience: audience.into(),
            trust_domain: trust_domain.into(),
        }
    }

    async fn check(&self, token: &str) -> Result<SpiffeId, AuthError> {
        let api: Api<Review> = Api::all(self.client.clone());
        let review = Review {
            spec: TokenReviewSpec {
                token: Some(token.into()),
                audiences: Some(vec![self.audience.clone()]),
            },
            ..Review::default()
        };
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| AuthError::ReviewUnavailable(e.to_string()))?;
        let status = answer.status.unwrap_or_default();
        if status.authenticated != Some(true) {
            return Err(AuthError::TokenRejected {
                reason: status
                    .error
                    .filter(|e| !e.is_empty())
                    .unwrap_or_else(|| "not authenticated".into()),
            });
        }
        // The API server answers with the audiences the token is valid for among those asked.
        if !status
            .audiences
            .unwrap_or_default()
            .contains(&self.audience)
        {
            return Err(AuthError::WrongAudience {
                audience: self.audience.clone(),
            });
        }
        let username = status.user.and_then(|u| u.username).unwrap_or_default();
        service_account_id(&username, &self.trust_domain)
    }
}

/// The SPIFFE ID of `system:serviceaccount:<namespace>:<name>`.
pub fn service_account_id(username: &str, trust_domain: &str) -> Result<SpiffeId, AuthError> {
    let not_sa = || AuthError::NotServiceAccount {
        username: username.into(),
    };
    let rest = username
        .strip_prefix("system:serviceaccount:")
        .ok_or_else(not_sa)?;
    let (ns, sa) = rest.split_once(':').ok_or_else(not_sa)?;
    SpiffeId::new(trust_domain, ns, sa).map_err(|_| not_sa())
}

impl TokenReview for TokenReviewer {
    fn review<'a>(
        &'a self,
        token: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<SpiffeId, AuthError>> + Send + 'a>> {
        Box::pin(self.check(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_service_accounts_get_an_identity() {
        let id = service_account_id("system:serviceaccount:shop:reviews", "cluster.local").unwrap();
        assert_eq!(id.to_string(), "spiffe://cluster.local/ns/shop/sa/reviews");
        for user in ["alice", "system:node:n1", "system:serviceaccount:shop", ""] {
            assert!(
                matches!(
                    service_account_id(user, "cluster.local"),
                    Err(AuthError::NotServiceAccount { .. })
                ),
                "{user}"
            );
        }
    }
}
