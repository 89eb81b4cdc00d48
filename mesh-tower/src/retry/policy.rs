//! Which attempt outcomes a retry policy retries, with Envoy's `x-envoy-retry-on` and
//! `x-envoy-retry-grpc-on` semantics.

use http::StatusCode;
use mesh_core::route::RetryOn;

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response arrived, with its `grpc-status` when it carried one.
    Response(StatusCode, Option<u32>),
    /// The connection could not be made.
    ConnectFailure,
    /// The connection or stream was reset, or closed before a response.
    Reset,
    /// The server refused the stream (HTTP/2 `REFUSED_STREAM`).
    RefusedStream,
    /// The per-try timeout passed before a response.
    Timeout,
}

impl Outcome {
    /// The outcome of a response: its status and its `grpc-status` header, if any.
    pub fn from_response<B>(res: &http::Response<B>) -> Self {
        let grpc = res
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        Outcome::Response(res.status(), grpc)
    }

    /// True when no response arrived (connect failure, reset, refused stream, timeout).
    pub fn is_failure_without_response(&self) -> bool {
        !matches!(self, Outcome::Response(..))
    }
}

/// Whether `outcome` may be retried under `retry_on`, as Envoy decides it:
///
/// - `5xx`: any 5xx, and every outcome without a response (connect failure, reset, refused
///   stream, per-try timeout);
/// - `gateway-error`: 502, 503, 504, and every outcome without a response (Envoy answers those
///   locally with 503/504, so it retries them under this condition too);
/// - `reset`: every outcome without a response;
/// - `connect-failure`, `refused-stream`: only that outcome;
/// - `retriable-4xx`: 409;
/// - `retriable-status-codes`: the statuses in `retriable_status_codes`;
/// - `cancelled` (1), `deadline-exceeded` (4), `resource-exhausted` (8), `internal` (13),
///   `unavailable` (14): that `grpc-status` in the response headers.
pub fn is_retryable(
    retry_on: &[RetryOn],
    retriable_status_codes: &[u16],
    outcome: Outcome,
) -> bool {
    retry_on
        .iter()
        .any(|cond| matches(*cond, retriable_status_codes, outcome))
}

fn matches(cond: RetryOn, codes: &[u16], outcome: Outcome) -> bool {
    let (status, grpc) = match outcome {
        Outcome::Response(status, grpc) => (status.as_u16(), grpc),
        Outcome::ConnectFailure => {
            return matches!(
                cond,
                RetryOn::FiveXx | RetryOn::GatewayError | RetryOn::Reset | RetryOn::ConnectFailure
            );
        }
        Outcome::RefusedStream => {
            return matches!(
                cond,
                RetryOn::FiveXx | RetryOn::GatewayError | RetryOn::Reset | RetryOn::RefusedStream
            );
        }
        Outcome::Reset | Outcome::Timeout => {
            return matches!(
                cond,
                RetryOn::FiveXx | RetryOn::GatewayError | RetryOn::Reset
            );
        }
    };
    match cond {
        RetryOn::FiveXx => (500..600).contains(&status),
        RetryOn::GatewayError => matches!(status, 502..=504),
        RetryOn::Retriable4xx => status == 409,
        RetryOn::RetriableStatusCodes => codes.contains(&status),
        RetryOn::Cancelled => grpc == Some(1),
        RetryOn::DeadlineExceeded => grpc == Some(4),
        RetryOn::ResourceExhausted => grpc == Some(8),
        RetryOn::Internal => grpc == Some(13),
        RetryOn::Unavailable => grpc == Some(14),
        // Needs the response headers: decided by `retriable_by_headers`.
        RetryOn::RetriableHeaders => false,
        RetryOn::Reset | RetryOn::ConnectFailure | RetryOn::RefusedStream => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RetryOn::*;

    fn status(code: u16) -> Outcome {
        Outcome::Response(StatusCode::from_u16(code).unwrap(), None)
    }

    fn grpc(code: u32) -> Outcome {
        Outcome::Response(StatusCode::OK, Some(code))
    }

    #[test]
    fn envoy_conditions() {
        let r = |on: &[RetryOn], o| is_retryable(on, &[418], o);
        assert!(r(&[FiveXx], status(500)) && r(&[FiveXx], status(599)));
        assert!(r(&[FiveXx], Outcome::Reset) && r(&[FiveXx], Outcome::ConnectFailure));
        assert!(!r(&[FiveXx], status(404)));
        assert!(r(&[GatewayError], status(503)) && !r(&[GatewayError], status(500)));
        assert!(r(&[Reset], Outcome::Reset) && !r(&[Reset], status(503)));
        assert!(r(&[ConnectFailure], Outcome::ConnectFailure));
        assert!(!r(&[ConnectFailure], Outcome::Reset));
        assert!(r(&[RefusedStream], Outcome::RefusedStream));
        assert!(!r(&[RefusedStream], Outcome::Reset));
        assert!(r(&[Retriable4xx], status(409)) && !r(&[Retriable4xx], status(404)));
        assert!(r(&[RetriableStatusCodes], status(418)));
        assert!(!r(&[RetriableStatusCodes], status(503)));
        assert!(r(&[FiveXx], Outcome::Timeout) && r(&[GatewayError], Outcome::Timeout));
        assert!(!r(&[], status(503)));
    }

    #[test]
    fn grpc_conditions_read_grpc_status() {
        let cases = [
            (Cancelled, 1),
            (DeadlineExceeded, 4),
            (ResourceExhausted, 8),
            (Internal, 13),
            (Unavailable, 14),
        ];
        for (cond, code) in cases {
            assert!(is_retryable(&[cond], &[], grpc(code)), "{cond:?}");
            assert!(!is_retryable(&[cond], &[], grpc(0)), "{cond:?}");
        }
        let res = http::Response::builder()
            .header("grpc-status", "14")
            .body(())
            .unwrap();
        assert_eq!(Outcome::from_response(&res), grpc(14));
    }
}

/// Envoy's `retriable-headers`: true when `retry_on` has it and a response header matches one of
/// `matchers`.
pub fn retriable_by_headers(
    retry_on: &[RetryOn],
    matchers: &[mesh_core::route::HeaderMatch],
    headers: &http::HeaderMap,
) -> bool {
    retry_on.contains(&RetryOn::RetriableHeaders)
        && matchers.iter().any(|m| {
            let value = headers.get(m.name.as_str()).and_then(|v| v.to_str().ok());
            m.matches_value(value)
        })
}

#[cfg(test)]
mod header_tests {
    use mesh_core::StringMatch;
    use mesh_core::route::{HeaderMatch, RetryOn};

    use super::retriable_by_headers;

    #[test]
    fn retriable_headers_need_the_condition_and_a_matching_header() {
        let m = [HeaderMatch {
            name: "x-upstream-busy".into(),
            value: Some(StringMatch::Exact("yes".into())),
            invert: false,
        }];
        let mut h = http::HeaderMap::new();
        h.insert("x-upstream-busy", "yes".parse().unwrap());
        assert!(retriable_by_headers(&[RetryOn::RetriableHeaders], &m, &h));
        assert!(!retriable_by_headers(&[RetryOn::FiveXx], &m, &h));
        h.insert("x-upstream-busy", "no".parse().unwrap());
        assert!(!retriable_by_headers(&[RetryOn::RetriableHeaders], &m, &h));
    }
}
