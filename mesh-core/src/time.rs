//! Timestamps as text, without a date-time dependency.

use std::time::{SystemTime, UNIX_EPOCH};

/// RFC 3339 UTC: `2026-11-26T12:00:00Z`, or with `millis` `2026-11-26T12:00:00.123Z` (Envoy's
/// `%START_TIME%` form). Times before 1970 are supported.
pub fn rfc3339_utc(t: SystemTime, millis: bool) -> String {
    let (secs, ms) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_millis()),
        Err(e) => (-(e.duration().as_secs() as i64), 0),
    };
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    if millis {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::rfc3339_utc;
    use std::time::{Duration, SystemTime};

    #[test]
    fn formats_utc_timestamps() {
        let at = |s: u64, ms: u64| {
            SystemTime::UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms)
        };
        assert_eq!(rfc3339_utc(at(0, 0), true), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_utc(at(951_782_400, 7), true),
            "2000-02-29T00:00:00.007Z"
        );
        assert_eq!(
            rfc3339_utc(at(1_795_694_400, 123), false),
            "2026-11-26T12:00:00Z"
        );
        let before = SystemTime::UNIX_EPOCH - Duration::from_secs(86_400);
        assert_eq!(rfc3339_utc(before, false), "1969-12-31T00:00:00Z");
    }
}
