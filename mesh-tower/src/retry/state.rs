//! One request's retry decisions, for the layer and for hand-written pipelines.

use std::sync::Arc;
use std::time::Duration;

use mesh_core::route::RetryPolicy;

use super::{Backoff, Outcome, RetryBudget, RetryPermit, StopReason, is_retryable};

/// The retry decisions of one request: feed it each attempt's [`Outcome`], it answers whether
/// and when to try again.
///
/// A retry holds a [`RetryPermit`] of the budget from the decision until the next outcome is
/// reported (or the state is dropped), so the budget counts retries waiting in backoff and in
/// flight, as Envoy does.
#[derive(Debug)]
pub struct RetryState {
    policy: Arc<RetryPolicy>,
    budget: Option<RetryBudget>,
    backoff: Backoff,
    rng: fastrand::Rng,
    attempt: u32,
    permit: Option<RetryPermit>,
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Wait `backoff`, then send attempt number `attempt` (2 for the first retry).
    Retry {
        /// The attempt about to be made, counting from 1.
        attempt: u32,
        /// Delay before it.
        backoff: Duration,
    },
    /// Return this attempt's result.
    Stop(StopReason),
}

impl RetryState {
    /// State before the first attempt; `budget` of `None` means retries are only capped by
    /// `num_retries`.
    pub fn new(policy: Arc<RetryPolicy>, budget: Option<RetryBudget>) -> Self {
        Self {
            backoff: Backoff::from_policy(&policy),
            policy,
            budget,
            rng: fastrand::Rng::new(),
            attempt: 1,
            permit: None,
        }
    }

    /// Uses `rng` for the backoff jitter (a seeded one makes delays reproducible).
    pub fn with_rng(mut self, rng: fastrand::Rng) -> Self {
        self.rng = rng;
        self
    }

    /// The policy in force.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The attempt in progress, counting from 1 (the `x-envoy-attempt-count` value).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Decides after the current attempt ended with `outcome`.
    pub fn on_outcome(&mut self, outcome: Outcome) -> Decision {
        self.permit = None;
        let p = &self.policy;
        if !is_retryable(&p.retry_on, &p.retriable_status_codes, outcome) {
            return Decision::Stop(StopReason::NotRetryable);
        }
        if self.attempt > p.num_retries {
            return Decision::Stop(StopReason::RetriesExhausted);
        }
        if let Some(budget) = &self.budget {
            match budget.try_retry() {
                Some(permit) => self.permit = Some(permit),
                None => return Decision::Stop(StopReason::BudgetExhausted),
            }
        }
        let backoff = self.backoff.delay(self.attempt - 1, &mut self.rng);
        self.attempt += 1;
        Decision::Retry {
            attempt: self.attempt,
            backoff,
        }
    }
}
