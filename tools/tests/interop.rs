//! Interoperability with the real restic (0.14+ on `PATH`).
//!
//! Each test builds its own fixture tree and repository in a temporary
//! directory and checks one direction of compatibility end to end:
//!
//! - restic writes, cairn reads (format v1 and v2): `snapshots`, `ls`,
//!   every `cat` type, `check --read-data`, and a `restore` that reproduces
//!   the tree byte for byte with the metadata restic itself preserves.
//! - cairn writes, restic reads (v1/v2, Rabin/FastCDC): `restic check
//!   --read-data`, `restic snapshots --json`, `restic ls`, `restic restore`.
//! - one repository, both tools: deduplication against restic's blobs, keys
//!   added by either tool, and locks seen by either tool.
//!
//! A harness self-test (`restic_roundtrip_baseline`) restores with restic
//! itself, which shows the fixture and `compare_trees` are sound: what it
//! accepts is what restic preserves.
//!
//! Without restic the tests fail, unless `CAIRN_SKIP_RESTIC=1`.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("cairn-interop-")
        .tempdir()
        .expect("temp dir")
}

/// What both tools restore exactly: everything `compare_trees` checks.
fn restore_opts() -> CompareOpts {
    CompareOpts::default()
}

// ---- 0: the harness against restic itself -----------------------------------

/// restic backs up and restores the fixture; `compare_trees` must find no
/// difference. If this fails, the fixture or the comparison is wrong, not
/// cairn.
#[test]
fn restic_roundtrip_baseline() {
    if !restic_or_skip("restic_roundtrip_baseline") {
        return;
    }
    let tmp = tempdir();
    let src = tmp.path().join("fixture");
    build_fixture(&src, 1 << 20);
    let repo = Repo::new(tmp.path().join("repo"));
    init(Tool::Restic, &repo, 2, None);
    backup(Tool::Restic, &repo, &src, &[]);
    let target = tmp.path().join("restored");
    restic(
        &repo,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    )
    .ok();
    assert_same_tree(&src, &find_restored(&target, &src), restore_opts());
}

// ---- 1: restic writes, cairn reads --------------------------------------------

fn restic_writes_cairn_reads(version: u32) {
    let test = format!("restic_writes_cairn_reads_v{version}");
    if !restic_or_skip(&test) {
        return;
    }
    let tmp = tempdir();
    let src = tmp.path().join("fixture");
    build_fixture(&src, BIG_FILE_SIZE);
    let repo = Repo::new(tmp.path().join("repo"));
    init(Tool::Restic, &repo, version, None);
    let snap = backup(Tool::Restic, &repo, &src, &["--tag", "interop,restic"]);
    let mut f = Failures::default();

    // snapshots --json: every field restic prints, identical.
    let r = restic(&repo, &["snapshots", "--json"]).ok().json();
    if let Some(c) = f.run_ok(cairn(&repo, &["snapshots", "--json"])) {
        let c = c.json();
        let (ra, ca) = (
            r.as_array().cloned().unwrap_or_default(),
            c.as_array().cloned().unwrap_or_default(),
        );
        f.check(ra.len() == 1 && ca.len() == 1, || {
            format!(
                "snapshots --json: restic lists {} snapshots, cairn {}",
                ra.len(),
                ca.len()
            )
        });
        if let (Some(rs), Some(cs)) = (ra.first(), ca.first()) {
            for key in [
                "id", "short_id", "tree", "paths", "hostname", "username", "tags", "time", "uid",
                "gid",
            ] {
                f.check(rs[key] == cs[key], || {
                    format!(
                        "snapshots --json: field {key:?}: restic {} vs cairn {}",
                        rs[key], cs[key]
                    )
                });
            }
            f.check(cs["id"] == snap.as_str(), || {
                format!("cairn snapshots --json: id {} is not {snap}", cs["id"])
            });
        }
    }
    // The table mentions the snapshot.
    if let Some(c) = f.run_ok(cairn(&repo, &["snapshots"])) {
        f.check(c.stdout_str().contains(short(&snap)), || {
            format!(
                "cairn snapshots: no {} in the table:\n{}",
                short(&snap),
                c.describe()
            )
        });
    }

    // ls: the same paths (and types) as restic's ls.
    let restic_ls = ls_nodes(&restic(&repo, &["ls", "--json", "latest"]).ok());
    if let Some(c) = f.run_ok(cairn(&repo, &["ls", "--json", "latest"])) {
        let cairn_ls = ls_nodes(&c);
        f.check(restic_ls == cairn_ls, || {
            format!(
                "ls --json latest differs.\n  only restic: {:?}\n  only cairn: {:?}",
                restic_ls.difference(&cairn_ls).collect::<Vec<_>>(),
                cairn_ls.difference(&restic_ls).collect::<Vec<_>>()
            )
        });
    }
    if let Some(c) = f.run_ok(cairn(&repo, &["ls", "latest"])) {
        let lines: BTreeSet<String> = c.stdout_str().lines().map(str::to_string).collect();
        let missing: Vec<&String> = restic_ls
            .iter()
            .map(|(p, _)| p)
            .filter(|p| !p.contains('\n') && !lines.contains(*p))
            .collect();
        f.check(missing.is_empty(), || {
            format!("cairn ls latest (plain) lacks lines for {missing:?}")
        });
    }

    // cat: the same decrypted objects as restic's cat.
    let same_json = |f: &mut Failures, args: &[&str]| {
        let r = restic(&repo, args).ok().json();
        if let Some(c) = f.run_ok(cairn(&repo, args)) {
            let c = c.json();
            f.check(r == c, || {
                format!("cat {args:?}: restic\n{r}\n  vs cairn\n{c}")
            });
        }
    };
    same_json(&mut f, &["cat", "config"]);
    same_json(&mut f, &["cat", "masterkey"]);
    same_json(&mut f, &["cat", "snapshot", &snap]);
    for (id, _, _) in repo_files(&repo, "index") {
        same_json(&mut f, &["cat", "index", &id]);
    }
    for (id, _, _) in repo_files(&repo, "keys") {
        same_json(&mut f, &["cat", "key", &id]);
    }
    let blobs = list_blobs(&restic(&repo, &["list", "blobs"]).ok());
    let data: Vec<&String> = blobs
        .iter()
        .filter(|(t, _)| t == "data")
        .map(|(_, id)| id)
        .collect();
    let trees: Vec<&String> = blobs
        .iter()
        .filter(|(t, _)| t == "tree")
        .map(|(_, id)| id)
        .collect();
    f.check(data.len() >= 10, || {
        format!(
            "restic stored only {} data blobs; the fixture should need more",
            data.len()
        )
    });
    for id in data.iter().take(3).chain(trees.iter().take(2)) {
        let r = restic(&repo, &["cat", "blob", id]).ok().stdout;
        if let Some(c) = f.run_ok(cairn(&repo, &["cat", "blob", id])) {
            f.check(r == c.stdout, || {
                format!(
                    "cat blob {id}: {} bytes from restic, {} from cairn, contents differ",
                    r.len(),
                    c.stdout.len()
                )
            });
        }
    }
    let snap_json = restic(&repo, &["cat", "snapshot", &snap]).ok().json();
    let root_tree_id = snap_json["tree"]
        .as_str()
        .expect("snapshot has a tree")
        .to_string();
    let root_tree = restic(&repo, &["cat", "blob", &root_tree_id]).ok();
    if let Some(c) = f.run_ok(cairn(&repo, &["cat", "tree", "latest"])) {
        f.check(c.stdout == root_tree.stdout, || {
            "cat tree latest: not the snapshot's root tree blob".into()
        });
    }
    if let Some(sub) = tree_node(&root_tree.json(), "fixture").and_then(|n| n["subtree"].as_str()) {
        let sub_tree = restic(&repo, &["cat", "blob", sub]).ok();
        if let Some(c) = f.run_ok(cairn(&repo, &["cat", "tree", &format!("{snap}:/fixture")])) {
            f.check(c.stdout == sub_tree.stdout, || {
                "cat tree SNAP:/fixture: not the fixture's tree blob".into()
            });
        }
    } else {
        f.0.push("restic's root tree has no `fixture` directory".into());
    }
    let (pack_id, pack_path, _) = largest_pack(&repo);
    if let Some(c) = f.run_ok(cairn(&repo, &["cat", "pack", &pack_id])) {
        f.check(
            c.stdout == std::fs::read(&pack_path).expect("read pack"),
            || format!("cat pack {pack_id}: not the pack file's bytes"),
        );
    }

    // check --read-data.
    f.run_ok(cairn(&repo, &["check", "--read-data"]));

    // restore: the same tree, metadata included.
    let target = tmp.path().join("restored");
    if f.run_ok(cairn(
        &repo,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    ))
    .is_some()
    {
        let diffs = compare_trees(&src, &find_restored(&target, &src), restore_opts());
        f.check(diffs.is_empty(), || {
            format!(
                "cairn restore differs from the source ({}):\n  {}",
                diffs.len(),
                diffs.join("\n  ")
            )
        });
    }
    // Nothing was left behind: no locks.
    f.check(repo_files(&repo, "locks").is_empty(), || {
        format!("locks left behind: {:?}", repo_files(&repo, "locks"))
    });
    f.finish(&test);
}

#[test]
fn restic_writes_cairn_reads_v1() {
    restic_writes_cairn_reads(1);
}

#[test]
fn restic_writes_cairn_reads_v2() {
    restic_writes_cairn_reads(2);
}

// ---- 2: cairn writes, restic reads --------------------------------------------

fn cairn_writes_restic_reads(version: u32, chunker: &str) {
    let test = format!("cairn_writes_restic_reads_v{version}_{chunker}");
    if !restic_or_skip(&test) {
        return;
    }
    let tmp = tempdir();
    let src = tmp.path().join("fixture");
    build_fixture(&src, BIG_FILE_SIZE);
    let repo = Repo::new(tmp.path().join("repo"));
    init(Tool::Cairn, &repo, version, Some(chunker));
    let config = restic(&repo, &["cat", "config"]).ok().json();
    assert_eq!(
        config["version"], version,
        "restic sees the wrong version in cairn's config: {config}"
    );

    let snap = backup(Tool::Cairn, &repo, &src, &["--tag", "cairn,interop"]);
    let mut f = Failures::default();
    f.run_ok(restic(&repo, &["check", "--read-data"]));

    // snapshots --json: the snapshot with its paths, hostname and tags.
    if let Some(r) = f.run_ok(restic(&repo, &["snapshots", "--json"])) {
        let list = r.json();
        let sns = list.as_array().cloned().unwrap_or_default();
        f.check(sns.len() == 1, || {
            format!("restic snapshots lists {} snapshots: {list}", sns.len())
        });
        if let Some(sn) = sns.first() {
            let abs = src.to_str().unwrap();
            f.check(sn["id"] == snap.as_str(), || {
                format!("snapshot id {} is not {snap}", sn["id"])
            });
            f.check(sn["paths"] == serde_json::json!([abs]), || {
                format!("paths {} (want [{abs:?}])", sn["paths"])
            });
            f.check(sn["hostname"] == HOST, || {
                format!("hostname {} (want {HOST})", sn["hostname"])
            });
            let tags: BTreeSet<&str> = sn["tags"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            f.check(tags == BTreeSet::from(["cairn", "interop"]), || {
                format!("tags {} (want cairn, interop)", sn["tags"])
            });
        }
    }

    // ls: restic sees every path cairn lists, and every source entry.
    if let Some(r) = f.run_ok(restic(&repo, &["ls", "--json", "latest"])) {
        let restic_ls = ls_nodes(&r);
        let mut expected: BTreeSet<String> = walk(&src)
            .iter()
            .map(|p| format!("/fixture/{}", p.display()))
            .collect();
        expected.insert("/fixture".into());
        let listed: BTreeSet<String> = restic_ls.iter().map(|(p, _)| p.clone()).collect();
        f.check(listed == expected, || {
            format!(
                "restic ls of cairn's snapshot.\n  missing: {:?}\n  unexpected: {:?}",
                expected.difference(&listed).collect::<Vec<_>>(),
                listed.difference(&expected).collect::<Vec<_>>()
            )
        });
    }

    // restore with restic: the same tree, metadata included.
    let target = tmp.path().join("restored");
    if f.run_ok(restic(
        &repo,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    ))
    .is_some()
    {
        let diffs = compare_trees(&src, &find_restored(&target, &src), restore_opts());
        f.check(diffs.is_empty(), || {
            format!(
                "restic restore of cairn's snapshot differs ({}):\n  {}",
                diffs.len(),
                diffs.join("\n  ")
            )
        });
    }
    f.check(repo_files(&repo, "locks").is_empty(), || {
        format!("locks left behind: {:?}", repo_files(&repo, "locks"))
    });
    f.finish(&test);
}

#[test]
fn cairn_writes_restic_reads_v1_rabin() {
    cairn_writes_restic_reads(1, "rabin");
}

#[test]
fn cairn_writes_restic_reads_v2_rabin() {
    cairn_writes_restic_reads(2, "rabin");
}

#[test]
fn cairn_writes_restic_reads_v1_fastcdc() {
    cairn_writes_restic_reads(1, "fastcdc");
}

#[test]
fn cairn_writes_restic_reads_v2_fastcdc() {
    cairn_writes_restic_reads(2, "fastcdc");
}

// ---- 3: one repository, both tools ----------------------------------------------

/// `restic diff --json A B`: the statistics message.
fn diff_stats(repo: &Repo, a: &str, b: &str, metadata: bool) -> (Vec<Value>, Value) {
    let mut args = vec!["diff", "--json"];
    if metadata {
        args.push("--metadata");
    }
    args.extend([a, b]);
    let lines = restic(repo, &args).ok().json_lines();
    let stats = lines
        .iter()
        .find(|v| v["message_type"] == "statistics")
        .cloned()
        .unwrap_or(Value::Null);
    let changes = lines
        .into_iter()
        .filter(|v| v["message_type"] == "change")
        .collect();
    (changes, stats)
}

/// After restic backed up the fixture, `cairn backup --force` of the same
/// tree stores no new data blobs: cairn chunks with the repository's
/// polynomial and reuses restic's blobs.
#[test]
fn shared_repository_dedup() {
    if !restic_or_skip("shared_repository_dedup") {
        return;
    }
    let tmp = tempdir();
    let src = tmp.path().join("fixture");
    build_fixture(&src, BIG_FILE_SIZE);
    let repo = Repo::new(tmp.path().join("repo"));
    init(Tool::Restic, &repo, 2, None);
    let restic_snap = backup(Tool::Restic, &repo, &src, &[]);
    let blobs_before = list_blobs(&restic(&repo, &["list", "blobs"]).ok());
    let size_before = packs_size(&repo);

    let cairn_snap = backup(Tool::Cairn, &repo, &src, &["--force"]);
    let mut f = Failures::default();
    let blobs_after = list_blobs(&restic(&repo, &["list", "blobs"]).ok());
    let new_data: Vec<_> = blobs_after
        .difference(&blobs_before)
        .filter(|(t, _)| t != "tree")
        .collect();
    f.check(new_data.is_empty(), || {
        format!(
            "cairn stored {} new data blobs for unchanged files: {new_data:?}",
            new_data.len()
        )
    });
    let added = packs_size(&repo).saturating_sub(size_before);
    f.check(added < 64 << 10, || format!("cairn added {added} bytes of packs (limit 64 KiB) to a repository that holds the data already"));

    // The multi-chunk file has the same content ids in both snapshots.
    let content = |tool: Tool, snap: &str| -> Option<Value> {
        let sn = run(tool, &repo, &["cat", "snapshot", snap]).ok().json();
        let root = run(tool, &repo, &["cat", "blob", sn["tree"].as_str()?])
            .ok()
            .json();
        let sub = tree_node(&root, "fixture")?["subtree"]
            .as_str()?
            .to_string();
        let tree = run(tool, &repo, &["cat", "blob", &sub]).ok().json();
        Some(tree_node(&tree, BIG_FILE)?["content"].clone())
    };
    let (rc, cc) = (
        content(Tool::Restic, &restic_snap),
        content(Tool::Cairn, &cairn_snap),
    );
    f.check(rc.is_some() && rc == cc, || {
        format!("content of {BIG_FILE}: restic {rc:?} vs cairn {cc:?}")
    });
    f.check(
        rc.as_ref()
            .and_then(Value::as_array)
            .is_some_and(|a| a.len() > 1),
        || format!("{BIG_FILE} should have several chunks: {rc:?}"),
    );

    // restic's own view: no file changed, no data blob added or removed.
    let (changes, stats) = diff_stats(&repo, &restic_snap, &cairn_snap, false);
    f.check(changes.is_empty(), || {
        format!("restic diff shows changes between restic's and cairn's snapshot: {changes:?}")
    });
    for side in ["added", "removed"] {
        for field in ["files", "dirs", "others", "data_blobs"] {
            f.check(stats[side][field] == 0, || {
                format!(
                    "restic diff: {side}.{field} = {} (want 0): {stats}",
                    stats[side][field]
                )
            });
        }
    }
    f.check(stats["changed_files"] == 0, || {
        format!("restic diff: changed_files = {}", stats["changed_files"])
    });
    f.run_ok(restic(&repo, &["check"]));
    f.run_ok(cairn(&repo, &["check"]));
    f.finish("shared_repository_dedup");
}

/// cairn records the same metadata as restic for every node: `restic diff
/// --metadata` between restic's and cairn's snapshot of one tree shows no
/// `U` (metadata changed) entries.
#[test]
fn cairn_backup_metadata_matches_restic() {
    if !restic_or_skip("cairn_backup_metadata_matches_restic") {
        return;
    }
    let tmp = tempdir();
    let src = tmp.path().join("fixture");
    build_fixture(&src, 1 << 20);
    let repo = Repo::new(tmp.path().join("repo"));
    init(Tool::Restic, &repo, 2, None);
    let restic_snap = backup(Tool::Restic, &repo, &src, &[]);
    let cairn_snap = backup(Tool::Cairn, &repo, &src, &["--force"]);
    let (changes, stats) = diff_stats(&repo, &restic_snap, &cairn_snap, true);
    assert!(
        changes.is_empty(),
        "restic diff --metadata {restic_snap} {cairn_snap} shows {} differences:\n  {}\nstatistics: {stats}",
        changes.len(),
        changes.iter().map(Value::to_string).collect::<Vec<_>>().join("\n  ")
    );
}

/// A key added by either tool opens the repository in the other.
#[test]
fn keys_added_by_either_tool() {
    if !restic_or_skip("keys_added_by_either_tool") {
        return;
    }
    let tmp = tempdir();
    let repo = Repo::new(tmp.path().join("repo"));
    init(Tool::Restic, &repo, 2, None);
    let mut f = Failures::default();

    let pw_restic = tmp.path().join("pw-restic");
    std::fs::write(&pw_restic, "added by restic\n").unwrap();
    restic(
        &repo,
        &[
            "key",
            "add",
            "--new-password-file",
            pw_restic.to_str().unwrap(),
        ],
    )
    .ok();
    let by_restic = repo.with_password("added by restic");
    if let Some(c) = f.run_ok(cairn(&by_restic, &["key", "list", "--json"])) {
        let keys = c.json();
        f.check(keys.as_array().is_some_and(|a| a.len() == 2), || {
            format!("cairn key list shows {keys}, want 2 keys")
        });
    }
    f.run_ok(cairn(&by_restic, &["snapshots"]));

    let pw_cairn = tmp.path().join("pw-cairn");
    std::fs::write(&pw_cairn, "added by cairn\n").unwrap();
    f.run_ok(cairn(
        &repo,
        &[
            "key",
            "add",
            "--new-password-file",
            pw_cairn.to_str().unwrap(),
        ],
    ));
    let by_cairn = repo.with_password("added by cairn");
    if let Some(r) = f.run_ok(restic(&by_cairn, &["key", "list", "--json"])) {
        let keys = r.json();
        f.check(keys.as_array().is_some_and(|a| a.len() == 3), || {
            format!("restic key list shows {keys}, want 3 keys")
        });
    }
    f.run_ok(restic(&by_cairn, &["snapshots"]));
    f.run_ok(restic(&repo, &["check"]));
    f.check(repo_files(&repo, "keys").len() == 3, || {
        format!("keys/: {:?}", repo_files(&repo, "keys"))
    });
    f.finish("keys_added_by_either_tool");
}

/// Wait until `repo` has at least one lock file; its id.
fn wait_for_lock(repo: &Repo, who: &str) -> String {
    let start = Instant::now();
    loop {
        if let Some((id, _, _)) = repo_files(repo, "locks").into_iter().next() {
            return id;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{who} did not create a lock within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Each tool sees the other's live lock, does not remove it with `unlock`,
/// and an exclusive operation in one tool is refused while the other holds
/// a lock.
#[test]
fn locks_seen_by_either_tool() {
    if !restic_or_skip("locks_seen_by_either_tool") {
        return;
    }
    let tmp = tempdir();
    let repo = Repo::new(tmp.path().join("repo"));
    init(Tool::Restic, &repo, 2, None);
    let src = tmp.path().join("fixture");
    build_small_fixture(&src);
    backup(Tool::Restic, &repo, &src, &[]);
    let pw2 = tmp.path().join("pw2");
    std::fs::write(&pw2, "second\n").unwrap();
    restic(
        &repo,
        &["key", "add", "--new-password-file", pw2.to_str().unwrap()],
    )
    .ok();
    let keys_before = repo_files(&repo, "keys");
    // restic's `key list --json` shows short ids.
    let listed = restic(&repo, &["key", "list", "--json"]).ok().json();
    let current = listed
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["current"] == true)
        .and_then(|e| e["id"].as_str())
        .expect("restic key list shows the current key")
        .to_string();
    let own_key = keys_before
        .iter()
        .map(|k| k.0.clone())
        .find(|k| k.starts_with(&current))
        .expect("current key file");
    let other_key = keys_before
        .iter()
        .map(|k| k.0.clone())
        .find(|k| *k != own_key)
        .expect("second key");
    let mut f = Failures::default();

    // restic holds a (non-exclusive) lock while it reads stdin.
    let mut child = command(
        Tool::Restic,
        Some(&repo),
        &["backup", "--stdin", "--stdin-filename", "held.txt"],
        &RunOpts::default(),
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start restic backup --stdin");
    let lock = wait_for_lock(&repo, "restic backup --stdin");
    if let Some(c) = f.run_ok(cairn(&repo, &["list", "locks"])) {
        f.check(c.stdout_str().lines().any(|l| l.trim() == lock), || {
            format!(
                "cairn list locks does not show restic's lock {lock}:\n{}",
                c.describe()
            )
        });
    }
    if let Some(c) = f.run_ok(cairn(&repo, &["cat", "lock", &lock])) {
        let l = c.json();
        f.check(l["pid"] == child.id() && l["exclusive"] != true, || {
            format!("cairn cat lock {lock}: {l} (restic pid {})", child.id())
        });
    }
    f.run_ok(cairn(&repo, &["unlock"]));
    f.check(repo.path.join("locks").join(&lock).exists(), || {
        "cairn unlock removed restic's live lock".into()
    });
    let refused = cairn(&repo, &["key", "remove", &other_key]);
    f.check(
        !refused.success() && refused.stderr.to_lowercase().contains("lock"),
        || {
            format!(
                "cairn key remove (exclusive) should be refused while restic holds a lock:\n{}",
                refused.describe()
            )
        },
    );
    f.check(repo.path.join("keys").join(&other_key).exists(), || {
        "a key was removed despite restic's lock".into()
    });
    {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(b"data read while locked\n")
            .expect("write to restic");
    }
    let status = child.wait().expect("wait for restic");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(status.success(), "restic backup --stdin failed: {err}");
    f.check(repo_files(&repo, "locks").is_empty(), || {
        "restic's lock is still there after it exited".into()
    });

    // cairn holds a shared lock while it is blocked writing a pack to a
    // full pipe that nobody reads.
    let (pack, _, pack_size) = largest_pack(&repo);
    assert!(
        pack_size > 256 << 10,
        "the largest pack ({pack_size} bytes) must not fit in a pipe"
    );
    let mut child = command(
        Tool::Cairn,
        Some(&repo),
        &["cat", "pack", &pack],
        &RunOpts::default(),
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .stdin(Stdio::null())
    .spawn()
    .expect("start cairn cat pack");
    let lock = wait_for_lock(&repo, "cairn cat pack");
    if let Some(r) = f.run_ok(restic(&repo, &["list", "locks"])) {
        f.check(r.stdout_str().lines().any(|l| l.trim() == lock), || {
            format!(
                "restic list locks does not show cairn's lock {lock}:\n{}",
                r.describe()
            )
        });
    }
    if let Some(r) = f.run_ok(restic(&repo, &["cat", "lock", &lock])) {
        let l = r.json();
        f.check(l["pid"] == child.id() && l["exclusive"] != true, || {
            format!("restic cat lock {lock}: {l} (cairn pid {})", child.id())
        });
    }
    f.run_ok(restic(&repo, &["unlock"]));
    std::thread::sleep(Duration::from_millis(200));
    if let Ok(Some(status)) = child.try_wait() {
        f.0.push(format!(
            "`restic unlock` terminated cairn ({status}): restic 0.14 probes the liveness of a \
             lock holder on the same host with SIGHUP, so cairn must ignore SIGHUP while it \
             holds a lock"
        ));
    }
    f.check(repo.path.join("locks").join(&lock).exists(), || {
        "restic unlock removed cairn's live lock".into()
    });
    let refused = restic(&repo, &["key", "remove", &other_key]);
    f.check(
        !refused.success() && refused.stderr.contains("locked"),
        || {
            format!(
                "restic key remove (exclusive) should be refused while cairn holds a lock:\n{}",
                refused.describe()
            )
        },
    );
    f.check(repo.path.join("keys").join(&other_key).exists(), || {
        "a key was removed despite cairn's lock".into()
    });
    let mut out = Vec::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut out)
        .expect("read cairn's output");
    let status = child.wait().expect("wait for cairn");
    f.check(status.success() && out.len() as u64 == pack_size, || {
        format!(
            "cairn cat pack: {status}, {} of {pack_size} bytes",
            out.len()
        )
    });
    f.check(repo_files(&repo, "locks").is_empty(), || {
        "cairn's lock is still there after it exited".into()
    });
    f.finish("locks_seen_by_either_tool");
}

/// `cairn backup --json` ends with restic's summary message.
#[test]
fn cairn_backup_json_summary() {
    let tmp = tempdir();
    let src = tmp.path().join("fixture");
    build_small_fixture(&src);
    let repo = Repo::new(tmp.path().join("repo"));
    init(Tool::Cairn, &repo, 2, None);
    let run = run_in(
        Tool::Cairn,
        &repo,
        tmp.path(),
        &["backup", "--json", "fixture"],
    )
    .ok();
    let id = snapshot_id_from_summary(&run);
    let full = full_snapshot_id(Tool::Cairn, &repo, &id);
    assert!(full.starts_with(&id) && Path::new(&repo.path).join("snapshots").join(&full).exists());
}

/// `compare_trees` is not vacuous: a copy made with `cp -a` is equal, and
/// each kind of damage to the copy is reported.
#[test]
fn compare_trees_detects_differences() {
    let tmp = tempdir();
    let src = tmp.path().join("fixture");
    build_fixture(&src, 64 << 10);
    let copy = tmp.path().join("copy");
    sh("cp", &["-a".as_ref(), src.as_os_str(), copy.as_os_str()]);
    assert_same_tree(&src, &copy, CompareOpts::default());

    let hello = copy.join("small/hello.txt");
    let meta = std::fs::symlink_metadata(&hello).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    set_mtime(&hello, meta.mtime() as u64, meta.mtime_nsec() as u32 ^ 1);
    std::fs::set_permissions(
        copy.join("modes/setuid"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::lchown(copy.join("modes/foreign-owner"), Some(0), None).unwrap();
    sh(
        "setfattr",
        &[
            "-x".as_ref(),
            "user.comment".as_ref(),
            copy.join("xattrs/file.txt").as_os_str(),
        ],
    );
    std::fs::remove_file(copy.join("links/dangling")).unwrap();
    std::os::unix::fs::symlink("elsewhere", copy.join("links/dangling")).unwrap();
    std::fs::remove_file(copy.join("hardlinks/b/second")).unwrap();
    std::fs::write(copy.join("hardlinks/b/second"), b"one inode, three names\n").unwrap();
    let mut big = std::fs::read(copy.join(BIG_FILE)).unwrap();
    big[1000] ^= 0x40;
    std::fs::write(copy.join(BIG_FILE), &big).unwrap();
    std::fs::remove_file(copy.join("empty")).unwrap();

    let diffs = compare_trees(&src, &copy, CompareOpts::default()).join("\n");
    for expected in [
        "\"small/hello.txt\": mtime differs",
        "\"modes/setuid\": mode differs: 4755 vs 755",
        "\"modes/foreign-owner\": uid differs: 1001 vs 0",
        "\"xattrs/file.txt\": xattrs differs",
        "\"links/dangling\": symlink target differs",
        "hard-link groups differ",
        "\"big.bin\": content differs",
        "\"empty\": only in",
        // Writing into hardlinks/b and replacing files changed directory mtimes.
        "\"hardlinks/b\": mtime differs",
    ] {
        assert!(
            diffs.contains(expected),
            "compare_trees missed {expected:?}; it reported:\n{diffs}"
        );
    }
}
