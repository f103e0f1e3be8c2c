//! Decoding stored blobs: the one place where a blob's bytes from a pack
//! become its verified plaintext, for every reader (restore, check, prune,
//! the mount and [`Repository::load_blob`](crate::repository::Repository)).
//!
//! Checks, in order — a blob that fails one is an error naming the blob
//! and its pack, never wrong data and never a panic:
//! 1. the stored length must be the index's, and at least an IV and a MAC
//!    ([`Error::Corrupt`]);
//! 2. a claimed plaintext length above [`MAX_BLOB_SIZE`] is refused
//!    ([`Error::Corrupt`]);
//! 3. the MAC must verify ([`Error::MacMismatch`]);
//! 4. a compressed blob must expand to exactly its recorded length
//!    ([`Error::Corrupt`]);
//! 5. the plaintext must hash to the blob id ([`Error::HashMismatch`]).
//!
//! The work is done where the bytes already are:
//! - a blob is decrypted in place in the caller's read buffer
//!   ([`MasterKey::decrypt_in_slice`]); an uncompressed blob's plaintext
//!   is that slice;
//! - a compressed blob whose zstd frame holds only raw blocks (restic's
//!   incompressible data, most of a backup by size) is not decompressed:
//!   its content is the blocks' pieces of the decrypted slice (`frame`),
//!   hashed piece by piece and handed out as [`Plain::Pieces`], or moved
//!   together in place ([`BlobDecoder::decode_owned`]);
//! - any other compressed blob expands into the decoder's reused output
//!   buffer, in one call with this thread's zstd context
//!   ([`compression::decompress_into`]), or, for a claim above
//!   [`BULK_LIMIT`], through the streaming decoder, which allocates only as
//!   real output arrives: an untrusted index cannot make a reader allocate
//!   a gigabyte for a small frame.
//!
//! A worker thread keeps one [`BlobDecoder`], so its buffers are allocated
//! once rather than per blob (multi-MiB allocations cost page faults every
//! time); a buffer that a large blob grew beyond [`KEEP_CAPACITY`] is
//! released before the next blob.

mod frame;

use std::borrow::Cow;
use std::ops::Range;

use sha2::{Digest, Sha256};

pub use frame::MAX_PIECES;

use crate::compression;
use crate::crypto::{MasterKey, CIPHERTEXT_OVERHEAD};
use crate::error::{Error, Result};
use crate::id::{Id, PackId};
use crate::pack::{PackBlob, MAX_BLOB_SIZE};

/// Compressed blobs claiming at most this plaintext length expand in one
/// call into a buffer of that size; larger claims (up to
/// [`MAX_BLOB_SIZE`]) use the streaming decoder.
pub const BULK_LIMIT: u32 = 64 << 20;

/// A decoder's buffers are kept between blobs up to this capacity.
pub const KEEP_CAPACITY: usize = 16 << 20;

/// A verified blob's plaintext.
#[derive(Clone, Copy, Debug)]
pub enum Plain<'a> {
    /// In one piece.
    Whole(&'a [u8]),
    /// The given pieces of `data`, in order (the raw blocks of a zstd
    /// frame; at most [`MAX_PIECES`]).
    Pieces {
        data: &'a [u8],
        pieces: &'a [Range<usize>],
    },
}

impl<'a> Plain<'a> {
    /// The plaintext's pieces in order (one for [`Plain::Whole`]).
    pub fn slices(self) -> impl Iterator<Item = &'a [u8]> {
        let (whole, data, pieces) = match self {
            Plain::Whole(data) => (Some(data), data, &[][..]),
            Plain::Pieces { data, pieces } => (None, data, pieces),
        };
        let parts = pieces.iter().filter_map(move |r| data.get(r.clone()));
        whole.into_iter().chain(parts)
    }

    /// The plaintext's length.
    pub fn len(self) -> usize {
        self.slices().map(<[u8]>::len).sum()
    }

    /// Whether the plaintext is empty.
    pub fn is_empty(self) -> bool {
        self.slices().all(<[u8]>::is_empty)
    }

    /// The plaintext in one slice: borrowed if it is in one piece, else
    /// gathered into a new vector.
    pub fn contiguous(self) -> Cow<'a, [u8]> {
        match self {
            Plain::Whole(data) => Cow::Borrowed(data),
            Plain::Pieces { .. } => Cow::Owned(self.slices().flatten().copied().collect()),
        }
    }
}

/// Where a blob's plaintext was found, relative to its decrypted bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Found {
    /// The decrypted bytes themselves (stored uncompressed).
    Decrypted,
    /// The decoder's pieces of the decrypted bytes (a raw zstd frame).
    Pieces,
    /// The decoder's output buffer (decompressed).
    Decompressed,
}

/// A blob decoder with buffers reused from blob to blob; see the module
/// docs.
#[derive(Debug, Default)]
pub struct BlobDecoder {
    out: Output,
    /// A copy of the stored bytes, for [`BlobDecoder::decode_copy`].
    scratch: Vec<u8>,
}

/// The buffers a decoded plaintext can lie in.
#[derive(Debug, Default)]
struct Output {
    /// The last decompressed blob.
    plain: Vec<u8>,
    /// The last raw frame's pieces, as ranges of its decrypted bytes.
    pieces: Vec<Range<usize>>,
}

impl BlobDecoder {
    /// A decoder with empty buffers.
    pub fn new() -> BlobDecoder {
        BlobDecoder::default()
    }

    /// The plaintext of `blob` of pack `pack`, from its `stored` bytes,
    /// which are decrypted in place (left as they were if the MAC is
    /// wrong). The plaintext lies in `stored` or in the decoder.
    pub fn decode<'a>(
        &'a mut self,
        key: &MasterKey,
        pack: &PackId,
        blob: &PackBlob,
        stored: &'a mut [u8],
    ) -> Result<Plain<'a>> {
        let (range, found) = self.out.open(key, pack, blob, stored)?;
        Ok(self.out.plain(&stored[range], found))
    }

    /// Like [`decode`](Self::decode), but leave `stored` untouched (for a
    /// caller that still needs the stored bytes): they are decrypted in a
    /// copy kept by the decoder.
    pub fn decode_copy(
        &mut self,
        key: &MasterKey,
        pack: &PackId,
        blob: &PackBlob,
        stored: &[u8],
    ) -> Result<Plain<'_>> {
        shrink(&mut self.scratch);
        self.scratch.clear();
        self.scratch.extend_from_slice(stored);
        let (range, found) = self.out.open(key, pack, blob, &mut self.scratch)?;
        Ok(self.out.plain(&self.scratch[range], found))
    }

    /// Like [`decode`](Self::decode), but return the plaintext in a vector
    /// of its own: copied out of `stored`, or the decoder's output buffer
    /// itself (which is then not reused).
    pub fn decode_to_vec(
        &mut self,
        key: &MasterKey,
        pack: &PackId,
        blob: &PackBlob,
        stored: &mut [u8],
    ) -> Result<Vec<u8>> {
        let (range, found) = self.out.open(key, pack, blob, stored)?;
        Ok(match found {
            Found::Decompressed => std::mem::take(&mut self.out.plain),
            Found::Decrypted | Found::Pieces => {
                let plain = self.out.plain(&stored[range], found);
                let mut out = Vec::with_capacity(plain.len());
                plain.slices().for_each(|s| out.extend_from_slice(s));
                out
            }
        })
    }

    /// Decode `stored` (a buffer of its own) and return the plaintext as
    /// `buffer[range]` without copying it where that can be avoided: a
    /// blob stored uncompressed stays where it was decrypted (between its
    /// IV and MAC), a raw frame's pieces are moved together in place
    /// (`copy_within`), and only a decompressed blob comes in the decoder's
    /// output buffer (`range` then covers all of it).
    pub fn decode_owned(
        &mut self,
        key: &MasterKey,
        pack: &PackId,
        blob: &PackBlob,
        mut stored: Vec<u8>,
    ) -> Result<(Vec<u8>, Range<usize>)> {
        let (range, found) = self.out.open(key, pack, blob, &mut stored)?;
        Ok(match found {
            Found::Decrypted => (stored, range),
            Found::Pieces => {
                let range = gather(&mut stored, range.start, &self.out.pieces);
                (stored, range)
            }
            Found::Decompressed => {
                let plain = std::mem::take(&mut self.out.plain);
                let len = plain.len();
                (plain, 0..len)
            }
        })
    }
}

/// Decrypt, decompress and verify one blob into a new vector, leaving
/// `stored` untouched: the plain, allocating way, for single blob loads
/// ([`crate::pack::decode_blob`]). Decryption copies the bytes once, and
/// the plaintext is handed out where it lands.
pub fn decode_copied(
    key: &MasterKey,
    pack: &PackId,
    blob: &PackBlob,
    stored: &[u8],
) -> Result<Vec<u8>> {
    let what = || describe(pack, blob);
    check_claims(blob, stored.len(), what)?;
    let mut decrypted = key
        .decrypt(stored)
        .map_err(|_| Error::MacMismatch(what()))?;
    let mut out = Output::default();
    Ok(match out.expand(blob, &decrypted, what)? {
        Found::Decrypted => decrypted,
        Found::Pieces => {
            let range = gather(&mut decrypted, 0, &out.pieces);
            decrypted.truncate(range.end);
            decrypted.drain(..range.start);
            decrypted
        }
        Found::Decompressed => out.plain,
    })
}

impl Output {
    /// Check, decrypt in place and expand `blob` from `stored`: where its
    /// decrypted bytes lie in `stored`, and where its plaintext was found.
    fn open(
        &mut self,
        key: &MasterKey,
        pack: &PackId,
        blob: &PackBlob,
        stored: &mut [u8],
    ) -> Result<(Range<usize>, Found)> {
        let what = || describe(pack, blob);
        shrink(&mut self.plain);
        check_claims(blob, stored.len(), what)?;
        let base = stored.as_ptr() as usize;
        let decrypted = key
            .decrypt_in_slice(stored)
            .map_err(|_| Error::MacMismatch(what()))?;
        let start = decrypted.as_ptr() as usize - base;
        let range = start..start + decrypted.len();
        let found = self.expand(blob, decrypted, what)?;
        Ok((range, found))
    }

    /// Find or decompress the plaintext of `blob` from its `decrypted`
    /// bytes and check its hash.
    fn expand(
        &mut self,
        blob: &PackBlob,
        decrypted: &[u8],
        what: impl Fn() -> String,
    ) -> Result<Found> {
        let found = match blob.uncompressed_length {
            None => Found::Decrypted,
            Some(expected) => {
                // Cast: expected <= MAX_BLOB_SIZE (checked) fits in usize.
                let expected = expected as usize;
                if frame::raw_pieces(decrypted, expected, &mut self.pieces).is_some() {
                    Found::Pieces
                } else {
                    self.decompress(decrypted, expected)
                        .map_err(|e| Error::corrupt(what(), format!("cannot decompress: {e}")))?;
                    Found::Decompressed
                }
            }
        };
        let mut hasher = Sha256::new();
        self.plain(decrypted, found)
            .slices()
            .for_each(|s| hasher.update(s));
        let actual = Id(hasher.finalize().into());
        if actual != blob.id.0 {
            return Err(Error::HashMismatch {
                what: what(),
                expected: blob.id.to_hex(),
                actual: actual.to_hex(),
            });
        }
        Ok(found)
    }

    /// Decompress `data` into `self.plain`, which must end up exactly
    /// `expected` bytes long.
    fn decompress(&mut self, data: &[u8], expected: usize) -> Result<()> {
        if expected <= BULK_LIMIT as usize {
            return compression::decompress_into(data, expected, &mut self.plain);
        }
        self.plain = compression::decompress(data, expected)?;
        if self.plain.len() != expected {
            return Err(Error::corrupt(
                "compressed data",
                format!(
                    "decompressed to {} bytes, expected {expected}",
                    self.plain.len()
                ),
            ));
        }
        Ok(())
    }

    /// The plaintext found as `found` for a blob decrypted to `decrypted`.
    fn plain<'a>(&'a self, decrypted: &'a [u8], found: Found) -> Plain<'a> {
        match found {
            Found::Decrypted => Plain::Whole(decrypted),
            Found::Pieces => Plain::Pieces {
                data: decrypted,
                pieces: &self.pieces,
            },
            Found::Decompressed => Plain::Whole(&self.plain),
        }
    }
}

/// How errors name a blob.
fn describe(pack: &PackId, blob: &PackBlob) -> String {
    format!("{} in pack {pack}", blob.handle())
}

/// The checks made before decrypting: the stored length is the index's
/// and holds an IV and a MAC, and the claimed plaintext length is sane.
fn check_claims(blob: &PackBlob, stored_len: usize, what: impl Fn() -> String) -> Result<()> {
    if stored_len as u64 != u64::from(blob.length) {
        return Err(Error::corrupt(
            what(),
            format!("got {stored_len} bytes, expected {}", blob.length),
        ));
    }
    if stored_len < CIPHERTEXT_OVERHEAD {
        return Err(Error::corrupt(
            what(),
            format!("length {} is too short for an encrypted blob", blob.length),
        ));
    }
    if blob.plaintext_len() > MAX_BLOB_SIZE {
        return Err(Error::corrupt(
            what(),
            format!(
                "plaintext length {} exceeds the maximum of {MAX_BLOB_SIZE}",
                blob.plaintext_len()
            ),
        ));
    }
    Ok(())
}

/// Move the `pieces` of the decrypted bytes at `buf[base..]` together, in
/// order, starting where the first one is; return where they now lie.
/// Pieces are increasing and disjoint, so each moves down (or stays) and
/// never over a piece still to be moved.
fn gather(buf: &mut [u8], base: usize, pieces: &[Range<usize>]) -> Range<usize> {
    let start = base + pieces.first().map_or(0, |p| p.start);
    let mut end = start;
    for p in pieces {
        buf.copy_within(base + p.start..base + p.end, end);
        end += p.len();
    }
    start..end
}

/// Release `buf` if a large blob grew it beyond [`KEEP_CAPACITY`].
fn shrink<T>(buf: &mut Vec<T>) {
    if buf.capacity() * std::mem::size_of::<T>() > KEEP_CAPACITY {
        *buf = Vec::new();
    }
}

#[cfg(test)]
mod tests;
