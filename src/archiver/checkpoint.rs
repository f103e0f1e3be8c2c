//! Checkpoints: partial snapshots that let an interrupted backup resume.
//!
//! While a backup runs, every checkpoint interval (and once more when it is
//! interrupted) the repository is flushed — open packs written, then the
//! index files listing them — and a snapshot of everything finished so far
//! is saved: finished files, the stored prefix of files in progress (cut at
//! a chunk boundary, with `size` equal to that prefix) and the directories
//! above them. Only then is this run's previous checkpoint removed, so at
//! every moment the repository holds at least one usable checkpoint.
//!
//! A checkpoint is a valid restic snapshot (restic reads, checks, restores
//! and diffs it) marked twice so it is never mistaken for a complete one:
//! the tag [`CHECKPOINT_TAG`] and a `program_version` ending in
//! [`VERSION_SUFFIX`]; it has no `summary`. Only a snapshot with both marks
//! is treated as a checkpoint. cairn never picks one as a parent; the next
//! backup of the same host and set of paths uses every such checkpoint as
//! an extra parent, and once its final snapshot is saved it removes them.
//! `restic forget` sees checkpoints as ordinary snapshots: policies like
//! `--keep-last` count them, unless they are filtered with
//! `--tag`/`--keep-tag` (see docs/backup.md).

use std::time::{Duration, Instant};

use crate::backend::FileType;
use crate::error::Result;
use crate::format::snapshot::Snapshot;
use crate::id::{SnapshotId, TreeId};
use crate::repository::Repository;

/// The tag every checkpoint carries.
pub const CHECKPOINT_TAG: &str = "cairn-checkpoint";
/// What a checkpoint's `program_version` ends with.
pub const VERSION_SUFFIX: &str = " (checkpoint)";

/// The default interval between checkpoints.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// True if `sn` is a checkpoint (both marks present).
pub fn is_checkpoint(sn: &Snapshot) -> bool {
    sn.tags.iter().any(|t| t == CHECKPOINT_TAG) && sn.program_version.ends_with(VERSION_SUFFIX)
}

/// Turn a snapshot into a checkpoint.
pub fn mark(sn: &mut Snapshot) {
    if !sn.tags.iter().any(|t| t == CHECKPOINT_TAG) {
        sn.tags.push(CHECKPOINT_TAG.to_string());
    }
    if !sn.program_version.ends_with(VERSION_SUFFIX) {
        sn.program_version.push_str(VERSION_SUFFIX);
    }
    sn.summary = None;
}

/// Remove checkpoint snapshots; failures are returned as messages (a
/// leftover checkpoint is harmless).
pub fn remove(repo: &Repository, ids: &[SnapshotId]) -> Vec<String> {
    ids.iter()
        .filter_map(|id| {
            repo.backend()
                .remove(FileType::Snapshot, &id.to_hex())
                .err()
                .map(|e| format!("could not remove checkpoint {}: {e}", id.short()))
        })
        .collect()
}

/// Saves the checkpoints of one backup run.
pub struct Checkpointer<'a> {
    repo: &'a Repository,
    /// The snapshot to save, already marked; its tree is replaced.
    template: Snapshot,
    interval: Option<Duration>,
    last: Instant,
    /// This run's newest checkpoint.
    saved: Option<SnapshotId>,
}

impl<'a> Checkpointer<'a> {
    /// Checkpoints of snapshots like `template`, every `interval` (never
    /// on a timer if `None`; still on interrupt).
    pub fn new(repo: &'a Repository, mut template: Snapshot, interval: Option<Duration>) -> Self {
        mark(&mut template);
        Checkpointer {
            repo,
            template,
            interval,
            last: Instant::now(),
            saved: None,
        }
    }

    /// True if the interval has passed since the last checkpoint.
    pub fn due(&self) -> bool {
        self.interval.is_some_and(|i| self.last.elapsed() >= i)
    }

    /// Nothing to save yet: try again after another interval.
    pub fn postpone(&mut self) {
        self.last = Instant::now();
    }

    /// Flush the repository and save a checkpoint with root tree `root`;
    /// then remove this run's previous checkpoint.
    pub fn save(&mut self, root: TreeId) -> Result<SnapshotId> {
        self.repo.flush()?;
        let mut sn = self.template.clone();
        sn.tree = root;
        let id = self.repo.save_snapshot(&sn)?;
        if let Some(previous) = self.saved.replace(id) {
            for message in remove(self.repo, &[previous]) {
                log::warn!("{message}");
            }
        }
        self.last = Instant::now();
        Ok(id)
    }

    /// This run's newest checkpoint, if it saved one.
    pub fn saved(&self) -> Option<SnapshotId> {
        self.saved
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::time::GoTime;
    use crate::id::{Id, TreeId};

    #[test]
    fn checkpoints_need_both_marks() {
        let mut sn = Snapshot::new(GoTime::now(), TreeId(Id::hash(b"t")), vec!["/x".into()]);
        sn.program_version = "cairn 0.1.0".into();
        assert!(!is_checkpoint(&sn));
        mark(&mut sn);
        assert!(is_checkpoint(&sn));
        assert_eq!(sn.tags, [CHECKPOINT_TAG]);
        assert_eq!(sn.program_version, "cairn 0.1.0 (checkpoint)");
        mark(&mut sn);
        assert_eq!(sn.tags.len(), 1, "marking twice changes nothing");
        let mut only_tag = sn.clone();
        only_tag.program_version = "restic 0.14.0".into();
        assert!(
            !is_checkpoint(&only_tag),
            "a user's tag alone is not enough"
        );
    }
}
