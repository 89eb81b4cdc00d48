//! The `grpc-timeout` header (gRPC over HTTP/2 spec; used for deadlines as in gRFC A31).

use std::time::Duration;

/// Parses a `grpc-timeout` value: up to 8 digits and a unit (`H`, `M`, `S`, `m`, `u`, `n`).
/// Returns `None` for anything else, which gRPC treats as no deadline.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(mesh_grpc::timeout::parse("250m"), Some(Duration::from_millis(250)));
/// assert_eq!(mesh_grpc::timeout::parse("123456789S"), None);
/// ```
pub use mesh_tower::route::parse_grpc_timeout as parse;

/// Formats a deadline as `grpc-timeout`, choosing the finest unit that fits in 8 digits.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(mesh_grpc::timeout::format(Duration::from_millis(1500)), "1500000u");
/// assert_eq!(mesh_grpc::timeout::format(Duration::from_secs(200_000_000)), "3333334M");
/// ```
pub fn format(d: Duration) -> String {
    const MAX: u128 = 99_999_999;
    let nanos = d.as_nanos();
    let units: [(u128, char); 6] = [
        (1, 'n'),
        (1_000, 'u'),
        (1_000_000, 'm'),
        (1_000_000_000, 'S'),
        (60_000_000_000, 'M'),
        (3_600_000_000_000, 'H'),
    ];
    for (scale, unit) in units {
        // Round up so a deadline never gets shorter on the wire.
        let v = nanos.div_ceil(scale);
        if v <= MAX {
            return format!("{v}{unit}");
        }
    }
    format!("{MAX}H")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_malformed_values() {
        for d in [
            Duration::from_nanos(7),
            Duration::from_millis(250),
            Duration::from_secs(86_400),
        ] {
            assert!(parse(&format(d)).unwrap() >= d);
        }
        for bad in ["", "m", "10", "10x", "-1S", "1.5S", "123456789m"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(parse("2H"), Some(Duration::from_secs(7200)));
    }
}
