//! Interrupting `cairn backup` and resuming it, with the real binary, real
//! signals and the real restic as a second opinion:
//!
//! - SIGINT half way: exit 130 with a "run the same command again"
//!   message, a checkpoint snapshot that restic accepts, and a second run
//!   that reads only the rest and restores identically;
//! - SIGKILL half way with a short `--checkpoint-interval`: the same, and
//!   the dead process's lock does not block `cairn check`;
//! - crash safety: SIGKILL at pseudo-random moments, 20 times; after each,
//!   `cairn check` passes without `unlock`; at the end `restic check`
//!   passes, the earlier snapshot restores identically and the next backup
//!   completes.
//!
//! The test binary is a debug build (a few MB/s), which makes "half way"
//! easy to hit with small data.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Larger than what a backup holds in flight (a 10 MiB read block per
/// reader and 6 MiB of chunks per saver), so an interrupt once a few MiB
/// are saved always finds part of the big file unread.
const BIG: usize = 40 << 20;

/// One big file and a few small ones.
fn write_data(root: &Path, seed: u64, big: usize) {
    let mut rng = Rng::new(seed);
    std::fs::create_dir_all(root.join("small")).unwrap();
    std::fs::write(root.join("big.bin"), rng.bytes(big)).unwrap();
    for i in 0..30 {
        let n = (rng.next_u64() % 20_000) as usize;
        std::fs::write(root.join(format!("small/f{i:02}")), rng.bytes(n)).unwrap();
    }
}

fn total_size(root: &Path) -> u64 {
    walk(root)
        .iter()
        .filter_map(|p| std::fs::symlink_metadata(root.join(p)).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// Start `cairn backup --json data` in `cwd` with frequent status lines.
fn spawn_backup(repo: &Repo, cwd: &Path, extra: &[&str]) -> Child {
    let mut args = vec!["--json", "backup", "--host", HOST];
    args.extend_from_slice(extra);
    args.push("data");
    let opts = RunOpts {
        cwd: Some(cwd),
        env: vec![("RESTIC_PROGRESS_FPS", "20".to_string())],
    };
    command(Tool::Cairn, Some(repo), &args, &opts)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cairn backup")
}

fn signal(child: &Child, sig: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {sig} failed");
}

/// Wait until the backup's status lines report `bytes` saved
/// (`bytes_done`: read, chunked and stored; a reader reads up to 10 MiB
/// ahead of that) and `ready()` holds, then send `sig`; returns the exit
/// status and stderr.
fn interrupt_when(
    mut child: Child,
    bytes: u64,
    ready: impl Fn() -> bool,
    sig: &str,
) -> (std::process::ExitStatus, String) {
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let started = Instant::now();
    let mut sent = false;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let done = v["bytes_done"].as_u64().unwrap_or(0);
        if !sent && v["message_type"] == "status" && done >= bytes && ready() {
            signal(&child, sig);
            sent = true;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "backup too slow"
        );
    }
    let status = child.wait().expect("wait for cairn");
    let stderr = err.join().unwrap_or_default();
    assert!(sent, "the backup finished before it could be interrupted");
    (status, stderr)
}

fn snapshots(repo: &Repo) -> Vec<serde_json::Value> {
    cairn(repo, &["snapshots", "--json"])
        .ok()
        .json()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn is_checkpoint(sn: &serde_json::Value) -> bool {
    sn["tags"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t == "cairn-checkpoint"))
}

/// The summary of `backup --json` after the status lines.
fn summary(run: &Run) -> serde_json::Value {
    run.json_lines()
        .into_iter()
        .rev()
        .find(|v| v["message_type"] == "summary")
        .unwrap_or_else(|| panic!("no summary:\n{}", run.describe()))
}

fn restore_and_compare(repo: &Repo, snapshot: &str, data: &Path, scratch: &Path) {
    let target = scratch.join(format!("restore-{}", short(snapshot)));
    cairn(
        repo,
        &["restore", snapshot, "--target", target.to_str().unwrap()],
    )
    .ok();
    let restored = find_restored(&target, data);
    let diffs = compare_trees(data, &restored, CompareOpts::default());
    assert!(diffs.is_empty(), "restore differs: {diffs:#?}");
}

/// `restic check`. After a SIGKILL the dead process's lock is left, and
/// restic 0.14 refuses its exclusive check lock until `restic unlock`
/// removes it (as after a crash of restic itself), so then `--no-lock`.
fn check_with_restic(repo: &Repo, lock_left: bool) {
    if !restic_available() {
        restic_or_skip("restic check of a resumed backup");
        return;
    }
    if lock_left {
        restic(repo, &["check", "--no-lock"]).ok();
    } else {
        restic(repo, &["check"]).ok();
    }
}

/// File bytes each checkpoint holds (sizes of its files: a file in
/// progress counts with the prefix stored).
fn checkpoint_bytes(repo: &Repo) -> Vec<u64> {
    snapshots(repo)
        .iter()
        .filter(|s| is_checkpoint(s))
        .map(|sn| {
            let id = sn["id"].as_str().unwrap();
            cairn(repo, &["ls", "--json", id])
                .ok()
                .json_lines()
                .iter()
                .filter(|n| n["type"] == "file")
                .filter_map(|n| n["size"].as_u64())
                .sum()
        })
        .collect()
}

#[test]
fn sigint_saves_a_checkpoint_and_the_rerun_reads_only_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_data(&data, 1, BIG);
    let total = total_size(&data);
    let repo = Repo::new(tmp.path().join("repo"));
    init(Tool::Cairn, &repo, 2, None);

    let child = spawn_backup(&repo, tmp.path(), &[]);
    let (status, stderr) = interrupt_when(child, total / 8, || true, "-INT");
    assert_eq!(status.code(), Some(130), "stderr: {stderr}");
    assert!(
        stderr.contains("run the same command again to resume"),
        "{stderr}"
    );
    let sns = snapshots(&repo);
    assert_eq!(sns.len(), 1, "{sns:#?}");
    assert!(is_checkpoint(&sns[0]), "{:#?}", sns[0]);
    assert!(
        repo_files(&repo, "locks").is_empty(),
        "lock released on interrupt"
    );
    check_with_restic(&repo, false);
    let stored = checkpoint_bytes(&repo)[0];
    assert!(
        stored > 0 && stored < total,
        "checkpoint holds {stored} of {total}"
    );

    let run = run_in(
        Tool::Cairn,
        &repo,
        tmp.path(),
        &["--json", "backup", "--host", HOST, "data"],
    )
    .ok();
    let s = summary(&run);
    let read = s["bytes_read"].as_u64().unwrap();
    assert_eq!(
        read,
        total - stored,
        "only what the checkpoint lacks is read"
    );
    assert!(s["files_resumed"].as_u64().unwrap() >= 1, "{s}");
    let sns = snapshots(&repo);
    assert_eq!(sns.len(), 1, "checkpoint removed: {sns:#?}");
    assert!(!is_checkpoint(&sns[0]));
    let id = sns[0]["id"].as_str().unwrap().to_string();
    restore_and_compare(&repo, &id, &data, tmp.path());
    cairn(&repo, &["check", "--read-data"]).ok();
    check_with_restic(&repo, false);
}

#[test]
fn sigkill_after_a_checkpoint_loses_only_the_work_since_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_data(&data, 2, BIG);
    let total = total_size(&data);
    let repo = Repo::new(tmp.path().join("repo"));
    init(Tool::Cairn, &repo, 2, None);

    let child = spawn_backup(&repo, tmp.path(), &["--checkpoint-interval", "300ms"]);
    let has_snapshot = || !repo_files(&repo, "snapshots").is_empty();
    let (status, _) = interrupt_when(child, total / 2, has_snapshot, "-KILL");
    assert_eq!(status.code(), None, "killed by a signal");
    assert!(!repo_files(&repo, "locks").is_empty(), "the lock is left");
    let sns = snapshots(&repo);
    assert!(sns.iter().all(is_checkpoint), "{sns:#?}");
    let stored = checkpoint_bytes(&repo);
    let (most, all) = (*stored.iter().max().unwrap(), stored.iter().sum::<u64>());
    assert!(most > 0, "a checkpoint holds finished data");
    // No unlock needed: the lock of a dead process on this host is stale.
    cairn(&repo, &["check"]).ok();
    check_with_restic(&repo, true);

    let run = run_in(
        Tool::Cairn,
        &repo,
        tmp.path(),
        &["--json", "backup", "--host", HOST, "data"],
    )
    .ok();
    let read = summary(&run)["bytes_read"].as_u64().unwrap();
    assert!(
        read <= total - most && read >= total.saturating_sub(all),
        "read {read}, total {total}, checkpoints hold {stored:?}"
    );
    let sns = snapshots(&repo);
    assert_eq!(sns.len(), 1, "{sns:#?}");
    let id = sns[0]["id"].as_str().unwrap().to_string();
    restore_and_compare(&repo, &id, &data, tmp.path());
    check_with_restic(&repo, true);
}

#[test]
fn sigkill_at_random_moments_never_damages_the_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_data(&data, 3, 1 << 20);
    let repo = Repo::new(tmp.path().join("repo"));
    init(Tool::Cairn, &repo, 2, None);
    let first = backup(Tool::Cairn, &repo, &data, &[]);
    let original = tmp.path().join("original");
    std::fs::create_dir(&original).unwrap();
    let copy = std::process::Command::new("cp")
        .args(["-a", data.to_str().unwrap(), original.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(copy.success());

    // New data for the killed backups to work on.
    let mut rng = Rng::new(99);
    std::fs::write(data.join("new.bin"), rng.bytes(3 << 20)).unwrap();
    for i in 0..20 {
        std::fs::write(data.join(format!("small/n{i:02}")), rng.bytes(3000)).unwrap();
    }
    for trial in 0..20u64 {
        let mut child = spawn_backup(&repo, tmp.path(), &["--checkpoint-interval", "100ms"]);
        let delay = Duration::from_millis(rng.next_u64() % 1200);
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let check = cairn(&repo, &["check"]);
        assert!(
            check.success(),
            "trial {trial} (killed after {delay:?}): {}",
            check.describe()
        );
    }
    check_with_restic(&repo, true);
    restore_and_compare(&repo, &first, &original.join("data"), tmp.path());
    let last = backup(Tool::Cairn, &repo, &data, &[]);
    restore_and_compare(&repo, &last, &data, tmp.path());
    assert!(
        snapshots(&repo).iter().all(|s| !is_checkpoint(s)),
        "checkpoints removed"
    );
    cairn(&repo, &["check", "--read-data"]).ok();
    check_with_restic(&repo, true);
}
