//! Tests of prune planning and execution on an in-memory repository,
//! verified with the checker.

use std::sync::Arc;

use super::*;
use crate::backend::Backend;
use crate::format::tree::{Node, NodeType, Tree};
use crate::format::{GoTime, Snapshot};
use crate::id::BlobId;
use crate::maintenance::check::{self, CheckOptions, ReadDataSubset};
use crate::pack::PackWriter;
use crate::repository::OpenOptions;
use crate::testutil::{mem_repo, noise};

fn new_repo(version: u32) -> (Arc<dyn Backend>, Repository) {
    let (be, mut repo) = mem_repo(version);
    repo.set_pack_size(20_000);
    (be, repo)
}

/// A snapshot of one directory holding one file per blob list.
fn snapshot(repo: &Repository, files: &[Vec<BlobId>], n: u32) -> SnapshotId {
    let mut tree = Tree::new();
    for (i, content) in files.iter().enumerate() {
        let mut node = Node::new(format!("f{i}"), NodeType::File);
        node.content = Some(content.clone());
        tree.insert(node).unwrap();
    }
    let root = repo.save_tree(&tree).unwrap();
    repo.flush().unwrap();
    let sn = Snapshot::new(
        GoTime::from_unix_utc(1_600_000_000 + i64::from(n), 0),
        root,
        vec!["/x".into()],
    );
    repo.save_snapshot(&sn).unwrap()
}

fn save(repo: &Repository, seeds: std::ops::Range<u32>) -> Vec<BlobId> {
    seeds
        .map(|s| repo.save_blob(BlobType::Data, &noise(s, 3000)).unwrap().0)
        .collect()
}

fn check_ok(repo: &Repository) {
    let opts = CheckOptions {
        read_data: Some(ReadDataSubset::All),
        check_unused: true,
        threads: 2,
    };
    let report = check::check(repo, &opts, &mut |_| {}).unwrap();
    let problems: Vec<String> = report.findings.iter().map(|f| f.to_string()).collect();
    assert!(problems.is_empty(), "{problems:#?}");
}

fn prune(be: &Arc<dyn Backend>, opts: &PruneOptions) -> PruneStats {
    let repo = Repository::open(be.clone(), b"pw", &OpenOptions::default()).unwrap();
    let plan = plan(&repo, opts, &HashSet::new(), &mut |_| {}).unwrap();
    let stats = plan.stats.clone();
    execute(&repo, opts, plan, &mut |_| {}).unwrap();
    stats
}

fn opts(max_unused: MaxUnused) -> PruneOptions {
    PruneOptions {
        max_unused,
        pack_size: 20_000,
        threads: 2,
        ..PruneOptions::default()
    }
}

#[test]
fn prune_keeps_used_data_and_drops_the_rest() {
    for version in [1, 2] {
        let (be, repo) = new_repo(version);
        let keep = save(&repo, 0..20);
        let drop_ = save(&repo, 100..140);
        let kept = snapshot(&repo, std::slice::from_ref(&keep), 0);
        let gone = snapshot(&repo, &[drop_.clone(), keep[..3].to_vec()], 1);
        be.remove(FileType::Snapshot, &gone.to_hex()).unwrap();
        let before: u64 = repo.list_packs().unwrap().iter().map(|p| p.1).sum();

        let stats = prune(&be, &opts(MaxUnused::Percent(0.0)));
        assert_eq!(
            stats.used.blobs,
            20 + 1,
            "v{version}: 20 data blobs and the kept tree"
        );
        assert_eq!(stats.unused.blobs, 40 + 1);

        let repo = Repository::open(be.clone(), b"pw", &OpenOptions::default()).unwrap();
        repo.load_index().unwrap();
        for id in &keep {
            assert!(repo.load_blob(BlobType::Data, id).is_ok());
        }
        for id in &drop_ {
            assert!(repo.lookup(&BlobHandle::new(BlobType::Data, *id)).is_none());
        }
        let after: u64 = repo.list_packs().unwrap().iter().map(|p| p.1).sum();
        assert!(
            after < before / 2,
            "v{version}: {after} of {before} bytes left"
        );
        assert_eq!(repo.list_ids(FileType::Snapshot).unwrap(), [kept.0]);
        check_ok(&repo);

        // A second prune has nothing left to do.
        let repo = Repository::open(be.clone(), b"pw", &OpenOptions::default()).unwrap();
        let plan = plan(
            &repo,
            &opts(MaxUnused::Percent(0.0)),
            &HashSet::new(),
            &mut |_| {},
        )
        .unwrap();
        assert!(plan.is_empty(), "v{version}: {plan:?}");
    }
}

#[test]
fn max_unused_limits_repacking_and_unreferenced_packs_go_first() {
    let (be, repo) = new_repo(1);
    // Packs of about six blobs; the snapshot uses every other blob.
    let all = save(&repo, 0..60);
    let used: Vec<BlobId> = all.iter().step_by(2).copied().collect();
    snapshot(&repo, std::slice::from_ref(&used), 0);
    // An unreferenced pack, as an interrupted backup leaves it.
    let mut w = PackWriter::new();
    let orphan = noise(999, 500);
    w.add(
        BlobType::Data,
        BlobId(Id::hash(&orphan)),
        &repo.key().encrypt(&orphan),
        None,
    )
    .unwrap();
    let finished = w.finish(repo.key());
    be.write(FileType::Pack, &finished.id.to_hex(), &finished.data)
        .unwrap();

    let repo = Repository::open(be.clone(), b"pw", &OpenOptions::default()).unwrap();
    let lazy = plan(
        &repo,
        &opts(MaxUnused::Unlimited),
        &HashSet::new(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(lazy.remove_first, [finished.id]);
    assert!(
        lazy.repack.is_empty(),
        "unlimited: data packs are not repacked"
    );
    let strict = plan(
        &repo,
        &opts(MaxUnused::Percent(0.0)),
        &HashSet::new(),
        &mut |_| {},
    )
    .unwrap();
    assert!(!strict.repack.is_empty());
    let capped = PruneOptions {
        max_repack_bytes: Some(1),
        ..opts(MaxUnused::Percent(0.0))
    };
    let capped = plan(&repo, &capped, &HashSet::new(), &mut |_| {}).unwrap();
    assert!(capped.repack.is_empty(), "--max-repack-size caps repacking");

    let stats = prune(&be, &opts(MaxUnused::Percent(0.0)));
    assert_eq!(stats.packs_unreferenced, 1);
    let repo = Repository::open(be.clone(), b"pw", &OpenOptions::default()).unwrap();
    assert!(!be.exists(FileType::Pack, &finished.id.to_hex()).unwrap());
    check_ok(&repo);
    repo.load_index().unwrap();
    for id in &used {
        assert!(repo.load_blob(BlobType::Data, id).is_ok());
    }
}

#[test]
fn missing_used_data_stops_prune_before_any_change() {
    let (be, repo) = new_repo(2);
    let blobs = save(&repo, 0..10);
    snapshot(&repo, std::slice::from_ref(&blobs), 0);
    let data_pack = repo
        .lookup(&BlobHandle::new(BlobType::Data, blobs[0]))
        .unwrap()
        .pack;
    be.remove(FileType::Pack, &data_pack.to_hex()).unwrap();
    let files = |be: &Arc<dyn Backend>| {
        let mut all: Vec<(FileType, String)> = Vec::new();
        for t in [FileType::Index, FileType::Pack, FileType::Snapshot] {
            all.extend(be.list(t).unwrap().into_iter().map(|f| (t, f.name)));
        }
        all.sort();
        all
    };
    let before = files(&be);
    let repo = Repository::open(be.clone(), b"pw", &OpenOptions::default()).unwrap();
    let err = plan(
        &repo,
        &opts(MaxUnused::Percent(0.0)),
        &HashSet::new(),
        &mut |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    assert_eq!(files(&be), before);
}

#[test]
fn v2_uncompressed_trees_are_repacked_compressed() {
    let (be, repo) = new_repo(2);
    // Store the tree uncompressed, as restic 0.13 would have.
    let blobs = save(&repo, 0..3);
    let mut tree = Tree::new();
    let mut node = Node::new("f", NodeType::File);
    node.content = Some(blobs);
    tree.insert(node).unwrap();
    let json = tree.to_json();
    let tree_id = BlobId(Id::hash(&json));
    let mut w = PackWriter::new();
    w.add(BlobType::Tree, tree_id, &repo.key().encrypt(&json), None)
        .unwrap();
    let pack = w.finish(repo.key());
    repo.write_pack_file(&pack).unwrap();
    repo.flush().unwrap();
    let mut builder = crate::index::IndexBuilder::new();
    builder.add_pack(pack.id, &pack.blobs);
    for f in builder.finish() {
        repo.save_file(&f).unwrap();
    }
    let sn = Snapshot::new(
        GoTime::from_unix_utc(0, 0),
        TreeId::from(tree_id),
        vec!["/".into()],
    );
    repo.save_snapshot(&sn).unwrap();

    prune(&be, &opts(MaxUnused::Unlimited));
    let repo = Repository::open(be.clone(), b"pw", &OpenOptions::default()).unwrap();
    repo.load_index().unwrap();
    let entry = repo
        .lookup(&BlobHandle::new(BlobType::Tree, tree_id))
        .unwrap();
    assert!(entry.uncompressed_length.is_some(), "tree now compressed");
    assert_ne!(entry.pack, pack.id);
    check_ok(&repo);
}

#[test]
fn max_unused_parses_like_restic() {
    assert_eq!("5%".parse::<MaxUnused>().unwrap(), MaxUnused::Percent(5.0));
    assert_eq!(
        " unlimited ".parse::<MaxUnused>().unwrap(),
        MaxUnused::Unlimited
    );
    assert_eq!(
        "10M".parse::<MaxUnused>().unwrap(),
        MaxUnused::Bytes(10 << 20)
    );
    assert_eq!("0".parse::<MaxUnused>().unwrap(), MaxUnused::Bytes(0));
    for bad in ["", "100%", "-1%", "x%", "1Q", "nan%"] {
        assert!(bad.parse::<MaxUnused>().is_err(), "{bad:?}");
    }
    assert_eq!(MaxUnused::Percent(50.0).limit(1000), 1000);
    assert_eq!(MaxUnused::Percent(0.0).limit(1000), 0);
    assert_eq!(parse_size("2k").unwrap(), 2048);
    assert!(parse_size("k").is_err());
}

#[test]
fn read_windows_split_at_gaps_overlaps_and_size() {
    let blob = |n: u32, offset: u32, length: u32| PackBlob {
        tpe: BlobType::Data,
        id: BlobId(Id::hash(&n.to_le_bytes())),
        offset,
        length,
        uncompressed_length: None,
    };
    let gap = MAX_READ_GAP as u32;
    let big = READ_WINDOW as u32;
    let blobs = [
        blob(0, 0, 100),
        blob(1, 100, 100),
        // A gap that is still read through.
        blob(2, 200 + gap, 100),
        // A gap too large: a new request.
        blob(3, 301 + 2 * gap, 100),
        // Overlapping its predecessor (a damaged index): a new request.
        blob(4, 350 + 2 * gap, 100),
        // Too large to share a request, and alone larger than a window.
        blob(5, 450 + 2 * gap, big),
        blob(6, 450 + 2 * gap + big, 10),
    ];
    let runs: Vec<Vec<u32>> = read_windows(&blobs)
        .map(|w| w.iter().map(|b| b.offset).collect())
        .collect();
    let offsets = |r: std::ops::Range<usize>| blobs[r].iter().map(|b| b.offset).collect::<Vec<_>>();
    assert_eq!(
        runs,
        vec![
            offsets(0..3),
            offsets(3..4),
            offsets(4..5),
            offsets(5..6),
            offsets(6..7)
        ]
    );
    assert_eq!(read_windows(&[]).count(), 0);
}
