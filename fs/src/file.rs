//! Open files: a file's content blobs laid end to end, read at any offset.
//!
//! An [`OpenFile`] knows the cumulative end offset of every blob (from the
//! index, so opening costs no I/O); a read binary-searches the first blob
//! and hands back the cached blobs it spans with the range of each
//! ([`ReadData`], no copy): the FUSE adapter replies straight from one
//! blob, or gathers several into a reused per-thread buffer.
//!
//! Read-ahead: while reads stream forward (each starts near the furthest
//! point read so far; the kernel's own read-ahead sends several requests at
//! once, so they may arrive out of order), the blobs up to `window` bytes
//! past the read are handed to a [`Prefetcher`](crate::prefetch::Prefetcher) in jobs of about
//! [`JOB_BYTES`]; its threads load each job with batched pack reads into
//! the cache. The frontier advances in whole jobs, so neighbouring blobs of
//! a pack are fetched with one request. The blobs a read itself needs are
//! never queued: the reader loads them (or waits for the load in flight).
//!
//! Drop-behind: the blobs a stream has left [`DROP_BEHIND`] bytes behind
//! are dropped from the cache (unless the file needs them again soon): the
//! kernel's page cache holds what was read, so a big file streaming
//! through keeps about the window plus that slack of blobs in memory, and
//! the allocator reuses the same (already mapped) memory for the next
//! blobs. Memory stays bounded by the cache and the window, never by file
//! size.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::Arc;

use cairn_core::format::tree::Node;
use cairn_core::BlobId;
use parking_lot::Mutex;

use crate::cache::BlobData;
use crate::error::{FsError, FsResult};

/// Target size of one read-ahead job (one batched load).
pub const JOB_BYTES: u64 = 4 << 20;

/// A read starting at most this far past the furthest byte read so far
/// still counts as streaming.
const STREAM_SLACK: u64 = 8 << 20;

/// A streaming reader's blobs this far behind the furthest byte read are
/// dropped from the cache (far more than the kernel's read-ahead keeps in
/// flight, so late requests still find their blobs).
pub const DROP_BEHIND: u64 = 16 << 20;

/// What a read asks of the cache besides its own blobs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Ahead {
    /// Read-ahead jobs, in order.
    pub jobs: Vec<Vec<BlobId>>,
    /// Blobs the stream is done with.
    pub behind: Vec<BlobId>,
}

/// The bytes of one read: ranges of cached blobs, in order. Invariant:
/// every range is in bounds of its blob.
#[derive(Debug, Default)]
pub struct ReadData {
    parts: Vec<(BlobData, Range<usize>)>,
}

impl ReadData {
    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.parts.iter().map(|(_, r)| r.len()).sum()
    }

    /// True if there is nothing (at or past the end of the file).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pieces, in order.
    pub fn slices(&self) -> impl Iterator<Item = &[u8]> {
        self.parts.iter().map(|(blob, r)| &blob[r.clone()])
    }

    /// The bytes as one slice, if they lie in at most one blob.
    pub fn contiguous(&self) -> Option<&[u8]> {
        match self.parts.as_slice() {
            [] => Some(&[]),
            [(blob, r)] => Some(&blob[r.clone()]),
            _ => None,
        }
    }

    /// Append the bytes to `out`.
    pub fn copy_into(&self, out: &mut Vec<u8>) {
        out.reserve(self.len());
        for s in self.slices() {
            out.extend_from_slice(s);
        }
    }

    /// The bytes in a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.copy_into(&mut out);
        out
    }

    /// The blobs the bytes come from (for tests: no copy was made).
    pub fn blobs(&self) -> impl Iterator<Item = &BlobData> {
        self.parts.iter().map(|(blob, _)| blob)
    }
}

/// Read-ahead bookkeeping of one file.
#[derive(Debug, Default)]
struct Stream {
    /// The furthest byte read so far.
    high: u64,
    /// Blobs before this index were handed to read-ahead.
    frontier: usize,
    /// Blobs before this index were dropped behind the stream.
    behind: usize,
}

/// An open regular file.
#[derive(Debug)]
pub struct OpenFile {
    blobs: Vec<BlobId>,
    /// `ends[i]`: offset just past blob `i`.
    ends: Vec<u64>,
    /// Some blob's length is unknown (not in the index): reads fail.
    broken: bool,
    stream: Mutex<Stream>,
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
            stream: Mutex::new(Stream::default()),
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

    /// The blob containing byte `offset` (`blobs.len()` past the end).
    fn blob_at(&self, offset: u64) -> usize {
        self.ends.partition_point(|&end| end <= offset)
    }

    fn start_of(&self, idx: usize) -> u64 {
        match idx.checked_sub(1) {
            Some(prev) => self.ends.get(prev).copied().unwrap_or(0),
            None => 0,
        }
    }

    /// Blob `idx` from `fetch`, checked against the length the index gives.
    fn blob(
        &self,
        idx: usize,
        fetch: &impl Fn(&BlobId) -> FsResult<BlobData>,
    ) -> FsResult<(BlobData, u64)> {
        let (Some(id), Some(&end)) = (self.blobs.get(idx), self.ends.get(idx)) else {
            return Err(
                cairn_core::Error::corrupt("file content", "read past the last blob").into(),
            );
        };
        let data = fetch(id)?;
        let start = self.start_of(idx);
        let expected = end - start;
        if data.len() as u64 != expected {
            log::error!(
                "data blob {id} has {} bytes, the index says {expected}",
                data.len()
            );
            return Err(FsError::Io(Arc::new(cairn_core::Error::corrupt(
                format!("data blob {id}"),
                "length differs from the index",
            ))));
        }
        Ok((data, start))
    }

    /// Read up to `size` bytes at `offset` (short at end of file), loading
    /// blobs with `fetch`.
    pub fn read(
        &self,
        offset: u64,
        size: u32,
        fetch: impl Fn(&BlobId) -> FsResult<BlobData>,
    ) -> FsResult<ReadData> {
        let end = offset.saturating_add(u64::from(size)).min(self.len());
        if offset >= end {
            return Ok(ReadData::default());
        }
        if self.broken {
            return Err(cairn_core::Error::corrupt(
                "file content",
                "several of its blobs are missing from the index",
            )
            .into());
        }
        let mut parts = Vec::with_capacity(2);
        let mut pos = offset;
        let mut idx = self.blob_at(offset);
        while pos < end && idx < self.blobs.len() {
            let (blob, start) = self.blob(idx, &fetch)?;
            // In bounds: the blob spans [start, ends[idx]) ∋ pos, and its
            // length was checked against the index.
            let from = (pos - start) as usize;
            let to = (end.min(start + blob.len() as u64) - start) as usize;
            if to > from {
                parts.push((blob, from..to));
            }
            pos = start + to as u64;
            idx += 1;
        }
        Ok(ReadData { parts })
    }

    /// The read-ahead jobs after a read of `size` bytes at `offset`: if the
    /// reader is streaming, the blobs after the ones this read needs, up to
    /// `window` bytes past it, not handed out before, in jobs of about
    /// [`JOB_BYTES`]. The frontier moves only by at least a job (or to the
    /// end of the file), so jobs cover neighbouring blobs. Also the blobs
    /// the stream has left [`DROP_BEHIND`] bytes behind, except those the
    /// file needs again up to the frontier.
    pub fn readahead(&self, offset: u64, size: u32, window: u64) -> Ahead {
        let end = offset.saturating_add(u64::from(size)).min(self.len());
        if self.broken || window == 0 || offset >= end {
            return Ahead::default();
        }
        let mut st = self.stream.lock();
        let streaming = offset <= st.high.saturating_add(STREAM_SLACK)
            && offset.saturating_add(window) >= st.high;
        st.high = st.high.max(end);
        if !streaming {
            return Ahead::default();
        }
        let behind = self.behind(&mut st);
        let next = self.blob_at(end - 1) + 1;
        let to = (self.blob_at(end.saturating_add(window).min(self.len()) - 1) + 1)
            .min(self.blobs.len());
        let from = if (next..=to).contains(&st.frontier) {
            st.frontier
        } else {
            next
        };
        if from >= to {
            return Ahead {
                jobs: Vec::new(),
                behind,
            };
        }
        let bytes = self.ends[to - 1] - self.start_of(from);
        if bytes < JOB_BYTES && to < self.blobs.len() && from > next {
            // Enough is in flight ahead of the reader: wait for a full job.
            return Ahead {
                jobs: Vec::new(),
                behind,
            };
        }
        st.frontier = to;
        drop(st);
        let mut jobs = Vec::new();
        let mut job = Vec::new();
        let mut job_start = self.start_of(from);
        for idx in from..to {
            job.push(self.blobs[idx]);
            if self.ends[idx] - job_start >= JOB_BYTES {
                jobs.push(std::mem::take(&mut job));
                job_start = self.ends[idx];
            }
        }
        if !job.is_empty() {
            jobs.push(job);
        }
        Ahead { jobs, behind }
    }

    /// The blobs newly [`DROP_BEHIND`] bytes behind the stream, minus
    /// those the file has again between there and the frontier (a file of
    /// repeated blobs, such as zeros, keeps its blob).
    fn behind(&self, st: &mut Stream) -> Vec<BlobId> {
        let keep = self.blob_at(st.high.saturating_sub(DROP_BEHIND));
        if keep <= st.behind {
            return Vec::new();
        }
        let from = std::mem::replace(&mut st.behind, keep);
        let upto = st.frontier.clamp(keep, self.blobs.len());
        let again: HashSet<&BlobId> = self.blobs[keep..upto].iter().collect();
        let mut gone: Vec<BlobId> = self.blobs[from..keep]
            .iter()
            .filter(|id| !again.contains(id))
            .copied()
            .collect();
        gone.sort_unstable();
        gone.dedup();
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Blob;
    use cairn_core::format::tree::NodeType;
    use cairn_core::Id;
    use std::collections::HashMap;

    fn setup(sizes: &[usize]) -> (Node, HashMap<BlobId, BlobData>, Vec<u8>) {
        let mut node = Node::new("f", NodeType::File);
        let mut blobs = HashMap::new();
        let mut all = Vec::new();
        let mut ids = Vec::new();
        for (i, &s) in sizes.iter().enumerate() {
            let data: Vec<u8> = (0..s).map(|j| (i * 31 + j * 7) as u8).collect();
            let id = BlobId(Id::hash(&data));
            all.extend_from_slice(&data);
            blobs.insert(id, Arc::new(Blob::from(data)));
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
                let got = f.read(off, len, fetch).unwrap().to_vec();
                let s = (off as usize).min(all.len());
                let e = (off as usize + len as usize).min(all.len());
                assert_eq!(got, all[s..e], "off {off} len {len}");
            }
        }
    }

    #[test]
    fn reads_are_not_copied() {
        let (node, blobs, all) = setup(&[100, 100]);
        let f = OpenFile::new(&node, |id| blobs.get(id).map(|b| b.len() as u64));
        let fetch = |id: &BlobId| Ok(blobs[id].clone());
        let inside = f.read(110, 50, fetch).unwrap();
        assert_eq!(inside.contiguous(), Some(&all[110..160]));
        let second = &blobs[&node.content()[1]];
        assert!(inside.blobs().all(|b| Arc::ptr_eq(b, second)));
        let across = f.read(90, 20, fetch).unwrap();
        assert_eq!(across.contiguous(), None);
        assert_eq!(
            across.slices().collect::<Vec<_>>(),
            [&all[90..100], &all[100..110]]
        );
        assert_eq!(across.to_vec(), all[90..110]);
        let mut buf = b"x".to_vec();
        across.copy_into(&mut buf);
        assert_eq!(buf[1..], all[90..110]);
        assert!(f.read(200, 20, fetch).unwrap().is_empty());
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
        assert!(h.read(12, 30, |id| Ok(blobs[id].clone())).is_err());
    }

    /// A file of `n` blobs of 1 MiB each (lengths only; no reads).
    fn mib_blobs(n: usize) -> (OpenFile, Vec<BlobId>) {
        let ids: Vec<BlobId> = (0..n).map(|i| BlobId(Id::hash(&i.to_le_bytes()))).collect();
        let mut node = Node::new("f", NodeType::File);
        node.content = Some(ids.clone());
        node.size = n as u64 * MIB;
        (OpenFile::new(&node, |_| Some(MIB)), ids)
    }

    const MIB: u64 = 1 << 20;

    impl OpenFile {
        fn readahead_jobs(&self, offset: u64, size: u32, window: u64) -> Vec<Vec<BlobId>> {
            self.readahead(offset, size, window).jobs
        }
    }

    /// Stream through `f` in 1 MiB reads; every blob reported behind, in
    /// the order reported, checked to be [`DROP_BEHIND`] behind the read.
    fn stream_behind(f: &OpenFile) -> Vec<BlobId> {
        let mut behind = Vec::new();
        for off in (0..f.len()).step_by(MIB as usize) {
            let ahead = f.readahead(off, MIB as u32, 16 * MIB);
            for id in &ahead.behind {
                let last = f.blobs.iter().rposition(|b| b == id).unwrap();
                let first = f.blobs.iter().position(|b| b == id).unwrap();
                assert!(f.ends[last] + DROP_BEHIND <= off + MIB, "{first} at {off}");
            }
            behind.extend(ahead.behind);
        }
        behind
    }

    #[test]
    fn streaming_drops_what_it_left_behind() {
        let (f, ids) = mib_blobs(64);
        // Each blob once, as soon as it is DROP_BEHIND behind the stream.
        let behind = stream_behind(&f);
        assert_eq!(behind, ids[..64 - (DROP_BEHIND / MIB) as usize]);
        // Reads that do not stream drop nothing.
        let (g, _) = mib_blobs(64);
        assert!(g.readahead(40 * MIB, 4096, 16 * MIB).behind.is_empty());
        assert!(g.readahead(60 * MIB, 4096, 16 * MIB).behind.is_empty());
        // Nor does a disabled read-ahead.
        let (h, _) = mib_blobs(64);
        for off in (0..64).map(|i| i * MIB) {
            assert!(h.readahead(off, MIB as u32, 0).behind.is_empty());
        }
    }

    #[test]
    fn a_blob_the_file_needs_again_is_kept() {
        // Every other blob is the same (a file with runs of zeros).
        let (f, _) = mib_blobs(64);
        let zero = BlobId(Id::hash(b"zeros"));
        let ids: Vec<BlobId> = f
            .blobs
            .iter()
            .enumerate()
            .map(|(i, id)| if i % 2 == 1 { zero } else { *id })
            .collect();
        let mut node = Node::new("f", NodeType::File);
        node.content = Some(ids.clone());
        node.size = 64 * MIB;
        let f = OpenFile::new(&node, |_| Some(MIB));
        let behind = stream_behind(&f);
        assert!(!behind.contains(&zero));
        let evens: Vec<BlobId> = ids[..48].iter().step_by(2).copied().collect();
        assert_eq!(behind, evens);
    }

    #[test]
    fn readahead_in_jobs_while_streaming() {
        let (f, ids) = mib_blobs(64);
        // The first read: the blobs after it, 16 MiB ahead, in 4 MiB jobs.
        let jobs = f.readahead_jobs(0, MIB as u32, 16 * MIB);
        assert_eq!(jobs.len(), 4);
        assert!(jobs.iter().all(|j| j.len() == 4));
        assert_eq!(jobs.concat(), ids[1..17]);
        // The next reads add less than a job: nothing yet.
        assert!(f.readahead_jobs(MIB, MIB as u32, 16 * MIB).is_empty());
        assert!(f.readahead_jobs(2 * MIB, MIB as u32, 16 * MIB).is_empty());
        // A request arriving late still counts as streaming.
        assert!(f.readahead_jobs(MIB / 2, MIB as u32, 16 * MIB).is_empty());
        // Once a full job is due, it goes out.
        assert!(f.readahead_jobs(3 * MIB, MIB as u32, 16 * MIB).is_empty());
        assert_eq!(
            f.readahead_jobs(4 * MIB, MIB as u32, 16 * MIB).concat(),
            ids[17..21]
        );
        // A random jump far ahead is not streaming.
        assert!(f.readahead_jobs(50 * MIB, 4096, 16 * MIB).is_empty());
        // Near the end, the rest goes out even if less than a job.
        let (g, ids) = mib_blobs(6);
        assert_eq!(
            g.readahead_jobs(0, MIB as u32, 16 * MIB).concat(),
            ids[1..6]
        );
        assert!(g.readahead_jobs(MIB, MIB as u32, 16 * MIB).is_empty());
        assert!(
            g.readahead_jobs(5 * MIB, MIB as u32, 16 * MIB).is_empty(),
            "nothing left"
        );
        // Disabled, or a one-blob file: nothing.
        assert!(mib_blobs(8).0.readahead_jobs(0, 4096, 0).is_empty());
        assert!(mib_blobs(1).0.readahead_jobs(0, 4096, 16 * MIB).is_empty());
    }
}
