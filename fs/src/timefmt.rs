//! Go's reference-time layouts (`2006-01-02T15:04:05Z07:00`), so
//! `--time-template` takes the same strings as restic's.
//!
//! Only formatting is needed. Supported elements are Go's: `2006 06 01 1 Jan
//! January 02 2 _2 002 Mon Monday 15 03 3 04 4 05 5 PM pm MST` the zone
//! forms `Z07:00 -07:00 Z0700 -0700 Z07 -07 Z07:00:00 -07:00:00 Z070000
//! -070000`, and fractional seconds `.000`/`.999` (also after `,`).
//! Everything else is copied literally. The time is printed in its own
//! (stored) offset, as Go prints a parsed snapshot time.

use chrono::{DateTime, Datelike, FixedOffset, Timelike};

/// Go's `time.RFC3339`, restic's default time template.
pub const RFC3339: &str = "2006-01-02T15:04:05Z07:00";

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Format `t` according to the Go layout `layout`.
pub fn format(t: &DateTime<FixedOffset>, layout: &str) -> String {
    let mut out = String::with_capacity(layout.len() + 8);
    let mut rest = layout;
    while let Some(c) = rest.chars().next() {
        let (consumed, text) = element(t, rest);
        match text {
            Some(text) => out.push_str(&text),
            None => out.push(c),
        }
        rest = &rest[consumed.max(c.len_utf8())..];
    }
    out
}

/// The element at the start of `s`: bytes consumed and its text, or
/// `(0, None)` for a literal character.
fn element(t: &DateTime<FixedOffset>, s: &str) -> (usize, Option<String>) {
    let month = t.month0() as usize;
    let weekday = t.weekday().num_days_from_monday() as usize;
    let hour12 = match t.hour() % 12 {
        0 => 12,
        h => h,
    };
    let fixed: &[(&str, String)] = &[
        ("January", MONTHS[month].to_string()),
        ("Jan", MONTHS[month][..3].to_string()),
        ("Monday", DAYS[weekday].to_string()),
        ("Mon", DAYS[weekday][..3].to_string()),
        ("MST", zone_abbrev(t)),
        ("2006", format!("{:04}", t.year())),
        ("002", format!("{:03}", t.ordinal())),
        ("01", format!("{:02}", t.month())),
        ("02", format!("{:02}", t.day())),
        ("03", format!("{hour12:02}")),
        ("04", format!("{:02}", t.minute())),
        ("05", format!("{:02}", t.second())),
        ("06", format!("{:02}", t.year().rem_euclid(100))),
        ("15", format!("{:02}", t.hour())),
        ("_2", format!("{:>2}", t.day())),
        ("1", t.month().to_string()),
        ("2", t.day().to_string()),
        ("3", hour12.to_string()),
        ("4", t.minute().to_string()),
        ("5", t.second().to_string()),
        ("PM", if t.hour() >= 12 { "PM" } else { "AM" }.to_string()),
        ("pm", if t.hour() >= 12 { "pm" } else { "am" }.to_string()),
    ];
    for zone in [
        "Z07:00:00",
        "-07:00:00",
        "Z070000",
        "-070000",
        "Z07:00",
        "-07:00",
        "Z0700",
        "-0700",
        "Z07",
        "-07",
    ] {
        if s.starts_with(zone) {
            return (zone.len(), Some(offset(t, zone)));
        }
    }
    for (token, text) in fixed {
        if s.starts_with(token) {
            return (token.len(), Some(text.clone()));
        }
    }
    if let Some(n) = fraction_len(s) {
        let digits = format!("{:09}", t.nanosecond() % 1_000_000_000);
        let sep = &s[..1];
        let text = if s.as_bytes()[1] == b'0' {
            format!("{sep}{}", &digits[..n])
        } else {
            let trimmed = digits[..n].trim_end_matches('0');
            if trimmed.is_empty() {
                String::new()
            } else {
                format!("{sep}{trimmed}")
            }
        };
        return (n + 1, Some(text));
    }
    (0, None)
}

/// `.000`, `.999`, `,000`…: the number of digits, if `s` starts with one
/// that is not followed by another digit.
fn fraction_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.len() < 2 || !(b[0] == b'.' || b[0] == b',') || !(b[1] == b'0' || b[1] == b'9') {
        return None;
    }
    let n = b[1..].iter().take_while(|&&c| c == b[1]).count();
    let next_is_digit = b.get(1 + n).is_some_and(u8::is_ascii_digit);
    (!next_is_digit && n <= 9).then_some(n)
}

fn offset(t: &DateTime<FixedOffset>, layout: &str) -> String {
    let secs = t.offset().local_minus_utc();
    if secs == 0 && layout.starts_with('Z') {
        return "Z".to_string();
    }
    let sign = if secs < 0 { '-' } else { '+' };
    let abs = secs.unsigned_abs();
    let (h, m, s) = (abs / 3600, abs / 60 % 60, abs % 60);
    let body = &layout[1..];
    match body {
        "07:00:00" => format!("{sign}{h:02}:{m:02}:{s:02}"),
        "070000" => format!("{sign}{h:02}{m:02}{s:02}"),
        "07:00" => format!("{sign}{h:02}:{m:02}"),
        "0700" => format!("{sign}{h:02}{m:02}"),
        _ => format!("{sign}{h:02}"),
    }
}

/// Go prints a zone abbreviation only for named zones; for a fixed offset
/// it prints the offset as `+hhmm` (or `UTC` for zero).
fn zone_abbrev(t: &DateTime<FixedOffset>) -> String {
    if t.offset().local_minus_utc() == 0 {
        "UTC".to_string()
    } else {
        offset(t, "-0700")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    #[test]
    fn rfc3339_matches_go() {
        assert_eq!(
            format(&t("2024-03-05T07:08:09.123456789+01:00"), RFC3339),
            "2024-03-05T07:08:09+01:00"
        );
        assert_eq!(
            format(&t("2024-03-05T07:08:09Z"), RFC3339),
            "2024-03-05T07:08:09Z"
        );
    }

    #[test]
    fn restic_doc_example_and_other_elements() {
        let x = t("2006-01-02T15:04:05.120-07:00");
        assert_eq!(format(&x, "2006-01-02_15-04-05"), "2006-01-02_15-04-05");
        assert_eq!(
            format(&x, "Mon Jan _2 3:4:5 PM 06 -0700 .000 .999"),
            "Mon Jan  2 3:4:5 PM 06 -0700 .120 .12"
        );
        assert_eq!(format(&x, "Monday January 002"), "Monday January 002");
        let y = t("2023-11-20T00:00:00+05:30");
        assert_eq!(format(&y, "03pm Z07:00 x"), "12am +05:30 x");
        assert_eq!(format(&y, ".9"), "", "all-zero .9 fraction is dropped");
        assert_eq!(format(&y, "ünïcode/"), "ünïcode/");
    }
}
