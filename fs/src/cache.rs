//! The cache of decoded data blobs, bounded in bytes (decoded trees have
//! their own, [`crate::trees`]).
//!
//! [`BlobCache`] holds data blob plaintexts, weighted by their length.
//! Blobs are loaded one at a time by readers ([`BlobCache::get`]) or many
//! at a time by read-ahead ([`BlobCache::load_many`], which reads
//! neighbours in a pack with one request). A blob being loaded is *in
//! flight*: anyone else wanting it waits for that load instead of starting
//! another, so no blob is ever fetched and decoded twice at the same time.
//!
//! A blob's plaintext is kept in the buffer the repository decoded it in
//! ([`Blob`]): a blob stored uncompressed stays where it was read and
//! decrypted, without a copy.
//!
//! The cache evicts the least recently used entries. Not moka's default
//! (TinyLFU), whose admission test turns away new entries that were used
//! less often than the ones they would evict: once a file bigger than the
//! cache has streamed through, every blob read ahead would be dropped on
//! arrival and loaded a second time by the reader.
//!
//! Failures are not cached. A failed blob load is logged with the pack that
//! holds it.

use std::collections::HashMap;
use std::ops::{Deref, Range};
use std::sync::Arc;

use cairn_core::repository::Repository;
use cairn_core::{BlobHandle, BlobId, BlobType};
use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use parking_lot::{Condvar, Mutex};

use crate::error::{FsError, FsResult};

/// A blob's plaintext: a range of the buffer it was decoded in.
/// Invariant: the range is in bounds.
#[derive(Debug, Default)]
pub struct Blob {
    buffer: Vec<u8>,
    range: Range<usize>,
}

impl Blob {
    /// The plaintext `buffer[range]`; `None` if the range is out of bounds.
    pub fn new(buffer: Vec<u8>, range: Range<usize>) -> Option<Self> {
        buffer.get(range.clone())?;
        Some(Blob { buffer, range })
    }

    /// Bytes of memory held (the whole buffer, not just the plaintext).
    pub fn footprint(&self) -> usize {
        self.buffer.capacity()
    }
}

impl From<Vec<u8>> for Blob {
    fn from(buffer: Vec<u8>) -> Self {
        let range = 0..buffer.len();
        Blob { buffer, range }
    }
}

impl Deref for Blob {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.buffer.get(self.range.clone()).unwrap_or_default()
    }
}

/// A blob's plaintext, shared between the cache and readers.
pub type BlobData = Arc<Blob>;

/// A loaded blob ready for the cache.
fn blob_data((buffer, range): (Vec<u8>, Range<usize>)) -> cairn_core::Result<BlobData> {
    Blob::new(buffer, range)
        .map(Arc::new)
        .ok_or_else(|| cairn_core::Error::corrupt("data blob", "plaintext out of its buffer"))
}

/// One load in flight: its result once known.
#[derive(Default)]
struct Pending {
    result: Mutex<Option<FsResult<BlobData>>>,
    done: Condvar,
}

impl Pending {
    fn wait(&self) -> FsResult<BlobData> {
        let mut result = self.result.lock();
        loop {
            if let Some(r) = result.as_ref() {
                return r.clone();
            }
            self.done.wait(&mut result);
        }
    }
}

/// Decoded data blobs, at most `capacity` bytes of plaintext.
pub struct BlobCache {
    repo: Arc<Repository>,
    cache: Cache<BlobId, BlobData>,
    inflight: Mutex<HashMap<BlobId, Arc<Pending>>>,
}

/// Loads claimed by one thread. Whatever is not published by the time it
/// is dropped (a panic) is published as an error, so no waiter hangs.
struct Claim<'a> {
    cache: &'a BlobCache,
    ids: Vec<BlobId>,
}

impl Claim<'_> {
    fn publish(&mut self, id: &BlobId, result: FsResult<BlobData>) {
        if let Ok(data) = &result {
            // Into the cache before leaving the in-flight map, so a reader
            // always finds the blob in one of the two.
            self.cache.cache.insert(*id, data.clone());
        }
        let pending = self.cache.inflight.lock().remove(id);
        if let Some(p) = pending {
            *p.result.lock() = Some(result);
            p.done.notify_all();
        }
        self.ids.retain(|x| x != id);
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        for id in std::mem::take(&mut self.ids) {
            let err = cairn_core::Error::corrupt(format!("data blob {id}"), "its load was aborted");
            self.publish(&id, Err(err.into()));
        }
    }
}

impl BlobCache {
    /// A cache holding at most `capacity` bytes of blob data.
    pub fn new(repo: Arc<Repository>, capacity: u64) -> Self {
        BlobCache {
            repo,
            cache: lru(capacity, |v: &BlobData| v.footprint()),
            inflight: Mutex::new(HashMap::new()),
        }
    }

    /// The blob's plaintext, from the cache, from a load in flight, or
    /// loaded (and verified) now.
    pub fn get(&self, id: &BlobId) -> FsResult<BlobData> {
        if let Some(data) = self.cache.get(id) {
            return Ok(data);
        }
        let pending = {
            let mut inflight = self.inflight.lock();
            if let Some(data) = self.cache.get(id) {
                return Ok(data);
            }
            match inflight.get(id) {
                Some(p) => Some(p.clone()),
                None => {
                    inflight.insert(*id, Arc::default());
                    None
                }
            }
        };
        if let Some(p) = pending {
            return p.wait();
        }
        let mut claim = Claim {
            cache: self,
            ids: vec![*id],
        };
        let mut result = Err(cairn_core::Error::BlobNotInIndex(id.to_string()));
        self.repo
            .load_blobs_each(&[BlobHandle::new(BlobType::Data, *id)], |_, r| {
                result = r.and_then(blob_data);
            });
        let result = result
            .inspect_err(|e| log_blob_error(&self.repo, BlobType::Data, id, e))
            .map_err(FsError::from);
        claim.publish(id, result.clone());
        result
    }

    /// Load the blobs of `ids` that are neither cached nor in flight, with
    /// as few backend reads as possible (read-ahead). Errors are logged and
    /// left for readers to meet again.
    pub fn load_many(&self, ids: &[BlobId]) {
        let mut claim = Claim {
            cache: self,
            ids: Vec::with_capacity(ids.len()),
        };
        {
            let mut inflight = self.inflight.lock();
            for id in ids {
                if !self.cache.contains_key(id)
                    && !inflight.contains_key(id)
                    && !claim.ids.contains(id)
                {
                    inflight.insert(*id, Arc::default());
                    claim.ids.push(*id);
                }
            }
        }
        let handles: Vec<BlobHandle> = claim
            .ids
            .iter()
            .map(|id| BlobHandle::new(BlobType::Data, *id))
            .collect();
        if handles.is_empty() {
            return;
        }
        self.repo.load_blobs_each(&handles, |i, result| {
            let Some(handle) = handles.get(i) else { return };
            let result = result
                .and_then(blob_data)
                .inspect_err(|e| log_blob_error(&self.repo, BlobType::Data, &handle.id, e))
                .map_err(FsError::from);
            claim.publish(&handle.id, result);
        });
    }

    /// Drop blobs a streaming reader is done with: the kernel's page cache
    /// holds what was read, and the memory is better reused for the blobs
    /// read ahead than spent on blobs nobody is likely to ask for again.
    pub fn evict(&self, ids: &[BlobId]) {
        for id in ids {
            self.cache.invalidate(id);
        }
    }

    /// The blob's plaintext if it is cached; never loads it.
    pub fn peek(&self, id: &BlobId) -> Option<BlobData> {
        self.cache.get(id)
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

/// A cache of about `capacity` bytes, each value weighing `weight` bytes,
/// evicting the least recently used (see the module doc for why not
/// moka's default policy).
pub(crate) fn lru<K, V>(capacity: u64, weight: fn(&V) -> usize) -> Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    Cache::builder()
        .max_capacity(capacity)
        .weigher(move |_, v: &V| u32::try_from(weight(v)).unwrap_or(u32::MAX))
        .eviction_policy(EvictionPolicy::lru())
        .build()
}

/// Log a failed load naming the blob and the pack the index puts it in.
pub(crate) fn log_blob_error(
    repo: &Repository,
    tpe: BlobType,
    id: &BlobId,
    err: &cairn_core::Error,
) {
    match repo.lookup(&BlobHandle::new(tpe, *id)) {
        Some(entry) => log::error!("{tpe} blob {id} in pack {}: {err}", entry.pack),
        None => log::error!("{tpe} blob {id} (in no pack): {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::backend::MemBackend;
    use cairn_core::crypto::kdf::KdfParams;
    use cairn_core::repository::InitOptions;

    fn repo_with(blobs: &[Vec<u8>]) -> (Arc<Repository>, Vec<BlobId>) {
        let opts = InitOptions {
            kdf: KdfParams::insecure_fast(),
            ..InitOptions::default()
        };
        let repo = Repository::init(Arc::new(MemBackend::new()), b"pw", &opts).unwrap();
        let ids = blobs
            .iter()
            .map(|b| repo.save_blob(BlobType::Data, b).unwrap().0)
            .collect();
        repo.flush().unwrap();
        (Arc::new(repo), ids)
    }

    #[test]
    fn concurrent_gets_and_batches_agree_and_fill_the_cache() {
        let blobs: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 1000 + i as usize]).collect();
        let (repo, ids) = repo_with(&blobs);
        let cache = Arc::new(BlobCache::new(repo, 1 << 20));
        std::thread::scope(|s| {
            s.spawn(|| cache.load_many(&ids));
            s.spawn(|| cache.load_many(&ids[5..]));
            for (id, b) in ids.iter().zip(&blobs).rev() {
                assert_eq!(cache.get(id).unwrap()[..], b[..]);
            }
        });
        assert!(ids.iter().all(|id| cache.contains(id)));
        assert!(cache.inflight.lock().is_empty());
    }

    #[test]
    fn blobs_are_ranges_of_their_buffers() {
        let b = Blob::new(b"..abc..".to_vec(), 2..5).unwrap();
        assert_eq!(&*b, b"abc");
        assert!(b.footprint() >= 7);
        assert!(Blob::new(vec![1, 2, 3], 2..4).is_none());
        assert!(Blob::new(vec![1, 2, 3], 3..3).is_some());
        assert_eq!(&*Blob::from(vec![4, 5]), &[4, 5]);
    }

    #[test]
    fn evicted_blobs_load_again() {
        let blobs: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 500]).collect();
        let (repo, ids) = repo_with(&blobs);
        let cache = BlobCache::new(repo, 1 << 20);
        cache.load_many(&ids);
        cache.evict(&ids[..2]);
        assert!(!cache.contains(&ids[0]) && !cache.contains(&ids[1]));
        assert!(cache.contains(&ids[2]) && cache.contains(&ids[3]));
        assert_eq!(cache.get(&ids[1]).unwrap()[..], blobs[1][..]);
        assert!(cache.contains(&ids[1]));
    }

    #[test]
    fn failures_reach_waiters_and_are_not_cached() {
        let (repo, _) = repo_with(&[vec![1; 10]]);
        let cache = BlobCache::new(repo, 1 << 20);
        let missing = BlobId(cairn_core::Id::hash(b"missing"));
        cache.load_many(&[missing]);
        assert_eq!(cache.get(&missing).unwrap_err().errno(), libc::EIO);
        assert!(!cache.contains(&missing));
        assert!(cache.inflight.lock().is_empty());
        // A waiter gets the loader's result.
        let p = Arc::new(Pending::default());
        let waiter = {
            let p = p.clone();
            std::thread::spawn(move || p.wait())
        };
        *p.result.lock() = Some(Err(FsError::NotFound));
        p.done.notify_all();
        assert!(matches!(waiter.join().unwrap(), Err(FsError::NotFound)));
    }

    #[test]
    fn streaming_past_the_capacity_keeps_what_was_read_ahead() {
        // A file four times the cache, read as a mount reads it: each blob
        // loaded ahead, then read. Every blob read ahead must still be
        // there when the reader comes (an admission policy that favours
        // blobs read before would drop them, and the reader would load
        // each one a second time).
        let blobs: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 4096]).collect();
        let (repo, ids) = repo_with(&blobs);
        let cache = BlobCache::new(repo, 16 * 4096);
        for (i, id) in ids.iter().enumerate() {
            let ahead = &ids[i..(i + 4).min(ids.len())];
            cache.load_many(ahead);
            cache.weighted_size(); // run the eviction policy now
            assert!(ahead.iter().all(|id| cache.contains(id)), "blob {i}");
            assert_eq!(cache.get(id).unwrap()[..], blobs[i][..]);
        }
        assert!(cache.weighted_size() <= 16 * 4096);
    }
}
