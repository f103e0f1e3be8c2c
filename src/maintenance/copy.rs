//! `copy`: copy snapshots from one repository to another, as restic's
//! `copy` does.
//!
//! Blobs are copied by id: each tree and data blob a snapshot needs that the
//! destination lacks is loaded (and verified) from the source and saved into
//! the destination, re-encrypted with its key and compressed as its mode
//! says. Nothing is re-chunked, so the two repositories may use different
//! chunker parameters. A snapshot is skipped if the destination already has
//! a copy of it: a snapshot whose `original` (or id) is the source's
//! persistent id and whose fields are otherwise the same ([`similar`]).
//! The copy's `parent` is cleared and its `original` set. Blobs are flushed
//! (packs, then index files) before the snapshot file is written, so an
//! interrupted copy leaves only unreferenced data.

use std::collections::{HashMap, HashSet};

use crate::blob::{BlobHandle, BlobType};
use crate::error::Result;
use crate::format::snapshot::Snapshot;
use crate::id::{BlobId, SnapshotId, TreeId};
use crate::repository::Repository;

use super::parallel;

/// restic's `similarSnapshots`: every field but `parent` and `original`
/// matches (paths and tags as sets, excludes in order).
pub fn similar(a: &Snapshot, b: &Snapshot) -> bool {
    a.time == b.time
        && a.tree == b.tree
        && a.hostname == b.hostname
        && a.username == b.username
        && a.uid == b.uid
        && a.gid == b.gid
        && a.paths.len() == b.paths.len()
        && a.tags.len() == b.tags.len()
        && a.excludes == b.excludes
        && a.has_paths(&b.paths)
        && a.has_tags(&b.tags)
}

/// Finds existing copies in the destination.
pub struct CopiesIndex {
    by_original: HashMap<SnapshotId, Vec<(SnapshotId, Snapshot)>>,
}

impl CopiesIndex {
    /// Index the destination's snapshots by persistent id (`original`, and
    /// their own id).
    pub fn new(dst_snapshots: &[(SnapshotId, Snapshot)]) -> Self {
        let mut by_original: HashMap<SnapshotId, Vec<(SnapshotId, Snapshot)>> = HashMap::new();
        for (id, sn) in dst_snapshots {
            if let Some(orig) = sn.original {
                by_original.entry(orig).or_default().push((*id, sn.clone()));
            }
            by_original.entry(*id).or_default().push((*id, sn.clone()));
        }
        CopiesIndex { by_original }
    }

    /// The destination's copy of source snapshot `id`, if it has one.
    pub fn copy_of(&self, id: &SnapshotId, sn: &Snapshot) -> Option<SnapshotId> {
        let persistent = sn.original.unwrap_or(*id);
        self.by_original
            .get(&persistent)?
            .iter()
            .find(|(_, d)| similar(d, sn))
            .map(|(id, _)| *id)
    }
}

/// Statistics of a copy.
#[derive(Debug, Default, Clone, Copy)]
pub struct CopyStats {
    pub trees: usize,
    pub data_blobs: usize,
    pub bytes: u64,
}

/// Copy one snapshot's blobs and then the snapshot itself; returns the new
/// snapshot's id. `visited` carries the trees already handled across
/// snapshots. Both repositories' indexes must be loaded.
pub fn copy_snapshot(
    src: &Repository,
    dst: &Repository,
    id: &SnapshotId,
    sn: &Snapshot,
    visited: &mut HashSet<TreeId>,
    threads: usize,
    stats: &mut CopyStats,
) -> Result<SnapshotId> {
    let mut level: Vec<TreeId> = if visited.insert(sn.tree) {
        vec![sn.tree]
    } else {
        Vec::new()
    };
    let mut depth = 0;
    while !level.is_empty() {
        depth += 1;
        if depth > crate::tree::MAX_DEPTH {
            return Err(crate::error::Error::corrupt(
                format!("snapshot {id}"),
                "trees nested too deeply",
            ));
        }
        // Load this level's trees (copying their raw bytes if needed).
        let mut next = Vec::new();
        let mut data: Vec<BlobId> = Vec::new();
        let mut first_error = None;
        parallel::map(
            threads,
            level,
            |tree_id| -> Result<_> {
                let raw = src.load_blob(BlobType::Tree, &BlobId::from(tree_id))?;
                let tree = crate::format::tree::Tree::from_json(&raw)?;
                let copied =
                    if dst.has_blob(&BlobHandle::new(BlobType::Tree, BlobId::from(tree_id))) {
                        false
                    } else {
                        dst.save_blob(BlobType::Tree, &raw)?.1
                    };
                Ok((tree, copied))
            },
            |res| match res {
                Ok((tree, copied)) => {
                    stats.trees += usize::from(copied);
                    for node in &tree.nodes {
                        data.extend(node.content().iter().copied());
                        if let Some(sub) = node.subtree {
                            if visited.insert(sub) {
                                next.push(sub);
                            }
                        }
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            },
        );
        if let Some(e) = first_error {
            return Err(e);
        }
        let mut seen = HashSet::new();
        data.retain(|b| seen.insert(*b) && !dst.has_blob(&BlobHandle::new(BlobType::Data, *b)));
        let mut first_error = None;
        parallel::map(
            threads,
            data,
            |blob| -> Result<(bool, u64)> {
                let plain = src.load_blob(BlobType::Data, &blob)?;
                let (_, new) = dst.save_blob(BlobType::Data, &plain)?;
                Ok((new, plain.len() as u64))
            },
            |res| match res {
                Ok((new, len)) => {
                    if new {
                        stats.data_blobs += 1;
                        stats.bytes += len;
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            },
        );
        if let Some(e) = first_error {
            return Err(e);
        }
        level = next;
    }
    dst.flush()?;
    let mut copy = sn.clone();
    copy.parent = None;
    if copy.original.is_none() {
        copy.original = Some(*id);
    }
    dst.save_snapshot(&copy)
}
