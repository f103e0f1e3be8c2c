//! `cairn check`: verify the repository, as restic 0.14's `check` does.
//!
//! A thin front end to [`cairn_core::maintenance::check`]: it takes an
//! exclusive lock (unless `--no-lock`), runs the check and prints restic's
//! lines as events arrive: progress and hints on stdout (progress only
//! without `--quiet`), each error as one line on stderr. Any error ends
//! with "Fatal: repository contains errors" and exit status 1. The
//! repository is never modified (apart from the lock file).
//!
//! Unlike restic 0.14, which ignores the deprecated `--check-unused`, cairn
//! lists unused blobs with it, as hints that do not fail the check.

use anyhow::{bail, Result};
use cairn_core::maintenance::check::{self, CheckOptions, Event, Finding, Phase, ReadDataSubset};
use cairn_core::repository::LockKind;

use crate::context::Context;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Read all data blobs
    #[arg(long)]
    read_data: bool,

    /// Read a subset of data packs, specified as 'n/t' for specific part, or
    /// either 'x%' or 'x.y%' or a size in bytes with suffixes k/K, m/M, g/G,
    /// t/T for a random subset
    #[arg(long, value_name = "subset", conflicts_with = "read_data")]
    read_data_subset: Option<ReadDataSubset>,

    /// Find unused blobs (listed for information, not counted as errors)
    #[arg(long)]
    check_unused: bool,

    /// Use the cache (accepted for compatibility; cairn keeps no cache)
    #[arg(long)]
    with_cache: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let verbose = !ctx.global.quiet;
    let repo = ctx.open()?;
    let _lock = if ctx.global.no_lock {
        None
    } else {
        if verbose {
            println!("create exclusive lock for repository");
        }
        Some(repo.lock(LockKind::Exclusive)?)
    };

    let read_data = if args.read_data {
        Some(ReadDataSubset::All)
    } else {
        args.read_data_subset
    };
    let mut printer = Printer {
        verbose,
        subset: read_data.clone(),
        suggest_rebuild_index: false,
        mixed_packs: false,
        unreferenced_packs: 0,
    };
    let opts = CheckOptions {
        read_data,
        check_unused: args.check_unused,
        threads: crate::cmd::prune::io_threads(),
    };
    let report = check::check(&repo, &opts, &mut |event| printer.event(event))?;
    if !report.complete {
        bail!("LoadIndex returned errors");
    }
    if report.errors().next().is_some() {
        bail!("repository contains errors");
    }
    if verbose {
        println!("no errors were found");
    }
    Ok(())
}

/// Prints events as restic words them, remembering what the closing notes
/// of a phase need.
struct Printer {
    verbose: bool,
    subset: Option<ReadDataSubset>,
    suggest_rebuild_index: bool,
    mixed_packs: bool,
    unreferenced_packs: usize,
}

impl Printer {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(phase) => self.start(phase),
            Event::Finding(finding) => self.finding(finding),
            Event::Done(Phase::LoadIndex) => {
                if self.suggest_rebuild_index {
                    println!(
                        "This is non-critical, you can run `cairn repair index' to correct this"
                    );
                }
                if self.mixed_packs {
                    println!("Mixed packs with tree and data blobs are non-critical, you can run `cairn prune` to correct this.");
                }
            }
            Event::Done(Phase::CheckPacks) => {
                if self.unreferenced_packs > 0 {
                    self.say(&format!(
                        "{} additional files were found in the repo, which likely contain duplicate data.\n\
                         This is non-critical, you can run `cairn prune` to correct this.",
                        self.unreferenced_packs
                    ));
                }
            }
            Event::Done(_) => {}
        }
    }

    fn start(&self, phase: Phase) {
        let line = match phase {
            Phase::LoadIndex => "load indexes".to_string(),
            Phase::CheckPacks => "check all packs".to_string(),
            Phase::CheckStructure => "check snapshots, trees and blobs".to_string(),
            Phase::ReadData { packs, total } => match &self.subset {
                Some(ReadDataSubset::Bucket { n, total: groups }) => format!(
                    "read group #{n} of {packs} data packs (out of total {total} packs in {groups} groups)"
                ),
                Some(ReadDataSubset::Percent(p)) => format!("read {p:.1}% of data packs"),
                Some(ReadDataSubset::Bytes(b)) => format!("read {b} bytes of data packs"),
                Some(ReadDataSubset::All) | None => "read all data".to_string(),
            },
        };
        self.say(&line);
    }

    fn finding(&mut self, finding: &Finding) {
        match finding {
            Finding::OldIndexFormat { .. } | Finding::DuplicatePack { .. } => {
                self.suggest_rebuild_index = true;
                println!("{finding}");
            }
            Finding::MixedPack { .. } => {
                self.mixed_packs = true;
                println!("{finding}");
            }
            Finding::UnreferencedPack { .. } => {
                self.unreferenced_packs += 1;
                self.say(&finding.to_string());
            }
            Finding::IndexUnreadable { .. }
            | Finding::SnapshotUnreadable { .. }
            | Finding::TreeUnreadable { .. }
            | Finding::Tree { .. } => eprintln!("error: {finding}"),
            _ if finding.is_error() => eprintln!("{finding}"),
            _ => self.say(&finding.to_string()),
        }
    }

    fn say(&self, line: &str) {
        if self.verbose {
            println!("{line}");
        }
    }
}
