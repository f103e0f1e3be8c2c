//! The binary pack header: one entry per blob, in the order the blobs are
//! stored in the pack, exactly as restic writes it.
//!
//! An entry is
//!
//! | bytes | field                                             |
//! |-------|---------------------------------------------------|
//! | 1     | type: 0 data, 1 tree, 2 compressed data, 3 compressed tree |
//! | 4     | length of the encrypted blob in the pack, u32 LE  |
//! | 4     | *compressed types only*: plaintext length, u32 LE |
//! | 32    | blob id                                           |
//!
//! Offsets are not stored: blobs lie back to back from offset 0, so a blob's
//! offset is the sum of the lengths of the entries before it.
//! [`decode_header`] recomputes them and rejects entries whose offsets would
//! not fit the `u32` offsets of index files.
//!
//! restic reads a plaintext length of 0 as "not compressed"; so does
//! [`decode_header`], and [`PackBlob::uncompressed_length`] is therefore
//! never `Some(0)` for a decoded entry.

use crate::blob::{BlobHandle, BlobType};
use crate::crypto::CIPHERTEXT_OVERHEAD;
use crate::error::{Error, Result};
use crate::id::{BlobId, Id, ID_LEN};

/// Size of an entry for an uncompressed blob.
pub const PLAIN_ENTRY_SIZE: usize = 1 + 4 + ID_LEN;

/// Size of an entry for a compressed blob.
pub const COMPRESSED_ENTRY_SIZE: usize = 1 + 4 + 4 + ID_LEN;

const TYPE_DATA: u8 = 0;
const TYPE_TREE: u8 = 1;
const TYPE_COMPRESSED_DATA: u8 = 2;
const TYPE_COMPRESSED_TREE: u8 = 3;

/// One blob of a pack: what its header entry says, plus its offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PackBlob {
    pub tpe: BlobType,
    pub id: BlobId,
    /// Offset of the encrypted blob from the start of the pack.
    pub offset: u32,
    /// Length of the encrypted blob in the pack (IV + ciphertext + MAC).
    pub length: u32,
    /// Plaintext length of a compressed blob; `None` if stored uncompressed.
    pub uncompressed_length: Option<u32>,
}

impl PackBlob {
    /// The blob's type and id.
    pub fn handle(&self) -> BlobHandle {
        BlobHandle::new(self.tpe, self.id)
    }

    /// True if the blob is stored compressed.
    pub fn is_compressed(&self) -> bool {
        self.uncompressed_length.is_some()
    }

    /// Length of the blob's plaintext (after decryption and decompression).
    pub fn plaintext_len(&self) -> u32 {
        plaintext_len(self.length, self.uncompressed_length)
    }

    /// Offset one past the blob's last byte in the pack.
    pub fn end(&self) -> u64 {
        u64::from(self.offset) + u64::from(self.length)
    }

    /// Size of this blob's header entry.
    pub fn entry_size(&self) -> usize {
        if self.is_compressed() {
            COMPRESSED_ENTRY_SIZE
        } else {
            PLAIN_ENTRY_SIZE
        }
    }
}

/// Plaintext length of a blob stored in `length` encrypted bytes.
pub(crate) fn plaintext_len(length: u32, uncompressed_length: Option<u32>) -> u32 {
    // CIPHERTEXT_OVERHEAD is a small constant; the cast cannot truncate.
    uncompressed_length.unwrap_or_else(|| length.saturating_sub(CIPHERTEXT_OVERHEAD as u32))
}

/// Size of the plaintext header for `blobs`.
pub fn header_len(blobs: &[PackBlob]) -> usize {
    blobs.iter().map(PackBlob::entry_size).sum()
}

/// Size of a pack file holding `blobs`: the blobs, the encrypted header and
/// the trailing header length.
pub fn pack_size(blobs: &[PackBlob]) -> u64 {
    let data: u64 = blobs.iter().map(|b| u64::from(b.length)).sum();
    data + (header_len(blobs) + CIPHERTEXT_OVERHEAD + super::HEADER_LENGTH_SIZE) as u64
}

/// Serialize the plaintext header for `blobs`, in order. Offsets are not
/// stored (they are implied by the order and lengths).
pub fn encode_header(blobs: &[PackBlob]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header_len(blobs));
    for b in blobs {
        let tpe = match (b.tpe, b.is_compressed()) {
            (BlobType::Data, false) => TYPE_DATA,
            (BlobType::Tree, false) => TYPE_TREE,
            (BlobType::Data, true) => TYPE_COMPRESSED_DATA,
            (BlobType::Tree, true) => TYPE_COMPRESSED_TREE,
        };
        out.push(tpe);
        out.extend_from_slice(&b.length.to_le_bytes());
        if let Some(n) = b.uncompressed_length {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(&b.id.0 .0);
    }
    out
}

/// Parse a decrypted header, computing each blob's offset.
///
/// Fails on an unknown type byte, a truncated entry, or an offset that does
/// not fit in 32 bits (index files store offsets as `u32`). An empty header yields no blobs.
pub fn decode_header(plain: &[u8]) -> Result<Vec<PackBlob>> {
    let corrupt = |reason: String| Error::corrupt("pack header", reason);
    let mut blobs = Vec::with_capacity(plain.len() / COMPRESSED_ENTRY_SIZE);
    let mut rest = plain;
    let mut next_offset: u64 = 0;
    while let Some((&tpe_byte, after_type)) = rest.split_first() {
        let index = blobs.len();
        let (tpe, compressed) = match tpe_byte {
            TYPE_DATA => (BlobType::Data, false),
            TYPE_TREE => (BlobType::Tree, false),
            TYPE_COMPRESSED_DATA => (BlobType::Data, true),
            TYPE_COMPRESSED_TREE => (BlobType::Tree, true),
            other => return Err(corrupt(format!("entry {index}: invalid blob type {other}"))),
        };
        let size = if compressed {
            COMPRESSED_ENTRY_SIZE
        } else {
            PLAIN_ENTRY_SIZE
        };
        if rest.len() < size {
            return Err(corrupt(format!(
                "entry {index} is truncated ({} of {size} bytes)",
                rest.len()
            )));
        }
        let (length, after_length) = read_u32(after_type);
        let (uncompressed_length, id_bytes) = if compressed {
            let (n, after) = read_u32(after_length);
            // restic treats a plaintext length of 0 as "not compressed".
            ((n != 0).then_some(n), after)
        } else {
            (None, after_length)
        };
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(&id_bytes[..ID_LEN]);
        let offset = u32::try_from(next_offset).map_err(|_| {
            corrupt(format!(
                "entry {index}: blob offset {next_offset} does not fit in 32 bits"
            ))
        })?;
        blobs.push(PackBlob {
            tpe,
            id: BlobId(Id(id)),
            offset,
            length,
            uncompressed_length,
        });
        next_offset += u64::from(length);
        rest = &rest[size..];
    }
    Ok(blobs)
}

/// Split a little-endian u32 off the front of `bytes` (at least 4 long).
fn read_u32(bytes: &[u8]) -> (u32, &[u8]) {
    let (head, tail) = bytes.split_at(4);
    let mut le = [0u8; 4];
    le.copy_from_slice(head);
    (u32::from_le_bytes(le), tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(byte: u8) -> BlobId {
        BlobId(Id([byte; ID_LEN]))
    }

    fn sample() -> Vec<PackBlob> {
        vec![
            PackBlob {
                tpe: BlobType::Data,
                id: id(0x11),
                offset: 0,
                length: 0x0102_0304,
                uncompressed_length: None,
            },
            PackBlob {
                tpe: BlobType::Tree,
                id: id(0x22),
                offset: 0x0102_0304,
                length: 40,
                uncompressed_length: None,
            },
            PackBlob {
                tpe: BlobType::Data,
                id: id(0x33),
                offset: 0x0102_032c,
                length: 100,
                uncompressed_length: Some(0xaabb_ccdd),
            },
            PackBlob {
                tpe: BlobType::Tree,
                id: id(0x44),
                offset: 0x0102_0390,
                length: 33,
                uncompressed_length: Some(7),
            },
        ]
    }

    #[test]
    fn golden_bytes() {
        let mut expected = Vec::new();
        expected.extend_from_slice(&[0x00, 0x04, 0x03, 0x02, 0x01]);
        expected.extend_from_slice(&[0x11; 32]);
        expected.extend_from_slice(&[0x01, 40, 0, 0, 0]);
        expected.extend_from_slice(&[0x22; 32]);
        expected.extend_from_slice(&[0x02, 100, 0, 0, 0, 0xdd, 0xcc, 0xbb, 0xaa]);
        expected.extend_from_slice(&[0x33; 32]);
        expected.extend_from_slice(&[0x03, 33, 0, 0, 0, 7, 0, 0, 0]);
        expected.extend_from_slice(&[0x44; 32]);

        let blobs = sample();
        let encoded = encode_header(&blobs);
        assert_eq!(encoded, expected);
        assert_eq!(encoded.len(), header_len(&blobs));
        assert_eq!(encoded.len(), 2 * 37 + 2 * 41);
        assert_eq!(decode_header(&expected).unwrap(), blobs);
    }

    #[test]
    fn sizes_and_helpers() {
        let blobs = sample();
        assert_eq!(blobs[0].plaintext_len(), 0x0102_0304 - 32);
        assert_eq!(blobs[2].plaintext_len(), 0xaabb_ccdd);
        assert_eq!(blobs[1].end(), 0x0102_032c);
        assert_eq!(blobs[3].handle(), BlobHandle::new(BlobType::Tree, id(0x44)));
        let data: u64 = 0x0102_0304 + 40 + 100 + 33;
        assert_eq!(pack_size(&blobs), data + 156 + 32 + 4);
        assert!(decode_header(&[]).unwrap().is_empty());
    }

    #[test]
    fn zero_uncompressed_length_reads_as_uncompressed() {
        let mut bytes = vec![0x02, 50, 0, 0, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(&[0x55; 32]);
        let blobs = decode_header(&bytes).unwrap();
        assert_eq!(blobs[0].uncompressed_length, None);
        assert_eq!(blobs[0].tpe, BlobType::Data);
        assert_eq!(blobs[0].length, 50);
    }

    #[test]
    fn rejects_unknown_type() {
        let mut bytes = encode_header(&sample());
        bytes[37] = 4;
        let err = decode_header(&bytes).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        assert!(
            err.to_string().contains("entry 1: invalid blob type 4"),
            "{err}"
        );
    }

    #[test]
    fn rejects_truncated_entries() {
        let bytes = encode_header(&sample());
        // Cutting anywhere but at an entry boundary must fail cleanly.
        let boundaries = [0, 37, 74, 115, 156];
        for cut in 0..bytes.len() {
            let res = decode_header(&bytes[..cut]);
            if let Some(n) = boundaries.iter().position(|&b| b == cut) {
                assert_eq!(res.unwrap().len(), n);
            } else {
                let err = res.unwrap_err();
                assert!(err.to_string().contains("truncated"), "cut {cut}: {err}");
            }
        }
    }

    #[test]
    fn rejects_offset_overflow() {
        let big = |b: u8| PackBlob {
            tpe: BlobType::Data,
            id: id(b),
            offset: 0,
            length: 0x8000_0000,
            uncompressed_length: None,
        };
        // Two 2 GiB blobs end exactly at 4 GiB: a third one cannot start.
        let two = decode_header(&encode_header(&[big(1), big(2)])).unwrap();
        assert_eq!(two[1].offset, 0x8000_0000);
        let err = decode_header(&encode_header(&[big(1), big(2), big(3)])).unwrap_err();
        assert!(err.to_string().contains("entry 2"), "{err}");
    }
}
