//! [`ByteBudget`]: a bound on the bytes of chunks handed from the readers
//! to the savers and not yet saved.
//!
//! The chunk queue is bounded by count, but a chunk is anywhere between a
//! few bytes and 8 MiB: repetitive data (logs, text) cuts at the 8 MiB
//! maximum, and a count bound alone then lets several times more memory
//! pile up than average chunks would. Readers [`acquire`](ByteBudget::acquire)
//! a chunk's length before queueing it and savers
//! [`release`](ByteBudget::release) it once the chunk is saved.
//!
//! The pipeline also counts files with one: the large files being read at
//! once, one unit each.
//!
//! Invariant: a chunk is always admitted when nothing is outstanding, so a
//! chunk larger than the whole budget still passes (alone), and a waiting
//! reader always has a saver working for it: it waits only while some
//! admitted chunk has not been released yet.

use parking_lot::{Condvar, Mutex};

/// See the module docs.
pub struct ByteBudget {
    limit: usize,
    outstanding: Mutex<usize>,
    freed: Condvar,
}

impl ByteBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        ByteBudget {
            limit,
            outstanding: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Wait until `len` more bytes fit (or nothing is outstanding), then
    /// count them.
    pub fn acquire(&self, len: usize) {
        let mut outstanding = self.outstanding.lock();
        while *outstanding > 0 && *outstanding + len > self.limit {
            self.freed.wait(&mut outstanding);
        }
        *outstanding += len;
    }

    /// Give back `len` bytes acquired earlier.
    pub fn release(&self, len: usize) {
        let mut outstanding = self.outstanding.lock();
        *outstanding = outstanding.saturating_sub(len);
        self.freed.notify_all();
    }

    /// Bytes acquired and not yet released.
    #[cfg(test)]
    fn outstanding(&self) -> usize {
        *self.outstanding.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn oversized_chunks_pass_alone_and_waiters_wake() {
        let budget = Arc::new(ByteBudget::new(10));
        budget.acquire(25); // more than the budget, but nothing else is out
        assert_eq!(budget.outstanding(), 25);

        let waiter = {
            let budget = Arc::clone(&budget);
            std::thread::spawn(move || budget.acquire(4))
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "admitted while over budget");
        budget.release(25);
        waiter.join().expect("waiter");
        assert_eq!(budget.outstanding(), 4);

        budget.acquire(6); // fits exactly
        assert_eq!(budget.outstanding(), 10);
        budget.release(10);
        assert_eq!(budget.outstanding(), 0);
    }
}
