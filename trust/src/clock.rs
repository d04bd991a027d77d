//! Time for validity checks: seconds since the Unix epoch, from a clock that
//! tests can set.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// Seconds since 1970-01-01T00:00:00Z.
pub type Timestamp = u64;

/// Where "now" comes from.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// A clock that stays where it is set, for tests of expiry.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock showing `now`.
    pub fn new(now: Timestamp) -> Self {
        ManualClock(Arc::new(AtomicU64::new(now)))
    }

    /// Moves the clock to `now`.
    pub fn set(&self, now: Timestamp) {
        self.0.store(now, Ordering::SeqCst);
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_secs(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.0.load(Ordering::SeqCst)
    }
}

/// Formats a timestamp as RFC 3339 in UTC, to the second
/// (`2026-11-22T05:20:00Z`): the form of every time this project writes,
/// TUF's `expires` included.
///
/// RFC 3339 has four digits for the year: past 9999 the year is written with
/// all of its digits (`10000-01-01T00:00:00Z`), which says when it is but is
/// no longer RFC 3339, and which [`parse_time`] refuses.
pub fn format_time(t: Timestamp) -> String {
    // u64::MAX seconds is about 5.8e11 years: every step fits in an i64.
    let days = (t / 86_400) as i64;
    let rem = t % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Parses exactly what [`format_time`] writes for years 1970 to 9999:
/// `YYYY-MM-DDTHH:MM:SSZ`, with a real date and time (no leap second, no
/// fraction, no other offset).
pub fn parse_time(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d == 0 || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if d > month_days[(mo - 1) as usize] {
        return None;
    }
    let days = days_from_civil(i64::from(y), mo, d);
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(se);
    u64::try_from(secs).ok()
}

/// Days since 1970-01-01 of a date in the proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date (year, month, day) `z` days after 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses a duration such as `30d`, `12h` or `1h 30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration (like 30d or 12h): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The first second of year 10000.
    const YEAR_10000: Timestamp = 253_402_300_800;

    #[test]
    fn formats_and_parses_the_one_form() {
        for s in [
            "1970-01-01T00:00:00Z",
            "2030-02-28T23:59:59Z",
            "2024-02-29T12:00:00Z",
            "2100-12-31T00:00:01Z",
            "9999-12-31T23:59:59Z",
        ] {
            let t = parse_time(s).unwrap();
            assert_eq!(format_time(t), s);
        }
        assert_eq!(parse_time("2030-01-01T00:00:00Z"), Some(1_893_456_000));
        assert_eq!(parse_time("9999-12-31T23:59:59Z"), Some(YEAR_10000 - 1));
        for refused in [
            "2023-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2030-01-01 00:00:00Z",
            "2030-01-01t00:00:00z",
            "2030-01-01T00:00:00+00:00",
            "2030-01-01T00:00:00.5Z",
            "2030-01-01T23:59:60Z",
            "2030-13-01T00:00:00Z",
            "2030-01-00T00:00:00Z",
            "2030-01-01T24:00:00Z",
            "1969-12-31T23:59:59Z",
            "+030-01-01T00:00:00Z",
            "",
        ] {
            assert_eq!(parse_time(refused), None, "{refused}");
        }
    }

    #[test]
    fn years_past_9999_are_written_in_full_and_not_parsed() {
        assert_eq!(format_time(YEAR_10000), "10000-01-01T00:00:00Z");
        assert_eq!(parse_time(&format_time(YEAR_10000)), None);
        let last = format_time(u64::MAX);
        assert!(last.ends_with("T07:00:15Z"), "{last}");
        assert_eq!(parse_time(&last), None);
    }

    proptest! {
        #[test]
        fn agrees_with_humantime_and_round_trips(t in 0..YEAR_10000) {
            let s = format_time(t);
            let humantime = humantime::format_rfc3339_seconds(
                UNIX_EPOCH + Duration::from_secs(t),
            );
            prop_assert_eq!(&s, &humantime.to_string());
            prop_assert_eq!(parse_time(&s), Some(t));
        }
    }
}
