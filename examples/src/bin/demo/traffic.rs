//! The traffic the demo watches: a load generator calling the frontend at a steady rate, and an
//! intruder workload calling ratings directly. Both are meshed clients with their own identity.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use tokio::time::Instant;

use crate::shop::{FRONTEND, RATINGS};

/// What one second of traffic did.
#[derive(Debug, Default, Clone)]
pub(crate) struct Window {
    pub(crate) ok: u64,
    pub(crate) failed: u64,
    /// Answers by reviews version.
    pub(crate) versions: BTreeMap<String, u64>,
    /// How ratings answered reviews: `ok` or the error.
    pub(crate) ratings: BTreeMap<String, u64>,
    /// Latencies in microseconds.
    pub(crate) latencies: Vec<u64>,
    /// The last failure's message.
    pub(crate) last_error: Option<String>,
}

impl Window {
    pub(crate) fn total(&self) -> u64 {
        self.ok + self.failed
    }

    /// The `q` quantile of the latencies, in milliseconds.
    pub(crate) fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let mut v = self.latencies.clone();
        v.sort_unstable();
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        v[i] as f64 / 1000.0
    }

    /// The share of answers from `version`, in percent.
    pub(crate) fn share(&self, version: &str) -> f64 {
        let n: u64 = self.versions.values().sum();
        if n == 0 {
            return 0.0;
        }
        100.0 * *self.versions.get(version).unwrap_or(&0) as f64 / n as f64
    }

    fn merge(&mut self, other: &Window) {
        self.ok += other.ok;
        self.failed += other.failed;
        for (k, v) in &other.versions {
            *self.versions.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.ratings {
            *self.ratings.entry(k.clone()).or_default() += v;
        }
        self.latencies.extend_from_slice(&other.latencies);
        if other.last_error.is_some() {
            self.last_error = other.last_error.clone();
        }
    }
}

/// Traffic statistics: the current second and everything since the last `phase()` reset.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    current: Mutex<Window>,
    phase: Mutex<Window>,
    /// The intruder's last answer from ratings.
    pub(crate) intruder: Mutex<Option<String>>,
}

impl Stats {
    fn record(&self, f: impl FnOnce(&mut Window)) {
        f(&mut self.current.lock().unwrap());
    }

    /// Takes the last second's window (and adds it to the phase's).
    pub(crate) fn tick(&self) -> Window {
        let w = std::mem::take(&mut *self.current.lock().unwrap());
        self.phase.lock().unwrap().merge(&w);
        w
    }

    /// Takes everything since the previous call.
    pub(crate) fn phase(&self) -> Window {
        std::mem::take(&mut *self.phase.lock().unwrap())
    }

    /// The intruder's last answer from ratings; empty before its first call.
    pub(crate) fn intruder_answer(&self) -> String {
        self.intruder.lock().unwrap().clone().unwrap_or_default()
    }
}

/// Calls the frontend `rate` times a second, on a schedule (open loop), until the task is
/// aborted.
pub(crate) async fn load(client: mesh_tower::Client, rate: u32, stats: Arc<Stats>) {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let limit = Arc::new(tokio::sync::Semaphore::new(256));
    let mut product = 0u32;
    loop {
        tick.tick().await;
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            stats.record(|w| {
                w.failed += 1;
                w.last_error = Some("more than 256 requests in flight".into());
            });
            continue;
        };
        product = product % 10 + 1;
        let (client, stats) = (client.clone(), stats.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let started = Instant::now();
            let req = http::Request::get(format!("http://{FRONTEND}/product/{product}"))
                .body(Empty::<Bytes>::new())
                .expect("a valid request");
            let outcome = match client.request(req).await {
                Ok(resp) => {
                    let status = resp.status();
                    let (version, ratings) = {
                        let header = |n: &str| {
                            resp.headers()
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .map(String::from)
                        };
                        (header("x-reviews-version"), header("x-ratings"))
                    };
                    let body = resp.into_body().collect().await.map(|b| b.to_bytes());
                    match (status.is_success(), body) {
                        (true, Ok(_)) => Ok((version, ratings)),
                        (_, Ok(b)) => Err(format!("{status}: {}", String::from_utf8_lossy(&b))),
                        (_, Err(e)) => Err(e.to_string()),
                    }
                }
                Err(e) => Err(e.to_string()),
            };
            let micros = started.elapsed().as_micros() as u64;
            stats.record(|w| match outcome {
                Ok((version, ratings)) => {
                    w.ok += 1;
                    w.latencies.push(micros);
                    *w.versions
                        .entry(version.unwrap_or_else(|| "?".into()))
                        .or_default() += 1;
                    if let Some(r) = ratings.filter(|r| r != "-") {
                        *w.ratings.entry(r).or_default() += 1;
                    }
                }
                Err(e) => {
                    w.failed += 1;
                    w.last_error = Some(e);
                }
            });
        });
    }
}

/// The intruder: a workload with a valid certificate that calls ratings directly, twice a
/// second, until the task is aborted.
pub(crate) async fn intrude(client: mesh_tower::Client, stats: Arc<Stats>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        let req = http::Request::get(format!("http://{RATINGS}/ratings/1"))
            .body(Empty::<Bytes>::new())
            .expect("a valid request");
        let answer = match client.request(req).await {
            Ok(resp) => {
                let status = resp.status();
                let body = resp.into_body().collect().await.map(|b| b.to_bytes());
                let text = body.map(|b| String::from_utf8_lossy(&b).into_owned());
                format!("{} {}", status.as_u16(), text.unwrap_or_default())
            }
            Err(e) => format!("error: {e}"),
        };
        *stats.intruder.lock().unwrap() = Some(answer);
    }
}
