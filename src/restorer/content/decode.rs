//! Decrypting, decompressing and verifying data blobs in a content worker,
//! with one reused zstd context per worker.
//!
//! The checks are exactly those of [`crate::pack::decode_blob`] (and a test
//! holds the two to the same results): the encrypted length must be the
//! index's, the MAC must verify, a compressed blob must expand to exactly
//! its recorded length (never more: the output buffer has that capacity,
//! at most `MAX_BLOB_SIZE`), and the plaintext must hash to the blob id.
//! The only difference is speed: creating a zstd context per blob costs a
//! `cpuid`, which traps to the hypervisor on virtual machines and took a
//! sixth of a small-file restore's CPU time.

use crate::crypto::{MasterKey, CIPHERTEXT_OVERHEAD};
use crate::error::{Error, Result};
use crate::id::{Id, PackId};
use crate::pack::{PackBlob, MAX_BLOB_SIZE};

/// A blob decoder with a reusable decompression context.
pub(super) struct Decoder {
    zstd: Option<zstd::bulk::Decompressor<'static>>,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder { zstd: None }
    }

    /// The plaintext of `blob` of pack `pack`, from its `encrypted` bytes.
    pub fn decode(
        &mut self,
        key: &MasterKey,
        pack: &PackId,
        blob: &PackBlob,
        encrypted: &[u8],
    ) -> Result<Vec<u8>> {
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
        let decrypted = key
            .decrypt(encrypted)
            .map_err(|_| Error::MacMismatch(what()))?;
        let plain = match blob.uncompressed_length {
            None => decrypted,
            Some(expected) => self.decompress(&decrypted, expected as usize, &what)?,
        };
        let actual = Id::hash(&plain);
        if actual != blob.id.0 {
            return Err(Error::HashMismatch {
                what: what(),
                expected: blob.id.to_hex(),
                actual: actual.to_hex(),
            });
        }
        Ok(plain)
    }

    fn decompress(
        &mut self,
        data: &[u8],
        expected: usize,
        what: &dyn Fn() -> String,
    ) -> Result<Vec<u8>> {
        let corrupt =
            |reason: String| Error::corrupt(what(), format!("cannot decompress: {reason}"));
        if data.is_empty() {
            return if expected == 0 {
                Ok(Vec::new())
            } else {
                Err(corrupt("no compressed data".into()))
            };
        }
        let zstd = match &mut self.zstd {
            Some(zstd) => zstd,
            empty => {
                empty.insert(zstd::bulk::Decompressor::new().map_err(|e| corrupt(e.to_string()))?)
            }
        };
        let mut plain = Vec::with_capacity(expected);
        zstd.decompress_to_buffer(data, &mut plain)
            .map_err(|e| corrupt(e.to_string()))?;
        if plain.len() != expected {
            return Err(Error::corrupt(
                what(),
                format!("decompressed to {} bytes, expected {expected}", plain.len()),
            ));
        }
        Ok(plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::BlobType;
    use crate::id::BlobId;
    use crate::pack::decode_blob;

    /// A blob as a pack holds it: (header entry, encrypted bytes).
    fn stored(key: &MasterKey, plain: &[u8], compress: bool) -> (PackBlob, Vec<u8>) {
        let (body, uncompressed_length) = if compress {
            (
                zstd::bulk::compress(plain, 3).unwrap(),
                Some(plain.len() as u32),
            )
        } else {
            (plain.to_vec(), None)
        };
        let encrypted = key.encrypt(&body);
        let blob = PackBlob {
            tpe: BlobType::Data,
            id: BlobId(Id::hash(plain)),
            offset: 0,
            length: encrypted.len() as u32,
            uncompressed_length,
        };
        (blob, encrypted)
    }

    #[test]
    fn agrees_with_decode_blob_on_good_and_bad_blobs() {
        let key = MasterKey::generate();
        let pack = PackId(Id::hash(b"pack"));
        let text: Vec<u8> = b"restore me ".repeat(1000);
        let mut decoder = Decoder::new();
        for compress in [false, true] {
            let (blob, encrypted) = stored(&key, &text, compress);
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
                let ours = decoder.decode(&key, &pack, blob, data);
                let theirs = decode_blob(&key, &pack, blob, data);
                assert_eq!(ours.is_ok(), theirs.is_ok(), "case {i} compress {compress}");
                match (ours, theirs) {
                    (Ok(a), Ok(b)) => assert_eq!(a, b),
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
}
