//! `cairn restore`, `dump`, `diff`, `find` and `stats` end to end, against
//! the real restic (0.14+) on the same repository:
//!
//! - `restore_matches_restic_with_options`: include/exclude and
//!   `snapshot:subfolder` restores equal restic's; a damaged restore is
//!   finished by re-running (only what is wrong is rewritten, the rest is
//!   reported unchanged); `--dry-run`, `--delete`, `--overwrite never`,
//!   `--sparse`, `--verify` and `--json` status/summary lines; the
//!   repository is byte for byte unchanged by every restore.
//! - `dump_diff_find_stats_match_restic`: `diff` (text and JSON) and
//!   `stats` (all four modes) print exactly what restic prints; `find`
//!   prints restic's text and equivalent JSON; `dump` tars list the same
//!   entries as restic's and extract to the same tree; zip archives pass
//!   `unzip -t` and extract to the same content.
//! - `hostile_snapshot_is_contained`: a snapshot written by hand with the
//!   core library (names `..`, `a/b`, duplicates, a symlink followed by a
//!   directory of the same name) restores and dumps without creating
//!   anything outside the target, names every skipped entry, and exits 3.
//!
//! Without restic the first two fail, unless `CAIRN_SKIP_RESTIC=1`.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("cairn-restore-")
        .tempdir()
        .expect("temp dir")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A restic repository (v2) with two snapshots of the fixture: the second
/// after adding, changing and removing files.
struct Setup {
    tmp: tempfile::TempDir,
    src: std::path::PathBuf,
    repo: Repo,
    first: String,
    second: String,
}

fn setup() -> Setup {
    let tmp = tempdir();
    let src = tmp.path().join("fixture");
    build_fixture(&src, 3 << 20);
    let repo = Repo::new(tmp.path().join("repo"));
    init(Tool::Restic, &repo, 2, None);
    let first = backup(Tool::Restic, &repo, &src, &[]);
    let second_dir = tmp.path().join("second");
    std::fs::create_dir(&second_dir).unwrap();
    sh(
        "cp",
        &["-a".as_ref(), src.as_os_str(), second_dir.as_os_str()],
    );
    let copy = second_dir.join("fixture");
    std::fs::write(copy.join("small/hello.txt"), b"changed\n").unwrap();
    std::fs::write(copy.join("added.txt"), b"new file\n").unwrap();
    std::fs::remove_file(copy.join("small/4k.bin")).unwrap();
    chmod(&copy.join("modes/exec"), 0o700);
    let second = backup(Tool::Restic, &repo, &copy, &[]);
    Setup {
        tmp,
        src,
        repo,
        first,
        second,
    }
}

#[test]
fn restore_matches_restic_with_options() {
    if !restic_or_skip("restore_matches_restic_with_options") {
        return;
    }
    let Setup {
        tmp,
        src,
        repo,
        first,
        ..
    } = setup();
    let before = hash_dir(&repo.path);
    let mut f = Failures::default();
    let target = |name: &str| tmp.path().join(name);

    // Include / exclude: the same trees as restic's.
    let cases: Vec<Vec<&str>> = vec![
        vec!["--include", "/fixture/small"],
        vec!["--exclude", "*.bin", "--iexclude", "NAMES"],
    ];
    for (i, extra) in cases.iter().enumerate() {
        let (c, r) = (target(&format!("c{i}")), target(&format!("r{i}")));
        let mut args: Vec<&str> = vec!["restore", &first, "--target", s(&c)];
        args.extend(extra);
        if f.run_ok(cairn(&repo, &args)).is_some() {
            args[3] = s(&r);
            restic(&repo, &args).ok();
            let diffs = compare_trees(
                &r.join("fixture"),
                &c.join("fixture"),
                CompareOpts::default(),
            );
            f.check(diffs.is_empty(), || {
                format!(
                    "restore {extra:?} differs from restic's:\n  {}",
                    diffs.join("\n  ")
                )
            });
        }
    }
    // snapshot:subfolder (restic 0.14 has no such form: compare with its
    // --include of that folder; the target itself is no snapshot entry).
    let (c, r) = (target("sub-c"), target("sub-r"));
    let spec = format!("{first}:/fixture/modes");
    if f.run_ok(cairn(&repo, &["restore", &spec, "--target", s(&c)]))
        .is_some()
    {
        restic(
            &repo,
            &[
                "restore",
                &first,
                "--target",
                s(&r),
                "--include",
                "/fixture/modes",
            ],
        )
        .ok();
        let modes = r.join("fixture/modes");
        let meta = std::fs::metadata(&modes).unwrap();
        chmod(&c, meta.mode() & 0o7777);
        set_mtime(&c, meta.mtime() as u64, meta.mtime_nsec() as u32);
        let diffs = compare_trees(&modes, &c, CompareOpts::default());
        f.check(diffs.is_empty(), || {
            format!(
                "restore {spec} differs from restic's:\n  {}",
                diffs.join("\n  ")
            )
        });
    }

    // A full restore, damaged, then finished by running again.
    let full = target("full");
    f.run_ok(cairn(&repo, &["restore", &first, "--target", s(&full)]));
    let restored = full.join("fixture");
    let big = restored.join(BIG_FILE);
    let ino = std::fs::metadata(&big).map(|m| m.ino()).unwrap_or(0);
    let len = std::fs::metadata(&big).map(|m| m.len()).unwrap_or(0);
    std::fs::File::options()
        .write(true)
        .open(&big)
        .and_then(|file| file.set_len(len / 3))
        .unwrap();
    std::fs::remove_file(restored.join("small/hello.txt")).unwrap();
    std::fs::write(restored.join("small/100k.bin"), b"short").unwrap();
    let again = cairn(
        &repo,
        &["restore", "--json", "-vvv", &first, "--target", s(&full)],
    );
    if let Some(run) = f.run_ok(again) {
        let lines = run.json_lines();
        let action = |item: &str| -> Option<String> {
            lines
                .iter()
                .find(|v| v["message_type"] == "verbose_status" && v["item"] == item)
                .and_then(|v| v["action"].as_str().map(str::to_string))
        };
        let expect = [
            (format!("/fixture/{BIG_FILE}"), "updated"),
            ("/fixture/small/hello.txt".to_string(), "restored"),
            ("/fixture/small/100k.bin".to_string(), "updated"),
            ("/fixture/small/4k.bin".to_string(), "unchanged"),
        ];
        for (item, want) in expect {
            let got = action(&item);
            f.check(got.as_deref() == Some(want), || {
                format!("second restore: {item} is {got:?}, expected {want}")
            });
        }
        let summary = lines.iter().find(|v| v["message_type"] == "summary");
        f.check(
            summary.is_some_and(|s| s["files_skipped"].as_u64().unwrap_or(0) > 10),
            || format!("second restore: summary {summary:?} skips too little"),
        );
    }
    let diffs = compare_trees(&src, &restored, CompareOpts::default());
    f.check(diffs.is_empty(), || {
        format!(
            "resumed restore differs from the source:\n  {}",
            diffs.join("\n  ")
        )
    });
    f.check(
        std::fs::metadata(&big).map(|m| m.ino()).unwrap_or(1) == ino,
        || "the truncated file was replaced, not finished in place".into(),
    );

    // --dry-run changes nothing; --delete removes what the snapshot lacks;
    // --overwrite never keeps what is there.
    std::fs::write(restored.join("extra"), b"not in the snapshot").unwrap();
    std::fs::write(restored.join("empty"), b"local change").unwrap();
    let fingerprint = hash_dir(&full);
    let dry = cairn(
        &repo,
        &[
            "restore",
            "--dry-run",
            "--delete",
            "-vv",
            &first,
            "--target",
            s(&full),
        ],
    );
    if let Some(run) = f.run_ok(dry) {
        f.check(hash_dir(&full) == fingerprint, || {
            "--dry-run changed the target".into()
        });
        let out = run.stdout_str();
        f.check(out.contains("deleted   /fixture/extra"), || {
            format!("--dry-run -vv does not list the deletion:\n{out}")
        });
    }
    f.run_ok(cairn(
        &repo,
        &[
            "restore",
            "--overwrite",
            "never",
            &first,
            "--target",
            s(&full),
        ],
    ));
    f.check(
        std::fs::read(restored.join("empty")).unwrap_or_default() == b"local change",
        || "--overwrite never replaced a file".into(),
    );
    f.run_ok(cairn(
        &repo,
        &[
            "restore",
            "--delete",
            "--verify",
            &first,
            "--target",
            s(&full),
        ],
    ));
    f.check(!restored.join("extra").exists(), || {
        "--delete kept /extra".into()
    });
    let diffs = compare_trees(&src, &restored, CompareOpts::default());
    f.check(diffs.is_empty(), || {
        format!(
            "restore --delete differs from the source:\n  {}",
            diffs.join("\n  ")
        )
    });

    // --sparse: the 2 MiB zero file takes (almost) no blocks.
    let sparse = target("sparse");
    if let Some(run) = f.run_ok(cairn(
        &repo,
        &[
            "restore",
            "--json",
            "--sparse",
            &first,
            "--target",
            s(&sparse),
        ],
    )) {
        let zeros = sparse.join("fixture/zeros.bin");
        let meta = std::fs::metadata(&zeros).unwrap();
        f.check(
            meta.len() == 2 << 20 && meta.blocks() * 512 < 1 << 20,
            || format!("--sparse: zeros.bin has {} blocks", meta.blocks()),
        );
        let summary = run.json_lines().into_iter().last().unwrap_or(Value::Null);
        f.check(
            summary["message_type"] == "summary"
                && summary["total_bytes"] == summary["bytes_restored"]
                && summary["total_files"] == summary["files_restored"],
            || format!("--json summary: {summary}"),
        );
    }
    f.check(hash_dir(&repo.path) == before, || {
        "a restore changed the repository".into()
    });
    f.finish("restore_matches_restic_with_options");
}

/// JSON lines as values, ignoring key order.
fn json_set(run: &Run) -> BTreeSet<String> {
    run.json_lines().iter().map(|v| v.to_string()).collect()
}

#[test]
fn dump_diff_find_stats_match_restic() {
    if !restic_or_skip("dump_diff_find_stats_match_restic") {
        return;
    }
    let Setup {
        tmp,
        repo,
        first,
        second,
        ..
    } = setup();
    let mut f = Failures::default();
    let same_text = |f: &mut Failures, args: &[&str]| {
        let r = restic(&repo, args).ok();
        if let Some(c) = f.run_ok(cairn(&repo, args)) {
            f.check(c.stdout == r.stdout, || {
                format!(
                    "{args:?}: restic printed\n{}\ncairn printed\n{}",
                    r.stdout_str(),
                    c.stdout_str()
                )
            });
        }
    };
    same_text(&mut f, &["diff", &first, &second]);
    same_text(&mut f, &["diff", "--metadata", &first, &second]);
    for mode in [
        "restore-size",
        "files-by-contents",
        "blobs-per-file",
        "raw-data",
    ] {
        same_text(&mut f, &["stats", "--mode", mode]);
        same_text(&mut f, &["--json", "stats", "--mode", mode, &first]);
    }
    // restic lists snapshots in directory order: one snapshot at a time.
    same_text(
        &mut f,
        &["find", "-s", &second, "*.txt", "--oldest", "2017-01-01"],
    );
    same_text(&mut f, &["find", "-s", &first, "-i", "HELLO*", "--long"]);
    let args = ["diff", "--json", "--metadata", &first, &second];
    let r = json_set(&restic(&repo, &args).ok());
    if let Some(c) = f.run_ok(cairn(&repo, &args)) {
        f.check(json_set(&c) == r, || format!("{args:?}: JSON differs"));
    }
    let args = ["find", "--json", "-s", &first, "*.bin"];
    let r = restic(&repo, &args).ok().json();
    if let Some(c) = f.run_ok(cairn(&repo, &args)) {
        f.check(c.json() == r, || {
            format!("{args:?}: JSON differs:\n{r}\n{}", c.json())
        });
    }

    // dump: a tar of a folder lists like restic's and extracts to the same
    // tree; one file is its content.
    let listing = |tar: &Path| -> String {
        let out = Command::new("tar").arg("tvf").arg(tar).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let (ct, rt) = (tmp.path().join("c.tar"), tmp.path().join("r.tar"));
    f.run_ok(cairn(
        &repo,
        &["dump", &first, "/fixture", "--target", s(&ct)],
    ));
    std::fs::write(
        &rt,
        restic(&repo, &["dump", &first, "/fixture"]).ok().stdout,
    )
    .unwrap();
    f.check(listing(&ct) == listing(&rt), || {
        format!(
            "dump tar listings differ:\n{}\nvs restic\n{}",
            listing(&ct),
            listing(&rt)
        )
    });
    let (cx, rx) = (tmp.path().join("cx"), tmp.path().join("rx"));
    for (tar, dir) in [(&ct, &cx), (&rt, &rx)] {
        std::fs::create_dir(dir).unwrap();
        let ok = Command::new("tar")
            .args(["xf", s(tar), "-C", s(dir), "--xattrs", "--numeric-owner"])
            .status()
            .is_ok_and(|st| st.success());
        f.check(ok, || format!("tar xf {} failed", tar.display()));
    }
    // restic 0.14 writes mtimes rounded to seconds (ustar); cairn writes
    // them exactly in PAX records, as later restic versions do.
    let no_mtime = CompareOpts {
        mtime: false,
        ..CompareOpts::default()
    };
    let diffs = compare_trees(&rx.join("fixture"), &cx.join("fixture"), no_mtime);
    f.check(diffs.is_empty(), || {
        format!("extracted dumps differ:\n  {}", diffs.join("\n  "))
    });
    let one = format!("/fixture/{BIG_FILE}");
    let r = restic(&repo, &["dump", &first, &one]).ok().stdout;
    if let Some(c) = f.run_ok(cairn(&repo, &["dump", &first, &one])) {
        f.check(c.stdout == r, || "dump of one file differs".into());
    }

    // zip: a valid archive with the same content.
    let zip = tmp.path().join("c.zip");
    f.run_ok(cairn(
        &repo,
        &["dump", "-a", "zip", &first, "/", "--target", s(&zip)],
    ));
    let unzip = |args: &[&str]| {
        Command::new("unzip")
            .args(args)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|st| st.success())
    };
    f.check(unzip(&["-t", s(&zip)]), || {
        "unzip -t rejects the zip dump".into()
    });
    let zx = tmp.path().join("zx");
    f.check(unzip(&["-q", s(&zip), "-d", s(&zx)]), || {
        "unzip failed".into()
    });
    // The same contents (unzip drops control characters from names, so
    // names are not compared).
    let contents = |dir: &Path| -> Vec<String> {
        let mut v: Vec<String> = hash_dir(dir)
            .into_values()
            .filter(|v| v.starts_with("file"))
            .collect();
        v.sort();
        v
    };
    f.check(
        contents(&zx.join("fixture")) == contents(&rx.join("fixture")),
        || "zip extracts to other content".into(),
    );
    f.finish("dump_diff_find_stats_match_restic");
}

#[test]
fn hostile_snapshot_is_contained() {
    use cairn_core::backend::{Backend, LocalBackend};
    use cairn_core::blob::BlobType;
    use cairn_core::format::time::GoTime;
    use cairn_core::format::tree::{go_mode_from_unix, Node, NodeType, Tree};
    use cairn_core::format::Snapshot;
    use cairn_core::repository::{OpenOptions, Repository};
    use std::sync::Arc;

    let tmp = tempdir();
    let repo = Repo::new(tmp.path().join("repo"));
    init(Tool::Cairn, &repo, 2, None);
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    {
        let be: Arc<dyn Backend> = Arc::new(LocalBackend::new(&repo.path));
        let core = Repository::open(be, PASSWORD.as_bytes(), &OpenOptions::default()).unwrap();
        core.load_index().unwrap();
        let file = |name: &str, data: &[u8]| {
            let mut n = Node::new(name, NodeType::File);
            n.content = Some(vec![core.save_blob(BlobType::Data, data).unwrap().0]);
            n.size = data.len() as u64;
            n.mode = 0o644;
            n
        };
        let dir = |name: &str, nodes: Vec<Node>| {
            let mut n = Node::new(name, NodeType::Dir);
            n.subtree = Some(core.save_tree(&Tree { nodes }).unwrap());
            n.mode = go_mode_from_unix(0o040_755);
            n
        };
        let mut evil = Node::new("evil", NodeType::Symlink);
        evil.link_target = outside.clone().into_os_string();
        evil.mode = go_mode_from_unix(0o120_777);
        let nodes = vec![
            file("..", b"up"),
            file("a/b", b"slash"),
            file("../outside/pwned", b"escape"),
            evil,
            dir("evil", vec![file("pwned", b"through the link")]),
            file("good", b"good"),
            file("good", b"duplicate"),
        ];
        let root = core.save_tree(&Tree { nodes }).unwrap();
        core.flush().unwrap();
        let sn = Snapshot::new(GoTime::now(), root, vec!["/hostile".into()]);
        core.save_snapshot(&sn).unwrap();
    }
    let target = tmp.path().join("target");
    let run = cairn(&repo, &["restore", "latest", "--target", s(&target)]);
    let mut f = Failures::default();
    f.check(run.status.code() == Some(3), || {
        format!(
            "restore of a hostile snapshot: expected exit 3\n{}",
            run.describe()
        )
    });
    for name in ["\"..\"", "\"a/b\"", "/evil", "/good: duplicate"] {
        f.check(run.stderr.contains(name), || {
            format!("restore does not name {name}:\n{}", run.stderr)
        });
    }
    let mut around: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    around.sort();
    f.check(around == ["outside", "repo", "target"], || {
        format!("entries next to the target: {around:?}")
    });
    f.check(std::fs::read_dir(&outside).unwrap().count() == 0, || {
        "something was written outside the target".into()
    });
    f.check(
        std::fs::read(target.join("good")).unwrap_or_default() == b"good",
        || "the good file was not restored".into(),
    );

    let tar = tmp.path().join("dump.tar");
    let run = cairn(&repo, &["dump", "latest", "/", "--target", s(&tar)]);
    f.check(run.status.code() == Some(3), || {
        format!(
            "dump of a hostile snapshot: expected exit 3\n{}",
            run.describe()
        )
    });
    let listing = Command::new("tar").arg("tf").arg(&tar).output().unwrap();
    let names = String::from_utf8_lossy(&listing.stdout).into_owned();
    f.check(
        names.lines().all(|n| !n.contains("..") && n != "a/b"),
        || format!("dump archived a hostile name:\n{names}"),
    );
    f.finish("hostile_snapshot_is_contained");
}
