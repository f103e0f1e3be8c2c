//! `cairn backup`: save files and directories (or stdin) as a new snapshot.
//!
//! Flags, output and exit codes follow restic: 0 when everything was
//! saved, 1 on a fatal error (no snapshot), 3 when the snapshot was saved
//! but some items could not be read, 130 when interrupted (Ctrl+C or
//! SIGTERM: a checkpoint is saved and the same command resumes; a second
//! Ctrl+C exits at once). The engine is [`cairn_core::archiver`]; this
//! module turns flags into [`BackupOptions`], handles the signals, and
//! reports (progress in [`progress`]).

mod progress;

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use cairn_core::archiver::{
    existing_targets, parse_size, Archiver, BackupOptions, BackupSummary, Change, ChangeDetection,
    ExcludeOptions, ParentChoice, Reporter,
};
use cairn_core::backend::FileType;
use cairn_core::filter::{read_pattern_file, PatternSet};
use cairn_core::format::snapshot::parse_tag_list;
use cairn_core::format::time::GoTime;
use cairn_core::format::tree::Node;
use cairn_core::id::SnapshotId;
use cairn_core::repository::LockKind;
use serde::Serialize;

use crate::context::Context;
use crate::output::{format_bytes, print_json};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Files and directories to back up
    #[arg(value_name = "FILE/DIR")]
    paths: Vec<PathBuf>,
    /// Use this parent snapshot (default: the latest snapshot of this host with the same paths)
    #[arg(long, value_name = "SNAPSHOT")]
    parent: Option<String>,
    /// Force re-reading the target files/directories (overrides the "parent" flag)
    #[arg(short, long)]
    force: bool,
    /// Exclude a pattern (can be specified multiple times)
    #[arg(short = 'e', long = "exclude", value_name = "PATTERN")]
    excludes: Vec<String>,
    /// Same as --exclude pattern but ignores the casing of filenames
    #[arg(long = "iexclude", value_name = "PATTERN")]
    iexcludes: Vec<String>,
    /// Read exclude patterns from a file (can be specified multiple times)
    #[arg(long = "exclude-file", value_name = "FILE")]
    exclude_files: Vec<PathBuf>,
    /// Same as --exclude-file but ignores casing of filenames in patterns
    #[arg(long = "iexclude-file", value_name = "FILE")]
    iexclude_files: Vec<PathBuf>,
    /// Exclude other file systems, don't cross filesystem boundaries
    #[arg(short = 'x', long = "one-file-system")]
    one_file_system: bool,
    /// Exclude contents of directories containing FILENAME (except FILENAME itself) if its header is HEADER (can be specified multiple times)
    #[arg(long = "exclude-if-present", value_name = "FILENAME[:HEADER]")]
    exclude_if_present: Vec<String>,
    /// Exclude cache directories that are marked with a CACHEDIR.TAG file
    #[arg(long = "exclude-caches")]
    exclude_caches: bool,
    /// Max size of the files to be backed up (allowed suffixes: k/K, m/M, g/G, t/T)
    #[arg(long = "exclude-larger-than", value_name = "SIZE")]
    exclude_larger_than: Option<String>,
    /// Read backup from stdin
    #[arg(long)]
    stdin: bool,
    /// Filename to use when reading from stdin
    #[arg(
        long = "stdin-filename",
        value_name = "FILENAME",
        default_value = "stdin"
    )]
    stdin_filename: String,
    /// Add tags for the new snapshot in the format `tag[,tag,...]` (can be specified multiple times)
    #[arg(long = "tag", value_name = "TAGS")]
    tags: Vec<String>,
    /// Set the hostname for the snapshot manually
    #[arg(
        short = 'H',
        long = "host",
        alias = "hostname",
        value_name = "HOSTNAME"
    )]
    host: Option<String>,
    /// Read the files to back up from FILE, one pattern per line (can be combined with file args; can be specified multiple times)
    #[arg(long = "files-from", value_name = "FILE")]
    files_from: Vec<PathBuf>,
    /// Read the files to back up from FILE, one path per line, taken verbatim
    #[arg(long = "files-from-verbatim", value_name = "FILE")]
    files_from_verbatim: Vec<PathBuf>,
    /// Read the files to back up from FILE, NUL-separated paths
    #[arg(long = "files-from-raw", value_name = "FILE")]
    files_from_raw: Vec<PathBuf>,
    /// Time of the backup (ex. '2012-11-01 22:08:41') (default: now)
    #[arg(long, value_name = "TIME")]
    time: Option<String>,
    /// Store the atime for all files and directories
    #[arg(long = "with-atime")]
    with_atime: bool,
    /// Ignore inode number changes when checking for modified files
    #[arg(long = "ignore-inode")]
    ignore_inode: bool,
    /// Ignore ctime changes when checking for modified files
    #[arg(long = "ignore-ctime")]
    ignore_ctime: bool,
    /// Do not upload or write any data, just show what would be done
    #[arg(short = 'n', long = "dry-run")]
    dry_run: bool,
    /// Read this many files at once
    #[arg(long = "read-concurrency", value_name = "N", default_value_t = 2)]
    read_concurrency: usize,
    /// Save a checkpoint this often, e.g. 5m, 90s, 1h30m (0 = only when interrupted)
    #[arg(
        long = "checkpoint-interval",
        value_name = "DURATION",
        default_value = "5m"
    )]
    checkpoint_interval: String,
    /// Read a file that changed while it was read again, up to N times
    #[arg(long = "changed-file-retries", value_name = "N", default_value_t = 2)]
    changed_file_retries: u32,
    /// Skip saving the snapshot if nothing changed since the parent snapshot
    #[arg(long = "skip-if-unchanged")]
    skip_if_unchanged: bool,
    /// Do not count the files and bytes ahead of the backup (no totals, no ETA)
    #[arg(long = "no-scan")]
    no_scan: bool,
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    check(&args)?;
    let text = !ctx.json() && !ctx.global.quiet;
    let mode = progress::Mode::detect(ctx.json(), ctx.global.quiet);
    let display = progress::Display::new(mode);
    let reporter = CliReporter {
        json: ctx.json(),
        text,
        verbose: ctx.global.verbose,
        display: &display,
    };
    let mut targets = collect_targets(&args)?;
    if !args.stdin {
        targets = existing_targets(&targets, &reporter)?;
    }
    let time = args.time.as_deref().map(parse_time).transpose()?;
    let exclude = exclude_options(&args)?;
    let checkpoint_interval =
        parse_duration(&args.checkpoint_interval).context("--checkpoint-interval")?;
    if args.read_concurrency == 0 {
        bail!("--read-concurrency must be at least 1");
    }
    let interrupt = interrupt_flag()?;

    let opened = ctx.open_locked(LockKind::Shared)?;
    let repo = &opened.repo;
    if text {
        let id = &repo.config().id;
        let compression = if repo.version() >= 2 {
            format!(", compression level {}", repo.compression())
        } else {
            String::new()
        };
        let short: String = id.chars().take(8).collect();
        println!(
            "repository {short} opened (version {}{compression})",
            repo.version()
        );
    }
    repo.load_index()?;

    let parent = if args.force {
        ParentChoice::None
    } else if let Some(prefix) = &args.parent {
        let id = repo
            .find_id(FileType::Snapshot, prefix)
            .with_context(|| format!("invalid id {prefix:?}"))?;
        ParentChoice::Snapshot(SnapshotId(id))
    } else {
        ParentChoice::Latest
    };
    let opts = BackupOptions {
        host: args.host.clone().filter(|h| !h.is_empty()),
        tags: args.tags.iter().flat_map(|t| parse_tag_list(t)).collect(),
        time,
        parent,
        exclude,
        recorded_excludes: args.excludes.clone(),
        change: ChangeDetection {
            ignore_ctime: args.ignore_ctime,
            ignore_inode: args.ignore_inode,
        },
        with_atime: args.with_atime,
        dry_run: args.dry_run,
        read_concurrency: args.read_concurrency,
        save_concurrency: 0,
        checkpoint_interval: (!checkpoint_interval.is_zero()).then_some(checkpoint_interval),
        changed_retries: args.changed_file_retries,
        skip_if_unchanged: args.skip_if_unchanged,
        // The scan only feeds the progress display's totals: with none
        // shown (`--quiet`), it would just stat every file a second time.
        no_scan: args.no_scan || matches!(mode, progress::Mode::Off),
        interrupt: Some(interrupt),
    };
    let archiver = Archiver::new(repo, opts);
    let live = archiver.progress();
    let result = std::thread::scope(|scope| {
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let display = &display;
        let live = &live;
        scope.spawn(move || display.run(live, wait));
        let result = if args.stdin {
            let stdin: Box<dyn Read + Send> = Box::new(std::io::stdin());
            archiver.backup_reader(stdin, &args.stdin_filename, &reporter)
        } else {
            archiver.backup(&targets, &reporter)
        };
        drop(done);
        result
    });
    let summary = match result {
        Ok(summary) => summary,
        Err(cairn_core::Error::Interrupted) => {
            eprintln!(
                "backup interrupted: finished data and a checkpoint are saved; \
                 run the same command again to resume"
            );
            return Err(crate::ExitStatus(EXIT_INTERRUPTED).into());
        }
        Err(e) => return Err(anyhow::Error::new(e).context("unable to save snapshot")),
    };

    if ctx.json() {
        print_json(&SummaryJson::new(&summary))?;
    } else if text {
        print_summary(&summary, ctx.global.verbose);
    }
    if !summary.is_complete() {
        if !ctx.json() {
            eprintln!("Warning: at least one source file could not be read");
        }
        return Err(crate::ExitStatus(crate::EXIT_INCOMPLETE).into());
    }
    Ok(())
}

/// Exit status after an interrupt (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: u8 = 130;

/// A flag set by SIGINT or SIGTERM; a second signal exits at once.
fn interrupt_flag() -> Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        // Registered first, so it sees the flag as it was before this
        // signal: exit if an earlier signal already set it.
        signal_hook::flag::register_conditional_shutdown(
            signal,
            i32::from(EXIT_INTERRUPTED),
            flag.clone(),
        )
        .context("installing signal handlers")?;
        signal_hook::flag::register(signal, flag.clone()).context("installing signal handlers")?;
    }
    Ok(flag)
}

/// A Go-style duration: `90s`, `5m`, `1h30m`, `500ms`, or a plain number
/// of seconds.
fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    if rest.is_empty() {
        bail!("empty duration");
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..digits]
            .parse()
            .with_context(|| format!("invalid duration {s:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            other => bail!("invalid duration {s:?}: unknown unit {other:?}"),
        };
        rest = &rest[unit_len..];
        total += Duration::try_from_secs_f64(value * scale)
            .with_context(|| format!("invalid duration {s:?}"))?;
    }
    Ok(total)
}

/// Reject flag combinations restic rejects.
fn check(args: &Args) -> Result<()> {
    if args.stdin {
        if !args.files_from.is_empty()
            || !args.files_from_verbatim.is_empty()
            || !args.files_from_raw.is_empty()
        {
            bail!("--stdin and --files-from cannot be used together");
        }
        if !args.paths.is_empty() {
            bail!("--stdin was specified and files/dirs were listed as arguments");
        }
    }
    Ok(())
}

/// The targets from `--files-from*` and the arguments, in restic's order.
fn collect_targets(args: &Args) -> Result<Vec<PathBuf>> {
    if args.stdin {
        return Ok(Vec::new());
    }
    let mut targets = Vec::new();
    for file in &args.files_from {
        let text = String::from_utf8_lossy(&read_input(file)?).into_owned();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let matches = glob(line)?;
            if matches.is_empty() {
                eprintln!("pattern {line:?} does not match any files, skipping");
            }
            targets.extend(matches);
        }
    }
    for file in &args.files_from_verbatim {
        let data = read_input(file)?;
        for line in data.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.is_empty() {
                targets.push(PathBuf::from(OsString::from_vec(line.to_vec())));
            }
        }
    }
    for file in &args.files_from_raw {
        let data = read_input(file)?;
        for name in data.split(|&b| b == 0).filter(|n| !n.is_empty()) {
            targets.push(PathBuf::from(OsString::from_vec(name.to_vec())));
        }
    }
    targets.extend(args.paths.iter().cloned());
    Ok(targets)
}

/// The content of a file, or of stdin for `-`.
fn read_input(file: &Path) -> Result<Vec<u8>> {
    if file == Path::new("-") {
        let mut data = Vec::new();
        std::io::stdin()
            .read_to_end(&mut data)
            .context("reading stdin")?;
        return Ok(data);
    }
    std::fs::read(file).with_context(|| format!("reading {}", file.display()))
}

/// Go's `filepath.Glob`: the existing paths matching `pattern`, whose
/// components may hold `*`, `?`, `[…]` and `\` escapes.
fn glob(pattern: &str) -> Result<Vec<PathBuf>> {
    let has_meta = |s: &str| s.contains(['*', '?', '[', '\\']);
    if !has_meta(pattern) {
        let path = PathBuf::from(pattern);
        return Ok(std::fs::symlink_metadata(&path)
            .is_ok()
            .then_some(path)
            .into_iter()
            .collect());
    }
    let (mut found, rest) = if let Some(rest) = pattern.strip_prefix('/') {
        (vec![PathBuf::from("/")], rest)
    } else {
        (vec![PathBuf::new()], pattern)
    };
    for comp in rest.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        for dir in &found {
            if !has_meta(comp) {
                let path = dir.join(comp);
                if std::fs::symlink_metadata(&path).is_ok() {
                    next.push(path);
                }
                continue;
            }
            // A leading `!` would negate a pattern set; Go takes it literally.
            let escaped = match comp.strip_prefix('!') {
                Some(r) => format!("\\!{r}"),
                None => comp.to_string(),
            };
            let matcher = PatternSet::new(&[escaped], false)
                .with_context(|| format!("pattern: {pattern}"))?;
            let listing = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            let Ok(entries) = std::fs::read_dir(listing) else {
                continue;
            };
            let mut names: Vec<OsString> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name())
                .collect();
            names.sort();
            next.extend(
                names
                    .into_iter()
                    .filter(|n| matcher.matches(&n.to_string_lossy()))
                    .map(|n| dir.join(n)),
            );
        }
        found = next;
    }
    Ok(found)
}

/// restic's `--time` format, in the local zone.
fn parse_time(s: &str) -> Result<GoTime> {
    use chrono::TimeZone;
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .with_context(|| format!("error in time option: {s:?} (want 'YYYY-MM-DD HH:MM:SS')"))?;
    match chrono::Local.from_local_datetime(&naive).earliest() {
        Some(t) => Ok(GoTime::from(t)),
        None => bail!("error in time option: {s:?} does not exist in the local time zone"),
    }
}

fn exclude_options(args: &Args) -> Result<ExcludeOptions> {
    let mut excludes = args.excludes.clone();
    for file in &args.exclude_files {
        excludes.extend(read_pattern_file(file).context("--exclude-file")?);
    }
    let mut iexcludes = args.iexcludes.clone();
    for file in &args.iexclude_files {
        iexcludes.extend(read_pattern_file(file).context("--iexclude-file")?);
    }
    let mut patterns = PatternSet::new(&excludes, false).context("--exclude")?;
    patterns.extend(PatternSet::new(&iexcludes, true).context("--iexclude")?);
    let larger_than = match &args.exclude_larger_than {
        Some(s) => Some(parse_size(s).context("--exclude-larger-than")?),
        None => None,
    };
    Ok(ExcludeOptions {
        patterns,
        if_present: args.exclude_if_present.clone(),
        caches: args.exclude_caches,
        larger_than,
        one_file_system: args.one_file_system && !args.stdin,
    })
}

/// Prints what the engine reports, as restic does.
struct CliReporter<'a> {
    json: bool,
    text: bool,
    verbose: u8,
    display: &'a progress::Display,
}

#[derive(Serialize)]
struct ErrorJson<'a> {
    message_type: &'static str,
    error: ErrorMessage,
    during: &'static str,
    item: &'a str,
}

#[derive(Serialize)]
struct ErrorMessage {
    message: String,
}

impl CliReporter<'_> {
    /// A line on stdout (text mode), kept apart from the status block.
    fn say(&self, line: &str) {
        if self.text {
            self.display.message_stdout(line);
        }
    }

    /// A JSON error line (restic's `error` message) on stderr.
    fn json_error(&self, path: &Path, message: String, during: &'static str) {
        let line = ErrorJson {
            message_type: "error",
            error: ErrorMessage { message },
            during,
            item: &path.to_string_lossy(),
        };
        if let Ok(s) = serde_json::to_string(&line) {
            self.display.message(&s);
        }
    }
}

impl Reporter for CliReporter<'_> {
    fn parent(&self, parent: Option<&SnapshotId>) {
        match parent {
            Some(id) => self.say(&format!("using parent snapshot {}", id.short())),
            None => self.say("no parent snapshot found, will read all files"),
        }
    }

    fn resuming(&self, checkpoints: &[SnapshotId]) {
        let ids: Vec<String> = checkpoints.iter().map(|id| id.short()).collect();
        self.say(&format!(
            "resuming from checkpoint {}: finished files are not read again",
            ids.join(", ")
        ));
    }

    fn error(&self, path: &Path, error: &cairn_core::Error) {
        if self.json {
            self.json_error(path, error.to_string(), "archival");
        } else {
            self.display.message(&format!("error: {error}"));
        }
    }

    fn warning(&self, message: &str) {
        self.display.message(message);
    }

    fn changed_during_backup(&self, path: &Path) {
        let message = "file changed while it was read, stored as last read";
        if self.json {
            self.json_error(path, message.to_string(), "changed_during_backup");
        } else {
            self.display
                .message(&format!("warning: {}: {message}", path.display()));
        }
    }

    fn checkpoint(&self, id: &SnapshotId) {
        if self.verbose >= 1 {
            self.say(&format!("checkpoint {} saved", id.short()));
        }
    }

    fn item(&self, snapshot_path: &str, change: Change, _node: &Node) {
        if self.text && self.verbose >= 2 {
            let what = match change {
                Change::New => "new",
                Change::Changed => "modified",
                Change::Unmodified => "unchanged",
            };
            self.say(&format!("{what:<9} {snapshot_path}"));
        }
    }
}

fn print_summary(summary: &BackupSummary, verbose: u8) {
    let s = &summary.stats;
    println!();
    println!(
        "Files:       {:5} new, {:5} changed, {:5} unmodified",
        s.files_new, s.files_changed, s.files_unmodified
    );
    println!(
        "Dirs:        {:5} new, {:5} changed, {:5} unmodified",
        s.dirs_new, s.dirs_changed, s.dirs_unmodified
    );
    if verbose >= 1 {
        println!("Data Blobs:  {:5} new", s.data_blobs);
        println!("Tree Blobs:  {:5} new", s.tree_blobs);
    }
    if summary.changed_during_backup > 0 {
        println!(
            "Changed while read: {} files (stored as last read)",
            summary.changed_during_backup
        );
    }
    if summary.files_resumed > 0 {
        println!(
            "Resumed:     {:5} files continued from a checkpoint",
            summary.files_resumed
        );
    }
    let verb = if summary.dry_run {
        "Would add"
    } else {
        "Added"
    };
    println!(
        "{verb} to the repository: {:<5} ({:<5} stored)",
        format_bytes(s.data_added),
        format_bytes(s.data_added_packed)
    );
    println!();
    println!(
        "processed {} files, {} in {} (read {} from files)",
        s.total_files_processed,
        format_bytes(s.total_bytes_processed),
        progress::format_duration(summary.duration),
        format_bytes(summary.bytes_read),
    );
    if let Some(id) = &summary.snapshot_id {
        println!("snapshot {} saved", id.short());
    } else if summary.skipped {
        println!("skipped creating snapshot: nothing changed since the parent");
    }
}

/// restic's `--json` summary line.
#[derive(Serialize)]
struct SummaryJson {
    message_type: &'static str,
    files_new: u64,
    files_changed: u64,
    files_unmodified: u64,
    dirs_new: u64,
    dirs_changed: u64,
    dirs_unmodified: u64,
    data_blobs: i64,
    tree_blobs: i64,
    data_added: u64,
    data_added_packed: u64,
    total_files_processed: u64,
    total_bytes_processed: u64,
    total_duration: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot_id: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    dry_run: bool,
    /// cairn: bytes actually read from files.
    bytes_read: u64,
    /// cairn: files that kept changing while they were read.
    files_changed_during_backup: u64,
    /// cairn: files continued from a checkpoint.
    files_resumed: u64,
    /// cairn: no snapshot saved, nothing changed (`--skip-if-unchanged`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    skipped: bool,
}

impl SummaryJson {
    fn new(summary: &BackupSummary) -> Self {
        let s = &summary.stats;
        SummaryJson {
            message_type: "summary",
            files_new: s.files_new,
            files_changed: s.files_changed,
            files_unmodified: s.files_unmodified,
            dirs_new: s.dirs_new,
            dirs_changed: s.dirs_changed,
            dirs_unmodified: s.dirs_unmodified,
            data_blobs: s.data_blobs,
            tree_blobs: s.tree_blobs,
            data_added: s.data_added,
            data_added_packed: s.data_added_packed,
            total_files_processed: s.total_files_processed,
            total_bytes_processed: s.total_bytes_processed,
            total_duration: summary.duration.as_secs_f64(),
            snapshot_id: summary.snapshot_id.map(|id| id.to_hex()),
            dry_run: summary.dry_run,
            bytes_read: summary.bytes_read,
            files_changed_during_backup: summary.changed_during_backup,
            files_resumed: summary.files_resumed,
            skipped: summary.skipped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        for bad in ["", "5x", "m", "1d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn glob_expands_like_go() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for name in ["a.txt", "b.txt", ".hidden.txt", "c.log", "!bang"] {
            std::fs::write(d.join(name), b"").unwrap();
        }
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/x.txt"), b"").unwrap();
        let base = d.to_str().unwrap();
        assert_eq!(
            glob(&format!("{base}/*.txt")).unwrap(),
            [d.join(".hidden.txt"), d.join("a.txt"), d.join("b.txt")]
        );
        assert_eq!(
            glob(&format!("{base}/*/x.txt")).unwrap(),
            [d.join("sub/x.txt")]
        );
        assert_eq!(glob(&format!("{base}/!ba?g")).unwrap(), [d.join("!bang")]);
        assert_eq!(glob(&format!("{base}/c.log")).unwrap(), [d.join("c.log")]);
        assert!(glob(&format!("{base}/nope")).unwrap().is_empty());
        assert!(glob(&format!("{base}/*.none")).unwrap().is_empty());
    }

    #[test]
    fn time_option_parses_local_time() {
        let t = parse_time("2012-11-01 22:08:41").unwrap();
        let local = t.to_local();
        assert_eq!(
            local.format("%Y-%m-%d %H:%M:%S").to_string(),
            "2012-11-01 22:08:41"
        );
        assert!(parse_time("2012-11-01").is_err());
    }
}
