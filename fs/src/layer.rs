//! The read layer: every FUSE operation as a plain method, testable
//! without a kernel.
//!
//! [`ReadLayer`] owns the inode table, the caches, the open file handles
//! and the made-up top of the tree. Directories are expanded lazily when
//! first looked into; the snapshot list is reloaded (at most every
//! `reload_interval`) when a made-up directory is read, and the made-up
//! tree is rebuilt only if the list changed, keeping inode numbers of
//! entries that still mean the same thing.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_core::backend::FileType as RepoFile;
use cairn_core::format::snapshot::Snapshot;
use cairn_core::format::time::GoTime;
use cairn_core::repository::Repository;
use cairn_core::tree::check_name;
use cairn_core::{BlobHandle, BlobType, SnapshotId, TreeId};
use fuser::{FileAttr, FileType};
use parking_lot::Mutex;

use crate::attr::{self, Owner};
use crate::cache::{BlobCache, TreeCache};
use crate::error::{FsError, FsResult};
use crate::file::{OpenFile, Prefetcher};
use crate::history::{self, HistItem, HistSources, HISTORY};
use crate::inode::{find_child, Child, Entry, Ino, InodeTable, Kind};
use crate::layout::{self, SnapInfo, VDir, VNode, LATEST};
use crate::MountOptions;

/// Attribute and entry lifetime for snapshot contents: they never change.
pub const TTL_SNAPSHOT: Duration = Duration::from_secs(24 * 3600);
/// Lifetime for made-up entries, which change when snapshots come and go.
pub const TTL_VIRTUAL: Duration = Duration::from_secs(1);

/// One entry of a `readdir` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: Ino,
    /// Offset of the entry after this one (what the kernel passes back).
    pub next: u64,
    pub kind: FileType,
    pub name: OsString,
}

/// What an entry under a given parent and name stands for, so a reload
/// keeps its inode number only if it still means the same thing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Identity {
    Dir,
    Snapshot(SnapshotId),
    Link(OsString),
    History(u64),
}

#[derive(Default)]
struct ViewState {
    last_check: Option<Instant>,
    ids: Vec<SnapshotId>,
    known: HashMap<SnapshotId, Snapshot>,
    names: HashMap<(Ino, OsString), (Ino, Identity)>,
    generation: u64,
}

/// The caching read layer over one repository.
pub struct ReadLayer {
    repo: Arc<Repository>,
    opts: MountOptions,
    owner: Owner,
    started: GoTime,
    inodes: InodeTable,
    trees: TreeCache,
    blobs: Arc<BlobCache>,
    prefetch: Prefetcher,
    handles: Mutex<HashMap<u64, Arc<OpenFile>>>,
    next_fh: AtomicU64,
    state: Mutex<ViewState>,
}

impl ReadLayer {
    /// Build the layer and load the snapshot list once.
    pub fn new(repo: Arc<Repository>, opts: MountOptions) -> FsResult<Self> {
        let blobs = Arc::new(BlobCache::new(repo.clone(), opts.cache_size));
        let prefetch = Prefetcher::new(blobs.clone(), opts.readahead_threads);
        let started = GoTime::now();
        let layer = ReadLayer {
            trees: TreeCache::new(repo.clone(), opts.tree_cache_size),
            owner: Owner {
                root: opts.owner_root,
                uid: nix::unistd::getuid().as_raw(),
                gid: nix::unistd::getgid().as_raw(),
            },
            inodes: InodeTable::new(started),
            started,
            repo,
            opts,
            blobs,
            prefetch,
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            state: Mutex::new(ViewState::default()),
        };
        layer.refresh(true)?;
        Ok(layer)
    }

    /// The blob cache (for statistics and tests).
    pub fn blob_cache(&self) -> &BlobCache {
        &self.blobs
    }

    /// Number of inodes allocated so far.
    pub fn inode_count(&self) -> usize {
        self.inodes.len()
    }

    // ---- snapshot list ----------------------------------------------------

    /// Reload the snapshot list if `force` or the reload interval passed,
    /// and rebuild the made-up tree if it changed.
    pub fn refresh(&self, force: bool) -> FsResult<()> {
        let mut st = self.state.lock();
        if !force
            && st
                .last_check
                .is_some_and(|t| t.elapsed() < self.opts.reload_interval)
        {
            return Ok(());
        }
        st.last_check = Some(Instant::now());
        let ids: Vec<SnapshotId> = self
            .repo
            .list_ids(RepoFile::Snapshot)?
            .into_iter()
            .map(SnapshotId)
            .collect();
        if ids == st.ids && st.generation > 0 {
            return Ok(());
        }
        let first = st.generation == 0;
        let wanted: HashSet<SnapshotId> = ids.iter().copied().collect();
        st.known.retain(|id, _| wanted.contains(id));
        for id in &ids {
            if !st.known.contains_key(id) {
                match self.repo.load_snapshot(id) {
                    Ok(sn) => {
                        st.known.insert(*id, sn);
                    }
                    Err(e) => log::warn!("snapshot {}: {e}", id.short()),
                }
            }
        }
        if !first {
            // New snapshots reference blobs of index files we have not read.
            self.repo.load_index()?;
        }
        let mut snaps: Vec<SnapInfo> = st
            .known
            .iter()
            .filter(|(_, sn)| self.opts.filter.matches(sn))
            .map(|(id, sn)| SnapInfo {
                id: *id,
                snapshot: sn.clone(),
            })
            .collect();
        snaps.sort_by(|a, b| a.time().cmp(b.time()).then(a.id.cmp(&b.id)));
        st.ids = ids;
        st.generation += 1;
        let vtree = layout::build(&snaps, &self.opts.path_templates, &self.opts.time_template);
        let snaps = Arc::new(snaps);
        let mut children = self.materialize(&mut st, Ino::ROOT, &vtree, &snaps);
        if self.opts.history && find_child_unsorted(&children, HISTORY).is_none() {
            let sources = HistSources {
                snaps: snaps.clone(),
                trees: snaps
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (i, s.snapshot.tree))
                    .collect(),
            };
            let identity = Identity::History(st.generation);
            let ino = self.stable_ino(&mut st, Ino::ROOT, HISTORY.as_ref(), identity, || {
                Kind::History(Arc::new(sources))
            });
            children.push(Child {
                name: HISTORY.into(),
                ino,
                kind: FileType::Directory,
            });
        }
        self.root().set_children(children);
        Ok(())
    }

    fn root(&self) -> Arc<Entry> {
        self.inodes
            .get(Ino::ROOT)
            .unwrap_or_else(|| unreachable!("the root inode always exists"))
    }

    fn materialize(
        &self,
        st: &mut ViewState,
        parent: Ino,
        dir: &VDir,
        snaps: &Arc<Vec<SnapInfo>>,
    ) -> Vec<Child> {
        let mut out = Vec::with_capacity(dir.len());
        for (name, vnode) in dir {
            let (identity, kind) = match vnode {
                VNode::Dir(_) => (Identity::Dir, FileType::Directory),
                VNode::Snapshot(i) => match snaps.get(*i) {
                    Some(s) => (Identity::Snapshot(s.id), FileType::Directory),
                    None => continue,
                },
                VNode::Link(t) => (Identity::Link(t.clone()), FileType::Symlink),
            };
            let time = self.started;
            let ino = self.stable_ino(st, parent, name, identity, || match vnode {
                VNode::Dir(_) => Kind::Virtual { time },
                VNode::Snapshot(i) => Kind::SnapshotRoot {
                    snap: Arc::new(snaps[*i].clone()),
                },
                VNode::Link(target) => Kind::Link {
                    target: target.clone(),
                    time,
                },
            });
            if let VNode::Dir(sub) = vnode {
                let children = self.materialize(st, ino, sub, snaps);
                if let Some(e) = self.inodes.get(ino) {
                    e.set_children(children);
                }
            }
            out.push(Child {
                name: name.clone(),
                ino,
                kind,
            });
        }
        out
    }

    /// The inode of a made-up entry: the previous one if (parent, name)
    /// still means the same, else a new one.
    fn stable_ino(
        &self,
        st: &mut ViewState,
        parent: Ino,
        name: &OsStr,
        identity: Identity,
        kind: impl FnOnce() -> Kind,
    ) -> Ino {
        let key = (parent, name.to_os_string());
        if let Some((ino, id)) = st.names.get(&key) {
            if *id == identity {
                return *ino;
            }
        }
        let entry = Entry::new(parent, kind());
        if matches!(entry.kind, Kind::Virtual { .. }) {
            entry.set_children(Vec::new());
        }
        let ino = self.inodes.alloc(entry);
        st.names.insert(key, (ino, identity));
        ino
    }

    fn maybe_refresh(&self, entry: &Entry) {
        if matches!(entry.kind, Kind::Virtual { .. }) {
            if let Err(e) = self.refresh(false) {
                log::warn!("cannot reload the snapshot list: {e}");
            }
        }
    }

    // ---- directories ------------------------------------------------------

    fn entry(&self, ino: Ino) -> FsResult<Arc<Entry>> {
        self.inodes.get(ino).ok_or(FsError::NotFound)
    }

    /// The children of a directory, expanding it if needed.
    fn children(&self, ino: Ino, entry: &Entry) -> FsResult<Arc<[Child]>> {
        match &entry.kind {
            Kind::Virtual { .. } => Ok(entry.children().unwrap_or_else(|| Arc::from(vec![]))),
            Kind::SnapshotRoot { .. } => {
                let tree = entry.subtree();
                entry.expand(|| self.expand_tree(ino, tree, ino))
            }
            Kind::Node { node, view } if node.is_dir() => {
                let view = view.unwrap_or(ino);
                entry.expand(|| self.expand_tree(ino, node.subtree, view))
            }
            Kind::History(src) => entry.expand(|| self.expand_history(ino, src)),
            Kind::Node { .. } | Kind::Link { .. } => Err(FsError::NotDir),
        }
    }

    fn expand_tree(&self, dir: Ino, tree: Option<TreeId>, view: Ino) -> FsResult<Vec<Child>> {
        let Some(tree_id) = tree else {
            return Ok(Vec::new());
        };
        let tree = self.trees.get(&tree_id)?;
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(tree.nodes.len());
        for node in &tree.nodes {
            if let Err(why) = check_name(&node.name) {
                log::warn!("tree {tree_id}: skipping entry {:?}: {why}", node.name);
                continue;
            }
            if !seen.insert(node.name.as_os_str()) {
                log::warn!("tree {tree_id}: skipping duplicate name {:?}", node.name);
                continue;
            }
            let node = Arc::new(node.clone());
            let name = node.name.clone();
            let kind = attr::file_type(&node);
            let ino = if !node.is_dir() && node.links > 1 && node.inode != 0 {
                self.inodes.hardlink(view, &node, dir)
            } else {
                let entry = Kind::Node {
                    node,
                    view: Some(view),
                };
                self.inodes.alloc(Entry::new(dir, entry))
            };
            out.push(Child { name, ino, kind });
        }
        Ok(out)
    }

    fn expand_history(&self, dir: Ino, src: &HistSources) -> FsResult<Vec<Child>> {
        let items = history::expand(src, |id| self.trees.get(id), &self.opts.time_template)?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match item {
                HistItem::Dir { name, sources } => {
                    let ino = self
                        .inodes
                        .alloc(Entry::new(dir, Kind::History(Arc::new(sources))));
                    out.push(Child {
                        name,
                        ino,
                        kind: FileType::Directory,
                    });
                }
                HistItem::File { name, versions } => {
                    let vdir = self
                        .inodes
                        .alloc(Entry::new(dir, Kind::Virtual { time: self.started }));
                    let mut children: Vec<Child> = versions
                        .iter()
                        .map(|v| Child {
                            name: v.name.clone(),
                            kind: attr::file_type(&v.node),
                            ino: self.inodes.alloc(Entry::new(
                                vdir,
                                Kind::Node {
                                    node: v.node.clone(),
                                    view: None,
                                },
                            )),
                        })
                        .collect();
                    if let Some(last) = versions.last() {
                        let link = self.inodes.alloc(Entry::new(
                            vdir,
                            Kind::Link {
                                target: last.name.clone(),
                                time: src
                                    .snaps
                                    .get(last.snap)
                                    .map(|s| *s.time())
                                    .unwrap_or_else(|| self.started),
                            },
                        ));
                        children.push(Child {
                            name: LATEST.into(),
                            ino: link,
                            kind: FileType::Symlink,
                        });
                    }
                    if let Some(e) = self.inodes.get(vdir) {
                        e.set_children(children);
                    }
                    out.push(Child {
                        name,
                        ino: vdir,
                        kind: FileType::Directory,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Find `name` in directory `parent`; returns its attributes and TTL.
    pub fn lookup(&self, parent: Ino, name: &OsStr) -> FsResult<(FileAttr, Duration)> {
        let entry = self.entry(parent)?;
        self.maybe_refresh(&entry);
        let children = self.children(parent, &entry)?;
        let child = find_child(&children, name).ok_or(FsError::NotFound)?;
        self.getattr(child.ino)
    }

    /// The entries of a directory from `offset` on (0 = from the start,
    /// including `.` and `..`).
    pub fn readdir(&self, ino: Ino, offset: u64) -> FsResult<Vec<DirEntry>> {
        let entry = self.entry(ino)?;
        if offset == 0 {
            self.maybe_refresh(&entry);
        }
        let children = self.children(ino, &entry)?;
        let dots = [
            (ino, FileType::Directory, OsStr::new(".")),
            (entry.parent, FileType::Directory, OsStr::new("..")),
        ];
        let all = dots
            .into_iter()
            .chain(children.iter().map(|c| (c.ino, c.kind, c.name.as_os_str())));
        Ok(all
            .enumerate()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .map(|(i, (ino, kind, name))| DirEntry {
                ino,
                next: i as u64 + 1,
                kind,
                name: name.to_os_string(),
            })
            .collect())
    }

    // ---- attributes -------------------------------------------------------

    /// Attributes of an inode and how long the kernel may cache them.
    pub fn getattr(&self, ino: Ino) -> FsResult<(FileAttr, Duration)> {
        let entry = self.entry(ino)?;
        Ok(match &entry.kind {
            Kind::Virtual { time } => {
                let n = self.subdirs(ino, &entry)?;
                (
                    attr::virtual_dir_attr(ino, time, 2 + n, &self.owner),
                    TTL_VIRTUAL,
                )
            }
            Kind::Link { target, time } => (
                attr::virtual_link_attr(ino, time, target.len(), &self.owner),
                TTL_VIRTUAL,
            ),
            Kind::SnapshotRoot { snap } => {
                let n = self.subdirs(ino, &entry)?;
                (
                    attr::virtual_dir_attr(ino, snap.time(), 2 + n, &self.owner),
                    TTL_SNAPSHOT,
                )
            }
            Kind::History(_) => {
                let n = match entry.children() {
                    Some(c) => count_dirs(&c),
                    None => 0,
                };
                let a = attr::virtual_dir_attr(ino, &self.started, 2 + n, &self.owner);
                (a, TTL_SNAPSHOT)
            }
            Kind::Node { node, view } => {
                let links = if node.is_dir() {
                    2 + self.subdirs(ino, &entry)?
                } else {
                    1
                };
                let a = attr::node_attr(ino, node, links, view.is_some(), &self.owner);
                (a, TTL_SNAPSHOT)
            }
        })
    }

    /// Number of subdirectories, without expanding the directory (a tree
    /// from the cache is enough).
    fn subdirs(&self, ino: Ino, entry: &Entry) -> FsResult<u32> {
        if let Some(c) = entry.children() {
            return Ok(count_dirs(&c));
        }
        let Some(tree) = entry.subtree() else {
            return self.children(ino, entry).map(|c| count_dirs(&c));
        };
        let tree = self.trees.get(&tree)?;
        let mut seen = HashSet::new();
        let n = tree
            .nodes
            .iter()
            .filter(|n| n.is_dir() && check_name(&n.name).is_ok() && seen.insert(&n.name))
            .count();
        Ok(u32::try_from(n).unwrap_or(u32::MAX - 2))
    }

    /// The target of a symlink.
    pub fn readlink(&self, ino: Ino) -> FsResult<Vec<u8>> {
        match &self.entry(ino)?.kind {
            Kind::Link { target, .. } => Ok(target.as_bytes().to_vec()),
            Kind::Node { node, .. } if node.is_symlink() => {
                Ok(node.link_target.as_bytes().to_vec())
            }
            _ => Err(FsError::NotSymlink),
        }
    }

    /// Value of extended attribute `name`.
    pub fn getxattr(&self, ino: Ino, name: &OsStr) -> FsResult<Vec<u8>> {
        match &self.entry(ino)?.kind {
            Kind::Node { node, .. } => node
                .extended_attributes
                .iter()
                .find(|a| a.name.as_bytes() == name.as_bytes())
                .map(|a| a.value.clone())
                .ok_or(FsError::NoAttr),
            _ => Err(FsError::NoAttr),
        }
    }

    /// Names of all extended attributes, each followed by a NUL.
    pub fn listxattr(&self, ino: Ino) -> FsResult<Vec<u8>> {
        let mut out = Vec::new();
        if let Kind::Node { node, .. } = &self.entry(ino)?.kind {
            for a in &node.extended_attributes {
                if !a.name.is_empty() && !a.name.contains('\0') {
                    out.extend_from_slice(a.name.as_bytes());
                    out.push(0);
                }
            }
        }
        Ok(out)
    }

    // ---- files ------------------------------------------------------------

    /// Open a regular file for reading; returns the file handle.
    pub fn open(&self, ino: Ino, write: bool) -> FsResult<u64> {
        if write {
            return Err(FsError::ReadOnly);
        }
        let entry = self.entry(ino)?;
        let node = match &entry.kind {
            Kind::Node { node, .. } if !node.is_dir() => node.clone(),
            Kind::Link { .. } => return Err(FsError::NotFound),
            _ => return Err(FsError::IsDir),
        };
        let file = OpenFile::new(&node, |id| {
            self.repo
                .lookup(&BlobHandle::new(BlobType::Data, *id))
                .map(|e| u64::from(e.plaintext_len()))
        });
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles.lock().insert(fh, Arc::new(file));
        Ok(fh)
    }

    /// Read from an open file.
    pub fn read(&self, fh: u64, offset: u64, size: u32) -> FsResult<Vec<u8>> {
        let file = self
            .handles
            .lock()
            .get(&fh)
            .cloned()
            .ok_or(FsError::NotFound)?;
        let ahead = file.readahead(offset, size, self.opts.readahead);
        self.prefetch.fetch(&self.blobs, &ahead);
        file.read(offset, size, |id| self.blobs.get(id))
    }

    /// Close a file handle.
    pub fn release(&self, fh: u64) {
        self.handles.lock().remove(&fh);
    }
}

fn count_dirs(children: &[Child]) -> u32 {
    let n = children
        .iter()
        .filter(|c| c.kind == FileType::Directory)
        .count();
    u32::try_from(n).unwrap_or(u32::MAX - 2)
}

fn find_child_unsorted<'a>(children: &'a [Child], name: &str) -> Option<&'a Child> {
    children.iter().find(|c| c.name == name)
}
