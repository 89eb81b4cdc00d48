//! Exponential backoff with jitter for reconnecting (gRPC's connection-backoff shape).

use std::time::Duration;

/// Delays between connection attempts: `base × 1.6^n`, capped, each randomized by ±20 %.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    base: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            next: base,
        }
    }

    /// Back to the base delay (after a stream that worked).
    pub(crate) fn reset(&mut self) {
        self.next = self.base;
    }

    /// The next delay to wait.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let current = self.next;
        self.next = current.mul_f64(1.6).min(self.max);
        current.mul_f64(0.8 + 0.4 * fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_is_capped_and_jittered() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let delays: Vec<_> = (0..8).map(|_| b.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(80) && delays[0] <= Duration::from_millis(120));
        assert!(delays[3] >= Duration::from_millis(327)); // 100 × 1.6³ × 0.8
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(1200)));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(120));
    }
}
