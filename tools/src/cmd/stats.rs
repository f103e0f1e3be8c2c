//! `cairn stats`: count files, sizes and blobs of snapshots in restic's
//! four modes, with restic 0.14's output (see `cairn_core::stats`).

use anyhow::Result;
use cairn_core::stats::{Counter, Mode};
use cairn_core::tree::select::{filter_snapshots, find_snapshot};

use crate::cmd::snapshots::FilterArgs;
use crate::context::Context;
use crate::output::{format_bytes, print_json};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Counting mode: restore-size (default), files-by-contents, blobs-per-file or raw-data
    #[arg(long, value_name = "MODE", default_value = "restore-size")]
    mode: String,
    #[command(flatten)]
    filter: FilterArgs,
    /// Snapshots to count (default: all that pass the filter)
    #[arg(value_name = "SNAPSHOT-ID")]
    snapshots: Vec<String>,
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let mode: Mode = args.mode.parse()?;
    let opened = ctx.open_indexed()?;
    let repo = &opened.repo;
    let json = ctx.json();
    if !json && !ctx.global.quiet {
        println!("scanning...");
    }
    let filter = args.filter.filter();
    let snapshots = if args.snapshots.is_empty() {
        filter_snapshots(repo, &filter)?
    } else {
        args.snapshots
            .iter()
            .map(|s| find_snapshot(repo, s, &filter).map(|(id, sn, _)| (id, sn)))
            .collect::<cairn_core::Result<Vec<_>>>()?
    };
    let mut counter = Counter::new(mode);
    for (_, sn) in &snapshots {
        counter.add_snapshot(repo, &sn.tree, &mut |s| eprintln!("skipping {s}"))?;
    }
    let stats = counter.finish(repo)?;
    if json {
        return print_json(&stats);
    }
    println!("Stats in {mode} mode:");
    println!("Snapshots processed:   {}", stats.snapshots_count);
    if stats.total_blob_count > 0 {
        println!("   Total Blob Count:   {}", stats.total_blob_count);
    }
    if stats.total_file_count > 0 {
        println!("   Total File Count:   {}", stats.total_file_count);
    }
    println!(
        "         Total Size:   {:<5}",
        format_bytes(stats.total_size)
    );
    Ok(())
}
