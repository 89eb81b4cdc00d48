//! Envoy's fully jittered exponential backoff.

use std::time::Duration;

use mesh_core::route::RetryPolicy;

/// Delay before retry `n` (0 for the first retry): uniformly random in
/// `[0, min(base × 2^n, max))`, as Envoy's `JitteredExponentialBackOffStrategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
}

impl Backoff {
    /// A backoff from `base` capped at `max` (a `max` below `base` is raised to `base`).
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max: max.max(base),
        }
    }

    /// The backoff of a retry policy (default 25 ms base, 250 ms cap).
    pub fn from_policy(policy: &RetryPolicy) -> Self {
        Self::new(policy.backoff_base, policy.backoff_max)
    }

    /// The upper bound (exclusive) of the delay before retry `n`: `min(base × 2^n, max)`.
    pub fn ceiling(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// A random delay before retry `n`, drawn from `rng`.
    pub fn delay(&self, n: u32, rng: &mut fastrand::Rng) -> Duration {
        let ceiling = self.ceiling(n).as_nanos().min(u128::from(u64::MAX)) as u64;
        if ceiling == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(rng.u64(0..ceiling))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let b = Backoff::from_policy(&RetryPolicy::default());
        let ms: Vec<_> = (0..6).map(|n| b.ceiling(n).as_millis()).collect();
        assert_eq!(ms, [25, 50, 100, 200, 250, 250]);
        assert_eq!(b.ceiling(200), Duration::from_millis(250));
    }

    #[test]
    fn delays_are_jittered_below_the_ceiling_and_grow() {
        let b = Backoff::from_policy(&RetryPolicy::default());
        let mut rng = fastrand::Rng::with_seed(7);
        let mut previous_max = Duration::ZERO;
        for n in 0..4 {
            let samples: Vec<_> = (0..200).map(|_| b.delay(n, &mut rng)).collect();
            let max = *samples.iter().max().unwrap();
            assert!(samples.iter().all(|d| *d < b.ceiling(n)));
            assert!(max > previous_max, "retry {n}: {max:?} ≤ {previous_max:?}");
            previous_max = max;
        }
    }
}
