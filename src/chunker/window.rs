//! The read buffer behind a [`Chunker`](super::Chunker).
//!
//! `block[pos..end]` holds the bytes read but not yet returned, starting
//! with the chunk being assembled, which is thus always contiguous. Chunks
//! are ranges of the block ([`Chunk`]), not copies. The block is written
//! only while no chunk refers to it; when more bytes are needed and chunks
//! of the block are still out, the live bytes (the start of the next
//! chunk, usually well under one chunk per block) move to a fresh block
//! from the [`BlockPool`]. So each byte is read once and copied at most
//! once more, by such a move.
//!
//! A small input with a size hint gets one exactly sized block of its own
//! instead (its single chunk is then that block, without touching a pool
//! block's megabytes).

use std::io::{self, ErrorKind, Read};
use std::sync::Arc;

use super::block::{Block, BlockPool, Chunk};
use super::{MAX_SIZE, SMALL_INPUT};
/// Size of a pool block: a whole maximal chunk plus room to read ahead.
pub(super) const CAPACITY: usize = MAX_SIZE + MAX_SIZE / 4;

pub(super) struct Window<R> {
    reader: R,
    block: Arc<Block>,
    pos: usize,
    end: usize,
    eof: bool,
    /// Size of the first block, if it is not a pool block.
    exact: Option<usize>,
    pool: Arc<BlockPool>,
}

impl<R: Read> Window<R> {
    #[cfg(test)]
    pub(super) fn new(reader: R) -> Self {
        Self::with_size_hint(reader, None, BlockPool::new(1))
    }

    /// A window over a reader expected to hold `size` bytes, drawing
    /// blocks from `pool`. A small input gets a block of exactly `size`
    /// bytes plus the one byte that lets the read after them report the
    /// end. A wrong hint only costs a move to a pool block.
    pub(super) fn with_size_hint(reader: R, size: Option<u64>, pool: Arc<BlockPool>) -> Self {
        let exact = size
            .and_then(|s| usize::try_from(s).ok())
            .filter(|&s| s < SMALL_INPUT)
            .map(|s| s + 1);
        Window {
            reader,
            block: Arc::new(Block::owned(0)),
            pos: 0,
            end: 0,
            eof: false,
            exact,
            pool,
        }
    }

    /// The bytes read and not yet taken.
    pub(super) fn data(&self) -> &[u8] {
        &self.block.data[self.pos..self.end]
    }

    /// Whether the reader has reported end of input.
    pub(super) fn eof(&self) -> bool {
        self.eof
    }

    /// Read until at least `want` bytes (at most [`CAPACITY`]) are
    /// available, or end of input. Reads as much as fits, not just `want`.
    pub(super) fn fill(&mut self, want: usize) -> io::Result<()> {
        let want = want.min(CAPACITY);
        while self.end - self.pos < want && !self.eof {
            let end = self.end;
            if Arc::get_mut(&mut self.block).is_none_or(|b| end >= b.data.len()) {
                self.make_room(want);
            }
            let block = Arc::get_mut(&mut self.block).expect("make_room unshares the block");
            match self.reader.read(&mut block.data[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n.min(block.data.len() - self.end),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Make free space after `end` in a block nothing else refers to, so
    /// that `want` bytes fit from `pos`: move the live bytes to the front
    /// of the block if it is unshared and large enough, else to a new one.
    fn make_room(&mut self, want: usize) {
        let live = self.end - self.pos;
        let (pos, end) = (self.pos, self.end);
        self.pos = 0;
        self.end = live;
        if let Some(block) =
            Arc::get_mut(&mut self.block).filter(|b| b.data.len() >= want.max(live + 1))
        {
            block.data.copy_within(pos..end, 0);
            return;
        }
        let mut fresh = match self.exact.take() {
            // The first block of a small input: exactly its size, however
            // much the cutter would like to see (the read after its last
            // byte reports the end); a pool block if the input is longer.
            Some(len) if len > live => Block::owned(len),
            _ => self.pool.block(),
        };
        fresh.data[..live].copy_from_slice(&self.block.data[pos..end]);
        self.block = Arc::new(fresh);
    }

    /// Remove the first `n` available bytes (`n ≤ data().len()`) and return
    /// them as a chunk.
    pub(super) fn take(&mut self, n: usize) -> Chunk {
        let n = n.min(self.end - self.pos);
        let chunk = Chunk::new(Arc::clone(&self.block), self.pos..self.pos + n);
        self.pos += n;
        chunk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that returns at most `step` bytes per call and an
    /// `Interrupted` error before every other read.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
        interrupt: bool,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(ErrorKind::Interrupted.into());
            }
            let n = self.step.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn fill_take_and_move_to_new_blocks() {
        let data: Vec<u8> = (0..30_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut w = Window::new(Trickle {
            data: &data,
            step: 70_001,
            interrupt: false,
        });
        w.fill(10).unwrap();
        assert!(w.data().len() >= 10);
        assert_eq!(w.data(), &data[..w.data().len()]);
        let first = w.take(5);
        assert_eq!(&first[..], &data[..5]);

        w.fill(2_000_000).unwrap();
        assert!(w.data().len() >= 2_000_000);
        assert_eq!(w.data(), &data[5..5 + w.data().len()]);
        assert!(w.block.data.len() <= CAPACITY);

        // Chunks handed out keep their bytes while the window reads on
        // (into new blocks, since these ones are shared).
        let mut chunks = vec![first, w.take(1_000_000)];
        while !w.eof() || !w.data().is_empty() {
            w.fill(w.data().len() + 1).unwrap();
            let n = w.data().len().min(3_000_000);
            chunks.push(w.take(n));
        }
        let got: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(got, data);
        w.fill(100).unwrap();
        assert!(w.data().is_empty());
    }

    #[test]
    fn blocks_return_to_the_pool_and_are_reused() {
        let data: Vec<u8> = (0..(3 * CAPACITY) as u32)
            .map(|i| (i % 253) as u8)
            .collect();
        let pool = BlockPool::new(4);
        let mut w = Window::with_size_hint(&data[..], None, Arc::clone(&pool));
        let mut chunks = Vec::new();
        while !w.eof() || !w.data().is_empty() {
            w.fill(MAX_SIZE).unwrap();
            let n = w.data().len().min(MAX_SIZE / 2);
            chunks.push(w.take(n));
        }
        assert_eq!(pool.kept(), 0, "every block is still in use");
        let got: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(got, data);
        drop(chunks);
        assert!(pool.kept() >= 2, "{} blocks kept", pool.kept());
        drop(w);
        let kept = pool.kept();
        assert!(kept <= 4, "{kept} blocks kept");

        // The next input takes kept blocks instead of new ones; their old
        // bytes never show.
        let other = vec![7u8; CAPACITY + 5];
        let mut w = Window::with_size_hint(&other[..], Some(other.len() as u64), pool.clone());
        w.fill(MAX_SIZE).unwrap();
        assert_eq!(pool.kept(), kept - 1);
        let mut got = Vec::new();
        while !w.eof() || !w.data().is_empty() {
            w.fill(MAX_SIZE).unwrap();
            let n = w.data().len();
            got.extend_from_slice(&w.take(n));
        }
        assert_eq!(got, other);
    }

    #[test]
    fn read_errors_are_returned() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let mut w = Window::new(Broken);
        let err = w.fill(1).unwrap_err();
        assert_eq!(err.to_string(), "disk on fire");
    }

    #[test]
    fn size_hints_size_the_buffer_and_never_change_the_data() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 253) as u8).collect();
        let pool = BlockPool::new(2);
        // Exact hint: one block of size + 1, of its own (not the pool's),
        // and its single chunk is that block.
        let mut w = Window::with_size_hint(&data[..], Some(5000), pool.clone());
        w.fill(CAPACITY).unwrap();
        assert!(w.eof());
        assert_eq!(w.block.data.len(), 5001);
        let chunk = w.take(5000);
        assert_eq!(&chunk[..], &data[..]);
        assert!(w.data().is_empty());
        drop((w, chunk));
        assert_eq!(pool.kept(), 0);

        // Wrong hints (the file grew or shrank) still read everything.
        for hint in [0, 1, 100, 4999, 5001, 1 << 40] {
            let mut w = Window::with_size_hint(&data[..], Some(hint), pool.clone());
            let mut got = Vec::new();
            while !w.eof() || !w.data().is_empty() {
                w.fill(w.data().len() + 700).unwrap();
                let n = w.data().len().min(1234);
                got.extend_from_slice(&w.take(n));
            }
            assert_eq!(got, data, "hint {hint}");
        }
    }
}
