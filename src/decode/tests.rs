//! Tests of [`BlobDecoder`] and [`decode_copied`]: every way of decoding
//! gives the same verdict on good and damaged blobs, and each keeps its
//! promise about where the plaintext lies.

use super::*;
use crate::id::BlobId;
use crate::testutil::{noise, stored_blob};

fn pack() -> PackId {
    PackId(Id::hash(b"pack"))
}

/// A verdict, comparable across the ways of decoding: the plaintext, or
/// which error.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Plain(Vec<u8>),
    Corrupt,
    Mac,
    Hash,
}

fn verdict(result: Result<Vec<u8>>) -> Verdict {
    match result {
        Ok(plain) => Verdict::Plain(plain),
        Err(Error::Corrupt { .. }) => Verdict::Corrupt,
        Err(Error::MacMismatch(_)) => Verdict::Mac,
        Err(Error::HashMismatch { .. }) => Verdict::Hash,
        Err(e) => panic!("unexpected error {e}"),
    }
}

/// The verdicts of all five ways of decoding `stored` as `blob`, with one
/// decoder reused throughout; `decode_copy` must leave `stored` alone.
fn all_ways(
    dec: &mut BlobDecoder,
    key: &MasterKey,
    blob: &PackBlob,
    stored: &[u8],
) -> [Verdict; 5] {
    let pack = pack();
    let to_vec = |p: Plain<'_>| p.contiguous().into_owned();
    let in_place = verdict(
        dec.decode(key, &pack, blob, &mut stored.to_vec())
            .map(to_vec),
    );
    let copy = verdict(dec.decode_copy(key, &pack, blob, stored).map(to_vec));
    let own_vec = verdict(dec.decode_to_vec(key, &pack, blob, &mut stored.to_vec()));
    let owned = verdict(
        dec.decode_owned(key, &pack, blob, stored.to_vec())
            .map(|(buf, range)| buf[range].to_vec()),
    );
    let copied = verdict(decode_copied(key, &pack, blob, stored));
    [in_place, copy, own_vec, owned, copied]
}

/// Assert that every way decodes `stored` as `blob` to `plain`.
fn decodes_to(
    dec: &mut BlobDecoder,
    key: &MasterKey,
    blob: &PackBlob,
    stored: &[u8],
    plain: &[u8],
) {
    for (way, got) in all_ways(dec, key, blob, stored).into_iter().enumerate() {
        assert_eq!(got, Verdict::Plain(plain.to_vec()), "way {way}");
    }
}

#[test]
fn every_way_gives_the_expected_verdict_on_good_and_damaged_blobs() {
    let key = MasterKey::generate();
    let text: Vec<u8> = b"decode me ".repeat(3000);
    // zstd stores noise as raw blocks: decoded without zstd.
    let random = noise(7, 300_000);
    let mut dec = BlobDecoder::new();
    for (plain, compress) in [
        (&text, false),
        (&text, true),
        (&random, true),
        (&random, false),
    ] {
        let (blob, stored) = stored_blob(&key, plain, compress);
        let mut cases: Vec<(PackBlob, Vec<u8>, Verdict)> =
            vec![(blob, stored.clone(), Verdict::Plain(plain.clone()))];
        let mut flipped = stored.clone();
        flipped[20] ^= 1;
        cases.push((blob, flipped, Verdict::Mac));
        let mut wrong_id = blob;
        wrong_id.id = BlobId(Id::hash(b"other"));
        cases.push((wrong_id, stored.clone(), Verdict::Hash));
        cases.push((blob, stored[..stored.len() - 1].to_vec(), Verdict::Corrupt));
        cases.push((blob, stored[..10].to_vec(), Verdict::Corrupt));
        let mut short = blob;
        short.length = 10;
        cases.push((short, stored[..10].to_vec(), Verdict::Corrupt));
        if compress {
            for claim in [
                plain.len() - 1,
                plain.len() + 1,
                0,
                MAX_BLOB_SIZE as usize + 1,
            ] {
                let mut claimed = blob;
                claimed.uncompressed_length = Some(claim as u32);
                cases.push((claimed, stored.clone(), Verdict::Corrupt));
            }
        }
        for (i, (blob, stored, expected)) in cases.iter().enumerate() {
            for (way, got) in all_ways(&mut dec, &key, blob, stored).iter().enumerate() {
                assert_eq!(got, expected, "case {i} way {way} compress {compress}");
            }
        }
    }
}

/// `plain` compressed as zstd would, encrypted, with the blob claiming
/// `claim` bytes of plaintext (hashed as if `plain` were right).
fn claiming(key: &MasterKey, frame: &[u8], plain: &[u8], claim: usize) -> (PackBlob, Vec<u8>) {
    let stored = key.encrypt(frame);
    let blob = PackBlob {
        tpe: crate::blob::BlobType::Data,
        id: BlobId(Id::hash(plain)),
        offset: 0,
        length: stored.len() as u32,
        uncompressed_length: Some(claim as u32),
    };
    (blob, stored)
}

#[test]
fn hostile_frames_are_errors_whatever_they_claim() {
    let key = MasterKey::generate();
    let mut dec = BlobDecoder::new();
    let plain = b"claimed ".repeat(2000);
    let frame = zstd::bulk::compress(&plain, 3).unwrap();
    let n = plain.len();
    let good = claiming(&key, &frame, &plain, n);
    decodes_to(&mut dec, &key, &good.0, &good.1, &plain);
    let bad = [
        claiming(&key, &frame, &plain, n - 1),
        claiming(&key, &frame, &plain, n + 1),
        claiming(&key, &frame[..frame.len() / 2], &plain, n),
        claiming(&key, b"not zstd at all", &plain, 100),
        claiming(&key, b"", &plain, 1),
        // Above BULK_LIMIT: the streaming decoder, which only grows its
        // output as real output arrives.
        claiming(&key, &frame, &plain, BULK_LIMIT as usize + 1),
        claiming(&key, &frame, &plain, MAX_BLOB_SIZE as usize),
    ];
    for (i, (blob, stored)) in bad.iter().enumerate() {
        for (way, got) in all_ways(&mut dec, &key, blob, stored).iter().enumerate() {
            assert_eq!(*got, Verdict::Corrupt, "case {i} way {way}");
        }
    }
    // A zstd bomb: a few bytes that expand to far more than claimed.
    let zeros = vec![0u8; 16 << 20];
    let bomb = zstd::bulk::compress(&zeros, 3).unwrap();
    assert!(bomb.len() < 64 << 10);
    let (blob, stored) = claiming(&key, &bomb, &zeros, 1 << 20);
    assert!(dec
        .decode(&key, &pack(), &blob, &mut stored.clone())
        .is_err());
    // Nothing at all claiming nothing is the empty plaintext.
    let (blob, stored) = claiming(&key, b"", b"", 0);
    decodes_to(&mut dec, &key, &blob, &stored, b"");
}

#[test]
fn a_reused_buffer_never_lets_a_blob_grow_past_its_length() {
    let key = MasterKey::generate();
    let mut dec = BlobDecoder::new();
    // A large blob first: the output buffer keeps its capacity.
    let large: Vec<u8> = b"large blob ".repeat(100_000);
    let (blob, stored) = stored_blob(&key, &large, true);
    decodes_to(&mut dec, &key, &blob, &stored, &large);
    // A smaller blob that claims one byte less than it expands to fails,
    // although the buffer would hold it.
    let small: Vec<u8> = b"small ".repeat(1000);
    let (mut blob, stored) = stored_blob(&key, &small, true);
    blob.uncompressed_length = Some(small.len() as u32 - 1);
    assert!(dec
        .decode(&key, &pack(), &blob, &mut stored.clone())
        .is_err());
    // Then the right length decodes to exactly that blob.
    blob.uncompressed_length = Some(small.len() as u32);
    decodes_to(&mut dec, &key, &blob, &stored, &small);
}

#[test]
fn blobs_are_decrypted_where_they_lie_and_bad_ones_left_alone() {
    let key = MasterKey::generate();
    let mut dec = BlobDecoder::new();
    let text: Vec<u8> = b"in place ".repeat(500);
    let (blob, stored) = stored_blob(&key, &text, false);
    // A wrong MAC leaves the bytes as they were.
    let mut bad = stored.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let before = bad.clone();
    assert!(dec.decode(&key, &pack(), &blob, &mut bad).is_err());
    assert_eq!(bad, before);
    // decode_copy never touches them.
    let copy = stored.clone();
    assert!(dec.decode_copy(&key, &pack(), &blob, &copy).is_ok());
    assert_eq!(copy, stored);
    // A good uncompressed blob is its own plaintext, inside the buffer.
    let mut good = stored.clone();
    let range = good.as_ptr_range();
    let plain = dec.decode(&key, &pack(), &blob, &mut good).unwrap();
    assert!(matches!(plain, Plain::Whole(_)));
    assert_eq!(plain.contiguous(), &text[..]);
    assert!(plain.slices().all(|s| range.contains(&s.as_ptr())));
    // So are the raw blocks of a compressed incompressible blob.
    let random = noise(3, 400_000);
    let (blob, mut raw) = stored_blob(&key, &random, true);
    let range = raw.as_ptr_range();
    let plain = dec.decode(&key, &pack(), &blob, &mut raw).unwrap();
    assert!(matches!(plain, Plain::Pieces { pieces, .. } if pieces.len() > 1));
    assert_eq!(plain.len(), random.len());
    assert_eq!(plain.contiguous(), &random[..]);
    assert!(plain.slices().all(|s| range.contains(&s.as_ptr())));
}

#[test]
fn owned_buffers_keep_the_plaintext_where_it_was_decrypted() {
    let key = MasterKey::generate();
    let mut dec = BlobDecoder::new();
    // Stored uncompressed: between its IV and MAC.
    let text = noise(4, 200_000);
    let (blob, stored) = stored_blob(&key, &text, false);
    let at = stored.as_ptr();
    let (buf, range) = dec.decode_owned(&key, &pack(), &blob, stored).unwrap();
    assert_eq!(buf.as_ptr(), at);
    assert_eq!(range.len() + CIPHERTEXT_OVERHEAD, buf.len());
    assert_eq!(buf[range], text[..]);
    // A raw frame: its pieces moved together in the same buffer.
    let (blob, stored) = stored_blob(&key, &text, true);
    let at = stored.as_ptr();
    let (buf, range) = dec.decode_owned(&key, &pack(), &blob, stored).unwrap();
    assert_eq!(buf.as_ptr(), at);
    assert_eq!(buf[range], text[..]);
    // Decompressed: the decoder's buffer, all of it.
    let text = b"squeeze ".repeat(20_000);
    let (blob, stored) = stored_blob(&key, &text, true);
    let (buf, range) = dec.decode_owned(&key, &pack(), &blob, stored).unwrap();
    assert_eq!(range, 0..buf.len());
    assert_eq!(buf, text);
}

#[test]
fn gathering_moves_pieces_down_in_order() {
    let mut buf: Vec<u8> = (0..50u8).collect();
    let range = gather(&mut buf, 5, &[2..6, 9..12, 12..12, 20..30]);
    let want: Vec<u8> = [7..11, 14..17, 25..35].into_iter().flatten().collect();
    assert_eq!(range, 7..7 + want.len());
    assert_eq!(buf[range], want[..]);
    assert_eq!(gather(&mut buf, 3, &[]), 3..3);
}

#[test]
fn a_large_buffer_is_not_kept() {
    let key = MasterKey::generate();
    let big = vec![7u8; KEEP_CAPACITY + 1];
    let (compressed, small_stored) = stored_blob(&key, &big, true);
    let (uncompressed, big_stored) = stored_blob(&key, &big, false);
    let mut dec = BlobDecoder::new();
    let mut stored = small_stored.clone();
    let plain = dec.decode(&key, &pack(), &compressed, &mut stored);
    assert_eq!(plain.unwrap().len(), big.len());
    assert!(dec.out.plain.capacity() > KEEP_CAPACITY);
    let plain = dec.decode_copy(&key, &pack(), &uncompressed, &big_stored);
    assert_eq!(plain.unwrap().len(), big.len());
    assert!(dec.scratch.capacity() > KEEP_CAPACITY);
    assert!(dec.out.plain.capacity() <= KEEP_CAPACITY);
    let (small, stored) = stored_blob(&key, b"small", true);
    dec.decode_copy(&key, &pack(), &small, &stored).unwrap();
    assert!(dec.scratch.capacity() <= KEEP_CAPACITY);
}
