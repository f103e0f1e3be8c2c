//! The read layer: every FUSE operation as a plain method, testable
//! without a kernel.
//!
//! [`ReadLayer`] owns the inode table (whose entries also hold each
//! file's read state), the caches and the made-up top of the tree
//! ([`crate::view`]). Directories are expanded lazily when first looked
//! into; entries below snapshot roots enter the inode table when the
//! kernel learns about them (`lookup`, `readdirplus`) and leave it when
//! the kernel forgets them, under numbers derived from their parent (see
//! [`crate::inode`]).

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::Duration;

use cairn_core::format::time::GoTime;
use cairn_core::repository::Repository;
use cairn_core::tree::check_name;
use cairn_core::{BlobHandle, BlobType, TreeId};
use fuser::{FileAttr, FileType};
use parking_lot::{Mutex, RwLock};

use crate::attr::{self, Owner};
use crate::cache::BlobCache;
use crate::error::{FsError, FsResult};
use crate::file::{OpenFile, ReadData};
use crate::history::{self, HistItem, HistSources};
use crate::inode::{find_child, sorted, Child, Entry, Ino, InodeTable, Kind, NodeRef};
use crate::layout::LATEST;
use crate::prefetch::{Job, PageCacheSlot, Prefetcher};
use crate::trees::{TreeAhead, TreeCache};
use crate::view::ViewState;
use crate::MountOptions;

/// Attribute and entry lifetime for snapshot contents: they never change.
pub const TTL_SNAPSHOT: Duration = Duration::from_secs(24 * 3600);
/// Lifetime for made-up entries, which change when snapshots come and go.
pub const TTL_VIRTUAL: Duration = Duration::from_secs(1);

/// A listing with attributes loads the trees of the subdirectories among
/// this many entries at once: more than one reply holds as a rule, while
/// the work and memory per request stay bounded in huge directories.
const LISTING_BATCH: usize = 512;

/// Sibling read-ahead skips files larger than this.
const SIBLING_MAX_FILE: u64 = 1 << 20;

/// One entry of a `readdir` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: Ino,
    /// Offset of the entry after this one (what the kernel passes back).
    pub next: u64,
    pub kind: FileType,
    pub name: OsString,
}

/// One entry of a `readdirplus` reply: a [`DirEntry`] with its attributes.
#[derive(Debug, Clone)]
pub struct DirEntryPlus {
    pub entry: DirEntry,
    pub attr: FileAttr,
    pub ttl: Duration,
}

/// The caching read layer over one repository.
pub struct ReadLayer {
    pub(crate) repo: Arc<Repository>,
    pub(crate) opts: MountOptions,
    owner: Owner,
    pub(crate) started: GoTime,
    pub(crate) inodes: InodeTable,
    trees: Arc<TreeCache>,
    tree_ahead: TreeAhead,
    blobs: Arc<BlobCache>,
    prefetch: Prefetcher,
    /// Where read-ahead pushes whole small files (the FUSE session plugs
    /// the kernel in).
    page_cache: PageCacheSlot,
    pub(crate) state: Mutex<ViewState>,
    /// When the made-up tree last changed: the times of made-up
    /// directories, so the kernel's directory cache notices new snapshots.
    pub(crate) listing_time: RwLock<GoTime>,
}

impl ReadLayer {
    /// Build the layer and load the snapshot list once.
    pub fn new(repo: Arc<Repository>, opts: MountOptions) -> FsResult<Self> {
        let blobs = Arc::new(BlobCache::new(repo.clone(), opts.cache_size));
        let page_cache = PageCacheSlot::default();
        let prefetch = Prefetcher::new(blobs.clone(), page_cache.clone(), opts.readahead_threads);
        let started = GoTime::now();
        let trees = Arc::new(TreeCache::new(repo.clone(), opts.tree_cache_size));
        let layer = ReadLayer {
            tree_ahead: TreeAhead::new(trees.clone(), opts.readahead > 0),
            trees,
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
            page_cache,
            state: Mutex::new(ViewState::default()),
            listing_time: RwLock::new(started),
        };
        layer.refresh(true)?;
        Ok(layer)
    }

    /// The blob cache (for statistics and tests).
    pub fn blob_cache(&self) -> &BlobCache {
        &self.blobs
    }

    /// The slot for the kernel's page cache: plug it in (once) to have
    /// read-ahead push small files there.
    pub fn page_cache_slot(&self) -> PageCacheSlot {
        self.page_cache.clone()
    }

    /// Wait until the trees queued for read-ahead so far are loaded (for
    /// tests).
    pub fn settle_tree_ahead(&self) {
        self.tree_ahead.settle();
    }

    /// Number of live inodes (made-up entries plus what the kernel holds).
    pub fn inode_count(&self) -> usize {
        self.inodes.len()
    }

    pub(crate) fn root(&self) -> Arc<Entry> {
        self.inodes
            .get(Ino::ROOT)
            .unwrap_or_else(|| unreachable!("the root inode is pinned"))
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
            Kind::Virtual { .. } | Kind::Versions { .. } => {
                Ok(entry.children().unwrap_or_else(|| Arc::from(vec![])))
            }
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

    /// The children of a tree directory: node `i` of the tree gets number
    /// `base + i` of the directory's block (or its hard link's number).
    fn expand_tree(&self, dir: Ino, tree: Option<TreeId>, view: Ino) -> FsResult<Vec<Child>> {
        let Some(tree_id) = tree else {
            return Ok(Vec::new());
        };
        let tree = self.trees.get(&tree_id)?;
        let base = self.inodes.reserve(dir, tree.nodes.len() as u64);
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(tree.nodes.len());
        for (i, node) in tree.nodes.iter().enumerate() {
            if let Err(why) = check_name(&node.name) {
                log::warn!("tree {tree_id}: skipping entry {:?}: {why}", node.name);
                continue;
            }
            if !seen.insert(node.name.as_os_str()) {
                log::warn!("tree {tree_id}: skipping duplicate name {:?}", node.name);
                continue;
            }
            let Some(node_ref) = NodeRef::in_tree(&tree, i) else {
                continue;
            };
            let own = Ino(base + i as u64);
            let ino = if !node.is_dir() && node.links > 1 && node.inode != 0 {
                self.inodes.hardlink(view, node, own)
            } else {
                own
            };
            out.push(Child {
                name: node.name.clone(),
                ino,
                kind: Kind::Node {
                    node: node_ref,
                    view: Some(view),
                },
            });
        }
        Ok(out)
    }

    /// The children of a history directory. Numbers come from the
    /// directory's block in item order: one per subdirectory, and for a
    /// file its version directory, each version and `latest`.
    fn expand_history(&self, dir: Ino, src: &HistSources) -> FsResult<Vec<Child>> {
        let items = history::expand(src, |id| self.trees.get(id), &self.opts.time_template)?;
        let slots: u64 = items
            .iter()
            .map(|item| match item {
                HistItem::Dir { .. } => 1,
                HistItem::File { versions, .. } => 2 + versions.len() as u64,
            })
            .sum();
        let mut next = self.inodes.reserve(dir, slots);
        let mut take = || {
            let ino = Ino(next);
            next += 1;
            ino
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match item {
                HistItem::Dir { name, sources } => out.push(Child {
                    name,
                    ino: take(),
                    kind: Kind::History(Arc::new(sources)),
                }),
                HistItem::File { name, versions } => {
                    let vdir = take();
                    let mut children: Vec<Child> = versions
                        .iter()
                        .map(|v| Child {
                            name: v.name.clone(),
                            ino: take(),
                            kind: Kind::Node {
                                node: NodeRef::owned(v.node.clone()),
                                view: None,
                            },
                        })
                        .collect();
                    let link = take();
                    if let Some(last) = versions.last() {
                        let time = src
                            .snaps
                            .get(last.snap)
                            .map(|s| *s.time())
                            .unwrap_or(self.started);
                        children.push(Child {
                            name: LATEST.into(),
                            ino: link,
                            kind: Kind::Link {
                                target: last.name.clone(),
                                time,
                            },
                        });
                    }
                    out.push(Child {
                        name,
                        ino: vdir,
                        kind: Kind::Versions {
                            time: self.started,
                            children: sorted(children),
                        },
                    });
                }
            }
        }
        Ok(out)
    }

    /// Find `name` in directory `parent`; returns its attributes and TTL.
    /// The kernel now holds a reference to the entry (see
    /// [`forget`](Self::forget)).
    pub fn lookup(&self, parent: Ino, name: &OsStr) -> FsResult<(FileAttr, Duration)> {
        let entry = self.entry(parent)?;
        self.maybe_refresh(&entry);
        let children = self.children(parent, &entry)?;
        let child = find_child(&children, name).ok_or(FsError::NotFound)?;
        let child_entry = self.inodes.remember(parent, child);
        self.attr_of(child.ino, &child_entry)
    }

    /// The kernel dropped `n` references to `ino` (`forget`).
    pub fn forget(&self, ino: Ino, n: u64) {
        self.inodes.forget(ino, n);
    }

    /// Walk `.`, `..` and the children of directory `ino` from `offset` on
    /// (0 = from the start), giving each with the offset of the next to
    /// `visit` until it returns true (the reply is full).
    fn walk(
        &self,
        ino: Ino,
        offset: u64,
        mut visit: impl FnMut(&Entry, u64, Ino, &OsStr, Option<&Child>) -> FsResult<bool>,
    ) -> FsResult<()> {
        let entry = self.entry(ino)?;
        if offset == 0 {
            self.maybe_refresh(&entry);
        }
        let children = self.children(ino, &entry)?;
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        for i in skip..children.len().saturating_add(2) {
            let next = i as u64 + 1;
            let full = match i {
                0 => visit(&entry, next, ino, OsStr::new("."), None)?,
                1 => visit(&entry, next, entry.parent, OsStr::new(".."), None)?,
                _ => match children.get(i - 2) {
                    Some(c) => visit(&entry, next, c.ino, &c.name, Some(c))?,
                    None => true,
                },
            };
            if full {
                break;
            }
        }
        Ok(())
    }

    /// Hand the entries of a directory from `offset` on (0 = from the start,
    /// including `.` and `..`) to `add` until it returns true (full).
    pub fn readdir_with(
        &self,
        ino: Ino,
        offset: u64,
        mut add: impl FnMut(&DirEntry) -> bool,
    ) -> FsResult<()> {
        self.walk(ino, offset, |_, next, ino, name, child| {
            let kind = child.map_or(FileType::Directory, Child::file_type);
            Ok(add(&DirEntry {
                ino,
                next,
                kind,
                name: name.to_os_string(),
            }))
        })
    }

    /// All entries of a directory from `offset` on.
    pub fn readdir(&self, ino: Ino, offset: u64) -> FsResult<Vec<DirEntry>> {
        let mut out = Vec::new();
        self.readdir_with(ino, offset, |e| {
            out.push(e.clone());
            false
        })?;
        Ok(out)
    }

    /// Like [`readdir_with`](Self::readdir_with), with every entry's
    /// attributes. Each child `add` accepts (returns false for) counts as
    /// looked up by the kernel, as `readdirplus` has it (`.` and `..` do
    /// not).
    pub fn readdirplus_with(
        &self,
        ino: Ino,
        offset: u64,
        mut add: impl FnMut(&DirEntryPlus) -> bool,
    ) -> FsResult<()> {
        self.load_subdir_trees(ino, offset);
        let mut own = None;
        self.walk(ino, offset, |dir, next, child_ino, name, child| {
            let (attr, ttl) = match child {
                // The kernel ignores the attributes of `.` and `..`.
                None => match own {
                    Some(a) => a,
                    None => *own.insert(self.attr_of(ino, dir)?),
                },
                // Counted now, given back unless the reply takes it.
                Some(c) => {
                    let live = self.inodes.remember(ino, c);
                    match self.attr_of(c.ino, &live) {
                        Ok(a) => a,
                        Err(e) => {
                            self.inodes.forget(c.ino, 1);
                            return Err(e);
                        }
                    }
                }
            };
            let e = DirEntryPlus {
                entry: DirEntry {
                    ino: child_ino,
                    next,
                    kind: child.map_or(FileType::Directory, Child::file_type),
                    name: name.to_os_string(),
                },
                attr,
                ttl,
            };
            let full = add(&e);
            if let (true, Some(c)) = (full, child) {
                self.inodes.forget(c.ino, 1);
            }
            Ok(full)
        })
    }

    /// Before listing directory `ino` with attributes from `offset` on:
    /// load the trees of its subdirectories among the next
    /// [`LISTING_BATCH`] entries (their link counts need them) in one batch
    /// instead of one read each, then queue theirs ([`TreeAhead`]: one
    /// level further down, for a walk that descends).
    fn load_subdir_trees(&self, ino: Ino, offset: u64) {
        // Errors are left for the listing to report.
        let Ok(entry) = self.entry(ino) else { return };
        let Ok(children) = self.children(ino, &entry) else {
            return;
        };
        let skip = usize::try_from(offset.saturating_sub(2)).unwrap_or(usize::MAX);
        let next = children.iter().skip(skip).take(LISTING_BATCH);
        let subtrees: Vec<TreeId> = next
            .filter_map(|c| match &c.kind {
                Kind::Node { node, .. } if node.is_dir() => {
                    // An expanded directory counts its children without
                    // its tree (and its subdirectories were queued then).
                    let expanded = self.inodes.get(c.ino).and_then(|e| e.children());
                    node.subtree.filter(|_| expanded.is_none())
                }
                _ => None,
            })
            .collect();
        self.trees.load_many(subtrees.iter().copied());
        self.tree_ahead.fetch(subtrees.iter().filter_map(|id| {
            // Not loaded: it failed, and the listing reports that.
            let tree = self.trees.loaded(id)?;
            let below: Vec<TreeId> = tree
                .nodes
                .iter()
                .filter(|n| n.is_dir())
                .filter_map(|n| n.subtree)
                .collect();
            (!below.is_empty()).then_some(below)
        }));
    }

    /// All entries of a directory from `offset` on, with attributes (each
    /// child counts as looked up).
    pub fn readdirplus(&self, ino: Ino, offset: u64) -> FsResult<Vec<DirEntryPlus>> {
        let mut out = Vec::new();
        self.readdirplus_with(ino, offset, |e| {
            out.push(e.clone());
            false
        })?;
        Ok(out)
    }

    // ---- attributes -------------------------------------------------------

    /// Attributes of an inode and how long the kernel may cache them. For
    /// a made-up directory this may reload the snapshot list (its times
    /// tell the kernel whether its cached listing is still good).
    pub fn getattr(&self, ino: Ino) -> FsResult<(FileAttr, Duration)> {
        let entry = self.entry(ino)?;
        self.maybe_refresh(&entry);
        self.attr_of(ino, &entry)
    }

    fn attr_of(&self, ino: Ino, entry: &Entry) -> FsResult<(FileAttr, Duration)> {
        Ok(match &entry.kind {
            Kind::Virtual { time } => {
                let n = self.subdirs(ino, entry)?;
                let time = (*time).max(*self.listing_time.read());
                (
                    attr::virtual_dir_attr(ino, &time, 2 + n, &self.owner),
                    TTL_VIRTUAL,
                )
            }
            Kind::Link { target, time } => (
                attr::virtual_link_attr(ino, time, target.len(), &self.owner),
                TTL_VIRTUAL,
            ),
            Kind::SnapshotRoot { snap } => {
                let n = self.subdirs(ino, entry)?;
                (
                    attr::virtual_dir_attr(ino, snap.time(), 2 + n, &self.owner),
                    TTL_SNAPSHOT,
                )
            }
            Kind::History(_) => {
                let n = entry.children().map_or(0, |c| count_dirs(&c));
                let a = attr::virtual_dir_attr(ino, &self.started, 2 + n, &self.owner);
                (a, TTL_SNAPSHOT)
            }
            Kind::Versions { time, .. } => (
                attr::virtual_dir_attr(ino, time, 2, &self.owner),
                TTL_SNAPSHOT,
            ),
            Kind::Node { node, view } => {
                let links = if node.is_dir() {
                    2 + self.subdirs(ino, entry)?
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

    /// Check that `ino` may be opened (`write`: for writing). Opening
    /// costs nothing else: a file's state is made on its first read.
    pub fn open(&self, ino: Ino, write: bool) -> FsResult<()> {
        if write {
            return Err(FsError::ReadOnly);
        }
        self.open_file(&*self.entry(ino)?).map(drop)
    }

    /// The open-file state of a regular file entry, made (and sibling
    /// read-ahead started) on first use.
    fn open_file(&self, entry: &Entry) -> FsResult<Arc<OpenFile>> {
        let node = match &entry.kind {
            Kind::Node { node, .. } if !node.is_dir() => node,
            Kind::Link { .. } => return Err(FsError::NotFound),
            _ => return Err(FsError::IsDir),
        };
        let (file, made) = entry.open_file(|| {
            OpenFile::new(node, |id| {
                self.repo
                    .lookup(&BlobHandle::new(BlobType::Data, *id))
                    .map(|e| u64::from(e.plaintext_len()))
            })
        });
        if made {
            self.read_siblings_ahead(entry);
        }
        Ok(file)
    }

    /// When the files of a directory are read one after the other (`cp
    /// -r`, `grep -r`, `find -exec cat`), load the small files that come
    /// next in the background, in batches that neighbouring pack reads
    /// serve together.
    fn read_siblings_ahead(&self, entry: &Entry) {
        let Kind::Node { node, .. } = &entry.kind else {
            return;
        };
        if self.opts.readahead == 0 {
            return;
        }
        let Some(children) = self.inodes.get(entry.parent).and_then(|p| {
            let children = p.children()?;
            let index = children
                .binary_search_by(|c| c.name.as_os_str().cmp(&node.name))
                .ok()?;
            let range = p.opened_child(index, children.len())?;
            Some(children.get(range)?.to_vec())
        }) else {
            return;
        };
        let mut jobs = Vec::new();
        let mut job = Job::default();
        let mut bytes = 0u64;
        for c in &children {
            let Kind::Node { node, .. } = &c.kind else {
                continue;
            };
            // Big files get their own read-ahead once read.
            if !node.is_file() || node.size > SIBLING_MAX_FILE {
                continue;
            }
            if node.size == 0 {
                continue;
            }
            job.add_file(c.ino, node.content(), node.size);
            bytes += node.size;
            if bytes >= crate::file::JOB_BYTES {
                jobs.push(std::mem::take(&mut job));
                bytes = 0;
            }
        }
        if !job.blobs.is_empty() {
            jobs.push(job);
        }
        self.prefetch.fetch(jobs);
    }

    /// Read from a regular file: up to `size` bytes at `offset`, short
    /// only at the end of the file. Sequential reads start read-ahead and
    /// drop the blobs they have left well behind from the cache.
    pub fn read(&self, ino: Ino, offset: u64, size: u32) -> FsResult<ReadData> {
        let file = self.open_file(&*self.entry(ino)?)?;
        let ahead = file.readahead(offset, size, self.opts.readahead);
        self.prefetch.fetch(ahead.jobs.into_iter().map(Job::from));
        let data = file.read(offset, size, |id| self.blobs.get(id));
        self.blobs.evict(&ahead.behind);
        data
    }
}

fn count_dirs(children: &[Child]) -> u32 {
    let n = children
        .iter()
        .filter(|c| c.file_type() == FileType::Directory)
        .count();
    u32::try_from(n).unwrap_or(u32::MAX - 2)
}
