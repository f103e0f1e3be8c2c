//! Pack assembly for [`Repository::save_blob`](super::Repository::save_blob).
//!
//! Data and tree blobs go into separate packs, as restic does, so that tree
//! packs stay small and cacheable. Packs are streamed to the backend as they
//! fill ([`PackUpload`]: the local backend writes each blob straight into the
//! pack's temporary file, hashing it on the way), so an open pack costs a
//! file and a small buffer, not its size in memory. Until a pack is written,
//! its blobs are "pending": deduplicated against, but not yet in the index.
//!
//! Several threads save blobs at once. Each takes an *open pack* out of the
//! packer to append its blob (outside the packer's lock: the write and the
//! pack hash run in parallel on different packs), then gives it back; a
//! thread that finds no idle open pack of the blob's type starts a new one,
//! so there are at most as many open packs per type as threads saving at
//! once. The thread that fills a pack (to the target size, or to the most
//! entries a header holds) seals and writes it.
//!
//! Flushing: every pack carries the *generation* it was opened in, and
//! `unwritten` counts the packs of each generation not yet written or
//! failed (idle, held by a saving thread, or being written). A flush
//! ([`Packer::start_flush`]) starts a new generation and seals the idle
//! packs; a pack of an older generation held by a thread is sealed when it
//! is given back. The flush then waits (on [`Packer::written_signal`]) until
//! no pack of its generation or older is unwritten, so the index files it
//! writes list every blob saved before it started.
//!
//! Invariants: a blob is pending from [`Packer::reserve`] until its pack is
//! written (then it is in the index) or fails (then it is forgotten, and a
//! later save stores it again); a pack is counted in `unwritten` from its
//! reservation until [`Packer::pack_written`] or [`Packer::pack_failed`].

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use parking_lot::Condvar;

use crate::blob::{BlobHandle, BlobType};
use crate::crypto::MasterKey;
use crate::error::Result;
use crate::format::index::IndexFile;
use crate::id::PackId;
use crate::index::IndexBuilder;
use crate::pack::{PackBlob, PackUpload, PackWriter, MAX_HEADER_ENTRIES};

/// restic's default target pack size (16 MiB).
pub const DEFAULT_PACK_SIZE: usize = 16 << 20;

/// A pack being filled, streamed to its upload.
pub struct OpenPack {
    writer: PackWriter<PackUpload>,
    tpe: BlobType,
    generation: u64,
}

impl OpenPack {
    /// A new, empty pack for blobs of type `tpe`, in the generation
    /// [`Reserved::New`] gave.
    pub fn new(upload: PackUpload, tpe: BlobType, generation: u64) -> Self {
        OpenPack {
            writer: PackWriter::with_sink(upload),
            tpe,
            generation,
        }
    }

    /// Append an encrypted blob. On error the pack must be abandoned
    /// ([`Packer::abandon`]).
    pub fn add(
        &mut self,
        handle: BlobHandle,
        encrypted: &[u8],
        uncompressed_length: Option<u32>,
    ) -> Result<()> {
        debug_assert_eq!(handle.tpe, self.tpe);
        self.writer
            .add(handle.tpe, handle.id, encrypted, uncompressed_length)
    }
}

/// A full pack (or one a flush needs), to be finished and committed.
pub struct SealedPack {
    writer: PackWriter<PackUpload>,
    generation: u64,
}

impl SealedPack {
    /// Append the header and store the pack under its id. Returns the
    /// pack's generation and blobs (for [`Packer::pack_written`] or
    /// [`Packer::pack_failed`]) and the id, or why it could not be stored.
    pub fn write(self, key: &MasterKey) -> (u64, Vec<PackBlob>, Result<PackId>) {
        let (blobs, sink) = self.writer.finish_into(key);
        (self.generation, blobs, sink.and_then(PackUpload::commit))
    }
}

/// What [`Packer::reserve`] gives a thread about to store a blob.
pub enum Reserved {
    /// The blob is pending already (in a pack not written yet).
    Pending,
    /// An idle open pack of the blob's type, now held by the caller.
    Open(OpenPack),
    /// No idle pack: the caller starts one ([`OpenPack::new`]) in this
    /// generation, or reports failing to ([`Packer::open_failed`]).
    New(u64),
}

/// Open packs, pending blobs, and the packs written since the last index
/// flush.
pub struct Packer {
    /// Open packs no thread holds.
    idle: Vec<OpenPack>,
    pending: HashSet<BlobHandle>,
    pack_size: usize,
    written: IndexBuilder,
    /// The generation packs opened now belong to.
    generation: u64,
    /// Packs not yet written or failed, counted by generation.
    unwritten: BTreeMap<u64, usize>,
    /// Notified whenever a pack is written or fails.
    signal: Arc<Condvar>,
}

impl Default for Packer {
    fn default() -> Self {
        Packer {
            idle: Vec::new(),
            pending: HashSet::new(),
            pack_size: DEFAULT_PACK_SIZE,
            written: IndexBuilder::new(),
            generation: 0,
            unwritten: BTreeMap::new(),
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

    /// Claim the right to store `handle`: it becomes pending, and the caller
    /// gets a pack to append it to, which it must give back
    /// ([`give_back`](Self::give_back)) or abandon.
    pub fn reserve(&mut self, handle: BlobHandle) -> Reserved {
        if !self.pending.insert(handle) {
            return Reserved::Pending;
        }
        match self.idle.iter().rposition(|p| p.tpe == handle.tpe) {
            Some(i) => Reserved::Open(self.idle.swap_remove(i)),
            None => {
                *self.unwritten.entry(self.generation).or_default() += 1;
                Reserved::New(self.generation)
            }
        }
    }

    /// Take back a pack after appending to it; returns it sealed if it must
    /// be written now (full, or older than a flush).
    pub fn give_back(&mut self, pack: OpenPack) -> Option<SealedPack> {
        let w = &pack.writer;
        let full = w.size() >= self.pack_size || w.count() >= MAX_HEADER_ENTRIES;
        if full || pack.generation < self.generation {
            return Some(SealedPack {
                writer: pack.writer,
                generation: pack.generation,
            });
        }
        self.idle.push(pack);
        None
    }

    /// Drop a pack an append failed on, with `handle` (the blob that was
    /// being appended): their blobs are forgotten.
    pub fn abandon(&mut self, pack: OpenPack, handle: BlobHandle) {
        self.pending.remove(&handle);
        self.settle(pack.generation, pack.writer.blobs());
    }

    /// Start a flush: a new generation begins, and the idle packs are
    /// returned sealed. Returns them and the generation to wait for
    /// ([`unwritten_through`](Self::unwritten_through)).
    pub fn start_flush(&mut self) -> (Vec<SealedPack>, u64) {
        let generation = self.generation;
        self.generation += 1;
        let sealed = self
            .idle
            .drain(..)
            .map(|pack| SealedPack {
                writer: pack.writer,
                generation: pack.generation,
            })
            .collect();
        (sealed, generation)
    }

    /// True while a pack of `generation` or older is not written yet.
    pub fn unwritten_through(&self, generation: u64) -> bool {
        self.unwritten
            .first_key_value()
            .is_some_and(|(&g, _)| g <= generation)
    }

    /// The condition variable notified when a pack is written or fails;
    /// wait on it with the guard of the mutex holding this packer.
    pub fn written_signal(&self) -> Arc<Condvar> {
        self.signal.clone()
    }

    /// Record a written pack: its blobs are no longer pending, and it will be
    /// listed by the next index file.
    pub fn pack_written(&mut self, generation: u64, id: PackId, blobs: &[PackBlob]) {
        self.written.add_pack(id, blobs);
        self.settle(generation, blobs);
    }

    /// Record a pack that could not be written: its blobs are forgotten, so
    /// a later save stores them again.
    pub fn pack_failed(&mut self, generation: u64, blobs: &[PackBlob]) {
        self.settle(generation, blobs);
    }

    /// Record that the pack [`Reserved::New`] asked for could not be
    /// started: `handle` is forgotten.
    pub fn open_failed(&mut self, generation: u64, handle: &BlobHandle) {
        self.pending.remove(handle);
        self.settle(generation, &[]);
    }

    /// A pack of `generation` holding `blobs` is no longer unwritten.
    fn settle(&mut self, generation: u64, blobs: &[PackBlob]) {
        for b in blobs {
            self.pending.remove(&BlobHandle::new(b.tpe, b.id));
        }
        if let Some(count) = self.unwritten.get_mut(&generation) {
            *count -= 1;
            if *count == 0 {
                self.unwritten.remove(&generation);
            }
        }
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
    use crate::backend::{Backend, FileType, MemBackend};
    use crate::crypto::MasterKey;
    use crate::id::{BlobId, Id};

    fn h(n: u8) -> BlobHandle {
        BlobHandle::new(BlobType::Data, BlobId(Id::hash(&[n])))
    }

    /// Reserve `handle` and append `len` bytes for it; returns the pack.
    fn append(p: &mut Packer, be: &Arc<MemBackend>, handle: BlobHandle, len: usize) -> OpenPack {
        let mut pack = match p.reserve(handle) {
            Reserved::Open(pack) => pack,
            Reserved::New(g) => {
                let upload = Arc::clone(be).upload(FileType::Pack).unwrap();
                OpenPack::new(PackUpload::new(upload), handle.tpe, g)
            }
            Reserved::Pending => panic!("{handle:?} is pending"),
        };
        pack.add(handle, &vec![7; len], None).unwrap();
        pack
    }

    fn write(p: &mut Packer, pack: SealedPack, key: &MasterKey) -> PackId {
        let (generation, blobs, id) = pack.write(key);
        let id = id.unwrap();
        p.pack_written(generation, id, &blobs);
        id
    }

    #[test]
    fn packs_are_shared_by_turns_and_sealed_when_full() {
        let (be, key) = (Arc::new(MemBackend::new()), MasterKey::generate());
        let mut p = Packer::default();
        p.set_pack_size(100);
        let a = append(&mut p, &be, h(1), 60);
        // Held by one thread: another one starts a second pack.
        let b = append(&mut p, &be, h(2), 40);
        assert!(matches!(p.reserve(h(1)), Reserved::Pending));
        assert!(p.give_back(a).is_none() && p.give_back(b).is_none());
        // The most recently given back pack is reused, and fills up.
        let b = append(&mut p, &be, h(3), 70);
        let full = p.give_back(b).expect("full pack");
        assert!(p.has_pending(&h(2)) && p.has_pending(&h(3)));
        let id = write(&mut p, full, &key);
        assert!(!p.has_pending(&h(2)) && !p.has_pending(&h(3)) && p.has_pending(&h(1)));
        assert_eq!(be.list(FileType::Pack).unwrap().len(), 1);
        assert!(be.exists(FileType::Pack, &id.to_hex()).unwrap());
        assert_eq!(p.take_index_files().len(), 1);
    }

    #[test]
    fn a_flush_waits_for_packs_held_by_other_threads() {
        let (be, key) = (Arc::new(MemBackend::new()), MasterKey::generate());
        let mut p = Packer::default();
        let first = append(&mut p, &be, h(1), 50);
        assert!(p.give_back(first).is_none(), "blob 1 is saved");
        // Another thread takes the same pack for blob 2, then a flush starts.
        let held = append(&mut p, &be, h(2), 50);
        let (idle, generation) = p.start_flush();
        assert!(idle.is_empty(), "the only pack is held");
        assert!(p.unwritten_through(generation), "blob 1 is not written yet");
        // Given back after the flush began, it is sealed, not kept open.
        let sealed = p.give_back(held).expect("sealed for the flush");
        let id = write(&mut p, sealed, &key);
        assert!(!p.unwritten_through(generation));
        let files = p.take_index_files();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].packs[0].id, id);
        assert_eq!(files[0].packs[0].blobs.len(), 2);

        // Packs opened after the flush began do not hold it up.
        let later = append(&mut p, &be, h(3), 40);
        assert!(!p.unwritten_through(generation));
        assert!(p.give_back(later).is_none());
    }

    #[test]
    fn failures_forget_their_blobs() {
        let be = Arc::new(MemBackend::new());
        let mut p = Packer::default();
        let pack = append(&mut p, &be, h(1), 50);
        assert!(p.give_back(pack).is_none());
        let pack = append(&mut p, &be, h(2), 50);
        let (_, generation) = p.start_flush();
        p.abandon(pack, h(3));
        assert!(!p.has_pending(&h(1)) && !p.has_pending(&h(2)));
        assert!(!p.unwritten_through(generation));

        let Reserved::New(g) = p.reserve(h(4)) else {
            panic!("no idle pack left");
        };
        assert!(p.unwritten_through(g));
        p.open_failed(g, &h(4));
        assert!(!p.has_pending(&h(4)) && !p.unwritten_through(g));
        assert!(p.take_index_files().is_empty());
    }
}
