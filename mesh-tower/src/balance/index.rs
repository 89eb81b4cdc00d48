//! Weighted choice of an index, by a random number or by a counter.

/// Chooses among `len` items by weight. Equal weights skip the search entirely.
#[derive(Debug)]
pub(super) struct WeightedIndex {
    /// Cumulative weights (`cum[i]` = sum of weights `0..=i`); empty when all weights are equal.
    cum: Box<[u64]>,
    len: usize,
    total: u64,
    /// Coprime with `total` and close to `total / φ`: `k × stride mod total` visits every
    /// position once per `total` steps, spread out (a low-discrepancy permutation).
    stride: u64,
}

impl WeightedIndex {
    /// An index over `weights`; a weight of 0 counts as 1.
    pub(super) fn new(weights: impl IntoIterator<Item = u64>) -> Self {
        let weights: Vec<u64> = weights.into_iter().map(|w| w.max(1)).collect();
        let len = weights.len();
        let uniform = weights.windows(2).all(|w| w[0] == w[1]);
        let total: u64 = weights.iter().sum();
        let cum = if uniform {
            Box::default()
        } else {
            weights
                .iter()
                .scan(0u64, |acc, w| {
                    *acc += w;
                    Some(*acc)
                })
                .collect()
        };
        Self {
            cum,
            len,
            total,
            stride: coprime_stride(total),
        }
    }

    /// Number of items.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// An index drawn at random with probability proportional to its weight.
    #[inline]
    pub(super) fn random(&self) -> usize {
        if self.cum.is_empty() {
            fastrand::usize(..self.len)
        } else {
            self.at(fastrand::u64(..self.total))
        }
    }

    /// The `k`th index of a weighted round-robin sequence: over any `total weight` consecutive
    /// values of `k` each index appears exactly `weight` times, interleaved rather than in runs.
    #[inline]
    pub(super) fn nth(&self, k: u64) -> usize {
        if self.cum.is_empty() {
            (k % self.len as u64) as usize
        } else {
            let pos = (u128::from(k % self.total) * u128::from(self.stride)
                % u128::from(self.total)) as u64;
            self.at(pos)
        }
    }

    /// The index whose weight range holds `pos` (`pos < total`).
    #[inline]
    fn at(&self, pos: u64) -> usize {
        self.cum.partition_point(|&c| c <= pos)
    }
}

fn coprime_stride(total: u64) -> u64 {
    if total <= 2 {
        return 1;
    }
    let mut s = ((total as f64) * 0.618_033_988_749_895) as u64;
    s = s.clamp(1, total - 1);
    while gcd(s, total) != 1 {
        s += 1;
    }
    s
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}
