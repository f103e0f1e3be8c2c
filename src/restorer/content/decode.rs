//! Decrypting, decompressing and verifying data blobs in a content worker,
//! in place in the ranged read's buffer, with one reused output buffer per
//! worker.
//!
//! The checks are exactly those of [`crate::pack::decode_blob`] (and a test
//! holds the two to the same results): the encrypted length must be the
//! index's, the MAC must verify, a compressed blob must expand to exactly
//! its recorded length (zstd never writes past the output buffer, which
//! holds at most `MAX_BLOB_SIZE`), and the plaintext must hash to the blob
//! id.
//! The differences are speed only:
//! - the blob is verified and decrypted where it lies in the read
//!   ([`MasterKey::decrypt_in_slice`]): no copy and no allocation per blob;
//!   an uncompressed blob's plaintext is that slice;
//! - a compressed blob expands into the worker's output buffer, whose
//!   allocation is kept from blob to blob (no page faults for every new
//!   multi-MiB buffer);
//! - a compressed blob whose zstd frame holds only raw blocks (restic's
//!   incompressible data) is not decompressed at all: its content is the
//!   blocks' pieces of the decrypted slice ([`frame`]), hashed and written
//!   from there ([`Plain::Pieces`]);
//! - decompression goes through [`compression::decompress_into`], which
//!   keeps one zstd context per thread (creating one per blob costs a
//!   `cpuid`, which traps to the hypervisor on virtual machines and took a
//!   sixth of a small-file restore's CPU time).

use std::ops::Range;

use sha2::{Digest, Sha256};

use super::frame;
use crate::compression;
use crate::crypto::{MasterKey, CIPHERTEXT_OVERHEAD};
use crate::error::{Error, Result};
use crate::id::{Id, PackId};
use crate::pack::{PackBlob, MAX_BLOB_SIZE};

/// A verified blob's content.
#[derive(Clone, Copy, Debug)]
pub(super) enum Plain<'a> {
    /// In one piece.
    Whole(&'a [u8]),
    /// The given pieces of `data`, in order (raw zstd blocks).
    Pieces {
        data: &'a [u8],
        pieces: &'a [Range<usize>],
    },
}

impl<'a> Plain<'a> {
    /// The content's pieces in order (one for [`Plain::Whole`]).
    pub fn slices(self) -> impl Iterator<Item = &'a [u8]> {
        let (data, pieces) = match self {
            Plain::Whole(data) => (data, None),
            Plain::Pieces { data, pieces } => (data, Some(pieces)),
        };
        let whole = pieces.is_none().then_some(data);
        let parts = pieces
            .unwrap_or(&[])
            .iter()
            .filter_map(move |r| data.get(r.clone()));
        whole.into_iter().chain(parts)
    }

    /// The content's length.
    pub fn len(self) -> usize {
        self.slices().map(<[u8]>::len).sum()
    }

    /// Whether every byte is zero.
    pub fn is_zero(self) -> bool {
        self.slices().all(super::write::is_zero)
    }
}

/// A blob decoder with reusable buffers.
pub(super) struct Decoder {
    /// The last decompressed blob (at most `MAX_BLOB_SIZE` bytes).
    plain: Vec<u8>,
    /// The last raw frame's pieces.
    pieces: Vec<Range<usize>>,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder {
            plain: Vec::new(),
            pieces: Vec::new(),
        }
    }

    /// The plaintext of `blob` of pack `pack`, from its `encrypted` bytes,
    /// which are decrypted in place (left as they were if the MAC is
    /// wrong). The plaintext lies in `encrypted` or in the decoder.
    pub fn decode<'a>(
        &'a mut self,
        key: &MasterKey,
        pack: &PackId,
        blob: &PackBlob,
        encrypted: &'a mut [u8],
    ) -> Result<Plain<'a>> {
        let what = || format!("{} in pack {pack}", blob.handle());
        if encrypted.len() as u64 != u64::from(blob.length) {
            return Err(Error::corrupt(
                what(),
                format!("got {} bytes, expected {}", encrypted.len(), blob.length),
            ));
        }
        if encrypted.len() < CIPHERTEXT_OVERHEAD {
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
        let decrypted: &'a [u8] = key
            .decrypt_in_slice(encrypted)
            .map_err(|_| Error::MacMismatch(what()))?;
        let Decoder { plain, pieces } = self;
        let plain = match blob.uncompressed_length {
            None => Plain::Whole(decrypted),
            Some(expected) => {
                let expected = expected as usize;
                if frame::raw_pieces(decrypted, expected, pieces).is_some() {
                    Plain::Pieces {
                        data: decrypted,
                        pieces,
                    }
                } else {
                    compression::decompress_into(decrypted, expected, plain)
                        .map_err(|e| Error::corrupt(what(), format!("cannot decompress: {e}")))?;
                    Plain::Whole(plain)
                }
            }
        };
        let mut hasher = Sha256::new();
        for part in plain.slices() {
            hasher.update(part);
        }
        let actual = Id(hasher.finalize().into());
        if actual != blob.id.0 {
            return Err(Error::HashMismatch {
                what: what(),
                expected: blob.id.to_hex(),
                actual: actual.to_hex(),
            });
        }
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::BlobId;
    use crate::pack::decode_blob;
    use crate::testutil::stored_blob;

    /// A decoded blob's content in one piece.
    fn content(plain: Plain<'_>) -> Vec<u8> {
        plain.slices().flatten().copied().collect()
    }

    #[test]
    fn agrees_with_decode_blob_on_good_and_bad_blobs() {
        let key = MasterKey::generate();
        let pack = PackId(Id::hash(b"pack"));
        let compressible: Vec<u8> = b"restore me ".repeat(1000);
        // zstd stores noise as raw blocks: decoded without zstd.
        let noise = crate::testutil::noise(7, 300_000);
        let mut decoder = Decoder::new();
        for (text, compress) in [
            (&compressible, false),
            (&compressible, true),
            (&noise, true),
        ] {
            let (blob, encrypted) = stored_blob(&key, text, compress);
            let mut cases: Vec<(PackBlob, Vec<u8>)> = vec![(blob, encrypted.clone())];
            let mut flipped = encrypted.clone();
            flipped[20] ^= 1;
            cases.push((blob, flipped));
            let mut wrong_id = blob;
            wrong_id.id = BlobId(Id::hash(b"other"));
            cases.push((wrong_id, encrypted.clone()));
            cases.push((blob, encrypted[..encrypted.len() - 1].to_vec()));
            if compress {
                let mut short = blob;
                short.uncompressed_length = Some(text.len() as u32 - 1);
                cases.push((short, encrypted.clone()));
                let mut long = blob;
                long.uncompressed_length = Some(text.len() as u32 + 1);
                cases.push((long, encrypted.clone()));
            }
            for (i, (blob, data)) in cases.iter().enumerate() {
                let mut in_place = data.clone();
                let ours = decoder.decode(&key, &pack, blob, &mut in_place);
                let theirs = decode_blob(&key, &pack, blob, data);
                assert_eq!(ours.is_ok(), theirs.is_ok(), "case {i} compress {compress}");
                match (ours, theirs) {
                    (Ok(a), Ok(b)) => assert_eq!(content(a), b),
                    (Err(a), Err(b)) => assert_eq!(
                        std::mem::discriminant(&a),
                        std::mem::discriminant(&b),
                        "case {i}: {a} vs {b}"
                    ),
                    _ => unreachable!(),
                }
            }
        }
    }

    #[test]
    fn a_reused_buffer_never_lets_a_blob_grow_past_its_length() {
        let key = MasterKey::generate();
        let pack = PackId(Id::hash(b"pack"));
        let mut decoder = Decoder::new();
        // A large blob first: the output buffer keeps its capacity.
        let large: Vec<u8> = b"large blob ".repeat(100_000);
        let (blob, mut data) = stored_blob(&key, &large, true);
        assert_eq!(
            content(decoder.decode(&key, &pack, &blob, &mut data).unwrap()),
            large
        );
        // A smaller blob that claims one byte less than it expands to fails,
        // although the buffer would hold it.
        let small: Vec<u8> = b"small ".repeat(1000);
        let (mut blob, data) = stored_blob(&key, &small, true);
        blob.uncompressed_length = Some(small.len() as u32 - 1);
        assert!(decoder
            .decode(&key, &pack, &blob, &mut data.clone())
            .is_err());
        // Then the right length decodes to exactly that blob.
        blob.uncompressed_length = Some(small.len() as u32);
        assert_eq!(
            content(
                decoder
                    .decode(&key, &pack, &blob, &mut data.clone())
                    .unwrap()
            ),
            small
        );
    }

    #[test]
    fn blobs_are_decrypted_where_they_lie_and_bad_ones_left_alone() {
        let key = MasterKey::generate();
        let pack = PackId(Id::hash(b"pack"));
        let mut decoder = Decoder::new();
        let text: Vec<u8> = b"in place ".repeat(500);
        let (blob, encrypted) = stored_blob(&key, &text, false);
        // A wrong MAC leaves the bytes as they were.
        let mut bad = encrypted.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let before = bad.clone();
        assert!(decoder.decode(&key, &pack, &blob, &mut bad).is_err());
        assert_eq!(bad, before);
        // A good uncompressed blob is its own plaintext, inside the buffer.
        let mut good = encrypted.clone();
        let range = good.as_ptr_range();
        let plain = decoder.decode(&key, &pack, &blob, &mut good).unwrap();
        assert!(matches!(plain, Plain::Whole(_)));
        assert_eq!(content(plain), text);
        assert!(plain.slices().all(|s| range.contains(&s.as_ptr())));
        // So are the raw blocks of a compressed incompressible blob.
        let noise = crate::testutil::noise(3, 400_000);
        let (blob, mut raw) = stored_blob(&key, &noise, true);
        let range = raw.as_ptr_range();
        let plain = decoder.decode(&key, &pack, &blob, &mut raw).unwrap();
        assert!(matches!(plain, Plain::Pieces { pieces, .. } if pieces.len() > 1));
        assert_eq!(plain.len(), noise.len());
        assert_eq!(content(plain), noise);
        assert!(plain.slices().all(|s| range.contains(&s.as_ptr())));
    }
}
