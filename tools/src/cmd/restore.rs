//! `cairn restore`: extract a snapshot (or one folder of it) into a target
//! directory, with restic's options and output.
//!
//! Problems with single files are printed as restic does (`ignoring error
//! for /path: …`, or JSON error lines with `--json`) and the restore goes
//! on; if there were any, the command ends with exit status 3. Progress is
//! a status line on a terminal, or a JSON `status` line every second with
//! `--json`; `-vv` (`-vvv` with `--json`) lists every item. The repository
//! is opened with a shared lock and only read.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use cairn_core::filter::{read_pattern_file, PatternSet};
use cairn_core::restorer::{
    self, Action, Overwrite, Problem, Progress, ProgressState, RestoreOptions, Selection, Sink,
    XattrSelection,
};
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
    /// Overwrite behavior, one of (always|if-changed|if-newer|never)
    #[arg(long, value_name = "BEHAVIOR", default_value = "always")]
    overwrite: String,
    /// Delete files from target directory if they do not exist in snapshot
    #[arg(long)]
    delete: bool,
    /// Restore files as sparse
    #[arg(long)]
    sparse: bool,
    /// Include xattr by pattern (can be specified multiple times)
    #[arg(long = "include-xattr", value_name = "PATTERN")]
    include_xattr: Vec<String>,
    /// Exclude xattr by pattern (can be specified multiple times)
    #[arg(long = "exclude-xattr", value_name = "PATTERN")]
    exclude_xattr: Vec<String>,
    /// Set owners by the user and group names recorded in the snapshot (numeric ids when a name is unknown)
    #[arg(long = "ownership-by-name")]
    ownership_by_name: bool,
    /// Verify restored files content (and check existing files by content, not by size and mtime)
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
pub(crate) fn pattern_set(
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

/// The tree of the folder `path` of a snapshot (`snapshot:subfolder`);
/// `""` and `"/"` are the root.
pub(crate) fn subfolder_tree(
    repo: &cairn_core::repository::Repository,
    id: &cairn_core::id::SnapshotId,
    root: &cairn_core::id::TreeId,
    path: &str,
) -> Result<cairn_core::id::TreeId> {
    if path.split('/').all(|c| c.is_empty() || c == ".") {
        return Ok(*root);
    }
    match cairn_core::tree::resolve_path(repo, root, path)? {
        Some(node) if node.is_dir() => node
            .subtree
            .with_context(|| format!("folder {path:?} has no subtree")),
        _ => bail!("{path:?} is not a folder in snapshot {}", id.short()),
    }
}

/// restic's JSON status and summary lines (zero fields are left out, as
/// restic does; `percent_done` only in status lines).
#[derive(Serialize)]
struct StatusLine {
    message_type: &'static str,
    #[serde(skip_serializing_if = "is_zero")]
    seconds_elapsed: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    percent_done: Option<f64>,
    #[serde(skip_serializing_if = "is_zero")]
    total_files: u64,
    #[serde(skip_serializing_if = "is_zero")]
    files_restored: u64,
    #[serde(skip_serializing_if = "is_zero")]
    files_skipped: u64,
    #[serde(skip_serializing_if = "is_zero")]
    files_deleted: u64,
    #[serde(skip_serializing_if = "is_zero")]
    total_bytes: u64,
    #[serde(skip_serializing_if = "is_zero")]
    bytes_restored: u64,
    #[serde(skip_serializing_if = "is_zero")]
    bytes_skipped: u64,
}

impl StatusLine {
    fn new(kind: &'static str, s: &ProgressState, elapsed: Duration) -> Self {
        StatusLine {
            message_type: kind,
            seconds_elapsed: elapsed.as_secs(),
            percent_done: (kind == "status").then(|| s.fraction_done()),
            total_files: s.files_total,
            files_restored: s.files_restored,
            files_skipped: s.files_skipped,
            files_deleted: s.files_deleted,
            total_bytes: s.bytes_total,
            bytes_restored: s.bytes_restored,
            bytes_skipped: s.bytes_skipped,
        }
    }
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

/// restic's JSON line for one finished item (`--json -vvv`).
#[derive(Serialize)]
struct VerboseLine<'a> {
    message_type: &'static str,
    action: &'static str,
    item: &'a str,
    size: u64,
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

/// Where the restore's problems and finished items are printed.
struct Printer {
    json: bool,
    verbose: u8,
    errors: u64,
    /// A status line is on the terminal and must be cleared first.
    status_shown: &'static AtomicBool,
}

static STATUS_SHOWN: AtomicBool = AtomicBool::new(false);

impl Printer {
    fn clear_status(&self) {
        if self.status_shown.swap(false, Ordering::Relaxed) {
            print!("\r\x1b[2K");
        }
    }
}

impl Sink for Printer {
    fn problem(&mut self, problem: Problem) {
        self.errors += 1;
        self.clear_status();
        print_problem(self.json, "restore", &problem);
    }

    fn wants_actions(&self) -> bool {
        if self.json {
            self.verbose >= 3
        } else {
            self.verbose >= 2
        }
    }

    fn action(&mut self, action: Action, location: &str, size: u64) {
        if self.json {
            if self.verbose >= 3 && action != Action::Skipped {
                let _ = print_json(&VerboseLine {
                    message_type: "verbose_status",
                    action: action.as_str(),
                    item: location,
                    size,
                });
            }
        } else if self.verbose >= 2 {
            self.clear_status();
            match action {
                Action::Restored if size == 0 => println!("{:<9} {location}", action.as_str()),
                Action::Deleted | Action::Skipped => {
                    println!("{:<9} {location}", action.as_str())
                }
                _ => println!(
                    "{:<9} {location} with size {}",
                    action.as_str(),
                    format_bytes(size)
                ),
            }
        }
    }
}

/// The status text of a running restore, as restic prints it.
fn status_text(s: &ProgressState, elapsed: Duration) -> String {
    let percent = s.fraction_done() * 100.0;
    let mut line = format!(
        "[{}] {percent:.2}%  {} files/dirs {}, total {} files/dirs {}",
        format_duration(elapsed),
        s.files_restored,
        format_bytes(s.bytes_restored),
        s.files_total,
        format_bytes(s.bytes_total)
    );
    line += &skipped_and_deleted(s.files_skipped, s.bytes_skipped, s.files_deleted);
    line
}

/// restic's tail of status and summary lines: what was skipped and
/// deleted, if anything.
fn skipped_and_deleted(files_skipped: u64, bytes_skipped: u64, files_deleted: u64) -> String {
    let mut tail = String::new();
    if files_skipped > 0 {
        tail += &format!(
            ", skipped {files_skipped} files/dirs {}",
            format_bytes(bytes_skipped)
        );
    }
    if files_deleted > 0 {
        tail += &format!(", deleted {files_deleted} files/dirs");
    }
    tail
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
    if args.delete
        && args.target == std::path::Path::new("/")
        && include.is_empty()
        && exclude.is_empty()
    {
        bail!("'--target / --delete' must be combined with an include or exclude filter");
    }
    let selection = Selection::new(include, exclude)?;
    let opts = RestoreOptions {
        overwrite: args.overwrite.parse::<Overwrite>()?,
        delete: args.delete,
        dry_run: args.dry_run,
        verify: args.verify,
        sparse: args.sparse,
        xattrs: XattrSelection::new(&args.include_xattr, &args.exclude_xattr)?,
        ownership_by_name: args.ownership_by_name,
        workers: 0,
    };
    let json = ctx.json();
    let chatty = !ctx.global.quiet && !json;

    let opened = ctx.open_indexed()?;
    let repo = &opened.repo;
    let (id, sn, sub) = find_snapshot(repo, &args.snapshot, &args.filter.filter())?;
    let root = match sub.as_deref() {
        None => sn.tree,
        Some(path) => subfolder_tree(repo, &id, &sn.tree, path)?,
    };
    if chatty {
        println!(
            "restoring {} to {}",
            snapshot_string(&id, &sn),
            args.target.display()
        );
    }

    let start = Instant::now();
    let mut printer = Printer {
        json,
        verbose: ctx.global.verbose,
        errors: 0,
        status_shown: &STATUS_SHOWN,
    };
    let plan = restorer::plan(repo, &root, &selection, &mut |p| printer.problem(p))?;
    log::debug!(
        "restore: planned {} items, {} files in {:?}",
        plan.items.len(),
        plan.files.len(),
        start.elapsed()
    );
    let progress = Progress::new();
    let show_status = !ctx.global.quiet && (json || std::io::stdout().is_terminal());
    let finished = AtomicBool::new(false);
    let restored = std::thread::scope(|scope| {
        if show_status {
            scope.spawn(|| status_loop(&progress, &finished, json, start));
        }
        let result = restorer::restore(repo, &plan, &args.target, &opts, &progress, &mut printer);
        finished.store(true, Ordering::Relaxed);
        result
    })?;
    printer.clear_status();
    print_summary(ctx, &progress.state(), &restored.stats, start.elapsed())?;
    finish(printer.errors)?;

    if args.verify && !args.dry_run {
        if chatty {
            println!("verifying files in {}", args.target.display());
        }
        let start = Instant::now();
        let mut verify_errors = 0u64;
        let checked = restorer::verify(&plan, &args.target, Some(&restored.files), &mut |p| {
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

/// Print progress until the restore is finished: a JSON status line every
/// second, or a terminal status line ten times a second.
fn status_loop(progress: &Progress, finished: &AtomicBool, json: bool, start: Instant) {
    let interval = if json {
        Duration::from_secs(1)
    } else {
        Duration::from_millis(100)
    };
    let mut next = Instant::now() + interval;
    while !finished.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
        if Instant::now() < next {
            continue;
        }
        next += interval;
        let state = progress.state();
        if json {
            let _ = print_json(&StatusLine::new("status", &state, start.elapsed()));
        } else {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r\x1b[2K{}", status_text(&state, start.elapsed()));
            let _ = out.flush();
            STATUS_SHOWN.store(true, Ordering::Relaxed);
        }
    }
}

fn print_summary(
    ctx: &Context,
    state: &ProgressState,
    stats: &restorer::RestoreStats,
    elapsed: Duration,
) -> Result<()> {
    if ctx.json() {
        let mut line = StatusLine::new("summary", state, elapsed);
        line.total_files = stats.total_files;
        line.files_restored = stats.files_restored;
        line.files_skipped = stats.files_skipped;
        line.files_deleted = stats.files_deleted;
        line.total_bytes = stats.total_bytes;
        line.bytes_restored = stats.bytes_restored;
        line.bytes_skipped = stats.bytes_skipped;
        return print_json(&line);
    }
    if ctx.global.quiet {
        return Ok(());
    }
    let mut summary =
        if stats.files_restored == stats.total_files && stats.bytes_restored == stats.total_bytes {
            format!(
                "Summary: Restored {} files/dirs ({}) in {}",
                stats.total_files,
                format_bytes(stats.total_bytes),
                format_duration(elapsed)
            )
        } else {
            format!(
                "Summary: Restored {} / {} files/dirs ({} / {}) in {}",
                stats.files_restored,
                stats.total_files,
                format_bytes(stats.bytes_restored),
                format_bytes(stats.total_bytes),
                format_duration(elapsed)
            )
        };
    summary += &skipped_and_deleted(
        stats.files_skipped,
        stats.bytes_skipped,
        stats.files_deleted,
    );
    println!("{summary}");
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

    #[test]
    fn status_line_like_restic() {
        let s = ProgressState {
            files_total: 10,
            files_restored: 4,
            files_skipped: 2,
            bytes_total: 2048,
            bytes_restored: 1024,
            bytes_skipped: 5,
            ..ProgressState::default()
        };
        assert_eq!(
            status_text(&s, Duration::from_secs(65)),
            "[1:05] 50.00%  4 files/dirs 1.000 KiB, total 10 files/dirs 2.000 KiB, skipped 2 files/dirs 5 B"
        );
        let json = serde_json::to_string(&StatusLine::new("summary", &s, Duration::ZERO)).unwrap();
        assert_eq!(
            json,
            r#"{"message_type":"summary","total_files":10,"files_restored":4,"files_skipped":2,"total_bytes":2048,"bytes_restored":1024,"bytes_skipped":5}"#
        );
    }
}
