//! `cairn prune`: remove data no snapshot needs, as restic's `prune`.
//!
//! A front end to [`cairn_core::maintenance::prune`]: exclusive lock, plan,
//! restic's statistics, then (unless `--dry-run`) the changes in their
//! crash-safe order. [`PruneArgs`] is shared with `forget --prune`.

use std::collections::HashSet;

use anyhow::{bail, Context as _, Result};
use cairn_core::id::SnapshotId;
use cairn_core::maintenance::prune::{self, MaxUnused, PruneOptions, PruneStats, Step};
use cairn_core::repository::{LockKind, Repository};

use crate::context::{env, Context};
use crate::output::format_bytes;

/// The options `prune` and `forget --prune` share.
#[derive(clap::Args, Debug, Clone)]
pub struct PruneArgs {
    /// Tolerate given limit of unused data (absolute value in bytes with suffixes k/K, m/M, g/G, t/T, a value in % or the word 'unlimited')
    #[arg(long, value_name = "limit", default_value = "5%")]
    pub max_unused: String,
    /// Maximum size to repack (allowed suffixes: k/K, m/M, g/G, t/T)
    #[arg(long, value_name = "size")]
    pub max_repack_size: Option<String>,
    /// Only repack packs which are cacheable
    #[arg(long)]
    pub repack_cacheable_only: bool,
    /// Repack pack files below 80% of target pack size
    #[arg(long)]
    pub repack_small: bool,
    /// Repack all uncompressed data
    #[arg(long)]
    pub repack_uncompressed: bool,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Do not modify the repository, just print what would be done
    #[arg(short = 'n', long)]
    dry_run: bool,
    #[command(flatten)]
    prune: PruneArgs,
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let opts = prune_options(ctx, &args.prune)?;
    let repo = ctx.open()?;
    check_repo_options(&repo, &opts)?;
    let _lock = repo.lock(LockKind::Exclusive)?;
    run_with_repo(ctx, &repo, &opts, args.dry_run, &HashSet::new())
}

/// Turn the command line into [`PruneOptions`], validating it as restic does.
pub fn prune_options(ctx: &Context, args: &PruneArgs) -> Result<PruneOptions> {
    let max_unused: MaxUnused = args.max_unused.parse()?;
    let max_repack_bytes = args
        .max_repack_size
        .as_deref()
        .map(prune::parse_size)
        .transpose()?;
    if args.repack_uncompressed
        && ctx.compression()? == cairn_core::compression::CompressionMode::Off
    {
        bail!("disabled compression and `--repack-uncompressed` are mutually exclusive");
    }
    let pack_size_mib = match ctx.global.pack_size {
        Some(s) => Some(s),
        None => env("PACK_SIZE")
            .map(|s| s.parse::<usize>())
            .transpose()
            .context("RESTIC_PACK_SIZE")?,
    };
    let threads = io_threads();
    Ok(PruneOptions {
        max_unused,
        max_repack_bytes,
        repack_cacheable_only: args.repack_cacheable_only,
        repack_small: args.repack_small,
        repack_uncompressed: args.repack_uncompressed,
        pack_size: pack_size_mib.map_or(16 << 20, |m| (m as u64) << 20),
        threads,
    })
}

/// Worker threads for I/O-bound maintenance work: `CAIRN_THREADS` if set,
/// else twice the CPU count, at least 8 (reads and writes overlap with
/// waiting for the disk), at most 32.
pub fn io_threads() -> usize {
    if let Some(n) = std::env::var("CAIRN_THREADS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
    {
        return n.clamp(1, 256);
    }
    std::thread::available_parallelism()
        .map(|n| n.get() * 2)
        .unwrap_or(8)
        .clamp(8, 32)
}

/// Checks that need the opened repository.
pub fn check_repo_options(repo: &Repository, opts: &PruneOptions) -> Result<()> {
    if opts.repack_uncompressed && repo.version() < 2 {
        bail!("compression requires at least repository format version 2");
    }
    Ok(())
}

/// Plan, print and (unless `dry_run`) execute a prune on an opened, locked
/// repository, treating the snapshots in `ignore` as gone.
pub fn run_with_repo(
    ctx: &Context,
    repo: &Repository,
    opts: &PruneOptions,
    dry_run: bool,
    ignore: &HashSet<SnapshotId>,
) -> Result<()> {
    let verbose = !ctx.global.quiet && !ctx.json();
    let detail = verbose && ctx.global.verbose >= 1;
    let say = |line: &str| {
        if verbose {
            println!("{line}");
        }
    };
    let plan = prune::plan(repo, opts, ignore, &mut |line| say(line))?;
    if verbose {
        print_stats(&plan.stats, detail);
    }
    if dry_run {
        if detail {
            let list = |ids: &[cairn_core::id::PackId]| {
                ids.iter().map(|i| i.to_hex()).collect::<Vec<_>>().join(" ")
            };
            if !plan.remove_first.is_empty() {
                println!(
                    "Would have removed the following unreferenced packs:\n{{{}}}\n",
                    list(&plan.remove_first)
                );
            }
            println!(
                "Would have repacked and removed the following packs:\n{{{}}}\n",
                list(&plan.repack)
            );
            println!(
                "Would have removed the following no longer used packs:\n{{{}}}\n",
                list(&plan.remove)
            );
        }
        return Ok(());
    }
    prune::execute(repo, opts, plan, &mut |step| match step {
        Step::RemoveUnreferenced(_) => say("deleting unreferenced packs"),
        Step::Repack(_) => say("repacking packs"),
        Step::RebuildIndex => {
            say("rebuilding index");
            say("deleting obsolete index files");
        }
        Step::RemovePacks(n) => say(&format!("removing {n} old packs")),
    })?;
    say("done");
    Ok(())
}

fn percent(part: u64, total: u64) -> String {
    let p = if total == 0 {
        0.0
    } else {
        100.0 * part as f64 / total as f64
    };
    format!("{p:3.2}%")
}

/// restic's statistics block; `detail` adds what restic shows with `-v`.
fn print_stats(s: &PruneStats, detail: bool) {
    let total_blobs = s.used.blobs + s.unused.blobs + s.duplicate.blobs;
    let total_size = s.used.bytes + s.duplicate.bytes + s.unused.bytes + s.unreferenced_bytes;
    let unused_size = s.duplicate.bytes + s.unused.bytes;
    if detail {
        println!(
            "\nused:         {:>10} blobs / {}",
            s.used.blobs,
            format_bytes(s.used.bytes)
        );
        if s.duplicate.blobs > 0 {
            println!(
                "duplicates:   {:>10} blobs / {}",
                s.duplicate.blobs,
                format_bytes(s.duplicate.bytes)
            );
        }
        println!(
            "unused:       {:>10} blobs / {}",
            s.unused.blobs,
            format_bytes(s.unused.bytes)
        );
        if s.unreferenced_bytes > 0 {
            println!(
                "unreferenced:                    {}",
                format_bytes(s.unreferenced_bytes)
            );
        }
        println!(
            "total:        {:>10} blobs / {}",
            total_blobs,
            format_bytes(total_size)
        );
        println!(
            "unused size: {} of total size",
            percent(unused_size, total_size)
        );
    }
    let prune_blobs = s.remove.blobs + s.repack_removed.blobs;
    let prune_size = s.remove.bytes + s.repack_removed.bytes + s.unreferenced_bytes;
    println!(
        "\nto repack:    {:>10} blobs / {}",
        s.repack.blobs,
        format_bytes(s.repack.bytes)
    );
    println!(
        "this removes: {:>10} blobs / {}",
        s.repack_removed.blobs,
        format_bytes(s.repack_removed.bytes)
    );
    println!(
        "to delete:    {:>10} blobs / {}",
        s.remove.blobs,
        format_bytes(s.remove.bytes + s.unreferenced_bytes)
    );
    println!(
        "total prune:  {:>10} blobs / {}",
        prune_blobs,
        format_bytes(prune_size)
    );
    let remaining = total_size.saturating_sub(prune_size);
    println!(
        "remaining:    {:>10} blobs / {}",
        total_blobs.saturating_sub(prune_blobs),
        format_bytes(remaining)
    );
    let unused_after = unused_size.saturating_sub(s.remove.bytes + s.repack_removed.bytes);
    println!(
        "unused size after prune: {} ({} of remaining size)\n",
        format_bytes(unused_after),
        percent(unused_after, remaining)
    );
    if detail {
        println!("totally used packs: {:>10}", s.packs_used);
        println!("partly used packs:  {:>10}", s.packs_partly_used);
        println!("unused packs:       {:>10}\n", s.packs_unused);
        println!("to keep:      {:>10} packs", s.packs_keep);
        println!("to repack:    {:>10} packs", s.packs_repack);
        println!("to delete:    {:>10} packs", s.packs_remove);
        if s.packs_unreferenced > 0 {
            println!(
                "to delete:    {:>10} unreferenced packs\n",
                s.packs_unreferenced
            );
        }
    }
}
