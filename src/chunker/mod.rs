//! Content-defined chunking: splitting a byte stream into chunks whose
//! boundaries depend only on the content, so that an insertion early in a
//! file shifts only nearby boundaries and the rest still deduplicates.
//!
//! Two algorithms sit behind one [`Chunker`]:
//! - [`ChunkerKind::Rabin`]: restic's chunker (a Rabin fingerprint over a
//!   64-byte window, modulo the repository's [`Polynomial`]). Its cut points
//!   are bit-for-bit those of restic, which deduplication against
//!   restic-written data depends on.
//! - [`ChunkerKind::FastCdc`]: FastCDC 2020 from the `fastcdc` crate, a
//!   cairn-only option.
//!
//! Invariants, for both: cut points depend only on the bytes (never on how
//! the reader splits them into reads); chunks concatenate to the input; every
//! chunk is non-empty and at most [`MAX_SIZE`] bytes; every chunk but the
//! last is at least [`MIN_SIZE`] bytes; empty input yields no chunk.
//!
//! Chunks are [`Chunk`]s: shared ranges of the read buffer, which comes
//! from a [`BlockPool`] and returns to it when its chunks are gone (see
//! `block.rs` and `window.rs`).

mod block;
mod fastcdc;
mod polynomial;
mod rabin;
mod window;

#[cfg(test)]
mod tests;

use std::io::{self, Read};
use std::sync::Arc;

use crate::error::{Error, Result};

pub use block::{BlockPool, Chunk};
pub use polynomial::Polynomial;

use self::fastcdc::FastCdc;
use self::rabin::Rabin;
use self::window::Window;

/// No chunk but the last of a file is shorter than this.
pub const MIN_SIZE: usize = 512 * 1024;
/// The size chunks aim for on average.
pub const AVG_SIZE: usize = 1024 * 1024;
/// No chunk is longer than this.
pub const MAX_SIZE: usize = 8 * 1024 * 1024;

/// Inputs known to be shorter than this are read into a block of their own,
/// sized exactly, instead of a pooled [`MAX_SIZE`]-sized one.
pub const SMALL_INPUT: usize = 256 * 1024;

/// Which chunking algorithm to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkerKind {
    /// restic's Rabin chunker with the repository's polynomial.
    Rabin(Polynomial),
    /// FastCDC 2020 (cairn extension; restic does not produce these cuts).
    FastCdc,
}

impl ChunkerKind {
    /// The name of the algorithm as cairn records it in the repository
    /// config (`"rabin"` or `"fastcdc"`).
    pub fn name(&self) -> &'static str {
        match self {
            ChunkerKind::Rabin(_) => "rabin",
            ChunkerKind::FastCdc => "fastcdc",
        }
    }

    /// The algorithm a repository config names; `None` (restic's configs)
    /// means Rabin. The polynomial is used only by Rabin.
    pub fn from_name(name: Option<&str>, polynomial: Polynomial) -> Result<Self> {
        match name {
            None | Some("rabin") => Ok(ChunkerKind::Rabin(polynomial)),
            Some("fastcdc") => Ok(ChunkerKind::FastCdc),
            Some(other) => Err(Error::Unsupported {
                what: "chunker".into(),
                value: other.into(),
            }),
        }
    }
}

/// What a cut-point search concluded about the current chunk's bytes.
enum Scan {
    /// The chunk ends after this many bytes.
    Cut(usize),
    /// No cut yet: read until the chunk has at least this many bytes.
    More(usize),
}

/// The algorithm-specific part of a [`Chunker`].
enum Cutter {
    Rabin(Rabin),
    FastCdc(FastCdc),
}

impl Cutter {
    fn scan(&mut self, chunk: &[u8], eof: bool) -> Scan {
        match self {
            Cutter::Rabin(r) => r.scan(chunk, eof),
            Cutter::FastCdc(f) => f.scan(chunk, eof),
        }
    }
}

/// Splits the bytes of a reader into content-defined chunks.
pub struct Chunker<R: Read> {
    window: Window<R>,
    cutter: Cutter,
    /// Set once a read failed; the chunk in progress is then unreliable.
    failed: bool,
}

impl<R: Read> Chunker<R> {
    /// A chunker over `reader`, with a pool of its own. Cheap: tables take
    /// microseconds to build and the read buffer is allocated on the first
    /// read.
    pub fn new(kind: ChunkerKind, reader: R) -> Self {
        Self::with_size_hint(kind, reader, None, BlockPool::new(1))
    }

    /// A chunker over a reader expected to yield `size` bytes (a file's
    /// size from `stat`), reading into blocks from `pool` (shared by
    /// chunkers that run one after another or at once, and returned to it
    /// when their chunks are dropped). A file under 256 KiB gets one
    /// exactly sized block instead, which its single chunk then is. The
    /// hint never changes the chunks.
    pub fn with_size_hint(
        kind: ChunkerKind,
        reader: R,
        size: Option<u64>,
        pool: Arc<BlockPool>,
    ) -> Self {
        let cutter = match kind {
            ChunkerKind::Rabin(pol) => Cutter::Rabin(Rabin::new(pol)),
            ChunkerKind::FastCdc => Cutter::FastCdc(FastCdc::new()),
        };
        Chunker {
            window: Window::with_size_hint(reader, size, pool),
            cutter,
            failed: false,
        }
    }

    /// The next chunk, or None at EOF. Empty input yields no chunks.
    ///
    /// `Interrupted` reads are retried. After any other read error the
    /// chunker is spent: this and every later call return an error.
    pub fn next_chunk(&mut self) -> io::Result<Option<Chunk>> {
        if self.failed {
            return Err(io::Error::other(
                "chunker: an earlier read failed, the stream position is lost",
            ));
        }
        loop {
            let data = self.window.data();
            let eof = self.window.eof();
            if eof && data.is_empty() {
                return Ok(None);
            }
            match self.cutter.scan(data, eof) {
                Scan::Cut(n) => {
                    // Never an empty chunk, whatever a cutter says.
                    let n = n.clamp(1, data.len().max(1));
                    return Ok(Some(self.window.take(n)));
                }
                Scan::More(want) => {
                    if let Err(e) = self.window.fill(want.max(data.len() + 1)) {
                        self.failed = true;
                        return Err(e);
                    }
                }
            }
        }
    }
}

impl<R: Read> Iterator for Chunker<R> {
    type Item = io::Result<Chunk>;

    /// Yields chunks, then stops; after a read error yields that error once
    /// and then stops.
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        self.next_chunk().transpose()
    }
}
