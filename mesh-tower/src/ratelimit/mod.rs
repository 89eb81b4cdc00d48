//! Local rate limiting (Envoy's `envoy.filters.http.local_ratelimit`): a token bucket per route,
//! lock-free; an empty bucket answers 429 with a retry hint.

mod layer;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use mesh_core::route::LocalRateLimit;
use tokio::time::Instant;

use crate::client::{Body, body};

pub use layer::{RateLimit, RateLimitLayer};

/// A token bucket. The token count and the fill tick are packed into one atomic, so taking a
/// token is a compare-and-swap loop, never a lock.
#[derive(Debug)]
pub struct TokenBucket {
    config: LocalRateLimit,
    epoch: Instant,
    /// High 32 bits: fill ticks since `epoch` already credited; low 32 bits: tokens.
    state: AtomicU64,
    /// The route table and route this bucket belongs to, when it belongs to one.
    owner: Option<(String, String)>,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(config: LocalRateLimit) -> Self {
        let full = u64::from(config.max_tokens);
        Self {
            config,
            epoch: Instant::now(),
            state: AtomicU64::new(full),
            owner: None,
        }
    }

    /// Marks the bucket as the one of route `owner.1` in route table `owner.0`.
    pub fn with_owner(mut self, owner: (String, String)) -> Self {
        self.owner = Some(owner);
        self
    }

    /// The route table and route this bucket belongs to.
    pub fn owner(&self) -> Option<&(String, String)> {
        self.owner.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &LocalRateLimit {
        &self.config
    }

    /// Takes one token, or says how long until the next fill.
    pub fn try_acquire(&self, now: Instant) -> Result<(), Duration> {
        let interval = self.config.fill_interval.max(Duration::from_millis(1));
        let elapsed = now.saturating_duration_since(self.epoch);
        let tick = (elapsed.as_nanos() / interval.as_nanos()).min(u128::from(u32::MAX)) as u64;
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            let (credited, tokens) = (current >> 32, current & 0xFFFF_FFFF);
            let fills = tick.saturating_sub(credited);
            let refilled = (tokens + fills * u64::from(self.config.tokens_per_fill))
                .min(u64::from(self.config.max_tokens));
            if refilled == 0 {
                let next = interval.saturating_mul(u32::try_from(tick + 1).unwrap_or(u32::MAX));
                return Err(next.saturating_sub(elapsed));
            }
            let next = (tick.max(credited) << 32) | (refilled - 1);
            match self.state.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => current = actual,
            }
        }
    }
}

/// Envoy's answer to a rate-limited request: 429, `x-envoy-ratelimited: true`, and a
/// `retry-after` of whole seconds (at least 1) plus `x-ratelimit-reset-ms` with the precise wait.
pub fn limited_response(retry_after: Duration) -> Response<Body> {
    let mut r = Response::new(body::full(Bytes::from_static(b"local_rate_limited")));
    *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let h = r.headers_mut();
    h.insert("x-envoy-ratelimited", HeaderValue::from_static("true"));
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    h.insert("retry-after", HeaderValue::from(secs.max(1)));
    h.insert(
        "x-ratelimit-reset-ms",
        HeaderValue::from(retry_after.as_millis().max(1) as u64),
    );
    r
}

#[cfg(test)]
mod tests;
