//! [`IndexBuilder`]: turns the packs written in a session into index files.
//!
//! restic saves an index file once it lists [`INDEX_MAX_BLOBS`] blobs
//! ([`INDEX_MAX_BLOBS_COMPRESSED`] in repositories that compress), or once it
//! is [`INDEX_MAX_AGE`] old, so that an interrupted backup loses at most a
//! few minutes of indexed packs and no index file grows without bound
//! (restic `internal/repository/index.go`, `IndexFull`). The check runs after
//! each pack: a pack is never split across index files, so a file may exceed
//! the limit by the blobs of its last pack.

use std::time::{Duration, Instant};

use crate::format::index::{IndexBlob, IndexFile, IndexPack};
use crate::id::PackId;
use crate::pack::PackBlob;

/// Blobs after which an index file is full (restic's `indexMaxBlobs`).
pub const INDEX_MAX_BLOBS: usize = 50_000;

/// The limit for repositories that compress (restic: 3 × `indexMaxBlobs`,
/// as compressed index files are smaller).
pub const INDEX_MAX_BLOBS_COMPRESSED: usize = 3 * INDEX_MAX_BLOBS;

/// Age after which an index file is saved however few blobs it lists.
pub const INDEX_MAX_AGE: Duration = Duration::from_secs(10 * 60);

/// Collects written packs and emits index files. See the module docs.
#[derive(Debug)]
pub struct IndexBuilder {
    max_blobs: usize,
    max_age: Duration,
    /// Packs of the file being filled.
    current: Vec<IndexPack>,
    current_blobs: usize,
    /// When the first pack of `current` was added.
    started: Option<Instant>,
    /// Files that reached the blob limit, oldest first.
    full: Vec<IndexFile>,
}

impl Default for IndexBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl IndexBuilder {
    /// A builder with restic's limits for uncompressed repositories.
    pub fn new() -> Self {
        Self::with_limits(INDEX_MAX_BLOBS, INDEX_MAX_AGE)
    }

    /// A builder that starts a new file after `max_blobs` blobs (at least 1)
    /// or `max_age`.
    pub fn with_limits(max_blobs: usize, max_age: Duration) -> Self {
        IndexBuilder {
            max_blobs: max_blobs.max(1),
            max_age,
            current: Vec::new(),
            current_blobs: 0,
            started: None,
            full: Vec::new(),
        }
    }

    /// Record a written pack. Packs without blobs are not listed (restic
    /// lists packs through their blobs).
    pub fn add_pack(&mut self, pack: PackId, blobs: &[PackBlob]) {
        if blobs.is_empty() {
            return;
        }
        self.started.get_or_insert_with(Instant::now);
        self.current.push(IndexPack {
            id: pack,
            blobs: blobs.iter().map(index_blob).collect(),
        });
        self.current_blobs += blobs.len();
        if self.current_blobs >= self.max_blobs {
            self.seal();
        }
    }

    /// Number of blobs recorded but not yet taken.
    pub fn pending_blobs(&self) -> usize {
        self.current_blobs + self.full.iter().map(blob_count).sum::<usize>()
    }

    /// True if nothing is waiting to be taken.
    pub fn is_empty(&self) -> bool {
        self.current.is_empty() && self.full.is_empty()
    }

    /// The index files that are due: those that reached the blob limit, and
    /// the one being filled if it is older than the age limit.
    pub fn take_full(&mut self) -> Vec<IndexFile> {
        if self.started.is_some_and(|t| t.elapsed() >= self.max_age) {
            self.seal();
        }
        std::mem::take(&mut self.full)
    }

    /// All remaining index files, including a partly filled one; the builder
    /// is empty afterwards.
    pub fn finish(&mut self) -> Vec<IndexFile> {
        self.seal();
        std::mem::take(&mut self.full)
    }

    /// Move the file being filled, if any, to `full`.
    fn seal(&mut self) {
        if !self.current.is_empty() {
            self.full.push(IndexFile {
                supersedes: Vec::new(),
                packs: std::mem::take(&mut self.current),
            });
        }
        self.current_blobs = 0;
        self.started = None;
    }
}

fn index_blob(b: &PackBlob) -> IndexBlob {
    IndexBlob {
        id: b.id,
        tpe: b.tpe,
        offset: b.offset,
        length: b.length,
        uncompressed_length: b.uncompressed_length,
    }
}

fn blob_count(file: &IndexFile) -> usize {
    file.packs.iter().map(|p| p.blobs.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::{BlobHandle, BlobType};
    use crate::id::{BlobId, Id};
    use crate::index::MasterIndex;

    fn pack_id(n: u32) -> PackId {
        PackId(Id::hash(format!("pack {n}").as_bytes()))
    }

    /// `count` blobs, distinct across packs `p`.
    fn blobs(p: u32, count: u32) -> Vec<PackBlob> {
        (0..count)
            .map(|i| PackBlob {
                tpe: if i % 5 == 0 {
                    BlobType::Tree
                } else {
                    BlobType::Data
                },
                id: BlobId(Id::hash(format!("{p}/{i}").as_bytes())),
                offset: i * 64,
                length: 64,
                uncompressed_length: (i % 2 == 0).then_some(100 + i),
            })
            .collect()
    }

    #[test]
    fn splits_at_the_blob_limit_without_splitting_packs() {
        let mut b = IndexBuilder::new();
        // Packs of 300 blobs: the 167th pack (number 166) brings the file to
        // 50,100 blobs, so pack 167 starts the next one.
        for p in 0..170 {
            b.add_pack(pack_id(p), &blobs(p, 300));
        }
        assert_eq!(b.pending_blobs(), 170 * 300);
        let full = b.take_full();
        assert_eq!(full.len(), 1);
        assert_eq!(full[0].packs.len(), 167);
        assert_eq!(blob_count(&full[0]), 50_100);
        assert!(b.take_full().is_empty(), "the rest is neither full nor old");
        let rest = b.finish();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].packs.len(), 3);
        assert_eq!(rest[0].packs[0].id, pack_id(167));
        assert!(b.is_empty() && b.finish().is_empty());
    }

    #[test]
    fn exact_limit_and_empty_packs() {
        let mut b = IndexBuilder::with_limits(10, INDEX_MAX_AGE);
        b.add_pack(pack_id(0), &[]);
        assert!(b.is_empty());
        b.add_pack(pack_id(1), &blobs(1, 10));
        b.add_pack(pack_id(2), &blobs(2, 3));
        let full = b.take_full();
        assert_eq!(full.len(), 1);
        assert_eq!(blob_count(&full[0]), 10);
        assert_eq!(b.pending_blobs(), 3);
    }

    #[test]
    fn old_files_are_due() {
        let mut b = IndexBuilder::with_limits(INDEX_MAX_BLOBS, Duration::ZERO);
        assert!(b.take_full().is_empty());
        b.add_pack(pack_id(1), &blobs(1, 2));
        assert_eq!(b.take_full().len(), 1);
        assert!(b.is_empty());
    }

    #[test]
    fn index_files_round_trip_through_json_and_the_master_index() {
        let mut b = IndexBuilder::with_limits(25, INDEX_MAX_AGE);
        let packs: Vec<_> = (0..6).map(|p| (pack_id(p), blobs(p, 10))).collect();
        for (id, bl) in &packs {
            b.add_pack(*id, bl);
        }
        let files = b.finish();
        assert_eq!(files.len(), 2);

        let mut idx = MasterIndex::new();
        for f in &files {
            let json = serde_json::to_vec(f).unwrap();
            let back: IndexFile = serde_json::from_slice(&json).unwrap();
            idx.add_index_file(&back);
        }
        assert_eq!(idx.len(), 60);
        assert_eq!(idx.pack_count(), 6);
        for (pack, bl) in &packs {
            for blob in bl {
                let e = idx.get(&BlobHandle::new(blob.tpe, blob.id)).unwrap();
                assert_eq!(e.pack, *pack);
                assert_eq!(e.to_pack_blob(&blob.handle()), *blob);
            }
        }
    }
}
