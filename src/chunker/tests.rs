//! Chunker tests, with golden vectors produced by the real restic.
//!
//! How the vectors were made (restic 0.14.0, linux/amd64):
//! 1. The files were written by a Python port of [`splitmix_bytes`]
//!    (SplitMix64 outputs, each stored little-endian, truncated to length),
//!    plus a file of 20 MiB + 7 bytes of `0x5a` and one of 2 MiB of zeros.
//! 2. `RESTIC_PASSWORD=test restic init`, `restic cat config` for the
//!    polynomial, `restic backup` of the files.
//! 3. `restic cat snapshot <id>` → root tree, `restic cat blob <tree>` → each
//!    file node's `content` ids in order, `restic cat blob <id> | wc -c` for
//!    each chunk length, and the first content id (= SHA-256 of the first
//!    chunk's plaintext).

use std::io::{self, Read};

use sha2::{Digest, Sha256};

use super::*;

/// SplitMix64, little-endian bytes, truncated to `len`.
fn splitmix_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn chunk_all(kind: ChunkerKind, reader: impl Read) -> Vec<Vec<u8>> {
    Chunker::new(kind, reader)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<io::Result<Vec<_>>>()
        .unwrap()
}

fn lengths(chunks: &[Vec<u8>]) -> Vec<usize> {
    chunks.iter().map(Vec::len).collect()
}

fn rabin(hex: &str) -> ChunkerKind {
    ChunkerKind::Rabin(hex.parse().unwrap())
}

/// Hands out at most `step` bytes per read, to check that cut points do not
/// depend on read sizes.
struct Dribble<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Dribble<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.step.min(out.len()).min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Checks the invariants every chunking must satisfy.
fn check_invariants(data: &[u8], chunks: &[Vec<u8>]) {
    assert_eq!(
        chunks.concat(),
        data,
        "chunks do not concatenate to the input"
    );
    for (i, c) in chunks.iter().enumerate() {
        assert!(!c.is_empty(), "chunk {i} is empty");
        assert!(c.len() <= MAX_SIZE, "chunk {i} is {} bytes", c.len());
        if i + 1 < chunks.len() {
            assert!(c.len() >= MIN_SIZE, "chunk {i} is {} bytes", c.len());
        }
    }
}

#[test]
fn golden_restic_random_data() {
    // Repository polynomial 2ad6ec33f401f5, file `random.bin`.
    let data = splitmix_bytes(0xcafe_f00d, 24 * 1024 * 1024 + 12345);
    let chunks = chunk_all(rabin("2ad6ec33f401f5"), &data[..]);
    assert_eq!(
        lengths(&chunks),
        [
            586038, 2956653, 821007, 830465, 2209432, 1554533, 787887, 1236045, 2495134, 560994,
            2112651, 1195072, 701528, 1799592, 618739, 1106747, 1368605, 583111, 982781, 671155,
        ]
    );
    assert_eq!(
        hex::encode(Sha256::digest(&chunks[0])),
        "dbf0f2b6b798935dce12d1b5336d5a663ac1f4fa9e9b73c4d3a2795c2fc81dd5"
    );
    check_invariants(&data, &chunks);

    // The same cuts however the reader splits the input.
    for step in [1000, 65_536, 1 << 20] {
        let dribbled = chunk_all(rabin("2ad6ec33f401f5"), Dribble { data: &data, step });
        assert_eq!(lengths(&dribbled), lengths(&chunks), "step {step}");
    }
}

#[test]
fn golden_restic_second_polynomial() {
    // Another repository (polynomial 22278e305b725f), file `random42.bin`.
    let data = splitmix_bytes(42, 12 * 1024 * 1024);
    let chunks = chunk_all(rabin("22278e305b725f"), &data[..]);
    assert_eq!(
        lengths(&chunks),
        [2338266, 825762, 616705, 2067667, 1609715, 800397, 1565176, 1276269, 608824, 874131]
    );
    assert_eq!(
        hex::encode(Sha256::digest(&chunks[0])),
        "cc8e62ff57f4a1278b0d01502955b30bc86a281e287a428594632d5a1a2e7253"
    );
    check_invariants(&data, &chunks);
}

#[test]
fn golden_restic_constant_data_hits_max_size() {
    // A window of identical bytes has a constant digest; for this polynomial
    // it is never a cut point, so restic cut at MAX_SIZE.
    let data = vec![0x5a; 20 * 1024 * 1024 + 7];
    let chunks = chunk_all(rabin("2ad6ec33f401f5"), &data[..]);
    assert_eq!(lengths(&chunks), [MAX_SIZE, MAX_SIZE, 4194311]);
    assert_eq!(
        hex::encode(Sha256::digest(&chunks[0])),
        "7014ae0f2fc0fee42a440b97859207efb72ffee09d4864f7433f1bf756a17aca"
    );
}

#[test]
fn golden_zeros_cut_at_min_size() {
    // Zeros: once the initial `1` leaves the window the digest is 0, a cut at
    // exactly MIN_SIZE (restic, and chunker_test.go's `chunks2`).
    let data = vec![0u8; 4 * MIN_SIZE];
    for pol in ["2ad6ec33f401f5", "3da3358b4dc173"] {
        let chunks = chunk_all(rabin(pol), &data[..]);
        assert_eq!(lengths(&chunks), [MIN_SIZE; 4]);
        assert_eq!(
            hex::encode(Sha256::digest(&chunks[0])),
            "07854d2fef297a06ba81685e660c332de36d5d18d546927d30daad6d7fda1541"
        );
    }
}

#[test]
fn kind_names() {
    let pol: Polynomial = "3da3358b4dc173".parse().unwrap();
    for kind in [ChunkerKind::Rabin(pol), ChunkerKind::FastCdc] {
        assert_eq!(
            ChunkerKind::from_name(Some(kind.name()), pol).unwrap(),
            kind
        );
    }
    assert_eq!(
        ChunkerKind::from_name(None, pol).unwrap(),
        ChunkerKind::Rabin(pol)
    );
    assert!(matches!(
        ChunkerKind::from_name(Some("buzhash"), pol),
        Err(Error::Unsupported { .. })
    ));
}

#[test]
fn small_and_empty_inputs() {
    for kind in [rabin("3da3358b4dc173"), ChunkerKind::FastCdc] {
        assert!(chunk_all(kind, io::empty()).is_empty());
        let mut c = Chunker::new(kind, io::empty());
        assert!(c.next_chunk().unwrap().is_none());
        assert!(c.next_chunk().unwrap().is_none());

        for len in [1, 100, MIN_SIZE - 64, MIN_SIZE - 1] {
            let data = splitmix_bytes(len as u64, len);
            let chunks = chunk_all(kind, &data[..]);
            assert_eq!(chunks, [data], "len {len}");
        }
    }
}

#[test]
fn other_polynomial_gives_other_cuts() {
    let data = splitmix_bytes(0xcafe_f00d, 8 * 1024 * 1024);
    let a = chunk_all(rabin("2ad6ec33f401f5"), &data[..]);
    let b = chunk_all(rabin("3da3358b4dc173"), &data[..]);
    check_invariants(&data, &b);
    assert_ne!(a[0].len(), b[0].len());
}

#[test]
fn cuts_resynchronize_after_an_insertion() {
    // Content-defined: inserting bytes early shifts only the first cut.
    let data = splitmix_bytes(7, 10 * 1024 * 1024);
    let mut edited = b"inserted bytes".to_vec();
    edited.extend_from_slice(&data);
    for kind in [rabin("2ad6ec33f401f5"), ChunkerKind::FastCdc] {
        let before = chunk_all(kind, &data[..]);
        let after = chunk_all(kind, &edited[..]);
        let shared = before.iter().filter(|c| after.contains(c)).count();
        assert!(shared + 2 >= before.len(), "{shared} of {}", before.len());
    }
}

#[test]
fn fastcdc_matches_the_crate() {
    let mut data = splitmix_bytes(99, 30 * 1024 * 1024);
    // Add a long low-entropy stretch to force MAX_SIZE cuts too.
    data.resize(data.len() + 17 * 1024 * 1024, 0);
    data.extend(splitmix_bytes(100, 3 * 1024 * 1024 + 5));

    let reference: Vec<usize> =
        ::fastcdc::v2020::FastCDC::new(&data, MIN_SIZE as u32, AVG_SIZE as u32, MAX_SIZE as u32)
            .map(|c| c.length)
            .collect();
    assert!(reference.contains(&MAX_SIZE));

    let chunks = chunk_all(ChunkerKind::FastCdc, &data[..]);
    assert_eq!(lengths(&chunks), reference);
    check_invariants(&data, &chunks);
    for step in [4096, 300_000] {
        let dribbled = chunk_all(ChunkerKind::FastCdc, Dribble { data: &data, step });
        assert_eq!(lengths(&dribbled), reference, "step {step}");
    }
}

#[test]
fn read_error_is_reported_and_sticks() {
    /// Yields `good` bytes, then fails.
    struct FailAfter {
        good: usize,
    }
    impl Read for FailAfter {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.good == 0 {
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, "nope"));
            }
            let n = self.good.min(out.len());
            out[..n].fill(0);
            self.good -= n;
            Ok(n)
        }
    }
    for kind in [rabin("3da3358b4dc173"), ChunkerKind::FastCdc] {
        // Zeros: with Rabin the first chunk is cut at MIN_SIZE before the error.
        let mut c = Chunker::new(
            kind,
            FailAfter {
                good: MIN_SIZE + 10,
            },
        );
        let results: Vec<_> = c.by_ref().collect();
        let err = results.last().unwrap().as_ref().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(results[..results.len() - 1].iter().all(Result::is_ok));
        assert!(c.next_chunk().is_err());
        assert!(c.next().is_none());
    }
}

#[test]
fn a_shared_block_pool_changes_no_chunk() {
    let kind = rabin("2ad6ec33f401f5");
    let big = splitmix_bytes(7, 30 << 20);
    let other = splitmix_bytes(8, (9 << 20) + 3);
    let pool = BlockPool::new(3);
    let pooled = |data: &[u8], hint: Option<u64>, step: usize| -> Vec<Chunk> {
        Chunker::with_size_hint(kind, Dribble { data, step }, hint, pool.clone())
            .collect::<io::Result<_>>()
            .unwrap()
    };
    // Chunks of one input stay intact while later inputs reuse the blocks
    // that earlier chunks gave back (stale bytes never leak), whether the
    // next input is large, small, hinted or not, or read in dribbles.
    let held = pooled(&big, Some(big.len() as u64), 1 << 20);
    drop(pooled(&other, None, 1 << 20));
    assert!(pool.kept() >= 1, "blocks come back to the pool");
    for (data, hint, step) in [
        (&other[..], None, 70_001),
        (&big[..], Some(1), 1 << 20),
        (&b"short"[..], None, 3),
        (&big[..480 << 10], Some(480 << 10), 1 << 20),
        (&b"tiny"[..], Some(4), 1 << 20),
    ] {
        let got = pooled(data, hint, step);
        let want = chunk_all(kind, data);
        assert_eq!(got.iter().map(|c| c.to_vec()).collect::<Vec<_>>(), want);
        check_invariants(data, &want);
    }
    assert!(pool.kept() <= 3);
    let held: Vec<Vec<u8>> = held.iter().map(|c| c.to_vec()).collect();
    assert_eq!(held, chunk_all(kind, &big[..]));
}
