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

/// Rabin cut-point search state for the chunk being assembled.
pub(super) struct Rabin {
    tables: Box<Tables>,
    digest: u64,
    /// Bytes of the current chunk already consumed (skipped or hashed).
    scanned: usize,
}

impl Rabin {
    pub(super) fn new(pol: Polynomial) -> Self {
        Rabin {
            tables: Tables::new(pol),
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
        // the byte 64 positions back.
        if i >= MIN_SIZE && i < limit {
            let leaving = &chunk[i - WINDOW..limit - WINDOW];
            let entering = &chunk[i..limit];
            for (k, (&out, &b)) in leaving.iter().zip(entering).enumerate() {
                digest = t.append(digest ^ t.out[usize::from(out)], b);
                if digest & SPLIT_MASK == 0 {
                    return Some(i + k + 1);
                }
            }
            i = limit;
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
}
