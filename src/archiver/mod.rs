//! The backup engine: files and directories in, a snapshot out, in the
//! shape restic 0.14 gives it, so that restic and cairn deduplicate against
//! each other's data and trees.
//!
//! A backup runs in stages, each in its own module:
//! 1. targets ([`targets`], [`path`]): the command-line paths are checked
//!    (missing ones are skipped with a warning), cleaned and laid out from
//!    the file system root down, exactly as restic lays them out;
//! 2. parent ([`parent`]): the snapshot to compare with, so unchanged files
//!    are not read again;
//! 3. tree building ([`tree`]): a depth-first walk that makes nodes
//!    ([`node`]), skips excluded items ([`select`]) and saves directory
//!    trees;
//! 4. file saving ([`saver`]): chunking file contents into data blobs; the
//!    stage a parallel pipeline will replace;
//! 5. flush and snapshot: packs and index files are written, then the
//!    snapshot file, last, so a snapshot never refers to missing data.
//!
//! The caller opens the repository, takes a lock and loads the index
//! before calling [`Archiver::backup`]; progress and problems reach it
//! through a [`Reporter`]. A backup in which some items could not be read
//! still saves its snapshot; [`BackupSummary::is_complete`] tells the two
//! cases apart (restic's exit code 3).

pub mod node;
pub mod parent;
pub mod path;
pub mod saver;
pub mod select;
pub mod targets;
pub mod tree;

#[cfg(test)]
mod tests;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use parent::{ChangeDetection, ParentChoice};
pub use select::{parse_size, ExcludeOptions};

use crate::error::{Error, Result};
use crate::format::snapshot::{Snapshot, SnapshotSummary};
use crate::format::time::GoTime;
use crate::format::tree::{go_mode_from_unix, Node, NodeType, Tree};
use crate::id::{SnapshotId, TreeId};
use crate::repository::{hostname, Repository};

use saver::{BlobSaver, FileJob, FileOutcome, FileSaver};
use tree::{Builder, Counts};

/// What cairn writes as a snapshot's `program_version`.
pub const PROGRAM_VERSION: &str = concat!("cairn ", env!("CARGO_PKG_VERSION"));

/// How an item compares to the parent snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Not in the parent.
    New,
    /// In the parent, but different (metadata or content).
    Changed,
    /// Exactly as in the parent.
    Unmodified,
}

/// What a backup tells its caller while it runs. Every method has an
/// empty default. Implementations must be `Sync`: a parallel file saver
/// will call them from several threads.
pub trait Reporter: Sync {
    /// The parent snapshot was chosen (`None`: every file will be read).
    fn parent(&self, _parent: Option<&SnapshotId>) {}
    /// An item could not be backed up (or not completely) and is left out;
    /// the backup goes on and will be incomplete.
    fn error(&self, _path: &Path, _error: &Error) {}
    /// A harmless problem: a target that does not exist, a malformed
    /// exclusion tag file, a snapshot that could not be read.
    fn warning(&self, _message: &str) {}
    /// A file or directory was saved (`snapshot_path` of directories ends
    /// in `/`).
    fn item(&self, _snapshot_path: &str, _change: Change, _node: &Node) {}
}

/// A reporter that ignores everything.
pub struct NoReporter;

impl Reporter for NoReporter {}

/// Options of a backup (restic's `backup` flags).
#[derive(Clone, Debug, Default)]
pub struct BackupOptions {
    /// Host name recorded in the snapshot; default: this machine's.
    pub host: Option<String>,
    /// Tags; empty strings are dropped.
    pub tags: Vec<String>,
    /// The snapshot's time; default: now.
    pub time: Option<GoTime>,
    pub parent: ParentChoice,
    pub exclude: ExcludeOptions,
    /// The exclude patterns to record in the snapshot (restic records the
    /// `--exclude` values only).
    pub recorded_excludes: Vec<String>,
    pub change: ChangeDetection,
    /// Record real access times (`--with-atime`).
    pub with_atime: bool,
    /// Read and chunk everything, but write nothing.
    pub dry_run: bool,
}

/// The result of a backup.
#[derive(Clone, Debug)]
pub struct BackupSummary {
    /// The saved snapshot's id (`None` in a dry run).
    pub snapshot_id: Option<SnapshotId>,
    pub snapshot: Snapshot,
    /// The parent the backup compared against.
    pub parent: Option<SnapshotId>,
    /// Counts as restic records them in the snapshot.
    pub stats: SnapshotSummary,
    /// Bytes read from files (unchanged files are not read).
    pub bytes_read: u64,
    /// Items that could not be backed up.
    pub errors: u64,
    pub duration: Duration,
}

impl BackupSummary {
    /// False if some items could not be read (restic's exit code 3).
    pub fn is_complete(&self) -> bool {
        self.errors == 0
    }
}

/// Backs up files into a repository.
pub struct Archiver<'a> {
    repo: &'a Repository,
    opts: BackupOptions,
}

impl<'a> Archiver<'a> {
    /// An archiver for `repo`, whose index must be loaded.
    pub fn new(repo: &'a Repository, opts: BackupOptions) -> Self {
        Archiver { repo, opts }
    }

    /// Back up `paths` (files or directories, relative to the working
    /// directory or absolute) and save a snapshot of them.
    pub fn backup(&self, paths: &[PathBuf], reporter: &dyn Reporter) -> Result<BackupSummary> {
        let start = GoTime::now();
        let started = Instant::now();
        let time = self.opts.time.unwrap_or(start);
        let targets = existing_targets(paths, reporter)?;
        let cwd = std::env::current_dir().map_err(|e| Error::io("current directory", e))?;
        let absolute: Vec<PathBuf> = targets.iter().map(|t| path::absolute(t, &cwd)).collect();
        let snapshot_paths: Vec<String> = absolute.iter().map(|p| path::lossy(p)).collect();
        let host = self.opts.host.clone().unwrap_or_else(hostname);

        let parent = self.choose_parent(&host, &snapshot_paths, &time, reporter)?;
        reporter.parent(parent.as_ref().map(|(id, _)| id));

        let selector = select::Selector::new(&self.opts.exclude, &absolute)?;
        let resolved = targets::resolve_relative_targets(&targets, &cwd)?;
        let target_tree = targets::TargetTree::new(&resolved, &cwd)?;

        let blobs = BlobSaver::new(self.repo, self.opts.dry_run);
        let files = FileSaver::new(&blobs, self.repo.chunker());
        let nodes = node::NodeFactory::new(self.opts.with_atime);
        let mut builder = Builder {
            repo: self.repo,
            blobs: &blobs,
            files: &files,
            nodes: &nodes,
            select: &selector,
            change: self.opts.change,
            reporter,
            counts: Counts::default(),
        };
        let root = builder.build(target_tree, parent.as_ref().map(|(_, sn)| sn.tree))?;
        let counts = builder.counts;
        let parent = parent.map(|(id, _)| id);
        self.finish(Finish {
            root,
            paths: snapshot_paths,
            host,
            time,
            parent,
            counts,
            blobs: &blobs,
            start,
            started,
        })
    }

    /// Back up the content of `reader` as the file `filename` (restic's
    /// `--stdin`/`--stdin-filename`). Directories in `filename` become
    /// directories of the snapshot. There is no parent.
    pub fn backup_reader(
        &self,
        reader: Box<dyn Read + Send>,
        filename: &str,
        reporter: &dyn Reporter,
    ) -> Result<BackupSummary> {
        let start = GoTime::now();
        let started = Instant::now();
        let time = self.opts.time.unwrap_or(start);
        let comps = path::components(filename.as_bytes());
        let Some((file_name, dirs)) = comps.split_last() else {
            return Err(Error::InvalidArgument(format!(
                "invalid --stdin-filename {filename:?}"
            )));
        };
        let full = format!("/{}", String::from_utf8_lossy(&comps.join(&b'/')));
        let host = self.opts.host.clone().unwrap_or_else(hostname);
        reporter.parent(None);

        let blobs = BlobSaver::new(self.repo, self.opts.dry_run);
        let files = FileSaver::new(&blobs, self.repo.chunker());
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        // restic's fs.Reader: no inode, device or owner names; ctime is the
        // mtime, and atime too unless --with-atime (then Go's zero time).
        let fake = |name: &[u8], node_type: NodeType, st_mode: u32, mtime: GoTime| {
            let mut node = Node::new(
                std::ffi::OsString::from(String::from_utf8_lossy(name).into_owned()),
                node_type,
            );
            node.mode = go_mode_from_unix(st_mode);
            node.mtime = mtime;
            node.ctime = mtime;
            node.atime = if self.opts.with_atime {
                GoTime::zero()
            } else {
                mtime
            };
            node.uid = uid;
            node.gid = gid;
            node
        };
        let job = FileJob {
            path: PathBuf::from(&full),
            reader,
            node: fake(file_name, NodeType::File, 0o100_644, time),
        };
        let saved = match files.submit(job).wait()? {
            FileOutcome::Saved(saved) => saved,
            FileOutcome::Unreadable(e) => return Err(e),
        };
        let mut counts = Counts {
            bytes_read: saved.bytes_read,
            ..Counts::default()
        };
        if let Some(change) = counts.complete(None, &saved.node) {
            reporter.item(&full, change, &saved.node);
        }
        let mut node = saved.node;
        for dir in dirs.iter().rev() {
            let mut tree = Tree::new();
            tree.insert(node)?;
            let mut dir_node = fake(dir, NodeType::Dir, 0o040_755, GoTime::now());
            dir_node.subtree = Some(blobs.save_tree(&tree)?);
            counts.complete(None, &dir_node);
            node = dir_node;
        }
        let mut tree = Tree::new();
        tree.insert(node)?;
        let root = blobs.save_tree(&tree)?;
        self.finish(Finish {
            root,
            paths: vec![full],
            host,
            time,
            parent: None,
            counts,
            blobs: &blobs,
            start,
            started,
        })
    }

    fn choose_parent(
        &self,
        host: &str,
        paths: &[String],
        time: &GoTime,
        reporter: &dyn Reporter,
    ) -> Result<Option<(SnapshotId, Snapshot)>> {
        match &self.opts.parent {
            ParentChoice::None => Ok(None),
            ParentChoice::Snapshot(id) => Ok(Some((*id, self.repo.load_snapshot(id)?))),
            ParentChoice::Latest => {
                parent::find_latest(self.repo, host, paths, time, &mut |id, e| {
                    reporter.warning(&format!("unable to load snapshot {}: {e}", id.short()))
                })
            }
        }
    }

    /// Write the packs and index, then the snapshot.
    fn finish(&self, f: Finish<'_>) -> Result<BackupSummary> {
        if !self.opts.dry_run {
            self.repo.flush()?;
        }
        let added = f.blobs.stats();
        let c = f.counts;
        let stats = SnapshotSummary {
            backup_start: f.start,
            backup_end: GoTime::now(),
            files_new: c.files_new,
            files_changed: c.files_changed,
            files_unmodified: c.files_unmodified,
            dirs_new: c.dirs_new,
            dirs_changed: c.dirs_changed,
            dirs_unmodified: c.dirs_unmodified,
            data_blobs: i64::try_from(added.data_blobs).unwrap_or(i64::MAX),
            tree_blobs: i64::try_from(added.tree_blobs).unwrap_or(i64::MAX),
            data_added: added.data_size + added.tree_size,
            data_added_packed: f.blobs.stored_size(),
            total_files_processed: c.files_new + c.files_changed + c.files_unmodified,
            total_bytes_processed: c.bytes_processed,
        };
        let (username, uid, gid) = current_user();
        let snapshot = Snapshot {
            time: f.time,
            parent: f.parent,
            tree: f.root,
            paths: f.paths,
            hostname: f.host,
            username,
            uid,
            gid,
            excludes: self.opts.recorded_excludes.clone(),
            tags: self
                .opts
                .tags
                .iter()
                .filter(|t| !t.is_empty())
                .cloned()
                .collect(),
            original: None,
            program_version: PROGRAM_VERSION.to_string(),
            summary: Some(stats.clone()),
        };
        let snapshot_id = if self.opts.dry_run {
            None
        } else {
            Some(self.repo.save_snapshot(&snapshot)?)
        };
        Ok(BackupSummary {
            snapshot_id,
            snapshot,
            parent: f.parent,
            stats,
            bytes_read: c.bytes_read,
            errors: c.errors,
            duration: f.started.elapsed(),
        })
    }
}

/// The targets that exist, in order; each missing one is reported as a
/// warning and skipped (restic's `filterExisting`). An error if none is
/// left. Other problems with a target are left for the backup to report.
pub fn existing_targets(paths: &[PathBuf], reporter: &dyn Reporter) -> Result<Vec<PathBuf>> {
    if paths.is_empty() {
        return Err(Error::InvalidArgument(
            "nothing to backup, please specify target files/dirs".into(),
        ));
    }
    let mut targets = Vec::with_capacity(paths.len());
    for p in paths {
        match std::fs::symlink_metadata(p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                reporter.warning(&format!("{} does not exist, skipping", p.display()));
            }
            _ => targets.push(p.clone()),
        }
    }
    if targets.is_empty() {
        return Err(Error::InvalidArgument(
            "all target directories/files do not exist".into(),
        ));
    }
    Ok(targets)
}

/// What [`Archiver::finish`] needs.
struct Finish<'a> {
    root: TreeId,
    paths: Vec<String>,
    host: String,
    time: GoTime,
    parent: Option<SnapshotId>,
    counts: Counts,
    blobs: &'a BlobSaver<'a>,
    start: GoTime,
    started: Instant,
}

/// The user running the backup: name, uid and primary gid, as restic's
/// `user.Current()` gives them (all empty if the lookup fails).
fn current_user() -> (String, u32, u32) {
    let uid = nix::unistd::getuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => (user.name, uid.as_raw(), user.gid.as_raw()),
        _ => (String::new(), 0, 0),
    }
}
