//! Fault injection (Envoy's `HTTPFault` per route): a fixed delay and/or an abort, each for a
//! share of requests, optionally only for requests whose headers match.
//!
//! [`decide`] is the pure decision the client stack makes once per request; [`FaultLayer`] wraps
//! any HTTP service with a fixed policy.

mod layer;

use std::time::Duration;

use http::Request;
use mesh_core::Percent;
use mesh_core::route::{AbortStatus, FaultPolicy};

pub use layer::{Fault, FaultLayer};

/// What to inject into one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Injection {
    /// Wait this long before going on.
    pub delay: Option<Duration>,
    /// Answer with this instead of forwarding.
    pub abort: Option<AbortStatus>,
}

/// Decides the faults for `req`; `roll_delay` and `roll_abort` are uniform random numbers in
/// `0..1_000_000` (independent, as in Envoy).
pub fn decide<B>(
    policy: &FaultPolicy,
    req: &Request<B>,
    roll_delay: u32,
    roll_abort: u32,
) -> Injection {
    if !policy
        .headers
        .iter()
        .all(|h| crate::route::matching::header_matches(h, req))
    {
        return Injection::default();
    }
    Injection {
        delay: policy
            .delay
            .as_ref()
            .filter(|d| hit(d.percent, roll_delay))
            .map(|d| d.delay),
        abort: policy
            .abort
            .as_ref()
            .filter(|a| hit(a.percent, roll_abort))
            .map(|a| a.status),
    }
}

/// Counts an injected fault (`mesh_faults_injected_total{kind="delay"|"abort"}`).
pub(crate) fn count_injected(kind: &'static str) {
    metrics::counter!("mesh_faults_injected_total", "kind" => kind).increment(1);
}

/// Decides with fresh random numbers.
pub fn decide_random<B>(policy: &FaultPolicy, req: &Request<B>) -> Injection {
    decide(
        policy,
        req,
        fastrand::u32(0..1_000_000),
        fastrand::u32(0..1_000_000),
    )
}

fn hit(p: Percent, roll: u32) -> bool {
    roll < p.per_million()
}

/// The response an abort produces: the HTTP status, or for gRPC a 200 with `grpc-status` (gRFC
/// A33) — both carry `x-envoy-fault: aborted` (Envoy's marker is a response flag; we expose it as
/// a header so callers and tests can tell injected failures from real ones).
pub fn abort_response(status: AbortStatus) -> http::Response<crate::client::Body> {
    let mut b = http::Response::builder().header("x-mesh-fault", "aborted");
    b = match status {
        AbortStatus::Http(s) => b.status(s),
        AbortStatus::Grpc(code) => b
            .status(200)
            .header("content-type", "application/grpc")
            .header("grpc-status", code.to_string())
            .header("grpc-message", "fault injected"),
    };
    b.body(crate::client::body::full(bytes::Bytes::from_static(
        b"fault filter abort",
    )))
    .unwrap_or_else(|_| http::Response::new(crate::client::body::empty()))
}

#[cfg(test)]
mod tests;
