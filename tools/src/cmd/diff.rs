//! `cairn diff`: show differences between two snapshots, with restic's
//! text and JSON output (see `cairn_core::diff`).

use anyhow::Result;
use cairn_core::diff::{self, Change, DiffStat};
use cairn_core::tree::select::{find_snapshot, SnapshotFilter};
use serde::Serialize;

use crate::context::Context;
use crate::output::{format_bytes, print_json};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print changes in metadata
    #[arg(long)]
    metadata: bool,
    /// The snapshot to compare from: an ID, a unique ID prefix, or "latest"
    #[arg(value_name = "SNAPSHOT-ID")]
    first: String,
    /// The snapshot to compare to
    #[arg(value_name = "SNAPSHOT-ID")]
    second: String,
}

/// restic's JSON change line.
#[derive(Serialize)]
struct ChangeLine<'a> {
    message_type: &'static str,
    path: &'a str,
    modifier: &'a str,
}

/// restic's JSON statistics line.
#[derive(Serialize)]
struct StatisticsLine<'a> {
    message_type: &'static str,
    source_snapshot: &'a str,
    target_snapshot: &'a str,
    changed_files: u64,
    added: DiffStat,
    removed: DiffStat,
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let opened = ctx.open_indexed()?;
    let repo = &opened.repo;
    let filter = SnapshotFilter::default();
    let (id1, sn1, sub1) = find_snapshot(repo, &args.first, &filter)?;
    let (id2, sn2, sub2) = find_snapshot(repo, &args.second, &filter)?;
    let tree1 = match sub1.as_deref() {
        None => sn1.tree,
        Some(p) => crate::cmd::restore::subfolder_tree(repo, &id1, &sn1.tree, p)?,
    };
    let tree2 = match sub2.as_deref() {
        None => sn2.tree,
        Some(p) => crate::cmd::restore::subfolder_tree(repo, &id2, &sn2.tree, p)?,
    };
    let json = ctx.json();
    let quiet = ctx.global.quiet;
    if !json && !quiet {
        println!("comparing snapshot {} to {}:\n", id1.short(), id2.short());
    }
    let mut print = |c: Change| {
        if quiet {
            return;
        }
        if json {
            let _ = print_json(&ChangeLine {
                message_type: "change",
                path: &c.path,
                modifier: &c.modifier,
            });
        } else {
            println!("{:<5}{}", c.modifier, c.path);
        }
    };
    let stats = diff::diff(repo, &tree1, &tree2, args.metadata, &mut print, &mut |w| {
        eprintln!("{w}")
    })?;
    if json {
        print_json(&StatisticsLine {
            message_type: "statistics",
            source_snapshot: &args.first,
            target_snapshot: &args.second,
            changed_files: stats.changed_files,
            added: stats.added,
            removed: stats.removed,
        })?;
    } else {
        let (a, r) = (&stats.added, &stats.removed);
        println!();
        println!(
            "Files:       {:>5} new, {:>5} removed, {:>5} changed",
            a.files, r.files, stats.changed_files
        );
        println!("Dirs:        {:>5} new, {:>5} removed", a.dirs, r.dirs);
        println!("Others:      {:>5} new, {:>5} removed", a.others, r.others);
        println!(
            "Data Blobs:  {:>5} new, {:>5} removed",
            a.data_blobs, r.data_blobs
        );
        println!(
            "Tree Blobs:  {:>5} new, {:>5} removed",
            a.tree_blobs, r.tree_blobs
        );
        println!("  Added:   {:<5}", format_bytes(a.bytes));
        println!("  Removed: {:<5}", format_bytes(r.bytes));
    }
    Ok(())
}
