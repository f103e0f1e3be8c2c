//! The parent snapshot: which earlier snapshot a backup compares against,
//! and the change detection that lets unchanged files skip being read.
//!
//! restic 0.14's rules: without `--parent`, the parent is the newest
//! snapshot from the same host that contains every target path (its `paths`
//! may hold more) and is not newer than the new snapshot's time. A file is
//! unchanged when the parent's node at the same place is a file with the
//! same size, mtime, ctime and inode (`--ignore-ctime` and `--ignore-inode`
//! drop the last two checks; `--ignore-inode` implies `--ignore-ctime`). An
//! unchanged file reuses the parent's content list without being opened,
//! provided every one of its blobs is still in the index.
//!
//! Checkpoints (see [`checkpoint`](super::checkpoint)) are never chosen as
//! the parent; those of the same host and the same set of paths are
//! returned separately, to resume from.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

use crate::backend::FileType;
use crate::error::Result;
use crate::format::snapshot::Snapshot;
use crate::format::time::GoTime;
use crate::format::tree::{Node, NodeType};
use crate::id::SnapshotId;
use crate::repository::Repository;

use super::checkpoint::is_checkpoint;

/// Which snapshot a backup uses as its parent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ParentChoice {
    /// The newest matching snapshot (restic's default).
    #[default]
    Latest,
    /// This snapshot (`--parent`).
    Snapshot(SnapshotId),
    /// None: read every file (`--force`).
    None,
}

/// Which metadata changes count as a change of file content.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChangeDetection {
    /// `--ignore-ctime`.
    pub ignore_ctime: bool,
    /// `--ignore-inode` (implies `ignore_ctime`).
    pub ignore_inode: bool,
}

impl ChangeDetection {
    /// True if the file with metadata `meta` may differ from `previous`,
    /// the parent's node at the same path.
    pub fn file_changed(&self, meta: &Metadata, previous: &Node) -> bool {
        meta.size() != previous.size || self.metadata_changed(meta, previous)
    }

    /// [`file_changed`](Self::file_changed) without the size: true if the
    /// file may have been modified since `previous` was recorded. A file
    /// that is only longer than a checkpoint's node of it, with the same
    /// mtime, ctime and inode, is the same file that was cut short.
    pub fn metadata_changed(&self, meta: &Metadata, previous: &Node) -> bool {
        if previous.node_type != NodeType::File {
            return true;
        }
        let mtime = GoTime::from_unix_utc(meta.mtime(), nanos(meta.mtime_nsec()));
        if mtime.unix() != previous.mtime.unix() {
            return true;
        }
        if !(self.ignore_ctime || self.ignore_inode) {
            let ctime = GoTime::from_unix_utc(meta.ctime(), nanos(meta.ctime_nsec()));
            if ctime.unix() != previous.ctime.unix() {
                return true;
            }
        }
        !self.ignore_inode && meta.ino() != previous.inode
    }
}

fn nanos(ns: i64) -> u32 {
    u32::try_from(ns.clamp(0, 999_999_999)).unwrap_or(0)
}

/// What [`find_parents`] found.
#[derive(Default)]
pub struct Found {
    /// The newest complete snapshot of the host containing all paths.
    pub parent: Option<(SnapshotId, Snapshot)>,
    /// Checkpoints of the host with exactly these paths, newest first.
    pub checkpoints: Vec<(SnapshotId, Snapshot)>,
}

/// One pass over the snapshots: the newest snapshot of `host` containing
/// all of `paths` (absolute, cleaned) and not newer than `limit` (unless
/// `want_parent` is false), and the checkpoints to resume from. Snapshots
/// that cannot be loaded are passed to `skipped` and ignored.
pub fn find_parents(
    repo: &Repository,
    host: &str,
    paths: &[String],
    limit: &GoTime,
    want_parent: bool,
    skipped: &mut dyn FnMut(SnapshotId, crate::Error),
) -> Result<Found> {
    let mut found = Found::default();
    let mut sorted_paths = paths.to_vec();
    sorted_paths.sort();
    sorted_paths.dedup();
    for id in repo.list_ids(FileType::Snapshot)? {
        let id = SnapshotId(id);
        let sn = match repo.load_snapshot(&id) {
            Ok(sn) => sn,
            Err(e) => {
                skipped(id, e);
                continue;
            }
        };
        if sn.hostname != host {
            continue;
        }
        if is_checkpoint(&sn) {
            let mut theirs = sn.paths.clone();
            theirs.sort();
            theirs.dedup();
            if theirs == sorted_paths {
                found.checkpoints.push((id, sn));
            }
            continue;
        }
        if !want_parent
            || sn.time.to_utc() > limit.to_utc()
            || !paths.iter().all(|p| sn.paths.contains(p))
        {
            continue;
        }
        if !matches!(&found.parent, Some((_, b)) if sn.time < b.time) {
            found.parent = Some((id, sn));
        }
    }
    found
        .checkpoints
        .sort_by(|a, b| b.1.time.cmp(&a.1.time).then(b.0.cmp(&a.0)));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_detection_follows_restic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let node = super::super::node::NodeFactory::new(false)
            .node(&path, "f".into(), &meta)
            .unwrap();
        let strict = ChangeDetection::default();
        assert!(!strict.file_changed(&meta, &node));

        let mut other = node.clone();
        other.size = 4;
        assert!(strict.file_changed(&meta, &other));

        let mut other = node.clone();
        other.mtime = GoTime::from_unix(meta.mtime() + 1, 0);
        assert!(strict.file_changed(&meta, &other));

        let mut other = node.clone();
        other.ctime = GoTime::from_unix(0, 1);
        assert!(strict.file_changed(&meta, &other));
        let no_ctime = ChangeDetection {
            ignore_ctime: true,
            ..Default::default()
        };
        assert!(!no_ctime.file_changed(&meta, &other));

        other.inode += 1;
        assert!(no_ctime.file_changed(&meta, &other));
        let no_inode = ChangeDetection {
            ignore_inode: true,
            ..Default::default()
        };
        assert!(
            !no_inode.file_changed(&meta, &other),
            "implies ignore_ctime"
        );

        let mut other = node.clone();
        other.node_type = NodeType::Symlink;
        assert!(no_inode.file_changed(&meta, &other));
    }
}
