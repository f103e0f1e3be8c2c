//! Reading packs: the header from the tail of the file, and single blobs.
//!
//! Everything read from a pack is untrusted. Lengths are checked against the
//! file size before anything is allocated or read, the header and every blob
//! are authenticated before they are parsed, and a blob's plaintext must
//! hash to its id. Every error names the pack (and the blob, if any).
//!
//! The header is read like restic does: one request for the tail of the file
//! sized for [`EAGER_ENTRIES`] entries, which covers the header of most small
//! packs, and a second request only if the header turns out to be larger.

use crate::crypto::{MasterKey, CIPHERTEXT_OVERHEAD};
use crate::decode::decode_copied;
use crate::error::{Error, Result};
use crate::id::PackId;

use super::header::{decode_header, PackBlob, COMPRESSED_ENTRY_SIZE, PLAIN_ENTRY_SIZE};
use super::{HEADER_LENGTH_SIZE, MAX_HEADER_SIZE};

/// Header entries fetched by the first read of [`read_header`].
pub const EAGER_ENTRIES: usize = 15;

/// The smallest possible pack: one blob entry, its encrypted header and the
/// header length (the blob itself may in theory be empty).
const MIN_PACK_SIZE: u64 = (PLAIN_ENTRY_SIZE + CIPHERTEXT_OVERHEAD + HEADER_LENGTH_SIZE) as u64;

/// Read, authenticate and parse the header of pack `pack_id`, which is
/// `pack_size` bytes long. `read_at(offset, length)` must return exactly
/// `length` bytes of the pack starting at `offset`; it is called once, or
/// twice for packs with more than about [`EAGER_ENTRIES`] blobs.
///
/// Checks that the file is large enough, that the header length is sane and
/// lies within the file, that the header's MAC is valid
/// ([`Error::MacMismatch`]), that it parses, and that no blob overlaps the
/// header.
pub fn read_header<F>(
    key: &MasterKey,
    pack_id: &PackId,
    pack_size: u64,
    mut read_at: F,
) -> Result<Vec<PackBlob>>
where
    F: FnMut(u64, u64) -> Result<Vec<u8>>,
{
    let what = format!("pack {pack_id}");
    let corrupt = |reason: String| Error::corrupt(&what, reason);
    if pack_size < MIN_PACK_SIZE {
        return Err(corrupt(format!("file is too short ({pack_size} bytes)")));
    }

    let eager = pack_size.min(
        (EAGER_ENTRIES * COMPRESSED_ENTRY_SIZE + CIPHERTEXT_OVERHEAD + HEADER_LENGTH_SIZE) as u64,
    );
    let mut tail = read_exact(&mut read_at, &what, pack_size - eager, eager)?;
    let (rest, length_field) = tail.split_at(tail.len() - HEADER_LENGTH_SIZE);
    let mut le = [0u8; HEADER_LENGTH_SIZE];
    le.copy_from_slice(length_field);
    let header_len = u64::from(u32::from_le_bytes(le));

    if header_len < CIPHERTEXT_OVERHEAD as u64 {
        return Err(corrupt(format!("header length {header_len} is too short")));
    }
    if header_len > pack_size - HEADER_LENGTH_SIZE as u64 {
        return Err(corrupt(format!(
            "header length {header_len} is larger than the file ({pack_size} bytes)"
        )));
    }
    if header_len > MAX_HEADER_SIZE as u64 {
        return Err(corrupt(format!(
            "header length {header_len} exceeds the maximum of {MAX_HEADER_SIZE}"
        )));
    }
    let header_start = pack_size - HEADER_LENGTH_SIZE as u64 - header_len;

    let mut header = if header_len <= rest.len() as u64 {
        // Casts: header_len <= rest.len(), so it fits in usize.
        let skip = rest.len() - header_len as usize;
        tail.truncate(tail.len() - HEADER_LENGTH_SIZE);
        tail.drain(..skip);
        tail
    } else {
        read_exact(&mut read_at, &what, header_start, header_len)?
    };

    key.decrypt_in_place(&mut header)
        .map_err(|_| Error::MacMismatch(format!("{what} header")))?;
    let blobs = decode_header(&header).map_err(|e| match e {
        Error::Corrupt { reason, .. } => Error::corrupt(format!("{what} header"), reason),
        other => other,
    })?;
    if let Some(b) = blobs.iter().find(|b| b.end() > header_start) {
        return Err(Error::corrupt(
            format!("{what} header"),
            format!(
                "{} at offset {} with length {} overlaps the header at offset {header_start}",
                b.handle(),
                b.offset,
                b.length
            ),
        ));
    }
    Ok(blobs)
}

/// Call `read_at` and check it returned exactly `length` bytes.
fn read_exact<F>(read_at: &mut F, what: &str, offset: u64, length: u64) -> Result<Vec<u8>>
where
    F: FnMut(u64, u64) -> Result<Vec<u8>>,
{
    let data = read_at(offset, length)?;
    if data.len() as u64 != length {
        return Err(Error::corrupt(
            what,
            format!(
                "short read at offset {offset}: got {} of {length} bytes",
                data.len()
            ),
        ));
    }
    Ok(data)
}

/// Decrypt, decompress and verify one blob of pack `pack_id`, given the
/// `encrypted` bytes read from `blob.offset`: [`crate::decode`]'s checks,
/// into a new vector ([`decode_copied`]).
///
/// Errors name the blob and its pack: a length that does not match the
/// header or index ([`Error::Corrupt`]), a MAC failure
/// ([`Error::MacMismatch`]), a bad or oversized compressed stream, or a
/// plaintext that does not hash to the blob id ([`Error::HashMismatch`]).
/// Plaintexts larger than [`MAX_BLOB_SIZE`](super::MAX_BLOB_SIZE) are refused.
pub fn decode_blob(
    key: &MasterKey,
    pack_id: &PackId,
    blob: &PackBlob,
    encrypted: &[u8],
) -> Result<Vec<u8>> {
    decode_copied(key, pack_id, blob, encrypted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::BlobType;
    use crate::id::{BlobId, Id};
    use crate::pack::MAX_BLOB_SIZE;
    use crate::pack::{PackWriter, MAX_HEADER_ENTRIES};
    use std::cell::RefCell;

    /// A blob as the repository would store it.
    struct Stored {
        tpe: BlobType,
        plain: Vec<u8>,
        compress: bool,
    }

    fn stored(tpe: BlobType, plain: &[u8], compress: bool) -> Stored {
        Stored {
            tpe,
            plain: plain.to_vec(),
            compress,
        }
    }

    fn build(key: &MasterKey, blobs: &[Stored]) -> crate::pack::FinishedPack {
        let mut w = PackWriter::new();
        for b in blobs {
            let id = BlobId(Id::hash(&b.plain));
            if b.compress {
                let z = zstd::bulk::compress(&b.plain, 3).unwrap();
                let n = u32::try_from(b.plain.len()).unwrap();
                w.add(b.tpe, id, &key.encrypt(&z), Some(n)).unwrap();
            } else {
                w.add(b.tpe, id, &key.encrypt(&b.plain), None).unwrap();
            }
        }
        w.finish(key)
    }

    /// `read_header` over an in-memory file, recording the requests made.
    fn header_of(
        key: &MasterKey,
        id: &PackId,
        data: &[u8],
        size: u64,
    ) -> (Result<Vec<PackBlob>>, Vec<(u64, u64)>) {
        let calls = RefCell::new(Vec::new());
        let res = read_header(key, id, size, |off, len| {
            calls.borrow_mut().push((off, len));
            let start = usize::try_from(off).unwrap();
            let end = start + usize::try_from(len).unwrap();
            data.get(start..end)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| Error::NotFound("range".into()))
        });
        (res, calls.into_inner())
    }

    fn blob_bytes<'a>(data: &'a [u8], b: &PackBlob) -> &'a [u8] {
        &data[b.offset as usize..b.end() as usize]
    }

    fn sample(key: &MasterKey) -> (Vec<Stored>, crate::pack::FinishedPack) {
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let blobs = vec![
            stored(BlobType::Data, b"hello, world", false),
            stored(BlobType::Data, &big, true),
            stored(BlobType::Tree, br#"{"nodes":[]}"#, false),
            stored(BlobType::Tree, &[b'x'; 5000], true),
        ];
        let pack = build(key, &blobs);
        (blobs, pack)
    }

    #[test]
    fn roundtrip_compressed_and_plain() {
        let key = MasterKey::generate();
        let (blobs, pack) = sample(&key);
        assert_eq!(pack.id, PackId(Id::hash(&pack.data)));
        let (header, calls) = header_of(&key, &pack.id, &pack.data, pack.data.len() as u64);
        let header = header.unwrap();
        assert_eq!(calls.len(), 1, "a small header is read in one request");
        assert_eq!(header, pack.blobs);
        assert_eq!(
            crate::pack::header::pack_size(&header),
            pack.data.len() as u64
        );
        for (b, s) in header.iter().zip(&blobs) {
            assert_eq!(b.tpe, s.tpe);
            assert_eq!(b.is_compressed(), s.compress);
            assert_eq!(b.plaintext_len() as usize, s.plain.len());
            let plain = decode_blob(&key, &pack.id, b, blob_bytes(&pack.data, b)).unwrap();
            assert_eq!(plain, s.plain);
        }
        assert_eq!(header[1].uncompressed_length, Some(100_000));
        assert!(
            header[1].length < 10_000,
            "compressed blob is stored compressed"
        );
    }

    #[test]
    fn large_header_takes_a_second_request() {
        let key = MasterKey::generate();
        let blobs: Vec<Stored> = (0..40u32)
            .map(|i| stored(BlobType::Data, &i.to_le_bytes(), i % 2 == 0))
            .collect();
        let pack = build(&key, &blobs);
        let size = pack.data.len() as u64;
        let (header, calls) = header_of(&key, &pack.id, &pack.data, size);
        assert_eq!(header.unwrap(), pack.blobs);
        assert_eq!(calls.len(), 2);
        let header_len = 20 * 37 + 20 * 41 + 32;
        assert_eq!(calls[1], (size - 4 - header_len, header_len));
    }

    #[test]
    fn flipped_blob_byte_is_a_mac_error_naming_the_blob() {
        let key = MasterKey::generate();
        let (_, pack) = sample(&key);
        let b = pack.blobs[2];
        let mut bytes = blob_bytes(&pack.data, &b).to_vec();
        bytes[20] ^= 1;
        let err = decode_blob(&key, &pack.id, &b, &bytes).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::MacMismatch(_)), "{err}");
        assert!(
            msg.contains(&b.id.to_hex()) && msg.contains(&pack.id.to_hex()),
            "{msg}"
        );
        assert!(msg.contains("tree blob"), "{msg}");
    }

    #[test]
    fn flipped_header_byte_is_a_mac_error() {
        let key = MasterKey::generate();
        let (_, mut pack) = sample(&key);
        let n = pack.data.len();
        pack.data[n - 10] ^= 0x80;
        let (res, _) = header_of(&key, &pack.id, &pack.data, n as u64);
        let err = res.unwrap_err();
        assert!(
            matches!(err, Error::MacMismatch(ref w) if w.contains(&pack.id.to_hex())),
            "{err}"
        );
    }

    #[test]
    fn wrong_key_fails_authentication() {
        let key = MasterKey::generate();
        let (_, pack) = sample(&key);
        let other = MasterKey::generate();
        let (res, _) = header_of(&other, &pack.id, &pack.data, pack.data.len() as u64);
        assert!(matches!(res, Err(Error::MacMismatch(_))));
    }

    #[test]
    fn truncated_packs_fail_cleanly() {
        let key = MasterKey::generate();
        let (_, pack) = sample(&key);
        for cut in [0, 1, 4, 40, 72, 73, 200, pack.data.len() - 1] {
            let data = &pack.data[..cut];
            let (res, _) = header_of(&key, &pack.id, data, cut as u64);
            let err = res.unwrap_err();
            assert!(
                matches!(err, Error::Corrupt { .. } | Error::MacMismatch(_)),
                "cut {cut}: {err}"
            );
        }
        let (res, _) = header_of(&key, &pack.id, &pack.data[..10], 10);
        assert!(res.unwrap_err().to_string().contains("too short"));
    }

    #[test]
    fn header_length_outside_the_file() {
        let key = MasterKey::generate();
        let (_, pack) = sample(&key);
        let n = pack.data.len();
        for bad in [0u32, 31, n as u32 - 3, u32::MAX] {
            let mut data = pack.data.clone();
            data[n - 4..].copy_from_slice(&bad.to_le_bytes());
            let (res, calls) = header_of(&key, &pack.id, &data, n as u64);
            let err = res.unwrap_err();
            assert!(matches!(err, Error::Corrupt { .. }), "{bad}: {err}");
            assert!(err.to_string().contains(&pack.id.to_hex()), "{err}");
            assert_eq!(calls.len(), 1, "no read beyond the tail");
        }
    }

    #[test]
    fn oversized_header_length_is_refused() {
        let key = MasterKey::generate();
        let size = 64u64 << 20;
        let len = (MAX_HEADER_SIZE + 1) as u32;
        let (res, calls) = header_of_fn(&key, size, len);
        assert!(res.unwrap_err().to_string().contains("exceeds the maximum"));
        assert_eq!(calls, 1);
    }

    /// A virtual file of `size` bytes whose last four bytes are `len`.
    fn header_of_fn(key: &MasterKey, size: u64, len: u32) -> (Result<Vec<PackBlob>>, usize) {
        let mut calls = 0;
        let res = read_header(key, &PackId::default(), size, |off, n| {
            calls += 1;
            let mut v = vec![0u8; n as usize];
            if off + n == size {
                let k = v.len();
                v[k - 4..].copy_from_slice(&len.to_le_bytes());
            }
            Ok(v)
        });
        (res, calls)
    }

    #[test]
    fn short_read_is_an_error() {
        let key = MasterKey::generate();
        let (_, pack) = sample(&key);
        let res = read_header(&key, &pack.id, pack.data.len() as u64, |_, n| {
            Ok(vec![0; n as usize - 1])
        });
        assert!(res.unwrap_err().to_string().contains("short read"));
    }

    #[test]
    fn blobs_overlapping_the_header_are_rejected() {
        let key = MasterKey::generate();
        let (_, pack) = sample(&key);
        // A file holding only the last blob and the header: the header now
        // claims blobs beyond the header start.
        let last = pack.blobs[3];
        let data = &pack.data[last.offset as usize..];
        let (res, _) = header_of(&key, &pack.id, data, data.len() as u64);
        let err = res.unwrap_err();
        assert!(err.to_string().contains("overlaps the header"), "{err}");
    }

    #[test]
    fn decode_blob_checks_length_compression_and_hash() {
        let key = MasterKey::generate();
        let (_, pack) = sample(&key);
        let plain = pack.blobs[0];
        let bytes = blob_bytes(&pack.data, &plain);

        let err = decode_blob(&key, &pack.id, &plain, &bytes[1..]).unwrap_err();
        assert!(err.to_string().contains("expected"), "{err}");

        let mut wrong_id = plain;
        wrong_id.id = BlobId(Id::hash(b"other"));
        let err = decode_blob(&key, &pack.id, &wrong_id, bytes).unwrap_err();
        assert!(matches!(err, Error::HashMismatch { .. }), "{err}");

        // Index claims compression for a plain blob: not a zstd frame.
        let mut claims_zstd = plain;
        claims_zstd.uncompressed_length = Some(12);
        let err = decode_blob(&key, &pack.id, &claims_zstd, bytes).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");

        // Wrong uncompressed length for a compressed blob.
        let mut short = pack.blobs[1];
        short.uncompressed_length = Some(99_999);
        let err = decode_blob(&key, &pack.id, &short, blob_bytes(&pack.data, &short));
        assert!(matches!(err, Err(Error::Corrupt { .. })));
        short.uncompressed_length = Some(MAX_BLOB_SIZE + 1);
        let err = decode_blob(&key, &pack.id, &short, blob_bytes(&pack.data, &short));
        assert!(err.unwrap_err().to_string().contains("exceeds the maximum"));

        let mut tiny = plain;
        tiny.length = 31;
        let err = decode_blob(&key, &pack.id, &tiny, &bytes[..31]).unwrap_err();
        assert!(err.to_string().contains("too short"), "{err}");
    }

    #[test]
    fn writer_rejects_what_it_cannot_encode() {
        let key = MasterKey::generate();
        let id = BlobId(Id::hash(b""));
        let mut w = PackWriter::with_capacity(1024);
        assert!(w.add(BlobType::Data, id, &[0; 31], None).is_err());
        assert!(w.add(BlobType::Data, id, &[0; 40], Some(0)).is_err());
        assert!(w.is_empty());
        w.add(BlobType::Tree, id, &key.encrypt(b""), None).unwrap();
        assert_eq!((w.count(), w.size()), (1, 32));
        assert_eq!(w.finished_size(), 32 + 37 + 32 + 4);
        let pack = w.finish(&key);
        assert_eq!(pack.data.len(), 32 + 37 + 32 + 4);
        let (header, _) = header_of(&key, &pack.id, &pack.data, pack.data.len() as u64);
        let header = header.unwrap();
        let decoded = decode_blob(&key, &pack.id, &header[0], &pack.data[..32]).unwrap();
        assert!(decoded.is_empty());
    }

    #[test]
    fn writer_stops_when_the_header_is_full() {
        // restic's MaxHeaderEntries: (16 MiB + 4 - 36) / 41.
        assert_eq!(MAX_HEADER_ENTRIES, 409_199);
        let id = BlobId(Id::hash(b""));
        let mut w = PackWriter::with_capacity(MAX_HEADER_ENTRIES * 32);
        for _ in 0..MAX_HEADER_ENTRIES {
            w.add(BlobType::Data, id, &[0; 32], Some(1)).unwrap();
        }
        let err = w.add(BlobType::Data, id, &[0; 32], None).unwrap_err();
        assert!(err.to_string().contains("header is full"), "{err}");
        assert_eq!(w.count(), MAX_HEADER_ENTRIES);
        let pack = w.finish(&MasterKey::generate());
        let n = pack.data.len();
        let header_len = u32::from_le_bytes(pack.data[n - 4..].try_into().unwrap());
        assert!(header_len as usize <= MAX_HEADER_SIZE);
    }
}
