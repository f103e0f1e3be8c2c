//! `cairn rewrite`: remove files from existing snapshots, as restic's
//! `rewrite`. Each snapshot with an excluded path is saved anew (same time,
//! host, paths and tags, `original` set) with the matching files and
//! directories left out; `--forget` removes the old snapshot afterwards.
//! The data itself goes away with the next `prune`.

use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use cairn_core::filter::{read_pattern_file, PatternSet};
use cairn_core::maintenance::rewrite::{save_rewritten, TreeRewriter};
use cairn_core::repository::LockKind;

use crate::cmd::snapshots::FilterArgs;
use crate::context::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    filter: FilterArgs,
    /// Exclude a pattern (can be specified multiple times)
    #[arg(short = 'e', long = "exclude", value_name = "pattern")]
    excludes: Vec<String>,
    /// Same as --exclude pattern but ignores the casing of filenames
    #[arg(long = "iexclude", value_name = "pattern")]
    iexcludes: Vec<String>,
    /// Read exclude patterns from a file (can be specified multiple times)
    #[arg(long = "exclude-file", value_name = "file")]
    exclude_files: Vec<PathBuf>,
    /// Same as --exclude-file but ignores casing of filenames in patterns
    #[arg(long = "iexclude-file", value_name = "file")]
    iexclude_files: Vec<PathBuf>,
    /// Remove the old snapshots after creating the new ones
    #[arg(long)]
    forget: bool,
    /// Do not do anything, just print what would be done
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Snapshot IDs to rewrite (default: all matching the filters)
    #[arg(value_name = "snapshot ID")]
    ids: Vec<String>,
}

fn patterns(args: &Args) -> Result<PatternSet> {
    let mut excludes = args.excludes.clone();
    for f in &args.exclude_files {
        excludes.extend(read_pattern_file(f).context("--exclude-file")?);
    }
    let mut iexcludes = args.iexcludes.clone();
    for f in &args.iexclude_files {
        iexcludes.extend(read_pattern_file(f).context("--iexclude-file")?);
    }
    let mut set = PatternSet::new(&excludes, false).context("--exclude")?;
    set.extend(PatternSet::new(&iexcludes, true).context("--iexclude")?);
    Ok(set)
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let set = patterns(&args)?;
    if set.is_empty() {
        bail!("Nothing to do: no excludes provided");
    }
    let repo = ctx.open()?;
    let _lock = repo.lock(if args.dry_run {
        LockKind::Shared
    } else {
        LockKind::Exclusive
    })?;
    repo.load_index()?;
    let filter = args.filter.filter();
    let targets = cairn_core::tree::select::select_snapshots(&repo, &args.ids, &filter)?;
    let mut changed = 0;
    for (id, sn) in targets {
        if !ctx.global.quiet {
            println!("\nsnapshot {} of {:?} at {}", id.short(), sn.paths, sn.time);
        }
        let mut excluded = Vec::new();
        if args.dry_run {
            // Only look: no tree is written.
            cairn_core::tree::walk(
                &repo,
                &sn.tree,
                &mut |entry| {
                    let path = format!("/{}", entry.path.display());
                    let hit = set.matches(&path);
                    if hit {
                        excluded.push(path);
                    }
                    Ok(!hit)
                },
                &mut |_, _, _| {},
            )?;
            for path in &excluded {
                println!("excluding {path}");
            }
            if excluded.is_empty() {
                println!("snapshot {} not modified", id.short());
            } else {
                changed += 1;
                println!("would save new snapshot");
            }
            continue;
        }
        let new_root = {
            let mut rw = TreeRewriter::new(
                &repo,
                Box::new(|node, path| {
                    if set.matches(path) {
                        excluded.push(path.to_string());
                        None
                    } else {
                        Some(node)
                    }
                }),
                Box::new(|_, _, e| Err(e)),
            );
            rw.rewrite(&sn.tree, "/")?
        };
        for path in &excluded {
            if ctx.global.verbose >= 1 {
                println!("excluding {path}");
            }
        }
        if new_root == sn.tree {
            if !ctx.global.quiet {
                println!("snapshot {} not modified", id.short());
            }
            continue;
        }
        changed += 1;
        let new = save_rewritten(&repo, &id, sn, new_root, args.forget)?;
        if !ctx.global.quiet {
            println!("saved new snapshot {}", new.short());
            if args.forget {
                println!("removed old snapshot {}", id.short());
            }
        }
    }
    if !ctx.global.quiet {
        if args.dry_run {
            println!("\nwould have modified {changed} snapshots");
        } else {
            println!("\nmodified {changed} snapshots");
        }
    }
    Ok(())
}
