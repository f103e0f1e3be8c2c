//! Pack assembly for [`Repository::save_blob`](super::Repository::save_blob).
//!
//! Data and tree blobs go into separate packs, as restic does, so that tree
//! packs stay small and cacheable. A pack is handed back to the repository to
//! be written once it reaches the target size; until it is written, its blobs
//! are "pending": deduplicated against, but not yet in the index.
//!
//! Several threads save blobs at once, and the thread whose blob fills a
//! pack writes it outside the packer's lock. Every pack handed out gets a
//! sequence number and stays *in flight* until
//! [`Packer::pack_written`] or [`Packer::pack_failed`]; a flush waits (on
//! [`Packer::written_signal`]) until every pack sealed before it is out of
//! flight, so the index files it writes list every blob saved before it
//! started. Invariants: a blob is pending from [`Packer::add`] until its
//! pack is written (then it is in the index) or failed (then it is
//! forgotten); a sequence number is in `in_flight` exactly while its pack is
//! handed out and not yet reported back.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use parking_lot::Condvar;

use crate::blob::{BlobHandle, BlobType};
use crate::crypto::MasterKey;
use crate::error::Result;
use crate::format::index::IndexFile;
use crate::id::PackId;
use crate::index::IndexBuilder;
use crate::pack::{FinishedPack, PackBlob, PackWriter};

/// restic's default target pack size (16 MiB).
pub const DEFAULT_PACK_SIZE: usize = 16 << 20;

/// A full pack, ready to be sealed (header appended) and written.
pub struct SealedPack {
    writer: PackWriter,
    seq: u64,
}

impl SealedPack {
    /// Append the encrypted header and compute the pack id.
    pub fn finish(self, key: &MasterKey) -> FinishedPack {
        self.writer.finish(key)
    }

    /// The pack's sequence number (see the module docs).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The blobs in the pack.
    #[cfg(test)]
    pub fn blobs(&self) -> &[PackBlob] {
        self.writer.blobs()
    }
}

/// Open packs and the record of packs written since the last index flush.
pub struct Packer {
    data: PackWriter,
    tree: PackWriter,
    pending: HashSet<BlobHandle>,
    pack_size: usize,
    written: IndexBuilder,
    /// Sequence number of the next sealed pack.
    next_seq: u64,
    /// Sealed packs not yet written (or failed).
    in_flight: BTreeSet<u64>,
    /// Notified whenever a pack leaves `in_flight`.
    signal: Arc<Condvar>,
}

impl Default for Packer {
    fn default() -> Self {
        Packer {
            data: PackWriter::new(),
            tree: PackWriter::new(),
            pending: HashSet::new(),
            pack_size: DEFAULT_PACK_SIZE,
            written: IndexBuilder::new(),
            next_seq: 0,
            in_flight: BTreeSet::new(),
            signal: Arc::new(Condvar::new()),
        }
    }
}

impl Packer {
    pub fn set_pack_size(&mut self, bytes: usize) {
        self.pack_size = bytes.max(1);
    }

    /// True if the blob sits in a pack that is not written yet.
    pub fn has_pending(&self, handle: &BlobHandle) -> bool {
        self.pending.contains(handle)
    }

    /// Add an encrypted blob; returns a pack to write if one became full.
    pub fn add(
        &mut self,
        handle: BlobHandle,
        encrypted: &[u8],
        uncompressed_length: Option<u32>,
    ) -> Result<Option<SealedPack>> {
        let writer = match handle.tpe {
            BlobType::Data => &mut self.data,
            BlobType::Tree => &mut self.tree,
        };
        if writer.is_empty() && handle.tpe == BlobType::Data {
            // One allocation per data pack instead of repeated doubling:
            // room for the target size, one more chunk (at most 8 MiB) and
            // the header. Pages never written are never resident.
            *writer = PackWriter::with_capacity(self.pack_size + (9 << 20));
        }
        writer.add(handle.tpe, handle.id, encrypted, uncompressed_length)?;
        self.pending.insert(handle);
        if writer.size() < self.pack_size {
            return Ok(None);
        }
        let writer = std::mem::replace(writer, PackWriter::new());
        Ok(Some(self.seal(writer)))
    }

    /// Take every non-empty open pack.
    pub fn take_all(&mut self) -> Vec<SealedPack> {
        let mut out = Vec::new();
        for tpe in [BlobType::Data, BlobType::Tree] {
            let writer = match tpe {
                BlobType::Data => &mut self.data,
                BlobType::Tree => &mut self.tree,
            };
            if !writer.is_empty() {
                let writer = std::mem::replace(writer, PackWriter::new());
                out.push(self.seal(writer));
            }
        }
        out
    }

    fn seal(&mut self, writer: PackWriter) -> SealedPack {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.in_flight.insert(seq);
        SealedPack { writer, seq }
    }

    /// The sequence number the next sealed pack will get: every pack sealed
    /// so far has a smaller one.
    pub fn horizon(&self) -> u64 {
        self.next_seq
    }

    /// True while some pack sealed before `horizon` is still in flight.
    pub fn in_flight_before(&self, horizon: u64) -> bool {
        self.in_flight.first().is_some_and(|&seq| seq < horizon)
    }

    /// The condition variable notified when a pack leaves flight; wait on it
    /// with the guard of the mutex holding this packer.
    pub fn written_signal(&self) -> Arc<Condvar> {
        self.signal.clone()
    }

    /// Record a written pack: its blobs are no longer pending, and it will be
    /// listed by the next index file.
    pub fn pack_written(&mut self, seq: u64, id: PackId, blobs: &[PackBlob]) {
        for b in blobs {
            self.pending.remove(&BlobHandle::new(b.tpe, b.id));
        }
        self.written.add_pack(id, blobs);
        self.in_flight.remove(&seq);
        self.signal.notify_all();
    }

    /// Record a pack that could not be written: its blobs are forgotten, so
    /// a later save stores them again.
    pub fn pack_failed(&mut self, seq: u64, blobs: &[PackBlob]) {
        for b in blobs {
            self.pending.remove(&BlobHandle::new(b.tpe, b.id));
        }
        self.in_flight.remove(&seq);
        self.signal.notify_all();
    }

    /// The index files for every pack written since the last call.
    pub fn take_index_files(&mut self) -> Vec<IndexFile> {
        std::mem::take(&mut self.written).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{BlobId, Id};

    #[test]
    fn sealed_packs_stay_in_flight_until_reported() {
        let mut p = Packer::default();
        p.set_pack_size(100);
        let h = |n: u8| BlobHandle::new(BlobType::Data, BlobId(Id::hash(&[n])));
        assert!(p.add(h(1), &[0u8; 60], None).unwrap().is_none());
        let full = p.add(h(2), &[0u8; 60], None).unwrap().expect("full pack");
        assert_eq!(full.seq(), 0);
        assert!(p.has_pending(&h(1)) && p.has_pending(&h(2)));
        assert!(p.add(h(3), &[0u8; 40], None).unwrap().is_none());
        let rest = p.take_all();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].seq(), 1);
        assert_eq!(p.horizon(), 2);
        assert!(p.in_flight_before(1) && p.in_flight_before(2));

        let blobs = full.blobs().to_vec();
        p.pack_failed(full.seq(), &blobs);
        assert!(!p.has_pending(&h(1)), "a failed pack's blobs are forgotten");
        assert!(!p.in_flight_before(1) && p.in_flight_before(2));
        let blobs = rest[0].blobs().to_vec();
        p.pack_written(1, PackId(Id::hash(b"p")), &blobs);
        assert!(!p.in_flight_before(2) && !p.has_pending(&h(3)));
        assert_eq!(p.take_index_files().len(), 1);
    }
}
