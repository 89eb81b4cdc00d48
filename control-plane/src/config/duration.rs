//! Durations as Istio and Kubernetes write them: Go's `time.ParseDuration` syntax
//! (`"1s"`, `"250ms"`, `"1.5s"`, `"1m30s"`, `"1h"`).

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// The string is empty.
    #[error("empty duration; write e.g. \"1s\" or \"250ms\"")]
    Empty,
    /// A leading `-`.
    #[error("invalid duration {0:?}: must not be negative")]
    Negative(String),
    /// A number without a unit (other than a bare `0`).
    #[error("invalid duration {0:?}: missing unit (one of h, m, s, ms, us, ns)")]
    MissingUnit(String),
    /// An unknown unit such as `d` or `sec`.
    #[error("invalid duration {input:?}: unknown unit {unit:?} (one of h, m, s, ms, us, ns)")]
    UnknownUnit {
        /// The whole input.
        input: String,
        /// The unit that was not recognised.
        unit: String,
    },
    /// Something that is not a number where a number was expected.
    #[error("invalid duration {0:?}: expected a number followed by a unit, e.g. \"1.5s\"")]
    Syntax(String),
    /// Larger than this program can represent.
    #[error("invalid duration {0:?}: too large")]
    Overflow(String),
}

/// Parses a Go duration: one or more `<decimal><unit>` pairs, unit one of `h`, `m`, `s`, `ms`,
/// `us` (or `µs`), `ns`; a bare `0` is zero. Negative durations are refused.
///
/// ```
/// use std::time::Duration;
/// use control_plane::config::parse_duration;
/// assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
/// assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert!(parse_duration("10").is_err());
/// ```
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let s = input.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s.starts_with('-') {
        return Err(DurationError::Negative(input.into()));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(DurationError::Syntax(input.into()));
        }
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let nanos_per_unit: u128 = match unit {
            "" => return Err(DurationError::MissingUnit(input.into())),
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            other => {
                return Err(DurationError::UnknownUnit {
                    input: input.into(),
                    unit: other.into(),
                });
            }
        };
        total = total
            .checked_add(scaled(num, nanos_per_unit).ok_or_else(|| overflow(input))?)
            .ok_or_else(|| overflow(input))?;
        rest = tail;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| overflow(input))?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

fn overflow(input: &str) -> DurationError {
    DurationError::Overflow(input.into())
}

/// `num` (digits with at most one `.`) times `unit` nanoseconds, truncated to whole nanoseconds.
fn scaled(num: &str, unit: u128) -> Option<u128> {
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut value = int.checked_mul(unit)?;
    let mut scale = unit;
    for d in frac.bytes().take(30) {
        scale /= 10;
        if scale == 0 {
            break;
        }
        value = value.checked_add(u128::from(d - b'0') * scale)?;
    }
    Some(value)
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as \"1s\", \"250ms\" or \"1m30s\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_duration(v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        if v == 0 {
            Ok(Duration::ZERO)
        } else {
            Err(E::custom(DurationError::MissingUnit(v.to_string())))
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        if v < 0 {
            Err(E::custom(DurationError::Negative(v.to_string())))
        } else {
            self.visit_u64(v as u64)
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        Err(E::custom(DurationError::MissingUnit(v.to_string())))
    }
}

/// `deserialize_with` for `Option<Duration>` fields (use with `#[serde(default)]`).
pub(crate) fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    d.deserialize_any(DurationVisitor).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("1s"), Ok(ms(1000)));
        assert_eq!(parse_duration("250ms"), Ok(ms(250)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1500)));
        assert_eq!(parse_duration("1m"), Ok(ms(60_000)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("1h30m5s"), Ok(ms(5_405_000)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(".5s"), Ok(ms(500)));
        assert_eq!(parse_duration("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration("0.000000001s"), Ok(Duration::from_nanos(1)));
    }

    #[test]
    fn bad_durations_say_why() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert!(matches!(
            parse_duration("10"),
            Err(DurationError::MissingUnit(_))
        ));
        assert!(matches!(
            parse_duration("-1s"),
            Err(DurationError::Negative(_))
        ));
        let e = parse_duration("3d").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid duration \"3d\": unknown unit \"d\" (one of h, m, s, ms, us, ns)"
        );
        assert!(matches!(
            parse_duration("1..2s"),
            Err(DurationError::Syntax(_))
        ));
        assert!(matches!(parse_duration("s"), Err(DurationError::Syntax(_))));
        assert!(matches!(
            parse_duration("99999999999999999999999h"),
            Err(DurationError::Overflow(_))
        ));
    }
}
