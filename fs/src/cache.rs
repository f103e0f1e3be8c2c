//! Caches of decoded repository objects, bounded in bytes.
//!
//! - [`BlobCache`]: data blob plaintexts, weighted by their length.
//! - [`TreeCache`]: decoded trees, weighted by an estimate of their size in
//!   memory.
//!
//! Both are `moka` caches: concurrent, and a key being loaded by one
//! thread is not loaded again by another (the second waits and shares the
//! result), so read-ahead and readers never fetch a blob twice. Failures are
//! not cached. A failed blob load is logged with the pack that holds it.

use std::sync::Arc;

use cairn_core::format::tree::Tree;
use cairn_core::repository::Repository;
use cairn_core::{BlobHandle, BlobId, BlobType, TreeId};
use moka::sync::Cache;

use crate::error::FsResult;

/// Decoded data blobs, at most `capacity` bytes of plaintext.
pub struct BlobCache {
    repo: Arc<Repository>,
    cache: Cache<BlobId, Arc<[u8]>>,
}

impl BlobCache {
    /// A cache holding at most `capacity` bytes of blob data.
    pub fn new(repo: Arc<Repository>, capacity: u64) -> Self {
        let cache = Cache::builder()
            .max_capacity(capacity)
            .weigher(|_, v: &Arc<[u8]>| u32::try_from(v.len()).unwrap_or(u32::MAX))
            .build();
        BlobCache { repo, cache }
    }

    /// The blob's plaintext, from the cache or loaded (and verified).
    pub fn get(&self, id: &BlobId) -> FsResult<Arc<[u8]>> {
        let repo = &self.repo;
        Ok(self.cache.try_get_with(*id, || {
            repo.load_blob(BlobType::Data, id)
                .map(Arc::from)
                .inspect_err(|e| log_blob_error(repo, BlobType::Data, id, e))
        })?)
    }

    /// True if the blob is cached (for read-ahead bookkeeping and tests).
    pub fn contains(&self, id: &BlobId) -> bool {
        self.cache.contains_key(id)
    }

    /// Bytes currently held (approximate until pending work is run).
    pub fn weighted_size(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.weighted_size()
    }
}

/// Decoded trees, at most about `capacity` bytes.
pub struct TreeCache {
    repo: Arc<Repository>,
    cache: Cache<TreeId, Arc<Tree>>,
}

impl TreeCache {
    /// A cache holding about `capacity` bytes of decoded trees.
    pub fn new(repo: Arc<Repository>, capacity: u64) -> Self {
        let cache = Cache::builder()
            .max_capacity(capacity)
            .weigher(|_, t: &Arc<Tree>| u32::try_from(tree_weight(t)).unwrap_or(u32::MAX))
            .build();
        TreeCache { repo, cache }
    }

    /// The decoded tree, from the cache or loaded.
    pub fn get(&self, id: &TreeId) -> FsResult<Arc<Tree>> {
        let repo = &self.repo;
        Ok(self.cache.try_get_with(*id, || {
            repo.load_tree(id)
                .map(Arc::new)
                .inspect_err(|e| log_blob_error(repo, BlobType::Tree, &BlobId::from(*id), e))
        })?)
    }

    /// Forget every cached tree (after the index was reloaded).
    pub fn clear(&self) {
        self.cache.invalidate_all();
    }
}

/// An estimate of a decoded tree's heap size.
fn tree_weight(tree: &Tree) -> usize {
    tree.nodes
        .iter()
        .map(|n| {
            std::mem::size_of_val(n)
                + n.name.len()
                + n.link_target.len()
                + n.user.len()
                + n.group.len()
                + n.content().len() * 32
                + n.extended_attributes
                    .iter()
                    .map(|a| a.name.len() + a.value.len() + 48)
                    .sum::<usize>()
        })
        .sum::<usize>()
        + 64
}

/// Log a failed load naming the blob and the pack the index puts it in.
fn log_blob_error(repo: &Repository, tpe: BlobType, id: &BlobId, err: &cairn_core::Error) {
    match repo.lookup(&BlobHandle::new(tpe, *id)) {
        Some(entry) => log::error!("{tpe} blob {id} in pack {}: {err}", entry.pack),
        None => log::error!("{tpe} blob {id} (in no pack): {err}"),
    }
}
