//! Which timeout bounds a request: the route's, or — for gRPC requests on a route with
//! `grpc_timeout_header_max` (gRFC A31) — the caller's own `grpc-timeout`, capped.

use std::time::Duration;

use mesh_core::route::ForwardAction;

/// Parses a `grpc-timeout` value: up to 8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
/// Returns `None` for anything else, which gRPC treats as no deadline.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(mesh_tower::route::parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
/// assert_eq!(mesh_tower::route::parse_grpc_timeout("123456789S"), None);
/// ```
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The timeout of a request to `f` with these headers. For a gRPC request (`content-type:
/// application/grpc…`) on a route with `grpc_timeout_header_max`, gRFC A31's table: the
/// caller's `grpc-timeout` capped at the maximum (zero: uncapped), or the maximum alone when the
/// caller set no deadline; the route's `timeout` is then not used. Otherwise, the route's
/// `timeout`.
pub fn effective_timeout(f: &ForwardAction, headers: &http::HeaderMap) -> Option<Duration> {
    let Some(max) = f.grpc_timeout_header_max else {
        return f.timeout;
    };
    let grpc = headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/grpc"));
    if !grpc {
        return f.timeout;
    }
    let caller = headers
        .get("grpc-timeout")
        .and_then(|v| parse_grpc_timeout(v.to_str().ok()?));
    let cap = (!max.is_zero()).then_some(max);
    match (caller, cap) {
        (Some(c), Some(m)) => Some(c.min(m)),
        (c, m) => c.or(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(grpc: bool, timeout: Option<&'static str>) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        if grpc {
            h.insert("content-type", "application/grpc+proto".parse().unwrap());
        }
        if let Some(t) = timeout {
            h.insert("grpc-timeout", t.parse().unwrap());
        }
        h
    }

    #[test]
    fn follows_the_a31_table() {
        let s = Duration::from_secs;
        let route = |timeout: Option<u64>, max: Option<u64>| ForwardAction {
            timeout: timeout.map(s),
            grpc_timeout_header_max: max.map(s),
            ..ForwardAction::to_cluster("c")
        };
        // (route timeout, header max, caller deadline) → effective, for gRPC requests.
        let table = [
            (None, None, None, None),
            (Some(10), None, None, Some(10)),
            (Some(10), None, Some("20S"), Some(10)),
            (Some(10), Some(0), None, None),
            (Some(10), Some(0), Some("20S"), Some(20)),
            (Some(10), Some(10), None, Some(10)),
            (Some(10), Some(10), Some("20S"), Some(10)),
            (Some(10), Some(30), Some("20S"), Some(20)),
            (None, Some(10), Some("5S"), Some(5)),
        ];
        for (timeout, max, caller, want) in table {
            let got = effective_timeout(&route(timeout, max), &headers(true, caller));
            assert_eq!(got, want.map(s), "{timeout:?} {max:?} {caller:?}");
        }
        // Not gRPC: the route's timeout, whatever the headers say.
        let r = route(Some(10), Some(0));
        assert_eq!(
            effective_timeout(&r, &headers(false, Some("20S"))),
            Some(s(10))
        );
    }

    #[test]
    fn parses_grpc_timeout_values() {
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        for bad in ["", "m", "10", "10x", "-1S", "1.5S", "123456789m"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }
}
