//! `repair index|packs|snapshots`, `tag`, `rewrite`, `copy`, `migrate` and
//! `unlock --remove-all` on repositories restic wrote, each checked with
//! restic afterwards.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

/// A source directory with a few files (one of several chunks).
fn source(root: &Path) -> std::path::PathBuf {
    let src = root.join("src");
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    let mut rng = Rng::new(9);
    std::fs::write(src.join("big"), rng.bytes(3 << 20)).unwrap();
    std::fs::write(src.join("a.txt"), b"alpha").unwrap();
    std::fs::write(src.join("secret.key"), b"do not keep").unwrap();
    std::fs::write(src.join("sub/b.txt"), b"beta").unwrap();
    std::fs::write(src.join("sub/deeper/c.log"), rng.bytes(10_000)).unwrap();
    src
}

fn restic_repo(root: &Path, version: u32, src: &Path) -> (Repo, String) {
    let repo = Repo::new(root.join(format!("repo-v{version}")));
    init(Tool::Restic, &repo, version, None);
    let id = backup(Tool::Restic, &repo, src, &["--tag", "first"]);
    (repo, id)
}

fn snapshots(tool: Tool, repo: &Repo) -> Vec<Value> {
    run(tool, repo, &["snapshots", "--json"])
        .ok()
        .json()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn restore_diff(tool: Tool, repo: &Repo, id: &str, src: &Path, target: &Path) -> Vec<String> {
    let _ = std::fs::remove_dir_all(target);
    run(
        tool,
        repo,
        &["restore", id, "--target", &target.display().to_string()],
    )
    .ok();
    diff_hashes(&hash_dir(src), &hash_dir(&find_restored(target, src)))
}

#[test]
fn repair_index_rebuilds_from_packs() {
    if !restic_or_skip("repair_index_rebuilds_from_packs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let (repo, id) = restic_repo(dir.path(), 2, &src);
    // Lose every index file: the packs are still there.
    for (_, path, _) in repo_files(&repo, "index") {
        std::fs::remove_file(path).unwrap();
    }
    assert!(!restic(&repo, &["check"]).success());
    let out = cairn(&repo, &["repair", "index"]).ok();
    assert!(
        out.stdout_str().contains("saved 1 new index files"),
        "{}",
        out.stdout_str()
    );
    restic(&repo, &["check", "--read-data"]).ok();
    // restic 0.14's name works too; with --read-all-packs every header is read.
    let out = cairn(&repo, &["rebuild-index", "--read-all-packs"]).ok();
    assert!(
        out.stdout_str().contains("read 2 of 2 pack headers"),
        "{}",
        out.stdout_str()
    );
    restic(&repo, &["check", "--read-data"]).ok();
    let diff = restore_diff(Tool::Restic, &repo, &id, &src, &dir.path().join("r"));
    assert!(diff.is_empty(), "{diff:?}");
}

#[test]
fn repair_packs_then_snapshots() {
    if !restic_or_skip("repair_packs_then_snapshots") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let (repo, _) = restic_repo(dir.path(), 1, &src);
    // Damage the data pack in its first blob.
    let (name, path, _) = largest_pack(&repo);
    flip_byte(&path, 100);
    assert!(!cairn(&repo, &["check", "--read-data"]).success());
    let out = cairn(&repo, &["repair", "packs", &name]).ok();
    assert!(
        out.stdout_str().contains("blobs were lost"),
        "{}",
        out.stdout_str()
    );
    assert!(!path.exists(), "the damaged pack is gone");
    // Snapshots still refer to the lost blob until repaired.
    assert!(!restic(&repo, &["check"]).success());
    let out = cairn(&repo, &["repair", "snapshots", "--forget"]).ok();
    assert!(
        out.stdout_str().contains("removed missing content"),
        "{}",
        out.stdout_str()
    );
    restic(&repo, &["check", "--read-data"]).ok();
    let list = snapshots(Tool::Restic, &repo);
    assert_eq!(list.len(), 1);
    assert!(
        list[0]["original"].is_string(),
        "repaired snapshot records its original"
    );
    // The small files are intact.
    let target = dir.path().join("r");
    let id = list[0]["id"].as_str().unwrap();
    restic(
        &repo,
        &["restore", id, "--target", &target.display().to_string()],
    )
    .ok();
    let restored = find_restored(&target, &src);
    assert_eq!(std::fs::read(restored.join("a.txt")).unwrap(), b"alpha");
}

#[test]
fn tag_and_rewrite() {
    if !restic_or_skip("tag_and_rewrite") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let (repo, id) = restic_repo(dir.path(), 2, &src);
    cairn(
        &repo,
        &["tag", "--add", "x,y", "--remove", "first", &id[..8]],
    )
    .ok();
    let list = snapshots(Tool::Restic, &repo);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["tags"], serde_json::json!(["x", "y"]));
    assert_eq!(list[0]["original"], Value::String(id.clone()));
    cairn(&repo, &["tag", "--set", "z", "--tag", "x"]).ok();
    let list = snapshots(Tool::Restic, &repo);
    assert_eq!(list[0]["tags"], serde_json::json!(["z"]));
    assert_eq!(
        list[0]["original"],
        Value::String(id.clone()),
        "original stays the first one"
    );
    let out = cairn(&repo, &["tag", "--set", "z"]).ok();
    assert!(out.stdout_str().contains("no snapshots were modified"));

    // Rewrite: drop the key and the log directory.
    let before = hash_dir(&repo.path);
    cairn(
        &repo,
        &[
            "rewrite",
            "--dry-run",
            "--exclude",
            "*.key",
            "--exclude",
            "deeper",
        ],
    )
    .ok();
    assert!(
        diff_hashes(&before, &hash_dir(&repo.path)).is_empty(),
        "dry run wrote something"
    );
    cairn(
        &repo,
        &[
            "rewrite",
            "--forget",
            "--exclude",
            "*.key",
            "--exclude",
            "deeper",
        ],
    )
    .ok();
    let list = snapshots(Tool::Restic, &repo);
    assert_eq!(list.len(), 1);
    let new = list[0]["id"].as_str().unwrap().to_string();
    assert_eq!(list[0]["tags"], serde_json::json!(["z"]));
    restic(&repo, &["check", "--read-data"]).ok();
    let ls = restic(&repo, &["ls", &new]).ok().stdout_str();
    assert!(!ls.contains("secret.key") && !ls.contains("deeper"), "{ls}");
    assert!(ls.contains("a.txt") && ls.contains("sub/b.txt"), "{ls}");
    // A later prune frees the excluded data.
    cairn(&repo, &["prune", "--max-unused", "0"]).ok();
    restic(&repo, &["check", "--read-data"]).ok();
}

#[test]
fn copy_between_repositories() {
    if !restic_or_skip("copy_between_repositories") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let (from, id) = restic_repo(dir.path(), 1, &src);
    let from = from.with_password("another password");
    // restic_repo used the default password; change it with restic.
    let pwfile = dir.path().join("pw");
    std::fs::write(&pwfile, "another password").unwrap();
    let from_default = Repo::new(from.path.clone());
    restic(
        &from_default,
        &[
            "key",
            "passwd",
            "--new-password-file",
            &pwfile.display().to_string(),
        ],
    )
    .ok();

    let to = Repo::new(dir.path().join("to"));
    init(Tool::Cairn, &to, 2, Some("fastcdc"));
    let from_arg = from.path.display().to_string();
    let env = vec![("RESTIC_FROM_PASSWORD", "another password".to_string())];
    let copy = |args: &[&str]| {
        run_with(
            Tool::Cairn,
            Some(&to),
            args,
            RunOpts {
                env: env.clone(),
                ..RunOpts::default()
            },
        )
        .ok()
    };
    copy(&["copy", "--from-repo", &from_arg]);
    restic(&to, &["check", "--read-data"]).ok();
    let list = snapshots(Tool::Restic, &to);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["original"], Value::String(id.clone()));
    let new = list[0]["id"].as_str().unwrap().to_string();
    let diff = restore_diff(Tool::Restic, &to, &new, &src, &dir.path().join("r"));
    assert!(diff.is_empty(), "{diff:?}");
    // A second copy finds the snapshot already there and adds nothing.
    let before = hash_dir(&to.path.join("data"));
    let out = copy(&["copy", "--from-repo", &from_arg]);
    assert!(
        out.stdout_str().contains("was already copied"),
        "{}",
        out.stdout_str()
    );
    assert!(diff_hashes(&before, &hash_dir(&to.path.join("data"))).is_empty());
    // restic agrees that it is a copy.
    let out = run_with(
        Tool::Restic,
        Some(&to),
        &["copy", "--from-repo", &from_arg],
        RunOpts {
            env: env.clone(),
            ..RunOpts::default()
        },
    )
    .ok();
    assert!(
        out.stdout_str().contains("skipping source snapshot"),
        "{}",
        out.stdout_str()
    );
}

#[test]
fn migrate_to_v2_and_unlock_all() {
    if !restic_or_skip("migrate_to_v2_and_unlock_all") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let (repo, id) = restic_repo(dir.path(), 1, &src);
    let out = cairn(&repo, &["migrate"]).ok();
    assert!(out.stdout_str().contains("upgrade_repo_v2"));
    cairn(&repo, &["migrate", "upgrade_repo_v2"]).ok();
    let config = restic(&repo, &["cat", "config"]).ok().json();
    assert_eq!(config["version"], 2);
    assert!(
        !cairn(&repo, &["migrate", "upgrade_repo_v2"]).success(),
        "already v2"
    );
    // New data is compressed now; restic reads everything.
    std::fs::write(src.join("new.txt"), "x".repeat(100_000)).unwrap();
    backup(Tool::Cairn, &repo, &src, &[]);
    restic(&repo, &["check", "--read-data"]).ok();
    let _ = id;

    // unlock keeps a live lock (held by this test process), --remove-all
    // removes it.
    let be: std::sync::Arc<dyn cairn_core::backend::Backend> =
        std::sync::Arc::new(cairn_core::backend::LocalBackend::new(&repo.path));
    let r = cairn_core::repository::Repository::open(
        be,
        repo.password.as_bytes(),
        &cairn_core::repository::OpenOptions::default(),
    )
    .unwrap();
    let guard = r.lock(cairn_core::repository::LockKind::Shared).unwrap();
    cairn(&repo, &["unlock"]).ok();
    assert_eq!(repo_files(&repo, "locks").len(), 1, "a live lock is kept");
    let out = cairn(&repo, &["unlock", "--remove-all"]).ok();
    assert!(
        out.stdout_str().contains("removed 1 locks"),
        "{}",
        out.stdout_str()
    );
    assert_eq!(repo_files(&repo, "locks").len(), 0);
    drop(guard);
}
