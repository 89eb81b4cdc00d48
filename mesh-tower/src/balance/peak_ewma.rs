//! Power of two choices over a peak-EWMA latency estimate, as Linkerd (tower's `PeakEwma`) and
//! finagle do.
//!
//! Each endpoint keeps a latency estimate in its [`EndpointStats`]. A sample above the estimate
//! replaces it at once (the *peak*: a slow endpoint is penalised immediately); a sample below pulls
//! it down with weight `1 − exp(−Δt/τ)`. Between samples the estimate decays toward zero with the
//! same time constant, so an endpoint that stopped receiving traffic because it was slow is tried
//! again eventually. A pick compares two random endpoints by
//! `estimate × (in_flight + 1) / weight` and takes the cheaper.
//!
//! An endpoint without a sample is assumed to answer in [`DEFAULT_RTT`]: new endpoints get traffic
//! (they win against slower ones and against busy fast ones) but do not take all of it; among
//! endpoints without samples the cost follows the in-flight count. The clock is read once per pick;
//! nothing is written on the pick path except the in-flight count.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::set::{Filter, Group};
use crate::endpoint::EndpointStats;

/// Latency assumed for an endpoint before its first sample: 30 ms, Linkerd's default.
pub const DEFAULT_RTT: Duration = Duration::from_millis(30);

/// Time constant of the peak-EWMA decay: 10 s, Linkerd's default.
pub const DEFAULT_DECAY: Duration = Duration::from_secs(10);

/// Samples drawn before scanning for an acceptable endpoint.
const TRIES: usize = 3;

pub(super) fn pick<'g>(
    g: &'g Group,
    default_rtt: Duration,
    decay: Duration,
    filter: &Filter,
) -> Option<&'g Arc<EndpointStats>> {
    let now = filter.now();
    let default_rtt = default_rtt.as_nanos() as f64;
    let decay = decay.as_nanos().max(1) as f64;
    for _ in 0..TRIES {
        let mut best: Option<(usize, f64)> = None;
        g.sample(2, |i| {
            let s = &g.members[i];
            if !filter.accepts(s) {
                return;
            }
            let load = f64::from(s.in_flight.load(Ordering::Relaxed)) + 1.0;
            let cost = estimate(s, now, default_rtt, decay) * load / f64::from(g.weights[i].max(1));
            if best.is_none_or(|(_, b)| cost < b) {
                best = Some((i, cost));
            }
        });
        if let Some((i, _)) = best {
            return Some(&g.members[i]);
        }
    }
    g.scan(fastrand::usize(..g.members.len()), filter)
}

/// The latency estimate of `s` at `now` in nanoseconds, decayed since its last sample.
#[inline]
fn estimate(s: &EndpointStats, now: Instant, default_rtt: f64, decay: f64) -> f64 {
    let ewma = s.ewma_nanos.load(Ordering::Relaxed);
    if ewma == 0 {
        return default_rtt;
    }
    let elapsed = s
        .nanos(now)
        .saturating_sub(s.ewma_stamp.load(Ordering::Relaxed));
    if elapsed == 0 {
        ewma as f64
    } else {
        ewma as f64 * (-(elapsed as f64) / decay).exp()
    }
}

/// Feeds one latency sample taken at `now`. Concurrent samples may overwrite each other's
/// timestamp; the estimate itself is updated with a compare-and-swap loop.
pub(super) fn observe(s: &EndpointStats, now: Instant, latency: Duration, decay: Duration) {
    let sample = latency.as_nanos().clamp(1, u128::from(u64::MAX)) as u64;
    let t = s.nanos(now);
    let elapsed = t.saturating_sub(s.ewma_stamp.swap(t, Ordering::Relaxed));
    let w = (-(elapsed as f64) / decay.as_nanos().max(1) as f64).exp();
    let _ = s
        .ewma_nanos
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| {
            let decayed = cur as f64 * w;
            Some(if cur == 0 || sample as f64 > decayed {
                sample
            } else {
                ((decayed * w + sample as f64 * (1.0 - w)) as u64).max(1)
            })
        });
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;

    #[test]
    fn peak_ewma_takes_peaks_at_once_and_decays_slowly() {
        let epoch = Instant::now();
        let s = &EndpointStats::new("10.0.0.1:80".parse().unwrap(), epoch);
        let t0 = epoch + Duration::from_secs(1);
        let ms = |n| Duration::from_millis(n);
        let ewma = || Duration::from_nanos(s.ewma_nanos.load(Ordering::Relaxed));
        observe(s, t0, ms(10), DEFAULT_DECAY);
        assert_eq!(ewma(), ms(10));
        observe(s, t0 + ms(100), ms(100), DEFAULT_DECAY);
        assert_eq!(ewma(), ms(100), "a peak replaces the estimate");
        observe(s, t0 + ms(200), ms(10), DEFAULT_DECAY);
        assert!(
            ewma() > ms(95),
            "one fast sample barely moves it: {:?}",
            ewma()
        );
        observe(s, t0 + Duration::from_secs(60), ms(10), DEFAULT_DECAY);
        assert!(
            ewma() < ms(11),
            "a minute later it follows the samples: {:?}",
            ewma()
        );
    }
}
