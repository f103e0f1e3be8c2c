//! Timestamps as Go's `time.Time` marshals them, which is how every time in
//! restic's JSON (snapshots, nodes, locks, keys) is written.
//!
//! The JSON form is RFC 3339 with nanoseconds (Go's `RFC3339Nano`): the
//! fraction has its trailing zeros trimmed and is left out when zero, and
//! the zone is `Z` for a zero offset or `±hh:mm` (Go drops the seconds of
//! an offset). The year always has four digits; like restic's `fixTime`,
//! years before 0 or after 9999 are clamped when written. The zero value
//! is Go's zero time, `0001-01-01T00:00:00Z`.
//!
//! A [`GoTime`] keeps the zone offset it was read or made with, so that
//! re-serializing restic's JSON reproduces it byte for byte; equality and
//! ordering compare instants only, as Go's `Time.Equal` does.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Datelike, FixedOffset, Local, NaiveDate, NaiveDateTime, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// Seconds of 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z since the
/// Unix epoch: the range a four-digit year can express.
const MIN_UNIX: i64 = -62_167_219_200;
const MAX_UNIX: i64 = 253_402_300_799;
/// Seconds of Go's zero time, 0001-01-01T00:00:00Z.
const ZERO_UNIX: i64 = -62_135_596_800;

/// A point in time with a zone offset, (de)serialized exactly as Go does.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GoTime(DateTime<FixedOffset>);

impl GoTime {
    /// Go's zero time, `0001-01-01T00:00:00Z`.
    pub fn zero() -> Self {
        Self::from_unix_utc(ZERO_UNIX, 0)
    }

    /// True for the instant of Go's zero time (in any zone), as Go's
    /// `IsZero`.
    pub fn is_zero(&self) -> bool {
        self.unix() == (ZERO_UNIX, 0)
    }

    /// The current time in the local zone (what restic writes into new
    /// snapshots and locks).
    pub fn now() -> Self {
        GoTime(Local::now().fixed_offset())
    }

    /// The instant `secs` + `nanos` after the Unix epoch, in the local zone
    /// (as Go's `time.Unix`, which restic uses for file times). Instants
    /// outside the years 0–9999 are clamped to that range; `nanos` beyond a
    /// second carry into `secs`.
    pub fn from_unix(secs: i64, nanos: u32) -> Self {
        let utc = Self::from_unix_utc(secs, nanos).0;
        GoTime(utc.with_timezone(&Local).fixed_offset())
    }

    /// Like [`from_unix`](Self::from_unix) but in UTC.
    pub fn from_unix_utc(secs: i64, nanos: u32) -> Self {
        let secs = secs.saturating_add(i64::from(nanos / 1_000_000_000));
        let nanos = nanos % 1_000_000_000;
        let (secs, nanos) = if secs < MIN_UNIX {
            (MIN_UNIX, 0)
        } else if secs > MAX_UNIX {
            (MAX_UNIX, 999_999_999)
        } else {
            (secs, nanos)
        };
        // In range by construction; the fallback is unreachable.
        let utc = DateTime::from_timestamp(secs, nanos).unwrap_or_default();
        GoTime(utc.fixed_offset())
    }

    /// Seconds and nanoseconds since the Unix epoch (nanoseconds always
    /// below 10⁹, seconds negative before 1970).
    pub fn unix(&self) -> (i64, u32) {
        let nanos = self.0.timestamp_subsec_nanos().min(999_999_999);
        (self.0.timestamp(), nanos)
    }

    /// A [`SystemTime`] in the local zone.
    pub fn from_system_time(t: SystemTime) -> Self {
        let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => (
                i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                d.subsec_nanos(),
            ),
            Err(e) => {
                let d = e.duration();
                let secs = i64::try_from(d.as_secs()).map_or(i64::MIN, |s| -s);
                match d.subsec_nanos() {
                    0 => (secs, 0),
                    n => (secs.saturating_sub(1), 1_000_000_000 - n),
                }
            }
        };
        Self::from_unix(secs, nanos)
    }

    /// This instant as a [`SystemTime`].
    pub fn to_system_time(&self) -> SystemTime {
        let (secs, nanos) = self.unix();
        let whole = if secs >= 0 {
            UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))
        } else {
            UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
        };
        whole
            .and_then(|t| t.checked_add(Duration::from_nanos(u64::from(nanos))))
            .unwrap_or(UNIX_EPOCH)
    }

    /// The date and time with the offset it was written with.
    pub fn as_datetime(&self) -> &DateTime<FixedOffset> {
        &self.0
    }

    /// This instant in UTC.
    pub fn to_utc(&self) -> DateTime<Utc> {
        self.0.with_timezone(&Utc)
    }

    /// This instant in the local zone (for display).
    pub fn to_local(&self) -> DateTime<Local> {
        self.0.with_timezone(&Local)
    }

    /// Parse every form Go's `time.Time` JSON decoding accepts for RFC 3339:
    /// `YYYY-MM-DDTHH:MM:SS`, an optional fraction of any length (after
    /// `.` or `,`; digits past nanoseconds are dropped), and `Z` or
    /// `±hh:mm`. `T` and `Z` may be lower case.
    pub fn parse(s: &str) -> Result<Self> {
        parse_rfc3339(s.as_bytes())
            .map(GoTime)
            .ok_or_else(|| Error::InvalidArgument(format!("invalid RFC 3339 time {s:?}")))
    }
}

impl Default for GoTime {
    /// Go's zero time.
    fn default() -> Self {
        Self::zero()
    }
}

impl From<DateTime<FixedOffset>> for GoTime {
    fn from(t: DateTime<FixedOffset>) -> Self {
        GoTime(t)
    }
}

impl From<DateTime<Utc>> for GoTime {
    fn from(t: DateTime<Utc>) -> Self {
        GoTime(t.fixed_offset())
    }
}

impl From<DateTime<Local>> for GoTime {
    fn from(t: DateTime<Local>) -> Self {
        GoTime(t.fixed_offset())
    }
}

impl From<GoTime> for DateTime<FixedOffset> {
    fn from(t: GoTime) -> Self {
        t.0
    }
}

impl fmt::Display for GoTime {
    /// Go's `RFC3339Nano` layout, the JSON form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let local = clamp_year(self.0.naive_local());
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            local.year(),
            local.month(),
            local.day(),
            local.hour(),
            local.minute(),
            local.second()
        )?;
        // A chrono leap second (nanos ≥ 10⁹) has no Go equivalent.
        let nanos = local.nanosecond().min(999_999_999);
        if nanos != 0 {
            let frac = format!("{nanos:09}");
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        let offset = self.0.offset().local_minus_utc();
        if offset == 0 {
            return f.write_str("Z");
        }
        // Go truncates the offset to whole minutes.
        let minutes = offset / 60;
        let sign = if minutes < 0 { '-' } else { '+' };
        let minutes = minutes.abs();
        write!(f, "{sign}{:02}:{:02}", minutes / 60, minutes % 60)
    }
}

impl fmt::Debug for GoTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GoTime({self})")
    }
}

impl FromStr for GoTime {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        GoTime::parse(s)
    }
}

impl Serialize for GoTime {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GoTime {
    /// A string in RFC 3339 form; `null` is the zero time, as in Go.
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(GoTime::zero()),
            Some(s) => GoTime::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

/// restic's `fixTime`: move years outside 0–9999 to the nearest bound,
/// keeping everything else (29 February becomes 1 March, as Go's AddDate).
fn clamp_year(t: NaiveDateTime) -> NaiveDateTime {
    let year = t.year().clamp(0, 9999);
    if year == t.year() {
        return t;
    }
    let date = NaiveDate::from_ymd_opt(year, t.month(), t.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, 3, 1))
        .unwrap_or_default();
    date.and_time(t.time())
}

fn parse_rfc3339(b: &[u8]) -> Option<DateTime<FixedOffset>> {
    let num = |at: usize, len: usize| -> Option<u32> {
        let digits = b.get(at..at + len)?;
        digits.iter().try_fold(0u32, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    let sep = |at: usize, want: &[u8]| b.get(at).is_some_and(|c| want.contains(c));

    let year = num(0, 4)?;
    let month = num(5, 2)?;
    let day = num(8, 2)?;
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }

    let mut i = 19;
    let mut nanos = 0u32;
    if sep(i, b".,") && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 1;
        let mut scale = 100_000_000;
        while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
            nanos += u32::from(d - b'0') * scale;
            scale /= 10;
            i += 1;
        }
    }

    let offset = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = i32::try_from(oh * 3600 + om * 60).ok()?;
            if *sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return None,
    };

    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    let naive = date.and_hms_nano_opt(hour, minute, second, nanos)?;
    naive
        .and_local_timezone(FixedOffset::east_opt(offset)?)
        .single()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restic_forms_round_trip_exactly() {
        for s in [
            "2026-11-23T14:41:18.911822737Z",
            "2026-11-23T15:41:34.89558001+01:00",
            "0001-01-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "2020-02-29T23:59:59.1-09:30",
            "1969-12-31T23:59:59.999999999Z",
            "1970-01-01T00:00:00.000000001+14:00",
            "9999-12-31T23:59:59.999999999-12:00",
            "2023-06-01T12:00:00.5+05:45",
        ] {
            let t = GoTime::parse(s).unwrap();
            assert_eq!(t.to_string(), s);
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{s}\""));
            let back: GoTime = serde_json::from_str(&json).unwrap();
            assert_eq!(back.to_string(), s);
        }
    }

    #[test]
    fn lenient_forms_are_normalised_like_go() {
        let cases = [
            ("2021-01-02T03:04:05.120000Z", "2021-01-02T03:04:05.12Z"),
            ("2021-01-02T03:04:05.000Z", "2021-01-02T03:04:05Z"),
            ("2021-01-02t03:04:05,5z", "2021-01-02T03:04:05.5Z"),
            (
                "2021-01-02T03:04:05.1234567891234Z",
                "2021-01-02T03:04:05.123456789Z",
            ),
            ("2021-01-02T03:04:05+00:00", "2021-01-02T03:04:05Z"),
            ("2021-01-02T03:04:05-00:00", "2021-01-02T03:04:05Z"),
        ];
        for (input, want) in cases {
            assert_eq!(GoTime::parse(input).unwrap().to_string(), want, "{input}");
        }
    }

    #[test]
    fn malformed_times_are_rejected() {
        for bad in [
            "",
            "2021-01-02",
            "2021-01-02T03:04:05",
            "2021-13-02T03:04:05Z",
            "2021-02-30T03:04:05Z",
            "2021-01-02T24:00:00Z",
            "2021-01-02T03:60:00Z",
            "2021-01-02T03:04:60Z",
            "2021-01-02T03:04:05.Z",
            "2021-01-02T03:04:05+1:00",
            "2021-01-02T03:04:05+24:00",
            "2021-01-02T03:04:05Zjunk",
            "2021-01-02 03:04:05Z",
            "+2021-01-02T03:04:05Z",
            "٢٠٢١-01-02T03:04:05Z",
        ] {
            assert!(GoTime::parse(bad).is_err(), "{bad:?}");
        }
        assert!(serde_json::from_str::<GoTime>("17").is_err());
    }

    #[test]
    fn null_and_default_are_the_zero_time() {
        let t: GoTime = serde_json::from_str("null").unwrap();
        assert!(t.is_zero());
        assert_eq!(GoTime::default().to_string(), "0001-01-01T00:00:00Z");
        assert!(GoTime::parse("0001-01-01T01:00:00+01:00")
            .unwrap()
            .is_zero());
        assert!(!GoTime::now().is_zero());
    }

    #[test]
    fn unix_conversions() {
        let t = GoTime::from_unix_utc(-1, 500_000_000);
        assert_eq!(t.to_string(), "1969-12-31T23:59:59.5Z");
        assert_eq!(t.unix(), (-1, 500_000_000));
        assert_eq!(GoTime::from_unix_utc(1, 2_000_000_001).unix(), (3, 1));
        assert_eq!(
            GoTime::from_unix_utc(1_700_000_000, 0).to_string(),
            "2023-11-14T22:13:20Z"
        );
        // Clamped to four-digit years.
        assert_eq!(
            GoTime::from_unix_utc(i64::MIN, 0).to_string(),
            "0000-01-01T00:00:00Z"
        );
        assert_eq!(
            GoTime::from_unix_utc(i64::MAX, 999_999_999).to_string(),
            "9999-12-31T23:59:59.999999999Z"
        );
        // Extremes in the local zone (run under different TZ values) still
        // print as parseable four-digit years.
        for secs in [i64::MIN, MIN_UNIX, ZERO_UNIX, 0, MAX_UNIX, i64::MAX] {
            let t = GoTime::from_unix(secs, 999_999_999);
            assert!(GoTime::parse(&t.to_string()).is_ok(), "{t}");
        }
        // Local zone: same instant, the zone's offset at that instant.
        let local = GoTime::from_unix(1_700_000_000, 42);
        assert_eq!(local.unix(), (1_700_000_000, 42));
        let want = DateTime::from_timestamp(1_700_000_000, 0)
            .unwrap()
            .with_timezone(&Local);
        assert_eq!(
            local.as_datetime().offset().local_minus_utc(),
            want.offset().local_minus_utc()
        );
    }

    #[test]
    fn system_time_round_trip() {
        for (secs, nanos) in [
            (0i64, 0u32),
            (1_700_000_000, 123_456_789),
            (-1, 1),
            (-86_400 * 365, 999_999_999),
        ] {
            let t = GoTime::from_unix_utc(secs, nanos);
            let st = t.to_system_time();
            let back = GoTime::from_system_time(st);
            assert_eq!(back.unix(), (secs, nanos));
            assert_eq!(back, t, "instants compare equal whatever the zone");
        }
    }

    #[test]
    fn equality_ignores_zone_and_display_keeps_it() {
        let a = GoTime::parse("2026-11-23T15:41:34+01:00").unwrap();
        let b = GoTime::parse("2026-11-23T14:41:34Z").unwrap();
        assert_eq!(a, b);
        assert_ne!(a.to_string(), b.to_string());
        assert!(GoTime::parse("2026-11-23T14:41:35Z").unwrap() > a);
        assert_eq!(a.to_utc().to_rfc3339(), "2026-11-23T14:41:34+00:00");
    }

    #[test]
    fn out_of_range_years_are_clamped_when_written() {
        let date = NaiveDate::from_ymd_opt(12344, 2, 29).unwrap();
        let t = GoTime::from(date.and_hms_opt(1, 2, 3).unwrap().and_utc());
        assert_eq!(t.to_string(), "9999-03-01T01:02:03Z");
        let neg = NaiveDate::from_ymd_opt(-5, 6, 7).unwrap();
        let t = GoTime::from(neg.and_hms_opt(0, 0, 0).unwrap().and_utc());
        assert_eq!(t.to_string(), "0000-06-07T00:00:00Z");
    }
}
