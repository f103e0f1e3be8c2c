//! Pack assembly for [`Repository::save_blob`](super::Repository::save_blob).
//!
//! Data and tree blobs go into separate packs, as restic does, so that tree
//! packs stay small and cacheable. A pack is handed back to the repository to
//! be written once it reaches the target size; until it is written, its blobs
//! are "pending": deduplicated against, but not yet in the index.

use std::collections::HashSet;

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
}

impl SealedPack {
    /// Append the encrypted header and compute the pack id.
    pub fn finish(self, key: &MasterKey) -> FinishedPack {
        self.writer.finish(key)
    }
}

/// Open packs and the record of packs written since the last index flush.
pub struct Packer {
    data: PackWriter,
    tree: PackWriter,
    pending: HashSet<BlobHandle>,
    pack_size: usize,
    written: IndexBuilder,
}

impl Default for Packer {
    fn default() -> Self {
        Packer {
            data: PackWriter::new(),
            tree: PackWriter::new(),
            pending: HashSet::new(),
            pack_size: DEFAULT_PACK_SIZE,
            written: IndexBuilder::new(),
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
        writer.add(handle.tpe, handle.id, encrypted, uncompressed_length)?;
        self.pending.insert(handle);
        Ok((writer.size() >= self.pack_size).then(|| SealedPack {
            writer: std::mem::replace(writer, PackWriter::new()),
        }))
    }

    /// Take every non-empty open pack.
    pub fn take_all(&mut self) -> Vec<SealedPack> {
        [&mut self.data, &mut self.tree]
            .into_iter()
            .filter(|w| !w.is_empty())
            .map(|w| SealedPack {
                writer: std::mem::replace(w, PackWriter::new()),
            })
            .collect()
    }

    /// Record a written pack: its blobs are no longer pending, and it will be
    /// listed by the next index file.
    pub fn pack_written(&mut self, id: PackId, blobs: &[PackBlob]) {
        for b in blobs {
            self.pending.remove(&BlobHandle::new(b.tpe, b.id));
        }
        self.written.add_pack(id, blobs);
    }

    /// The index files for every pack written since the last call.
    pub fn take_index_files(&mut self) -> Vec<IndexFile> {
        std::mem::take(&mut self.written).finish()
    }
}
