//! [`PackWriter`]: assembles one pack from already-encrypted blobs, then
//! appends the encrypted header.
//!
//! The bytes go to a [`PackSink`] as blobs are added: a `Vec<u8>` (the
//! whole pack in memory, [`PackWriter::finish`] hashes it), or a
//! [`PackUpload`], which streams them to a backend [`Upload`] and hashes
//! them on the way, so a pack being assembled holds no copy of its blobs
//! in memory and its id is known as soon as its header is written.
//!
//! Invariants kept by [`PackWriter::add`], so that the header written at
//! the end always gives a pack restic can read: every blob is at least
//! [`CIPHERTEXT_OVERHEAD`] bytes long, every offset and length fits in
//! `u32`, a compressed blob's plaintext length is non-zero (restic reads 0
//! as "uncompressed"), and the header stays within [`MAX_HEADER_ENTRIES`].
//! A blob enters the header only once its bytes were taken by the sink; if
//! the sink fails, the pack must be abandoned (a streamed one is removed
//! with its upload).

use sha2::{Digest, Sha256};

use crate::backend::Upload;
use crate::blob::BlobType;
use crate::crypto::{MasterKey, CIPHERTEXT_OVERHEAD};
use crate::error::{Error, Result};
use crate::id::{BlobId, Id, PackId};

use super::header::{encode_header, header_len, PackBlob};
use super::{HEADER_LENGTH_SIZE, MAX_HEADER_ENTRIES};

/// Where a pack's bytes go while it is assembled.
pub trait PackSink {
    /// Append bytes to the pack file.
    fn append(&mut self, bytes: &[u8]) -> Result<()>;
}

impl PackSink for Vec<u8> {
    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

/// A pack streamed to a backend upload and hashed as it is written.
pub struct PackUpload {
    upload: Box<dyn Upload>,
    hasher: Sha256,
}

impl PackUpload {
    /// Stream into `upload` (of a [`FileType::Pack`](crate::backend::FileType::Pack)).
    pub fn new(upload: Box<dyn Upload>) -> Self {
        PackUpload {
            upload,
            hasher: Sha256::new(),
        }
    }

    /// Store the complete pack under its id (the hash of its bytes) and
    /// return the id.
    pub fn commit(self) -> Result<PackId> {
        let id = PackId(Id(self.hasher.finalize().into()));
        self.upload.finish(&id.to_hex())?;
        Ok(id)
    }
}

impl PackSink for PackUpload {
    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        self.upload.write(bytes)?;
        self.hasher.update(bytes);
        Ok(())
    }
}

/// A pack being assembled: its sink and the header entries so far.
#[derive(Debug, Default)]
pub struct PackWriter<S = Vec<u8>> {
    sink: S,
    /// Bytes of blobs appended.
    size: usize,
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
    /// An empty pack, assembled in memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty in-memory pack whose buffer is sized for `bytes` of blobs,
    /// to avoid reallocations while it fills.
    pub fn with_capacity(bytes: usize) -> Self {
        PackWriter::with_sink(Vec::with_capacity(bytes))
    }

    /// Append the encrypted header and its length, and hash the file.
    pub fn finish(self, key: &MasterKey) -> FinishedPack {
        let PackWriter {
            sink: mut data,
            blobs,
            ..
        } = self;
        data.extend_from_slice(&encrypted_header(&blobs, key));
        FinishedPack {
            id: PackId(Id::hash(&data)),
            data,
            blobs,
        }
    }
}

impl<S: PackSink> PackWriter<S> {
    /// An empty pack whose bytes go to `sink` (empty, e.g. a new upload).
    pub fn with_sink(sink: S) -> Self {
        PackWriter {
            sink,
            size: 0,
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
    /// full. If the sink fails, the error is returned and the pack must be
    /// abandoned.
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
        let offset = u32::try_from(self.size);
        let length = u32::try_from(encrypted.len());
        let (Ok(offset), Ok(length)) = (offset, length) else {
            return Err(invalid("pack would exceed 4 GiB".into()));
        };
        self.sink.append(encrypted)?;
        self.size += encrypted.len();
        self.blobs.push(PackBlob {
            tpe,
            id,
            offset,
            length,
            uncompressed_length,
        });
        Ok(())
    }

    /// Bytes of blob data added so far (without the header).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Size the pack file will have once finished, header included.
    pub fn finished_size(&self) -> usize {
        self.size + header_len(&self.blobs) + CIPHERTEXT_OVERHEAD + HEADER_LENGTH_SIZE
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

    /// Append the encrypted header and its length. Returns the blobs, and
    /// the sink (e.g. to commit an upload) unless appending failed.
    pub fn finish_into(mut self, key: &MasterKey) -> (Vec<PackBlob>, Result<S>) {
        let appended = self.sink.append(&encrypted_header(&self.blobs, key));
        (self.blobs, appended.map(|()| self.sink))
    }
}

/// The encrypted header listing `blobs`, followed by its length.
fn encrypted_header(blobs: &[PackBlob], key: &MasterKey) -> Vec<u8> {
    let header = encode_header(blobs);
    let mut out = Vec::with_capacity(header.len() + CIPHERTEXT_OVERHEAD + HEADER_LENGTH_SIZE);
    key.encrypt_into(&header, &mut out);
    // `add` caps the entry count so that the encrypted header stays
    // within MAX_HEADER_SIZE (16 MiB): its length always fits in u32.
    let header_length = out.len() as u32;
    out.extend_from_slice(&header_length.to_le_bytes());
    out
}
