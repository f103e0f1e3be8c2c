//! `cairn repair index|snapshots|packs` (and restic 0.14's name for the
//! first, `rebuild-index`): front ends to
//! [`cairn_core::maintenance::repair`]. Each takes an exclusive lock.

use std::collections::HashSet;

use anyhow::{bail, Result};
use cairn_core::backend::FileType;
use cairn_core::id::{PackId, SnapshotId};
use cairn_core::maintenance::repair::{self, SnapshotFix, SnapshotRepair};
use cairn_core::repository::LockKind;
use clap::Subcommand;

use crate::cmd::snapshots::FilterArgs;
use crate::context::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand, Debug)]
enum What {
    /// Build a new index from the pack files
    Index(IndexArgs),
    /// Repair snapshots: drop missing file contents, empty unreadable directories
    Snapshots(SnapshotArgs),
    /// Salvage the readable blobs of damaged packs, then remove the packs
    Packs(PackArgs),
}

/// `repair index` / `rebuild-index`.
#[derive(clap::Args, Debug)]
pub struct IndexArgs {
    /// Read all packs, not only those the index does not describe
    #[arg(long)]
    read_all_packs: bool,
}

#[derive(clap::Args, Debug)]
struct SnapshotArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Remove the original snapshots after repairing them
    #[arg(long)]
    forget: bool,
    /// Do not change the repository, just print what would be done
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Snapshot IDs to repair (default: all)
    #[arg(value_name = "snapshot ID")]
    ids: Vec<String>,
}

#[derive(clap::Args, Debug)]
struct PackArgs {
    /// IDs of the damaged packs
    #[arg(value_name = "pack ID", required = true)]
    ids: Vec<String>,
}

fn threads() -> usize {
    crate::cmd::prune::io_threads()
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    match args.what {
        What::Index(a) => run_index(ctx, a),
        What::Snapshots(a) => run_snapshots(ctx, a),
        What::Packs(a) => run_packs(ctx, a),
    }
}

/// `repair index`: also reached as `rebuild-index`.
pub fn run_index(ctx: &Context, args: IndexArgs) -> Result<()> {
    let say = |s: &str| {
        if !ctx.global.quiet {
            println!("{s}");
        }
    };
    let repo = ctx.open()?;
    let _lock = repo.lock(LockKind::Exclusive)?;
    say(if args.read_all_packs {
        "reading all pack headers"
    } else {
        "loading indexes and reading the headers of unindexed packs"
    });
    let report = repair::repair_index(&repo, args.read_all_packs, threads())?;
    for (id, e) in &report.bad_index_files {
        eprintln!("index {}: {e} (replaced)", id.short());
    }
    for id in &report.missing {
        say(&format!(
            "removing missing pack {} from the index",
            id.short()
        ));
    }
    for (id, e) in &report.unreadable {
        eprintln!("pack {id}: unable to read the header, left out of the index: {e}");
    }
    say(&format!(
        "read {} of {} pack headers; saved {} new index files",
        report.headers_read,
        report.packs,
        report.written.len()
    ));
    say("done");
    Ok(())
}

fn run_snapshots(ctx: &Context, args: SnapshotArgs) -> Result<()> {
    let repo = ctx.open()?;
    let _lock = repo.lock(LockKind::Exclusive)?;
    repo.load_index()?;
    let ids: Vec<SnapshotId> =
        cairn_core::tree::select::select_snapshots(&repo, &args.ids, &args.filter.filter())?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
    let (mut changed, mut broken) = (0, 0);
    for id in ids {
        if !ctx.global.quiet {
            println!("snapshot {}", id.short());
        }
        match repair::repair_snapshot(&repo, &id, args.forget, args.dry_run)? {
            SnapshotRepair::Unchanged => {}
            SnapshotRepair::Repaired(new, fixes) => {
                changed += 1;
                for fix in &fixes {
                    match fix {
                        SnapshotFix::RemovedMissingContent { path } => {
                            println!("  file {path:?}: removed missing content")
                        }
                        SnapshotFix::FixedSize { path } => {
                            println!("  file {path:?}: fixed incorrect size")
                        }
                        SnapshotFix::EmptiedDir { path } => {
                            println!("  dir {path:?}: replaced with empty directory")
                        }
                    }
                }
                if !args.dry_run {
                    println!("saved new snapshot {}", new.short());
                }
            }
            SnapshotRepair::RootUnreadable(e) => {
                broken += 1;
                eprintln!("  root tree cannot be loaded: {e}");
                if args.forget && !args.dry_run {
                    repo.backend().remove(FileType::Snapshot, &id.to_hex())?;
                    println!("  removed the snapshot");
                }
            }
        }
    }
    if !ctx.global.quiet {
        if changed == 0 && broken == 0 {
            println!("no snapshots were modified");
        } else if args.dry_run {
            println!("would have modified {changed} snapshots");
        } else {
            println!("modified {changed} snapshots");
        }
    }
    Ok(())
}

fn run_packs(ctx: &Context, args: PackArgs) -> Result<()> {
    let repo = ctx.open()?;
    let _lock = repo.lock(LockKind::Exclusive)?;
    let mut ids = HashSet::new();
    for spec in &args.ids {
        let id = PackId(repo.find_id(FileType::Pack, spec)?);
        ids.insert(id);
    }
    if ids.is_empty() {
        bail!("no pack given");
    }
    let ids: Vec<PackId> = ids.into_iter().collect();
    let report = repair::repair_packs(&repo, &ids, 16 << 20, threads())?;
    for (blob, e) in &report.lost {
        eprintln!("{blob}: unreadable, lost: {e}");
    }
    if !ctx.global.quiet {
        println!(
            "salvaged {} blobs, removed {} packs",
            report.salvaged,
            report.removed.len()
        );
        if !report.lost.is_empty() {
            println!("{} blobs were lost: run `cairn repair snapshots --forget` to repair the snapshots that used them", report.lost.len());
        }
    }
    Ok(())
}
