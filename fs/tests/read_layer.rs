//! Kernel-free tests of the read layer on an in-memory repository built
//! with the core API: layout, inode stability, hard links, readdir offsets,
//! reads across blob boundaries, xattrs, hostile trees, the history view,
//! corrupted blobs, and reloading the snapshot list.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_core::backend::{Backend, FileType as RepoFile, MemBackend, Observed, Op};
use cairn_core::crypto::kdf::KdfParams;
use cairn_core::format::snapshot::Snapshot;
use cairn_core::format::time::GoTime;
use cairn_core::format::tree::{ExtendedAttribute, Node, NodeType, Tree};
use cairn_core::repository::{InitOptions, Repository};
use cairn_core::{BlobType, TreeId};
use cairn_fs::prefetch::PageCache;
use cairn_fs::{Ino, MountOptions, ReadLayer};
use fuser::FileType;

fn data(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(seed as u32) as u8
                ^ seed
        })
        .collect()
}

/// Save `chunks` as blobs; returns the file node.
fn file(repo: &Repository, name: &str, chunks: &[Vec<u8>]) -> Node {
    let mut n = Node::new(name, NodeType::File);
    n.mode = 0o644;
    n.content = Some(
        chunks
            .iter()
            .map(|c| repo.save_blob(BlobType::Data, c).unwrap().0)
            .collect(),
    );
    n.size = chunks.iter().map(|c| c.len() as u64).sum();
    n.mtime = GoTime::parse("2023-05-06T07:08:09.123456789+02:00").unwrap();
    n
}

struct Fixture {
    mem: Arc<MemBackend>,
    repo: Arc<Repository>,
    big1: Vec<u8>,
    big2: Vec<u8>,
}

fn snapshot(repo: &Repository, tree: TreeId, time: &str, host: &str) {
    let mut sn = Snapshot::new(GoTime::parse(time).unwrap(), tree, vec!["/data".into()]);
    sn.hostname = host.into();
    sn.tags = vec!["daily".into()];
    repo.save_snapshot(&sn).unwrap();
}

fn fixture() -> Fixture {
    let mem = Arc::new(MemBackend::new());
    let be: Arc<dyn Backend> = mem.clone();
    let repo = Repository::init(
        be,
        b"pw",
        &InitOptions {
            kdf: KdfParams::insecure_fast(),
            ..Default::default()
        },
    )
    .unwrap();
    let chunks1 = vec![data(1, 100_000), data(2, 1), data(3, 50_000)];
    let big1 = chunks1.concat();
    let mut sub = Tree::new();
    let mut x = file(&repo, "x", &[b"inner".to_vec()]);
    x.extended_attributes = vec![ExtendedAttribute {
        name: "user.note".into(),
        value: b"hello".to_vec(),
    }];
    sub.insert(x).unwrap();
    let sub_id = repo.save_tree(&sub).unwrap();

    let mut nodes = vec![file(&repo, "big", &chunks1)];
    for name in ["hl1", "hl2"] {
        let mut h = file(&repo, name, &[b"linked".to_vec()]);
        h.inode = 77;
        h.device_id = 5;
        h.links = 2;
        nodes.push(h);
    }
    let mut d = Node::new("sub", NodeType::Dir);
    d.mode = 0o755 | (1 << 31);
    d.subtree = Some(sub_id);
    nodes.push(d);
    let mut l = Node::new("link", NodeType::Symlink);
    l.link_target = "big".into();
    nodes.push(l);
    let mut fifo = Node::new("fifo", NodeType::Fifo);
    fifo.mode = 0o600;
    nodes.push(fifo);
    let mut dev = Node::new("tty", NodeType::CharDev);
    dev.device = (4 << 8) | 1;
    nodes.push(dev);
    // Hostile entries: skipped, never fatal.
    for bad in ["a/b", "..", ""] {
        nodes.push(file(&repo, "tmp", &[b"bad".to_vec()]));
        nodes.last_mut().unwrap().name = bad.into();
    }
    nodes.push(file(&repo, "big", &[b"duplicate".to_vec()]));
    let root1 = repo.save_tree(&Tree { nodes }).unwrap();
    repo.flush().unwrap();
    snapshot(&repo, root1, "2024-01-01T10:00:00Z", "h1");

    // Second snapshot: big changed (in its own pack), the rest unchanged.
    let big2 = data(9, 70_000);
    let mut root2 = repo.load_tree(&root1).unwrap();
    root2.nodes.retain(|n| n.name != "big");
    root2
        .nodes
        .insert(0, file(&repo, "big", std::slice::from_ref(&big2)));
    let root2 = repo.save_tree(&root2).unwrap();
    repo.flush().unwrap();
    snapshot(&repo, root2, "2024-01-02T10:00:00Z", "h2");
    repo.load_index().unwrap();
    Fixture {
        mem,
        repo: Arc::new(repo),
        big1,
        big2,
    }
}

fn layer(f: &Fixture) -> ReadLayer {
    let opts = MountOptions {
        cache_size: 1 << 20,
        reload_interval: Duration::ZERO,
        ..Default::default()
    };
    ReadLayer::new(f.repo.clone(), opts).unwrap()
}

fn lookup(l: &ReadLayer, path: &str) -> Ino {
    let mut ino = Ino::ROOT;
    for c in path.split('/').filter(|c| !c.is_empty()) {
        ino = Ino(l.lookup(ino, OsStr::new(c)).unwrap().0.ino.0);
    }
    ino
}

fn names(l: &ReadLayer, ino: Ino) -> Vec<String> {
    l.readdir(ino, 0)
        .unwrap()
        .into_iter()
        .map(|e| e.name.to_string_lossy().into_owned())
        .collect()
}

fn read_all(l: &ReadLayer, ino: Ino) -> Vec<u8> {
    l.open(ino, false).unwrap();
    let mut out = Vec::new();
    loop {
        let chunk = l.read(ino, out.len() as u64, 4096).unwrap();
        if chunk.is_empty() {
            break;
        }
        chunk.copy_into(&mut out);
    }
    out
}

#[test]
fn restic_layout_and_stable_inodes() {
    let f = fixture();
    let l = layer(&f);
    assert_eq!(
        names(&l, Ino::ROOT),
        [".", "..", "history", "hosts", "ids", "snapshots", "tags"]
    );
    let snaps = lookup(&l, "snapshots");
    assert_eq!(
        names(&l, snaps),
        [
            ".",
            "..",
            "2024-01-01T10:00:00Z",
            "2024-01-02T10:00:00Z",
            "latest"
        ]
    );
    let latest = lookup(&l, "snapshots/latest");
    assert_eq!(l.readlink(latest).unwrap(), b"2024-01-02T10:00:00Z");
    assert_eq!(names(&l, lookup(&l, "hosts")), [".", "..", "h1", "h2"]);
    assert_eq!(names(&l, lookup(&l, "tags/daily")).len(), 5);
    // Lookups are stable, also across a forced reload with no change.
    let a = lookup(&l, "snapshots/2024-01-01T10:00:00Z/big");
    l.refresh(true).unwrap();
    assert_eq!(lookup(&l, "snapshots/2024-01-01T10:00:00Z/big"), a);
    assert_eq!(lookup(&l, "snapshots"), snaps);
}

#[test]
fn metadata_hardlinks_and_hostile_names() {
    let f = fixture();
    let l = layer(&f);
    let root = lookup(&l, "snapshots/2024-01-01T10:00:00Z");
    assert_eq!(
        names(&l, root),
        [".", "..", "big", "fifo", "hl1", "hl2", "link", "sub", "tty"],
        "bad and duplicate names are skipped"
    );
    let (attr, _) = l.getattr(root).unwrap();
    assert_eq!((attr.kind, attr.nlink), (FileType::Directory, 3));
    let hl1 = lookup(&l, "snapshots/2024-01-01T10:00:00Z/hl1");
    let hl2 = lookup(&l, "snapshots/2024-01-01T10:00:00Z/hl2");
    assert_eq!(hl1, hl2);
    assert_eq!(l.getattr(hl1).unwrap().0.nlink, 2);
    let other_view = lookup(&l, &format!("ids/{}/hl1", ids(&f)[0]));
    assert_ne!(
        other_view, hl1,
        "each view of a snapshot has its own inodes"
    );

    let big = l
        .getattr(lookup(&l, "snapshots/2024-01-01T10:00:00Z/big"))
        .unwrap()
        .0;
    assert_eq!((big.size, big.blocks, big.perm), (150_001, 293, 0o644));
    let mtime = big.mtime.duration_since(std::time::UNIX_EPOCH).unwrap();
    assert_eq!(mtime.subsec_nanos(), 123_456_789);
    let latest = lookup(&l, "snapshots/latest");
    let err = l.lookup(latest, OsStr::new("tty")).unwrap_err();
    assert_eq!(
        err.errno(),
        libc::ENOTDIR,
        "the kernel resolves symlinks, not us"
    );
    let tty = l
        .getattr(lookup(&l, "hosts/h1/2024-01-01T10:00:00Z/tty"))
        .unwrap()
        .0;
    assert_eq!((tty.kind, tty.rdev), (FileType::CharDevice, (4 << 8) | 1));
    let fifo = l
        .getattr(lookup(&l, "hosts/h1/2024-01-01T10:00:00Z/fifo"))
        .unwrap()
        .0;
    assert_eq!((fifo.kind, fifo.perm), (FileType::NamedPipe, 0o600));
    assert_eq!(
        l.readlink(lookup(&l, "hosts/h1/2024-01-01T10:00:00Z/link"))
            .unwrap(),
        b"big"
    );

    let x = lookup(&l, "hosts/h1/2024-01-01T10:00:00Z/sub/x");
    assert_eq!(l.getxattr(x, OsStr::new("user.note")).unwrap(), b"hello");
    assert_eq!(
        l.getxattr(x, OsStr::new("user.none")).unwrap_err().errno(),
        libc::ENODATA
    );
    assert_eq!(l.listxattr(x).unwrap(), b"user.note\0");
    assert_eq!(l.open(x, true).unwrap_err().errno(), libc::EROFS);
    assert_eq!(read_all(&l, x), b"inner");
}

fn ids(f: &Fixture) -> Vec<String> {
    let mut v: Vec<_> = f
        .repo
        .list_snapshots()
        .unwrap()
        .into_iter()
        .map(|(id, _)| id.short())
        .collect();
    v.truncate(2);
    v
}

#[test]
fn readdir_offsets_resume_where_they_left_off() {
    let f = fixture();
    let l = layer(&f);
    let dir = lookup(&l, "snapshots/2024-01-01T10:00:00Z");
    let all = l.readdir(dir, 0).unwrap();
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.next, i as u64 + 1);
        assert_eq!(l.readdir(dir, i as u64).unwrap(), all[i..]);
    }
    assert!(l.readdir(dir, all.len() as u64 + 5).unwrap().is_empty());
    assert_eq!(all[0].ino, dir);
    let file = lookup(&l, "snapshots/2024-01-01T10:00:00Z/big");
    assert_eq!(l.readdir(file, 0).unwrap_err().errno(), libc::ENOTDIR);
}

#[test]
fn reads_at_random_offsets_across_blobs_with_a_small_cache() {
    let f = fixture();
    let l = layer(&f);
    let big = lookup(&l, "snapshots/2024-01-01T10:00:00Z/big");
    assert_eq!(read_all(&l, big), f.big1);
    let mut seed = 12345u64;
    for _ in 0..300 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let off = (seed >> 33) % 160_000;
        let len = ((seed >> 13) % 120_000) as u32;
        let got = l.read(big, off, len).unwrap();
        let s = (off as usize).min(f.big1.len());
        let e = (off as usize + len as usize).min(f.big1.len());
        assert_eq!(got.to_vec(), f.big1[s..e], "off {off} len {len}");
    }
    assert!(l.blob_cache().weighted_size() <= 1 << 20);
    assert_eq!(
        l.read(Ino(u64::MAX), 0, 1).unwrap_err().errno(),
        libc::ENOENT,
        "unknown inode"
    );
}

#[test]
fn history_lists_every_version() {
    let f = fixture();
    let l = layer(&f);
    let versions = lookup(&l, "history/big");
    assert_eq!(
        names(&l, versions),
        [
            ".",
            "..",
            "2024-01-01T10:00:00Z",
            "2024-01-02T10:00:00Z",
            "latest"
        ]
    );
    assert_eq!(
        read_all(&l, lookup(&l, "history/big/2024-01-01T10:00:00Z")),
        f.big1
    );
    assert_eq!(
        read_all(&l, lookup(&l, "history/big/2024-01-02T10:00:00Z")),
        f.big2
    );
    assert_eq!(
        l.readlink(lookup(&l, "history/big/latest")).unwrap(),
        b"2024-01-02T10:00:00Z"
    );
    // Unchanged files have one version; directories merge.
    assert_eq!(names(&l, lookup(&l, "history/hl1")).len(), 4);
    assert_eq!(names(&l, lookup(&l, "history/sub/x")).len(), 4);
}

#[test]
fn corrupted_blob_is_eio_and_the_rest_still_works() {
    let f = fixture();
    // Corrupt the pack holding the second version of `big`.
    let id = f.repo.load_tree(&snap_tree(&f, 1)).unwrap().nodes[0].content()[0];
    let entry = f
        .repo
        .lookup(&cairn_core::BlobHandle::new(BlobType::Data, id))
        .unwrap();
    let name = entry.pack.to_hex();
    let mut bytes = f.mem.read(RepoFile::Pack, &name).unwrap();
    bytes[entry.offset as usize + 20] ^= 0xff;
    f.mem.remove(RepoFile::Pack, &name).unwrap();
    f.mem.write(RepoFile::Pack, &name, &bytes).unwrap();

    let l = layer(&f);
    let bad = lookup(&l, "snapshots/2024-01-02T10:00:00Z/big");
    l.open(bad, false).unwrap();
    assert_eq!(l.read(bad, 0, 10).unwrap_err().errno(), libc::EIO);
    let good = lookup(&l, "snapshots/2024-01-01T10:00:00Z/big");
    assert_eq!(read_all(&l, good), f.big1);
}

fn snap_tree(f: &Fixture, n: usize) -> TreeId {
    let mut snaps = f.repo.list_snapshots().unwrap();
    snaps.sort_by_key(|s| s.1.time);
    snaps[n].1.tree
}

#[test]
fn new_snapshots_appear_without_remounting() {
    let f = fixture();
    let l = layer(&f);
    let snaps = lookup(&l, "snapshots");
    let before = names(&l, snaps);
    let old_latest = lookup(&l, "snapshots/latest");
    let old_time = l.getattr(snaps).unwrap().0.mtime;
    // Same time as an existing snapshot: gets a distinct name.
    snapshot(&f.repo, snap_tree(&f, 0), "2024-01-02T10:00:00Z", "h3");
    // Asking for the attributes is enough to reload, and the made-up
    // directories get a new time (so the kernel drops cached listings).
    let new_time = l.getattr(snaps).unwrap().0.mtime;
    assert!(new_time > old_time, "{old_time:?} -> {new_time:?}");
    assert_eq!(l.getattr(Ino::ROOT).unwrap().0.mtime, new_time);
    let after = names(&l, snaps);
    assert_eq!(after.len(), before.len() + 1);
    assert!(
        after.contains(&"2024-01-02T10:00:00Z-1".to_string()),
        "{after:?}"
    );
    assert_eq!(
        lookup(&l, "snapshots"),
        snaps,
        "made-up dirs keep their inode"
    );
    assert_ne!(lookup(&l, "snapshots/latest"), old_latest, "latest moved");
    let hosts: HashSet<_> = names(&l, lookup(&l, "hosts")).into_iter().collect();
    assert!(hosts.contains("h3"));
}

#[test]
fn forgotten_entries_leave_the_table_and_come_back_under_the_same_number() {
    let f = fixture();
    let l = layer(&f);
    let base = "snapshots/2024-01-01T10:00:00Z";
    let sub = lookup(&l, &format!("{base}/sub"));
    let x = lookup(&l, &format!("{base}/sub/x"));
    let hl1 = lookup(&l, &format!("{base}/hl1"));
    let version = lookup(&l, "history/big/2024-01-02T10:00:00Z");
    let versions = lookup(&l, "history/big");
    let live = l.inode_count();

    // The kernel forgets them (children first, as it does).
    for ino in [x, sub, hl1, version, versions] {
        l.forget(ino, u64::MAX);
    }
    assert_eq!(l.inode_count(), live - 5, "forgotten entries are dropped");
    assert_eq!(l.getattr(x).unwrap_err().errno(), libc::ENOENT);
    // Made-up entries are pinned.
    let snap_root = lookup(&l, base);
    l.forget(snap_root, u64::MAX);
    assert!(l.getattr(snap_root).is_ok());

    // Looked up again: the same numbers, working entries.
    assert_eq!(lookup(&l, &format!("{base}/sub")), sub);
    assert_eq!(lookup(&l, &format!("{base}/sub/x")), x);
    assert_eq!(read_all(&l, x), b"inner");
    assert_eq!(l.getxattr(x, OsStr::new("user.note")).unwrap(), b"hello");
    assert_eq!(lookup(&l, &format!("{base}/hl2")), hl1, "hard link kept");
    assert_eq!(l.getattr(hl1).unwrap().0.nlink, 2);
    assert_eq!(lookup(&l, "history/big"), versions);
    assert_eq!(lookup(&l, "history/big/2024-01-02T10:00:00Z"), version);
    assert_eq!(read_all(&l, version), f.big2);

    // Partial forgets keep the entry until the count reaches zero.
    let n = l.inode_count();
    l.lookup(sub, OsStr::new("x")).unwrap(); // x: 2 references now
    l.forget(x, 1);
    assert_eq!(l.inode_count(), n);
    l.forget(x, 1);
    assert_eq!(l.inode_count(), n - 1);
    // Forgetting unknown or already forgotten numbers is harmless.
    l.forget(x, 1);
    l.forget(Ino(u64::MAX), 3);
    assert_eq!(l.inode_count(), n - 1);
}

#[test]
fn readdirplus_gives_attributes_and_counts_only_what_was_sent() {
    let f = fixture();
    let l = layer(&f);
    let dir = lookup(&l, "snapshots/2024-01-01T10:00:00Z");
    let before = l.inode_count();
    let plain = l.readdir(dir, 0).unwrap();
    let plus = l.readdirplus(dir, 0).unwrap();
    assert_eq!(
        plus.iter().map(|p| p.entry.clone()).collect::<Vec<_>>(),
        plain
    );
    for p in &plus[2..] {
        let (attr, ttl) = l.getattr(p.entry.ino).unwrap();
        assert_eq!(p.attr, attr, "{:?}", p.entry.name);
        assert_eq!(p.ttl, ttl);
        assert_eq!(p.attr.ino.0, p.entry.ino.0);
    }
    // 7 children; hl1 and hl2 share one inode.
    assert_eq!(l.inode_count(), before + 6);

    // A reply that fills up after three entries: only those are counted.
    let other = lookup(&l, "snapshots/2024-01-02T10:00:00Z");
    let before = l.inode_count();
    let mut sent = Vec::new();
    l.readdirplus_with(other, 0, |e| {
        if sent.len() == 3 {
            return true;
        }
        sent.push(e.entry.clone());
        false
    })
    .unwrap();
    assert_eq!(sent[2].name, "big", "after . and ..");
    assert_eq!(l.inode_count(), before + 1);
    // Resuming at the next offset continues after the last entry sent.
    let rest = l.readdirplus(other, sent[2].next).unwrap();
    assert_eq!(rest[0].entry.name, "fifo");
    assert_eq!(l.inode_count(), before + 6);
}

/// A repository on a memory backend, and the number of ranged pack reads
/// made from it.
fn counting_repo() -> (Arc<AtomicUsize>, Repository) {
    let pack_reads = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pack_reads);
    let be = Observed::new(MemBackend::new(), move |op: Op<'_>| {
        if let Op::ReadRange {
            tpe: RepoFile::Pack,
            ..
        } = op
        {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let opts = InitOptions {
        kdf: KdfParams::insecure_fast(),
        ..Default::default()
    };
    let repo = Repository::init(Arc::new(be), b"pw", &opts).unwrap();
    (pack_reads, repo)
}

#[test]
fn listing_loads_the_subdirectory_trees_in_one_read() {
    let (pack_reads, repo) = counting_repo();
    let mut root = Tree::new();
    for i in 0..12 {
        let mut sub = Tree::new();
        sub.insert(Node::new(format!("fifo{i}"), NodeType::Fifo))
            .unwrap();
        let mut d = Node::new(format!("d{i:02}"), NodeType::Dir);
        d.subtree = Some(repo.save_tree(&sub).unwrap());
        root.insert(d).unwrap();
    }
    let root = repo.save_tree(&root).unwrap();
    repo.flush().unwrap();
    snapshot(&repo, root, "2024-01-01T10:00:00Z", "h");
    let l = ReadLayer::new(Arc::new(repo), MountOptions::default()).unwrap();
    let dir = lookup(&l, "snapshots/2024-01-01T10:00:00Z");
    let before = pack_reads.load(Ordering::SeqCst);
    let listed = l.readdirplus(dir, 0).unwrap();
    assert_eq!(listed.len(), 14);
    assert!(listed[2..].iter().all(|e| e.attr.nlink == 2));
    // The twelve trees (their link counts need them) in one ranged read,
    // not one each.
    assert_eq!(pack_reads.load(Ordering::SeqCst) - before, 1);
    assert_eq!(
        names(&l, Ino(listed[13].entry.ino.0)),
        [".", "..", "fifo11"]
    );
}

/// A snapshot `root → d0..d3 → e0..e2 → one fifo` in a counting
/// repository, and the layer over it (`readahead` as given).
fn three_levels(readahead: u64) -> (Arc<AtomicUsize>, ReadLayer) {
    let (pack_reads, repo) = counting_repo();
    let dir = |name: String, tree: Option<TreeId>| {
        let mut d = Node::new(name, NodeType::Dir);
        d.subtree = tree;
        d
    };
    let mut root = Tree::new();
    for i in 0..4 {
        let mut sub = Tree::new();
        for j in 0..3 {
            let mut leaf = Tree::new();
            leaf.insert(Node::new(format!("fifo{i}{j}"), NodeType::Fifo))
                .unwrap();
            let leaf = repo.save_tree(&leaf).unwrap();
            sub.insert(dir(format!("e{j}"), Some(leaf))).unwrap();
        }
        let sub = repo.save_tree(&sub).unwrap();
        root.insert(dir(format!("d{i}"), Some(sub))).unwrap();
    }
    let root = repo.save_tree(&root).unwrap();
    repo.flush().unwrap();
    snapshot(&repo, root, "2024-01-01T10:00:00Z", "h");
    let opts = MountOptions {
        readahead,
        ..MountOptions::default()
    };
    (pack_reads, ReadLayer::new(Arc::new(repo), opts).unwrap())
}

#[test]
fn listing_reads_the_trees_one_level_further_down_ahead() {
    for readahead in [0, 32 << 20] {
        let (pack_reads, l) = three_levels(readahead);
        let top = lookup(&l, "snapshots/2024-01-01T10:00:00Z");
        let listed = l.readdirplus(top, 0).unwrap();
        assert_eq!(listed.len(), 6);
        assert!(listed[2..].iter().all(|e| e.attr.nlink == 5));
        l.settle_tree_ahead();
        // Descending into d2: its listing needs the trees of e0..e2 (link
        // counts), which read-ahead has loaded already.
        let before = pack_reads.load(Ordering::SeqCst);
        let d2 = l.readdirplus(listed[4].entry.ino, 0).unwrap();
        assert_eq!(d2.len(), 5);
        assert!(d2[2..].iter().all(|e| e.attr.nlink == 2));
        let reads = pack_reads.load(Ordering::SeqCst) - before;
        assert_eq!(reads, usize::from(readahead == 0), "readahead {readahead}");
        assert_eq!(names(&l, d2[4].entry.ino), [".", "..", "fifo22"]);
    }
}

#[test]
fn streaming_a_big_file_drops_what_it_passed() {
    const MIB: usize = 1 << 20;
    let (_, repo) = counting_repo();
    let chunks: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; MIB]).collect();
    let node = file(&repo, "big", &chunks);
    let ids = node.content().to_vec();
    let mut root = Tree::new();
    root.insert(node).unwrap();
    let root = repo.save_tree(&root).unwrap();
    repo.flush().unwrap();
    snapshot(&repo, root, "2024-01-01T10:00:00Z", "h");
    let opts = MountOptions {
        cache_size: 64 << 20,
        ..Default::default()
    };
    let l = ReadLayer::new(Arc::new(repo), opts).unwrap();
    let big = lookup(&l, "snapshots/2024-01-01T10:00:00Z/big");
    l.open(big, false).unwrap();
    let mut pos = 0;
    for chunk in &chunks {
        for piece in chunk.chunks(128 << 10) {
            let got = l.read(big, pos as u64, piece.len() as u32).unwrap();
            assert_eq!(got.to_vec(), piece, "at {pos}");
            pos += piece.len();
        }
    }
    // 20 MiB read: the first four blobs are 16 MiB behind and gone, the
    // last ones are still cached.
    let cache = l.blob_cache();
    assert!(ids[..4].iter().all(|id| !cache.contains(id)));
    assert!(ids[16..].iter().all(|id| cache.contains(id)));
    // Reading the start again loads it again.
    let again = l.read(big, 0, 1000).unwrap();
    assert_eq!(again.to_vec(), chunks[0][..1000]);
}

/// Records what read-ahead offers the kernel's page cache; refuses one
/// inode, as the kernel does for inodes it no longer holds.
#[derive(Default)]
struct RecordingPageCache {
    stored: Mutex<Vec<(Ino, Vec<u8>)>>,
    refuse: Mutex<Option<Ino>>,
}

impl PageCache for RecordingPageCache {
    fn store(&self, ino: Ino, data: &[u8]) -> bool {
        if *self.refuse.lock().unwrap() == Some(ino) {
            return false;
        }
        self.stored.lock().unwrap().push((ino, data.to_vec()));
        true
    }
}

#[test]
fn small_files_read_in_order_are_offered_whole_to_the_page_cache() {
    let (_, repo) = counting_repo();
    let mut root = Tree::new();
    let mut contents = Vec::new();
    for i in 0..40u8 {
        // Mostly one blob; every fifth file two, one file empty.
        let chunks = match i {
            7 => vec![],
            _ if i % 5 == 0 => vec![data(i, 3000), data(i + 100, 1000)],
            _ => vec![data(i, 500 + 100 * usize::from(i))],
        };
        contents.push(chunks.concat());
        root.insert(file(&repo, &format!("f{i:02}"), &chunks))
            .unwrap();
    }
    // Neither directories nor big files are offered.
    root.insert(file(&repo, "zbig", &[data(1, 2 << 20)]))
        .unwrap();
    let root = repo.save_tree(&root).unwrap();
    repo.flush().unwrap();
    snapshot(&repo, root, "2024-01-01T10:00:00Z", "h");
    let l = ReadLayer::new(Arc::new(repo), MountOptions::default()).unwrap();
    let page_cache = Arc::new(RecordingPageCache::default());
    let dir = "snapshots/2024-01-01T10:00:00Z";
    let inos: Vec<Ino> = (0..40)
        .map(|i| lookup(&l, &format!("{dir}/f{i:02}")))
        .collect();
    *page_cache.refuse.lock().unwrap() = Some(inos[3]);
    let plugged: Arc<dyn PageCache> = page_cache.clone();
    assert!(l.page_cache_slot().set(plugged).is_ok());

    // Reading f00 then f01 in order starts sibling read-ahead.
    assert_eq!(read_all(&l, inos[0]), contents[0]);
    assert_eq!(read_all(&l, inos[1]), contents[1]);
    // f02..f33 (one batch), but not the empty f07 nor the refused f03.
    let expected = 32 - 2;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while page_cache.stored.lock().unwrap().len() < expected {
        assert!(std::time::Instant::now() < deadline, "read-ahead stalled");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    let stored = page_cache.stored.lock().unwrap();
    assert_eq!(stored.len(), expected);
    for (ino, bytes) in stored.iter() {
        let i = inos.iter().position(|x| x == ino).expect("a listed file");
        assert!((2..34).contains(&i) && i != 3 && i != 7, "f{i:02} offered");
        assert_eq!(bytes, &contents[i], "f{i:02}'s content");
    }
}
