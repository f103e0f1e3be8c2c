//! The read buffer behind a [`Chunker`](super::Chunker).
//!
//! `buf[pos..end]` holds the bytes read but not yet returned, starting with
//! the chunk being assembled, which is thus always contiguous. The buffer
//! starts small (most files are small) and grows on demand up to
//! [`CAPACITY`]; when its tail is full the live bytes move to the front.
//! Each byte is copied once out of the buffer into its chunk's exactly-sized
//! `Vec`, plus occasionally by a move to the front.
//!
//! A window may be given a *spare* buffer (a full-size one an earlier
//! window gave back, [`Window::into_spare`]) to use instead of allocating:
//! a thread chunking large files one after another then reuses one buffer
//! instead of allocating, zero-filling and growing one per file.

use std::io::{self, ErrorKind, Read};

use super::MAX_SIZE;

/// Initial buffer size.
const INITIAL: usize = 256 * 1024;
/// Largest buffer size: a whole maximal chunk plus room to read ahead.
pub(super) const CAPACITY: usize = MAX_SIZE + MAX_SIZE / 4;

pub(super) struct Window<R> {
    reader: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    /// Size of the first allocation.
    first: usize,
    /// A buffer to use instead of the first allocation (empty if none).
    spare: Vec<u8>,
}

impl<R: Read> Window<R> {
    #[cfg(test)]
    pub(super) fn new(reader: R) -> Self {
        Self::with_size_hint(reader, None)
    }

    /// A window over a reader expected to hold `size` bytes: the first
    /// buffer then holds exactly them plus the one byte that lets the read
    /// after them report the end, so a small file costs one small
    /// allocation and its single chunk is the buffer itself (see
    /// [`take`](Self::take)). A wrong hint only costs a reallocation.
    pub(super) fn with_size_hint(reader: R, size: Option<u64>) -> Self {
        let first = size.map_or(INITIAL, |s| {
            usize::try_from(s).map_or(INITIAL, |s| s.saturating_add(1).min(INITIAL))
        });
        Window {
            reader,
            buf: Vec::new(),
            pos: 0,
            end: 0,
            eof: false,
            first,
            spare: Vec::new(),
        }
    }

    /// Whether a reader of `size` bytes would outgrow the first allocation
    /// (see [`wants_spare_buffer`](super::wants_spare_buffer)).
    pub(super) fn wants_spare(size: Option<u64>) -> bool {
        size.is_none_or(|s| s >= INITIAL as u64)
    }

    /// Use `spare` (see the module docs) as the buffer, if it is at least
    /// as large as the first allocation would be. Its contents do not
    /// matter: only bytes read into it are ever returned.
    pub(super) fn with_spare(mut self, spare: Vec<u8>) -> Self {
        if spare.len() >= self.first {
            self.spare = spare;
        }
        self
    }

    /// The buffer, for a later window's [`with_spare`](Self::with_spare),
    /// if it grew past its initial size (a large input; empty otherwise).
    pub(super) fn into_spare(self) -> Vec<u8> {
        let buf = if self.buf.is_empty() {
            self.spare
        } else {
            self.buf
        };
        if buf.len() > INITIAL {
            buf
        } else {
            Vec::new()
        }
    }

    /// The bytes read and not yet taken.
    pub(super) fn data(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
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
            if self.end == self.buf.len() {
                self.make_room(want);
            }
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n.min(self.buf.len() - self.end),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Make free space after `end` so that `want` bytes fit from `pos`:
    /// grow if the buffer is too small, else move the live bytes to the front.
    fn make_room(&mut self, want: usize) {
        let live = self.end - self.pos;
        if self.buf.is_empty() && !self.spare.is_empty() {
            self.buf = std::mem::take(&mut self.spare);
        } else if self.buf.is_empty() {
            self.buf = vec![0u8; self.first];
        } else if self.buf.len() < want {
            let len = want.max(2 * self.buf.len()).clamp(INITIAL, CAPACITY);
            let mut bigger = vec![0u8; len];
            bigger[..live].copy_from_slice(&self.buf[self.pos..self.end]);
            self.buf = bigger;
        } else {
            self.buf.copy_within(self.pos..self.end, 0);
        }
        self.pos = 0;
        self.end = live;
    }

    /// Remove the first `n` available bytes (`n ≤ data().len()`) and return
    /// them as a chunk.
    pub(super) fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.end - self.pos);
        if self.pos == 0
            && n == self.end
            && self.buf.len() <= n + n / 8 + 1
            && self.buf.len() <= INITIAL
        {
            // The whole buffer, which is hardly larger than the chunk (a
            // small file read with a size hint): hand it over, no copy. A
            // larger buffer stays, to be a spare for the next input
            // (handing it over would save one copy and cost an allocation
            // and its page faults, plus the growth copies, for the next).
            let mut chunk = std::mem::take(&mut self.buf);
            chunk.truncate(n);
            self.end = 0;
            return chunk;
        }
        let chunk = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        }
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
    fn fill_take_and_grow() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut w = Window::new(Trickle {
            data: &data,
            step: 70_001,
            interrupt: false,
        });
        w.fill(10).unwrap();
        assert!(w.data().len() >= 10);
        assert_eq!(w.data(), &data[..w.data().len()]);
        assert_eq!(w.take(5), &data[..5]);

        w.fill(2_000_000).unwrap();
        assert!(w.data().len() >= 2_000_000);
        assert_eq!(w.data(), &data[5..5 + w.data().len()]);
        assert!(w.buf.len() <= CAPACITY);

        let mut got = w.take(1_000_000);
        while !w.eof() || !w.data().is_empty() {
            w.fill(w.data().len() + 1).unwrap();
            let n = w.data().len();
            got.extend(w.take(n));
        }
        assert_eq!(got, &data[5..]);
        w.fill(100).unwrap();
        assert!(w.data().is_empty());
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
        // Exact hint: one buffer of size + 1, handed over as the chunk.
        let mut w = Window::with_size_hint(&data[..], Some(5000));
        w.fill(CAPACITY).unwrap();
        assert!(w.eof());
        assert_eq!(w.buf.len(), 5001);
        let chunk = w.take(5000);
        assert_eq!(chunk, data);
        assert!(w.buf.is_empty() && w.data().is_empty());

        // Wrong hints (the file grew or shrank) still read everything.
        for hint in [0, 1, 100, 4999, 5001, 1 << 40] {
            let mut w = Window::with_size_hint(&data[..], Some(hint));
            let mut got = Vec::new();
            while !w.eof() || !w.data().is_empty() {
                w.fill(w.data().len() + 700).unwrap();
                let n = w.data().len().min(1234);
                got.extend(w.take(n));
            }
            assert_eq!(got, data, "hint {hint}");
        }
    }
}
