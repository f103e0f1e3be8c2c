//! End-to-end tests of `check` on small in-memory repositories built with
//! the core API, each damaged in one specific way.

use std::sync::Arc;

use super::*;
use crate::backend::Backend;
use crate::format::index::IndexFile;
use crate::format::snapshot::Snapshot;
use crate::format::time::GoTime;
use crate::format::tree::{Node, NodeType, Tree};
use crate::id::{BlobId, Id, SnapshotId};
use crate::testutil::{mem_repo, noise};

struct Fixture {
    be: Arc<dyn Backend>,
    repo: Repository,
    /// Data blobs of files `sub/c`, `a` and `b`, in that order.
    data: Vec<BlobId>,
    root: TreeId,
    sub: TreeId,
    snapshot: SnapshotId,
}

fn file(repo: &Repository, name: &str, seeds: &[u32]) -> (Node, Vec<BlobId>) {
    let mut node = Node::new(name, NodeType::File);
    let mut ids = Vec::new();
    for &seed in seeds {
        ids.push(
            repo.save_blob(BlobType::Data, &noise(seed, 3000))
                .unwrap()
                .0,
        );
    }
    node.size = 3000 * seeds.len() as u64;
    node.content = Some(ids.clone());
    (node, ids)
}

/// A snapshot of `/a`, `/b`, `/sub/c` and `/sub2` (the same tree as `sub`),
/// stored in packs of one or two blobs each.
fn fixture(version: u32) -> Fixture {
    let (be, mut repo) = mem_repo(version);
    repo.set_pack_size(5000);
    let mut data = Vec::new();

    let mut sub = Tree::new();
    let (c, ids) = file(&repo, "c", &[5]);
    data.extend(ids);
    sub.insert(c).unwrap();
    let sub_id = repo.save_tree(&sub).unwrap();

    let mut root = Tree::new();
    for (name, seeds) in [("a", &[1u32, 2][..]), ("b", &[3, 4])] {
        let (node, ids) = file(&repo, name, seeds);
        data.extend(ids);
        root.insert(node).unwrap();
    }
    for name in ["sub", "sub2"] {
        let mut dir = Node::new(name, NodeType::Dir);
        dir.subtree = Some(sub_id);
        root.insert(dir).unwrap();
    }
    let mut link = Node::new("link", NodeType::Symlink);
    link.link_target = "a".into();
    root.insert(link).unwrap();
    let root_id = repo.save_tree(&root).unwrap();
    repo.flush().unwrap();
    let sn = Snapshot::new(
        GoTime::from_unix(1_700_000_000, 0),
        root_id,
        vec!["/".into()],
    );
    let snapshot = repo.save_snapshot(&sn).unwrap();
    Fixture {
        be,
        repo,
        data,
        root: root_id,
        sub: sub_id,
        snapshot,
    }
}

impl Fixture {
    fn pack_of(&self, tpe: BlobType, id: BlobId) -> PackId {
        self.repo
            .index()
            .get(&BlobHandle::new(tpe, id))
            .expect("blob is indexed")
            .pack
    }

    fn replace(&self, tpe: FileType, name: &str, data: &[u8]) {
        self.be.remove(tpe, name).unwrap();
        self.be.write(tpe, name, data).unwrap();
    }

    /// Rewrite every index file through `edit` (as new files).
    fn edit_index(&self, mut edit: impl FnMut(&mut IndexFile)) {
        for (id, mut file) in self.repo.load_index_files().unwrap() {
            edit(&mut file);
            self.be.remove(FileType::Index, &id.to_hex()).unwrap();
            self.repo.save_json(FileType::Index, &file).unwrap();
        }
    }

    fn run(&self, read_data: bool) -> CheckReport {
        let opts = CheckOptions {
            read_data: read_data.then_some(ReadDataSubset::All),
            ..CheckOptions::default()
        };
        check(&self.repo, &opts, &mut |_| {}).unwrap()
    }
}

fn errors(report: &CheckReport) -> Vec<&Finding> {
    report.errors().collect()
}

#[test]
fn clean_repositories_pass_every_phase() {
    for version in [1, 2] {
        let fx = fixture(version);
        let mut events = Vec::new();
        let opts = CheckOptions {
            read_data: Some(ReadDataSubset::All),
            check_unused: true,
            threads: 3,
        };
        let report = check(&fx.repo, &opts, &mut |e| {
            events.push(match e {
                Event::Start(p) => format!("start {p:?}"),
                Event::Done(p) => format!("done {p:?}"),
                Event::Finding(f) => format!("finding {f}"),
            })
        })
        .unwrap();
        assert!(report.is_ok(), "v{version}: {:?}", report.findings);
        assert!(report.findings.is_empty(), "{:?}", report.findings);
        let packs = fx.repo.list_packs().unwrap().len();
        assert!(packs >= 4, "the fixture spreads blobs over packs");
        assert_eq!(report.packs, packs);
        assert_eq!(report.packs_read, packs);
        assert_eq!(report.index_files, 1);
        assert_eq!(report.snapshots, 1);
        // root and sub; sub is shared by two directories but counted once.
        assert_eq!(report.trees, 2);
        let read = Phase::ReadData {
            packs,
            total: packs,
        };
        assert_eq!(
            events,
            [
                "start LoadIndex".to_string(),
                "done LoadIndex".into(),
                "start CheckPacks".into(),
                "done CheckPacks".into(),
                "start CheckStructure".into(),
                "done CheckStructure".into(),
                format!("start {read:?}"),
                format!("done {read:?}"),
            ]
        );
    }
}

#[test]
fn flipped_byte_in_a_pack_is_found_by_read_data() {
    let fx = fixture(2);
    let blob = fx.data[2];
    let pack = fx.pack_of(BlobType::Data, blob);
    let entry = fx
        .repo
        .index()
        .get(&BlobHandle::new(BlobType::Data, blob))
        .unwrap();
    let mut bytes = fx.be.read(FileType::Pack, &pack.to_hex()).unwrap();
    bytes[entry.offset as usize + 100] ^= 0x40;
    fx.replace(FileType::Pack, &pack.to_hex(), &bytes);

    // Sizes and structure are intact: only reading the data finds it.
    assert!(fx.run(false).is_ok());
    let report = fx.run(true);
    let errs = errors(&report);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs.iter().any(|f| matches!(f,
        Finding::Pack { pack: p, problem: PackProblem::Blob { blob: b, error: Error::MacMismatch(_) } }
            if *p == pack && b.id == blob)));
    assert!(errs.iter().any(|f| matches!(f,
        Finding::Pack { pack: p, problem: PackProblem::HashMismatch { .. } } if *p == pack)));
    let lines: Vec<String> = errs.iter().map(|f| f.to_string()).collect();
    assert!(
        lines.iter().all(|l| l.contains(&pack.to_hex())),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains(&blob.to_hex())),
        "{lines:?}"
    );
}

#[test]
fn deleted_pack_is_missing() {
    let fx = fixture(1);
    let pack = fx.pack_of(BlobType::Data, fx.data[0]);
    fx.be.remove(FileType::Pack, &pack.to_hex()).unwrap();
    for read_data in [false, true] {
        let report = fx.run(read_data);
        let errs = errors(&report);
        assert!(
            matches!(errs[..], [Finding::PackMissing { pack: p }] if *p == pack),
            "{errs:?}"
        );
        assert_eq!(errs[0].to_string(), format!("pack {pack}: does not exist"));
    }
}

#[test]
fn blob_missing_from_the_index() {
    let fx = fixture(2);
    let blob = fx.data[0];
    let pack = fx.pack_of(BlobType::Data, blob);
    fx.edit_index(|file| {
        for p in &mut file.packs {
            p.blobs.retain(|b| b.id != blob);
        }
    });
    let report = fx.run(true);
    let errs = errors(&report);
    assert!(
        errs.iter().any(|f| matches!(f,
        Finding::Tree { tree, problem: TreeProblem::BlobNotInIndex { name, blob: b } }
            if *tree == fx.sub && name == "c" && *b == blob)),
        "{errs:?}"
    );
    // The pack is now larger than its index entries say…
    assert!(errs.iter().any(|f| matches!(f,
        Finding::PackSizeMismatch { pack: p, expected, actual } if *p == pack && expected < actual)));
    // …and its header lists a blob the index lacks.
    assert!(errs.iter().any(|f| matches!(f,
        Finding::Pack { pack: p, problem: PackProblem::HeaderBlobNotInIndex { blob: b, .. } }
            if *p == pack && b.id == blob)));
    // The shared tree is checked once, so its problem is reported once.
    assert_eq!(
        errs.iter()
            .filter(|f| matches!(f, Finding::Tree { .. }))
            .count(),
        1
    );
}

#[test]
fn missing_tree_is_reported() {
    let fx = fixture(2);
    let sub = BlobId::from(fx.sub);
    fx.edit_index(|file| {
        for p in &mut file.packs {
            p.blobs.retain(|b| b.id != sub);
        }
    });
    let report = fx.run(false);
    let errs = errors(&report);
    assert!(errs.iter().any(|f| matches!(f,
        Finding::TreeUnreadable { tree, error: Error::BlobNotInIndex(_) } if *tree == fx.sub)));
    assert_eq!(report.trees, 2);
}

#[test]
fn truncated_pack() {
    let fx = fixture(1);
    let pack = fx.pack_of(BlobType::Tree, BlobId::from(fx.root));
    let bytes = fx.be.read(FileType::Pack, &pack.to_hex()).unwrap();
    let full = bytes.len() as u64;
    fx.replace(FileType::Pack, &pack.to_hex(), &bytes[..bytes.len() - 10]);

    let report = fx.run(false);
    let errs = errors(&report);
    assert!(
        errs.iter().any(|f| matches!(f,
        Finding::PackSizeMismatch { pack: p, expected, actual }
            if *p == pack && *expected == full && *actual == full - 10)),
        "{errs:?}"
    );
    assert!(errs.iter().any(|f| f.to_string()
        == format!(
            "pack {pack}: unexpected file size: got {}, expected {full}",
            full - 10
        )));

    let report = fx.run(true);
    let errs = errors(&report);
    assert!(errs.iter().any(|f| matches!(f,
        Finding::Pack { pack: p, problem: PackProblem::HashMismatch { .. } } if *p == pack)));
    assert!(errs.iter().any(|f| matches!(f,
        Finding::Pack { pack: p, problem: PackProblem::HeaderUnreadable(_) } if *p == pack)));
}

#[test]
fn corrupt_snapshot_file() {
    let fx = fixture(2);
    let name = fx.snapshot.to_hex();
    let mut bytes = fx.be.read(FileType::Snapshot, &name).unwrap();
    bytes[20] ^= 1;
    fx.replace(FileType::Snapshot, &name, &bytes);
    let report = fx.run(false);
    let errs = errors(&report);
    assert!(
        matches!(errs[..], [Finding::SnapshotUnreadable { snapshot, .. }] if *snapshot == fx.snapshot),
        "{errs:?}"
    );
    assert!(errs[0].to_string().contains(&name));
    // Nothing else can be reached.
    assert_eq!(report.trees, 0);

    // Stored under its proper hash, a tampered file fails authentication.
    fx.be.remove(FileType::Snapshot, &name).unwrap();
    let other = Id::hash(&bytes).to_hex();
    fx.be.write(FileType::Snapshot, &other, &bytes).unwrap();
    let report = fx.run(false);
    assert!(matches!(
        errors(&report)[..],
        [Finding::SnapshotUnreadable {
            error: Error::MacMismatch(_),
            ..
        }]
    ));
}

#[test]
fn index_referencing_a_nonexistent_pack() {
    let fx = fixture(2);
    let ghost = PackId(Id::hash(b"no such pack"));
    let file = IndexFile {
        supersedes: Vec::new(),
        packs: vec![crate::format::index::IndexPack {
            id: ghost,
            blobs: vec![crate::format::index::IndexBlob {
                id: BlobId(Id::hash(b"ghost blob")),
                tpe: BlobType::Data,
                offset: 0,
                length: 100,
                uncompressed_length: None,
            }],
        }],
    };
    fx.repo.save_json(FileType::Index, &file).unwrap();
    let report = fx.run(true);
    let errs = errors(&report);
    assert!(
        matches!(errs[..], [Finding::PackMissing { pack }] if *pack == ghost),
        "{errs:?}"
    );
    assert_eq!(report.index_files, 2);
}

#[test]
fn unreferenced_pack_is_a_hint() {
    let fx = fixture(2);
    let junk = noise(99, 777);
    let pack = PackId(Id::hash(&junk));
    fx.be.write(FileType::Pack, &pack.to_hex(), &junk).unwrap();
    let report = fx.run(true);
    assert!(report.is_ok(), "{:?}", report.findings);
    let hints: Vec<_> = report.hints().collect();
    assert!(matches!(hints[..], [Finding::UnreferencedPack { pack: p }] if *p == pack));
    assert_eq!(
        hints[0].to_string(),
        format!("pack {pack}: not referenced in any index")
    );
    // Only indexed packs are read.
    assert_eq!(report.packs_read, report.packs);
}

#[test]
fn unreadable_index_stops_the_check() {
    let fx = fixture(2);
    let index = fx.repo.list_ids(FileType::Index).unwrap()[0].to_hex();
    fx.replace(FileType::Index, &index, b"garbage");
    let report = fx.run(true);
    assert!(!report.complete && !report.is_ok());
    let errs = errors(&report);
    assert!(
        matches!(errs[..], [Finding::IndexUnreadable { .. }]),
        "{errs:?}"
    );
    assert!(errs[0].to_string().starts_with("error loading index "));
    assert_eq!(report.packs_read, 0);
}

#[test]
fn duplicate_index_entries_and_unused_blobs_are_hints() {
    let fx = fixture(2);
    // A second index file listing the same packs.
    for (_, file) in fx.repo.load_index_files().unwrap() {
        fx.repo.save_json(FileType::Index, &file).unwrap();
    }
    // A blob no snapshot references.
    let (extra, _) = fx
        .repo
        .save_blob(BlobType::Data, &noise(1234, 100))
        .unwrap();
    fx.repo.flush().unwrap();

    let opts = CheckOptions {
        read_data: Some(ReadDataSubset::All),
        check_unused: true,
        threads: 1,
    };
    let report = check(&fx.repo, &opts, &mut |_| {}).unwrap();
    assert!(report.is_ok(), "{:?}", report.findings);
    let dups = report
        .hints()
        .filter(|f| matches!(f, Finding::DuplicatePack { indexes, .. } if indexes.len() == 2))
        .count();
    assert_eq!(dups, report.packs - 1, "every pack but the new one");
    let unused: Vec<_> = report
        .hints()
        .filter_map(|f| match f {
            Finding::UnusedBlob { blob } => Some(*blob),
            _ => None,
        })
        .collect();
    assert_eq!(unused, [BlobHandle::new(BlobType::Data, extra)]);
}

#[test]
fn subsets_read_only_their_packs() {
    let fx = fixture(2);
    let packs = fx.repo.list_packs().unwrap();
    let mut total_read = 0;
    for n in 1..=2 {
        let opts = CheckOptions {
            read_data: Some(ReadDataSubset::Bucket { n, total: 2 }),
            ..CheckOptions::default()
        };
        let report = check(&fx.repo, &opts, &mut |_| {}).unwrap();
        assert!(report.is_ok());
        let want = packs
            .iter()
            .filter(|(id, _)| u32::from(id.0 .0[0]) % 2 == n - 1)
            .count();
        assert_eq!(report.packs_read, want);
        total_read += report.packs_read;
    }
    assert_eq!(total_read, packs.len());
}

#[test]
fn damaged_tree_nodes_name_the_tree() {
    let fx = fixture(2);
    // A second snapshot whose root has a file without content.
    let mut node = Node::new("broken", NodeType::File);
    node.content = None;
    let mut tree = Tree::new();
    tree.insert(node).unwrap();
    let bad = fx.repo.save_tree(&tree).unwrap();
    fx.repo.flush().unwrap();
    let sn = Snapshot::new(GoTime::from_unix(1_700_000_100, 0), bad, vec!["/".into()]);
    fx.repo.save_snapshot(&sn).unwrap();
    let report = fx.run(false);
    let errs = errors(&report);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(
        errs[0].to_string(),
        format!("tree {bad}: file \"broken\" has nil blob list")
    );
    assert_eq!(report.snapshots, 2);
    assert_eq!(report.trees, 3);
    assert!(fx.root != bad);
}
