//! `cairn forget`: remove snapshots by policy or by id, as restic's
//! `forget`, optionally followed by a prune.
//!
//! The decisions come from [`cairn_core::maintenance::forget`]; this module
//! loads and filters snapshots, prints restic's tables or its JSON (one
//! array of groups with `keep`, `remove` and `reasons`), and removes the
//! snapshot files under an exclusive lock.

use std::collections::{BTreeSet, HashSet};

use anyhow::{bail, Result};
use cairn_core::backend::FileType;
use cairn_core::format::snapshot::{parse_tag_list, Snapshot};
use cairn_core::id::SnapshotId;
use cairn_core::maintenance::forget::{
    apply_policy, group_snapshots, Counters, ExpirePolicy, GroupBy, GroupKey, KeepDuration,
};
use cairn_core::repository::{LockKind, Repository};
use cairn_core::tree::select::SnapshotFilter;
use serde::Serialize;

use crate::cmd::prune::{self, PruneArgs};
use crate::cmd::snapshots::FilterArgs;
use crate::context::Context;
use crate::output::{print_json, Table};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Keep the last n snapshots (-1: all)
    #[arg(
        short = 'l',
        long,
        value_name = "n",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    keep_last: i64,
    /// Keep the last n hourly snapshots (-1: all)
    #[arg(
        short = 'H',
        long,
        value_name = "n",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    keep_hourly: i64,
    /// Keep the last n daily snapshots (-1: all)
    #[arg(
        short = 'd',
        long,
        value_name = "n",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    keep_daily: i64,
    /// Keep the last n weekly snapshots (-1: all)
    #[arg(
        short = 'w',
        long,
        value_name = "n",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    keep_weekly: i64,
    /// Keep the last n monthly snapshots (-1: all)
    #[arg(
        short = 'm',
        long,
        value_name = "n",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    keep_monthly: i64,
    /// Keep the last n yearly snapshots (-1: all)
    #[arg(
        short = 'y',
        long,
        value_name = "n",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    keep_yearly: i64,
    /// Keep snapshots that are newer than duration (eg. 1y5m7d2h) relative to the latest snapshot
    #[arg(long, value_name = "duration")]
    keep_within: Option<KeepDuration>,
    /// Keep hourly snapshots that are newer than duration relative to the latest snapshot
    #[arg(long, value_name = "duration")]
    keep_within_hourly: Option<KeepDuration>,
    /// Keep daily snapshots that are newer than duration relative to the latest snapshot
    #[arg(long, value_name = "duration")]
    keep_within_daily: Option<KeepDuration>,
    /// Keep weekly snapshots that are newer than duration relative to the latest snapshot
    #[arg(long, value_name = "duration")]
    keep_within_weekly: Option<KeepDuration>,
    /// Keep monthly snapshots that are newer than duration relative to the latest snapshot
    #[arg(long, value_name = "duration")]
    keep_within_monthly: Option<KeepDuration>,
    /// Keep yearly snapshots that are newer than duration relative to the latest snapshot
    #[arg(long, value_name = "duration")]
    keep_within_yearly: Option<KeepDuration>,
    /// Keep snapshots with this taglist (can be specified multiple times)
    #[arg(long = "keep-tag", value_name = "taglist")]
    keep_tags: Vec<String>,
    /// Only consider snapshots with the given host (can be specified multiple times)
    #[arg(long = "host", value_name = "host")]
    hosts: Vec<String>,
    /// Only consider snapshots which include this taglist in the format `tag[,tag,...]` (can be specified multiple times)
    #[arg(long = "tag", value_name = "taglist")]
    tags: Vec<String>,
    /// Only consider snapshots which include this (absolute) path (can be specified multiple times)
    #[arg(long = "path", value_name = "path")]
    paths: Vec<String>,
    /// Use compact output format
    #[arg(short = 'c', long)]
    compact: bool,
    /// Group snapshots by host, paths and/or tags, separated by comma (disable grouping with '')
    #[arg(short = 'g', long, value_name = "group", default_value = "host,paths")]
    group_by: GroupBy,
    /// Do not delete anything, just print what would be done
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Automatically run the 'prune' command if snapshots have been removed
    #[arg(long)]
    prune: bool,
    #[command(flatten)]
    prune_args: PruneArgs,
    /// Snapshot IDs to forget
    #[arg(value_name = "snapshot ID")]
    ids: Vec<String>,
}

impl Args {
    fn filter(&self) -> SnapshotFilter {
        FilterArgs {
            hosts: self.hosts.clone(),
            tags: self.tags.clone(),
            paths: self.paths.clone(),
        }
        .filter()
    }

    fn policy(&self) -> ExpirePolicy {
        let d = |v: &Option<KeepDuration>| v.unwrap_or_default();
        ExpirePolicy {
            last: self.keep_last,
            hourly: self.keep_hourly,
            daily: self.keep_daily,
            weekly: self.keep_weekly,
            monthly: self.keep_monthly,
            yearly: self.keep_yearly,
            within: d(&self.keep_within),
            within_hourly: d(&self.keep_within_hourly),
            within_daily: d(&self.keep_within_daily),
            within_weekly: d(&self.keep_within_weekly),
            within_monthly: d(&self.keep_within_monthly),
            within_yearly: d(&self.keep_within_yearly),
            tags: self.keep_tags.iter().map(|t| parse_tag_list(t)).collect(),
        }
    }
}

/// A snapshot in restic's JSON: its fields plus `id` and `short_id`.
#[derive(Serialize)]
struct SnapshotJson<'a> {
    #[serde(flatten)]
    snapshot: &'a Snapshot,
    id: SnapshotId,
    short_id: String,
}

#[derive(Serialize)]
struct ReasonJson<'a> {
    snapshot: &'a Snapshot,
    matches: Vec<String>,
    counters: Counters,
}

/// One group of restic's `forget --json` output.
#[derive(Serialize)]
struct GroupJson<'a> {
    tags: Option<&'a [String]>,
    host: &'a str,
    paths: Option<&'a [String]>,
    keep: Option<Vec<SnapshotJson<'a>>>,
    remove: Option<Vec<SnapshotJson<'a>>>,
    reasons: Option<Vec<ReasonJson<'a>>>,
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let policy = args.policy();
    policy.validate()?;
    let prune_opts = prune::prune_options(ctx, &args.prune_args)?;
    if ctx.global.no_lock && !args.dry_run {
        bail!("--no-lock is only applicable in combination with --dry-run for forget command");
    }
    let repo = ctx.open()?;
    if args.prune {
        prune::check_repo_options(&repo, &prune_opts)?;
    }
    let _lock = if args.dry_run && ctx.global.no_lock {
        None
    } else {
        Some(repo.lock(LockKind::Exclusive)?)
    };
    let json = ctx.json();
    let text = !json && !ctx.global.quiet;

    let mut remove: BTreeSet<SnapshotId> = BTreeSet::new();
    if !args.ids.is_empty() {
        for (id, _) in explicit_snapshots(&repo, &args.ids, &args.filter())? {
            remove.insert(id);
        }
    } else if policy.is_empty() {
        if text {
            println!("no policy was specified, no snapshots will be removed");
        }
    } else {
        let snapshots = load_filtered(&repo, &args.filter())?;
        if text {
            println!("Applying Policy: {policy}");
        }
        let groups = group_snapshots(snapshots, args.group_by);
        let now = chrono::Utc::now();
        let mut out = Vec::new();
        for (key, list) in &groups {
            let refs: Vec<&Snapshot> = list.iter().map(|(_, sn)| sn).collect();
            let res = apply_policy(&refs, &policy, now);
            let entry = |i: usize| SnapshotJson {
                snapshot: &list[i].1,
                id: list[i].0,
                short_id: list[i].0.short(),
            };
            if text {
                if ctx.global.verbose >= 1 {
                    println!("{}", group_header(key, args.group_by));
                }
                if !res.keep.is_empty() {
                    println!("keep {} snapshots:", res.keep.len());
                    print_table(list, &res.keep, Some(&res.reasons), args.compact)?;
                    println!();
                }
                if !res.remove.is_empty() {
                    println!("remove {} snapshots:", res.remove.len());
                    print_table(list, &res.remove, None, args.compact)?;
                    println!();
                }
            }
            remove.extend(res.remove.iter().map(|&i| list[i].0));
            let keep = nonempty(res.keep.iter().map(|&i| entry(i)).collect());
            let removed = nonempty(res.remove.iter().map(|&i| entry(i)).collect());
            let reasons: Vec<ReasonJson<'_>> = res
                .reasons
                .into_iter()
                .map(|r| ReasonJson {
                    snapshot: &list[r.snapshot].1,
                    matches: r.matches,
                    counters: r.counters,
                })
                .collect();
            out.push((key, keep, removed, nonempty(reasons)));
        }
        if json && !out.is_empty() {
            let groups: Vec<GroupJson<'_>> = out
                .into_iter()
                .map(|(key, keep, remove, reasons)| GroupJson {
                    tags: key.tags.as_deref(),
                    host: &key.hostname,
                    paths: key.paths.as_deref(),
                    keep,
                    remove,
                    reasons,
                })
                .collect();
            print_json(&groups)?;
        }
    }

    if !remove.is_empty() {
        if args.dry_run {
            if text {
                let ids: Vec<String> = remove.iter().map(|id| id.short()).collect();
                println!(
                    "Would have removed the following snapshots:\n{{{}}}\n",
                    ids.join(" ")
                );
            }
        } else {
            let ids = remove.iter().map(|id| id.0).collect();
            repo.remove_files(FileType::Snapshot, ids, 4)?;
        }
    }

    if !remove.is_empty() && args.prune {
        if text {
            println!(
                "{} snapshots have been removed, running prune",
                remove.len()
            );
        }
        let ignore: HashSet<SnapshotId> = remove.into_iter().collect();
        return prune::run_with_repo(ctx, &repo, &prune_opts, args.dry_run, &ignore);
    }
    Ok(())
}

/// `None` for an empty list: Go's nil slice, `null` in restic's JSON.
fn nonempty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

/// Every snapshot passing `filter`; unreadable ones are skipped with a
/// warning, as restic does.
fn load_filtered(
    repo: &Repository,
    filter: &SnapshotFilter,
) -> Result<Vec<(SnapshotId, Snapshot)>> {
    let mut out = Vec::new();
    for id in repo.list_ids(FileType::Snapshot)? {
        let id = SnapshotId(id);
        match repo.load_snapshot(&id) {
            Ok(sn) if filter.matches(&sn) => out.push((id, sn)),
            Ok(_) => {}
            Err(e) => eprintln!("could not load snapshot {}: {e}", id.short()),
        }
    }
    Ok(out)
}

/// Snapshots named on the command line (ids, prefixes or `latest`).
fn explicit_snapshots(
    repo: &Repository,
    specs: &[String],
    filter: &SnapshotFilter,
) -> Result<Vec<(SnapshotId, Snapshot)>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let filtered = !filter.hosts.is_empty() || !filter.tags.is_empty() || !filter.paths.is_empty();
    if filtered && !specs.iter().any(|s| s == "latest") {
        eprintln!("Ignoring filters as there are explicit snapshot ids given");
    }
    for spec in specs {
        match cairn_core::tree::select::find_snapshot(repo, spec, filter) {
            Ok((id, sn, _)) => {
                if seen.insert(id) {
                    out.push((id, sn));
                }
            }
            Err(e) => eprintln!("Ignoring {spec:?}: {e}"),
        }
    }
    Ok(out)
}

/// restic's group header, e.g. `snapshots for (host [h], paths [/a]):`.
fn group_header(key: &GroupKey, by: GroupBy) -> String {
    let mut parts = Vec::new();
    if by.host {
        parts.push(format!("host [{}]", key.hostname));
    }
    if by.tags {
        parts.push(format!(
            "tags [{}]",
            key.tags.as_deref().unwrap_or_default().join(", ")
        ));
    }
    if by.paths {
        parts.push(format!(
            "paths [{}]",
            key.paths.as_deref().unwrap_or_default().join(", ")
        ));
    }
    format!("snapshots for ({}):", parts.join(", "))
}

fn print_table(
    list: &[(SnapshotId, Snapshot)],
    rows: &[usize],
    reasons: Option<&[cairn_core::maintenance::forget::KeepReason]>,
    compact: bool,
) -> Result<()> {
    let mut headers = vec!["ID", "Time", "Host", "Tags"];
    if reasons.is_some() {
        headers.push("Reasons");
    }
    if !compact {
        headers.push("Paths");
    }
    let mut table = Table::new(&headers);
    // Oldest first, as restic's tables.
    for (n, &i) in rows.iter().enumerate().rev() {
        let (id, sn) = &list[i];
        let time = sn.time.to_local().format("%Y-%m-%d %H:%M:%S").to_string();
        let mut row = vec![id.short(), time, sn.hostname.clone(), sn.tags.join("\n")];
        if let Some(reasons) = reasons {
            row.push(
                reasons
                    .get(n)
                    .map(|r| r.matches.join("\n"))
                    .unwrap_or_default(),
            );
        }
        if !compact {
            row.push(sn.paths.join("\n"));
        }
        table.row(row);
    }
    let mut out = std::io::stdout().lock();
    table.write(&mut out)?;
    use std::io::Write;
    writeln!(out, "{} snapshots", rows.len())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn restic_short_options_parse() {
        crate::cli::Cli::command().debug_assert();
        let cli = <crate::cli::Cli as clap::Parser>::try_parse_from([
            "cairn",
            "forget",
            "-l",
            "2",
            "-H",
            "3",
            "-d",
            "4",
            "-w",
            "5",
            "-m",
            "6",
            "-y",
            "7",
            "--keep-within",
            "1y2d",
            "--keep-tag",
            "a,b",
            "--host",
            "h",
            "-g",
            "",
            "-n",
            "abc",
        ])
        .unwrap();
        let crate::cmd::Command::Forget(args) = cli.command else {
            panic!("not forget");
        };
        let p = args.policy();
        assert_eq!(
            (p.last, p.hourly, p.daily, p.weekly, p.monthly, p.yearly),
            (2, 3, 4, 5, 6, 7)
        );
        assert_eq!(p.within.to_string(), "1y2d");
        assert_eq!(p.tags, [["a", "b"]]);
        assert!(!args.group_by.any() && args.dry_run);
        assert_eq!(args.ids, ["abc"]);
        assert_eq!(args.keep_within_daily, None);
    }
}
