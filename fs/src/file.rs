//! Open files: a file's content blobs laid end to end, read at any offset.
//!
//! An [`OpenFile`] knows the cumulative end offset of every blob (from the
//! index, so opening costs no I/O); a read binary-searches the first blob
//! and copies from as many blobs as the range covers. Blobs come from the
//! [`BlobCache`](crate::cache::BlobCache).
//!
//! Read-ahead: when reads are sequential, the blobs of the next window
//! (e.g. 32 MiB) are handed to a [`Prefetcher`], whose threads load them
//! into the cache in parallel, so a streaming reader finds them decoded.
//! Memory stays bounded by the cache and the window, never by file size.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use cairn_core::format::tree::Node;
use cairn_core::BlobId;
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use crate::cache::BlobCache;
use crate::error::{FsError, FsResult};

/// An open regular file.
#[derive(Debug)]
pub struct OpenFile {
    blobs: Vec<BlobId>,
    /// `ends[i]`: offset just past blob `i`.
    ends: Vec<u64>,
    /// Some blob's length is unknown (not in the index): reads fail.
    broken: bool,
    /// Where the last read ended (sequential-read detection).
    next_offset: AtomicU64,
    /// Blobs before this index were already handed to read-ahead.
    prefetched: AtomicUsize,
}

impl OpenFile {
    /// Lay out `node`'s content; `blob_len` gives a blob's plaintext length
    /// from the index. A single blob missing from the index gets the length
    /// the node's size leaves for it; with more missing, every read fails.
    pub fn new(node: &Node, blob_len: impl Fn(&BlobId) -> Option<u64>) -> Self {
        let blobs: Vec<BlobId> = node.content().to_vec();
        let lens: Vec<Option<u64>> = blobs.iter().map(blob_len).collect();
        let missing = lens.iter().filter(|l| l.is_none()).count();
        let known: u64 = lens.iter().flatten().sum();
        let fill = node.size.saturating_sub(known);
        let mut end = 0u64;
        let ends = lens
            .iter()
            .map(|l| {
                end = end.saturating_add(l.unwrap_or(fill));
                end
            })
            .collect();
        OpenFile {
            blobs,
            ends,
            broken: missing > 1,
            next_offset: AtomicU64::new(0),
            prefetched: AtomicUsize::new(0),
        }
    }

    /// Length of the content in bytes.
    pub fn len(&self) -> u64 {
        self.ends.last().copied().unwrap_or(0)
    }

    /// True for an empty file.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The blob containing byte `offset`.
    fn blob_at(&self, offset: u64) -> usize {
        self.ends.partition_point(|&end| end <= offset)
    }

    fn start_of(&self, idx: usize) -> u64 {
        if idx == 0 {
            0
        } else {
            self.ends[idx - 1]
        }
    }

    /// Read up to `size` bytes at `offset` (short at end of file), loading
    /// blobs with `fetch`.
    pub fn read(
        &self,
        offset: u64,
        size: u32,
        fetch: impl Fn(&BlobId) -> FsResult<Arc<[u8]>>,
    ) -> FsResult<Vec<u8>> {
        let end = offset.saturating_add(u64::from(size)).min(self.len());
        if offset >= end {
            return Ok(Vec::new());
        }
        if self.broken {
            return Err(cairn_core::Error::corrupt(
                "file content",
                "several of its blobs are missing from the index",
            )
            .into());
        }
        let mut out = Vec::with_capacity((end - offset) as usize);
        let mut idx = self.blob_at(offset);
        let mut pos = offset;
        while pos < end && idx < self.blobs.len() {
            let data = fetch(&self.blobs[idx])?;
            let start = self.start_of(idx);
            let expected = self.ends[idx] - start;
            if data.len() as u64 != expected {
                log::error!(
                    "data blob {} has {} bytes, the index says {expected}",
                    self.blobs[idx],
                    data.len()
                );
                return Err(FsError::Io(Arc::new(cairn_core::Error::corrupt(
                    format!("data blob {}", self.blobs[idx]),
                    "length differs from the index",
                ))));
            }
            let from = (pos - start) as usize;
            let to = (end.min(self.ends[idx]) - start) as usize;
            out.extend_from_slice(&data[from..to]);
            pos = start + to as u64;
            idx += 1;
        }
        self.next_offset.store(end, Ordering::Relaxed);
        Ok(out)
    }

    /// The blobs to read ahead after a read of `size` bytes at `offset`:
    /// for a sequential read (starting where the last one ended, or at 0),
    /// those up to `window` bytes past its end not handed out before.
    pub fn readahead(&self, offset: u64, size: u32, window: u64) -> Vec<BlobId> {
        let sequential = offset == 0 || offset == self.next_offset.load(Ordering::Relaxed);
        if !sequential || self.broken || window == 0 {
            return Vec::new();
        }
        let from = self.blob_at(offset);
        let until = offset
            .saturating_add(u64::from(size))
            .saturating_add(window);
        let to = self.blob_at(until.min(self.len().saturating_sub(1))) + 1;
        let range = self.claim(from..to.min(self.blobs.len()));
        self.blobs[range].to_vec()
    }

    /// Mark `want` as handed to read-ahead; returns the part not marked
    /// before. A jump backwards restarts the mark. Concurrent readers of one
    /// handle may race here; the worst case is a blob queued twice, which
    /// the prefetcher's queue ignores.
    fn claim(&self, want: Range<usize>) -> Range<usize> {
        let prev = self.prefetched.load(Ordering::Relaxed);
        let start = if (want.start..=want.end).contains(&prev) {
            prev
        } else {
            want.start
        };
        self.prefetched.store(want.end, Ordering::Relaxed);
        start..want.end
    }
}

/// Threads that load blobs into the cache ahead of readers.
pub struct Prefetcher {
    tx: Option<Sender<BlobId>>,
    queued: Arc<Mutex<HashSet<BlobId>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Prefetcher {
    /// Start `threads` workers filling `cache` (0: read-ahead disabled).
    pub fn new(cache: Arc<BlobCache>, threads: usize) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded::<BlobId>();
        let queued = Arc::new(Mutex::new(HashSet::new()));
        let threads = (0..threads)
            .filter_map(|i| {
                let (rx, cache, queued): (Receiver<BlobId>, _, _) =
                    (rx.clone(), cache.clone(), queued.clone());
                std::thread::Builder::new()
                    .name(format!("cairn-readahead-{i}"))
                    .spawn(move || {
                        for id in rx {
                            // Errors are logged by the cache; the reader
                            // retries and reports them.
                            let _ = cache.get(&id);
                            queued.lock().remove(&id);
                        }
                    })
                    .ok()
            })
            .collect::<Vec<_>>();
        Prefetcher {
            tx: (!threads.is_empty()).then_some(tx),
            queued,
            threads,
        }
    }

    /// Queue blobs not cached and not queued yet.
    pub fn fetch(&self, cache: &BlobCache, ids: &[BlobId]) {
        let Some(tx) = &self.tx else { return };
        let mut queued = self.queued.lock();
        for id in ids {
            if !cache.contains(id) && queued.insert(*id) && tx.send(*id).is_err() {
                queued.remove(id);
            }
        }
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        self.tx = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::format::tree::NodeType;
    use cairn_core::Id;
    use std::collections::HashMap;

    fn setup(sizes: &[usize]) -> (Node, HashMap<BlobId, Arc<[u8]>>, Vec<u8>) {
        let mut node = Node::new("f", NodeType::File);
        let mut blobs = HashMap::new();
        let mut all = Vec::new();
        let mut ids = Vec::new();
        for (i, &s) in sizes.iter().enumerate() {
            let data: Vec<u8> = (0..s).map(|j| (i * 31 + j * 7) as u8).collect();
            let id = BlobId(Id::hash(&data));
            all.extend_from_slice(&data);
            blobs.insert(id, Arc::from(data));
            ids.push(id);
        }
        node.content = Some(ids);
        node.size = all.len() as u64;
        (node, blobs, all)
    }

    #[test]
    fn reads_at_arbitrary_offsets_across_blob_boundaries() {
        let (node, blobs, all) = setup(&[10, 1, 0, 25, 7]);
        let f = OpenFile::new(&node, |id| blobs.get(id).map(|b| b.len() as u64));
        assert_eq!(f.len(), 43);
        let fetch = |id: &BlobId| Ok(blobs[id].clone());
        for off in 0..=45u64 {
            for len in [0u32, 1, 3, 9, 10, 11, 26, 43, 100] {
                let got = f.read(off, len, fetch).unwrap();
                let s = (off as usize).min(all.len());
                let e = (off as usize + len as usize).min(all.len());
                assert_eq!(got, all[s..e], "off {off} len {len}");
            }
        }
    }

    #[test]
    fn missing_blobs_and_bad_lengths_are_errors() {
        let (node, blobs, _) = setup(&[10, 20, 30]);
        let ids = node.content().to_vec();
        // One blob unknown to the index: its length is inferred from size.
        let f = OpenFile::new(&node, |id| (id != &ids[1]).then(|| blobs[id].len() as u64));
        assert_eq!(f.len(), 60);
        let fetch_missing = |id: &BlobId| {
            if id == &ids[1] {
                Err(cairn_core::Error::BlobNotInIndex(id.to_string()).into())
            } else {
                Ok(blobs[id].clone())
            }
        };
        assert_eq!(f.read(0, 10, fetch_missing).unwrap().len(), 10);
        assert_eq!(f.read(35, 5, fetch_missing).unwrap().len(), 5);
        assert_eq!(f.read(5, 10, fetch_missing).unwrap_err().errno(), libc::EIO);
        // Two unknown: every read fails, none panics.
        let g = OpenFile::new(&node, |id| (id == &ids[0]).then_some(10));
        assert!(g.read(0, 5, |id| Ok(blobs[id].clone())).is_err());
        // A blob whose length differs from the index is EIO.
        let h = OpenFile::new(&node, |id| Some(blobs[id].len() as u64 + 1));
        assert!(h.read(0, 5, |id| Ok(blobs[id].clone())).is_err());
    }

    #[test]
    fn readahead_only_when_sequential_and_once() {
        let (node, blobs, _) = setup(&[100; 10]);
        let ids = node.content().to_vec();
        let f = OpenFile::new(&node, |id| blobs.get(id).map(|b| b.len() as u64));
        let fetch = |id: &BlobId| Ok(blobs[id].clone());
        assert_eq!(f.readahead(0, 50, 250), ids[0..4]);
        f.read(0, 50, fetch).unwrap();
        assert_eq!(f.readahead(50, 100, 250), ids[4..5], "only new blobs");
        f.read(50, 100, fetch).unwrap();
        assert!(
            f.readahead(700, 10, 250).is_empty(),
            "random read: no read-ahead"
        );
        assert_eq!(f.readahead(150, 10, 10_000), ids[5..10]);
    }
}
