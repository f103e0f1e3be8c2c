//! A small, bounded worker pool for the I/O-bound loops of `check`,
//! `prune`, `repair` and `copy`.
//!
//! [`map`] runs `work` on every item in `threads` scoped threads and hands
//! each result to `sink` on the calling thread, so the sink needs neither
//! `Send` nor locking. Both channels are bounded by the thread count: at
//! most about `3 × threads` items or results exist at once, which is what
//! keeps memory bounded when each result is large (a pack's findings, a
//! decoded tree). Results arrive in completion order, not input order.

use crossbeam_channel::bounded;

/// Apply `work` to every item on up to `threads` threads (at least one),
/// passing each result to `sink` on the calling thread as it completes.
pub(crate) fn map<T, R, W, S>(threads: usize, items: Vec<T>, work: W, sink: S)
where
    T: Send,
    R: Send,
    W: Fn(T) -> R + Sync,
    S: FnMut(R),
{
    map_with(threads, items, || (), |(), item| work(item), sink);
}

/// [`map`] with per-thread state: each worker thread starts with `init()`
/// and passes it to every `work` call it makes (reused buffers, say).
pub(crate) fn map_with<T, R, I, St, W, S>(
    threads: usize,
    items: Vec<T>,
    init: I,
    work: W,
    mut sink: S,
) where
    T: Send,
    R: Send,
    I: Fn() -> St + Sync,
    W: Fn(&mut St, T) -> R + Sync,
    S: FnMut(R),
{
    let threads = threads.clamp(1, items.len().max(1));
    let (item_tx, item_rx) = bounded::<T>(threads);
    let (result_tx, result_rx) = bounded::<R>(threads);
    let (init, work) = (&init, &work);
    std::thread::scope(|scope| {
        // A separate feeder, so that the calling thread only drains results
        // and the bounded channels cannot deadlock.
        scope.spawn(move || {
            for item in items {
                if item_tx.send(item).is_err() {
                    break;
                }
            }
        });
        for _ in 0..threads {
            let item_rx = item_rx.clone();
            let result_tx = result_tx.clone();
            scope.spawn(move || {
                let mut state = init();
                for item in item_rx {
                    if result_tx.send(work(&mut state, item)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(result_tx);
        drop(item_rx);
        for result in result_rx {
            sink(result);
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_item_once() {
        for threads in [0, 1, 3, 64] {
            let mut got = Vec::new();
            super::map(threads, (0..100u32).collect(), |n| n * 2, |r| got.push(r));
            got.sort_unstable();
            assert_eq!(got, (0..100).map(|n| n * 2).collect::<Vec<_>>());
        }
        // Each thread keeps its own state: the items a thread saw add up.
        let mut seen = Vec::new();
        super::map_with(
            3,
            (0..100u32).collect(),
            Vec::new,
            |mine: &mut Vec<u32>, n| {
                mine.push(n);
                mine.len()
            },
            |r| seen.push(r),
        );
        assert_eq!(seen.len(), 100);
        assert!(seen.iter().filter(|&&r| r == 1).count() <= 3);
        let mut calls = 0;
        super::map(4, Vec::<u8>::new(), |n| n, |_| calls += 1);
        assert_eq!(calls, 0);
    }
}
