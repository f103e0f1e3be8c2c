//! Stage 3 of a restore: fill the files stage 2 created or marked for
//! update, pack by pack, on several threads.
//!
//! [`schedule`] turns the plan's blob slots into one job per pack (each
//! needed blob once, with all its destinations, sorted by offset), cut
//! into ranged reads of neighbouring blobs; [`worker`]s take the reads one
//! at a time, decrypt, verify and decompress each blob once, and write it
//! with positioned writes into every file that needs it. So each pack
//! is read once (in ranges), a blob shared by many files is fetched once,
//! and many files are written at once.
//!
//! Contract (what the rest of the restore relies on):
//! - a blob is written only after its MAC, length and hash were checked; a
//!   failed blob leaves its range unwritten and its files incomplete;
//! - files are opened below the target without following symlinks
//!   (`open_beneath`) and must be regular files;
//! - output: per file plan, whether every needed blob was written; one
//!   reported problem per incomplete file;
//! - memory: the schedule (a small record per slot, like the plan) plus,
//!   per worker, one ranged read of at most 4 MiB (or one larger blob) and
//!   one decoded blob; never the data of a whole file or pack.

mod decode;
mod schedule;
mod worker;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crate::repository::Repository;

use super::create::{Prepared, Todo};
use super::fsops::DirHandle;
use super::options::{Progress, RestoreOptions};
use super::plan::Plan;
use super::Reporter;

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

/// Threads used when the options leave it to us: I/O and CPU overlap, so
/// a few more than the cores, but not many more.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(4, |n| (n.get() * 2).clamp(2, 8))
}

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
        sparse: (0..count)
            .map(|k| opts.sparse && prepared.todo[k] == Todo::All)
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
    let (tx, rx) = crossbeam_channel::unbounded::<worker::Failure>();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let (shared, tx) = (&shared, tx.clone());
            scope.spawn(move || worker::run(shared, &tx));
        }
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
