//! `cairn prune` on repositories restic wrote: the result passes
//! `restic check --read-data` and the kept snapshots restore identically;
//! and prune is crash-safe: SIGKILL at random moments never loses data of a
//! kept snapshot.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// Versions of the source directory that the repository holds snapshots
/// of; the first ones are forgotten.
const VERSIONS: usize = 5;
/// Snapshots kept by `forget --keep-last`.
const KEPT: usize = 2;

/// A repository with `VERSIONS` restic snapshots of a changing directory,
/// the older ones forgotten (so some packs are unused and some partly
/// used), and a copy of each kept version's source.
struct Setup {
    _dir: tempfile::TempDir,
    repo: Repo,
    /// (snapshot id, copy of the source as backed up).
    kept: Vec<(String, PathBuf)>,
    src: PathBuf,
    work: PathBuf,
}

fn setup(version: u32) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let repo = Repo::new(dir.path().join("repo"));
    init(Tool::Restic, &repo, version, None);
    let mut rng = Rng::new(u64::from(version) * 77);
    let mut snapshots = Vec::new();
    for v in 0..VERSIONS {
        // Replace two files, add one, remove the oldest: chunks of every
        // version end up spread over shared packs.
        for k in 0..3 {
            let size = 150_000 + (rng.next_u64() % 900_000) as usize;
            let name = format!("f{}", (v * 2 + k) % 7);
            std::fs::write(src.join(name), rng.bytes(size)).unwrap();
        }
        std::fs::write(src.join(format!("small{v}")), format!("version {v}")).unwrap();
        let _ = std::fs::remove_file(src.join(format!("small{}", v.wrapping_sub(3))));
        let time = format!("2023-01-0{} 10:00:00", v + 1);
        let id = backup(Tool::Restic, &repo, &src, &["--time", &time]);
        let copy = dir.path().join(format!("v{v}"));
        sh("cp", &["-a".as_ref(), src.as_os_str(), copy.as_os_str()]);
        snapshots.push((id, copy));
    }
    restic(&repo, &["forget", "--keep-last", &KEPT.to_string()]).ok();
    let kept = snapshots.split_off(VERSIONS - KEPT);
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    Setup {
        _dir: dir,
        repo,
        kept,
        src,
        work,
    }
}

/// A fresh copy of the prepared repository.
fn copy_repo(s: &Setup, name: &str) -> Repo {
    let path = s.work.join(name);
    let _ = std::fs::remove_dir_all(&path);
    sh(
        "cp",
        &["-a".as_ref(), s.repo.path.as_os_str(), path.as_os_str()],
    );
    Repo::new(path)
}

/// Restore snapshot `id` with `tool` and compare it with `expected`.
fn restore_matches(
    tool: Tool,
    repo: &Repo,
    id: &str,
    expected: &Path,
    src: &Path,
    target: &Path,
) -> Vec<String> {
    let _ = std::fs::remove_dir_all(target);
    run(
        tool,
        repo,
        &["restore", id, "--target", &target.display().to_string()],
    )
    .ok();
    let restored = find_restored(target, src);
    diff_hashes(&hash_dir(expected), &hash_dir(&restored))
}

fn packs(repo: &Repo) -> usize {
    repo_files(repo, "data").len()
}

#[test]
fn pruned_repositories_pass_restic_check() {
    if !restic_or_skip("pruned_repositories_pass_restic_check") {
        return;
    }
    for version in [1, 2] {
        let s = setup(version);
        for (name, extra) in [
            ("default", &[][..]),
            ("strict", &["--max-unused", "0"][..]),
            (
                "small",
                &[
                    "--max-unused",
                    "0",
                    "--repack-small",
                    "--max-repack-size",
                    "100M",
                ][..],
            ),
            ("cacheable", &["--repack-cacheable-only"][..]),
        ] {
            let repo = copy_repo(&s, name);
            let before = (packs(&repo), packs_size(&repo));
            let mut args = vec!["prune"];
            args.extend_from_slice(extra);
            // A dry run changes nothing.
            let mut dry = args.clone();
            dry.push("--dry-run");
            let snap = hash_dir(&repo.path);
            cairn(&repo, &dry).ok();
            assert!(
                diff_hashes(&snap, &hash_dir(&repo.path)).is_empty(),
                "v{version} {name}: dry run changed the repository"
            );

            cairn(&repo, &args).ok();
            let after = (packs(&repo), packs_size(&repo));
            assert!(
                after.1 < before.1,
                "v{version} {name}: prune freed nothing ({before:?} -> {after:?})"
            );
            restic(&repo, &["check", "--read-data"]).ok();
            cairn(&repo, &["check", "--read-data"]).ok();
            for (id, expected) in &s.kept {
                let target = s.work.join("restore");
                let diff = restore_matches(Tool::Restic, &repo, id, expected, &s.src, &target);
                assert!(
                    diff.is_empty(),
                    "v{version} {name}: snapshot {id} differs: {diff:?}"
                );
            }
            if name == "strict" {
                // With no unused data tolerated, a second prune finds nothing.
                let out = cairn(&repo, &["prune", "--max-unused", "0", "--dry-run"]).ok();
                assert!(
                    out.stdout_str().contains("total prune:           0 blobs"),
                    "{}",
                    out.stdout_str()
                );
                // restic agrees there is nothing left to do.
                let theirs = restic(&repo, &["prune", "--max-unused", "0", "--dry-run"]).ok();
                assert!(
                    theirs
                        .stdout_str()
                        .contains("total prune:           0 blobs"),
                    "{}",
                    theirs.stdout_str()
                );
            }
        }
    }
}

#[test]
fn forget_prune_in_one_go() {
    if !restic_or_skip("forget_prune_in_one_go") {
        return;
    }
    let s = setup(2);
    let repo = copy_repo(&s, "fp");
    let before = packs_size(&repo);
    // Dry run: nothing changes.
    let snap = hash_dir(&repo.path);
    cairn(
        &repo,
        &["forget", "--keep-last", "1", "--prune", "--dry-run"],
    )
    .ok();
    assert!(diff_hashes(&snap, &hash_dir(&repo.path)).is_empty());
    cairn(
        &repo,
        &["forget", "--keep-last", "1", "--prune", "--max-unused", "0"],
    )
    .ok();
    assert!(packs_size(&repo) < before);
    restic(&repo, &["check", "--read-data"]).ok();
    let (id, expected) = s.kept.last().unwrap();
    let diff = restore_matches(Tool::Cairn, &repo, id, expected, &s.src, &s.work.join("r"));
    assert!(diff.is_empty(), "{diff:?}");
}

/// SIGKILL a prune at random moments; the repository must stay usable and
/// the next prune must finish the job.
#[test]
fn prune_survives_sigkill() {
    if !restic_or_skip("prune_survives_sigkill") {
        return;
    }
    let s = setup(2);
    // How long an uninterrupted prune takes: kills land at random moments
    // within that time. On a busy machine the probe may be slower than
    // the trials, so the span shrinks whenever a kill comes too late.
    let probe = copy_repo(&s, "probe");
    let started = Instant::now();
    cairn(&probe, &["prune", "--max-unused", "0"]).ok();
    let probed = started.elapsed();
    let mut full = probed;
    let mut rng = Rng::new(42);
    let mut failures = Failures(Vec::new());
    let mut killed_mid_run = 0;
    for trial in 0..20 {
        let repo = copy_repo(&s, "trial");
        let delay = Duration::from_micros(rng.next_u64() % (full.as_micros() as u64 + 1));
        let mut child = command(
            Tool::Cairn,
            Some(&repo),
            &["prune", "--max-unused", "0"],
            &RunOpts::default(),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        } else {
            full = full * 3 / 4;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();

        // restic 0.14 does not skip stale locks by itself: remove the dead
        // process's lock as a user would.
        cairn(&repo, &["unlock"]).ok();
        // Right after the crash: the index is consistent (restic may hint
        // at unreferenced packs, which is fine) and the data is there.
        let check = restic(&repo, &["check"]);
        failures.check(check.success(), || {
            format!(
                "trial {trial} (kill after {delay:?}): restic check after the kill failed:\n{}",
                check.describe()
            )
        });
        // The next prune completes, and leaves a clean repository.
        let again = cairn(&repo, &["prune", "--max-unused", "0"]);
        failures.check(again.success(), || {
            format!(
                "trial {trial}: prune after the kill failed:\n{}",
                again.describe()
            )
        });
        let check = restic(&repo, &["check", "--read-data"]);
        failures.check(check.success(), || {
            format!(
                "trial {trial}: restic check --read-data failed:\n{}",
                check.describe()
            )
        });
        let (id, expected) = &s.kept[trial % KEPT];
        let diff = restore_matches(Tool::Cairn, &repo, id, expected, &s.src, &s.work.join("r"));
        failures.check(diff.is_empty(), || {
            format!("trial {trial}: snapshot {id} differs after the kill: {diff:?}")
        });
    }
    eprintln!(
        "prune took {probed:?} (kills within {full:?} at the end); \
         {killed_mid_run} of 20 kills hit a running prune"
    );
    failures.finish("prune_survives_sigkill");
    assert!(
        killed_mid_run >= 10,
        "too few kills landed during a prune ({killed_mid_run})"
    );
}
