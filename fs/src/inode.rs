//! The inode table: which entries the kernel knows, under numbers that stay
//! the same for the life of the mount.
//!
//! # Model
//! - **Made-up entries** (root, `snapshots/`, snapshot roots, `latest`
//!   links, `history/`) are *pinned*: created by the snapshot-list reload,
//!   never dropped. They are few.
//! - **Everything below a snapshot root** (tree nodes, history directories
//!   and versions) lives in the table only while the kernel holds a lookup
//!   reference to it: [`InodeTable::remember`] counts each `lookup` /
//!   `readdirplus` reply, [`InodeTable::forget`] drops the entry when the
//!   kernel's `forget` brings the count to zero. Memory therefore follows
//!   the kernel's inode cache, not the number of directories ever opened.
//! - **Numbers are derived, not remembered per entry.** When a directory is
//!   expanded for the first time it reserves a block of consecutive numbers,
//!   one per slot of its (immutable) content; child `i` is `base + i`.
//!   Only the base is kept ([`InodeTable::reserve`]: one small map entry
//!   per directory ever expanded), so a forgotten directory re-expanded
//!   later hands out exactly the same numbers, and a forgotten entry looked
//!   up again is rebuilt from its parent's child list under its old number.
//! - **Hard links**: within one view (one snapshot root), non-directory
//!   nodes with a link count above one that share (device_id, inode) and
//!   type share the number of the first one seen ([`InodeTable::hardlink`];
//!   the map holds hard-linked nodes only).
//! - Numbers are never reused: blocks come from one counter.

use std::collections::HashMap;
use std::ffi::OsString;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::{Deref, Range};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use cairn_core::format::time::GoTime;
use cairn_core::format::tree::{Node, NodeType, Tree};
use cairn_core::TreeId;
use fuser::FileType;
use parking_lot::{Mutex, RwLock};

use crate::file::OpenFile;
use crate::history::HistSources;
use crate::layout::SnapInfo;

/// An inode number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ino(pub u64);

impl Ino {
    /// The mount's root directory.
    pub const ROOT: Ino = Ino(1);
}

/// A tree node shared with the decoded tree it came from (no copy), or
/// owned (history versions).
#[derive(Clone, Debug)]
pub struct NodeRef(NodeSrc);

#[derive(Clone, Debug)]
enum NodeSrc {
    /// Invariant: the index is in bounds (checked by [`NodeRef::in_tree`]).
    InTree(Arc<Tree>, usize),
    Owned(Arc<Node>),
}

impl NodeRef {
    /// Node `index` of `tree`, if it exists.
    pub fn in_tree(tree: &Arc<Tree>, index: usize) -> Option<NodeRef> {
        (index < tree.nodes.len()).then(|| NodeRef(NodeSrc::InTree(tree.clone(), index)))
    }

    /// A node of its own.
    pub fn owned(node: Arc<Node>) -> NodeRef {
        NodeRef(NodeSrc::Owned(node))
    }
}

impl Deref for NodeRef {
    type Target = Node;
    fn deref(&self) -> &Node {
        match &self.0 {
            NodeSrc::InTree(tree, i) => &tree.nodes[*i],
            NodeSrc::Owned(node) => node,
        }
    }
}

/// One directory entry: a name, the inode it leads to, and what that inode
/// is (so a forgotten entry can be rebuilt from its parent's list).
#[derive(Clone, Debug)]
pub struct Child {
    pub name: OsString,
    pub ino: Ino,
    pub kind: Kind,
}

impl Child {
    /// The file type the kernel sees.
    pub fn file_type(&self) -> FileType {
        self.kind.file_type()
    }
}

/// What an inode is.
#[derive(Clone, Debug)]
pub enum Kind {
    /// A made-up directory (root, `snapshots/`, `hosts/<host>/`). Its
    /// children are set by the snapshot-list reload.
    Virtual { time: GoTime },
    /// A made-up symlink (`latest`).
    Link { target: OsString, time: GoTime },
    /// The root directory of a snapshot.
    SnapshotRoot { snap: Arc<SnapInfo> },
    /// A node of a snapshot tree. `view` is the snapshot root it was found
    /// under (hard links are shared within one view only); `None` for file
    /// versions in the history view, which never share inodes.
    Node { node: NodeRef, view: Option<Ino> },
    /// A directory of the history view: the same path in several snapshots.
    History(Arc<HistSources>),
    /// A version directory of the history view, with its fixed children.
    Versions {
        time: GoTime,
        children: Arc<[Child]>,
    },
}

impl Kind {
    /// The file type the kernel sees.
    pub fn file_type(&self) -> FileType {
        match self {
            Kind::Virtual { .. }
            | Kind::SnapshotRoot { .. }
            | Kind::History(_)
            | Kind::Versions { .. } => FileType::Directory,
            Kind::Link { .. } => FileType::Symlink,
            Kind::Node { node, .. } => crate::attr::file_type(node),
        }
    }

    /// The tree this directory shows, for snapshot roots and tree dirs.
    pub fn subtree(&self) -> Option<TreeId> {
        match self {
            Kind::SnapshotRoot { snap } => Some(snap.snapshot.tree),
            Kind::Node { node, .. } if node.is_dir() => node.subtree,
            _ => None,
        }
    }
}

/// One inode.
#[derive(Debug)]
pub struct Entry {
    /// The directory this entry was found in (itself for the root).
    pub parent: Ino,
    pub kind: Kind,
    /// The children, once expanded (always set for made-up directories).
    children: RwLock<Option<Arc<[Child]>>>,
    /// Serializes expansion so two threads never expand one directory twice.
    expanding: Mutex<()>,
    /// Which children were first read lately, for sibling read-ahead.
    opened: Mutex<Opened>,
    /// A regular file's content layout and read-ahead state, made on the
    /// first read (opens never reach the mount: see [`crate::adapter`]).
    file: OnceLock<Arc<OpenFile>>,
}

/// Files of one directory opened one after the other: the last one opened
/// and how far sibling read-ahead has gone.
#[derive(Debug, Default)]
struct Opened {
    last: Option<usize>,
    frontier: usize,
}

/// Siblings handed to read-ahead at a time.
const SIBLING_BATCH: usize = 32;
/// Hand out more when fewer than this many are left ahead of the reader.
const SIBLING_LOW_WATER: usize = 8;

impl Entry {
    /// A new entry; version directories come with their children.
    pub fn new(parent: Ino, kind: Kind) -> Self {
        let children = match &kind {
            Kind::Versions { children, .. } => Some(children.clone()),
            _ => None,
        };
        Entry {
            parent,
            kind,
            children: RwLock::new(children),
            expanding: Mutex::new(()),
            opened: Mutex::new(Opened::default()),
            file: OnceLock::new(),
        }
    }

    /// The open-file state of this (regular file) entry, made with `make`
    /// the first time; the flag says whether this call made it.
    pub fn open_file(&self, make: impl FnOnce() -> OpenFile) -> (Arc<OpenFile>, bool) {
        if let Some(f) = self.file.get() {
            return (f.clone(), false);
        }
        let mut made = false;
        let f = self.file.get_or_init(|| {
            made = true;
            Arc::new(make())
        });
        (f.clone(), made)
    }

    /// Child `index` (of `count`) of this directory was first read. When
    /// children are being read in order (this one within two of the
    /// previous one), returns the next children to read ahead, in batches
    /// of [`SIBLING_BATCH`], each handed out once.
    pub fn opened_child(&self, index: usize, count: usize) -> Option<Range<usize>> {
        let mut o = self.opened.lock();
        let in_order = o.last.is_some_and(|last| index.abs_diff(last) <= 2);
        o.last = Some(index);
        if !in_order || index + SIBLING_LOW_WATER < o.frontier {
            return None;
        }
        let from = o.frontier.max(index + 1);
        let to = count.min(from + SIBLING_BATCH);
        (from < to).then(|| {
            o.frontier = to;
            from..to
        })
    }

    /// The children, if expanded.
    pub fn children(&self) -> Option<Arc<[Child]>> {
        self.children.read().clone()
    }

    /// Set (or for made-up directories, replace) the children. They are
    /// sorted by name so lookups can binary-search.
    pub fn set_children(&self, children: Vec<Child>) -> Arc<[Child]> {
        let children = sorted(children);
        *self.children.write() = Some(children.clone());
        children
    }

    /// Expand the children with `make` unless already expanded; concurrent
    /// callers wait for the first one. Errors are not remembered.
    pub fn expand<E>(
        &self,
        make: impl FnOnce() -> Result<Vec<Child>, E>,
    ) -> Result<Arc<[Child]>, E> {
        if let Some(c) = self.children() {
            return Ok(c);
        }
        let _guard = self.expanding.lock();
        if let Some(c) = self.children() {
            return Ok(c);
        }
        Ok(self.set_children(make()?))
    }

    /// The file type the kernel sees.
    pub fn file_type(&self) -> FileType {
        self.kind.file_type()
    }

    /// The tree this directory shows, for snapshot roots and tree dirs.
    pub fn subtree(&self) -> Option<TreeId> {
        self.kind.subtree()
    }
}

/// Children sorted by name, as [`find_child`] needs them.
pub fn sorted(mut children: Vec<Child>) -> Arc<[Child]> {
    children.sort_by(|a, b| a.name.cmp(&b.name));
    children.into()
}

/// Look up a child by name in a sorted child list.
pub fn find_child<'a>(children: &'a [Child], name: &std::ffi::OsStr) -> Option<&'a Child> {
    children
        .binary_search_by(|c| c.name.as_os_str().cmp(name))
        .ok()
        .map(|i| &children[i])
}

struct Slot {
    entry: Arc<Entry>,
    /// The kernel's lookup count.
    lookups: u64,
    /// Made-up entries are never dropped.
    pinned: bool,
}

/// A hard-linked node: (view, device_id, inode).
type HardlinkKey = (Ino, u64, u64);

/// Hashes inode numbers with one multiplication instead of SipHash: the
/// table is consulted for every entry of every listing, and its keys are
/// the mount's own numbers (consecutive, not chosen by anyone outside).
#[derive(Default)]
struct InoHasher(u64);

impl Hasher for InoHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing: an odd multiplier keeps consecutive numbers
        // distinct in the low bits and mixes them into the high ones.
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type InoMap<V> = HashMap<Ino, V, BuildHasherDefault<InoHasher>>;

/// The live inodes, plus what keeps their numbers stable.
pub struct InodeTable {
    live: RwLock<InoMap<Slot>>,
    /// Next free number.
    next: AtomicU64,
    /// Directory → (first number of its children's block, block length).
    bases: Mutex<HashMap<Ino, (u64, u64)>>,
    /// (view, device_id, inode) → (number, type) of hard-linked nodes.
    hardlinks: Mutex<HashMap<HardlinkKey, (Ino, NodeType)>>,
}

impl InodeTable {
    /// A table holding only the root, a made-up directory.
    pub fn new(root_time: GoTime) -> Self {
        let root = Entry::new(Ino::ROOT, Kind::Virtual { time: root_time });
        root.set_children(Vec::new());
        let mut live = InoMap::default();
        live.insert(
            Ino::ROOT,
            Slot {
                entry: Arc::new(root),
                lookups: 0,
                pinned: true,
            },
        );
        InodeTable {
            live: RwLock::new(live),
            next: AtomicU64::new(Ino::ROOT.0 + 1),
            bases: Mutex::new(HashMap::new()),
            hardlinks: Mutex::new(HashMap::new()),
        }
    }

    /// The entry of `ino`, if live.
    pub fn get(&self, ino: Ino) -> Option<Arc<Entry>> {
        self.live.read().get(&ino).map(|s| s.entry.clone())
    }

    /// `n` fresh consecutive numbers; returns the first.
    fn fresh(&self, n: u64) -> u64 {
        self.next.fetch_add(n.max(1), Ordering::Relaxed)
    }

    /// Add a pinned (made-up) entry under a fresh number.
    pub fn alloc_pinned(&self, entry: Entry) -> Ino {
        let ino = Ino(self.fresh(1));
        self.live.write().insert(
            ino,
            Slot {
                entry: Arc::new(entry),
                lookups: 0,
                pinned: true,
            },
        );
        ino
    }

    /// The first number of the block for `n` children of directory `dir`:
    /// the block reserved when `dir` was first expanded, or a new one.
    pub fn reserve(&self, dir: Ino, n: u64) -> u64 {
        let mut bases = self.bases.lock();
        match bases.get(&dir) {
            // Contents are immutable, so `n` is the same every time; a
            // larger `n` (impossible unless the tree changed) gets a new
            // block rather than overlapping a neighbour's.
            Some(&(base, len)) if n <= len => base,
            _ => {
                let base = self.fresh(n);
                bases.insert(dir, (base, n));
                base
            }
        }
    }

    /// The number of a hard-linked node (link count > 1, inode != 0) in
    /// `view`: the one first given to (`device_id`, `inode`) there if the
    /// type matches, else `own` (which becomes the shared one if none was).
    pub fn hardlink(&self, view: Ino, node: &Node, own: Ino) -> Ino {
        let key = (view, node.device_id, node.inode);
        let mut links = self.hardlinks.lock();
        match links.get(&key) {
            Some((ino, tpe)) if *tpe == node.node_type => *ino,
            Some(_) => own,
            None => {
                links.insert(key, (own, node.node_type.clone()));
                own
            }
        }
    }

    /// The kernel learned about `child` of `parent` (a `lookup` or
    /// `readdirplus` reply): make sure its entry is live and count the
    /// reference. Returns the entry.
    pub fn remember(&self, parent: Ino, child: &Child) -> Arc<Entry> {
        let mut live = self.live.write();
        let slot = live.entry(child.ino).or_insert_with(|| Slot {
            entry: Arc::new(Entry::new(parent, child.kind.clone())),
            lookups: 0,
            pinned: false,
        });
        slot.lookups = slot.lookups.saturating_add(1);
        slot.entry.clone()
    }

    /// The kernel dropped `n` references to `ino`; drop the entry when none
    /// is left (unless pinned). Unknown numbers are ignored.
    pub fn forget(&self, ino: Ino, n: u64) {
        let mut live = self.live.write();
        if let Some(slot) = live.get_mut(&ino) {
            slot.lookups = slot.lookups.saturating_sub(n);
            if slot.lookups == 0 && !slot.pinned {
                live.remove(&ino);
            }
        }
    }

    /// Number of live inodes.
    pub fn len(&self) -> usize {
        self.live.read().len()
    }

    /// Always false: the root always exists.
    pub fn is_empty(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::format::tree::NodeType;

    fn file(name: &str, inode: u64, links: u64) -> Node {
        let mut n = Node::new(name, NodeType::File);
        n.inode = inode;
        n.device_id = 7;
        n.links = links;
        n
    }

    fn node_child(name: &str, ino: u64) -> Child {
        Child {
            name: name.into(),
            ino: Ino(ino),
            kind: Kind::Node {
                node: NodeRef::owned(Arc::new(file(name, 0, 1))),
                view: None,
            },
        }
    }

    #[test]
    fn pinned_entries_and_fresh_numbers() {
        let t = InodeTable::new(GoTime::zero());
        assert!(t.get(Ino(0)).is_none());
        assert!(t.get(Ino::ROOT).is_some());
        let v = || Kind::Virtual {
            time: GoTime::zero(),
        };
        let a = t.alloc_pinned(Entry::new(Ino::ROOT, v()));
        let b = t.alloc_pinned(Entry::new(a, v()));
        assert_eq!((a, b), (Ino(2), Ino(3)));
        assert_eq!(t.get(b).unwrap().parent, a);
        t.forget(a, 10);
        assert!(t.get(a).is_some(), "pinned entries survive forget");
        assert!(t.get(Ino(4)).is_none());
        assert!(t.get(Ino(u64::MAX)).is_none());
    }

    #[test]
    fn blocks_are_reserved_once_per_directory() {
        let t = InodeTable::new(GoTime::zero());
        let a = t.reserve(Ino(10), 5);
        let b = t.reserve(Ino(11), 3);
        assert_eq!(b, a + 5, "blocks never overlap");
        assert_eq!(t.reserve(Ino(10), 5), a, "same directory, same block");
        assert_eq!(t.reserve(Ino(10), 2), a);
        let c = t.reserve(Ino(10), 6);
        assert!(c >= b + 3, "a grown directory gets a new block");
        assert_eq!(t.reserve(Ino(12), 0) + 1, t.reserve(Ino(13), 1));
    }

    #[test]
    fn forget_drops_entries_and_remember_rebuilds_them() {
        let t = InodeTable::new(GoTime::zero());
        let child = node_child("f", 100);
        t.remember(Ino::ROOT, &child);
        t.remember(Ino::ROOT, &child);
        assert_eq!(t.len(), 2);
        t.forget(Ino(100), 1);
        assert!(t.get(Ino(100)).is_some(), "one reference left");
        t.forget(Ino(100), 1);
        assert!(t.get(Ino(100)).is_none(), "dropped at zero");
        assert_eq!(t.len(), 1);
        let e = t.remember(Ino::ROOT, &child);
        assert_eq!(e.parent, Ino::ROOT);
        assert!(matches!(&e.kind, Kind::Node { node, .. } if node.name == "f"));
        t.forget(Ino(100), 5);
        t.forget(Ino(12345), 1);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn hardlinks_share_within_a_view_only() {
        let t = InodeTable::new(GoTime::zero());
        let (view1, view2) = (Ino(100), Ino(200));
        let x = t.hardlink(view1, &file("x", 5, 2), Ino(1000));
        let y = t.hardlink(view1, &file("y", 5, 2), Ino(1001));
        let z = t.hardlink(view2, &file("x", 5, 2), Ino(1002));
        let other = t.hardlink(view1, &file("w", 6, 2), Ino(1003));
        assert_eq!(
            (x, y, z, other),
            (Ino(1000), Ino(1000), Ino(1002), Ino(1003))
        );
        let mut dev = Node::new("d", NodeType::CharDev);
        dev.inode = 5;
        dev.device_id = 7;
        assert_eq!(
            t.hardlink(view1, &dev, Ino(1004)),
            Ino(1004),
            "a node of another type never shares the inode"
        );
    }

    #[test]
    fn children_sorted_and_expanded_once() {
        let e = Entry::new(
            Ino::ROOT,
            Kind::Virtual {
                time: GoTime::zero(),
            },
        );
        let c = e
            .expand(|| Ok::<_, ()>(vec![node_child("b", 3), node_child("a", 2)]))
            .unwrap();
        assert_eq!(c[0].name, "a");
        let again = e.expand(|| Err::<Vec<Child>, _>("must not run")).unwrap();
        assert_eq!(again.len(), 2);
        assert_eq!(find_child(&c, "b".as_ref()).unwrap().ino, Ino(3));
        assert!(find_child(&c, "c".as_ref()).is_none());
    }

    #[test]
    fn siblings_are_read_ahead_only_when_opened_in_order() {
        let e = Entry::new(
            Ino::ROOT,
            Kind::Virtual {
                time: GoTime::zero(),
            },
        );
        assert_eq!(e.opened_child(0, 100), None, "one open is no pattern");
        assert_eq!(e.opened_child(1, 100), Some(2..34));
        assert_eq!(e.opened_child(2, 100), None, "already handed out");
        assert_eq!(e.opened_child(25, 100), None, "not in order");
        assert_eq!(e.opened_child(26, 100), Some(34..66));
        assert_eq!(e.opened_child(90, 100), None);
        assert_eq!(e.opened_child(91, 100), Some(92..100));
        assert_eq!(e.opened_child(99, 100), None, "nothing left");
    }

    #[test]
    fn node_refs_share_the_tree() {
        let tree = Arc::new(Tree {
            nodes: vec![file("a", 1, 1), file("b", 2, 1)],
        });
        let b = NodeRef::in_tree(&tree, 1).unwrap();
        assert_eq!(b.name, "b");
        assert!(NodeRef::in_tree(&tree, 2).is_none());
        assert_eq!(Arc::strong_count(&tree), 2);
    }
}
