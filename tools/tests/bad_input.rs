//! cairn on broken input: a wrong password, a missing repository, and
//! repositories damaged on purpose (a flipped byte in a pack, an index or a
//! snapshot file, a truncated pack, a config of an unknown version).
//!
//! For every case the commands that touch the damaged object must fail
//! cleanly: a non-zero exit, no panic, an error on stderr that names what is
//! wrong (the object's id, or "wrong password", "does not exist", …) — on
//! ONE line for commands that stop at the first error — and the repository
//! must be byte for byte unchanged afterwards: not even a lock file may be
//! left behind. `check` and `restore` report every problem they find, so
//! they may print several lines.
//!
//! The repositories are made by cairn itself; restic is not needed.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("cairn-bad-input-")
        .tempdir()
        .expect("temp dir")
}

/// A cairn repository (format v2) with one snapshot of the small fixture.
struct Setup {
    tmp: tempfile::TempDir,
    repo: Repo,
    snapshot: String,
}

fn setup() -> Setup {
    let tmp = tempdir();
    let src = tmp.path().join("fixture");
    build_small_fixture(&src);
    let repo = Repo::new(tmp.path().join("repo"));
    init(Tool::Cairn, &repo, 2, None);
    let snapshot = backup(Tool::Cairn, &repo, &src, &[]);
    Setup {
        tmp,
        repo,
        snapshot,
    }
}

impl Setup {
    /// A fresh, not yet existing restore target.
    fn target(&self, n: usize) -> String {
        self.tmp
            .path()
            .join(format!("restore-{n}"))
            .to_str()
            .expect("utf-8 path")
            .to_string()
    }
}

/// How strictly the error output is judged.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Output {
    /// One non-empty line on stderr.
    OneLine,
    /// Any number of lines (check, restore: they report every problem).
    Report,
}

/// Runs cairn commands on a damaged repository and collects every way in
/// which they misbehave, so that one test reports all of them.
struct Judge<'a> {
    repo: &'a Repo,
    failures: Vec<String>,
}

impl<'a> Judge<'a> {
    fn new(repo: &'a Repo) -> Self {
        Judge {
            repo,
            failures: Vec::new(),
        }
    }

    /// Run `cairn args…`; it must fail cleanly with an error mentioning one
    /// of `needles` (case-insensitive) and leave the repository unchanged.
    fn expect_failure(&mut self, args: &[&str], needles: &[&str], output: Output) -> Run {
        let before = self.fingerprint();
        let run = cairn(self.repo, args);
        let after = self.fingerprint();
        let mut problems = Vec::new();
        if run.success() {
            problems.push("exit status 0 (want non-zero)".to_string());
        }
        if run.stderr.contains("panicked") || run.status.code().is_none() {
            problems.push("panicked or was killed by a signal".to_string());
        }
        let text = match output {
            Output::OneLine => run.stderr.to_lowercase(),
            Output::Report => format!("{}\n{}", run.stdout_str(), run.stderr).to_lowercase(),
        };
        if !needles.iter().any(|n| text.contains(&n.to_lowercase())) {
            problems.push(format!("the error mentions none of {needles:?}"));
        }
        let lines = run.stderr_lines().len();
        if output == Output::OneLine && lines != 1 {
            problems.push(format!("{lines} lines on stderr (want exactly one)"));
        }
        if before != after {
            problems.push(format!(
                "the repository changed: {:?}",
                diff_hashes(&before, &after)
            ));
        }
        if !problems.is_empty() {
            self.failures
                .push(format!("{}\n{}", problems.join("; "), run.describe()));
        }
        run
    }

    fn fingerprint(&self) -> std::collections::BTreeMap<String, String> {
        if self.repo.path.exists() {
            hash_dir(&self.repo.path)
        } else {
            Default::default()
        }
    }

    #[track_caller]
    fn finish(self, test: &str) {
        assert!(
            self.failures.is_empty(),
            "{test}: {} command(s) misbehaved:\n\n{}",
            self.failures.len(),
            self.failures.join("\n\n")
        );
    }
}

/// The (only) file in a repository directory: (id, path).
#[track_caller]
fn only_file(repo: &Repo, dir: &str) -> (String, PathBuf) {
    let files = repo_files(repo, dir);
    assert_eq!(files.len(), 1, "{dir}/ should hold one file: {files:?}");
    let (id, path, _) = files.into_iter().next().expect("one file");
    (id, path)
}

/// The data blob of the index whose bytes in `pack` cover `offset`.
fn blob_at(repo: &Repo, pack: &str, offset: u64) -> Option<String> {
    let (index, _) = only_file(repo, "index");
    let idx = cairn(repo, &["cat", "index", &index]).ok().json();
    let packs = idx["packs"].as_array()?;
    let p = packs.iter().find(|p| p["id"] == pack)?;
    p["blobs"].as_array()?.iter().find_map(|b| {
        let start = b["offset"].as_u64()?;
        let end = start + b["length"].as_u64()?;
        (start..end)
            .contains(&offset)
            .then(|| b["id"].as_str().map(str::to_string))
            .flatten()
    })
}

#[test]
fn wrong_password() {
    let s = setup();
    let wrong = s.repo.with_password("not the password");
    let mut j = Judge::new(&wrong);
    let needle = ["wrong password"];
    for args in [
        vec!["snapshots"],
        vec!["ls", "latest"],
        vec!["cat", "config"],
        vec!["list", "snapshots"],
        vec!["key", "list"],
        vec!["check"],
    ] {
        j.expect_failure(&args, &needle, Output::OneLine);
    }
    let t = s.target(1);
    j.expect_failure(
        &["restore", "latest", "--target", &t],
        &needle,
        Output::OneLine,
    );
    j.finish("wrong_password");
}

#[test]
fn missing_repository() {
    let tmp = tempdir();
    let repo = Repo::new(tmp.path().join("no-such-repo"));
    let mut j = Judge::new(&repo);
    let needle = ["does not exist"];
    let t = tmp.path().join("restore").to_str().unwrap().to_string();
    for args in [
        vec!["snapshots"],
        vec!["ls", "latest"],
        vec!["cat", "config"],
        vec!["list", "snapshots"],
        vec!["check"],
        vec!["unlock"],
        vec!["restore", "latest", "--target", &t],
    ] {
        j.expect_failure(&args, &needle, Output::OneLine);
    }
    let created = repo.path.exists();
    j.finish("missing_repository");
    assert!(!created, "a command created the missing repository");
}

#[test]
fn flipped_byte_in_pack() {
    let s = setup();
    let (pack, path, size) = largest_pack(&s.repo);
    let offset = size / 3;
    let blob = blob_at(&s.repo, &pack, offset)
        .unwrap_or_else(|| panic!("no blob of pack {pack} covers offset {offset}"));
    flip_byte(&path, offset);
    let mut j = Judge::new(&s.repo);
    let damage = [short(&pack), short(&blob), "mac", "corrupt", "hash"];
    j.expect_failure(&["check", "--read-data"], &[short(&pack)], Output::Report);
    let t = s.target(1);
    j.expect_failure(
        &["restore", "latest", "--target", &t],
        &damage,
        Output::Report,
    );
    j.expect_failure(
        &["cat", "pack", &pack],
        &["hash", "corrupt"],
        Output::OneLine,
    );
    j.expect_failure(&["cat", "blob", &blob], &damage, Output::OneLine);
    j.finish("flipped_byte_in_pack");
}

#[test]
fn truncated_pack() {
    let s = setup();
    let (pack, path, size) = largest_pack(&s.repo);
    let data = std::fs::read(&path).expect("read pack");
    write_over(&path, &data[..(size / 2) as usize]);
    let mut j = Judge::new(&s.repo);
    j.expect_failure(&["check"], &[short(&pack)], Output::Report);
    j.expect_failure(&["check", "--read-data"], &[short(&pack)], Output::Report);
    let t = s.target(1);
    let damage = [
        short(&pack),
        "truncat",
        "corrupt",
        "mac",
        "hash",
        "eof",
        "size",
        "short",
    ];
    j.expect_failure(
        &["restore", "latest", "--target", &t],
        &damage,
        Output::Report,
    );
    j.expect_failure(
        &["cat", "pack", &pack],
        &["hash", "corrupt"],
        Output::OneLine,
    );
    j.finish("truncated_pack");
}

#[test]
fn flipped_byte_in_index() {
    let s = setup();
    let (index, path) = only_file(&s.repo, "index");
    let len = std::fs::metadata(&path).expect("stat").len();
    flip_byte(&path, len / 2);
    let mut j = Judge::new(&s.repo);
    let id = [short(&index)];
    j.expect_failure(&["ls", "latest"], &id, Output::OneLine);
    j.expect_failure(&["list", "blobs"], &id, Output::OneLine);
    j.expect_failure(&["cat", "index", &index], &id, Output::OneLine);
    let t = s.target(1);
    j.expect_failure(&["restore", "latest", "--target", &t], &id, Output::OneLine);
    j.expect_failure(&["check"], &id, Output::Report);
    j.finish("flipped_byte_in_index");
}

#[test]
fn flipped_byte_in_snapshot() {
    let s = setup();
    let (snap, path) = only_file(&s.repo, "snapshots");
    assert_eq!(snap, s.snapshot);
    let len = std::fs::metadata(&path).expect("stat").len();
    flip_byte(&path, len / 2);
    let mut j = Judge::new(&s.repo);
    let id = [short(&snap)];

    // Like restic, `snapshots` may warn and go on (exit 0) or fail; either
    // way it names the snapshot, on one line, without a panic.
    let before = hash_dir(&s.repo.path);
    let run = cairn(&s.repo, &["snapshots"]);
    let lines = run.stderr_lines();
    if run.stderr.contains("panicked")
        || lines.len() != 1
        || !lines[0].contains(short(&snap))
        || hash_dir(&s.repo.path) != before
    {
        j.failures.push(format!(
            "snapshots should name the damaged snapshot {} in one stderr line and change nothing\n{}",
            short(&snap),
            run.describe()
        ));
    }
    j.expect_failure(&["ls", &snap], &id, Output::OneLine);
    j.expect_failure(&["cat", "snapshot", &snap], &id, Output::OneLine);
    let t = s.target(1);
    j.expect_failure(&["restore", &snap, "--target", &t], &id, Output::OneLine);
    j.expect_failure(
        &["ls", "latest"],
        &[short(&snap), "no snapshot", "not found"],
        Output::OneLine,
    );
    j.expect_failure(&["check"], &id, Output::Report);
    j.finish("flipped_byte_in_snapshot");
}

/// Rewrite the config with `"version": 3` through the library (the config
/// is encrypted with the master key, so the CLI cannot craft it).
fn write_config_version_3(path: &Path) {
    use cairn_core::backend::{Backend, FileType, LocalBackend};
    use cairn_core::repository::{OpenOptions, Repository};

    let backend: Arc<dyn Backend> = Arc::new(LocalBackend::new(path));
    let repo = Repository::open(
        backend.clone(),
        PASSWORD.as_bytes(),
        &OpenOptions::default(),
    )
    .expect("open the repository");
    let plain = repo
        .load_unpacked(FileType::Config, "config")
        .expect("load config");
    let mut config: serde_json::Value = serde_json::from_slice(&plain).expect("config is JSON");
    config["version"] = 3.into();
    backend
        .remove(FileType::Config, "config")
        .expect("remove config");
    repo.save_unpacked(
        FileType::Config,
        &serde_json::to_vec(&config).expect("encode config"),
    )
    .expect("save config");
}

#[test]
fn config_with_unknown_version() {
    let s = setup();
    write_config_version_3(&s.repo.path);
    // The crafted config is what restic would also reject for its version
    // (checked when restic is installed; this test does not need it).
    if restic_available() {
        let r = restic(&s.repo, &["cat", "config"]);
        assert!(
            !r.success() && r.stderr.contains("version"),
            "restic should reject the crafted config for its version:\n{}",
            r.describe()
        );
    }
    let mut j = Judge::new(&s.repo);
    let needle = ["version"];
    for args in [
        vec!["snapshots"],
        vec!["ls", "latest"],
        vec!["cat", "config"],
        vec!["check"],
        vec!["key", "list"],
    ] {
        j.expect_failure(&args, &needle, Output::OneLine);
    }
    let t = s.target(1);
    j.expect_failure(
        &["restore", "latest", "--target", &t],
        &needle,
        Output::OneLine,
    );
    j.finish("config_with_unknown_version");
}
