//! `cairn forget` against restic 0.14's `forget`: the same decisions, the
//! same JSON, over many policies and groupings.
//!
//! One repository: restic makes one real backup of a tiny directory; then
//! about 300 snapshot files of that tree are written directly (through
//! `cairn_core`) at synthetic times spread over four years, in three zone
//! offsets, on three hosts, with three path sets and assorted tags. For each
//! case both tools run `forget --dry-run --json`; the outputs must be equal
//! as JSON (groups compared as a set, since restic prints them in map
//! order). Finally one policy is applied for real with each tool on two
//! copies of the repository, and the surviving snapshot sets must match.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use cairn_core::backend::{Backend, LocalBackend};
use cairn_core::format::{GoTime, Snapshot};
use cairn_core::repository::{OpenOptions, Repository};
use common::*;
use serde_json::Value;

/// restic's groups in a canonical order.
fn canonical(v: Value) -> Value {
    let Value::Array(mut groups) = v else {
        return v;
    };
    groups.sort_by_key(|g| {
        serde_json::to_string(&[&g["host"], &g["paths"], &g["tags"]]).unwrap_or_default()
    });
    Value::Array(groups)
}

fn snapshot_ids(repo: &Repo) -> BTreeSet<String> {
    std::fs::read_dir(repo.path.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// A restic repository in `dir` with one real backup of a tiny tree (made
/// at 2020-06-01 12:00), opened with `cairn_core`, and that snapshot as a
/// template for synthetic ones.
fn repository_with_template(dir: &Path) -> (Repo, Repository, Snapshot) {
    let src = dir.join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("file"), b"tiny").unwrap();
    let repo = Repo::new(dir.join("repo"));
    init(Tool::Restic, &repo, 2, None);
    let id = backup(
        Tool::Restic,
        &repo,
        &src,
        &["--time", "2020-06-01 12:00:00"],
    );
    let be: Arc<dyn Backend> = Arc::new(LocalBackend::new(&repo.path));
    let r = Repository::open(be, repo.password.as_bytes(), &OpenOptions::default()).unwrap();
    let template = r.load_snapshot(&id.parse().unwrap()).unwrap();
    (repo, r, template)
}

/// Write ~300 synthetic snapshots of `template`'s tree.
fn synthesize(r: &Repository, template: &Snapshot) {
    let mut rng = Rng::new(0x5eed);
    let hosts = ["alpha", "beta", "gamma"];
    let paths: [&[&str]; 3] = [&["/data"], &["/home/ann", "/etc"], &["/srv/www"]];
    let tags: [&[&str]; 5] = [
        &[],
        &["daily"],
        &["manual", "daily"],
        &["keep"],
        &["b", "a"],
    ];
    let offsets = [0i32, 2 * 3600, -5 * 3600];
    // 2021-01-01T00:00:00Z, stepping between 7 minutes and ~9 days.
    let mut t: i64 = 1_609_459_200;
    for _ in 0..300 {
        t += 420 + (rng.next_u64() % (9 * 86_400)) as i64;
        let offset = offsets[(rng.next_u64() % 3) as usize];
        let zone = chrono::FixedOffset::east_opt(offset).unwrap();
        let nanos = (rng.next_u64() % 1_000_000_000) as u32;
        let time = chrono::DateTime::from_timestamp(t, nanos)
            .unwrap()
            .with_timezone(&zone);
        let mut sn = template.clone();
        sn.time = GoTime::from(time);
        sn.hostname = hosts[(rng.next_u64() % 3) as usize].to_string();
        sn.paths = paths[(rng.next_u64() % 3) as usize]
            .iter()
            .map(|s| s.to_string())
            .collect();
        sn.tags = tags[(rng.next_u64() % 5) as usize]
            .iter()
            .map(|s| s.to_string())
            .collect();
        sn.parent = None;
        r.save_snapshot(&sn).unwrap();
    }
}

#[test]
fn forget_decisions_match_restic() {
    if !restic_or_skip("forget_decisions_match_restic") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (repo, r, template) = repository_with_template(dir.path());
    synthesize(&r, &template);

    let cases: &[&[&str]] = &[
        &["--keep-last", "5"],
        &["--keep-hourly", "30"],
        &[
            "--keep-daily",
            "7",
            "--keep-weekly",
            "5",
            "--keep-monthly",
            "12",
            "--keep-yearly",
            "3",
        ],
        &["--keep-weekly", "200"],
        &["--keep-within", "30d"],
        &["--keep-within", "1y2m"],
        &["--keep-within", "2m15d12h"],
        &["--keep-within-hourly", "20d"],
        &["--keep-within-daily", "2m", "--keep-within-weekly", "6m"],
        &["--keep-within-monthly", "2y", "--keep-within-yearly", "5y"],
        &["--keep-tag", "keep", "--keep-last", "2"],
        &["--keep-tag", "daily,manual", "--keep-tag", "a"],
        &["--keep-tag", ""],
        &["--keep-monthly", "6", "--group-by", "host"],
        &["--keep-monthly", "6", "--group-by", "tags"],
        &["--keep-daily", "10", "--group-by", ""],
        &["--keep-last", "3", "--group-by", "host,tags,paths"],
        &["--keep-weekly", "4", "--group-by", "paths,tags"],
        &["--keep-daily", "5", "--host", "alpha"],
        &["--keep-daily", "5", "--tag", "daily"],
        &["--keep-last", "2", "--path", "/data"],
        &[
            "--keep-yearly",
            "10",
            "--keep-monthly",
            "100",
            "--keep-within",
            "3m",
        ],
        &[
            "--keep-hourly",
            "5",
            "--keep-within-daily",
            "1m",
            "--keep-tag",
            "b",
            "--group-by",
            "host",
        ],
    ];
    let mut failures = Failures(Vec::new());
    for case in cases {
        let mut args = vec!["forget", "--dry-run", "--json"];
        args.extend_from_slice(case);
        let theirs = restic(&repo, &args).ok();
        let ours = cairn(&repo, &args).ok();
        let theirs = canonical(theirs.json());
        let ours = canonical(ours.json());
        let removed = theirs
            .as_array()
            .map(|g| {
                g.iter()
                    .map(|g| g["remove"].as_array().map_or(0, Vec::len))
                    .sum::<usize>()
            })
            .unwrap_or(0);
        failures.check(theirs == ours, || {
            format!(
                "forget {}: outputs differ\nrestic: {}\ncairn:  {}",
                case.join(" "),
                &theirs.to_string()[..theirs.to_string().len().min(3000)],
                &ours.to_string()[..ours.to_string().len().min(3000)]
            )
        });
        eprintln!("forget {}: restic removes {removed}", case.join(" "));
    }
    // An empty policy removes nothing and prints no JSON, as restic.
    let none = cairn(&repo, &["forget", "--dry-run", "--json"]).ok();
    failures.check(none.stdout_str().trim().is_empty(), || {
        format!("empty policy printed {:?}", none.stdout_str())
    });
    failures.finish("forget_decisions_match_restic");

    // For real, on two copies: the same snapshots survive.
    let copy = |name: &str| {
        let path = dir.path().join(name);
        sh(
            "cp",
            &["-a".as_ref(), repo.path.as_os_str(), path.as_os_str()],
        );
        Repo::new(path)
    };
    let (a, b) = (copy("a"), copy("b"));
    let policy = [
        "forget",
        "--keep-daily",
        "10",
        "--keep-monthly",
        "6",
        "--keep-tag",
        "keep",
    ];
    restic(&a, &policy).ok();
    cairn(&b, &policy).ok();
    let (left_a, left_b) = (snapshot_ids(&a), snapshot_ids(&b));
    assert!(left_a.len() < 301 && !left_a.is_empty());
    assert_eq!(left_a, left_b, "restic and cairn kept different snapshots");
    // Explicit ids and prefixes are removed directly.
    let victims: Vec<String> = left_b.iter().take(2).cloned().collect();
    cairn(&b, &["forget", &victims[0], &victims[1][..10]]).ok();
    let left = snapshot_ids(&b);
    assert_eq!(left.len(), left_b.len() - 2);
    assert!(victims.iter().all(|v| !left.contains(v)));
    restic(&b, &["check"]).ok();
}

/// Berlin's offset at a UTC instant of 2024 (CET, CEST from 31 March 01:00
/// UTC to 27 October 01:00 UTC), as `restic backup` run there records it.
fn berlin_2024(utc: i64) -> chrono::FixedOffset {
    const SPRING: i64 = 1_711_846_800; // 2024-03-31T01:00:00Z
    const AUTUMN: i64 = 1_729_990_800; // 2024-10-27T01:00:00Z
    let hours = if (SPRING..AUTUMN).contains(&utc) {
        2
    } else {
        1
    };
    chrono::FixedOffset::east_opt(hours * 3600).unwrap()
}

/// On a machine in Europe/Berlin, restic reads times recorded with the
/// local offset in the local zone, so `--keep-within` limits that cross a
/// daylight-saving change move by the change. Three hosts, each a group
/// whose latest snapshot puts a one-month limit just across a change
/// (spring, autumn, and into the hour skipped in spring), with snapshots
/// every ten minutes around the limit: both tools must keep the same ones.
#[test]
fn keep_within_across_daylight_saving_matches_restic() {
    if !restic_or_skip("keep_within_across_daylight_saving_matches_restic") {
        return;
    }
    assert!(
        Path::new("/usr/share/zoneinfo/Europe/Berlin").exists(),
        "this test needs the tz database (apt-get install tzdata; `make deps` does)"
    );
    let berlin = || RunOpts {
        env: vec![("TZ", "Europe/Berlin".to_string())],
        ..RunOpts::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let (repo, r, template) = repository_with_template(dir.path());

    // (host, latest, start of the ten-minute series, its length), UTC.
    let groups: [(&str, &str, &str, i64); 3] = [
        // 30 April 12:00 CEST: a month back is 30 March 12:00 CET (11:00
        // UTC), not 12:00 +02:00 (10:00 UTC).
        ("spring", "2024-04-30T10:00:00Z", "2024-03-30T09:00:00Z", 19),
        // 15 November 12:00 CET: 15 October 12:00 CEST (10:00 UTC).
        ("autumn", "2024-11-15T11:00:00Z", "2024-10-15T09:00:00Z", 19),
        // 30 April 02:30 CEST: 31 March 02:30 does not exist there; Go
        // takes CET, 01:30 UTC.
        ("gap", "2024-04-30T00:30:00Z", "2024-03-31T00:00:00Z", 19),
    ];
    let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp();
    for (host, latest, start, n) in groups {
        let times = (0..n)
            .map(|k| at(start) + k * 600)
            .chain(std::iter::once(at(latest)));
        for t in times {
            let mut sn = template.clone();
            let time = chrono::DateTime::from_timestamp(t, 0).unwrap();
            sn.time = GoTime::from(time.with_timezone(&berlin_2024(t)));
            sn.hostname = host.to_string();
            sn.parent = None;
            r.save_snapshot(&sn).unwrap();
        }
    }

    let mut failures = Failures(Vec::new());
    for case in [
        &["--keep-within", "1m"][..],
        &["--keep-within", "1m2h"],
        &["--keep-within", "30d"],
        &["--keep-within-daily", "1m"],
        &["--keep-within-hourly", "1m", "--keep-last", "1"],
    ] {
        let mut args = vec!["forget", "--dry-run", "--json"];
        args.extend_from_slice(case);
        let theirs = canonical(
            run_with(Tool::Restic, Some(&repo), &args, berlin())
                .ok()
                .json(),
        );
        let ours = canonical(
            run_with(Tool::Cairn, Some(&repo), &args, berlin())
                .ok()
                .json(),
        );
        let kept = |v: &Value| -> usize {
            v.as_array().map_or(0, |g| {
                g.iter()
                    .map(|g| g["keep"].as_array().map_or(0, Vec::len))
                    .sum()
            })
        };
        eprintln!(
            "forget {} (TZ=Europe/Berlin): restic keeps {}",
            case.join(" "),
            kept(&theirs)
        );
        failures.check(theirs == ours, || {
            format!(
                "forget {} with TZ=Europe/Berlin: outputs differ\nrestic: {theirs}\ncairn:  {ours}",
                case.join(" ")
            )
        });
    }
    failures.finish("keep_within_across_daylight_saving_matches_restic");
}
