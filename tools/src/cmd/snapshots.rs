//! `cairn snapshots`: list snapshots as a table or as restic's JSON.

use anyhow::Result;
use cairn_core::format::snapshot::Snapshot;
use cairn_core::id::SnapshotId;
use cairn_core::tree::select::{filter_snapshots, SnapshotFilter};

use crate::context::Context;
use crate::output::{print_json, Table};

/// `--host/--tag/--path`, shared by every command that selects snapshots.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Only consider snapshots for this host (can be specified multiple times)
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Only consider snapshots including tag[,tag,...] (can be specified multiple times)
    #[arg(long = "tag", value_name = "TAGLIST")]
    pub tags: Vec<String>,
    /// Only consider snapshots including this (absolute) path (can be specified multiple times)
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<String>,
}

impl FilterArgs {
    pub fn filter(&self) -> SnapshotFilter {
        SnapshotFilter {
            hosts: self.hosts.clone(),
            tags: self
                .tags
                .iter()
                .map(|t| cairn_core::format::snapshot::parse_tag_list(t))
                .collect(),
            paths: self.paths.clone(),
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    filter: FilterArgs,
    /// Only show the last n snapshots for each host and path
    #[arg(long, value_name = "N")]
    latest: Option<usize>,
    /// Use compact output format
    #[arg(short, long)]
    compact: bool,
    /// Snapshot IDs to show (default: all)
    #[arg(value_name = "ID")]
    ids: Vec<String>,
}

/// A snapshot as restic's `--json` output shows it: the stored fields plus
/// `id` and `short_id`.
pub fn snapshot_json(id: &SnapshotId, sn: &Snapshot) -> Result<serde_json::Value> {
    let mut v = serde_json::to_value(sn)?;
    if let Some(map) = v.as_object_mut() {
        map.insert("id".into(), serde_json::Value::String(id.to_hex()));
        map.insert("short_id".into(), serde_json::Value::String(id.short()));
    }
    Ok(v)
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let opened = ctx.open_locked(cairn_core::repository::LockKind::Shared)?;
    let repo = &opened.repo;
    let mut list = filter_snapshots(repo, &args.filter.filter())?;
    if !args.ids.is_empty() {
        list.retain(|(id, _)| args.ids.iter().any(|p| id.0.has_prefix(p)));
    }
    if let Some(n) = args.latest {
        let mut kept = Vec::new();
        let mut groups: std::collections::BTreeMap<(String, Vec<String>), usize> =
            Default::default();
        for (id, sn) in list.into_iter().rev() {
            let mut paths = sn.paths.clone();
            paths.sort();
            let count = groups.entry((sn.hostname.clone(), paths)).or_default();
            if *count < n {
                *count += 1;
                kept.push((id, sn));
            }
        }
        kept.reverse();
        list = kept;
    }
    if ctx.json() {
        let values = list
            .iter()
            .map(|(id, sn)| snapshot_json(id, sn))
            .collect::<Result<Vec<_>>>()?;
        return print_json(&values);
    }
    let mut table = if args.compact {
        Table::new(&["ID", "Time", "Host", "Tags"])
    } else {
        Table::new(&["ID", "Time", "Host", "Tags", "Paths"])
    };
    for (id, sn) in &list {
        let time = sn.time.to_local().format("%Y-%m-%d %H:%M:%S").to_string();
        let mut row = vec![id.short(), time, sn.hostname.clone(), sn.tags.join(",")];
        if !args.compact {
            row.push(sn.paths.join("\n"));
        }
        table.row(row);
    }
    let mut out = std::io::stdout().lock();
    table.write(&mut out)?;
    use std::io::Write;
    writeln!(out, "{} snapshots", list.len())?;
    Ok(())
}
