//! Shared helpers for cairn's CLI integration tests (`interop.rs`,
//! `bad_input.rs`).
//!
//! - Running a tool: [`run`] starts `cairn` (the binary under test) or the
//!   real `restic` from `PATH` against one repository, with a clean
//!   environment (only `RESTIC_REPOSITORY` and `RESTIC_PASSWORD` set), a
//!   timeout, and captured output. [`restic_or_skip`] makes a test fail with
//!   a clear message when restic is missing, unless `CAIRN_SKIP_RESTIC=1`.
//! - Fixtures: [`build_fixture`] writes a tree with every kind of entry a
//!   backup tool must round-trip (empty, small and multi-chunk files,
//!   symlinks incl. dangling ones, hard links across directories, a fifo,
//!   xattrs, odd names, deep directories, setuid/setgid/sticky modes,
//!   foreign owners, nanosecond mtimes). Contents are deterministic.
//! - Comparing: [`compare_trees`] walks two trees with `lstat` and lists
//!   every difference in type, mode, owner, mtime, size, content, symlink
//!   target, xattrs and hard-link grouping. [`hash_dir`] fingerprints a
//!   repository directory so a test can prove a command changed nothing.
//!
//! Everything here panics with a descriptive message on failure: these are
//! test helpers, a panic is a failed test.

#![allow(dead_code)]

mod compare;
mod fixture;

pub use compare::*;
pub use fixture::*;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Password of every test repository.
pub const PASSWORD: &str = "correct horse battery staple";
/// Hostname recorded in test snapshots (`--host`).
pub const HOST: &str = "interop-host";
/// How long one command may run before the test fails.
const TIMEOUT: Duration = Duration::from_secs(600);

// ---- running the tools ----------------------------------------------------

/// Which binary to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Cairn,
    Restic,
}

impl Tool {
    fn program(self) -> &'static str {
        match self {
            Tool::Cairn => env!("CARGO_BIN_EXE_cairn"),
            Tool::Restic => "restic",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tool::Cairn => "cairn",
            Tool::Restic => "restic",
        }
    }
}

/// A repository location and the password to open it.
#[derive(Clone, Debug)]
pub struct Repo {
    pub path: PathBuf,
    pub password: String,
}

impl Repo {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Repo {
            path: path.into(),
            password: PASSWORD.to_string(),
        }
    }

    /// The same repository opened with another password.
    pub fn with_password(&self, password: &str) -> Self {
        Repo {
            path: self.path.clone(),
            password: password.to_string(),
        }
    }
}

/// The outcome of one command.
pub struct Run {
    pub cmdline: String,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Command line, exit status and both outputs, for failure messages.
    pub fn describe(&self) -> String {
        let mut out = self.stdout_str();
        if out.len() > 4000 {
            let mut cut = 4000;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push_str("…[truncated]");
        }
        format!(
            "$ {}\nexit: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline, self.status, out, self.stderr
        )
    }

    /// Panic (fail the test) unless the command succeeded.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert!(self.success(), "command failed:\n{}", self.describe());
        assert!(
            !self.stderr.contains("panicked"),
            "command panicked:\n{}",
            self.describe()
        );
        self
    }

    /// stdout parsed as one JSON document.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.describe()))
    }

    /// stdout parsed as JSON lines (blank lines skipped).
    #[track_caller]
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout_str()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| {
                    panic!("stdout line is not JSON ({e}): {l:?}\n{}", self.describe())
                })
            })
            .collect()
    }

    /// Non-empty lines of stderr.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }
}

/// Options for one command beyond its arguments.
#[derive(Default)]
pub struct RunOpts<'a> {
    /// Working directory (default: the test process's).
    pub cwd: Option<&'a Path>,
    /// Extra environment variables.
    pub env: Vec<(&'a str, String)>,
}

/// Run `tool args…` against `repo` (`None`: no repository variables).
pub fn run_with(tool: Tool, repo: Option<&Repo>, args: &[&str], opts: RunOpts<'_>) -> Run {
    let mut cmd = command(tool, repo, args, &opts);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let cmdline = cmdline(tool, args);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e} ($ {cmdline})", tool.program()));
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("timeout after {TIMEOUT:?}: $ {cmdline}");
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("waiting for $ {cmdline}: {e}"),
        }
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    Run {
        cmdline,
        status,
        stdout,
        stderr,
    }
}

/// Build the `Command` for `tool args…` with a clean environment; the
/// caller decides about stdio.
pub fn command(tool: Tool, repo: Option<&Repo>, args: &[&str], opts: &RunOpts<'_>) -> Command {
    let mut cmd = Command::new(tool.program());
    if tool == Tool::Restic {
        // Keep restic's cache out of $HOME and out of the timing.
        cmd.arg("--no-cache");
    }
    cmd.args(args);
    for (k, _) in std::env::vars_os() {
        if let Some(k) = k.to_str() {
            if k.starts_with("RESTIC_") || k.starts_with("CAIRN_") {
                cmd.env_remove(k);
            }
        }
    }
    if let Some(repo) = repo {
        cmd.env("RESTIC_REPOSITORY", &repo.path)
            .env("RESTIC_PASSWORD", &repo.password);
    }
    for (k, v) in &opts.env {
        cmd.env(k, v);
    }
    if let Some(cwd) = opts.cwd {
        cmd.current_dir(cwd);
    }
    cmd
}

fn cmdline(tool: Tool, args: &[&str]) -> String {
    let mut s = tool.name().to_string();
    for a in args {
        s.push(' ');
        if a.is_empty() || a.contains([' ', '\n', '"', '\'']) {
            s.push_str(&format!("{a:?}"));
        } else {
            s.push_str(a);
        }
    }
    s
}

/// Run `tool args…` against `repo`.
pub fn run(tool: Tool, repo: &Repo, args: &[&str]) -> Run {
    run_with(tool, Some(repo), args, RunOpts::default())
}

/// Run `tool args…` against `repo` in directory `cwd`.
pub fn run_in(tool: Tool, repo: &Repo, cwd: &Path, args: &[&str]) -> Run {
    run_with(
        tool,
        Some(repo),
        args,
        RunOpts {
            cwd: Some(cwd),
            ..RunOpts::default()
        },
    )
}

pub fn cairn(repo: &Repo, args: &[&str]) -> Run {
    run(Tool::Cairn, repo, args)
}

pub fn restic(repo: &Repo, args: &[&str]) -> Run {
    run(Tool::Restic, repo, args)
}

/// True if `restic version` runs.
pub fn restic_available() -> bool {
    Command::new("restic")
        .arg("version")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success())
}

/// True if restic can be used. When it is missing the test fails with a
/// clear message, unless `CAIRN_SKIP_RESTIC=1`, which turns the test into a
/// loudly reported skip (the caller returns early on `false`).
#[track_caller]
pub fn restic_or_skip(test: &str) -> bool {
    if restic_available() {
        return true;
    }
    if std::env::var("CAIRN_SKIP_RESTIC").as_deref() == Ok("1") {
        eprintln!("\n*** SKIPPED {test}: restic is not installed and CAIRN_SKIP_RESTIC=1 ***\n");
        return false;
    }
    panic!(
        "{test}: the `restic` binary (>= 0.14) is required for the interop tests but was not \
         found on PATH. Install it (`make deps`, or `apt-get install restic`), or set \
         CAIRN_SKIP_RESTIC=1 to skip these tests."
    );
}

/// `init` a repository with `tool` (format `version`, cairn's `--chunker`).
pub fn init(tool: Tool, repo: &Repo, version: u32, chunker: Option<&str>) {
    let v = version.to_string();
    let mut args = vec!["init", "--repository-version", &v];
    if let Some(c) = chunker {
        args.extend(["--chunker", c]);
    }
    run(tool, repo, &args).ok();
}

/// Back up the directory `src` with `tool`, run from its parent directory
/// with the relative name (so the snapshot tree holds `<name>/…` in both
/// tools). Returns the new snapshot's id, read from the `--json` summary.
pub fn backup(tool: Tool, repo: &Repo, src: &Path, extra: &[&str]) -> String {
    let parent = src.parent().expect("fixture has a parent");
    let name = src
        .file_name()
        .and_then(|n| n.to_str())
        .expect("utf-8 name");
    let mut args = vec!["backup", "--json", "--host", HOST];
    args.extend_from_slice(extra);
    args.push(name);
    let run = run_in(tool, repo, parent, &args).ok();
    let short_id = snapshot_id_from_summary(&run);
    full_snapshot_id(tool, repo, &short_id)
}

/// The full id of the snapshot whose id starts with `prefix` (restic's
/// `backup --json` summary prints the short id), from `snapshots --json`.
#[track_caller]
pub fn full_snapshot_id(tool: Tool, repo: &Repo, prefix: &str) -> String {
    let list = run(tool, repo, &["snapshots", "--json"]).ok();
    let ids: Vec<String> = list
        .json()
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let matching: Vec<&String> = ids.iter().filter(|id| id.starts_with(prefix)).collect();
    match matching.as_slice() {
        [one] => one.to_string(),
        _ => panic!(
            "expected one snapshot with id prefix {prefix:?}, found {matching:?}:\n{}",
            list.describe()
        ),
    }
}

/// The `snapshot_id` of the `summary` message of `backup --json`.
#[track_caller]
pub fn snapshot_id_from_summary(run: &Run) -> String {
    for line in run.stdout_str().lines().rev() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            if v["message_type"] == "summary" {
                if let Some(id) = v["snapshot_id"].as_str() {
                    return id.to_string();
                }
            }
        }
    }
    panic!(
        "backup --json printed no summary with a snapshot_id:\n{}",
        run.describe()
    )
}

/// Where `restore --target target` put the backed-up directory `src`:
/// `target/<name>` when the snapshot holds the relative name, else
/// `target/<absolute path>`.
pub fn find_restored(target: &Path, src: &Path) -> PathBuf {
    let by_name = target.join(src.file_name().expect("named source"));
    if by_name.exists() {
        return by_name;
    }
    let by_abs = target.join(src.strip_prefix("/").unwrap_or(src));
    if by_abs.exists() {
        return by_abs;
    }
    let found: Vec<String> = walk(target)
        .into_iter()
        .take(20)
        .map(|p| p.display().to_string())
        .collect();
    panic!(
        "restored tree not found: neither {} nor {} exists; {} holds: {found:?}",
        by_name.display(),
        by_abs.display(),
        target.display()
    )
}

// ---- repository directories ------------------------------------------------

/// Fingerprint of a directory: every entry's relative path mapped to its
/// type and, for files, the SHA-256 of the content.
pub fn hash_dir(root: &Path) -> BTreeMap<String, String> {
    walk(root)
        .into_iter()
        .map(|rel| {
            let p = root.join(&rel);
            let meta = fs::symlink_metadata(&p).expect("lstat");
            let v = if meta.is_file() {
                let data = fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
                format!("file {}", cairn_core::Id::hash(&data).to_hex())
            } else {
                kind(&meta).to_string()
            };
            (rel.display().to_string(), v)
        })
        .collect()
}

/// Describe how two [`hash_dir`] fingerprints differ.
pub fn diff_hashes(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in before {
        match after.get(k) {
            None => out.push(format!("removed: {k}")),
            Some(w) if w != v => out.push(format!("changed: {k}")),
            _ => {}
        }
    }
    for k in after.keys() {
        if !before.contains_key(k) {
            out.push(format!("added: {k}"));
        }
    }
    out
}

/// The files of one repository directory (`data` is searched recursively),
/// as (name, path, size), sorted by name; files still being written
/// (`-tmp-` names) are left out.
pub fn repo_files(repo: &Repo, dir: &str) -> Vec<(String, PathBuf, u64)> {
    let root = repo.path.join(dir);
    if !root.exists() {
        return Vec::new();
    }
    let mut out: Vec<_> = walk(&root)
        .into_iter()
        .filter_map(|rel| {
            let p = root.join(&rel);
            let meta = fs::metadata(&p).ok()?;
            let name = rel
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            // `<name>-tmp-<random>` is a file still being written (by restic
            // or cairn), not yet a repository file.
            (meta.is_file() && !name.contains("-tmp-")).then_some((name, p, meta.len()))
        })
        .collect();
    out.sort();
    out
}

/// Total size in bytes of the pack files.
pub fn packs_size(repo: &Repo) -> u64 {
    repo_files(repo, "data").iter().map(|f| f.2).sum()
}

/// The largest pack file: (id, path, size).
#[track_caller]
pub fn largest_pack(repo: &Repo) -> (String, PathBuf, u64) {
    repo_files(repo, "data")
        .into_iter()
        .max_by_key(|f| f.2)
        .expect("repository has pack files")
}

/// Overwrite one byte of `path` with its bitwise complement.
pub fn flip_byte(path: &Path, offset: u64) {
    let mut data = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let i = usize::try_from(offset).expect("offset fits");
    assert!(i < data.len(), "offset {i} beyond {} bytes", data.len());
    data[i] = !data[i];
    write_over(path, &data);
}

/// Replace the content of a (possibly read-only) repository file.
pub fn write_over(path: &Path, data: &[u8]) {
    let mode = fs::metadata(path).expect("stat").permissions().mode();
    chmod(path, 0o600);
    let mut f = File::create(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    f.write_all(data).expect("write");
    drop(f);
    chmod(path, mode);
}

/// The first 8 hex digits of an id, as both tools print them.
pub fn short(id: &str) -> &str {
    &id[..8.min(id.len())]
}

// ---- collecting failures and reading tool output -------------------------

/// Collect assertion failures so one test run reports all of them.
#[derive(Default)]
pub struct Failures(pub Vec<String>);

impl Failures {
    pub fn check(&mut self, ok: bool, msg: impl FnOnce() -> String) {
        if !ok {
            self.0.push(msg());
        }
    }

    /// Run a command that must succeed; `None` (and a recorded failure) if
    /// it did not.
    pub fn run_ok(&mut self, run: Run) -> Option<Run> {
        if run.success() && !run.stderr.contains("panicked") {
            Some(run)
        } else {
            self.0.push(format!("command failed:\n{}", run.describe()));
            None
        }
    }

    #[track_caller]
    pub fn finish(self, test: &str) {
        assert!(
            self.0.is_empty(),
            "{test}: {} failure(s):\n\n{}",
            self.0.len(),
            self.0.join("\n\n")
        );
    }
}

/// Paths and types of the nodes `ls --json` printed.
pub fn ls_nodes(run: &Run) -> BTreeSet<(String, String)> {
    run.json_lines()
        .into_iter()
        .filter(|v| v["struct_type"] == "node")
        .map(|v| {
            (
                v["path"].as_str().unwrap_or("<no path>").to_string(),
                v["type"].as_str().unwrap_or("<no type>").to_string(),
            )
        })
        .collect()
}

/// The ids in `list blobs` output lines `<type> <id>`, by type.
pub fn list_blobs(run: &Run) -> BTreeSet<(String, String)> {
    run.stdout_str()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(t, id)| (t.trim().to_string(), id.trim().to_string()))
        .collect()
}

/// The node called `name` in a tree blob (JSON).
pub fn tree_node<'a>(tree: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    tree["nodes"].as_array()?.iter().find(|n| n["name"] == name)
}
