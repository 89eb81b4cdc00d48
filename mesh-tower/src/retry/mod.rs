//! Retries with Envoy's semantics: `retry_on` conditions, `num_retries`, per-try timeouts, fully
//! jittered exponential backoff and the cluster's retry budget.
//!
//! The pieces work alone, for a hand-written client pipeline, and together in [`RetryLayer`]:
//!
//! - [`is_retryable`] decides whether an attempt's [`Outcome`] may be retried under a policy;
//! - [`Backoff`] draws the delay before each retry;
//! - [`RetryBudget`] caps retries in flight across a whole cluster;
//! - [`RetryState`] combines them for one request: report each outcome, get a [`Decision`].
//!
//! # Why a budget
//!
//! Retries multiply load exactly when an upstream is struggling: with 3 retries, an outage can
//! quadruple the traffic that is making it fail. A per-request cap cannot prevent that; a
//! cluster-wide cap on retries *in flight* can. Envoy's budget lets retries be at most a share
//! (default 20 %) of the requests in flight, with a floor (default 3) so a quiet cluster can still
//! retry; without a budget, the circuit breaker's `max_retries` (default 3) is the cap. A request
//! the budget refuses returns its last result, marked with [`StopReason::BudgetExhausted`].
//!
//! # Observability
//!
//! Each attempt carries `x-envoy-attempt-count: n`. Responses returned by [`Retry`] carry a
//! [`RetryInfo`] extension (attempts made, why retrying stopped); errors after a refused retry
//! are [`RetryError::RetryBudgetExhausted`], and a per-try timeout is
//! [`RetryError::PerTryTimeout`].

mod backoff;
mod budget;
mod future;
mod layer;
mod policy;
mod state;
#[cfg(test)]
mod tests;

use std::time::Duration;

use tower::BoxError;

pub use backoff::Backoff;
pub use budget::{RequestGuard, RetryBudget, RetryPermit};
pub use future::ResponseFuture;
pub use layer::{ErrorClassifier, Retry, RetryLayer};
pub use policy::{Outcome, is_retryable, retriable_by_headers};
pub use state::{Decision, RetryState};

/// Envoy's attempt-count request header, set on every attempt (1 for the first).
pub const ATTEMPT_COUNT: &str = "x-envoy-attempt-count";

/// Why a request stopped being retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The outcome is not retryable under the policy (including success).
    NotRetryable,
    /// `num_retries` retries were made.
    RetriesExhausted,
    /// The retry budget (or `max_retries`) refused another retry.
    BudgetExhausted,
}

/// Response extension added by [`Retry`]: how the request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryInfo {
    /// Attempts made, counting the first.
    pub attempts: u32,
    /// Why no further attempt was made.
    pub stop: StopReason,
}

/// Errors of the retry layer. Other errors of the inner service are returned unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RetryError {
    /// An attempt got no response within the per-try timeout.
    #[error("attempt {attempt} got no response within the per-try timeout of {timeout:?}")]
    PerTryTimeout {
        /// The attempt, counting from 1.
        attempt: u32,
        /// The per-try timeout.
        timeout: Duration,
    },
    /// The last attempt failed retryably, but the retry budget refused another retry.
    #[error("retry budget exhausted after {attempts} attempt(s); last error: {source}")]
    RetryBudgetExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        #[source]
        source: BoxError,
    },
}

impl RetryError {
    /// True when a retry was refused by the budget (rather than the attempt itself failing).
    pub fn is_budget_exhausted(&self) -> bool {
        matches!(self, RetryError::RetryBudgetExhausted { .. })
    }
}

/// The default [`ErrorClassifier`]: walks the error's source chain for a per-try timeout or a
/// connect failure (`hyper_util`'s `is_connect()`, or an `io::Error` refusing or failing to
/// reach the peer); anything else is a [`Outcome::Reset`]. HTTP/2 `REFUSED_STREAM` needs the
/// `h2` error type, which this crate does not depend on: a client that wants
/// [`Outcome::RefusedStream`] passes its own classifier to
/// [`RetryLayer::with_error_classifier`].
pub fn classify_error(err: &BoxError) -> Outcome {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err.as_ref());
    while let Some(e) = cur {
        if let Some(RetryError::PerTryTimeout { .. }) = e.downcast_ref::<RetryError>() {
            return Outcome::Timeout;
        }
        if e.is::<tokio::time::error::Elapsed>() {
            return Outcome::Timeout;
        }
        if let Some(e) = e.downcast_ref::<hyper_util::client::legacy::Error>()
            && e.is_connect()
        {
            return Outcome::ConnectFailure;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            match io.kind() {
                ConnectionRefused | HostUnreachable | NetworkUnreachable | AddrNotAvailable => {
                    return Outcome::ConnectFailure;
                }
                _ => {}
            }
        }
        cur = e.source();
    }
    Outcome::Reset
}
