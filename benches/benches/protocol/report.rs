//! The protocol's results: medians, spreads and ratios, as JSON and as the BENCHMARKS.md section.

use std::fmt::Write as _;
use std::path::Path;

/// One round of one mode.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Sample {
    pub(crate) rps: f64,
    pub(crate) cpu_us_per_req: f64,
    pub(crate) allocs_per_req: f64,
    pub(crate) open_rate: f64,
    pub(crate) p50_us: u64,
    pub(crate) p99_us: u64,
    pub(crate) errors: u64,
    pub(crate) rss_kb: u64,
}

/// A mode and its rounds.
#[derive(Debug)]
pub(crate) struct Mode {
    pub(crate) name: &'static str,
    pub(crate) baseline: Option<&'static str>,
    pub(crate) samples: Vec<Sample>,
}

/// `(median, min, max)` of a metric.
fn stats(v: impl Iterator<Item = f64>) -> (f64, f64, f64) {
    let mut v: Vec<f64> = v.collect();
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (median, v[0], v[n - 1])
}

/// One paired round: both streams of one open loop.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct PairedRound {
    pub(crate) base_p50_us: u64,
    pub(crate) base_p99_us: u64,
    pub(crate) p50_us: u64,
    pub(crate) p99_us: u64,
    pub(crate) errors: u64,
}

/// A mode measured paired with its baseline.
#[derive(Debug)]
pub(crate) struct Paired {
    pub(crate) mode: &'static str,
    pub(crate) baseline: &'static str,
    /// The open-loop rate, split evenly between the two streams.
    pub(crate) rate: f64,
    pub(crate) rounds: Vec<PairedRound>,
}

impl Paired {
    /// `(median, min, max)` over rounds of the added p50 and p99, and the rounds whose added p99
    /// is within `p99_goal_us`.
    fn added(&self, p99_goal_us: f64) -> ((f64, f64, f64), (f64, f64, f64), usize) {
        let d = |a: u64, b: u64| a as f64 - b as f64;
        let p50 = stats(self.rounds.iter().map(|r| d(r.p50_us, r.base_p50_us)));
        let p99 = stats(self.rounds.iter().map(|r| d(r.p99_us, r.base_p99_us)));
        let within = self
            .rounds
            .iter()
            .filter(|r| d(r.p99_us, r.base_p99_us) <= p99_goal_us)
            .count();
        (p50, p99, within)
    }
}

/// Issue 4's goal for the client stack's added p99.
const P99_GOAL_US: f64 = 60.0;

pub(crate) struct Report {
    quick: bool,
    rounds: usize,
    secs: f64,
    pinned: bool,
    modes: Vec<Mode>,
    paired: Vec<Paired>,
}

impl Report {
    pub(crate) fn new(
        quick: bool,
        rounds: usize,
        secs: f64,
        pinned: bool,
        modes: Vec<Mode>,
        paired: Vec<Paired>,
    ) -> Self {
        Report {
            quick,
            rounds,
            secs,
            pinned,
            modes,
            paired,
        }
    }

    fn base(&self, m: &Mode) -> Option<&Mode> {
        let b = m.baseline?;
        self.modes.iter().find(|x| x.name == b)
    }

    /// The median over rounds of `f(mode) − f(baseline)` in the same round.
    fn added(&self, m: &Mode, f: impl Fn(&Sample) -> f64) -> Option<(f64, f64, f64)> {
        let b = self.base(m)?;
        Some(stats(
            m.samples.iter().zip(&b.samples).map(|(x, y)| f(x) - f(y)),
        ))
    }

    fn ratio(&self, m: &Mode) -> Option<f64> {
        let b = self.base(m)?;
        Some(stats(m.samples.iter().map(|s| s.rps)).0 / stats(b.samples.iter().map(|s| s.rps)).0)
    }

    pub(crate) fn json(&self) -> String {
        let modes: Vec<serde_json::Value> = self
            .modes
            .iter()
            .map(|m| {
                let s = |f: fn(&Sample) -> f64| {
                    let (median, min, max) = stats(m.samples.iter().map(f));
                    serde_json::json!({ "median": median, "min": min, "max": max })
                };
                serde_json::json!({
                    "mode": m.name,
                    "baseline": m.baseline,
                    "rps": s(|x| x.rps),
                    "throughput_ratio": self.ratio(m),
                    "open_loop_rate": m.samples.first().map(|x| x.open_rate),
                    "p50_us": s(|x| x.p50_us as f64),
                    "p99_us": s(|x| x.p99_us as f64),
                    "added_p50_us": self.added(m, |x| x.p50_us as f64).map(|a| a.0),
                    "added_p99_us": self.added(m, |x| x.p99_us as f64).map(|a| a.0),
                    "cpu_us_per_req": s(|x| x.cpu_us_per_req),
                    "allocs_per_req": s(|x| x.allocs_per_req),
                    "added_allocs_per_req": self.added(m, |x| x.allocs_per_req).map(|a| a.0),
                    "rss_kb": s(|x| x.rss_kb as f64),
                    "samples": m.samples,
                })
            })
            .collect();
        let paired: Vec<serde_json::Value> = self
            .paired
            .iter()
            .map(|p| {
                let (p50, p99, within) = p.added(P99_GOAL_US);
                serde_json::json!({
                    "mode": p.mode,
                    "baseline": p.baseline,
                    "open_loop_rate_total": p.rate,
                    "added_p50_us": {"median": p50.0, "min": p50.1, "max": p50.2},
                    "added_p99_us": {"median": p99.0, "min": p99.1, "max": p99.2},
                    "rounds_within_p99_goal": within,
                    "rounds": p.rounds,
                })
            })
            .collect();
        let v = serde_json::json!({
            "protocol": "cargo bench -p mesh-benches --bench protocol",
            "paired": paired,
            "quick": self.quick,
            "rounds": self.rounds,
            "phase_secs": self.secs,
            "pinned": self.pinned,
            "cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "modes": modes,
        });
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }

    /// The Markdown table of the results.
    pub(crate) fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "| mode | vs | req/s median (min–max) | ratio | open-loop rate | p50 / p99 | added p50 / p99 (median of rounds) | CPU µs/req | allocs/req | RSS |"
        );
        let _ = writeln!(t, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for m in &self.modes {
            if m.samples.is_empty() {
                let _ = writeln!(
                    t,
                    "| {} | {} | skipped (see the run's output) | | | | | | | |",
                    m.name,
                    m.baseline.unwrap_or("—")
                );
                continue;
            }
            let (rps, lo, hi) = stats(m.samples.iter().map(|s| s.rps));
            let (p50, ..) = stats(m.samples.iter().map(|s| s.p50_us as f64));
            let (p99, ..) = stats(m.samples.iter().map(|s| s.p99_us as f64));
            let (cpu, ..) = stats(m.samples.iter().map(|s| s.cpu_us_per_req));
            let (allocs, ..) = stats(m.samples.iter().map(|s| s.allocs_per_req));
            let (rss, ..) = stats(m.samples.iter().map(|s| s.rss_kb as f64));
            let ratio = self
                .ratio(m)
                .map_or("—".to_string(), |r| format!("**{r:.2}×**"));
            let added = match (
                self.added(m, |x| x.p50_us as f64),
                self.added(m, |x| x.p99_us as f64),
            ) {
                (Some(a), Some(b)) => format!("{:+.0} / {:+.0} µs", a.0, b.0),
                _ => "—".to_string(),
            };
            let rate = m.samples.first().map_or(0.0, |s| s.open_rate);
            // Envoy's own allocations are not visible to our counting allocator.
            let allocs = if m.name.starts_with("envoy") {
                "—".to_string()
            } else {
                format!("{allocs:.1}")
            };
            let _ = writeln!(
                t,
                "| {} | {} | {rps:.0} ({lo:.0}–{hi:.0}) | {ratio} | {rate:.0} | {p50:.0} / {p99:.0} µs | {added} | {cpu:.1} | {allocs} | {:.1} MiB |",
                m.name,
                m.baseline.unwrap_or("—"),
                rss / 1024.0
            );
        }
        if !self.paired.is_empty() {
            let _ = writeln!(
                t,
                "\nPaired latency: the mode's front and its baseline's run at once, one open loop alternating requests between them (the rate is the baseline's half maximum, split between the two), so the machine's noise falls on both alike.\n"
            );
            let _ = writeln!(
                t,
                "| mode | vs | rounds | total rate | added p50 median (min–max) | added p99 median (min–max) | rounds with added p99 ≤ {P99_GOAL_US:.0} µs |"
            );
            let _ = writeln!(t, "|---|---|---:|---:|---:|---:|---:|");
            for p in &self.paired {
                let (p50, p99, within) = p.added(P99_GOAL_US);
                let _ = writeln!(
                    t,
                    "| {} | {} | {} | {:.0} req/s | {:+.0} µs ({:+.0}–{:+.0}) | **{:+.0} µs** ({:+.0}–{:+.0}) | {within} of {} |",
                    p.mode,
                    p.baseline,
                    p.rounds.len(),
                    p.rate,
                    p50.0,
                    p50.1,
                    p50.2,
                    p99.0,
                    p99.1,
                    p99.2,
                    p.rounds.len()
                );
            }
        }
        t
    }

    /// Replaces the text between the protocol markers of BENCHMARKS.md with this run's table.
    pub(crate) fn update_markdown(&self, path: &Path) -> Result<(), String> {
        const BEGIN: &str = "<!-- protocol:begin -->";
        const END: &str = "<!-- protocol:end -->";
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let (Some(b), Some(e)) = (text.find(BEGIN), text.find(END)) else {
            return Err(format!("no {BEGIN} … {END} markers"));
        };
        let date = std::process::Command::new("date")
            .args(["-u", "+%Y-%m-%d %H:%M UTC"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let body = format!(
            "{BEGIN}\nGenerated {date} by `cargo bench -p mesh-benches --bench protocol` ({} rounds × {} s phases, {}; JSON in `benches/results/protocol.json`).\n\n{}{END}",
            self.rounds,
            self.secs,
            if self.pinned {
                "servers pinned to CPU0, load to CPU1"
            } else {
                "not pinned"
            },
            self.table()
        );
        let updated = format!("{}{body}{}", &text[..b], &text[e + END.len()..]);
        std::fs::write(path, updated).map_err(|e| e.to_string())
    }
}
