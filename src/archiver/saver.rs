//! Saving blobs for a backup: once each, counting what is new.
//!
//! [`BlobSaver`] deduplicates against the index and the packs being
//! written (through [`Repository::save_blob_stored`]), counts the new blobs
//! and the bytes they take in packs, and in a dry run only decides what
//! *would* be new. It is `Sync`: the pipeline's saver threads and the tree
//! builder use it at once. It keeps counters only, no per-blob record, so
//! its memory does not grow with the backup.

use std::collections::HashSet;

use parking_lot::Mutex;

use crate::blob::{BlobHandle, BlobType};
use crate::crypto::CIPHERTEXT_OVERHEAD;
use crate::error::Result;
use crate::format::tree::Tree;
use crate::id::{BlobId, Id, TreeId};
use crate::repository::Repository;

/// Counts of blobs a backup added (restic's `ItemStats`, summed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlobStats {
    pub data_blobs: u64,
    /// Plaintext bytes of the new data blobs.
    pub data_size: u64,
    pub tree_blobs: u64,
    /// Plaintext bytes of the new tree blobs.
    pub tree_size: u64,
}

/// Saves blobs, once each, and records which ones were new.
pub struct BlobSaver<'a> {
    repo: &'a Repository,
    dry_run: bool,
    state: Mutex<SaverState>,
}

#[derive(Default)]
struct SaverState {
    stats: BlobStats,
    /// Bytes the added blobs take in packs.
    stored: u64,
    /// Dry run: blobs that would have been added so far.
    would_add: HashSet<BlobHandle>,
}

impl<'a> BlobSaver<'a> {
    /// A saver into `repo`; with `dry_run` nothing is written.
    pub fn new(repo: &'a Repository, dry_run: bool) -> Self {
        BlobSaver {
            repo,
            dry_run,
            state: Mutex::new(SaverState::default()),
        }
    }

    /// Save a blob unless the repository has it; returns its id.
    pub fn save(&self, tpe: BlobType, data: &[u8]) -> Result<BlobId> {
        let (id, stored) = if self.dry_run {
            let handle = BlobHandle::new(tpe, BlobId(Id::hash(data)));
            let new = !self.repo.has_blob(&handle) && self.state.lock().would_add.insert(handle);
            let estimate = (data.len() + CIPHERTEXT_OVERHEAD) as u64;
            (handle.id, new.then_some(estimate))
        } else {
            let (id, stored) = self.repo.save_blob_stored(tpe, data)?;
            (id, stored.map(u64::from))
        };
        if let Some(stored) = stored {
            let len = data.len() as u64;
            let mut state = self.state.lock();
            state.stored += stored;
            match tpe {
                BlobType::Data => {
                    state.stats.data_blobs += 1;
                    state.stats.data_size += len;
                }
                BlobType::Tree => {
                    state.stats.tree_blobs += 1;
                    state.stats.tree_size += len;
                }
            }
        }
        Ok(id)
    }

    /// Serialize and save a tree.
    pub fn save_tree(&self, tree: &Tree) -> Result<TreeId> {
        self.save(BlobType::Tree, &tree.to_json()).map(TreeId::from)
    }

    /// What was added so far.
    pub fn stats(&self) -> BlobStats {
        self.state.lock().stats
    }

    /// The bytes the added blobs occupy in packs (compressed and
    /// encrypted); in a dry run an estimate without compression.
    pub fn stored_size(&self) -> u64 {
        self.state.lock().stored
    }
}
