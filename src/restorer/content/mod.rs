//! Stage 3 of a restore: fill the files stage 2 created or marked for
//! update, pack by pack, on several threads.
//!
//! [`schedule`] turns the plan's blob slots into one job per pack (each
//! needed blob once, with all its destinations, sorted by offset), cut
//! into ranged reads of neighbouring blobs. Two fetcher threads read them
//! in schedule order and hand them over through a short bounded queue;
//! [`worker`]s (one per core) take them one at a time, decrypt, verify and
//! decompress each blob once ([`crate::decode`]: in place, a raw zstd
//! frame as its pieces), and write it with
//! positioned writes into every file that needs it ([`write`]). So each
//! pack is read once (in ranges), a blob shared by many files is fetched
//! once, many files are written at once, and the workers, which are
//! CPU-bound, do not wait for the disk while reads are queued: the
//! fetchers keep the next reads in flight.
//!
//! Contract (what the rest of the restore relies on):
//! - a blob is written only after its MAC, length and hash were checked; a
//!   failed blob leaves its range unwritten and its files incomplete;
//! - files are opened below the target without following symlinks
//!   (`open_beneath`) and must be regular files;
//! - output: per file plan, whether every needed blob was written; one
//!   reported problem per incomplete file;
//! - memory: the schedule (a small record per slot, like the plan) plus
//!   ranged reads of at most 4 MiB (or one larger blob) — one per fetcher,
//!   one per queue place (as many as workers) and one per worker — and
//!   one decompressed blob per worker; never the data of a whole file or
//!   pack.

mod schedule;
mod worker;
mod write;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crate::repository::Repository;

use super::create::{Prepared, Todo};
use super::fsops::DirHandle;
use super::options::{Progress, RestoreOptions};
use super::plan::Plan;
use super::Reporter;
use write::Fill;

/// What stage 3 achieved.
pub(crate) struct Written {
    /// Per file plan: every blob it needed was written (false for files
    /// that needed nothing).
    pub complete: Vec<bool>,
    /// Per file plan: its metadata was set too (the metadata stage skips
    /// it).
    pub finished: Vec<bool>,
    /// Bytes of content now right on disk: written, or already right in
    /// an updated file.
    pub bytes: u64,
}

/// Workers used when the options leave it to us: one per core (they wait
/// for no read the fetchers have queued), at least two (a worker may
/// still block creating a file or on its inode lock).
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8))
}

/// Threads reading packs for the workers: two keep a local disk busy
/// (one waits while the other's read completes) for little CPU.
const FETCHERS: usize = 2;

/// Write the content of every file that needs some.
pub(crate) fn write_contents(
    repo: &Repository,
    plan: &Plan,
    root: &DirHandle,
    prepared: &Prepared,
    opts: &RestoreOptions,
    progress: &Progress,
    reporter: &mut Reporter,
) -> Written {
    let schedule = schedule::build(plan, &prepared.todo);
    let count = plan.files.len();
    let needs = |k: usize| prepared.todo[k] != Todo::Nothing;
    let failed: Vec<AtomicBool> = (0..count).map(|_| AtomicBool::new(false)).collect();
    for (k, why) in &schedule.failures {
        if !failed[*k].swap(true, Ordering::Relaxed) {
            let location = plan.location(plan.files[*k].item);
            reporter.report(location, format!("content incomplete: {why}"));
        }
    }
    let mut matched = 0;
    for k in (0..count).filter(|&k| needs(k)) {
        matched += schedule.matched[k];
    }
    progress.add_bytes(matched);

    let shared = worker::Shared {
        repo,
        plan,
        root,
        schedule: &schedule,
        next: AtomicUsize::new(0),
        remaining: schedule
            .remaining
            .iter()
            .map(|&n| AtomicUsize::new(n))
            .collect(),
        failed,
        fill: prepared
            .todo
            .iter()
            .map(|todo| match todo {
                Todo::All if opts.sparse => Fill::Sparse,
                Todo::All => Fill::New,
                _ => Fill::Write,
            })
            .collect(),
        lazy: &prepared.lazy,
        finished: (0..count).map(|_| AtomicBool::new(false)).collect(),
        written: AtomicU64::new(0),
        progress,
        opts,
        as_root: rustix::process::geteuid().is_root(),
    };
    // Files with nothing to write (empty, or only truncated) are finished
    // by the metadata stage.
    for k in (0..count).filter(|&k| needs(k) && schedule.remaining[k] == 0) {
        if !shared.failed[k].load(Ordering::Relaxed) {
            progress.add_restored_file();
        }
    }
    let workers = match opts.workers {
        0 => default_workers(),
        n => n,
    }
    .min(schedule.reads.len());
    let fetchers = FETCHERS.min(schedule.reads.len());
    let (tx, rx) = crossbeam_channel::unbounded::<worker::Failure>();
    let (fetched_tx, fetched_rx) = crossbeam_channel::bounded::<worker::Fetched>(workers);
    std::thread::scope(|scope| {
        for _ in 0..fetchers {
            let (shared, out) = (&shared, fetched_tx.clone());
            scope.spawn(move || worker::fetch(shared, &out));
        }
        drop(fetched_tx);
        for _ in 0..workers {
            let (shared, reads, tx) = (&shared, fetched_rx.clone(), tx.clone());
            scope.spawn(move || worker::run(shared, &reads, &tx));
        }
        drop(fetched_rx);
        drop(tx);
        for failure in rx {
            let location = plan.location(plan.files[failure.file].item);
            reporter.report(location, failure.message);
        }
    });

    let complete = (0..count)
        .map(|k| {
            needs(k)
                && !shared.failed[k].load(Ordering::Acquire)
                && shared.remaining[k].load(Ordering::Acquire) == 0
        })
        .collect();
    Written {
        complete,
        finished: shared
            .finished
            .iter()
            .map(|f| f.load(Ordering::Acquire))
            .collect(),
        bytes: shared.written.load(Ordering::Acquire) + matched,
    }
}
