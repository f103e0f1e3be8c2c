//! [`PackSink`]: writes blobs into new packs of a target size, tree and data
//! blobs apart, for `prune` (repacking) and `repair packs` (salvaging).
//!
//! Unlike [`Repository::save_blob`], it never skips a blob the index already
//! knows: the caller copies blobs out of packs that are about to go away.
//! Each pack is stored as soon as it is full; no index file lists it until
//! the caller writes one (see [`Repository::replace_index`]).

use crate::blob::{BlobHandle, BlobType};
use crate::compression;
use crate::error::{Error, Result};
use crate::id::PackId;
use crate::pack::{PackBlob, PackWriter};
use crate::repository::Repository;

/// See the module docs.
pub(crate) struct PackSink<'a> {
    repo: &'a Repository,
    /// Data, tree.
    writers: [PackWriter; 2],
    target: usize,
    written: Vec<(PackId, Vec<PackBlob>)>,
}

impl<'a> PackSink<'a> {
    /// A sink writing packs of about `target` bytes.
    pub fn new(repo: &'a Repository, target: u64) -> Self {
        PackSink {
            repo,
            writers: [PackWriter::new(), PackWriter::new()],
            target: usize::try_from(target).unwrap_or(usize::MAX).max(1),
            written: Vec::new(),
        }
    }

    /// Add an already encrypted blob (as stored in a pack).
    pub fn add_encrypted(
        &mut self,
        handle: BlobHandle,
        encrypted: &[u8],
        uncompressed_length: Option<u32>,
    ) -> Result<()> {
        let w = &mut self.writers[usize::from(handle.tpe == BlobType::Tree)];
        w.add(handle.tpe, handle.id, encrypted, uncompressed_length)?;
        if w.size() >= self.target {
            let pack = std::mem::take(w).finish(self.repo.key());
            self.written.push(self.repo.write_pack_file(pack)?);
        }
        Ok(())
    }

    /// Add a blob's plaintext: compressed as the repository's mode says (v2),
    /// then encrypted.
    pub fn add_plain(&mut self, handle: BlobHandle, plain: &[u8]) -> Result<()> {
        let (encrypted, uncompressed_length) = encode(self.repo, plain)?;
        self.add_encrypted(handle, &encrypted, uncompressed_length)
    }

    /// Store the partly filled packs; returns every pack written.
    pub fn finish(mut self) -> Result<Vec<(PackId, Vec<PackBlob>)>> {
        for w in std::mem::take(&mut self.writers) {
            if !w.is_empty() {
                self.written
                    .push(self.repo.write_pack_file(w.finish(self.repo.key()))?);
            }
        }
        Ok(self.written)
    }
}

/// A blob's stored form: compressed if the repository's mode compresses and
/// that makes it smaller, then encrypted; and its plaintext length if
/// compressed.
pub(crate) fn encode(repo: &Repository, plain: &[u8]) -> Result<(Vec<u8>, Option<u32>)> {
    let compressed =
        compression::compress(plain, repo.compression()).filter(|c| c.len() < plain.len());
    match compressed {
        Some(c) => {
            let len = u32::try_from(plain.len()).map_err(|_| {
                Error::InvalidArgument(format!("blob of {} bytes is too large", plain.len()))
            })?;
            Ok((repo.key().encrypt(&c), Some(len)))
        }
        None => Ok((repo.key().encrypt(plain), None)),
    }
}
