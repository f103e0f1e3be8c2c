//! Verifying stored blobs without an allocation per blob, for the loops
//! that read every byte of many packs (`check --read-data`, `prune`'s
//! repacking).
//!
//! The checks are exactly those of [`crate::pack::decode_blob`] (a test holds the
//! two to the same verdicts): the stored length must be the index's, the
//! MAC must verify, a compressed blob must expand to exactly its recorded
//! length (at most [`MAX_BLOB_SIZE`]) and the plaintext must hash to the
//! blob's id. Only the cost differs:
//! - [`BlobVerifier::open_in_place`] decrypts where the blob lies in the
//!   caller's read buffer ([`MasterKey::decrypt_in_slice`]);
//!   [`BlobVerifier::open_copy`] first copies it into a reused scratch
//!   buffer, for callers that still need the stored bytes;
//! - a compressed blob expands in one call into a reused output buffer
//!   ([`compression::decompress_into`], one zstd context per thread)
//!   rather than through the streaming decoder into a growing vector.
//!
//! Each worker thread keeps one verifier, so its buffers are allocated
//! once per thread rather than once per blob (multi-MiB allocations cost
//! page faults every time). Buffers that a large blob grew beyond
//! [`KEEP_CAPACITY`] are released afterwards, so memory per thread stays
//! bounded by typical blob sizes, not by the largest blob seen.

use crate::compression;
use crate::crypto::{MasterKey, CIPHERTEXT_OVERHEAD};
use crate::error::{Error, Result};
use crate::id::{Id, PackId};
use crate::pack::{PackBlob, MAX_BLOB_SIZE};

/// Compressed blobs claiming at most this plaintext length expand in one
/// call into a buffer of exactly that size; a larger claim goes through
/// the streaming decoder, which allocates only as real output arrives.
const BULK_LIMIT: u32 = 64 << 20;

/// Buffers are kept between blobs up to this capacity.
const KEEP_CAPACITY: usize = 16 << 20;

/// A blob verifier with reused buffers; see the module docs.
#[derive(Default)]
pub(crate) struct BlobVerifier {
    /// The stored bytes of the last blob verified by [`Self::open_copy`].
    scratch: Vec<u8>,
    /// The plaintext of the last compressed blob.
    plain: Vec<u8>,
}

impl BlobVerifier {
    /// Verify `blob` of pack `pack` from its `stored` bytes, decrypting them
    /// in place (they are left as they were if the MAC is wrong). Returns
    /// the plaintext, which lies in `stored` or in the verifier.
    pub fn open_in_place<'a>(
        &'a mut self,
        key: &MasterKey,
        pack: &PackId,
        blob: &PackBlob,
        stored: &'a mut [u8],
    ) -> Result<&'a [u8]> {
        shrink(&mut self.plain);
        open(&mut self.plain, key, pack, blob, stored)
    }

    /// Verify `blob` as [`Self::open_in_place`] does, leaving `stored`
    /// untouched. Returns the plaintext, which lies in the verifier.
    pub fn open_copy(
        &mut self,
        key: &MasterKey,
        pack: &PackId,
        blob: &PackBlob,
        stored: &[u8],
    ) -> Result<&[u8]> {
        shrink(&mut self.scratch);
        shrink(&mut self.plain);
        self.scratch.clear();
        self.scratch.extend_from_slice(stored);
        open(&mut self.plain, key, pack, blob, &mut self.scratch)
    }
}

/// Release `buf` if a large blob grew it beyond [`KEEP_CAPACITY`].
fn shrink(buf: &mut Vec<u8>) {
    if buf.capacity() > KEEP_CAPACITY {
        *buf = Vec::new();
    }
}

/// The checks of the module docs; a compressed blob expands into `plain`.
fn open<'a>(
    plain: &'a mut Vec<u8>,
    key: &MasterKey,
    pack: &PackId,
    blob: &PackBlob,
    stored: &'a mut [u8],
) -> Result<&'a [u8]> {
    let what = || format!("{} in pack {pack}", blob.handle());
    if stored.len() as u64 != u64::from(blob.length) {
        return Err(Error::corrupt(
            what(),
            format!("got {} bytes, expected {}", stored.len(), blob.length),
        ));
    }
    if stored.len() < CIPHERTEXT_OVERHEAD {
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
    let decrypted = key
        .decrypt_in_slice(stored)
        .map_err(|_| Error::MacMismatch(what()))?;
    let plaintext: &[u8] = match blob.uncompressed_length {
        None => decrypted,
        Some(expected) => {
            let cannot = |e: Error| Error::corrupt(what(), format!("cannot decompress: {e}"));
            // Casts: expected <= MAX_BLOB_SIZE (checked above) fits in usize.
            if expected <= BULK_LIMIT {
                compression::decompress_into(decrypted, expected as usize, plain)
                    .map_err(cannot)?;
            } else {
                *plain = compression::decompress(decrypted, expected as usize).map_err(cannot)?;
            }
            if plain.len() != expected as usize {
                return Err(Error::corrupt(
                    what(),
                    format!("decompressed to {} bytes, expected {expected}", plain.len()),
                ));
            }
            plain
        }
    };
    let actual = Id::hash(plaintext);
    if actual != blob.id.0 {
        return Err(Error::HashMismatch {
            what: what(),
            expected: blob.id.to_hex(),
            actual: actual.to_hex(),
        });
    }
    Ok(plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::BlobId;
    use crate::pack::decode_blob;
    use crate::testutil::stored_blob;

    /// Both ways of the verifier on `bytes`: the plaintext or the error's
    /// text, after checking that `open_copy` left `bytes` alone.
    fn verdicts(
        v: &mut BlobVerifier,
        key: &MasterKey,
        blob: &PackBlob,
        bytes: &[u8],
    ) -> [std::result::Result<Vec<u8>, String>; 2] {
        let pack = PackId(Id::hash(b"pack"));
        let copy = v
            .open_copy(key, &pack, blob, bytes)
            .map(<[u8]>::to_vec)
            .map_err(|e| e.to_string());
        let mut in_place = bytes.to_vec();
        let direct = v
            .open_in_place(key, &pack, blob, &mut in_place)
            .map(<[u8]>::to_vec)
            .map_err(|e| e.to_string());
        [copy, direct]
    }

    #[test]
    fn agrees_with_decode_blob_on_good_and_damaged_blobs() {
        let key = MasterKey::generate();
        let pack = PackId(Id::hash(b"pack"));
        let text: Vec<u8> = b"check me ".repeat(3000);
        let mut v = BlobVerifier::default();
        for compress in [false, true] {
            let (blob, bytes) = stored_blob(&key, &text, compress);
            let mut cases: Vec<(PackBlob, Vec<u8>)> = vec![(blob, bytes.clone())];
            // A flipped byte (MAC), a wrong id (hash), a wrong length.
            let mut flipped = bytes.clone();
            flipped[20] ^= 1;
            cases.push((blob, flipped));
            let mut wrong_id = blob;
            wrong_id.id = BlobId(Id::hash(b"other"));
            cases.push((wrong_id, bytes.clone()));
            cases.push((blob, bytes[..bytes.len() - 1].to_vec()));
            if compress {
                // A compressed blob claiming another plaintext length.
                let mut wrong_len = blob;
                wrong_len.uncompressed_length = Some(text.len() as u32 + 1);
                cases.push((wrong_len, bytes.clone()));
            }
            for (blob, bytes) in cases {
                let expected =
                    decode_blob(&key, &pack, &blob, &bytes).map_err(|e| std::mem::discriminant(&e));
                for got in verdicts(&mut v, &key, &blob, &bytes) {
                    match (&expected, got) {
                        (Ok(plain), Ok(got)) => assert_eq!(&got, plain),
                        (Err(_), Err(_)) => {}
                        (expected, got) => panic!("{expected:?} vs {got:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn a_large_buffer_is_not_kept() {
        let key = MasterKey::generate();
        let big = vec![7u8; KEEP_CAPACITY + 1];
        let (blob, bytes) = stored_blob(&key, &big, true);
        let mut v = BlobVerifier::default();
        let [copy, direct] = verdicts(&mut v, &key, &blob, &bytes);
        assert_eq!(copy.unwrap(), big);
        assert_eq!(direct.unwrap(), big);
        let (small, bytes) = stored_blob(&key, b"small", true);
        assert!(v.plain.capacity() > KEEP_CAPACITY);
        let pack = PackId(Id::hash(b"pack"));
        v.open_copy(&key, &pack, &small, &bytes).unwrap();
        assert!(v.plain.capacity() <= KEEP_CAPACITY);
        assert!(v.scratch.capacity() <= KEEP_CAPACITY);
    }
}
