//! Restores into targets that hold something already (overwrite policies,
//! resuming an interrupted restore, `--delete`, `--dry-run`), and the
//! content stage's options and scale: sparse files, extended attribute
//! selection, shared blobs, many packs, deep trees.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::backend::{FileType, Observed, Op};
use crate::format::tree::ExtendedAttribute;
use crate::testutil::{noise, repo_on};

use super::*;

/// A repository on a memory backend, and the count of pack bytes read from
/// it by ranged reads.
fn counting_repo() -> (Arc<AtomicU64>, Repository) {
    let pack_bytes = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&pack_bytes);
    let be = Observed::new(MemBackend::new(), move |op: Op<'_>| {
        if let Op::ReadRange {
            tpe: FileType::Pack,
            length,
            ..
        } = op
        {
            counter.fetch_add(length, Ordering::Relaxed);
        }
    });
    (pack_bytes, repo_on(Arc::new(be), 2))
}

/// Every file below `dir` with its content, by relative path.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                out.insert(format!("{rel}/"), Vec::new());
                walk(root, &path, out);
            } else if meta.is_file() {
                out.insert(rel, std::fs::read(&path).unwrap());
            } else {
                out.insert(rel, b"(special)".to_vec());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn opts(overwrite: Overwrite) -> RestoreOptions {
    RestoreOptions {
        overwrite,
        ..RestoreOptions::default()
    }
}

#[test]
fn rerun_finishes_an_interrupted_restore_rewriting_only_what_is_wrong() {
    let (pack_bytes, repo) = counting_repo();
    let blobs: Vec<Vec<u8>> = (0..4).map(|i| noise(i, 50_000)).collect();
    let parts: Vec<&[u8]> = blobs.iter().map(Vec::as_slice).collect();
    let root = root(
        &repo,
        vec![
            file(&repo, "big", &parts),
            file(&repo, "small", &[b"small file"]),
            file(&repo, "gone", &[b"deleted by the user"]),
            dir(&repo, "d", vec![file(&repo, "same", &[b"same"])]),
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    let (_, first, events) = run_with(
        &repo,
        &root,
        &Selection::All,
        tmp.path(),
        &opts(Overwrite::Always),
    );
    assert!(events.problems.is_empty() && first.stats.is_complete());
    let expected = contents(tmp.path());
    let read_first = pack_bytes.swap(0, Ordering::Relaxed);

    // Interrupted: "big" lost its last blob but for a few bytes, of which
    // one is wrong; "small" was never written; "gone" is missing.
    let big = tmp.path().join("big");
    let ino = std::fs::metadata(&big).unwrap().ino();
    let mut data = std::fs::read(&big).unwrap();
    data.truncate(150_000 + 10);
    data[150_005] ^= 1;
    std::fs::write(&big, &data).unwrap();
    std::fs::write(tmp.path().join("small"), b"").unwrap();
    std::fs::remove_file(tmp.path().join("gone")).unwrap();

    let (plan, second, events) = run_with(
        &repo,
        &root,
        &Selection::All,
        tmp.path(),
        &opts(Overwrite::Always),
    );
    assert!(events.problems.is_empty(), "{:?}", events.problems);
    assert_eq!(contents(tmp.path()), expected);
    assert_eq!(events.with(Action::Updated), vec!["/small", "/big"]);
    assert_eq!(events.with(Action::Restored), vec!["/d", "/gone"]);
    assert_eq!(events.with(Action::Unchanged), vec!["/d/same"]);
    assert_eq!(
        std::fs::metadata(&big).unwrap().ino(),
        ino,
        "updated in place"
    );
    // Only the last blob of "big", "small" and "gone" were fetched.
    let read_second = pack_bytes.load(Ordering::Relaxed);
    assert!(
        read_second < read_first / 3,
        "{read_second} of {read_first}"
    );
    assert_eq!(second.stats.files_skipped, 1);
    assert_eq!(second.stats.files_restored, second.stats.total_files);
    assert_eq!(second.stats.bytes_restored, second.stats.total_bytes);
    let mut found = Vec::new();
    let v = verify(&plan, tmp.path(), Some(&second.files), &mut |p| {
        found.push(p)
    })
    .unwrap();
    assert!(found.is_empty(), "{found:?}");
    assert_eq!(v.files, 4);
}

#[test]
fn if_changed_trusts_size_and_mtime_unless_verifying() {
    let (_, repo) = repo();
    let root = root(&repo, vec![file(&repo, "f", &[b"original"])]);
    let tmp = tempfile::tempdir().unwrap();
    run_with(
        &repo,
        &root,
        &Selection::All,
        tmp.path(),
        &opts(Overwrite::Always),
    );
    // Same size, same mtime, different content: if-changed believes it.
    let f = tmp.path().join("f");
    let mtime = std::fs::metadata(&f).unwrap().modified().unwrap();
    std::fs::write(&f, b"ORIGINAL").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let (_, _, events) = run_with(
        &repo,
        &root,
        &Selection::All,
        tmp.path(),
        &opts(Overwrite::IfChanged),
    );
    assert_eq!(events.with(Action::Unchanged), vec!["/f"]);
    assert_eq!(std::fs::read(&f).unwrap(), b"ORIGINAL");
    let verifying = RestoreOptions {
        verify: true,
        ..opts(Overwrite::IfChanged)
    };
    let (_, _, events) = run_with(&repo, &root, &Selection::All, tmp.path(), &verifying);
    assert_eq!(events.with(Action::Updated), vec!["/f"]);
    assert_eq!(std::fs::read(&f).unwrap(), b"original");
}

#[test]
fn never_and_if_newer_leave_existing_entries_alone() {
    let (_, repo) = repo();
    // The snapshot's files are from 2020 (see `file`).
    let root = root(
        &repo,
        vec![
            file(&repo, "old", &[b"from the snapshot"]),
            file(&repo, "new", &[b"from the snapshot"]),
            dir(&repo, "d", vec![file(&repo, "missing", &[b"restored"])]),
        ],
    );
    for (overwrite, old_kept) in [(Overwrite::Never, true), (Overwrite::IfNewer, false)] {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("old"), b"older local").unwrap();
        std::fs::write(tmp.path().join("new"), b"newer local").unwrap();
        let old = std::fs::File::options()
            .write(true)
            .open(tmp.path().join("old"))
            .unwrap();
        old.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000))
            .unwrap();
        let (_, restored, events) =
            run_with(&repo, &root, &Selection::All, tmp.path(), &opts(overwrite));
        assert!(events.problems.is_empty(), "{:?}", events.problems);
        assert_eq!(
            std::fs::read(tmp.path().join("new")).unwrap(),
            b"newer local"
        );
        assert_eq!(
            std::fs::read(tmp.path().join("old")).unwrap() == b"older local",
            old_kept,
            "{overwrite}"
        );
        assert_eq!(
            std::fs::read(tmp.path().join("d/missing")).unwrap(),
            b"restored"
        );
        let skipped = if old_kept {
            vec!["/old", "/new"]
        } else {
            vec!["/new"]
        };
        assert_eq!(events.with(Action::Skipped), skipped, "{overwrite}");
        assert_eq!(restored.stats.files_skipped, skipped.len() as u64);
        assert!(restored.stats.is_complete());
        // Skipped files are not verified.
        let mut found = Vec::new();
        verify(
            &restored_plan(&repo, &root),
            tmp.path(),
            Some(&restored.files),
            &mut |p| found.push(p),
        )
        .unwrap();
        assert!(found.is_empty(), "{found:?}");
    }
}

fn restored_plan(repo: &Repository, root: &TreeId) -> Plan {
    plan(repo, root, &Selection::All, &mut |p| panic!("{p}")).unwrap()
}

#[test]
fn delete_removes_only_selected_entries_the_snapshot_lacks() {
    let (_, repo) = repo();
    let mut sock = Node::new("sock", NodeType::Socket);
    sock.mode = 0o755;
    let root = root(
        &repo,
        vec![
            dir(&repo, "a", vec![file(&repo, "keep", &[b"k"])]),
            dir(&repo, "b", vec![file(&repo, "keep", &[b"k"])]),
            file(&repo, "replaced", &[b"now a file"]),
            sock,
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(target.join("a/extra/deeper")).unwrap();
    std::fs::create_dir_all(target.join("b")).unwrap();
    std::fs::create_dir_all(target.join("replaced/sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("precious"), b"p").unwrap();
    std::fs::write(target.join("a/extra/deeper/f"), b"x").unwrap();
    std::fs::write(target.join("b/extra"), b"x").unwrap();
    std::fs::write(target.join("sock"), b"not really a socket").unwrap();
    std::os::unix::fs::symlink(&outside, target.join("a/evil")).unwrap();

    // Only below /a: /b/extra stays.
    let sel = Selection::new(patterns(&["/a", "/replaced"]), PatternSet::default()).unwrap();
    let delete = RestoreOptions {
        delete: true,
        ..RestoreOptions::default()
    };
    let dry = RestoreOptions {
        dry_run: true,
        ..delete.clone()
    };
    let before = contents(&target);
    let (_, _, events) = run_with(&repo, &root, &sel, &target, &dry);
    assert_eq!(contents(&target), before, "a dry run changes nothing");
    assert_eq!(events.with(Action::Deleted), vec!["/a/evil", "/a/extra"]);

    let (_, restored, events) = run_with(&repo, &root, &sel, &target, &delete);
    assert!(events.problems.is_empty(), "{:?}", events.problems);
    assert_eq!(events.with(Action::Deleted), vec!["/a/evil", "/a/extra"]);
    assert_eq!(restored.stats.files_deleted, 4);
    assert_eq!(names(&target.join("a")), vec![OsString::from("keep")]);
    assert!(target.join("b/extra").exists());
    assert!(target.join("sock").exists(), "the snapshot has it");
    assert_eq!(
        std::fs::read(target.join("replaced")).unwrap(),
        b"now a file"
    );
    assert_eq!(std::fs::read(outside.join("precious")).unwrap(), b"p");

    // Without a selection everything the snapshot lacks goes.
    run_with(&repo, &root, &Selection::All, &target, &delete);
    assert_eq!(names(&target.join("b")), vec![OsString::from("keep")]);
}

#[test]
fn dry_run_reports_and_changes_nothing() {
    let (_, repo) = repo();
    let root = root(
        &repo,
        vec![
            file(&repo, "same", &[b"same"]),
            file(&repo, "differs", &[b"new"]),
            dir(&repo, "d", vec![file(&repo, "new", &[b"new"])]),
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    let dry = RestoreOptions {
        dry_run: true,
        ..RestoreOptions::default()
    };
    // Into a target that does not exist: everything would be restored.
    let missing = tmp.path().join("missing");
    let (_, restored, events) = run_with(&repo, &root, &Selection::All, &missing, &dry);
    assert!(!missing.exists());
    assert!(events.problems.is_empty(), "{:?}", events.problems);
    assert_eq!(events.with(Action::Restored).len(), 4);
    assert_eq!(restored.stats.files_restored, 4);
    assert_eq!(restored.stats.bytes_restored, 10);

    std::fs::write(tmp.path().join("same"), b"same").unwrap();
    std::fs::write(tmp.path().join("differs"), b"old").unwrap();
    let before = contents(tmp.path());
    let (_, _, events) = run_with(&repo, &root, &Selection::All, tmp.path(), &dry);
    assert_eq!(contents(tmp.path()), before);
    assert_eq!(events.with(Action::Unchanged), vec!["/same"]);
    assert_eq!(events.with(Action::Updated), vec!["/differs"]);
    assert_eq!(events.with(Action::Restored), vec!["/d", "/d/new"]);
}

#[test]
fn sparse_files_have_holes_and_the_right_content() {
    let (_, repo) = repo();
    let zeros = vec![0u8; 1 << 20];
    let data = noise(7, 10_000);
    let root = root(
        &repo,
        vec![
            file(&repo, "holey", &[&data, &zeros, &data, &zeros]),
            file(&repo, "dense", &[&data, &zeros]),
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    let sparse = RestoreOptions {
        sparse: true,
        ..RestoreOptions::default()
    };
    let (plan, restored, events) = run_with(&repo, &root, &Selection::All, tmp.path(), &sparse);
    assert!(events.problems.is_empty(), "{:?}", events.problems);
    assert!(restored.stats.is_complete());
    let mut expected = data.clone();
    expected.extend_from_slice(&zeros);
    expected.extend_from_slice(&data);
    expected.extend_from_slice(&zeros);
    assert_eq!(std::fs::read(tmp.path().join("holey")).unwrap(), expected);
    let meta = std::fs::metadata(tmp.path().join("holey")).unwrap();
    assert_eq!(meta.len(), expected.len() as u64);
    // Some file systems (tmpfs does) allocate holes lazily; all common
    // ones leave a written-as-hole MiB unallocated.
    assert!(meta.blocks() * 512 < 1 << 20, "{} blocks", meta.blocks());
    let v = verify(&plan, tmp.path(), None, &mut |p| panic!("{p}")).unwrap();
    assert_eq!(v.files_ok, 2);
}

#[test]
fn xattr_selection_and_shared_blobs() {
    let (_, repo) = repo();
    let tmp = tempfile::tempdir().unwrap();
    let probe = tmp.path().join("probe");
    std::fs::write(&probe, b"").unwrap();
    let xattrs = xattr::set(&probe, "user.probe", b"1").is_ok();
    std::fs::remove_file(probe).unwrap();

    let shared = noise(1, 30_000);
    let mut a = file(&repo, "a", &[&shared, &shared, b"tail"]);
    a.extended_attributes = vec![
        ExtendedAttribute {
            name: "user.keep".into(),
            value: b"yes".to_vec(),
        },
        ExtendedAttribute {
            name: "user.drop".into(),
            value: b"no".to_vec(),
        },
    ];
    let root = root(&repo, vec![a, file(&repo, "b", &[&shared])]);
    let only_keep = RestoreOptions {
        xattrs: XattrSelection::new(&["user.keep".into()], &[]).unwrap(),
        ..RestoreOptions::default()
    };
    let target = tmp.path().join("t");
    let (_, restored, events) = run_with(&repo, &root, &Selection::All, &target, &only_keep);
    assert!(events.problems.is_empty(), "{:?}", events.problems);
    assert!(restored.stats.is_complete());
    let mut expected = shared.clone();
    expected.extend_from_slice(&shared);
    expected.extend_from_slice(b"tail");
    assert_eq!(std::fs::read(target.join("a")).unwrap(), expected);
    assert_eq!(std::fs::read(target.join("b")).unwrap(), shared);
    if xattrs {
        let a = target.join("a");
        assert_eq!(xattr::get(&a, "user.keep").unwrap().unwrap(), b"yes");
        assert_eq!(xattr::get(&a, "user.drop").unwrap(), None);
    }
}

#[test]
fn many_packs_many_files_and_a_deep_tree() {
    let (_, mut repo) = repo();
    repo.set_pack_size(64 << 10);
    let mut nodes = Vec::new();
    for i in 0..60u32 {
        let blobs: Vec<Vec<u8>> = (0..3)
            .map(|j| noise(i * 10 + j, 7_000 + j as usize))
            .collect();
        let parts: Vec<&[u8]> = blobs.iter().map(Vec::as_slice).collect();
        nodes.push(file(&repo, &format!("f{i:02}"), &parts));
    }
    // 150 levels: deeper than the directory cache keeps open.
    let mut deep = dir(&repo, "leaf", vec![file(&repo, "bottom", &[b"deep down"])]);
    for level in (0..150).rev() {
        deep = dir(
            &repo,
            &format!("l{level}"),
            vec![deep, file(&repo, "x", &[b"x"])],
        );
    }
    nodes.push(deep);
    let root = root(&repo, nodes);
    assert!(repo.list_packs().unwrap().len() > 10);
    let tmp = tempfile::tempdir().unwrap();
    let (plan, restored, events) = run_with(
        &repo,
        &root,
        &Selection::All,
        tmp.path(),
        &RestoreOptions::default(),
    );
    assert!(events.problems.is_empty(), "{:?}", events.problems);
    assert!(restored.stats.is_complete());
    let v = verify(&plan, tmp.path(), None, &mut |p| panic!("{p}")).unwrap();
    assert_eq!(v.files, 60 + 151);
    let bottom: std::path::PathBuf = (0..150)
        .map(|l| format!("l{l}"))
        .chain(["leaf".to_string(), "bottom".to_string()])
        .collect();
    assert_eq!(
        std::fs::read(tmp.path().join(bottom)).unwrap(),
        b"deep down"
    );
    // Directory times are set after their content, at every level.
    let l149: std::path::PathBuf = (0..150).map(|l| format!("l{l}")).collect();
    let mtime = std::fs::metadata(tmp.path().join(l149)).unwrap().mtime();
    assert_eq!(mtime, 1_500_000_000);
}
