//! The backup engine: files and directories in, a snapshot out, in the
//! shape restic 0.14 gives it, so that restic and cairn deduplicate against
//! each other's data and trees.
//!
//! A backup runs in stages, each in its own module:
//! 1. targets ([`targets`], [`path`]): the command-line paths are checked
//!    (missing ones are skipped with a warning), cleaned and laid out from
//!    the file system root down, exactly as restic lays them out;
//! 2. parents ([`parent`]): the snapshot to compare with, so unchanged
//!    files are not read again, and the checkpoints of interrupted runs
//!    ([`checkpoint`]), so finished work is not done again;
//! 3. scanning ([`scan`]), in its own thread: totals for the progress;
//! 4. tree building ([`tree`]): a depth-first walk that makes nodes
//!    ([`node`]), skips excluded items ([`select`]), hands files to the
//!    pipeline, saves directory trees and, periodically or when
//!    interrupted, checkpoints;
//! 5. file saving ([`pipeline`]): reader threads chunk files, saver threads
//!    hash, deduplicate, compress, encrypt and pack the chunks
//!    ([`saver`]);
//! 6. flush and snapshot: packs and index files are written, then the
//!    snapshot file, last, so a snapshot never refers to missing data;
//!    then the checkpoints it supersedes are removed.
//!
//! The caller opens the repository, takes a lock and loads the index
//! before calling [`Archiver::backup`]; problems reach it through a
//! [`Reporter`], live counters through [`Archiver::progress`]. A backup in
//! which some items could not be read still saves its snapshot;
//! [`BackupSummary::is_complete`] tells the two cases apart (restic's exit
//! code 3). An interrupted backup (the [`BackupOptions::interrupt`] flag)
//! saves a checkpoint and returns [`Error::Interrupted`].

mod budget;
pub mod checkpoint;
pub mod node;
pub mod parent;
pub mod path;
pub mod pipeline;
pub mod progress;
pub mod saver;
pub mod scan;
pub mod select;
pub mod targets;
pub mod tree;

#[cfg(test)]
mod resume_tests;
#[cfg(test)]
mod tests;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use checkpoint::{is_checkpoint, CHECKPOINT_TAG};
pub use parent::{ChangeDetection, ParentChoice};
pub use progress::{Progress, ProgressSnapshot};
pub use select::{parse_size, ExcludeOptions};

use crate::error::{Error, Result};
use crate::format::snapshot::{Snapshot, SnapshotSummary};
use crate::format::time::GoTime;
use crate::format::tree::{go_mode_from_unix, Node, NodeType, Tree};
use crate::id::{SnapshotId, TreeId};
use crate::repository::{hostname, Repository};

use checkpoint::Checkpointer;
use pipeline::{FileJob, FileOutcome, FileSaver, PipelineConfig, Shared, Source};
use saver::BlobSaver;
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
/// empty default. Only the thread that called [`Archiver::backup`] calls
/// them; `Sync` keeps the door open for more.
pub trait Reporter: Sync {
    /// The parent snapshot was chosen (`None`: every file will be read),
    /// and the checkpoints to resume from.
    fn parent(&self, _parent: Option<&SnapshotId>) {}
    /// Checkpoints of interrupted runs will be resumed from.
    fn resuming(&self, _checkpoints: &[SnapshotId]) {}
    /// An item could not be backed up (or not completely) and is left out;
    /// the backup goes on and will be incomplete.
    fn error(&self, _path: &Path, _error: &Error) {}
    /// A harmless problem: a target that does not exist, a malformed
    /// exclusion tag file, a snapshot that could not be read.
    fn warning(&self, _message: &str) {}
    /// A file or directory was saved (`snapshot_path` of directories ends
    /// in `/`).
    fn item(&self, _snapshot_path: &str, _change: Change, _node: &Node) {}
    /// A file kept changing while it was read; it is stored as last read.
    fn changed_during_backup(&self, _path: &Path) {}
    /// A checkpoint snapshot was saved.
    fn checkpoint(&self, _id: &SnapshotId) {}
}

/// A reporter that ignores everything.
pub struct NoReporter;

impl Reporter for NoReporter {}

/// Options of a backup (restic's `backup` flags, and cairn's own).
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
    /// Files read at once (`--read-concurrency`; 0: 2).
    pub read_concurrency: usize,
    /// Threads saving chunks (0: one per CPU).
    pub save_concurrency: usize,
    /// Save a checkpoint this often (`None`: only when interrupted).
    pub checkpoint_interval: Option<Duration>,
    /// Read a file that changed while it was read again, this many times.
    pub changed_retries: u32,
    /// Save no snapshot if nothing changed since the parent
    /// (`--skip-if-unchanged`).
    pub skip_if_unchanged: bool,
    /// Do not count the totals ahead of the backup (`--no-scan`).
    pub no_scan: bool,
    /// Set (by a signal handler) to interrupt the backup.
    pub interrupt: Option<Arc<AtomicBool>>,
}

/// The result of a backup.
#[derive(Clone, Debug)]
pub struct BackupSummary {
    /// The saved snapshot's id (`None` in a dry run, or when skipped as
    /// unchanged).
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
    /// Files that kept changing while they were read.
    pub changed_during_backup: u64,
    /// Files continued from a checkpoint's stored prefix.
    pub files_resumed: u64,
    /// Checkpoints resumed from, removed now that the backup is complete.
    pub checkpoints_removed: Vec<SnapshotId>,
    /// Nothing changed and `skip_if_unchanged` was set: no snapshot saved.
    pub skipped: bool,
    pub dry_run: bool,
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
    progress: Arc<Progress>,
}

impl<'a> Archiver<'a> {
    /// An archiver for `repo`, whose index must be loaded.
    pub fn new(repo: &'a Repository, opts: BackupOptions) -> Self {
        Archiver {
            repo,
            opts,
            progress: Arc::new(Progress::new()),
        }
    }

    /// The live counters of the backup, to display while it runs.
    pub fn progress(&self) -> Arc<Progress> {
        self.progress.clone()
    }

    fn pipeline_config(&self) -> PipelineConfig {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let or = |v: usize, default: usize| if v == 0 { default } else { v };
        PipelineConfig {
            readers: or(self.opts.read_concurrency, 2),
            savers: or(self.opts.save_concurrency, cpus),
            chunker: self.repo.chunker(),
            retries: self.opts.changed_retries,
        }
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

        let force = self.opts.parent == ParentChoice::None;
        let mut found = if force {
            parent::Found::default()
        } else {
            let latest = self.opts.parent == ParentChoice::Latest;
            parent::find_parents(
                self.repo,
                &host,
                &snapshot_paths,
                &time,
                latest,
                &mut |id, e| {
                    reporter.warning(&format!("unable to load snapshot {}: {e}", id.short()))
                },
            )?
        };
        if let ParentChoice::Snapshot(id) = &self.opts.parent {
            found.parent = Some((*id, self.repo.load_snapshot(id)?));
        }
        let parent = found.parent;
        reporter.parent(parent.as_ref().map(|(id, _)| id));
        let resume_ids: Vec<SnapshotId> = found.checkpoints.iter().map(|(id, _)| *id).collect();
        let resume_trees: Vec<TreeId> = found.checkpoints.iter().map(|(_, s)| s.tree).collect();
        if !resume_ids.is_empty() {
            reporter.resuming(&resume_ids);
        }

        let selector = select::Selector::new(&self.opts.exclude, &absolute)?;
        let resolved = targets::resolve_relative_targets(&targets, &cwd)?;
        let target_tree = targets::TargetTree::new(&resolved, &cwd)?;
        let parent_id = parent.as_ref().map(|(id, _)| *id);
        let parent_tree = parent.as_ref().map(|(_, sn)| sn.tree);

        let template = self.snapshot(
            time,
            parent_id,
            TreeId::from(crate::id::BlobId(crate::id::Id::hash(b""))),
            snapshot_paths.clone(),
            host.clone(),
            None,
        );
        let checkpointer = (!self.opts.dry_run)
            .then(|| Checkpointer::new(self.repo, template, self.opts.checkpoint_interval));
        let blobs = BlobSaver::new(self.repo, self.opts.dry_run);
        let nodes = node::NodeFactory::new(self.opts.with_atime);
        let stop = AtomicBool::new(false);
        let no_interrupt = AtomicBool::new(false);
        let interrupt = self.opts.interrupt.as_deref().unwrap_or(&no_interrupt);
        let progress = &*self.progress;
        let cfg = self.pipeline_config();

        let (built, counts, own_checkpoint) = std::thread::scope(|scope| {
            if !self.opts.no_scan {
                let (targets, selector, stop) = (&target_tree, &selector, &stop);
                pipeline::spawn_named(scope, "cairn-scan", move || {
                    scan::scan(targets, selector, progress, stop)
                });
            }
            let shared = Shared {
                blobs: &blobs,
                nodes: &nodes,
                progress,
                stop: &stop,
                interrupt,
            };
            let files = FileSaver::start(scope, shared, cfg);
            let mut builder = Builder {
                repo: self.repo,
                blobs: &blobs,
                files: &files,
                nodes: &nodes,
                select: &selector,
                change: self.opts.change,
                reporter,
                progress,
                interrupt,
                stop: &stop,
                checkpointer,
                counts: Counts::default(),
            };
            let built = builder.build(target_tree.clone(), parent_tree, &resume_trees);
            let counts = builder.counts;
            let own_checkpoint = builder.checkpointer.as_ref().and_then(Checkpointer::saved);
            // Whatever happened, let the scanner and the readers finish.
            stop.store(true, Ordering::Relaxed);
            drop(builder);
            drop(files);
            (built, counts, own_checkpoint)
        });
        let root = built?;
        let mut superseded = resume_ids;
        superseded.extend(own_checkpoint);
        let skip = self.opts.skip_if_unchanged && parent_tree == Some(root);
        self.finish(
            Finish {
                root,
                paths: snapshot_paths,
                host,
                time,
                parent: parent_id,
                counts,
                blobs: &blobs,
                start,
                started,
                superseded,
                skip,
            },
            reporter,
        )
    }

    /// Back up the content of `reader` as the file `filename` (restic's
    /// `--stdin`/`--stdin-filename`). Directories in `filename` become
    /// directories of the snapshot. There is no parent and no checkpoint.
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
        let nodes = node::NodeFactory::new(self.opts.with_atime);
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
            source: Source::Stream(reader),
            node: fake(file_name, NodeType::File, 0o100_644, time),
        };
        let stop = AtomicBool::new(false);
        let no_interrupt = AtomicBool::new(false);
        let interrupt = self.opts.interrupt.as_deref().unwrap_or(&no_interrupt);
        let progress = &*self.progress;
        let mut cfg = self.pipeline_config();
        cfg.readers = 1;
        let outcome = std::thread::scope(|scope| {
            let shared = Shared {
                blobs: &blobs,
                nodes: &nodes,
                progress,
                stop: &stop,
                interrupt,
            };
            let files = FileSaver::start(scope, shared, cfg);
            let pending = match files.submit(job, Duration::from_secs(3600)) {
                Ok(pending) => pending,
                Err(_) => return Err(Error::InvalidArgument("the file readers stopped".into())),
            };
            while !pending.wait_timeout(Duration::from_millis(100)) {
                if interrupt.load(Ordering::Relaxed) {
                    stop.store(true, Ordering::Relaxed);
                }
            }
            drop(files);
            pending.outcome()
        });
        let saved = match outcome? {
            FileOutcome::Saved(saved) => saved,
            FileOutcome::Unreadable(e) => return Err(e),
            FileOutcome::Cancelled => return Err(Error::Interrupted),
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
        self.finish(
            Finish {
                root,
                paths: vec![full],
                host,
                time,
                parent: None,
                counts,
                blobs: &blobs,
                start,
                started,
                superseded: Vec::new(),
                skip: false,
            },
            reporter,
        )
    }

    /// The snapshot as this backup records it.
    fn snapshot(
        &self,
        time: GoTime,
        parent: Option<SnapshotId>,
        tree: TreeId,
        paths: Vec<String>,
        hostname: String,
        summary: Option<SnapshotSummary>,
    ) -> Snapshot {
        let (username, uid, gid) = current_user();
        Snapshot {
            time,
            parent,
            tree,
            paths,
            hostname,
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
            summary,
        }
    }

    /// Write the packs and index, then the snapshot; then remove the
    /// checkpoints it supersedes.
    fn finish(&self, f: Finish<'_>, reporter: &dyn Reporter) -> Result<BackupSummary> {
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
        let snapshot = self.snapshot(
            f.time,
            f.parent,
            f.root,
            f.paths,
            f.host,
            Some(stats.clone()),
        );
        let snapshot_id = if self.opts.dry_run || f.skip {
            None
        } else {
            Some(self.repo.save_snapshot(&snapshot)?)
        };
        let mut removed = Vec::new();
        if !self.opts.dry_run && !f.superseded.is_empty() {
            for message in checkpoint::remove(self.repo, &f.superseded) {
                reporter.warning(&message);
            }
            removed = f.superseded;
        }
        Ok(BackupSummary {
            snapshot_id,
            snapshot,
            parent: f.parent,
            stats,
            bytes_read: c.bytes_read,
            errors: c.errors,
            changed_during_backup: c.changed_during_backup,
            files_resumed: c.files_resumed,
            checkpoints_removed: removed,
            skipped: f.skip,
            dry_run: self.opts.dry_run,
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
    /// Checkpoints to remove once the snapshot is saved.
    superseded: Vec<SnapshotId>,
    /// Save no snapshot (`--skip-if-unchanged` and nothing changed).
    skip: bool,
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
