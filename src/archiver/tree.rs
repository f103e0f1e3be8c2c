//! Building a snapshot's trees from the file system, depth first.
//!
//! The walk follows the [`TargetTree`]: intermediate directories take their
//! metadata from `stat` (following symlinks, as restic does) and list only
//! the targets below them; leaves are `lstat`ed and, if directories, read
//! completely. Each directory is a [`Frame`] on an explicit stack, so deep
//! trees cannot overflow the call stack. A frame collects its entries, in
//! name order: finished nodes, and files handed to the [`FileSaver`]
//! pipeline, whose results are collected when the directory is complete.
//! Then the directory's tree blob is saved and its node, with the subtree
//! id, joins the parent frame.
//!
//! Files are compared with the parent snapshot (unchanged: reuse its
//! content without reading) and with the checkpoints of interrupted runs
//! (unchanged: reuse; only a stored prefix: read the rest).
//!
//! The builder never blocks for long: waiting for room in the pipeline or
//! for a file to finish is done in short slices, and between slices
//! [`Builder::tick`] saves a checkpoint when one is due, or, on an
//! interrupt, stops the readers, waits for what is in flight, saves a last
//! checkpoint and ends the walk with [`Error::Interrupted`]. A checkpoint's
//! tree is the stack's finished part: every frame's finished entries, the
//! stored prefix of files in progress, and the frame above it.
//!
//! Error policy (restic's): a problem with one item (cannot `lstat`, open,
//! read or list it) is reported, the item is left out, and the backup goes
//! on; it then ends incomplete. Problems with the repository, and with the
//! intermediate directories above the targets, abort the backup.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::Metadata;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::checkpoint::Checkpointer;
use super::node::NodeFactory;
use super::parent::ChangeDetection;
use super::pipeline::{FileJob, FileOutcome, FileSaver, PendingFile, Resume, Source};
use super::progress::Progress;
use super::saver::BlobSaver;
use super::select::Selector;
use super::targets::TargetTree;
use super::{Change, Reporter};
use crate::blob::{BlobHandle, BlobType};
use crate::error::{Error, Result};
use crate::format::tree::{Node, NodeType, Tree};
use crate::id::TreeId;
use crate::repository::Repository;

/// How long the builder waits at a time before it looks at the clock and
/// the interrupt flag again.
const TICK: Duration = Duration::from_millis(100);

/// What the walk counted (restic's `Summary`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
    pub dirs_new: u64,
    pub dirs_changed: u64,
    pub dirs_unmodified: u64,
    /// Sum of the sizes of all files in the snapshot.
    pub bytes_processed: u64,
    /// Bytes actually read from files (unchanged files are not read).
    pub bytes_read: u64,
    /// Items reported as errors.
    pub errors: u64,
    /// Files that kept changing while they were read.
    pub changed_during_backup: u64,
    /// Files whose first part was stored by a checkpoint and not read again.
    pub files_resumed: u64,
}

impl Counts {
    /// Count a completed file or directory, compared to the parent's node.
    pub fn complete(&mut self, previous: Option<&Node>, current: &Node) -> Option<Change> {
        let change = match previous {
            None => Change::New,
            Some(p) if p == current => Change::Unmodified,
            Some(_) => Change::Changed,
        };
        let (new, changed, unmodified) = if current.is_file() {
            (
                &mut self.files_new,
                &mut self.files_changed,
                &mut self.files_unmodified,
            )
        } else if current.is_dir() {
            (
                &mut self.dirs_new,
                &mut self.dirs_changed,
                &mut self.dirs_unmodified,
            )
        } else {
            return None;
        };
        *match change {
            Change::New => new,
            Change::Changed => changed,
            Change::Unmodified => unmodified,
        } += 1;
        self.bytes_processed += current.size;
        Some(change)
    }
}

/// Something to put into a directory's tree.
enum Child {
    /// An item to back up completely: a target, or a directory entry.
    Item { name: OsString, path: PathBuf },
    /// A directory above the targets: its own metadata from `info_path`,
    /// and only the listed children.
    Intermediate {
        name: OsString,
        info_path: PathBuf,
        children: Vec<Child>,
    },
}

/// A finished or pending node of a directory.
enum Entry {
    Ready(Node),
    File(FileEntry),
}

/// A file handed to the pipeline.
struct FileEntry {
    pending: PendingFile,
    /// The parent snapshot's node at the same place.
    previous: Option<Node>,
    path: PathBuf,
    sn_path: String,
    resumed: bool,
}

/// What visiting a child produced.
enum Visit {
    Nothing,
    Frame(Frame),
    /// A file to hand to the pipeline.
    File(FileJob, Option<Node>, String),
}

/// A directory being built.
struct Frame {
    /// Its path in the snapshot (`/` for the root).
    sn_path: String,
    /// Its own node (none for the root).
    node: Option<Node>,
    /// The parent snapshot's node at the same place.
    previous_node: Option<Node>,
    /// The parent snapshot's listing of this directory, and its tree id.
    previous: Option<(TreeId, Tree)>,
    /// The checkpoints' listings of this directory, newest first.
    checkpoints: Vec<Tree>,
    children: std::vec::IntoIter<Child>,
    entries: Vec<Entry>,
}

impl Frame {
    /// This directory's finished part, with `child` (the partial node of
    /// the directory being walked below it) added.
    fn partial_tree(&self, child: Option<Node>) -> Result<Tree> {
        let mut tree = Tree::new();
        for entry in &self.entries {
            let node = match entry {
                Entry::Ready(node) => Some(node.clone()),
                Entry::File(file) => file.pending.partial_node(),
            };
            if let Some(node) = node {
                tree.insert(node)?;
            }
        }
        if let Some(child) = child {
            tree.insert(child)?;
        }
        Ok(tree)
    }

    /// The parent snapshot's node named `name` in this directory.
    fn previous_node(&self, name: &OsString) -> Option<Node> {
        self.previous.as_ref()?.1.find(name).cloned()
    }

    /// The checkpoints' nodes named `name`, newest checkpoint first.
    fn checkpoint_nodes<'f>(&'f self, name: &'f OsString) -> impl Iterator<Item = &'f Node> + 'f {
        self.checkpoints.iter().filter_map(move |t| t.find(name))
    }
}

/// The tree-building stage of a backup.
pub struct Builder<'a> {
    pub repo: &'a Repository,
    pub blobs: &'a BlobSaver<'a>,
    pub files: &'a FileSaver,
    pub nodes: &'a NodeFactory,
    pub select: &'a Selector,
    pub change: ChangeDetection,
    pub reporter: &'a dyn Reporter,
    pub progress: &'a Progress,
    /// The user's interrupt (Ctrl+C, SIGTERM).
    pub interrupt: &'a AtomicBool,
    /// Stops the pipeline's readers.
    pub stop: &'a AtomicBool,
    /// Saves checkpoints (none in a dry run).
    pub checkpointer: Option<Checkpointer<'a>>,
    pub counts: Counts,
}

impl Builder<'_> {
    /// Back up everything `targets` describes; returns the root tree.
    /// `parent` is the parent snapshot's root tree, `checkpoints` the root
    /// trees of checkpoints to resume from, newest first.
    pub fn build(
        &mut self,
        targets: TargetTree,
        parent: Option<TreeId>,
        checkpoints: &[TreeId],
    ) -> Result<TreeId> {
        let previous = parent.and_then(|id| Some((id, self.load_tree(&id, Path::new("/"))?)));
        let checkpoints = checkpoints
            .iter()
            .filter_map(|id| self.load_checkpoint_tree(id))
            .collect();
        let root = Frame {
            sn_path: "/".to_string(),
            node: None,
            previous_node: None,
            previous,
            checkpoints,
            children: children_of(targets.nodes)?.into_iter(),
            entries: Vec::new(),
        };
        let mut stack = vec![root];
        loop {
            self.tick(&stack)?;
            let Some(top) = stack.last_mut() else { break };
            if let Some(child) = top.children.next() {
                match self.visit(top, child)? {
                    Visit::Nothing => {}
                    Visit::Frame(frame) => stack.push(frame),
                    Visit::File(job, previous, sn_path) => {
                        let resumed = matches!(&job.source, Source::Path { resume: Some(_) });
                        let path = job.path.clone();
                        let pending = self.submit(job, &stack)?;
                        if let Some(top) = stack.last_mut() {
                            top.entries.push(Entry::File(FileEntry {
                                pending,
                                previous,
                                path,
                                sn_path,
                                resumed,
                            }));
                        }
                    }
                }
                continue;
            }
            self.settle_top(&stack)?;
            let Some(done) = stack.pop() else { break };
            let (node, tree_id) = self.finish(done)?;
            match (stack.last_mut(), node) {
                (Some(parent), Some(node)) => parent.entries.push(Entry::Ready(node)),
                _ => return Ok(tree_id),
            }
        }
        Err(Error::InvalidArgument("snapshot is empty".into()))
    }

    /// Save a checkpoint if one is due; on an interrupt, save a last one
    /// and stop with [`Error::Interrupted`].
    fn tick(&mut self, stack: &[Frame]) -> Result<()> {
        if self.interrupt.load(Ordering::Relaxed) {
            self.stop.store(true, Ordering::Relaxed);
            if self.checkpointer.is_some() {
                for frame in stack {
                    for entry in &frame.entries {
                        if let Entry::File(file) = entry {
                            while !file.pending.wait_timeout(TICK) {}
                        }
                    }
                }
                self.checkpoint(stack)?;
            }
            return Err(Error::Interrupted);
        }
        if self.checkpointer.as_ref().is_some_and(|c| c.due()) {
            self.checkpoint(stack)?;
        }
        Ok(())
    }

    /// Save the finished part of the walk as a checkpoint.
    fn checkpoint(&mut self, stack: &[Frame]) -> Result<()> {
        let mut child = None;
        let mut root = None;
        for frame in stack.iter().rev() {
            let tree = frame.partial_tree(child.take())?;
            match &frame.node {
                Some(node) => {
                    let mut node = node.clone();
                    node.subtree = Some(self.blobs.save_tree(&tree)?);
                    child = Some(node);
                }
                None if !tree.nodes.is_empty() => root = Some(self.blobs.save_tree(&tree)?),
                None => {}
            }
        }
        if let Some(checkpointer) = self.checkpointer.as_mut() {
            match root {
                Some(root) => {
                    let id = checkpointer.save(root)?;
                    self.reporter.checkpoint(&id);
                }
                None => checkpointer.postpone(),
            }
        }
        Ok(())
    }

    /// Hand a file to the pipeline, ticking while it is full.
    fn submit(&mut self, mut job: FileJob, stack: &[Frame]) -> Result<PendingFile> {
        loop {
            match self.files.submit(job, TICK) {
                Ok(pending) => return Ok(pending),
                Err(back) => {
                    job = *back;
                    self.tick(stack)?;
                }
            }
        }
    }

    /// Wait until every file of the top frame is settled, ticking.
    fn settle_top(&mut self, stack: &[Frame]) -> Result<()> {
        let Some(top) = stack.last() else {
            return Ok(());
        };
        for entry in &top.entries {
            if let Entry::File(file) = entry {
                while !file.pending.wait_timeout(TICK) {
                    self.tick(stack)?;
                }
            }
        }
        Ok(())
    }

    fn visit(&mut self, parent: &mut Frame, child: Child) -> Result<Visit> {
        match child {
            Child::Item { name, path } => self.visit_item(parent, name, path),
            Child::Intermediate {
                name,
                info_path,
                children,
            } => self.visit_intermediate(parent, name, info_path, children),
        }
    }

    fn visit_item(&mut self, parent: &mut Frame, name: OsString, path: PathBuf) -> Result<Visit> {
        let reporter = self.reporter;
        if self
            .select
            .excluded_by_name(&path, &|m: String| reporter.warning(&m))
        {
            return Ok(Visit::Nothing);
        }
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) => {
                self.fail(&path, Error::io(format!("lstat {}", path.display()), e));
                return Ok(Visit::Nothing);
            }
        };
        if self.select.excluded_by_info(&path, &meta) {
            return Ok(Visit::Nothing);
        }
        let previous = parent.previous_node(&name);
        let sn_path = child_sn_path(&parent.sn_path, &name);
        let file_type = meta.file_type();
        if file_type.is_file() {
            self.file_entry(parent, name, path, &meta, previous, sn_path)
        } else if file_type.is_dir() {
            let checkpoints: Vec<Node> = parent.checkpoint_nodes(&name).cloned().collect();
            Ok(self
                .dir_frame(name, path, &meta, previous, &checkpoints, sn_path)
                .map_or(Visit::Nothing, Visit::Frame))
        } else if file_type.is_socket() {
            // restic leaves sockets out.
            Ok(Visit::Nothing)
        } else {
            match self.nodes.node(&path, name, &meta) {
                Ok(node) => parent.entries.push(Entry::Ready(node)),
                Err(e) => self.fail(&path, e),
            }
            Ok(Visit::Nothing)
        }
    }

    fn visit_intermediate(
        &mut self,
        parent: &mut Frame,
        name: OsString,
        info_path: PathBuf,
        children: Vec<Child>,
    ) -> Result<Visit> {
        let meta = std::fs::metadata(&info_path)
            .map_err(|e| Error::io(format!("stat {}", info_path.display()), e))?;
        if !meta.is_dir() {
            return Err(Error::InvalidPath {
                path: info_path,
                reason: "path is not a directory".into(),
            });
        }
        let previous = parent.previous_node(&name);
        let checkpoints: Vec<Node> = parent.checkpoint_nodes(&name).cloned().collect();
        let sn_path = child_sn_path(&parent.sn_path, &name);
        let node = self.nodes.node(&info_path, name, &meta)?;
        let previous_tree = self.load_previous(previous.as_ref(), &info_path);
        Ok(Visit::Frame(Frame {
            sn_path,
            node: Some(node),
            previous_node: previous,
            previous: previous_tree,
            checkpoints: self.load_checkpoint_dirs(&checkpoints),
            children: children.into_iter(),
            entries: Vec::new(),
        }))
    }

    /// A regular file: reused from the parent or a checkpoint if unchanged
    /// (pushed to `frame` at once), else opened and returned as a job for
    /// the pipeline, resumed if a checkpoint stored its first part.
    fn file_entry(
        &mut self,
        frame: &mut Frame,
        name: OsString,
        path: PathBuf,
        meta: &Metadata,
        previous: Option<Node>,
        sn_path: String,
    ) -> Result<Visit> {
        let mut known_missing = false;
        if let Some(prev) = previous
            .as_ref()
            .filter(|p| !self.change.file_changed(meta, p))
        {
            if self.all_blobs_present(prev) {
                // As restic: the parent's node stands for the file.
                if let Some(node) = self.reuse(&path, name, meta, prev, Some(prev), true, &sn_path)
                {
                    frame.entries.push(Entry::Ready(node));
                }
                return Ok(Visit::Nothing);
            }
            known_missing = true;
        }
        let mut resume = None;
        let candidates: Vec<Node> = frame.checkpoint_nodes(&name).cloned().collect();
        for cp in candidates.iter().filter(|n| n.is_file()) {
            if !self.all_blobs_present(cp) {
                continue;
            }
            if !self.change.file_changed(meta, cp) {
                let reused = self.reuse(&path, name, meta, cp, previous.as_ref(), false, &sn_path);
                if let Some(node) = reused {
                    frame.entries.push(Entry::Ready(node));
                }
                return Ok(Visit::Nothing);
            }
            if resume.is_none() {
                resume = self.resumable(meta, cp);
            }
        }
        if known_missing && resume.is_none() {
            self.fail(
                &path,
                Error::InvalidPath {
                    path: path.clone(),
                    reason: "parts of it are not in the repository index; storing the file again"
                        .into(),
                },
            );
        }
        let job = FileJob {
            path,
            source: Source::Path { resume },
            // Filled in by the reader that opens the file.
            node: Node::new(name, NodeType::File),
        };
        Ok(Visit::File(job, previous, sn_path))
    }

    /// The node of an unchanged file with the content of `stored` (from the
    /// parent, `from_parent`, or a checkpoint), counted against `previous`.
    #[allow(clippy::too_many_arguments)]
    fn reuse(
        &mut self,
        path: &Path,
        name: OsString,
        meta: &Metadata,
        stored: &Node,
        previous: Option<&Node>,
        from_parent: bool,
        sn_path: &str,
    ) -> Option<Node> {
        let mut node = match self.nodes.node(path, name, meta) {
            Ok(node) => node,
            Err(e) => {
                self.fail(path, e);
                return None;
            }
        };
        node.content = stored.content.clone();
        // As restic: an unchanged file counts as the parent's node.
        let counted = if from_parent { stored } else { &node };
        if let Some(change) = self.counts.complete(previous, counted) {
            self.reporter.item(sn_path, change, &node);
        }
        self.progress.file_done();
        self.progress.add_bytes_done(node.size);
        Some(node)
    }

    /// If the checkpoint node `cp` holds the first part of the file with
    /// metadata `meta` (same file, unchanged since, only longer), where to
    /// go on reading.
    fn resumable(&self, meta: &Metadata, cp: &Node) -> Option<Resume> {
        use std::os::unix::fs::MetadataExt;
        if cp.size == 0 || cp.size >= meta.size() || self.change.metadata_changed(meta, cp) {
            return None;
        }
        let mut offset = 0u64;
        for id in cp.content() {
            let entry = self.repo.lookup(&BlobHandle::new(BlobType::Data, *id))?;
            offset += u64::from(entry.plaintext_len());
        }
        (offset == cp.size).then(|| Resume {
            content: cp.content().to_vec(),
            offset,
        })
    }

    /// The frame for a directory to back up completely; `None` (reported)
    /// if it cannot be read.
    fn dir_frame(
        &mut self,
        name: OsString,
        path: PathBuf,
        meta: &Metadata,
        previous: Option<Node>,
        checkpoints: &[Node],
        sn_path: String,
    ) -> Option<Frame> {
        let node = match self.nodes.node(&path, name, meta) {
            Ok(node) => node,
            Err(e) => {
                self.fail(&path, e);
                return None;
            }
        };
        let names = match read_dir_names(&path) {
            Ok(names) => names,
            Err(e) => {
                self.fail(&path, e);
                return None;
            }
        };
        let previous_tree = self.load_previous(previous.as_ref(), &path);
        let children: Vec<Child> = names
            .into_iter()
            .map(|name| Child::Item {
                path: path.join(&name),
                name,
            })
            .collect();
        Some(Frame {
            sn_path,
            node: Some(node),
            previous_node: previous,
            previous: previous_tree,
            checkpoints: self.load_checkpoint_dirs(checkpoints),
            children: children.into_iter(),
            entries: Vec::new(),
        })
    }

    /// Save a finished directory's tree; returns its node (none for the
    /// root) and tree id. Every file entry must be settled.
    fn finish(&mut self, frame: Frame) -> Result<(Option<Node>, TreeId)> {
        let mut tree = Tree::new();
        for entry in frame.entries {
            let node = match entry {
                Entry::Ready(node) => node,
                Entry::File(file) => match self.file_done(file)? {
                    Some(node) => node,
                    None => continue,
                },
            };
            tree.insert(node)?;
        }
        // A listing that encodes exactly as the parent's is that very blob,
        // already in the repository (it was just loaded from it): reuse its
        // id instead of encoding, hashing and looking it up again.
        let unchanged = frame
            .previous
            .as_ref()
            .filter(|(_, p)| p.encodes_like(&tree))
            .map(|(id, _)| *id);
        let Some(mut node) = frame.node else {
            if tree.nodes.is_empty() {
                return Err(Error::InvalidArgument("snapshot is empty".into()));
            }
            return Ok((None, self.save_tree(unchanged, &tree)?));
        };
        let id = self.save_tree(unchanged, &tree)?;
        node.subtree = Some(id);
        if let Some(change) = self.counts.complete(frame.previous_node.as_ref(), &node) {
            self.reporter
                .item(&format!("{}/", frame.sn_path), change, &node);
        }
        self.progress.dir_done();
        Ok((Some(node), id))
    }

    /// The id of `tree`: `unchanged` if set (the parent's identical
    /// listing), else that of the tree blob saved now.
    fn save_tree(&self, unchanged: Option<TreeId>, tree: &Tree) -> Result<TreeId> {
        match unchanged {
            Some(id) => Ok(id),
            None => self.blobs.save_tree(tree),
        }
    }

    /// Count and report a file the pipeline is done with; its node, or
    /// `None` if it is left out.
    fn file_done(&mut self, file: FileEntry) -> Result<Option<Node>> {
        let FileEntry {
            pending,
            previous,
            path,
            sn_path,
            resumed,
        } = file;
        match pending.outcome()? {
            FileOutcome::Saved(saved) => {
                self.counts.bytes_read += saved.bytes_read;
                self.counts.files_resumed += u64::from(resumed);
                if saved.changed_during_backup {
                    self.counts.changed_during_backup += 1;
                    self.progress.changed_during_backup();
                    self.reporter.changed_during_backup(&path);
                }
                if let Some(change) = self.counts.complete(previous.as_ref(), &saved.node) {
                    self.reporter.item(&sn_path, change, &saved.node);
                }
                Ok(Some(saved.node))
            }
            FileOutcome::Unreadable(e) => {
                self.fail(&path, e);
                Ok(None)
            }
            // Only after an interrupt, which ends the walk before this.
            FileOutcome::Cancelled => Err(Error::Interrupted),
        }
    }

    /// The checkpoints' listings of a directory, from its checkpoint nodes.
    fn load_checkpoint_dirs(&mut self, nodes: &[Node]) -> Vec<Tree> {
        nodes
            .iter()
            .filter(|n| n.is_dir())
            .filter_map(|n| n.subtree)
            .filter_map(|id| self.load_checkpoint_tree(&id))
            .collect()
    }

    /// A checkpoint's tree; a checkpoint that cannot be read is only a
    /// warning (it is an optimisation).
    fn load_checkpoint_tree(&mut self, id: &TreeId) -> Option<Tree> {
        match self.repo.load_tree(id) {
            Ok(tree) => Some(tree),
            Err(e) => {
                self.reporter
                    .warning(&format!("checkpoint tree {id} could not be loaded: {e}"));
                None
            }
        }
    }

    /// The parent's listing of a directory and its tree id, if the parent
    /// has one there and it could be loaded.
    fn load_previous(&mut self, previous: Option<&Node>, path: &Path) -> Option<(TreeId, Tree)> {
        let subtree = previous.filter(|n| n.is_dir())?.subtree?;
        Some((subtree, self.load_tree(&subtree, path)?))
    }

    fn load_tree(&mut self, id: &TreeId, path: &Path) -> Option<Tree> {
        match self.repo.load_tree(id) {
            Ok(tree) => Some(tree),
            Err(e) => {
                let reason = if self
                    .repo
                    .has_blob(&BlobHandle::new(BlobType::Tree, (*id).into()))
                {
                    format!("tree {id} could not be loaded; the repository could be damaged: {e}")
                } else {
                    format!("tree {id} is not known; the repository could be damaged, run `rebuild-index` to try to repair it")
                };
                self.fail(path, Error::corrupt("parent snapshot", reason));
                None
            }
        }
    }

    fn all_blobs_present(&self, node: &Node) -> bool {
        node.content()
            .iter()
            .all(|id| self.repo.has_blob(&BlobHandle::new(BlobType::Data, *id)))
    }

    /// Report an item that could not be backed up.
    fn fail(&mut self, path: &Path, error: Error) {
        self.counts.errors += 1;
        self.progress.error();
        self.reporter.error(path, &error);
    }
}

/// The children of a target tree node, in name order.
fn children_of(nodes: BTreeMap<OsString, TargetTree>) -> Result<Vec<Child>> {
    nodes
        .into_iter()
        .map(|(name, node)| match (node.path, node.info_path) {
            (Some(path), _) => Ok(Child::Item { name, path }),
            (None, Some(info_path)) => Ok(Child::Intermediate {
                name,
                info_path,
                children: children_of(node.nodes)?,
            }),
            (None, None) => Err(Error::InvalidPath {
                path: PathBuf::from(&name),
                reason: "no file system path for this part of the snapshot".into(),
            }),
        })
        .collect()
}

/// The names in a directory, in byte order.
fn read_dir_names(path: &Path) -> Result<Vec<OsString>> {
    let what = || format!("open {}", path.display());
    let mut names = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| Error::io(what(), e))? {
        let entry = entry.map_err(|e| Error::io(format!("readdir {}", path.display()), e))?;
        names.push(entry.file_name());
    }
    names.sort();
    Ok(names)
}

fn child_sn_path(parent: &str, name: &std::ffi::OsStr) -> String {
    let name = name.to_string_lossy();
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}
