//! `cairn backup` end to end: the real binary, a local repository, and the
//! JSON that `backup --json` and `snapshots --json` print.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const PASSWORD: &str = "backup-cli-test";

/// Run `cairn` in `cwd` against `repo` with a clean environment.
fn cairn(cwd: &Path, repo: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", cwd)
        .env("RESTIC_REPOSITORY", repo)
        .env("RESTIC_PASSWORD", PASSWORD)
        .output()
        .expect("run cairn")
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "cairn failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The last line of stdout as JSON.
fn last_json(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().expect("some output");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

#[test]
fn init_backup_and_list_snapshots() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let repo = cwd.join("repo");
    let data = cwd.join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    std::fs::write(data.join("a.txt"), b"alpha\n").unwrap();
    std::fs::write(data.join("sub/b.bin"), vec![7u8; 100_000]).unwrap();
    std::fs::write(data.join("skip.tmp"), b"excluded").unwrap();
    ok(cairn(cwd, &repo, &["init"]));

    // A relative target, tags split at commas, an exclude.
    let out = ok(cairn(
        cwd,
        &repo,
        &[
            "--json", "backup", "--tag", "a,b", "--host", "h1", "-e", "*.tmp", "data",
        ],
    ));
    let summary = last_json(&out);
    assert_eq!(summary["message_type"], "summary");
    assert_eq!(summary["files_new"], 2);
    assert_eq!(summary["files_unmodified"], 0);
    assert_eq!(summary["total_files_processed"], 2);
    assert_eq!(summary["total_bytes_processed"], 100_006);
    assert!(summary["data_blobs"].as_i64().unwrap() >= 2);
    assert!(summary["total_duration"].is_f64());
    let first_id = summary["snapshot_id"].as_str().unwrap().to_string();
    assert_eq!(first_id.len(), 64);

    let out = ok(cairn(cwd, &repo, &["--json", "snapshots"]));
    let list = last_json(&out);
    let snapshots = list.as_array().unwrap();
    assert_eq!(snapshots.len(), 1);
    let sn = &snapshots[0];
    assert_eq!(sn["id"], first_id.as_str());
    assert_eq!(sn["paths"], serde_json::json!([data.to_string_lossy()]));
    assert_eq!(sn["hostname"], "h1");
    assert_eq!(sn["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(sn["excludes"], serde_json::json!(["*.tmp"]));
    assert!(sn["program_version"]
        .as_str()
        .unwrap()
        .starts_with("cairn "));
    assert_eq!(sn["summary"]["files_new"], 2);

    // Same host and paths: the first snapshot is the parent; nothing is
    // read or added.
    let out = ok(cairn(
        cwd,
        &repo,
        &["--json", "backup", "-H", "h1", "-e", "*.tmp", "data"],
    ));
    let summary = last_json(&out);
    assert_eq!(summary["files_unmodified"], 2);
    assert_eq!(summary["files_new"], 0);
    assert_eq!(summary["data_blobs"], 0);
    let second_id = summary["snapshot_id"].as_str().unwrap().to_string();
    let out = ok(cairn(cwd, &repo, &["--json", "snapshots"]));
    let list = last_json(&out);
    let second = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == second_id.as_str())
        .expect("second snapshot listed");
    assert_eq!(second["parent"], first_id.as_str());

    // Text output, as restic's.
    let out = ok(cairn(
        cwd,
        &repo,
        &["backup", "--host", "h1", "-e", "*.tmp", "data"],
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("using parent snapshot"), "{text}");
    assert!(
        text.contains("Files:           0 new,     0 changed,     2 unmodified"),
        "{text}"
    );
    assert!(
        text.contains("processed 2 files, 97.662 KiB in 0:0"),
        "{text}"
    );
    assert!(
        text.lines().last().unwrap().starts_with("snapshot "),
        "{text}"
    );

    // A target that does not exist alone: fatal, exit 1, no snapshot.
    let out = cairn(cwd, &repo, &["backup", "missing"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing does not exist, skipping"));

    // An unreadable file: a warning, the snapshot is saved, exit 3.
    if std::fs::File::open("/proc/self/mem").is_ok() {
        let out = cairn(cwd, &repo, &["--json", "backup", "data", "/proc/self/mem"]);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("\"item\":\"/proc/self/mem\""), "{stderr}");
        assert_eq!(last_json(&out)["message_type"], "summary");
    }

    // The repository is still sound for restic, if it is installed.
    if Command::new("restic").arg("version").output().is_ok() {
        let out = Command::new("restic")
            .args(["-r", repo.to_str().unwrap(), "check"])
            .env("RESTIC_PASSWORD", PASSWORD)
            .env("RESTIC_CACHE_DIR", cwd.join("cache"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let out = Command::new("restic")
            .args(["-r", repo.to_str().unwrap(), "ls", &first_id])
            .env("RESTIC_PASSWORD", PASSWORD)
            .env("RESTIC_CACHE_DIR", cwd.join("cache"))
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&out.stdout);
        // restic, like cairn, keeps a relative target relative in the tree.
        assert!(listing.lines().any(|l| l == "/data/sub/b.bin"), "{listing}");
        assert!(!listing.contains("skip.tmp"), "{listing}");
    }
}
