//! Tests of the policy engine: restic's own golden vectors, plus the
//! calendar arithmetic and parsing it rests on.

use super::*;
use crate::format::GoTime;
use crate::id::{Id, TreeId};

/// restic 0.14's `testExpireSnapshots` (snapshot_policy_test.go): time
/// (UTC), tags, paths.
const SNAPSHOTS: &[(&str, &str, &str)] = &[
    ("2014-09-01 10:20:30", "", ""),
    ("2014-09-02 10:20:30", "", ""),
    ("2014-09-05 10:20:30", "", ""),
    ("2014-09-06 10:20:30", "", ""),
    ("2014-09-08 10:20:30", "", ""),
    ("2014-09-09 10:20:30", "", ""),
    ("2014-09-10 10:20:30", "", ""),
    ("2014-09-11 10:20:30", "", ""),
    ("2014-09-20 10:20:30", "", ""),
    ("2014-09-22 10:20:30", "", ""),
    ("2014-08-08 10:20:30", "", ""),
    ("2014-08-10 10:20:30", "", ""),
    ("2014-08-12 10:20:30", "", ""),
    ("2014-08-13 10:20:30", "", ""),
    ("2014-08-13 10:20:30.1", "", ""),
    ("2014-08-15 10:20:30", "", ""),
    ("2014-08-18 10:20:30", "", ""),
    ("2014-08-20 10:20:30", "", ""),
    ("2014-08-21 10:20:30", "", ""),
    ("2014-08-22 10:20:30", "", ""),
    ("2014-10-01 10:20:30", "foo", ""),
    ("2014-10-02 10:20:30", "foo", ""),
    ("2014-10-05 10:20:30", "foo", ""),
    ("2014-10-06 10:20:30", "foo", ""),
    ("2014-10-08 10:20:30", "foo", ""),
    ("2014-10-09 10:20:30", "foo", ""),
    ("2014-10-10 10:20:30", "foo", ""),
    ("2014-10-11 10:20:30", "foo", ""),
    ("2014-10-20 10:20:30", "foo", ""),
    ("2014-10-22 10:20:30", "foo", ""),
    ("2014-11-08 10:20:30", "foo", ""),
    ("2014-11-10 10:20:30", "foo", ""),
    ("2014-11-12 10:20:30", "foo", ""),
    ("2014-11-13 10:20:30", "foo", ""),
    ("2014-11-13 10:20:30.1", "bar", ""),
    ("2014-11-15 10:20:30", "foo,bar", ""),
    ("2014-11-18 10:20:30", "", ""),
    ("2014-11-20 10:20:30", "", ""),
    ("2014-11-21 10:20:30", "", ""),
    ("2014-11-22 10:20:30", "", ""),
    ("2015-09-01 10:20:30", "", ""),
    ("2015-09-02 10:20:30", "", ""),
    ("2015-09-05 10:20:30", "", ""),
    ("2015-09-06 10:20:30", "", ""),
    ("2015-09-08 10:20:30", "", ""),
    ("2015-09-09 10:20:30", "", ""),
    ("2015-09-10 10:20:30", "", ""),
    ("2015-09-11 10:20:30", "", ""),
    ("2015-09-20 10:20:30", "", ""),
    ("2015-09-22 10:20:30", "", ""),
    ("2015-08-08 10:20:30", "", ""),
    ("2015-08-10 10:20:30", "", ""),
    ("2015-08-12 10:20:30", "", ""),
    ("2015-08-13 10:20:30", "", ""),
    ("2015-08-13 10:20:30.1", "", ""),
    ("2015-08-15 10:20:30", "", ""),
    ("2015-08-18 10:20:30", "", ""),
    ("2015-08-20 10:20:30", "", ""),
    ("2015-08-21 10:20:30", "", ""),
    ("2015-08-22 10:20:30", "", ""),
    ("2015-10-01 10:20:30", "", ""),
    ("2015-10-02 10:20:30", "", ""),
    ("2015-10-05 10:20:30", "", ""),
    ("2015-10-06 10:20:30", "", ""),
    ("2015-10-08 10:20:30", "", ""),
    ("2015-10-09 10:20:30", "", ""),
    ("2015-10-10 10:20:30", "", ""),
    ("2015-10-11 10:20:30", "", ""),
    ("2015-10-20 10:20:30", "", ""),
    ("2015-10-22 10:20:30", "", ""),
    ("2015-10-22 10:20:30", "", ""),
    ("2015-10-22 10:20:30", "foo,bar", ""),
    ("2015-10-22 10:20:30", "foo,bar", ""),
    ("2015-10-22 10:20:30", "foo,bar", "path1,path2"),
    ("2015-11-08 10:20:30", "", ""),
    ("2015-11-10 10:20:30", "", ""),
    ("2015-11-12 10:20:30", "", ""),
    ("2015-11-13 10:20:30", "", ""),
    ("2015-11-13 10:20:30.1", "", ""),
    ("2015-11-15 10:20:30", "", ""),
    ("2015-11-18 10:20:30", "", ""),
    ("2015-11-20 10:20:30", "", ""),
    ("2015-11-21 10:20:30", "", ""),
    ("2015-11-22 10:20:30", "", ""),
    ("2016-01-01 01:02:03", "", ""),
    ("2016-01-01 01:03:03", "", ""),
    ("2016-01-01 07:08:03", "", ""),
    ("2016-01-03 07:02:03", "", ""),
    ("2016-01-04 10:23:03", "", ""),
    ("2016-01-04 11:23:03", "", ""),
    ("2016-01-04 12:23:03", "", ""),
    ("2016-01-04 12:24:03", "", ""),
    ("2016-01-04 12:28:03", "", ""),
    ("2016-01-04 12:30:03", "", ""),
    ("2016-01-04 16:23:03", "", ""),
    ("2016-01-05 09:02:03", "", ""),
    ("2016-01-06 08:02:03", "", ""),
    ("2016-01-07 10:02:03", "", ""),
    ("2016-01-08 20:02:03", "", ""),
    ("2016-01-09 21:02:03", "", ""),
    ("2016-01-12 21:02:03", "", ""),
    ("2016-01-12 21:08:03", "", ""),
    ("2016-01-18 12:02:03", "", ""),
];

fn d(s: &str) -> KeepDuration {
    s.parse().unwrap()
}

/// restic 0.14's policies of `TestApplyPolicy`, in order.
fn policies() -> Vec<ExpirePolicy> {
    let p = ExpirePolicy::default;
    let tags = |lists: &[&[&str]]| ExpirePolicy {
        tags: lists
            .iter()
            .map(|l| l.iter().map(|t| t.to_string()).collect())
            .collect(),
        ..p()
    };
    let within = |s: &str| ExpirePolicy {
        within: d(s),
        ..p()
    };
    let y = d("1y2m3d3h");
    vec![
        p(),
        ExpirePolicy { last: 10, ..p() },
        ExpirePolicy { last: 15, ..p() },
        ExpirePolicy { last: 99, ..p() },
        ExpirePolicy { last: 200, ..p() },
        ExpirePolicy { hourly: 20, ..p() },
        ExpirePolicy { daily: 3, ..p() },
        ExpirePolicy { daily: 10, ..p() },
        ExpirePolicy { daily: 30, ..p() },
        ExpirePolicy {
            last: 5,
            daily: 5,
            ..p()
        },
        ExpirePolicy {
            last: 2,
            daily: 10,
            ..p()
        },
        ExpirePolicy { weekly: 2, ..p() },
        ExpirePolicy { weekly: 4, ..p() },
        ExpirePolicy {
            daily: 3,
            weekly: 4,
            ..p()
        },
        ExpirePolicy { monthly: 6, ..p() },
        ExpirePolicy {
            daily: 2,
            weekly: 2,
            monthly: 6,
            ..p()
        },
        ExpirePolicy { yearly: 10, ..p() },
        ExpirePolicy {
            daily: 7,
            weekly: 2,
            monthly: 3,
            yearly: 10,
            ..p()
        },
        tags(&[&["foo"]]),
        tags(&[&["foo", "bar"]]),
        tags(&[&["foo"], &["bar"]]),
        within("1d"),
        within("2d"),
        within("7d"),
        within("1m"),
        within("1m14d"),
        within("1y1d1m"),
        within("13d23h"),
        within("2m2h"),
        within("1y2m3d3h"),
        ExpirePolicy {
            within_hourly: y,
            ..p()
        },
        ExpirePolicy {
            within_daily: y,
            ..p()
        },
        ExpirePolicy {
            within_weekly: y,
            ..p()
        },
        ExpirePolicy {
            within_monthly: y,
            ..p()
        },
        ExpirePolicy {
            within_yearly: y,
            ..p()
        },
        ExpirePolicy {
            within: d("1h"),
            within_hourly: d("1d"),
            within_daily: d("7d"),
            within_weekly: d("1m"),
            within_monthly: d("1y"),
            within_yearly: d("9999y"),
            ..p()
        },
    ]
}

fn split(s: &str) -> Vec<String> {
    if s.is_empty() {
        Vec::new()
    } else {
        s.split(',').map(str::to_string).collect()
    }
}

fn snapshots() -> Vec<Snapshot> {
    SNAPSHOTS
        .iter()
        .map(|(time, tags, paths)| {
            let time = GoTime::parse(&format!("{}Z", time.replace(' ', "T"))).unwrap();
            Snapshot {
                tags: split(tags),
                paths: split(paths),
                ..Snapshot::new(time, TreeId::default(), Vec::new())
            }
        })
        .collect()
}

/// One kept snapshot as the golden file lists it.
fn describe(sn: &Snapshot, reason: &KeepReason) -> String {
    let c = reason.counters;
    let counters: Vec<String> = [
        ("last", c.last),
        ("hourly", c.hourly),
        ("daily", c.daily),
        ("weekly", c.weekly),
        ("monthly", c.monthly),
        ("yearly", c.yearly),
    ]
    .iter()
    .filter(|(_, n)| *n != 0)
    .map(|(name, n)| format!("{name}={n}"))
    .collect();
    format!(
        "{}|{}|{}|{}|{}",
        sn.time,
        sn.tags.join(","),
        sn.paths.join(","),
        reason.matches.join(";"),
        counters.join(",")
    )
}

#[test]
fn restic_golden_policies() {
    let golden = include_str!("testdata/forget_policy_golden.txt");
    let mut want: Vec<Vec<&str>> = Vec::new();
    for line in golden.lines().filter(|l| !l.starts_with('#')) {
        if line.starts_with("policy ") {
            want.push(Vec::new());
        } else if let Some(last) = want.last_mut() {
            last.push(line);
        }
    }
    let list = snapshots();
    let refs: Vec<&Snapshot> = list.iter().collect();
    let policies = policies();
    assert_eq!(want.len(), policies.len());
    for (n, (policy, want)) in policies.iter().zip(&want).enumerate() {
        let res = apply_policy(&refs, policy, Utc::now());
        assert_eq!(res.keep.len() + res.remove.len(), list.len(), "policy {n}");
        assert_eq!(res.keep.len(), res.reasons.len(), "policy {n}");
        let got: Vec<String> = res
            .keep
            .iter()
            .zip(&res.reasons)
            .map(|(&i, r)| {
                assert_eq!(r.snapshot, i);
                describe(&list[i], r)
            })
            .collect();
        assert_eq!(got, *want, "policy {n}: {policy}");
    }
}

#[test]
fn future_snapshots_are_not_the_reference_for_within() {
    let at = |s: &str| Snapshot::new(GoTime::parse(s).unwrap(), TreeId::default(), vec![]);
    let list = [
        at("2020-01-10T00:00:00Z"),
        at("2020-01-09T12:00:00Z"),
        at("2020-01-05T00:00:00Z"),
        at("2031-01-01T00:00:00Z"),
    ];
    let refs: Vec<&Snapshot> = list.iter().collect();
    let now = GoTime::parse("2021-01-01T00:00:00Z").unwrap().to_utc();
    let policy = ExpirePolicy {
        within: d("1d"),
        ..ExpirePolicy::default()
    };
    let res = apply_policy(&refs, &policy, now);
    // Latest is 2020-01-10 (the 2031 one is in the future); it is newer than
    // the limit too.
    assert_eq!(res.keep, [3, 0, 1]);
    assert_eq!(res.remove, [2]);
}

#[test]
fn unlimited_counts_keep_every_bucket() {
    let list: Vec<Snapshot> = (0..5)
        .map(|day| {
            let t = GoTime::parse(&format!("2020-01-0{}T10:00:00Z", day + 1)).unwrap();
            Snapshot::new(t, TreeId::default(), vec![])
        })
        .collect();
    let refs: Vec<&Snapshot> = list.iter().collect();
    let policy = ExpirePolicy {
        daily: UNLIMITED,
        last: 1,
        ..ExpirePolicy::default()
    };
    let res = apply_policy(&refs, &policy, Utc::now());
    assert_eq!(res.keep, [4, 3, 2, 1, 0]);
    assert_eq!(
        res.reasons[0].counters,
        Counters {
            daily: -1,
            ..Counters::default()
        }
    );
    assert_eq!(res.reasons[1].matches, ["daily snapshot"]);
    assert!(ExpirePolicy {
        last: -2,
        ..ExpirePolicy::default()
    }
    .validate()
    .is_err());
    assert!(policy.validate().is_ok());
}

#[test]
fn buckets_use_the_recorded_zone() {
    // 23:30 at -05:00 is the next day in UTC; restic buckets by the
    // recorded offset, so these two are the same day.
    let list = [
        Snapshot::new(
            GoTime::parse("2020-03-01T23:30:00-05:00").unwrap(),
            TreeId::default(),
            vec![],
        ),
        Snapshot::new(
            GoTime::parse("2020-03-01T01:00:00-05:00").unwrap(),
            TreeId::default(),
            vec![],
        ),
    ];
    let refs: Vec<&Snapshot> = list.iter().collect();
    let policy = ExpirePolicy {
        daily: 5,
        ..ExpirePolicy::default()
    };
    let res = apply_policy(&refs, &policy, Utc::now());
    assert_eq!(res.keep, [0]);
    assert_eq!(res.remove, [1]);
}

#[test]
fn durations_parse_and_print_like_restic() {
    assert_eq!(
        d("6y5m234d37h"),
        KeepDuration {
            years: 6,
            months: 5,
            days: 234,
            hours: 37
        }
    );
    assert_eq!(d("1y1d1m").to_string(), "1y1m1d");
    assert_eq!(d(" 2h ").to_string(), "2h");
    assert_eq!(d("-1d").days, -1);
    assert_eq!(d("1d2d").days, 2);
    assert!(d("").is_zero());
    for bad in ["1", "d", "1x", "1d2", "99999999999d", "--1d"] {
        assert!(bad.parse::<KeepDuration>().is_err(), "{bad:?}");
    }
}

#[test]
fn add_date_normalizes_like_go() {
    let t = |s: &str| *GoTime::parse(s).unwrap().as_datetime();
    // Feb 31 is Mar 2 in a leap year.
    assert_eq!(
        add_date(t("2024-03-31T10:00:00Z"), 0, -1, 0),
        t("2024-03-02T10:00:00Z")
    );
    assert_eq!(
        add_date(t("2023-03-31T10:00:00Z"), 0, -1, 0),
        t("2023-03-03T10:00:00Z")
    );
    assert_eq!(
        add_date(t("2024-01-15T10:00:00+02:00"), -1, -13, -20),
        t("2021-11-25T10:00:00+02:00")
    );
    assert_eq!(
        add_date(t("2024-02-29T00:00:00Z"), -1, 0, 0),
        t("2023-03-01T00:00:00Z")
    );
    assert_eq!(
        d("1m2h").before(t("2024-03-31T01:00:00Z")),
        t("2024-03-01T23:00:00Z")
    );
    // Absurd durations saturate instead of panicking.
    let far = add_date(t("2024-01-01T00:00:00Z"), i32::MIN, i32::MIN, i32::MIN);
    assert!(far < t("0001-01-01T00:00:00Z"));
}

#[test]
fn grouping_and_its_keys() {
    let id = |n: u8| SnapshotId(Id::hash(&[n]));
    let sn = |host: &str, paths: &[&str], tags: &[&str]| Snapshot {
        hostname: host.into(),
        paths: paths.iter().map(|p| p.to_string()).collect(),
        tags: tags.iter().map(|p| p.to_string()).collect(),
        ..Snapshot::default()
    };
    let list = vec![
        (id(1), sn("a", &["/y", "/x"], &["t2", "t1"])),
        (id(2), sn("a", &["/x", "/y"], &["t1", "t2"])),
        (id(3), sn("b", &["/x"], &[])),
    ];
    let groups = group_snapshots(list.clone(), GroupBy::DEFAULT);
    assert_eq!(groups.len(), 2);
    assert_eq!(
        groups[0].0.paths.as_deref(),
        Some(&["/x".to_string(), "/y".to_string()][..])
    );
    assert_eq!(groups[0].1.len(), 2);
    assert_eq!(groups[0].1[0].1.paths, ["/x", "/y"], "paths are sorted");
    assert_eq!(
        groups[0].1[0].1.tags,
        ["t2", "t1"],
        "tags only when grouping by them"
    );
    let by_tags = group_snapshots(list.clone(), "tags".parse().unwrap());
    assert_eq!(by_tags.len(), 2);
    assert_eq!(by_tags[0].0, GroupKey::default(), "untagged: tags null");
    assert_eq!(
        by_tags[1].0.tags.as_deref(),
        Some(&["t1".to_string(), "t2".to_string()][..])
    );
    let none = group_snapshots(list, "".parse().unwrap());
    assert_eq!(none.len(), 1);
    assert_eq!(none[0].0, GroupKey::default());
    assert!("host,bogus".parse::<GroupBy>().is_err());
    assert_eq!(
        "hosts,path".parse::<GroupBy>().unwrap(),
        GroupBy {
            host: true,
            paths: true,
            tags: false
        }
    );
}

#[test]
fn policy_summary_line() {
    let policy = ExpirePolicy {
        last: 2,
        daily: 7,
        within_weekly: d("1m"),
        tags: vec![vec!["a".into(), "b".into()], vec!["c".into()]],
        within: d("2d"),
        ..ExpirePolicy::default()
    };
    assert_eq!(
        policy.to_string(),
        "keep 2 latest, 7 daily snapshots, weekly snapshots within 1m and all snapshots with tags [[a, b] [c]] and all snapshots within 2d of the newest"
    );
    assert!(ExpirePolicy::default().is_empty());
    assert!(!policy.is_empty());
}
