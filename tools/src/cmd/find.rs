//! `cairn find`: find files and directories by pattern (with `-O`/`-N`
//! modification-time bounds), or blobs, trees and packs by id, in all
//! snapshots or those given with `-s`, with restic 0.14's text and JSON
//! output (see `cairn_core::find`).

use anyhow::{bail, Result};
use cairn_core::filter::PatternSet;
use cairn_core::find::{find_ids, find_paths, Hit, IdQuery, PathQuery};
use cairn_core::format::snapshot::Snapshot;
use cairn_core::format::time::GoTime;
use cairn_core::format::tree::Node;
use cairn_core::id::SnapshotId;
use cairn_core::repository::Repository;
use cairn_core::tree::select::{filter_snapshots, find_snapshot};
use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone};
use serde_json::{json, Map, Value};

use crate::cmd::ls::{format_node, go_mode_string};
use crate::cmd::snapshots::FilterArgs;
use crate::context::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Oldest modification date/time
    #[arg(short = 'O', long, value_name = "TIME")]
    oldest: Option<String>,
    /// Newest modification date/time
    #[arg(short = 'N', long, value_name = "TIME")]
    newest: Option<String>,
    /// Snapshot id to search in (can be given multiple times)
    #[arg(short = 's', long = "snapshot", value_name = "ID")]
    snapshots: Vec<String>,
    /// Pattern is a blob-ID
    #[arg(long)]
    blob: bool,
    /// Pattern is a tree-ID
    #[arg(long)]
    tree: bool,
    /// Pattern is a pack-ID
    #[arg(long)]
    pack: bool,
    /// Display the pack-ID the blobs belong to (with --blob or --tree)
    #[arg(long = "show-pack-id")]
    show_pack_id: bool,
    /// Ignore case for pattern
    #[arg(short = 'i', long = "ignore-case")]
    ignore_case: bool,
    /// Use a long listing format showing size and mode
    #[arg(short, long)]
    long: bool,
    #[command(flatten)]
    filter: FilterArgs,
    /// Patterns (or ids with --blob, --tree, --pack)
    #[arg(value_name = "PATTERN", required = true)]
    patterns: Vec<String>,
}

/// restic's `find` time formats, in local time unless they carry a zone.
fn parse_time(s: &str) -> Result<GoTime> {
    let local = |naive: NaiveDateTime| Local.from_local_datetime(&naive).earliest();
    let with_zone = ["%Y-%m-%d %H:%M:%S %z", "%d.%m.%Y %H:%M:%S %z"];
    for f in with_zone {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Ok(GoTime::from_unix_utc(t.timestamp(), 0));
        }
    }
    let datetimes = [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%d.%m.%Y %H:%M:%S",
        "%d.%m.%Y %H:%M",
    ];
    for f in datetimes {
        if let Some(t) = NaiveDateTime::parse_from_str(s, f).ok().and_then(local) {
            return Ok(GoTime::from_unix_utc(t.timestamp(), 0));
        }
    }
    for f in ["%Y-%m-%d", "%d.%m.%Y"] {
        if let Some(t) = NaiveDate::parse_from_str(s, f)
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(local)
        {
            return Ok(GoTime::from_unix_utc(t.timestamp(), 0));
        }
    }
    bail!("unable to parse time: {s:?}")
}

/// The snapshots to search: those given, else all passing the filter.
fn snapshots(repo: &Repository, args: &Args) -> Result<Vec<(SnapshotId, Snapshot)>> {
    let filter = args.filter.filter();
    if args.snapshots.is_empty() {
        return Ok(filter_snapshots(repo, &filter)?);
    }
    args.snapshots
        .iter()
        .map(|s| {
            let (id, sn, _) = find_snapshot(repo, s, &filter)?;
            Ok((id, sn))
        })
        .collect()
}

/// restic's find JSON for a node: its tree JSON without name, inode,
/// extended attributes, device, content and subtree, plus path and
/// permissions.
fn node_json(path: &str, node: &Node) -> Value {
    let mut map = Map::new();
    map.insert("path".into(), json!(path));
    map.insert("permissions".into(), json!(go_mode_string(node.mode)));
    if let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&node.to_json()) {
        for (k, v) in fields {
            let dropped = [
                "name",
                "inode",
                "extended_attributes",
                "device",
                "content",
                "subtree",
            ];
            if !dropped.contains(&k.as_str()) {
                map.insert(k, v);
            }
        }
    }
    Value::Object(map)
}

fn local_time(sn: &Snapshot) -> String {
    sn.time
        .to_utc()
        .with_timezone(&Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    if [args.blob, args.tree, args.pack]
        .iter()
        .filter(|b| **b)
        .count()
        > 1
    {
        bail!("cannot have several ID types");
    }
    let oldest = args.oldest.as_deref().map(parse_time).transpose()?;
    let newest = args.newest.as_deref().map(parse_time).transpose()?;
    let opened = ctx.open_indexed()?;
    let repo = &opened.repo;
    let json = ctx.json();
    let id_query = if args.blob {
        Some(IdQuery::blobs(&args.patterns))
    } else if args.tree {
        Some(IdQuery::trees(&args.patterns))
    } else if args.pack {
        Some(IdQuery::packs(repo, &args.patterns)?)
    } else {
        None
    };
    let mut skip = |s: String| eprintln!("skipping {s}");
    let mut results: Vec<Value> = Vec::new();
    match &id_query {
        Some(query) => {
            for (id, sn) in snapshots(repo, &args)? {
                find_ids(
                    repo,
                    &sn.tree,
                    query,
                    &mut |hit| print_hit(json, &hit, &id, &sn, &mut results),
                    &mut skip,
                )?;
            }
        }
        None => {
            let query = PathQuery {
                patterns: PatternSet::new(&args.patterns, args.ignore_case)?,
                oldest,
                newest,
            };
            for (id, sn) in snapshots(repo, &args)? {
                let mut matches = Vec::new();
                let mut first = true;
                find_paths(
                    repo,
                    &sn.tree,
                    &query,
                    &mut |path, node| {
                        if json {
                            matches.push(node_json(path, node));
                            return;
                        }
                        if first && !ctx.global.quiet {
                            if !results.is_empty() {
                                println!();
                            }
                            println!(
                                "Found matching entries in snapshot {} from {}",
                                id.short(),
                                local_time(&sn)
                            );
                            results.push(Value::Null);
                        }
                        first = false;
                        println!("{}", format_node(path, node, args.long));
                    },
                    &mut skip,
                )?;
                if json && !matches.is_empty() {
                    results.push(json!({
                        "matches": matches,
                        "hits": matches.len(),
                        "snapshot": id.to_hex(),
                    }));
                }
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string(&results)?);
    }
    if args.show_pack_id {
        if let Some(query) = &id_query {
            show_packs(repo, query);
        }
    }
    Ok(())
}

fn print_hit(json: bool, hit: &Hit, id: &SnapshotId, sn: &Snapshot, results: &mut Vec<Value>) {
    let (kind, object, path, parent) = match hit {
        Hit::Blob { id, path, parent } => ("blob", id.to_hex(), path, Some(parent.to_hex())),
        Hit::Tree { id, path } => ("tree", id.to_hex(), path, None),
    };
    if json {
        let mut v = json!({
            "object_type": kind,
            "id": object,
            "path": path,
            "snapshot": id.to_hex(),
            "time": sn.time,
        });
        if let Some(parent) = parent {
            v["parent_tree"] = json!(parent);
        }
        results.push(v);
        return;
    }
    println!("Found {kind} {object}");
    match parent {
        Some(parent) => {
            println!(" ... in file {path}");
            println!("     (tree {parent})");
        }
        None => println!(" ... path {path}"),
    }
    println!(" ... in snapshot {} ({})", id.short(), local_time(sn));
}

/// `--show-pack-id`: the pack of every id asked for.
fn show_packs(repo: &Repository, query: &IdQuery) {
    use cairn_core::blob::BlobType;
    let (blobs, trees) = query.ids();
    let index = repo.index();
    for (ids, tpe) in [(blobs, BlobType::Data), (trees, BlobType::Tree)] {
        for wanted in ids {
            let found = index
                .iter()
                .find(|(h, _)| h.tpe == tpe && (h.id.to_hex() == wanted || h.id.short() == wanted));
            match found {
                Some((handle, entry)) => println!(
                    "Object belongs to pack {}\n ... Pack {}: {} at offset {}, length {}",
                    entry.pack,
                    entry.pack.short(),
                    handle,
                    entry.offset,
                    entry.length
                ),
                None => println!("Object {wanted} not found in the index"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_restic_formats() {
        let utc = parse_time("2020-09-13 12:26:40 +0000").unwrap();
        assert_eq!(utc.unix(), (1_600_000_000, 0));
        for s in ["2020-09-13", "2020-09-13 12:26", "13.09.2020 12:26:40"] {
            assert!(parse_time(s).is_ok(), "{s}");
        }
        assert!(parse_time("yesterday").is_err());
    }
}
