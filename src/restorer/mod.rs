//! The restore engine: recreate (part of) a snapshot's tree in a target
//! directory, fast, faithfully and safely.
//!
//! A restore runs in stages, each a module:
//! 1. [`plan`]: walk the snapshot's trees once and decide every item to
//!    create and every blob to write where ([`Plan`]), applying the
//!    [`Selection`] (`--include`/`--exclude`). Nothing touches the disk.
//! 2. `create`: decide what to do with what is already in the target
//!    ([`Overwrite`]), then create directories, empty files, hard links,
//!    symlinks, fifos and device nodes, parents first.
//! 3. `content`: pack-centric and parallel: read each pack once (neighbour
//!    blobs in one ranged read), decrypt and verify each needed blob once,
//!    and write it with positioned writes into every file that needs it.
//! 4. `delete` (`--delete`): remove what the snapshot does not have.
//! 5. `metadata`: ownership, extended attributes, mode and times, children
//!    before their directory so a directory's times are set last.
//!
//! [`verify`] re-reads restored files and checks them against the plan.
//!
//! Invariants:
//! - nothing outside the target is created, written, followed, chmod'ed or
//!   chown'ed, whatever the repository contains (see `fsops`): names are
//!   checked and de-duplicated when planning, and every file-system call
//!   works on one name in an open directory without following symlinks;
//! - data that fails its MAC, hash or length check is never written: the
//!   file is reported, its metadata is left unrestored (mode 0600, restore
//!   time), and the restore goes on;
//! - re-running a restore is cheap and finishes an interrupted one: files
//!   already right are left as they are ([`Action::Unchanged`]) and only
//!   the wrong parts of the others are rewritten;
//! - problems with single items are reported through the [`Sink`] and
//!   counted; only failures that stop the whole restore (unreadable root
//!   tree, unusable target) are returned as errors;
//! - memory is the plan plus a bounded amount per content worker;
//! - the repository is only read.

mod content;
mod create;
mod delete;
mod dircache;
mod fsops;
mod metadata;
pub mod options;
pub mod plan;
mod prefetch;
pub mod select;
mod verify;

#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::path::Path;

use crate::error::{Error, Result};
use crate::repository::Repository;

use create::{State, Todo};

pub use options::{
    Action, Overwrite, Progress, ProgressState, RestoreOptions, Sink, XattrSelection,
};
pub use plan::{plan, BlobSlot, FilePlan, Item, ItemKind, Plan};
pub use select::Selection;
pub use verify::{verify, VerifyStats};

/// Something that went wrong with one item; the restore goes on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The item's location in the restored tree, e.g. `/home/ann/x`.
    pub location: String,
    /// What went wrong, one line.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// What a restore did (names as in restic's JSON summary).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RestoreStats {
    /// Items to restore: files, directories, links, special files (not
    /// those skipped or already right).
    pub total_files: u64,
    /// Of those, items restored completely, metadata included.
    pub files_restored: u64,
    /// Items left alone by the overwrite policy or already right.
    pub files_skipped: u64,
    /// Entries removed by `--delete`.
    pub files_deleted: u64,
    /// File content to restore, in bytes.
    pub total_bytes: u64,
    /// File content written and verified against its blob ids (or found
    /// right already in an updated file).
    pub bytes_restored: u64,
    /// Content of skipped and unchanged files.
    pub bytes_skipped: u64,
    /// Problems reported by the restore stages (planning problems are
    /// counted in [`Plan::problems`]).
    pub errors: u64,
}

impl RestoreStats {
    /// True if everything planned was restored without a problem.
    pub fn is_complete(&self) -> bool {
        self.errors == 0 && self.files_restored == self.total_files
    }
}

/// The outcome of [`restore`].
#[derive(Clone, Debug, Default)]
pub struct Restored {
    pub stats: RestoreStats,
    /// Per file plan: the file on disk should now match the plan (restored,
    /// updated or found unchanged); the files [`verify`] should check.
    pub files: Vec<bool>,
}

/// Counts problems while passing them and actions on to a [`Sink`].
pub(crate) struct Reporter<'a> {
    sink: &'a mut dyn Sink,
    count: u64,
}

impl<'a> Reporter<'a> {
    fn new(sink: &'a mut dyn Sink) -> Self {
        Reporter { sink, count: 0 }
    }

    fn report(&mut self, location: String, message: impl Into<String>) {
        self.count += 1;
        self.sink.problem(Problem {
            location,
            message: message.into(),
        });
    }

    fn action(&mut self, action: Action, location: String, size: u64) {
        self.sink.action(action, &location, size);
    }

    /// Whether the sink wants actions (building locations costs time).
    fn wants_actions(&self) -> bool {
        self.sink.wants_actions()
    }
}

/// Restore everything in `plan` below `target` (created if missing) as
/// `opts` say. `progress` is updated as the restore goes; problems and
/// finished items go to `sink`. See the module invariants.
pub fn restore(
    repo: &Repository,
    plan: &Plan,
    target: &Path,
    opts: &RestoreOptions,
    progress: &Progress,
    sink: &mut dyn Sink,
) -> Result<Restored> {
    let target_error = |e| Error::io(format!("target {}", target.display()), e);
    let root = match fsops::DirHandle::open_target(target, !opts.dry_run) {
        Ok(root) => Some(root),
        Err(e) if opts.dry_run && e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(target_error(e)),
    };
    let content_root = match &root {
        Some(root) => Some(root.try_clone().map_err(target_error)?),
        None => None,
    };
    let mut cache = dircache::DirCache::new(root);
    let mut reporter = Reporter::new(sink);

    let started = std::time::Instant::now();
    let prepared = create::create_items(plan, &mut cache, opts, progress, &mut reporter);
    log::debug!("restore: create stage took {:?}", started.elapsed());
    let started = std::time::Instant::now();
    let states = &prepared.states;
    let no_files = || vec![false; plan.files.len()];
    let (complete, finished_files, bytes_written) = match (&content_root, opts.dry_run) {
        (Some(root), false) => {
            let written =
                content::write_contents(repo, plan, root, &prepared, opts, progress, &mut reporter);
            (written.complete, written.finished, written.bytes)
        }
        _ => (no_files(), no_files(), 0),
    };
    log::debug!("restore: content stage took {:?}", started.elapsed());
    let started = std::time::Instant::now();
    // Per item: the content stage set its metadata already.
    let mut finished = vec![false; plan.items.len()];
    for (file, done) in plan.files.iter().zip(&finished_files) {
        finished[file.item] = *done;
    }

    // An item is done when it is there and, for a file that needed
    // content, holds all of it; a hard link when the file it links to is.
    let mut done: Vec<bool> = states
        .iter()
        .map(|s| matches!(s, State::Created | State::Updated | State::Unchanged))
        .collect();
    for (k, file) in plan.files.iter().enumerate() {
        if prepared.todo[k] != Todo::Nothing {
            done[file.item] &= complete[k];
        }
    }
    for i in 0..plan.items.len() {
        if let ItemKind::HardLink { first } = plan.items[i].kind {
            done[i] &= done[first];
        }
    }
    let deleted = if opts.delete {
        delete::delete_unexpected(plan, &mut cache, states, opts, progress, &mut reporter)
    } else {
        0
    };
    if !opts.dry_run {
        metadata::restore_metadata(
            plan,
            &mut cache,
            states,
            &mut done,
            &finished,
            opts,
            progress,
            &mut reporter,
        );
    }
    log::debug!(
        "restore: delete and metadata stages took {:?}",
        started.elapsed()
    );
    let stats = summarize(plan, states, &done, bytes_written, deleted, opts.dry_run);
    let files = plan
        .files
        .iter()
        .map(|f| done[f.item] && !opts.dry_run)
        .collect();
    Ok(Restored {
        stats: RestoreStats {
            errors: reporter.count,
            ..stats
        },
        files,
    })
}

/// The final counts, from each item's state.
fn summarize(
    plan: &Plan,
    states: &[State],
    done: &[bool],
    bytes_written: u64,
    deleted: u64,
    dry_run: bool,
) -> RestoreStats {
    let mut stats = RestoreStats {
        files_deleted: deleted,
        bytes_restored: bytes_written,
        ..RestoreStats::default()
    };
    for (i, item) in plan.items.iter().enumerate() {
        let size = match item.kind {
            ItemKind::File { content } => plan.files[content].size(),
            _ => 0,
        };
        match states[i] {
            State::Skipped | State::Unchanged => {
                stats.files_skipped += 1;
                stats.bytes_skipped += size;
            }
            _ => {
                stats.total_files += 1;
                stats.total_bytes += size;
                if done[i] {
                    stats.files_restored += 1;
                    if dry_run {
                        stats.bytes_restored += size;
                    }
                }
            }
        }
    }
    stats
}
