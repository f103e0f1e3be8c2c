//! Tests of the restore engine on hand-built snapshots in a memory
//! repository: ordinary restores and selections here, hostile repositories
//! in `hostile`, metadata round trips in `metadata`.

mod hostile;
mod metadata;
mod options;

use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;

use crate::backend::MemBackend;
use crate::filter::PatternSet;
use crate::format::time::GoTime;
use crate::format::tree::{go_mode_from_unix, Node, NodeType, Tree};
use crate::id::TreeId;
use crate::repository::Repository;
use crate::testutil::{dir_node, file_node, mem_repo};

use super::*;

/// A fresh v2 repository in memory, and its backend.
pub(super) fn repo() -> (Arc<MemBackend>, Repository) {
    mem_repo(2)
}

/// A file node whose content is `chunks`, one blob each.
pub(super) fn file(repo: &Repository, name: &str, chunks: &[&[u8]]) -> Node {
    let mut node = file_node(repo, name, chunks);
    node.mode = 0o644;
    node.links = 1;
    node.mtime = GoTime::from_unix_utc(1_600_000_000, 0);
    node.atime = node.mtime;
    node
}

/// A directory node holding `nodes` (in the given order, which need not be
/// sorted or unique: hostile trees are built with this too).
pub(super) fn dir(repo: &Repository, name: &str, nodes: Vec<Node>) -> Node {
    let mut node = dir_node(repo, name, nodes);
    node.mode = go_mode_from_unix(0o040_755);
    node.mtime = GoTime::from_unix_utc(1_500_000_000, 0);
    node.atime = node.mtime;
    node
}

/// Save a root tree and flush, so the index knows every blob.
pub(super) fn root(repo: &Repository, nodes: Vec<Node>) -> TreeId {
    let id = repo.save_tree(&Tree { nodes }).unwrap();
    repo.flush().unwrap();
    id
}

/// Plan and restore; returns the plan, the stats and every problem.
pub(super) fn run(
    repo: &Repository,
    root: &TreeId,
    selection: &Selection,
    target: &Path,
) -> (Plan, RestoreStats, Vec<Problem>) {
    let (plan, restored, events) =
        run_with(repo, root, selection, target, &RestoreOptions::default());
    (plan, restored.stats, events.problems)
}

/// What a restore reported.
#[derive(Debug, Default)]
pub(super) struct Events {
    pub problems: Vec<Problem>,
    pub actions: Vec<(Action, String, u64)>,
}

impl Events {
    /// The locations reported with `action`, in order.
    pub fn with(&self, action: Action) -> Vec<&str> {
        self.actions
            .iter()
            .filter(|(a, _, _)| *a == action)
            .map(|(_, l, _)| l.as_str())
            .collect()
    }
}

impl Sink for Events {
    fn problem(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    fn action(&mut self, action: Action, location: &str, size: u64) {
        self.actions.push((action, location.to_string(), size));
    }

    fn wants_actions(&self) -> bool {
        true
    }
}

/// Plan and restore with options; returns the plan, the outcome and
/// everything reported.
pub(super) fn run_with(
    repo: &Repository,
    root: &TreeId,
    selection: &Selection,
    target: &Path,
    opts: &RestoreOptions,
) -> (Plan, Restored, Events) {
    let mut events = Events::default();
    let plan = plan(repo, root, selection, &mut |p| events.problems.push(p)).unwrap();
    let progress = Progress::new();
    let restored = restore(repo, &plan, target, opts, &progress, &mut events).unwrap();
    (plan, restored, events)
}

/// Sorted names in a directory.
pub(super) fn names(dir: &Path) -> Vec<OsString> {
    let mut names: Vec<OsString> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    names
}

fn patterns(p: &[&str]) -> PatternSet {
    let p: Vec<String> = p.iter().map(|s| s.to_string()).collect();
    PatternSet::new(&p, false).unwrap()
}

#[test]
fn restores_nested_tree_with_multi_blob_files() {
    let (_, repo) = repo();
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let (a, b) = big.split_at(40_000);
    let root = root(
        &repo,
        vec![dir(
            &repo,
            "home",
            vec![
                dir(&repo, "empty", vec![]),
                file(&repo, "empty.txt", &[]),
                file(&repo, "multi.bin", &[a, b, b"tail"]),
            ],
        )],
    );
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    let (plan, stats, problems) = run(&repo, &root, &Selection::All, &target);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(plan.location(plan.files[1].item), "/home/multi.bin");
    let slots: Vec<_> = plan
        .blobs(&plan.files[1])
        .iter()
        .map(|s| (s.offset, s.length))
        .collect();
    assert_eq!(slots, vec![(0, 40_000), (40_000, 60_000), (100_000, 4)]);

    let home = target.join("home");
    let mut expected = big.clone();
    expected.extend_from_slice(b"tail");
    assert_eq!(std::fs::read(home.join("multi.bin")).unwrap(), expected);
    assert_eq!(std::fs::read(home.join("empty.txt")).unwrap(), b"");
    assert!(home.join("empty").is_dir());
    assert_eq!(names(&target), vec![OsString::from("home")]);
    assert_eq!(
        stats,
        RestoreStats {
            total_files: 4,
            files_restored: 4,
            total_bytes: 100_004,
            bytes_restored: 100_004,
            ..RestoreStats::default()
        }
    );
    assert!(stats.is_complete());

    let v = verify(&plan, &target, None, &mut |p| panic!("{p}")).unwrap();
    assert_eq!((v.files, v.files_ok, v.bytes), (2, 2, 100_004));
}

#[test]
fn include_restores_matches_and_the_directories_leading_to_them() {
    let (_, repo) = repo();
    let root = root(
        &repo,
        vec![
            dir(
                &repo,
                "src",
                vec![
                    file(&repo, "main.rs", &[b"fn main() {}"]),
                    dir(&repo, "vendor", vec![file(&repo, "lib.rs", &[b"lib"])]),
                ],
            ),
            dir(&repo, "etc", vec![file(&repo, "passwd", &[b"root"])]),
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    let sel = Selection::new(
        patterns(&["/src/*.rs", "/src/vendor", "!/src/vendor"]),
        PatternSet::default(),
    )
    .unwrap();
    let (plan, stats, problems) = run(&repo, &root, &sel, tmp.path());
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(names(tmp.path()), vec![OsString::from("src")]);
    assert_eq!(
        names(&tmp.path().join("src")),
        vec![OsString::from("main.rs")]
    );
    // The unselected parent is created and gets its metadata like restic.
    assert_eq!(plan.items.len(), 2);
    assert_eq!(stats.files_restored, 2);
    let mtime = std::fs::metadata(tmp.path().join("src"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(
        mtime,
        GoTime::from_unix_utc(1_500_000_000, 0).to_system_time()
    );
}

#[test]
fn exclude_skips_matches_and_their_contents() {
    let (_, repo) = repo();
    let root = root(
        &repo,
        vec![
            file(&repo, "a.o", &[b"obj"]),
            file(&repo, "a.c", &[b"src"]),
            dir(&repo, "build", vec![file(&repo, "x", &[b"x"])]),
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    let sel = Selection::new(PatternSet::default(), patterns(&["*.o", "/build"])).unwrap();
    let (_, stats, problems) = run(&repo, &root, &sel, tmp.path());
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(names(tmp.path()), vec![OsString::from("a.c")]);
    assert_eq!(stats.total_files, 1);
}

#[test]
fn missing_blob_skips_only_that_file() {
    let (_, repo) = repo();
    let mut broken = file(&repo, "broken", &[b"fine"]);
    broken
        .content
        .as_mut()
        .unwrap()
        .push(crate::id::BlobId(crate::id::Id::hash(b"never saved")));
    let root = root(&repo, vec![broken, file(&repo, "ok", &[b"ok"])]);
    let tmp = tempfile::tempdir().unwrap();
    let (plan, stats, problems) = run(&repo, &root, &Selection::All, tmp.path());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].location, "/broken");
    assert!(problems[0].message.contains("not in the index"));
    assert_eq!(plan.problems, 1);
    assert_eq!(names(tmp.path()), vec![OsString::from("ok")]);
    assert!(
        stats.is_complete(),
        "the plan's problem is counted in the plan"
    );
}

#[test]
fn verify_detects_changed_and_replaced_files() {
    let (_, repo) = repo();
    let root = root(
        &repo,
        vec![
            file(&repo, "a", &[b"alpha", b"beta"]),
            file(&repo, "b", &[b"bravo"]),
            file(&repo, "c", &[b"charlie"]),
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    let (plan, _, problems) = run(&repo, &root, &Selection::All, tmp.path());
    assert!(problems.is_empty());
    std::fs::write(tmp.path().join("a"), b"alphaBETA").unwrap();
    std::fs::remove_file(tmp.path().join("b")).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("c"), tmp.path().join("b")).unwrap();
    let mut found = Vec::new();
    let v = verify(&plan, tmp.path(), None, &mut |p| found.push(p)).unwrap();
    assert_eq!((v.files, v.files_ok), (3, 1));
    let locations: Vec<&str> = found.iter().map(|p| p.location.as_str()).collect();
    assert_eq!(locations, vec!["/a", "/b"]);
    assert!(found[0].message.contains("does not match"), "{}", found[0]);
}

#[test]
fn existing_files_are_replaced_but_directories_are_kept() {
    let (_, repo) = repo();
    let root = root(
        &repo,
        vec![
            file(&repo, "f", &[b"new"]),
            dir(&repo, "d", vec![file(&repo, "g", &[b"g"])]),
            file(&repo, "keepdir", &[b"x"]),
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("f"), b"old content, longer").unwrap();
    std::fs::create_dir(tmp.path().join("d")).unwrap();
    std::fs::write(tmp.path().join("d/other"), b"kept").unwrap();
    std::fs::create_dir(tmp.path().join("keepdir")).unwrap();
    let (_, stats, problems) = run(&repo, &root, &Selection::All, tmp.path());
    assert_eq!(std::fs::read(tmp.path().join("f")).unwrap(), b"new");
    assert_eq!(std::fs::read(tmp.path().join("d/g")).unwrap(), b"g");
    assert_eq!(std::fs::read(tmp.path().join("d/other")).unwrap(), b"kept");
    assert!(tmp.path().join("keepdir").is_dir());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].location, "/keepdir");
    assert_eq!(stats.files_restored, 3);
    assert!(!stats.is_complete());
}
