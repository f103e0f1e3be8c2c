//! [`PackWriter`]: assembles one pack in memory from already-encrypted
//! blobs, then appends the encrypted header and computes the pack id.
//!
//! Invariants kept by [`PackWriter::add`], so that [`PackWriter::finish`]
//! cannot fail and always produces a pack restic can read: every blob is at
//! least [`CIPHERTEXT_OVERHEAD`] bytes long, every offset and length fits in
//! `u32`, a compressed blob's plaintext length is non-zero (restic reads 0 as
//! "uncompressed"), and the header stays within [`MAX_HEADER_ENTRIES`].

use crate::blob::BlobType;
use crate::crypto::{MasterKey, CIPHERTEXT_OVERHEAD};
use crate::error::{Error, Result};
use crate::id::{BlobId, Id, PackId};

use super::header::{encode_header, header_len, PackBlob};
use super::{HEADER_LENGTH_SIZE, MAX_HEADER_ENTRIES};

/// A pack being assembled: the blob bytes so far and their header entries.
#[derive(Debug, Default)]
pub struct PackWriter {
    data: Vec<u8>,
    blobs: Vec<PackBlob>,
}

/// A complete pack file, ready to be written under `data/<id>`.
#[derive(Debug)]
pub struct FinishedPack {
    /// SHA-256 of `data`.
    pub id: PackId,
    /// The whole file: blobs, encrypted header, header length.
    pub data: Vec<u8>,
    /// The blobs in the pack, in order, with their offsets.
    pub blobs: Vec<PackBlob>,
}

impl PackWriter {
    /// An empty pack.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty pack whose buffer is sized for `bytes` of blobs (e.g. the
    /// target pack size), to avoid reallocations while it fills.
    pub fn with_capacity(bytes: usize) -> Self {
        PackWriter {
            data: Vec::with_capacity(bytes),
            blobs: Vec::new(),
        }
    }

    /// Append an encrypted blob (IV ‖ ciphertext ‖ MAC).
    /// `uncompressed_length` is the plaintext length if the blob was
    /// compressed before encryption, `None` otherwise.
    ///
    /// Fails, leaving the pack unchanged, if `encrypted` is shorter than the
    /// encryption overhead, if `uncompressed_length` is `Some(0)` (not
    /// representable: restic reads 0 as "uncompressed"; store empty blobs
    /// uncompressed), if the pack would grow past 4 GiB, or if its header is
    /// full.
    pub fn add(
        &mut self,
        tpe: BlobType,
        id: BlobId,
        encrypted: &[u8],
        uncompressed_length: Option<u32>,
    ) -> Result<()> {
        let invalid =
            |reason: String| Error::InvalidArgument(format!("pack: {tpe} blob {id}: {reason}"));
        if encrypted.len() < CIPHERTEXT_OVERHEAD {
            return Err(invalid(format!(
                "{} bytes is too short for an encrypted blob",
                encrypted.len()
            )));
        }
        if uncompressed_length == Some(0) {
            return Err(invalid("a compressed blob cannot be empty".into()));
        }
        if self.blobs.len() >= MAX_HEADER_ENTRIES {
            return Err(invalid(format!(
                "pack header is full ({MAX_HEADER_ENTRIES} blobs)"
            )));
        }
        let offset = u32::try_from(self.data.len());
        let length = u32::try_from(encrypted.len());
        let (Ok(offset), Ok(length)) = (offset, length) else {
            return Err(invalid("pack would exceed 4 GiB".into()));
        };
        self.blobs.push(PackBlob {
            tpe,
            id,
            offset,
            length,
            uncompressed_length,
        });
        self.data.extend_from_slice(encrypted);
        Ok(())
    }

    /// Bytes of blob data added so far (without the header).
    pub fn size(&self) -> usize {
        self.data.len()
    }

    /// Size the pack file will have once finished, header included.
    pub fn finished_size(&self) -> usize {
        self.data.len() + header_len(&self.blobs) + CIPHERTEXT_OVERHEAD + HEADER_LENGTH_SIZE
    }

    /// Number of blobs added.
    pub fn count(&self) -> usize {
        self.blobs.len()
    }

    /// True if no blob was added.
    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    /// The blobs added so far, in order.
    pub fn blobs(&self) -> &[PackBlob] {
        &self.blobs
    }

    /// Append the encrypted header and its length, and hash the file.
    pub fn finish(self, key: &MasterKey) -> FinishedPack {
        let PackWriter { mut data, blobs } = self;
        let header = encode_header(&blobs);
        let start = data.len();
        data.reserve_exact(header.len() + CIPHERTEXT_OVERHEAD + HEADER_LENGTH_SIZE);
        key.encrypt_into(&header, &mut data);
        // `add` caps the entry count so that the encrypted header stays
        // within MAX_HEADER_SIZE (16 MiB): its length always fits in u32.
        let header_length = (data.len() - start) as u32;
        data.extend_from_slice(&header_length.to_le_bytes());
        FinishedPack {
            id: PackId(Id::hash(&data)),
            data,
            blobs,
        }
    }
}
