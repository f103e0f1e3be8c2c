//! Building a snapshot's trees from the file system, depth first.
//!
//! The walk follows the [`TargetTree`]: intermediate directories take their
//! metadata from `stat` (following symlinks, as restic does) and list only
//! the targets below them; leaves are `lstat`ed and, if directories, read
//! completely. Each directory is a [`Frame`] on an explicit stack, so deep
//! trees cannot overflow the call stack. A frame collects its entries, in
//! name order: finished nodes, and files handed to the [`FileSaver`] whose
//! results are only waited for when the directory is complete. When all
//! entries are in, the directory's tree blob is saved and its node, with
//! the subtree id, joins the parent frame.
//!
//! Error policy (restic's): a problem with one item (cannot `lstat`, open,
//! read or list it) is reported, the item is left out, and the backup goes
//! on; it then ends incomplete. Problems with the repository, and with the
//! intermediate directories above the targets, abort the backup.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::node::NodeFactory;
use super::parent::ChangeDetection;
use super::saver::{BlobSaver, FileJob, FileOutcome, FileSaver, PendingFile};
use super::select::Selector;
use super::targets::TargetTree;
use super::{Change, Reporter};
use crate::blob::{BlobHandle, BlobType};
use crate::error::{Error, Result};
use crate::format::tree::{Node, Tree};
use crate::id::TreeId;
use crate::repository::Repository;

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

/// A file handed to the file saver.
struct FileEntry {
    pending: PendingFile,
    /// The parent snapshot's node at the same place.
    previous: Option<Node>,
    path: PathBuf,
    sn_path: String,
}

/// A directory being built.
struct Frame {
    /// Its path in the snapshot (`/` for the root).
    sn_path: String,
    /// Its own node (none for the root).
    node: Option<Node>,
    /// The parent snapshot's node at the same place.
    previous_node: Option<Node>,
    /// The parent snapshot's listing of this directory.
    previous: Option<Tree>,
    children: std::vec::IntoIter<Child>,
    entries: Vec<Entry>,
}

/// The tree-building stage of a backup.
pub struct Builder<'a> {
    pub repo: &'a Repository,
    pub blobs: &'a BlobSaver<'a>,
    pub files: &'a FileSaver<'a>,
    pub nodes: &'a NodeFactory,
    pub select: &'a Selector,
    pub change: ChangeDetection,
    pub reporter: &'a dyn Reporter,
    pub counts: Counts,
}

impl Builder<'_> {
    /// Back up everything `targets` describes; returns the root tree.
    /// `parent` is the parent snapshot's root tree.
    pub fn build(&mut self, targets: TargetTree, parent: Option<TreeId>) -> Result<TreeId> {
        let previous = parent.and_then(|id| self.load_tree(&id, Path::new("/")));
        let root = Frame {
            sn_path: "/".to_string(),
            node: None,
            previous_node: None,
            previous,
            children: children_of(targets.nodes)?.into_iter(),
            entries: Vec::new(),
        };
        let mut stack = vec![root];
        while let Some(top) = stack.last_mut() {
            if let Some(child) = top.children.next() {
                if let Some(frame) = self.visit(top, child)? {
                    stack.push(frame);
                }
                continue;
            }
            let Some(done) = stack.pop() else { break };
            let (node, tree_id) = self.finish(done)?;
            match (stack.last_mut(), node) {
                (Some(parent), Some(node)) => parent.entries.push(Entry::Ready(node)),
                _ => return Ok(tree_id),
            }
        }
        Err(Error::InvalidArgument("snapshot is empty".into()))
    }

    fn visit(&mut self, parent: &mut Frame, child: Child) -> Result<Option<Frame>> {
        match child {
            Child::Item { name, path } => self.visit_item(parent, name, path),
            Child::Intermediate {
                name,
                info_path,
                children,
            } => self.visit_intermediate(parent, name, info_path, children),
        }
    }

    fn visit_item(
        &mut self,
        parent: &mut Frame,
        name: OsString,
        path: PathBuf,
    ) -> Result<Option<Frame>> {
        let reporter = self.reporter;
        if self
            .select
            .excluded_by_name(&path, &|m: String| reporter.warning(&m))
        {
            return Ok(None);
        }
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) => {
                self.fail(&path, Error::io(format!("lstat {}", path.display()), e));
                return Ok(None);
            }
        };
        if self.select.excluded_by_info(&path, &meta) {
            return Ok(None);
        }
        let previous = parent
            .previous
            .as_ref()
            .and_then(|t| t.find(&name))
            .cloned();
        let sn_path = child_sn_path(&parent.sn_path, &name);
        let file_type = meta.file_type();
        if file_type.is_file() {
            if let Some(entry) = self.file_entry(name, path, &meta, previous, sn_path)? {
                parent.entries.push(entry);
            }
            Ok(None)
        } else if file_type.is_dir() {
            Ok(self.dir_frame(name, path, &meta, previous, sn_path))
        } else if file_type.is_socket() {
            // restic leaves sockets out.
            Ok(None)
        } else {
            match self.nodes.node(&path, name, &meta) {
                Ok(node) => parent.entries.push(Entry::Ready(node)),
                Err(e) => self.fail(&path, e),
            }
            Ok(None)
        }
    }

    fn visit_intermediate(
        &mut self,
        parent: &mut Frame,
        name: OsString,
        info_path: PathBuf,
        children: Vec<Child>,
    ) -> Result<Option<Frame>> {
        let meta = std::fs::metadata(&info_path)
            .map_err(|e| Error::io(format!("stat {}", info_path.display()), e))?;
        if !meta.is_dir() {
            return Err(Error::InvalidPath {
                path: info_path,
                reason: "path is not a directory".into(),
            });
        }
        let previous = parent
            .previous
            .as_ref()
            .and_then(|t| t.find(&name))
            .cloned();
        let sn_path = child_sn_path(&parent.sn_path, &name);
        let node = self.nodes.node(&info_path, name, &meta)?;
        let previous_tree = self.load_previous(previous.as_ref(), &info_path);
        Ok(Some(Frame {
            sn_path,
            node: Some(node),
            previous_node: previous,
            previous: previous_tree,
            children: children.into_iter(),
            entries: Vec::new(),
        }))
    }

    /// The entry for a regular file: reused from the parent if unchanged,
    /// else opened and handed to the file saver. `None` if it failed.
    fn file_entry(
        &mut self,
        name: OsString,
        path: PathBuf,
        meta: &Metadata,
        previous: Option<Node>,
        sn_path: String,
    ) -> Result<Option<Entry>> {
        if let Some(prev) = previous
            .as_ref()
            .filter(|p| !self.change.file_changed(meta, p))
        {
            if self.all_blobs_present(prev) {
                let mut node = match self.nodes.node(&path, name, meta) {
                    Ok(node) => node,
                    Err(e) => {
                        self.fail(&path, e);
                        return Ok(None);
                    }
                };
                node.content = prev.content.clone();
                // As restic: the parent's node stands for the file.
                if let Some(change) = self.counts.complete(Some(prev), prev) {
                    self.reporter.item(&sn_path, change, &node);
                }
                return Ok(Some(Entry::Ready(node)));
            }
            self.fail(
                &path,
                Error::InvalidPath {
                    path: path.clone(),
                    reason: "parts of it are not in the repository index; storing the file again"
                        .into(),
                },
            );
        }
        // O_NOFOLLOW: the file may have been replaced by a symlink since
        // lstat; O_NONBLOCK: or by a fifo, which must not hang the backup.
        let file = match std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
        {
            Ok(file) => file,
            Err(e) => {
                self.fail(&path, Error::io(format!("open {}", path.display()), e));
                return Ok(None);
            }
        };
        let meta = match file.metadata() {
            Ok(meta) if meta.is_file() => meta,
            Ok(_) => {
                let reason = "file changed type, refusing to archive".into();
                self.fail(
                    &path,
                    Error::InvalidPath {
                        path: path.clone(),
                        reason,
                    },
                );
                return Ok(None);
            }
            Err(e) => {
                self.fail(&path, Error::io(format!("fstat {}", path.display()), e));
                return Ok(None);
            }
        };
        let node = match self.nodes.node(&path, name, &meta) {
            Ok(node) => node,
            Err(e) => {
                self.fail(&path, e);
                return Ok(None);
            }
        };
        let pending = self.files.submit(FileJob {
            path: path.clone(),
            reader: Box::new(file),
            node,
        });
        Ok(Some(Entry::File(FileEntry {
            pending,
            previous,
            path,
            sn_path,
        })))
    }

    /// The frame for a directory to back up completely; `None` (reported)
    /// if it cannot be read.
    fn dir_frame(
        &mut self,
        name: OsString,
        path: PathBuf,
        meta: &Metadata,
        previous: Option<Node>,
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
            children: children.into_iter(),
            entries: Vec::new(),
        })
    }

    /// Save a finished directory's tree; returns its node (none for the
    /// root) and tree id.
    fn finish(&mut self, frame: Frame) -> Result<(Option<Node>, TreeId)> {
        let mut tree = Tree::new();
        for entry in frame.entries {
            let node = match entry {
                Entry::Ready(node) => node,
                Entry::File(file) => {
                    let FileEntry {
                        pending,
                        previous,
                        path,
                        sn_path,
                    } = file;
                    match pending.wait()? {
                        FileOutcome::Saved(saved) => {
                            self.counts.bytes_read += saved.bytes_read;
                            if let Some(change) =
                                self.counts.complete(previous.as_ref(), &saved.node)
                            {
                                self.reporter.item(&sn_path, change, &saved.node);
                            }
                            saved.node
                        }
                        FileOutcome::Unreadable(e) => {
                            self.fail(&path, e);
                            continue;
                        }
                    }
                }
            };
            tree.insert(node)?;
        }
        let Some(mut node) = frame.node else {
            if tree.nodes.is_empty() {
                return Err(Error::InvalidArgument("snapshot is empty".into()));
            }
            return Ok((None, self.blobs.save_tree(&tree)?));
        };
        let id = self.blobs.save_tree(&tree)?;
        node.subtree = Some(id);
        if let Some(change) = self.counts.complete(frame.previous_node.as_ref(), &node) {
            self.reporter
                .item(&format!("{}/", frame.sn_path), change, &node);
        }
        Ok((Some(node), id))
    }

    /// The parent's listing of a directory, if the parent has one there.
    fn load_previous(&mut self, previous: Option<&Node>, path: &Path) -> Option<Tree> {
        let subtree = previous.filter(|n| n.is_dir())?.subtree?;
        self.load_tree(&subtree, path)
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
