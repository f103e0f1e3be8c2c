//! FastCDC (the 2020 paper's variant) through the `fastcdc` crate's
//! `v2020::cut`, with normalization level 1 and the original gear table:
//! the cut points are exactly those of `fastcdc::v2020::StreamCDC::new(r,
//! MIN_SIZE, AVG_SIZE, MAX_SIZE)` on the same bytes.
//!
//! `cut` looks at up to `MAX_SIZE` bytes from the chunk start and needs them
//! all at once, but it does not need to see them all to be sure of a cut:
//! given a prefix of `len ≥ AVG_SIZE` bytes it scans exactly as it would over
//! the full input (the small/large mask switch happens at `AVG_SIZE` either
//! way), so a cut found before `len` is final. We therefore try at
//! `AVG_SIZE`, then at twice as many bytes as the last try, up to `MAX_SIZE`:
//! the caller rarely has to buffer past the cut, and each byte is scanned at
//! most about twice.

use fastcdc::v2020::{cut, MASKS};

use super::{Scan, AVG_SIZE, MAX_SIZE, MIN_SIZE};

/// log2 of the average size; `fastcdc` rounds `log2(avg)`, exact here.
const BITS: u32 = AVG_SIZE.trailing_zeros();
/// Normalization level 1 (`StreamCDC::new`'s default): one bit each way.
const NORMALIZATION: u32 = 1;
const MASK_S: u64 = MASKS[(BITS + NORMALIZATION) as usize];
const MASK_L: u64 = MASKS[(BITS - NORMALIZATION) as usize];

/// FastCDC cut-point search state for the chunk being assembled.
pub(super) struct FastCdc {
    /// Chunk length at which to try cutting next.
    next_try: usize,
}

impl FastCdc {
    pub(super) fn new() -> Self {
        FastCdc { next_try: AVG_SIZE }
    }

    /// Look for the end of the chunk whose bytes so far are `chunk`.
    pub(super) fn scan(&mut self, chunk: &[u8], eof: bool) -> Scan {
        let len = chunk.len();
        if len >= MAX_SIZE || eof {
            self.next_try = AVG_SIZE;
            return Scan::Cut(cut_at(&chunk[..len.min(MAX_SIZE)]));
        }
        if len >= self.next_try {
            let n = cut_at(chunk);
            if n < len {
                self.next_try = AVG_SIZE;
                return Scan::Cut(n);
            }
            self.next_try = (2 * len).min(MAX_SIZE);
        }
        Scan::More(self.next_try)
    }
}

/// The chunk length `fastcdc` picks for `data` (all of it if it is no
/// longer than `MIN_SIZE`).
fn cut_at(data: &[u8]) -> usize {
    let (_hash, n) = cut(
        data,
        MIN_SIZE,
        AVG_SIZE,
        MAX_SIZE,
        MASK_S,
        MASK_L,
        MASK_S << 1,
        MASK_L << 1,
    );
    n
}
