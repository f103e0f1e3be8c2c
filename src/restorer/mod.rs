//! The restore engine: recreate (part of) a snapshot's tree in a target
//! directory, faithfully and safely.
//!
//! A restore runs in stages, each a module:
//! 1. [`plan`]: walk the snapshot's trees once and decide every item to
//!    create and every blob to write where ([`Plan`]), applying the
//!    [`Selection`] (`--include`/`--exclude`). Nothing touches the disk.
//! 2. `create`: create directories, empty files, hard links, symlinks,
//!    fifos and device nodes, parents first.
//! 3. `content`: fetch each file's blobs and write them at their offsets.
//!    This is the stage a pack-centric, parallel fetcher will replace.
//! 4. `metadata`: ownership, extended attributes, mode and times, children
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
//! - problems with single items are reported through a callback and counted;
//!   only failures that stop the whole restore (unreadable root tree,
//!   unusable target) are returned as errors;
//! - the repository is only read.

mod content;
mod create;
mod fsops;
mod metadata;
pub mod plan;
pub mod select;
mod verify;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;

use crate::error::{Error, Result};
use crate::repository::Repository;

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
    /// Items planned: files, directories, links, special files.
    pub total_files: u64,
    /// Items restored completely, metadata included.
    pub files_restored: u64,
    /// File content planned, in bytes.
    pub total_bytes: u64,
    /// File content written and verified against its blob ids.
    pub bytes_restored: u64,
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

/// Counts problems while passing them on.
pub(crate) struct Reporter<'a> {
    sink: &'a mut dyn FnMut(Problem),
    count: u64,
}

impl<'a> Reporter<'a> {
    fn new(sink: &'a mut dyn FnMut(Problem)) -> Self {
        Reporter { sink, count: 0 }
    }

    fn report(&mut self, location: String, message: impl Into<String>) {
        self.count += 1;
        (self.sink)(Problem {
            location,
            message: message.into(),
        });
    }
}

/// Restore everything in `plan` below `target` (created if missing).
/// Problems with single items go to `report`; see the module invariants.
pub fn restore(
    repo: &Repository,
    plan: &Plan,
    target: &Path,
    report: &mut dyn FnMut(Problem),
) -> Result<RestoreStats> {
    let root = fsops::DirHandle::open_target(target, true)
        .map_err(|e| Error::io(format!("target {}", target.display()), e))?;
    let mut cache = fsops::DirCache::new(root);
    let mut reporter = Reporter::new(report);

    let created = create::create_items(plan, &mut cache, &mut reporter);
    let written = content::write_contents(repo, plan, &mut cache, &created, &mut reporter);

    // An item is done when it exists and, for a file, holds all its data;
    // a hard link is done when the file it links to is.
    let mut done = created;
    for (file, complete) in plan.files.iter().zip(&written.complete) {
        done[file.item] &= *complete;
    }
    for i in 0..plan.items.len() {
        if let ItemKind::HardLink { first } = plan.items[i].kind {
            done[i] &= done[first];
        }
    }
    metadata::restore_metadata(plan, &mut cache, &mut done, &mut reporter);

    Ok(RestoreStats {
        total_files: plan.items.len() as u64,
        files_restored: done.iter().filter(|d| **d).count() as u64,
        total_bytes: plan.total_bytes(),
        bytes_restored: written.bytes,
        errors: reporter.count,
    })
}
