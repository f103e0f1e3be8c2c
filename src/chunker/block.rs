//! Read buffers ("blocks") and the chunks that share them.
//!
//! A [`Chunk`] is a range of the block its bytes were read into, not a
//! copy: a file's bytes are read once and handed to the savers as they
//! are. A block that came from a [`BlockPool`] goes back to it when the
//! window that read into it and every chunk cut from it are gone, so a
//! backup cycles through a few blocks instead of allocating megabytes per
//! chunk (which the allocator then holds on to for a while, and which
//! page-fault in again when reused).
//!
//! Invariant: a block is written only while nothing else refers to it (the
//! window checks with [`Arc::get_mut`]), so a chunk's bytes never change.

use std::fmt;
use std::ops::{Deref, Range};
use std::sync::Arc;

use parking_lot::Mutex;

use super::window::CAPACITY;

/// A chunk: a shared, immutable range of a read buffer.
#[derive(Clone)]
pub struct Chunk {
    block: Arc<Block>,
    range: Range<usize>,
}

impl Chunk {
    /// `range` of `block`.
    pub(super) fn new(block: Arc<Block>, range: Range<usize>) -> Chunk {
        debug_assert!(range.end <= block.data.len());
        Chunk { block, range }
    }
}

impl Deref for Chunk {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.block.data[self.range.clone()]
    }
}

impl AsRef<[u8]> for Chunk {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Chunk({} bytes)", self.len())
    }
}

/// A read buffer, returned to its pool (if any) when dropped.
pub(super) struct Block {
    pub(super) data: Vec<u8>,
    pool: Option<Arc<BlockPool>>,
}

impl Block {
    /// A zeroed block of `len` bytes that belongs to no pool (freed when
    /// dropped): for a small input's exactly sized buffer.
    pub(super) fn owned(len: usize) -> Block {
        Block {
            data: vec![0; len],
            pool: None,
        }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.put(std::mem::take(&mut self.data));
        }
    }
}

/// Full-size read buffers for reuse, shared by the chunkers of one backup
/// (and by the savers, whose dropped chunks return them).
pub struct BlockPool {
    free: Mutex<Vec<Vec<u8>>>,
    keep: usize,
}

impl BlockPool {
    /// A pool that keeps up to `keep` unused blocks (of about 10 MiB each).
    pub fn new(keep: usize) -> Arc<BlockPool> {
        Arc::new(BlockPool {
            free: Mutex::new(Vec::new()),
            keep,
        })
    }

    /// A full-size block: a kept one, or a new one.
    pub(super) fn block(self: &Arc<Self>) -> Block {
        let data = self.free.lock().pop().unwrap_or_else(|| vec![0; CAPACITY]);
        Block {
            data,
            pool: Some(Arc::clone(self)),
        }
    }

    fn put(&self, data: Vec<u8>) {
        let mut free = self.free.lock();
        if free.len() < self.keep && data.len() == CAPACITY {
            free.push(data);
        }
    }

    /// Blocks kept for reuse.
    #[cfg(test)]
    pub(super) fn kept(&self) -> usize {
        self.free.lock().len()
    }
}
