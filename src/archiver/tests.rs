//! Backup engine tests: real files in a temp directory, backed up into a
//! memory repository, then read back through the snapshot's trees.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::*;
use crate::backend::{Backend, FileType, MemBackend};
use crate::blob::BlobType;
use crate::crypto::kdf::KdfParams;
use crate::filter::PatternSet;
use crate::id::{BlobId, Id};
use crate::repository::InitOptions;

pub(super) fn repository() -> (Repository, Arc<MemBackend>) {
    let mem = Arc::new(MemBackend::new());
    let opts = InitOptions {
        kdf: KdfParams::insecure_fast(),
        ..InitOptions::default()
    };
    let repo = Repository::init(mem.clone(), b"pw", &opts).unwrap();
    repo.load_index().unwrap();
    (repo, mem)
}

/// Collects what the engine reports.
#[derive(Default)]
pub(super) struct Recorder {
    pub errors: Mutex<Vec<(PathBuf, String)>>,
    pub warnings: Mutex<Vec<String>>,
    pub items: Mutex<Vec<(String, Change)>>,
    pub changed: Mutex<Vec<PathBuf>>,
    pub checkpoints: Mutex<Vec<SnapshotId>>,
}

impl Reporter for Recorder {
    fn error(&self, path: &Path, error: &Error) {
        self.errors
            .lock()
            .push((path.to_path_buf(), error.to_string()));
    }
    fn warning(&self, message: &str) {
        self.warnings.lock().push(message.to_string());
    }
    fn item(&self, snapshot_path: &str, change: Change, _node: &Node) {
        self.items.lock().push((snapshot_path.to_string(), change));
    }
    fn changed_during_backup(&self, path: &Path) {
        self.changed.lock().push(path.to_path_buf());
    }
    fn checkpoint(&self, id: &SnapshotId) {
        self.checkpoints.lock().push(*id);
    }
}

/// Deterministic pseudo-random bytes (SplitMix64).
pub(super) fn noise(n: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(n);
    out
}

const BIG: usize = 9 << 20;

/// A directory with one of everything.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("empty"), b"").unwrap();
    std::fs::write(d.join("small.txt"), b"hello, cairn\n").unwrap();
    std::fs::write(d.join("big.bin"), noise(BIG, 7)).unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    std::fs::write(d.join("sub/inner"), b"inner").unwrap();
    std::fs::hard_link(d.join("small.txt"), d.join("sub/hard")).unwrap();
    std::os::unix::fs::symlink("sub/inner", d.join("link")).unwrap();
    std::os::unix::fs::symlink("/does/not/exist", d.join("dangling")).unwrap();
    nix::unistd::mkfifo(
        &d.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(d.join("sock")).unwrap();
    dir
}

/// The tree node at an absolute file system `path` inside the snapshot.
pub(super) fn node_at(repo: &Repository, root: &TreeId, path: &Path) -> Option<Node> {
    crate::tree::resolve_path(repo, root, &path.to_string_lossy()).unwrap()
}

pub(super) fn content(repo: &Repository, node: &Node) -> Vec<u8> {
    node.content()
        .iter()
        .flat_map(|id| repo.load_blob(BlobType::Data, id).unwrap())
        .collect()
}

fn names(repo: &Repository, dir: &Node) -> Vec<String> {
    repo.load_tree(&dir.subtree.unwrap())
        .unwrap()
        .nodes
        .iter()
        .map(|n| n.name.to_string_lossy().into_owned())
        .collect()
}

pub(super) fn backup(
    repo: &Repository,
    opts: BackupOptions,
    paths: &[&Path],
) -> (BackupSummary, Recorder) {
    let rec = Recorder::default();
    let paths: Vec<PathBuf> = paths.iter().map(|p| p.to_path_buf()).collect();
    let summary = Archiver::new(repo, opts).backup(&paths, &rec).unwrap();
    (summary, rec)
}

#[test]
fn backs_up_every_kind_of_entry() {
    let (repo, _) = repository();
    let dir = fixture();
    let d = dir.path();
    let with_xattr = xattr::set(d.join("small.txt"), "user.cairn", b"\x00\x01v").is_ok();
    let (summary, rec) = backup(&repo, BackupOptions::default(), &[d]);
    assert!(rec.errors.lock().is_empty(), "{:?}", rec.errors.lock());
    assert!(summary.is_complete());
    let sn = repo.load_snapshot(&summary.snapshot_id.unwrap()).unwrap();
    assert_eq!(sn.paths, [d.to_string_lossy()]);
    assert_eq!(sn.program_version, PROGRAM_VERSION);
    assert_eq!(sn.hostname, hostname());
    assert!(sn.summary.is_some());

    // Every directory from the root down is there, with its real metadata.
    let mut above = PathBuf::from("/");
    for comp in d.components().skip(1) {
        above.push(comp);
        let node = node_at(&repo, &sn.tree, &above).unwrap();
        let meta = std::fs::metadata(&above).unwrap();
        assert!(node.is_dir());
        assert_eq!(node.inode, meta.ino(), "{}", above.display());
        if above == d {
            // (Directories above may change while tests run in parallel.)
            assert_eq!(node.mtime.unix(), (meta.mtime(), meta.mtime_nsec() as u32));
        }
    }
    let top = node_at(&repo, &sn.tree, d).unwrap();
    assert_eq!(
        names(&repo, &top),
        [
            "big.bin",
            "dangling",
            "empty",
            "fifo",
            "link",
            "small.txt",
            "sub"
        ],
        "sorted; the socket is left out"
    );

    let empty = node_at(&repo, &sn.tree, &d.join("empty")).unwrap();
    assert_eq!((empty.size, empty.content.as_deref()), (0, Some(&[][..])));
    let small = node_at(&repo, &sn.tree, &d.join("small.txt")).unwrap();
    assert_eq!(content(&repo, &small), b"hello, cairn\n");
    assert_eq!((small.size, small.links), (13, 2));
    if with_xattr {
        assert_eq!(small.xattr("user.cairn"), Some(&b"\x00\x01v"[..]));
    }
    let big = node_at(&repo, &sn.tree, &d.join("big.bin")).unwrap();
    assert!(big.content().len() > 2, "{} chunks", big.content().len());
    assert_eq!(content(&repo, &big), noise(BIG, 7));
    let hard = node_at(&repo, &sn.tree, &d.join("sub/hard")).unwrap();
    assert_eq!(
        (hard.inode, hard.content.clone()),
        (small.inode, small.content.clone())
    );
    let link = node_at(&repo, &sn.tree, &d.join("link")).unwrap();
    assert_eq!(
        (link.node_type.clone(), link.link_target.as_bytes()),
        (NodeType::Symlink, &b"sub/inner"[..])
    );
    let dangling = node_at(&repo, &sn.tree, &d.join("dangling")).unwrap();
    assert_eq!(dangling.link_target, "/does/not/exist");
    let fifo = node_at(&repo, &sn.tree, &d.join("fifo")).unwrap();
    assert_eq!(fifo.node_type, NodeType::Fifo);
    assert_eq!(fifo.unix_mode() & 0o777, 0o640);
    assert_eq!(fifo.content, None);

    let s = &summary.stats;
    assert_eq!(
        (s.files_new, s.files_changed, s.files_unmodified),
        (5, 0, 0)
    );
    let depth = d.components().count() as u64 - 1;
    assert_eq!(
        s.dirs_new,
        depth + 1,
        "intermediate dirs, the target and sub"
    );
    assert_eq!(s.total_files_processed, 5);
    assert_eq!(s.total_bytes_processed, (BIG + 13 + 5 + 13) as u64);
    assert_eq!(summary.bytes_read, s.total_bytes_processed);
    assert!(s.data_blobs >= 4 && s.tree_blobs >= 3);
    assert!(s.data_added >= (BIG + 13 + 5) as u64);
    assert!(s.data_added_packed > 0);
    let new_items = rec
        .items
        .lock()
        .iter()
        .filter(|(_, c)| *c == Change::New)
        .count();
    assert_eq!(new_items as u64, s.files_new + s.dirs_new);
}

#[test]
fn parent_snapshot_spares_reading_unchanged_files() {
    let (repo, _) = repository();
    let dir = fixture();
    let d = dir.path();
    let (first, _) = backup(&repo, BackupOptions::default(), &[d]);
    let first_id = first.snapshot_id.unwrap();
    let first_tree = node_at(&repo, &first.snapshot.tree, d).unwrap().subtree;

    let (second, rec) = backup(&repo, BackupOptions::default(), &[d]);
    assert_eq!(second.parent, Some(first_id));
    assert_eq!(second.snapshot.parent, Some(first_id));
    assert_eq!(second.bytes_read, 0, "nothing is read again");
    assert_eq!(second.stats.files_unmodified, 5);
    assert_eq!(second.stats.data_blobs, 0);
    assert_eq!(
        second.stats.total_bytes_processed,
        first.stats.total_bytes_processed
    );
    assert!(rec
        .items
        .lock()
        .contains(&(format!("{}/", d.display()), Change::Unmodified)));
    let second_tree = node_at(&repo, &second.snapshot.tree, d).unwrap().subtree;
    assert_eq!(first_tree, second_tree, "identical tree, identical id");

    // One changed file is read again, the rest still is not.
    std::fs::write(d.join("sub/inner"), b"inner, changed").unwrap();
    let (third, _) = backup(&repo, BackupOptions::default(), &[d]);
    assert_eq!(third.parent, second.snapshot_id);
    assert_eq!(third.bytes_read, 14);
    assert_eq!(
        (third.stats.files_changed, third.stats.files_unmodified),
        (1, 4)
    );
    let depth = d.components().count() as u64 - 1;
    assert_eq!(
        third.stats.dirs_changed,
        depth + 1,
        "sub, the target and above"
    );
    let inner = node_at(&repo, &third.snapshot.tree, &d.join("sub/inner")).unwrap();
    assert_eq!(content(&repo, &inner), b"inner, changed");

    // --force reads everything and records no parent.
    let force = BackupOptions {
        parent: ParentChoice::None,
        ..BackupOptions::default()
    };
    let (forced, _) = backup(&repo, force, &[d]);
    assert_eq!(forced.parent, None);
    assert_eq!(forced.bytes_read, forced.stats.total_bytes_processed);
    assert_eq!(forced.stats.data_blobs, 0, "but everything deduplicates");

    // Another host, or a snapshot with other paths, is no parent.
    let other_host = BackupOptions {
        host: Some("elsewhere".into()),
        ..BackupOptions::default()
    };
    let (other, _) = backup(&repo, other_host, &[d]);
    assert_eq!(other.parent, None);
    let (sub_only, _) = backup(&repo, BackupOptions::default(), &[&d.join("sub")]);
    assert_eq!(sub_only.parent, None);
    // An explicit parent is used as given.
    let explicit = BackupOptions {
        parent: ParentChoice::Snapshot(first_id),
        ..BackupOptions::default()
    };
    let (with_parent, _) = backup(&repo, explicit, &[d]);
    assert_eq!(with_parent.parent, Some(first_id));
    assert_eq!(
        with_parent.bytes_read, 14,
        "only the file changed since the first"
    );
}

#[test]
fn parent_with_missing_blobs_is_not_trusted() {
    let (repo, mem) = repository();
    let dir = fixture();
    let d = dir.path();
    let (first, _) = backup(&repo, BackupOptions::default(), &[d]);
    // A repository whose packs and index were lost, but the snapshot kept.
    for tpe in [FileType::Pack, FileType::Index] {
        for f in mem.list(tpe).unwrap() {
            mem.remove(tpe, &f.name).unwrap();
        }
    }
    repo.load_index().unwrap();
    let explicit = BackupOptions {
        parent: ParentChoice::Snapshot(first.snapshot_id.unwrap()),
        ..BackupOptions::default()
    };
    let (second, rec) = backup(&repo, explicit, &[d]);
    assert!(
        !second.is_complete(),
        "restic reports this and exits with 3"
    );
    assert!(rec
        .errors
        .lock()
        .iter()
        .any(|(_, e)| e.contains("tree") && e.contains("not known")));
    assert_eq!(second.bytes_read, second.stats.total_bytes_processed);
    let small = node_at(&repo, &second.snapshot.tree, &d.join("small.txt")).unwrap();
    assert_eq!(content(&repo, &small), b"hello, cairn\n");
}

#[test]
fn excludes_leave_items_out() {
    let (repo, _) = repository();
    let dir = fixture();
    let d = dir.path();
    std::fs::write(d.join("scratch.TMP"), b"x").unwrap();
    std::fs::create_dir(d.join("cache")).unwrap();
    std::fs::write(d.join("cache/.skip"), b"").unwrap();
    std::fs::write(d.join("cache/data"), b"cached").unwrap();
    let mut patterns = PatternSet::new(&["sub".to_string()], false).unwrap();
    patterns.extend(PatternSet::new(&["*.tmp".to_string()], true).unwrap());
    let opts = BackupOptions {
        exclude: ExcludeOptions {
            patterns,
            if_present: vec![".skip".into()],
            larger_than: Some(1 << 20),
            ..ExcludeOptions::default()
        },
        recorded_excludes: vec!["sub".into()],
        tags: vec!["a".into(), "".into(), "b".into()],
        ..BackupOptions::default()
    };
    let (summary, rec) = backup(&repo, opts, &[d]);
    assert!(rec.errors.lock().is_empty());
    let top = node_at(&repo, &summary.snapshot.tree, d).unwrap();
    assert_eq!(
        names(&repo, &top),
        ["cache", "dangling", "empty", "fifo", "link", "small.txt"]
    );
    let cache = node_at(&repo, &summary.snapshot.tree, &d.join("cache")).unwrap();
    assert_eq!(names(&repo, &cache), [".skip"]);
    assert_eq!(summary.snapshot.excludes, ["sub"]);
    assert_eq!(summary.snapshot.tags, ["a", "b"]);
}

#[test]
fn unreadable_items_are_reported_and_the_snapshot_is_still_saved() {
    // /proc/self/mem lstat()s as a regular file, opens, and fails to read
    // with EIO: a deterministic read error, even for root.
    if std::fs::File::open("/proc/self/mem").is_err() {
        eprintln!("skipped: /proc/self/mem is not available");
        return;
    }
    let (repo, _) = repository();
    let dir = fixture();
    let d = dir.path();
    let missing = d.join("not-there");
    let mem = Path::new("/proc/self/mem");
    let (summary, rec) = backup(&repo, BackupOptions::default(), &[d, mem, &missing]);
    assert!(!summary.is_complete());
    assert_eq!(summary.errors, 1);
    let errors = rec.errors.lock();
    assert_eq!(errors[0].0, mem);
    assert!(
        errors[0].1.contains("read /proc/self/mem"),
        "{}",
        errors[0].1
    );
    assert_eq!(
        *rec.warnings.lock(),
        [format!("{} does not exist, skipping", missing.display())]
    );
    let id = summary.snapshot_id.unwrap();
    let sn = repo.load_snapshot(&id).unwrap();
    assert_eq!(
        sn.paths,
        [d.to_string_lossy().into_owned(), "/proc/self/mem".into()]
    );
    assert!(node_at(&repo, &sn.tree, &d.join("small.txt")).is_some());
    let proc_self = node_at(&repo, &sn.tree, Path::new("/proc/self")).unwrap();
    assert!(
        proc_self.is_dir(),
        "intermediate directories follow symlinks"
    );
    assert!(names(&repo, &proc_self).is_empty());

    let rec = Recorder::default();
    let err = Archiver::new(&repo, BackupOptions::default())
        .backup(std::slice::from_ref(&missing), &rec)
        .unwrap_err();
    assert!(err.to_string().contains("do not exist"), "{err}");
}

#[test]
fn targets_sharing_a_prefix_share_their_parents() {
    let (repo, _) = repository();
    let dir = fixture();
    let d = dir.path();
    let (summary, _) = backup(
        &repo,
        BackupOptions::default(),
        &[&d.join("sub"), &d.join("link"), d],
    );
    // The target dir itself is also a target: it is backed up whole.
    let top = node_at(&repo, &summary.snapshot.tree, d).unwrap();
    assert_eq!(names(&repo, &top).len(), 7);
    let (summary, _) = backup(
        &repo,
        BackupOptions::default(),
        &[&d.join("sub"), &d.join("small.txt")],
    );
    let top = node_at(&repo, &summary.snapshot.tree, d).unwrap();
    assert_eq!(names(&repo, &top), ["small.txt", "sub"]);
    assert_eq!(
        summary.snapshot.paths,
        [
            d.join("sub").to_string_lossy(),
            d.join("small.txt").to_string_lossy()
        ]
    );
}

#[test]
fn dry_run_writes_nothing() {
    let (repo, mem) = repository();
    let dir = fixture();
    let before: Vec<_> = [FileType::Pack, FileType::Index, FileType::Snapshot]
        .iter()
        .map(|t| mem.list(*t).unwrap().len())
        .collect();
    let opts = BackupOptions {
        dry_run: true,
        ..BackupOptions::default()
    };
    let (summary, _) = backup(&repo, opts, &[dir.path()]);
    assert_eq!(summary.snapshot_id, None);
    assert!(summary.stats.data_added > BIG as u64);
    assert!(summary.stats.data_added_packed > summary.stats.data_added);
    let after: Vec<_> = [FileType::Pack, FileType::Index, FileType::Snapshot]
        .iter()
        .map(|t| mem.list(*t).unwrap().len())
        .collect();
    assert_eq!(before, after);
}

#[test]
fn stdin_becomes_one_file_with_its_directories() {
    let (repo, _) = repository();
    let time = GoTime::parse("2024-05-06T07:08:09+02:00").unwrap();
    let opts = BackupOptions {
        time: Some(time),
        host: Some("h".into()),
        ..BackupOptions::default()
    };
    let data = noise(3 << 20, 1);
    let rec = Recorder::default();
    let summary = Archiver::new(&repo, opts)
        .backup_reader(
            Box::new(std::io::Cursor::new(data.clone())),
            "dump/db.sql",
            &rec,
        )
        .unwrap();
    let sn = repo.load_snapshot(&summary.snapshot_id.unwrap()).unwrap();
    assert_eq!(sn.paths, ["/dump/db.sql"]);
    assert_eq!((sn.time, sn.hostname.as_str()), (time, "h"));
    let file = node_at(&repo, &sn.tree, Path::new("/dump/db.sql")).unwrap();
    assert_eq!(content(&repo, &file), data);
    assert_eq!((file.size, file.mode, file.mtime), (3 << 20, 0o644, time));
    assert_eq!(file.ctime, time);
    let dump = node_at(&repo, &sn.tree, Path::new("/dump")).unwrap();
    assert_eq!(dump.mode, (1 << 31) | 0o755);
    assert_eq!((summary.stats.files_new, summary.stats.dirs_new), (1, 1));
    assert!(Archiver::new(&repo, BackupOptions::default())
        .backup_reader(Box::new(std::io::empty()), "/", &rec)
        .is_err());
}

#[test]
fn odd_names_round_trip() {
    let (repo, _) = repository();
    let dir = tempfile::tempdir().unwrap();
    let odd = OsStr::from_bytes(b"bad\xffname \"quoted\"\n");
    std::fs::write(dir.path().join(odd), b"odd").unwrap();
    let (summary, _) = backup(&repo, BackupOptions::default(), &[dir.path()]);
    let top = node_at(&repo, &summary.snapshot.tree, dir.path()).unwrap();
    let tree = repo.load_tree(&top.subtree.unwrap()).unwrap();
    assert_eq!(tree.nodes[0].name, odd);
    assert_eq!(content(&repo, &tree.nodes[0]), b"odd");
}

/// Save `tree` encoded with an extra space (`{"nodes": [`): the same
/// listing as another blob, which cairn would never write itself.
fn save_respaced(repo: &Repository, tree: &Tree) -> TreeId {
    let json = tree.to_json();
    let respaced = [&b"{\"nodes\": "[..], &json[b"{\"nodes\":".len()..]].concat();
    let (id, _) = repo.save_blob(BlobType::Tree, &respaced).unwrap();
    TreeId::from(id)
}

/// The tree `root` with the directory at `path` (names from the root)
/// pointing to `subtree` instead, and every tree above it saved again.
fn replace_subtree(repo: &Repository, root: &TreeId, path: &[&OsStr], subtree: TreeId) -> TreeId {
    let Some((first, rest)) = path.split_first() else {
        return subtree;
    };
    let mut tree = repo.load_tree(root).unwrap();
    let node = tree.nodes.iter_mut().find(|n| n.name == *first).unwrap();
    let below = node.subtree.unwrap();
    node.subtree = Some(replace_subtree(repo, &below, rest, subtree));
    let (id, _) = repo.save_blob(BlobType::Tree, &tree.to_json()).unwrap();
    TreeId::from(id)
}

#[test]
fn unchanged_directories_reuse_the_parents_tree_blob() {
    let (repo, _) = repository();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for sub in ["same", "edited/deep"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    std::fs::write(d.join("same/a"), b"a").unwrap();
    std::fs::write(d.join("edited/deep/b"), b"b").unwrap();
    let (first, _) = backup(&repo, BackupOptions::default(), &[d]);
    let sn = first.snapshot;
    let subtree = |root: &TreeId, p: &str| node_at(&repo, root, &d.join(p)).unwrap().subtree;

    // A parent whose listing of `same` is an equivalent blob that cairn
    // would not encode that way: only reuse can put its id in a snapshot.
    let canonical = subtree(&sn.tree, "same").unwrap();
    let respaced = save_respaced(&repo, &repo.load_tree(&canonical).unwrap());
    assert_ne!(respaced, canonical);
    let mut parent = sn.clone();
    let same = d.join("same");
    let names: Vec<&OsStr> = same.iter().skip(1).collect();
    parent.tree = replace_subtree(&repo, &sn.tree, &names, respaced);
    repo.flush().unwrap();
    let parent_id = repo.save_snapshot(&parent).unwrap();
    let with_parent = || BackupOptions {
        parent: ParentChoice::Snapshot(parent_id),
        ..BackupOptions::default()
    };

    let (second, _) = backup(&repo, with_parent(), &[d]);
    let tree = second.snapshot.tree;
    assert_eq!(
        subtree(&tree, "same"),
        Some(respaced),
        "reused, not encoded"
    );
    assert_eq!(subtree(&tree, "edited"), subtree(&parent.tree, "edited"));

    // A changed file gives new trees on its whole path; the rest is reused.
    std::fs::write(d.join("edited/deep/b"), b"b, changed").unwrap();
    let (third, _) = backup(&repo, with_parent(), &[d]);
    assert_eq!(third.stats.files_changed, 1);
    let tree = third.snapshot.tree;
    assert_eq!(subtree(&tree, "same"), Some(respaced));
    for p in ["edited/deep", "edited", ""] {
        let id = node_at(&repo, &tree, &d.join(p)).unwrap().subtree.unwrap();
        assert_ne!(Some(id), subtree(&parent.tree, p), "{p}");
        let json = repo.load_tree(&id).unwrap().to_json();
        assert_eq!(
            BlobId::from(id),
            BlobId(Id::hash(&json)),
            "{p} encoded anew"
        );
    }
    let b = node_at(&repo, &tree, &d.join("edited/deep/b")).unwrap();
    assert_eq!(content(&repo, &b), b"b, changed");

    // --force has no parent, so nothing to reuse.
    let force = BackupOptions {
        parent: ParentChoice::None,
        ..BackupOptions::default()
    };
    let (forced, _) = backup(&repo, force, &[d]);
    assert_eq!(subtree(&forced.snapshot.tree, "same"), Some(canonical));
}

#[test]
fn reuse_needs_identical_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, b"f").unwrap();
    let meta = std::fs::symlink_metadata(&path).unwrap();
    let node = node::NodeFactory::new(false)
        .node(&path, "f".into(), &meta)
        .unwrap();
    let tree = Tree {
        nodes: vec![node.clone()],
    };
    assert!(tree.encodes_like(&tree.clone()));

    // The same instant in another zone is equal but encodes differently.
    let mut shifted = node.clone();
    let (secs, nanos) = node.mtime.unix();
    let offset = chrono::FixedOffset::east_opt(3600).unwrap();
    let utc = chrono::DateTime::from_timestamp(secs, nanos).unwrap();
    shifted.mtime = GoTime::parse(&utc.with_timezone(&offset).to_rfc3339()).unwrap();
    assert_eq!(shifted, node);
    assert!(!shifted.encodes_like(&node));
    assert_ne!(shifted.to_json(), node.to_json());

    let mut other = node.clone();
    other.links += 1;
    assert!(!other.encodes_like(&node));
    assert!(!tree.encodes_like(&Tree::new()));
    let mut generic = node.clone();
    generic
        .generic_attributes
        .insert("k".into(), serde_json::json!(1));
    assert!(
        !generic.encodes_like(&generic.clone()),
        "kept out, to be safe"
    );
}
