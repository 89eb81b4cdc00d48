//! Access logs: one JSON object per line per request, written by a background thread so a
//! request never waits on I/O.

use std::io::Write;
use std::sync::mpsc;
use std::time::SystemTime;

use serde::Serialize;

/// Where access-log lines go and how many requests get one.
#[derive(Debug, Clone)]
pub struct AccessLog {
    sink: mpsc::Sender<String>,
    /// Share of requests logged, 0.0–1.0.
    sample: f64,
}

impl AccessLog {
    /// Lines to standard output (Istio's `envoy` provider default), every request.
    pub fn stdout() -> AccessLog {
        Self::writer(std::io::stdout())
    }

    /// Lines appended to any writer (a file, a pipe), from a background thread, every request.
    pub fn writer<W: Write + Send + 'static>(out: W) -> AccessLog {
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::Builder::new()
            .name("mesh-access-log".into())
            .spawn(move || {
                let mut out = std::io::BufWriter::new(out);
                while let Ok(line) = rx.recv() {
                    let _ = writeln!(out, "{line}");
                    // Flush when the queue is empty: batches under load, prompt when idle.
                    while let Ok(line) = rx.try_recv() {
                        let _ = writeln!(out, "{line}");
                    }
                    let _ = out.flush();
                }
            })
            .expect("spawning the access-log thread");
        AccessLog {
            sink: tx,
            sample: 1.0,
        }
    }

    /// Lines sent to a channel (tests, or your own shipping), every request.
    pub fn channel(sink: mpsc::Sender<String>) -> AccessLog {
        AccessLog { sink, sample: 1.0 }
    }

    /// Logs this share of requests (0.0–1.0, clamped), chosen at random per request.
    #[must_use]
    pub fn sample(mut self, share: f64) -> AccessLog {
        self.sample = share.clamp(0.0, 1.0);
        self
    }

    pub(crate) fn sampled(&self) -> bool {
        self.sample >= 1.0 || (self.sample > 0.0 && fastrand::f64() < self.sample)
    }

    pub(crate) fn write(&self, entry: &Entry<'_>) {
        if let Ok(line) = serde_json::to_string(entry) {
            let _ = self.sink.send(line);
        }
    }
}

/// One access-log line. Field names follow Envoy's JSON access log (and Istio's default
/// format): `start_time`, `method`, `authority`, `path`, `protocol`, `response_code`,
/// `response_flags`, `duration` (ms), `upstream_host`, `upstream_cluster`, `bytes_received`,
/// `bytes_sent`, plus `reporter`, `grpc_status`, `peer_principal`, `route_name`, `attempts`
/// and `trace_id`.
#[derive(Debug, Serialize)]
pub(crate) struct Entry<'a> {
    pub(crate) start_time: String,
    pub(crate) reporter: &'static str,
    pub(crate) method: &'a str,
    pub(crate) authority: &'a str,
    pub(crate) path: &'a str,
    pub(crate) protocol: &'static str,
    pub(crate) response_code: u16,
    pub(crate) grpc_status: Option<u32>,
    pub(crate) response_flags: String,
    pub(crate) duration: u64,
    pub(crate) upstream_host: Option<String>,
    pub(crate) upstream_cluster: Option<&'a str>,
    pub(crate) route_name: Option<&'a str>,
    pub(crate) attempts: u32,
    pub(crate) bytes_received: u64,
    pub(crate) bytes_sent: u64,
    pub(crate) peer_principal: Option<&'a str>,
    pub(crate) trace_id: Option<String>,
}

/// RFC 3339 UTC with milliseconds (`2026-11-26T12:00:00.123Z`), as Envoy's `%START_TIME%`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    mesh_core::time::rfc3339_utc(t, true)
}
