//! The inode table: every name the mount has shown gets a number for the
//! life of the mount.
//!
//! Invariants:
//! - numbers are allocated sequentially from [`Ino::ROOT`] and never reused
//!   or freed, so a number always means the same entry (the kernel's
//!   `forget` is ignored: the table grows with what has been looked at, not
//!   with the repository);
//! - an entry's children, once expanded, never change (snapshots are
//!   immutable); only made-up directories ([`Kind::Virtual`]) get a new
//!   child list when the snapshot list is reloaded;
//! - within one view of a snapshot (one snapshot root directory), non-
//!   directory nodes with a link count above one that share (device_id,
//!   inode) share one inode number: [`InodeTable::hardlink`].

use std::collections::HashMap;
use std::ffi::OsString;
use std::sync::Arc;

use cairn_core::format::time::GoTime;
use cairn_core::format::tree::Node;
use cairn_core::TreeId;
use fuser::FileType;
use parking_lot::{Mutex, RwLock};

use crate::history::HistSources;
use crate::layout::SnapInfo;

/// An inode number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ino(pub u64);

impl Ino {
    /// The mount's root directory.
    pub const ROOT: Ino = Ino(1);
}

/// One directory entry: a name, the inode it leads to and its file type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Child {
    pub name: OsString,
    pub ino: Ino,
    pub kind: FileType,
}

/// What an inode is.
#[derive(Debug)]
pub enum Kind {
    /// A made-up directory (root, `snapshots/`, `hosts/<host>/`, a history
    /// version directory). Its children are set when it is built.
    Virtual { time: GoTime },
    /// A made-up symlink (`latest`).
    Link { target: OsString, time: GoTime },
    /// The root directory of a snapshot.
    SnapshotRoot { snap: Arc<SnapInfo> },
    /// A node of a snapshot tree. `view` is the snapshot root it was found
    /// under (hard links are shared within one view only); `None` for file
    /// versions in the history view, which never share inodes.
    Node { node: Arc<Node>, view: Option<Ino> },
    /// A directory of the history view: the same path in several snapshots.
    History(Arc<HistSources>),
}

/// One inode.
#[derive(Debug)]
pub struct Entry {
    /// The directory this entry was first found in (itself for the root).
    pub parent: Ino,
    pub kind: Kind,
    /// The children, once expanded (always set for made-up directories).
    children: RwLock<Option<Arc<[Child]>>>,
    /// Serializes expansion so two threads never expand one directory twice.
    expanding: Mutex<()>,
}

impl Entry {
    /// A new entry without children.
    pub fn new(parent: Ino, kind: Kind) -> Self {
        Entry {
            parent,
            kind,
            children: RwLock::new(None),
            expanding: Mutex::new(()),
        }
    }

    /// The children, if expanded.
    pub fn children(&self) -> Option<Arc<[Child]>> {
        self.children.read().clone()
    }

    /// Set (or for made-up directories, replace) the children. They are
    /// sorted by name so lookups can binary-search.
    pub fn set_children(&self, mut children: Vec<Child>) -> Arc<[Child]> {
        children.sort_by(|a, b| a.name.cmp(&b.name));
        let children: Arc<[Child]> = children.into();
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
        match &self.kind {
            Kind::Virtual { .. } | Kind::SnapshotRoot { .. } | Kind::History(_) => {
                FileType::Directory
            }
            Kind::Link { .. } => FileType::Symlink,
            Kind::Node { node, .. } => crate::attr::file_type(node),
        }
    }

    /// The tree this directory shows, for snapshot roots and tree dirs.
    pub fn subtree(&self) -> Option<TreeId> {
        match &self.kind {
            Kind::SnapshotRoot { snap } => Some(snap.snapshot.tree),
            Kind::Node { node, .. } if node.is_dir() => node.subtree,
            _ => None,
        }
    }
}

/// Look up a child by name in a sorted child list.
pub fn find_child<'a>(children: &'a [Child], name: &std::ffi::OsStr) -> Option<&'a Child> {
    children
        .binary_search_by(|c| c.name.as_os_str().cmp(name))
        .ok()
        .map(|i| &children[i])
}

/// The arena of inodes.
pub struct InodeTable {
    entries: RwLock<Vec<Arc<Entry>>>,
    hardlinks: Mutex<HashMap<(Ino, u64, u64), Ino>>,
}

impl InodeTable {
    /// A table holding only the root, a made-up directory.
    pub fn new(root_time: GoTime) -> Self {
        let root = Entry::new(Ino::ROOT, Kind::Virtual { time: root_time });
        root.set_children(Vec::new());
        InodeTable {
            entries: RwLock::new(vec![Arc::new(root)]),
            hardlinks: Mutex::new(HashMap::new()),
        }
    }

    /// The entry of `ino`.
    pub fn get(&self, ino: Ino) -> Option<Arc<Entry>> {
        let index = usize::try_from(ino.0.checked_sub(1)?).ok()?;
        self.entries.read().get(index).cloned()
    }

    /// Add an entry; returns its new number.
    pub fn alloc(&self, entry: Entry) -> Ino {
        let mut entries = self.entries.write();
        entries.push(Arc::new(entry));
        Ino(entries.len() as u64)
    }

    /// The inode of a hard-linked node: the one already allocated for
    /// (`view`, `device_id`, `inode`) if its type matches, else a new one.
    pub fn hardlink(&self, view: Ino, node: &Arc<Node>, parent: Ino) -> Ino {
        let key = (view, node.device_id, node.inode);
        let mut links = self.hardlinks.lock();
        if let Some(&ino) = links.get(&key) {
            let same_type = self.get(ino).is_some_and(|e| match &e.kind {
                Kind::Node { node: first, .. } => first.node_type == node.node_type,
                _ => false,
            });
            if same_type {
                return ino;
            }
        }
        let ino = self.alloc(Entry::new(
            parent,
            Kind::Node {
                node: node.clone(),
                view: Some(view),
            },
        ));
        links.insert(key, ino);
        ino
    }

    /// Number of inodes allocated so far.
    pub fn len(&self) -> usize {
        self.entries.read().len()
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

    fn file(name: &str, inode: u64, links: u64) -> Arc<Node> {
        let mut n = Node::new(name, NodeType::File);
        n.inode = inode;
        n.device_id = 7;
        n.links = links;
        Arc::new(n)
    }

    #[test]
    fn sequential_numbers_and_lookup() {
        let t = InodeTable::new(GoTime::zero());
        assert!(t.get(Ino(0)).is_none());
        assert!(t.get(Ino::ROOT).is_some());
        let a = t.alloc(Entry::new(
            Ino::ROOT,
            Kind::Virtual {
                time: GoTime::zero(),
            },
        ));
        let b = t.alloc(Entry::new(
            a,
            Kind::Virtual {
                time: GoTime::zero(),
            },
        ));
        assert_eq!((a, b), (Ino(2), Ino(3)));
        assert_eq!(t.get(b).unwrap().parent, a);
        assert!(t.get(Ino(4)).is_none());
        assert!(t.get(Ino(u64::MAX)).is_none());
    }

    #[test]
    fn hardlinks_share_within_a_view_only() {
        let t = InodeTable::new(GoTime::zero());
        let view1 = Ino(100);
        let view2 = Ino(200);
        let x = t.hardlink(view1, &file("x", 5, 2), Ino::ROOT);
        let y = t.hardlink(view1, &file("y", 5, 2), Ino::ROOT);
        let z = t.hardlink(view2, &file("x", 5, 2), Ino::ROOT);
        let other = t.hardlink(view1, &file("w", 6, 2), Ino::ROOT);
        assert_eq!(x, y);
        assert_ne!(x, z);
        assert_ne!(x, other);
        let mut dir = Node::new("d", NodeType::Dir);
        dir.inode = 5;
        dir.device_id = 7;
        let d = t.hardlink(view1, &Arc::new(dir), Ino::ROOT);
        assert_ne!(d, x, "a node of another type never shares the inode");
    }

    #[test]
    fn children_sorted_and_expanded_once() {
        let e = Entry::new(
            Ino::ROOT,
            Kind::Virtual {
                time: GoTime::zero(),
            },
        );
        let mk = |n: &str, i| Child {
            name: n.into(),
            ino: Ino(i),
            kind: FileType::RegularFile,
        };
        let c = e
            .expand(|| Ok::<_, ()>(vec![mk("b", 3), mk("a", 2)]))
            .unwrap();
        assert_eq!(c[0].name, "a");
        let again = e.expand(|| Err::<Vec<Child>, _>("must not run")).unwrap();
        assert_eq!(again.len(), 2);
        assert_eq!(find_child(&c, "b".as_ref()).unwrap().ino, Ino(3));
        assert!(find_child(&c, "c".as_ref()).is_none());
    }
}
