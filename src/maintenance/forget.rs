//! `forget`'s policy engine: which snapshots a `--keep-*` policy keeps, with
//! restic's exact semantics (restic 0.14 `internal/restic/snapshot_policy.go`
//! and `snapshot_group.go`). Pure: no repository access.
//!
//! - Snapshots are first split into groups ([`group_snapshots`]) by host,
//!   paths and/or tags; the policy then applies to each group on its own.
//! - Within a group, snapshots are ordered newest first (a stable sort, so
//!   equal times keep the input order) and walked once. A snapshot is kept
//!   if it has one of the `--keep-tag` tag lists, if it lies within
//!   `--keep-within` of the group's latest snapshot, or if it opens a new
//!   "bucket" (hour, day, ISO week, month, year, or simply the next
//!   snapshot for `--keep-last`) while that bucket kind still has count
//!   left. `--keep-within-<bucket>` works the same without a count, limited
//!   to snapshots newer than the duration before the latest snapshot.
//! - Calendar fields are those of each snapshot's own recorded zone offset,
//!   as Go reads them; "the latest snapshot" is the newest one that is not
//!   in the future.
//! - Durations step back in calendar units the way Go's `AddDate` does
//!   (2024-03-31 minus one month is 2024-03-02), then by whole hours. Like
//!   Go, a time recorded with the local zone's offset is moved in the local
//!   zone, across its daylight-saving changes.
//!
//! A count of [`UNLIMITED`] (`-1` on the command line, as in restic 0.16+)
//! keeps every bucket of that kind; restic 0.14 did not have it.

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Duration as Span, FixedOffset, Local, NaiveDate, NaiveDateTime, Offset,
    TimeZone, Timelike, Utc,
};

use crate::error::{Error, Result};
use crate::format::snapshot::Snapshot;
use crate::id::SnapshotId;

/// A count meaning "every bucket of this kind".
pub const UNLIMITED: i64 = -1;

/// restic's calendar duration for `--keep-within*`: `1y2m3d4h`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeepDuration {
    pub years: i32,
    pub months: i32,
    pub days: i32,
    pub hours: i32,
}

impl KeepDuration {
    /// True if every part is zero (the option is off).
    pub fn is_zero(&self) -> bool {
        *self == KeepDuration::default()
    }

    /// `t` moved back by this duration: calendar parts as Go's
    /// `AddDate(-y, -m, -d)` in `t`'s zone, then the hours.
    pub fn before(&self, t: DateTime<FixedOffset>) -> DateTime<FixedOffset> {
        add_date(t, -self.years, -self.months, -self.days) - Span::hours(i64::from(self.hours))
    }
}

impl fmt::Display for KeepDuration {
    /// restic's form: the non-zero parts in the order y, m, d, h.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, unit) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if n != 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for KeepDuration {
    type Err = Error;

    /// Parse `6y5m234d37h` as restic does: numbers (optionally negative)
    /// each followed by a unit; a later number for the same unit wins.
    fn from_str(s: &str) -> Result<Self> {
        let invalid =
            |why: String| Error::InvalidArgument(format!("invalid duration {s:?}: {why}"));
        let mut d = KeepDuration::default();
        let mut rest = s.trim();
        while !rest.is_empty() {
            let (negative, body) = match rest.strip_prefix('-') {
                Some(b) => (true, b),
                None => (false, rest),
            };
            let digits = body
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(body.len());
            if digits == 0 {
                return Err(invalid("no number found".into()));
            }
            let n: i32 = body[..digits]
                .parse()
                .map_err(|_| invalid(format!("number {} is too large", &body[..digits])))?;
            let n = if negative { -n } else { n };
            let mut chars = body[digits..].chars();
            let field = match chars.next() {
                None => return Err(invalid(format!("no unit found after number {n}"))),
                Some('y') => &mut d.years,
                Some('m') => &mut d.months,
                Some('d') => &mut d.days,
                Some('h') => &mut d.hours,
                Some(c) => {
                    return Err(invalid(format!(
                        "invalid unit {c:?} found after number {n}"
                    )))
                }
            };
            *field = n;
            rest = chars.as_str();
        }
        Ok(d)
    }
}

/// Go's `t.AddDate(years, months, days)`: the date fields are added and then
/// normalized (month 13 is January of the next year, day 0 the last day of
/// the previous month), keeping the time of day in `t`'s zone.
fn add_date(t: DateTime<FixedOffset>, years: i32, months: i32, days: i32) -> DateTime<FixedOffset> {
    let month0 = i64::from(t.year()) * 12
        + i64::from(t.month0())
        + i64::from(years) * 12
        + i64::from(months);
    let (year, month0) = (month0.div_euclid(12), month0.rem_euclid(12));
    let first = i32::try_from(year)
        .ok()
        // month0 is in 0..12.
        .and_then(|y| NaiveDate::from_ymd_opt(y, month0 as u32 + 1, 1));
    let Some(first) = first else {
        // Beyond chrono's range (±262,000 years): saturate.
        return if year < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        }
        .fixed_offset();
    };
    let date = first
        .checked_add_signed(Span::days(i64::from(t.day()) - 1 + i64::from(days)))
        .unwrap_or(first);
    let naive = date.and_time(t.time());
    let offset = if in_local_zone(&t) {
        go_local_offset(naive)
    } else {
        *t.offset()
    };
    offset
        .from_local_datetime(&naive)
        .single()
        .unwrap_or_else(|| offset.from_utc_datetime(&naive))
}

/// Whether Go reads `t` in the machine's local zone: its parser does so when
/// the recorded offset is the one the local zone had at that instant (a
/// zero offset, which Go writes as `Z`, stays UTC). Calendar arithmetic then
/// follows the local zone's daylight-saving changes.
fn in_local_zone(t: &DateTime<FixedOffset>) -> bool {
    let offset = *t.offset();
    offset.local_minus_utc() != 0 && Local.offset_from_utc_datetime(&t.naive_utc()).fix() == offset
}

/// The local zone's offset for the wall-clock time `wall`, chosen as Go's
/// `time.Date` does: the offset in effect at `wall` read as UTC, unless the
/// instant that gives lies past a zone change, then the offset there. (So a
/// time skipped by a spring-forward change takes the old offset, a repeated
/// autumn one the earlier.)
fn go_local_offset(wall: NaiveDateTime) -> FixedOffset {
    let guess = Local.offset_from_utc_datetime(&wall).fix();
    let instant = wall - Span::seconds(i64::from(guess.local_minus_utc()));
    Local.offset_from_utc_datetime(&instant).fix()
}

/// Which snapshots to keep. The default keeps nothing by itself: an empty
/// policy ([`ExpirePolicy::is_empty`]) must not be applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpirePolicy {
    pub last: i64,
    pub hourly: i64,
    pub daily: i64,
    pub weekly: i64,
    pub monthly: i64,
    pub yearly: i64,
    pub within: KeepDuration,
    pub within_hourly: KeepDuration,
    pub within_daily: KeepDuration,
    pub within_weekly: KeepDuration,
    pub within_monthly: KeepDuration,
    pub within_yearly: KeepDuration,
    /// `--keep-tag`: keep snapshots having all tags of any one list.
    pub tags: Vec<Vec<String>>,
}

impl ExpirePolicy {
    /// True if no option is set: restic then removes nothing.
    pub fn is_empty(&self) -> bool {
        *self == ExpirePolicy::default()
    }

    /// Check the counts: each must be at least [`UNLIMITED`].
    pub fn validate(&self) -> Result<()> {
        for (n, name) in self.counts() {
            if n < UNLIMITED {
                return Err(Error::InvalidArgument(format!(
                    "--keep-{name}: negative values other than -1 are not allowed ({n})"
                )));
            }
        }
        Ok(())
    }

    fn counts(&self) -> [(i64, &'static str); 6] {
        [
            (self.last, "last"),
            (self.hourly, "hourly"),
            (self.daily, "daily"),
            (self.weekly, "weekly"),
            (self.monthly, "monthly"),
            (self.yearly, "yearly"),
        ]
    }
}

impl fmt::Display for ExpirePolicy {
    /// restic's "keep …" summary line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keeps: Vec<String> = self
            .counts()
            .iter()
            .filter(|(n, _)| *n != 0)
            .map(|&(n, name)| {
                let name = if name == "last" { "latest" } else { name };
                if n == UNLIMITED {
                    format!("all {name}")
                } else {
                    format!("{n} {name}")
                }
            })
            .collect();
        let within: Vec<String> = [
            (self.within_hourly, "hourly"),
            (self.within_daily, "daily"),
            (self.within_weekly, "weekly"),
            (self.within_monthly, "monthly"),
            (self.within_yearly, "yearly"),
        ]
        .iter()
        .filter(|(d, _)| !d.is_zero())
        .map(|(d, name)| format!("{name} snapshots within {d}"))
        .collect();
        let mut s = String::new();
        if !keeps.is_empty() {
            s = format!("{} snapshots", keeps.join(", "));
        }
        if !within.is_empty() {
            if !s.is_empty() {
                s.push_str(", ");
            }
            s.push_str(&within.join(", "));
        }
        if !self.tags.is_empty() {
            if !s.is_empty() {
                s.push_str(" and ");
            }
            let lists: Vec<String> = self.tags.iter().map(|l| tag_list(l)).collect();
            s.push_str(&format!("all snapshots with tags [{}]", lists.join(" ")));
        }
        if !self.within.is_zero() {
            if !s.is_empty() {
                s.push_str(" and ");
            }
            s.push_str(&format!(
                "all snapshots within {} of the newest",
                self.within
            ));
        }
        write!(f, "keep {s}")
    }
}

/// A tag list as restic prints it: `[a, b]`.
fn tag_list(tags: &[String]) -> String {
    format!("[{}]", tags.join(", "))
}

/// The bucket kinds, in restic's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bucket {
    Last,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Bucket {
    /// The bucket a snapshot (the `nr`-th, newest first) falls into.
    fn of(self, t: &DateTime<FixedOffset>, nr: usize) -> i64 {
        let (y, m, d, h) = (
            i64::from(t.year()),
            i64::from(t.month()),
            i64::from(t.day()),
            i64::from(t.hour()),
        );
        match self {
            Bucket::Last => nr as i64,
            Bucket::Hourly => y * 1_000_000 + m * 10_000 + d * 100 + h,
            Bucket::Daily => y * 10_000 + m * 100 + d,
            Bucket::Weekly => {
                let w = t.iso_week();
                i64::from(w.year()) * 100 + i64::from(w.week())
            }
            Bucket::Monthly => y * 100 + m,
            Bucket::Yearly => y,
        }
    }
}

/// How many more buckets of each kind may be kept, after a snapshot was
/// judged (restic's `counters`; zero fields are left out of its JSON).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    #[serde(skip_serializing_if = "is_zero")]
    pub last: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub hourly: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub daily: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub weekly: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub monthly: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub yearly: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Why a snapshot was kept: the rules that matched, in restic's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeepReason {
    /// Position of the snapshot in the list given to [`apply_policy`].
    pub snapshot: usize,
    pub matches: Vec<String>,
    pub counters: Counters,
}

/// The outcome of [`apply_policy`] for one group. Indices refer to the
/// list given to it; `keep` and `remove` are newest first, and
/// `reasons[i]` explains `keep[i]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyResult {
    pub keep: Vec<usize>,
    pub remove: Vec<usize>,
    pub reasons: Vec<KeepReason>,
}

/// Apply `policy` to one group of snapshots. `now` bounds "the latest
/// snapshot": snapshots dated after it are never the reference point for
/// `--keep-within*`. An empty policy keeps everything.
pub fn apply_policy(
    snapshots: &[&Snapshot],
    policy: &ExpirePolicy,
    now: DateTime<Utc>,
) -> PolicyResult {
    let mut order: Vec<usize> = (0..snapshots.len()).collect();
    // Newest first; stable, so equal times keep their input order.
    order.sort_by(|&a, &b| snapshots[b].time.cmp(&snapshots[a].time));
    let mut result = PolicyResult::default();
    if policy.is_empty() {
        result.reasons = order
            .iter()
            .map(|&i| KeepReason {
                snapshot: i,
                matches: vec!["policy is empty".into()],
                counters: Counters::default(),
            })
            .collect();
        result.keep = order;
        return result;
    }
    if snapshots.is_empty() {
        return result;
    }

    // The latest snapshot that is not in the future; Go's zero time if none.
    let zero: DateTime<FixedOffset> = crate::format::GoTime::zero().into();
    let latest = snapshots
        .iter()
        .map(|sn| *sn.time.as_datetime())
        .filter(|t| *t < now)
        .fold(zero, |latest, t| if t > latest { t } else { latest });

    let mut buckets = [
        (Bucket::Last, policy.last, "last snapshot"),
        (Bucket::Hourly, policy.hourly, "hourly snapshot"),
        (Bucket::Daily, policy.daily, "daily snapshot"),
        (Bucket::Weekly, policy.weekly, "weekly snapshot"),
        (Bucket::Monthly, policy.monthly, "monthly snapshot"),
        (Bucket::Yearly, policy.yearly, "yearly snapshot"),
    ]
    .map(|(kind, count, reason)| (kind, count, None::<i64>, reason));
    let mut within = [
        (Bucket::Hourly, policy.within_hourly, "hourly within"),
        (Bucket::Daily, policy.within_daily, "daily within"),
        (Bucket::Weekly, policy.within_weekly, "weekly within"),
        (Bucket::Monthly, policy.within_monthly, "monthly within"),
        (Bucket::Yearly, policy.within_yearly, "yearly within"),
    ]
    .map(|(kind, d, reason)| {
        (
            kind,
            d,
            (!d.is_zero()).then(|| d.before(latest)),
            None::<i64>,
            reason,
        )
    });
    let keep_within = (!policy.within.is_zero()).then(|| policy.within.before(latest));

    for (nr, &i) in order.iter().enumerate() {
        let sn = snapshots[i];
        let t = sn.time.as_datetime();
        let mut matches = Vec::new();
        for list in &policy.tags {
            if sn.has_tags(list) {
                matches.push(format!("has tags {}", tag_list(list)));
            }
        }
        if let Some(limit) = keep_within {
            if *t > limit {
                matches.push(format!("within {}", policy.within));
            }
        }
        for (kind, count, last, reason) in buckets.iter_mut() {
            if *count > 0 || *count == UNLIMITED {
                let value = kind.of(t, nr);
                if *last != Some(value) {
                    *last = Some(value);
                    if *count > 0 {
                        *count -= 1;
                    }
                    matches.push(reason.to_string());
                }
            }
        }
        for (kind, d, limit, last, reason) in within.iter_mut() {
            if let Some(limit) = limit {
                if *t > *limit {
                    let value = kind.of(t, nr);
                    if *last != Some(value) {
                        *last = Some(value);
                        matches.push(format!("{reason} {d}"));
                    }
                }
            }
        }
        if matches.is_empty() {
            result.remove.push(i);
        } else {
            result.keep.push(i);
            let count = |b: usize| buckets[b].1;
            result.reasons.push(KeepReason {
                snapshot: i,
                matches,
                counters: Counters {
                    last: count(0),
                    hourly: count(1),
                    daily: count(2),
                    weekly: count(3),
                    monthly: count(4),
                    yearly: count(5),
                },
            });
        }
    }
    result
}

/// What `--group-by` groups on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupBy {
    pub host: bool,
    pub paths: bool,
    pub tags: bool,
}

impl GroupBy {
    /// restic's default, `host,paths`.
    pub const DEFAULT: GroupBy = GroupBy {
        host: true,
        paths: true,
        tags: false,
    };

    /// True if snapshots are grouped at all.
    pub fn any(&self) -> bool {
        self.host || self.paths || self.tags
    }
}

impl FromStr for GroupBy {
    type Err = Error;

    /// `host,paths,tags` (singular forms too); empty for no grouping.
    fn from_str(s: &str) -> Result<Self> {
        let mut g = GroupBy::default();
        for option in s.split(',') {
            match option {
                "host" | "hosts" => g.host = true,
                "path" | "paths" => g.paths = true,
                "tag" | "tags" => g.tags = true,
                "" => {}
                other => {
                    return Err(Error::InvalidArgument(format!(
                        "unknown grouping option: '{other}'"
                    )))
                }
            }
        }
        Ok(g)
    }
}

/// The key of a group: the grouped-on fields, `None` where not grouped
/// (restic prints those as `null`, the host as `""`).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    pub hostname: String,
    pub paths: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
}

/// Split snapshots into groups, as restic's `GroupSnapshots`. Each
/// snapshot's `paths` are sorted, and with tag grouping its `tags` too: restic
/// sorts them in place, so its output shows them sorted. Groups come out
/// ordered by key; within a group snapshots keep their input order.
pub fn group_snapshots(
    snapshots: Vec<(SnapshotId, Snapshot)>,
    by: GroupBy,
) -> Vec<(GroupKey, Vec<(SnapshotId, Snapshot)>)> {
    let mut groups: std::collections::BTreeMap<GroupKey, Vec<(SnapshotId, Snapshot)>> =
        Default::default();
    for (id, mut sn) in snapshots {
        sn.paths.sort();
        if by.tags {
            sn.tags.sort();
        }
        let key = GroupKey {
            hostname: if by.host {
                sn.hostname.clone()
            } else {
                String::new()
            },
            paths: by.paths.then(|| sn.paths.clone()),
            tags: (by.tags && !sn.tags.is_empty()).then(|| sn.tags.clone()),
        };
        groups.entry(key).or_default().push((id, sn));
    }
    groups.into_iter().collect()
}

#[cfg(test)]
#[path = "forget_tests.rs"]
mod tests;
