//! restic's content-defined chunker: a Rabin fingerprint over a 64-byte
//! sliding window, cut points bit-for-bit identical to `restic/chunker`.
//!
//! The rules, from restic/chunker's `chunker.go`:
//! - The digest is the window's bytes read as a polynomial, reduced modulo the
//!   repository's degree-53 [`Polynomial`]. Sliding a byte out XORs in
//!   `out[b] = b·x^(8·63) mod P`; appending one is
//!   `digest = (digest << 8 | b) ^ mod[digest >> 45]`, where
//!   `mod[t] = (t·x^53 mod P) | t << 53` both reduces and clears the 8 bits
//!   shifted above the degree.
//! - At the start of every chunk the window is all zeros except a single `1`
//!   byte in slot 0, the digest is 1, and the next write goes to slot 1.
//! - The first `MIN_SIZE − 64` bytes of a chunk are not hashed at all.
//! - After hashing the byte that makes the chunk `n` bytes long, the chunk is
//!   cut if `n ≥ MIN_SIZE` and either the low 20 bits of the digest are zero
//!   or `n == MAX_SIZE`.
//! - At end of input the remaining bytes (if any) form the last chunk.
//!
//! Because the whole current chunk is held contiguously by the caller, the
//! window is not stored: the byte leaving it is simply the chunk byte 64
//! positions back (or the initial `1`/`0` bytes during the first 64 hashed
//! bytes). State between calls is just the digest and how far we got.

use std::sync::Arc;

use parking_lot::Mutex;

use super::polynomial::{modulo, Polynomial, DEGREE};
use super::{Scan, MAX_SIZE, MIN_SIZE};

/// Size of the sliding window in bytes.
const WINDOW: usize = 64;
/// `digest >> POL_SHIFT` is the byte that `digest << 8` pushes above the degree.
const POL_SHIFT: u32 = DEGREE - 8;
/// A cut needs this many low digest bits to be zero: about 1 MiB on average.
const SPLIT_MASK: u64 = (1 << 20) - 1;
/// Digest after the reset step slid the `1` byte into an empty window.
const INITIAL_DIGEST: u64 = 1;
/// Offset in a chunk of the first hashed byte.
const HASH_START: usize = MIN_SIZE - WINDOW;
/// How many more bytes to ask for when no cut was found yet.
const READ_AHEAD: usize = 256 * 1024;

/// The two lookup tables derived from a polynomial.
struct Tables {
    out: [u64; 256],
    reduce: [u64; 256],
}

impl Tables {
    fn new(pol: Polynomial) -> Box<Self> {
        let p = pol.value();
        // Both tables are linear in the index byte over GF(2), so computing
        // the eight single-bit entries and XOR-combining them is enough.
        let out = linear_table(|bit| {
            // bit followed by 63 zero bytes, reduced step by step as restic's
            // appendByte does.
            (0..WINDOW - 1).fold(bit, |h, _| modulo(h << 8, p))
        });
        let reduce = linear_table(|bit| modulo(bit << DEGREE, p) | (bit << DEGREE));
        Box::new(Tables { out, reduce })
    }

    /// Shift `b` into `digest` and reduce.
    #[inline(always)]
    fn append(&self, digest: u64, b: u8) -> u64 {
        // The digest always has degree < 53 (it is reduced mod P), so the
        // index fits in a byte; the cast just lets the compiler see that.
        let top = (digest >> POL_SHIFT) as u8;
        ((digest << 8) | u64::from(b)) ^ self.reduce[usize::from(top)]
    }

    /// Slide the window: `out` leaves it, `b` enters.
    #[inline(always)]
    fn slide(&self, digest: u64, out: u8, b: u8) -> u64 {
        self.append(digest ^ self.out[usize::from(out)], b)
    }
}

/// Bytes per lane of [`scan_block`].
const LANE: usize = 16 * 1024;
/// Independent digests computed side by side by [`scan_block`].
const LANES: usize = 4;
/// Bytes per [`scan_block`] call.
const BLOCK: usize = LANE * LANES;

/// Scan `chunk[start..start + BLOCK]` (with `start ≥ MIN_SIZE`, so every
/// window lies inside the chunk), where `digest` is the digest after byte
/// `start − 1`: `Err(cut)` for the first cut, else `Ok` with the digest
/// after the block's last byte.
///
/// One rolling digest is a chain of dependent table lookups, so it runs at
/// the latency of that chain. But the digest depends only on the 64-byte
/// window, so lane `k` can start at `start + k·LANE` from the fingerprint
/// of the 64 bytes before it, and the four independent chains interleave.
/// The cut is the first hit of the first lane that has one, the one a
/// byte-by-byte scan finds; scanning past it wastes less than a block,
/// which lies in the next chunk's unhashed prefix anyway.
fn scan_block(t: &Tables, chunk: &[u8], start: usize, digest: u64) -> Result<u64, usize> {
    let lane_at = |k: usize, back: usize| -> &[u8; LANE] {
        let from = start + k * LANE - back;
        chunk[from..from + LANE]
            .try_into()
            .expect("a lane is LANE bytes")
    };
    let entering: [&[u8; LANE]; LANES] = std::array::from_fn(|k| lane_at(k, 0));
    let leaving: [&[u8; LANE]; LANES] = std::array::from_fn(|k| lane_at(k, WINDOW));
    let mut d: [u64; LANES] = std::array::from_fn(|k| match k {
        0 => digest,
        _ => leaving[k][..WINDOW].iter().fold(0, |h, &b| t.append(h, b)),
    });
    // Per lane, the offset of its first hit (later hits do not matter).
    let mut first = [usize::MAX; LANES];
    for j in 0..LANE {
        let mut hit = false;
        for k in 0..LANES {
            d[k] = t.slide(d[k], leaving[k][j], entering[k][j]);
            hit |= d[k] & SPLIT_MASK == 0;
        }
        if hit {
            for k in 0..LANES {
                if d[k] & SPLIT_MASK == 0 && first[k] == usize::MAX {
                    first[k] = j;
                }
            }
            if first[0] != usize::MAX {
                return Err(start + first[0] + 1);
            }
        }
    }
    match (0..LANES).find(|&k| first[k] != usize::MAX) {
        Some(k) => Err(start + k * LANE + first[k] + 1),
        None => Ok(d[LANES - 1]),
    }
}

/// A table `t` with `t[a ^ b] = t[a] ^ t[b]`, from its values on single bits.
fn linear_table(single_bit: impl Fn(u64) -> u64) -> [u64; 256] {
    let bits: [u64; 8] = std::array::from_fn(|k| single_bit(1 << k));
    let mut t = [0u64; 256];
    for b in 1..256usize {
        let low = b.trailing_zeros() as usize;
        t[b] = t[b & (b - 1)] ^ bits[low];
    }
    t
}

/// The tables for `pol`, built once per polynomial and process (building
/// them costs more than chunking a small file).
fn tables_for(pol: Polynomial) -> Arc<Tables> {
    static CACHE: Mutex<Vec<(u64, Arc<Tables>)>> = Mutex::new(Vec::new());
    let mut cache = CACHE.lock();
    if let Some((_, t)) = cache.iter().find(|(p, _)| *p == pol.value()) {
        return Arc::clone(t);
    }
    let t: Arc<Tables> = Tables::new(pol).into();
    // A process uses one or two polynomials; the bound is only a guard.
    if cache.len() >= 8 {
        cache.remove(0);
    }
    cache.push((pol.value(), Arc::clone(&t)));
    t
}

/// Rabin cut-point search state for the chunk being assembled.
pub(super) struct Rabin {
    tables: Arc<Tables>,
    digest: u64,
    /// Bytes of the current chunk already consumed (skipped or hashed).
    scanned: usize,
}

impl Rabin {
    pub(super) fn new(pol: Polynomial) -> Self {
        Rabin {
            tables: tables_for(pol),
            digest: INITIAL_DIGEST,
            scanned: 0,
        }
    }

    fn reset(&mut self) {
        self.digest = INITIAL_DIGEST;
        self.scanned = 0;
    }

    /// Look for the end of the chunk whose bytes so far are `chunk` (always
    /// the same chunk, growing, until a cut is returned).
    pub(super) fn scan(&mut self, chunk: &[u8], eof: bool) -> Scan {
        match self.find_cut(chunk) {
            Some(len) => {
                self.reset();
                Scan::Cut(len)
            }
            None if eof => {
                self.reset();
                Scan::Cut(chunk.len())
            }
            None => Scan::More((chunk.len() + READ_AHEAD).min(MAX_SIZE)),
        }
    }

    /// The cut point in `chunk` if there is one; otherwise remember the
    /// digest so the next call resumes after the bytes seen.
    fn find_cut(&mut self, chunk: &[u8]) -> Option<usize> {
        let limit = chunk.len().min(MAX_SIZE);
        let t = &*self.tables;
        let mut i = self.scanned;
        let mut digest = self.digest;

        if i < HASH_START {
            i = limit.min(HASH_START);
        }

        // The first 63 hashed bytes push out the zeros of the initial window;
        // out[0] = 0, so they only append.
        let warm_end = limit.min(MIN_SIZE - 1);
        if i < warm_end {
            digest = chunk[i..warm_end]
                .iter()
                .fold(digest, |d, &b| t.append(d, b));
            i = warm_end;
        }

        // The 64th pushes out the initial `1` and makes the chunk MIN_SIZE
        // bytes long: the first position where a cut may happen.
        if i == MIN_SIZE - 1 && i < limit {
            digest = t.append(digest ^ t.out[1], chunk[i]);
            i += 1;
            if digest & SPLIT_MASK == 0 {
                return Some(i);
            }
        }

        // From here on the window holds only chunk bytes: the one leaving is
        // the byte 64 positions back, and the digest is a function of the
        // window alone. Whole blocks go through the multi-lane scan, the
        // tail byte by byte.
        if i >= MIN_SIZE {
            while i + BLOCK <= limit {
                match scan_block(t, chunk, i, digest) {
                    Ok(end) => digest = end,
                    Err(cut) => return Some(cut),
                }
                i += BLOCK;
            }
            if i < limit {
                let leaving = &chunk[i - WINDOW..limit - WINDOW];
                let entering = &chunk[i..limit];
                for (k, (&out, &b)) in leaving.iter().zip(entering).enumerate() {
                    digest = t.slide(digest, out, b);
                    if digest & SPLIT_MASK == 0 {
                        return Some(i + k + 1);
                    }
                }
                i = limit;
            }
        }

        if i == MAX_SIZE {
            return Some(MAX_SIZE);
        }
        self.digest = digest;
        self.scanned = i;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POL: u64 = 0x3DA3358B4DC173;

    /// restic's appendByte, the slow way.
    fn append_slow(h: u64, b: u8, p: u64) -> u64 {
        modulo((h << 8) | u64::from(b), p)
    }

    #[test]
    fn tables_match_definition() {
        let t = Tables::new(Polynomial::new(POL).unwrap());
        for b in 0..=255u8 {
            let mut h = append_slow(0, b, POL);
            for _ in 0..WINDOW - 1 {
                h = append_slow(h, 0, POL);
            }
            assert_eq!(t.out[usize::from(b)], h, "out[{b}]");
            let k = u64::from(b) << DEGREE;
            assert_eq!(t.reduce[usize::from(b)], modulo(k, POL) | k, "mod[{b}]");
        }
        assert_eq!(t.append(0, 1), INITIAL_DIGEST);
    }

    #[test]
    fn digest_is_the_window_fingerprint() {
        // After the warm-up, the digest equals the fingerprint of the last
        // 64 bytes computed from scratch (the initial `1` has slid out).
        let t = Tables::new(Polynomial::new(POL).unwrap());
        let data: Vec<u8> = (0..200u32).map(|i| (i * 31 + 7) as u8).collect();
        let mut digest = INITIAL_DIGEST;
        let mut window = [0u8; WINDOW];
        window[0] = 1;
        for (j, &b) in data.iter().enumerate() {
            let slot = (j + 1) % WINDOW;
            digest = t.append(digest ^ t.out[usize::from(window[slot])], b);
            window[slot] = b;
            if j >= WINDOW - 1 {
                let fp = data[j + 1 - WINDOW..=j]
                    .iter()
                    .fold(0, |h, &b| append_slow(h, b, POL));
                assert_eq!(digest, fp, "after {} bytes", j + 1);
            }
        }
    }

    #[test]
    fn resumes_across_calls() {
        // Feeding a chunk in pieces finds the same cut as feeding it whole.
        let pol = Polynomial::new(POL).unwrap();
        let mut x = 0x1234_5678_9abc_def0u64;
        let data: Vec<u8> = (0..12 * MIN_SIZE)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let whole = Rabin::new(pol).find_cut(&data);
        assert!(whole.is_some());
        for step in [1, 63, 64, 65, 4096, 100_003] {
            let mut r = Rabin::new(pol);
            let mut end = 0;
            let found = loop {
                end = (end + step).min(data.len());
                if let Some(n) = r.find_cut(&data[..end]) {
                    break Some(n);
                }
                if end == data.len() {
                    break None;
                }
            };
            assert_eq!(found, whole, "step {step}");
        }
    }

    /// A byte-by-byte scan of `chunk[start..end]`, the reference for
    /// [`scan_block`].
    fn scan_slowly(
        t: &Tables,
        chunk: &[u8],
        start: usize,
        end: usize,
        mut d: u64,
    ) -> Result<u64, usize> {
        for p in start..end {
            d = t.slide(d, chunk[p - WINDOW], chunk[p]);
            if d & SPLIT_MASK == 0 {
                return Err(p + 1);
            }
        }
        Ok(d)
    }

    #[test]
    fn lanes_find_the_first_cut_by_position() {
        let t = Tables::new(Polynomial::new(POL).unwrap());
        let mut x = 0x00dd_b1a5_e5e5_u64;
        let mut random = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        };
        // A 64-byte window whose digest is a cut: the digest depends only
        // on the window, so wherever these bytes are copied, a cut follows.
        let noise = random(16 << 20);
        let fingerprint = |w: &[u8]| w.iter().fold(0, |h, &b| t.append(h, b));
        let cut_end = match scan_slowly(
            &t,
            &noise,
            WINDOW,
            noise.len(),
            fingerprint(&noise[..WINDOW]),
        ) {
            Err(end) => end,
            Ok(_) => panic!("no cut in 16 MiB of noise"),
        };
        let cut_window = &noise[cut_end - WINDOW..cut_end];

        let start = MIN_SIZE;
        let base = random(start + BLOCK);
        // (lane, offset) pairs of planted cuts; the earliest by position
        // must win even when a later lane meets its cut first.
        let cases: &[&[(usize, usize)]] = &[
            &[],
            &[(0, 0)],
            &[(0, 999), (2, 10)],
            &[(1, 5000), (3, 1)],
            &[(3, LANE - 1)],
            &[(1, LANE - 100), (2, 0)],
        ];
        for planted in cases {
            let mut data = base.clone();
            for &(lane, j) in planted.iter() {
                let end = start + lane * LANE + j + 1;
                data[end - WINDOW..end].copy_from_slice(cut_window);
            }
            let d0 = fingerprint(&data[start - WINDOW..start]);
            let want = scan_slowly(&t, &data, start, start + BLOCK, d0);
            assert_eq!(
                scan_block(&t, &data, start, d0),
                want,
                "cuts at {planted:?}"
            );
            if let Some(&(lane, j)) = planted.iter().min() {
                assert_eq!(
                    want,
                    Err(start + lane * LANE + j + 1),
                    "cuts at {planted:?}"
                );
            }
        }
    }
}
