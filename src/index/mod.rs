//! The index: which pack holds which blob, at which offset.
//!
//! - [`MasterIndex`] is the in-memory union of every index file of the
//!   repository plus the packs written in this session. It answers lookups
//!   by [`BlobHandle`] and is built to stay compact for millions of blobs.
//! - [`IndexBuilder`] collects the packs written in this session and turns
//!   them into [`IndexFile`](crate::format::index::IndexFile)s of restic's
//!   size.
//!
//! A blob may be stored in several packs (after an interrupted backup or
//! prune); the index keeps every location and prefers the one it learned
//! first.

mod builder;
mod master;
mod table;

pub use builder::{IndexBuilder, INDEX_MAX_AGE, INDEX_MAX_BLOBS, INDEX_MAX_BLOBS_COMPRESSED};
pub use master::MasterIndex;

use crate::blob::BlobHandle;
use crate::id::PackId;
use crate::pack::PackBlob;

/// Where one copy of a blob is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IndexEntry {
    pub pack: PackId,
    /// Offset of the encrypted blob in the pack.
    pub offset: u32,
    /// Length of the encrypted blob in the pack.
    pub length: u32,
    /// Plaintext length of a compressed blob; `None` if uncompressed.
    pub uncompressed_length: Option<u32>,
}

impl IndexEntry {
    /// Length of the blob's plaintext.
    pub fn plaintext_len(&self) -> u32 {
        crate::pack::header::plaintext_len(self.length, self.uncompressed_length)
    }

    /// The pack header entry this index entry describes, for
    /// [`decode_blob`](crate::pack::decode_blob).
    pub fn to_pack_blob(&self, handle: &BlobHandle) -> PackBlob {
        PackBlob {
            tpe: handle.tpe,
            id: handle.id,
            offset: self.offset,
            length: self.length,
            uncompressed_length: self.uncompressed_length,
        }
    }
}
