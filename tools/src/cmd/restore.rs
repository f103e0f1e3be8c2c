//! `cairn restore`: extract a snapshot (or one folder of it) into a target
//! directory, with restic's options and output.
//!
//! Problems with single files are printed as restic does (`ignoring error
//! for /path: …`, or JSON error lines with `--json`) and the restore goes
//! on; if there were any, the command ends with exit status 3. The
//! repository is opened with a shared lock and only read.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use cairn_core::filter::{read_pattern_file, PatternSet};
use cairn_core::restorer::{self, Problem, RestoreStats, Selection};
use cairn_core::tree::select::find_snapshot;
use serde::Serialize;

use crate::cmd::ls::snapshot_string;
use crate::cmd::snapshots::FilterArgs;
use crate::context::Context;
use crate::output::{format_bytes, print_json};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory to extract data to
    #[arg(short = 't', long, value_name = "DIR")]
    target: PathBuf,
    /// Exclude a pattern (can be specified multiple times)
    #[arg(short = 'e', long = "exclude", value_name = "PATTERN")]
    exclude: Vec<String>,
    /// Same as --exclude pattern but ignores the casing of filenames
    #[arg(long = "iexclude", value_name = "PATTERN")]
    iexclude: Vec<String>,
    /// Read exclude patterns from a file (can be specified multiple times)
    #[arg(long = "exclude-file", value_name = "FILE")]
    exclude_file: Vec<PathBuf>,
    /// Same as --exclude-file but ignores casing of filenames in patterns
    #[arg(long = "iexclude-file", value_name = "FILE")]
    iexclude_file: Vec<PathBuf>,
    /// Include a pattern, exclude everything else (can be specified multiple times)
    #[arg(short = 'i', long = "include", value_name = "PATTERN")]
    include: Vec<String>,
    /// Same as --include pattern but ignores the casing of filenames
    #[arg(long = "iinclude", value_name = "PATTERN")]
    iinclude: Vec<String>,
    /// Read include patterns from a file (can be specified multiple times)
    #[arg(long = "include-file", value_name = "FILE")]
    include_file: Vec<PathBuf>,
    /// Same as --include-file but ignores casing of filenames in patterns
    #[arg(long = "iinclude-file", value_name = "FILE")]
    iinclude_file: Vec<PathBuf>,
    /// Verify restored files content
    #[arg(long)]
    verify: bool,
    /// Do not write any data, just show what would be done
    #[arg(long = "dry-run")]
    dry_run: bool,
    #[command(flatten)]
    filter: FilterArgs,
    /// Snapshot to restore: an ID, a unique ID prefix, or "latest";
    /// ID:subfolder restores only that folder's contents
    #[arg(value_name = "SNAPSHOT")]
    snapshot: String,
}

/// Every pattern of one kind, in order: the options first, then the
/// files. All `--include`s form ONE pattern set (so a later `!pattern`
/// cancels an earlier one); the case-insensitive ones a second set.
fn pattern_set(
    plain: &[String],
    plain_files: &[PathBuf],
    insensitive: &[String],
    insensitive_files: &[PathBuf],
) -> Result<PatternSet> {
    let gather = |patterns: &[String], files: &[PathBuf]| -> Result<Vec<String>> {
        let mut all = patterns.to_vec();
        for file in files {
            all.extend(read_pattern_file(file)?);
        }
        Ok(all)
    };
    let mut set = PatternSet::new(&gather(plain, plain_files)?, false)?;
    set.extend(PatternSet::new(
        &gather(insensitive, insensitive_files)?,
        true,
    )?);
    Ok(set)
}

/// restic's JSON summary line (zero fields are left out, as restic does).
#[derive(Serialize)]
struct Summary {
    message_type: &'static str,
    #[serde(skip_serializing_if = "is_zero")]
    seconds_elapsed: u64,
    #[serde(skip_serializing_if = "is_zero")]
    total_files: u64,
    #[serde(skip_serializing_if = "is_zero")]
    files_restored: u64,
    #[serde(skip_serializing_if = "is_zero")]
    total_bytes: u64,
    #[serde(skip_serializing_if = "is_zero")]
    bytes_restored: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// restic's JSON error line.
#[derive(Serialize)]
struct ErrorLine<'a> {
    message_type: &'static str,
    error: ErrorMessage<'a>,
    during: &'static str,
    item: &'a str,
}

#[derive(Serialize)]
struct ErrorMessage<'a> {
    message: &'a str,
}

/// Print one problem on stderr.
fn print_problem(json: bool, during: &'static str, p: &Problem) {
    if json {
        let line = ErrorLine {
            message_type: "error",
            error: ErrorMessage {
                message: &p.message,
            },
            during,
            item: &p.location,
        };
        if let Ok(s) = serde_json::to_string(&line) {
            eprintln!("{s}");
        }
    } else {
        eprintln!("ignoring error for {}: {}", p.location, p.message);
    }
}

/// restic's `m:ss` / `h:mm:ss`.
fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s / 3600 {
        0 => format!("{}:{:02}", s / 60, s % 60),
        h => format!("{h}:{:02}:{:02}", (s / 60) % 60, s % 60),
    }
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    if args.target.as_os_str().is_empty() {
        bail!("please specify a directory to restore to (--target)");
    }
    let include = pattern_set(
        &args.include,
        &args.include_file,
        &args.iinclude,
        &args.iinclude_file,
    )?;
    let exclude = pattern_set(
        &args.exclude,
        &args.exclude_file,
        &args.iexclude,
        &args.iexclude_file,
    )?;
    let selection = Selection::new(include, exclude)?;
    let json = ctx.json();
    let chatty = !ctx.global.quiet && !json;

    let opened = ctx.open_indexed()?;
    let repo = &opened.repo;
    let (id, sn, sub) = find_snapshot(repo, &args.snapshot, &args.filter.filter())?;
    let root = match sub.as_deref() {
        None | Some("") | Some("/") => sn.tree,
        Some(path) => match cairn_core::tree::resolve_path(repo, &sn.tree, path)? {
            Some(node) if node.is_dir() => node
                .subtree
                .with_context(|| format!("folder {path:?} has no subtree"))?,
            _ => bail!("{path:?} is not a folder in snapshot {}", id.short()),
        },
    };
    if chatty {
        println!(
            "restoring {} to {}",
            snapshot_string(&id, &sn),
            args.target.display()
        );
    }

    let start = Instant::now();
    let mut errors = 0u64;
    let mut report = |p: Problem| {
        errors += 1;
        print_problem(json, "restore", &p);
    };
    let plan = restorer::plan(repo, &root, &selection, &mut report)?;
    if args.dry_run {
        if chatty {
            if ctx.global.verbose > 0 {
                for i in 0..plan.items.len() {
                    println!("would restore {}", plan.location(i));
                }
            }
            println!(
                "Summary: Would restore {} files/dirs ({})",
                plan.items.len(),
                format_bytes(plan.total_bytes())
            );
        }
        return finish(errors);
    }
    let stats = restorer::restore(repo, &plan, &args.target, &mut report)?;
    print_summary(ctx, &stats, start.elapsed())?;
    finish(errors)?;

    if args.verify {
        if chatty {
            println!("verifying files in {}", args.target.display());
        }
        let start = Instant::now();
        let mut verify_errors = 0u64;
        let checked = restorer::verify(&plan, &args.target, &mut |p| {
            verify_errors += 1;
            print_problem(json, "verify", &p);
        })?;
        finish(verify_errors)?;
        if chatty {
            println!(
                "finished verifying {} files in {} (took {:.3}s)",
                checked.files,
                args.target.display(),
                start.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

fn print_summary(ctx: &Context, stats: &RestoreStats, elapsed: Duration) -> Result<()> {
    if ctx.json() {
        return print_json(&Summary {
            message_type: "summary",
            seconds_elapsed: elapsed.as_secs(),
            total_files: stats.total_files,
            files_restored: stats.files_restored,
            total_bytes: stats.total_bytes,
            bytes_restored: stats.bytes_restored,
        });
    }
    if ctx.global.quiet {
        return Ok(());
    }
    if stats.files_restored == stats.total_files && stats.bytes_restored == stats.total_bytes {
        println!(
            "Summary: Restored {} files/dirs ({}) in {}",
            stats.total_files,
            format_bytes(stats.total_bytes),
            format_duration(elapsed)
        );
    } else {
        println!(
            "Summary: Restored {} / {} files/dirs ({} / {}) in {}",
            stats.files_restored,
            stats.total_files,
            format_bytes(stats.bytes_restored),
            format_bytes(stats.total_bytes),
            format_duration(elapsed)
        );
    }
    Ok(())
}

/// Exit status 3 ("finished, but incomplete") after reported errors.
fn finish(errors: u64) -> Result<()> {
    if errors > 0 {
        eprintln!("There were {errors} errors");
        return Err(crate::ExitStatus(crate::EXIT_INCOMPLETE).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_restic() {
        assert_eq!(format_duration(Duration::from_secs(5)), "0:05");
        assert_eq!(format_duration(Duration::from_secs(125)), "2:05");
        assert_eq!(format_duration(Duration::from_secs(3725)), "1:02:05");
    }

    #[test]
    fn repeated_includes_form_one_set() {
        let set = pattern_set(
            &["/src".to_string(), "!/src/vendor".to_string()],
            &[],
            &["/DOCS".to_string()],
            &[],
        )
        .unwrap();
        assert!(set.matches("/src/main.rs"));
        assert!(!set.matches("/src/vendor/x.rs"), "the later ! cancels");
        assert!(set.matches("/docs/readme"), "case-insensitive set");
    }
}
