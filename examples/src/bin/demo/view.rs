//! The live terminal view: one block a second — traffic, the reviews split, ratings, retries
//! and ejections, who talks to whom, and what the intruder gets.

use std::io::{IsTerminal, Write};

use crate::traffic::Window;

/// Mesh counters read from the process's Prometheus text.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Counters {
    pub(crate) retries: f64,
    pub(crate) ejections: f64,
}

impl Counters {
    pub(crate) fn read(text: &str) -> Counters {
        Counters {
            retries: sum(text, "mesh_retries_total"),
            ejections: sum(text, "mesh_outlier_ejections_total"),
        }
    }
}

/// The sum of a metric's samples.
fn sum(text: &str, metric: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// What one frame shows.
pub(crate) struct Frame<'a> {
    pub(crate) step: &'a str,
    pub(crate) elapsed: u64,
    pub(crate) window: &'a Window,
    pub(crate) counters: Counters,
    pub(crate) delta: Counters,
    pub(crate) seen: &'a [(&'static str, String)],
    pub(crate) intruder: Option<&'a str>,
}

fn bar(percent: f64) -> String {
    let n = (percent / 5.0).round() as usize;
    format!("{:<20}", "█".repeat(n))
}

fn short(id: &str) -> &str {
    id.rsplit_once("/sa/").map_or(id, |(_, sa)| sa)
}

impl Frame<'_> {
    fn lines(&self) -> Vec<String> {
        let w = self.window;
        let total = w.total();
        let success = if total == 0 {
            100.0
        } else {
            100.0 * w.ok as f64 / total as f64
        };
        let mut out = vec![
            format!(
                "── meshlib demo shop · {} · t={}s ",
                self.step, self.elapsed
            ),
            format!(
                " traffic    {total:>4} req/s   success {success:5.1}%   p50 {:5.1} ms   p99 {:5.1} ms",
                w.quantile_ms(0.5),
                w.quantile_ms(0.99)
            ),
        ];
        for v in ["v1", "v2", "v3"] {
            let share = w.share(v);
            out.push(format!(" reviews {v}  {} {share:5.1}%", bar(share)));
        }
        let asked: u64 = w.ratings.values().sum();
        let ok = *w.ratings.get("ok").unwrap_or(&0);
        out.push(format!(
            " ratings    {} of {asked} answered   retries {} (total {})   ejections {} (total {})",
            ok,
            self.delta.retries,
            self.counters.retries,
            self.delta.ejections,
            self.counters.ejections
        ));
        let who: Vec<String> = self
            .seen
            .iter()
            .map(|(server, caller)| format!("{} → {server}", short(caller)))
            .collect();
        out.push(format!(" mTLS peers {}", who.join(" · ")));
        if let Some(a) = self.intruder {
            out.push(format!(" intruder → ratings: {a}"));
        }
        if let Some(e) = &w.last_error {
            out.push(format!(" last error {e}"));
        }
        out
    }

    /// Draws the frame: redrawn in place on a terminal; one summary line otherwise.
    pub(crate) fn draw(&self, live: bool) {
        let mut stdout = std::io::stdout().lock();
        if !live {
            let w = self.window;
            let _ = writeln!(
                stdout,
                "  t={:>3}s {:>4} req/s ok {:>4} failed {:>3} | v1 {:5.1}% v2 {:5.1}% v3 {:5.1}% | p50 {:.1} ms p99 {:.1} ms | retries +{} ejections +{}",
                self.elapsed,
                w.total(),
                w.ok,
                w.failed,
                w.share("v1"),
                w.share("v2"),
                w.share("v3"),
                w.quantile_ms(0.5),
                w.quantile_ms(0.99),
                self.delta.retries as u64,
                self.delta.ejections as u64
            );
            return;
        }
        let lines = self.lines();
        {
            // Move up over the previous frame and clear to the end of the screen.
            let _ = write!(stdout, "\x1b[{}F\x1b[J", FRAME_HEIGHT);
        }
        for i in 0..FRAME_HEIGHT {
            let _ = writeln!(stdout, "{}", lines.get(i).map_or("", String::as_str));
        }
        let _ = stdout.flush();
    }
}

/// Lines in a frame (padded), so the next one can draw over it.
pub(crate) const FRAME_HEIGHT: usize = 9;

/// True when the view can redraw in place.
pub(crate) fn is_live() -> bool {
    std::io::stdout().is_terminal()
}

/// Prints a line above the live view (or just a line).
pub(crate) fn note(live: bool, text: &str) {
    let mut stdout = std::io::stdout().lock();
    if live {
        let _ = write!(stdout, "\x1b[{}F\x1b[J", FRAME_HEIGHT);
    }
    let _ = writeln!(stdout, "{text}");
    if live {
        let _ = write!(stdout, "{}", "\n".repeat(FRAME_HEIGHT));
    }
    let _ = stdout.flush();
}

/// Reserves the frame's lines before the first draw.
pub(crate) fn reserve() {
    print!("{}", "\n".repeat(FRAME_HEIGHT));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mesh_counters() {
        let text = "mesh_retries_total{cluster=\"a\"} 3\nmesh_retries_total{cluster=\"b\"} 2\nmesh_retries_total_other 9\nmesh_outlier_ejections_total{cluster=\"a\",reason=\"x\"} 1\n";
        assert_eq!(
            Counters::read(text),
            Counters {
                retries: 5.0,
                ejections: 1.0
            }
        );
    }
}
