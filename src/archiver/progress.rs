//! Live counters of a running backup, for progress bars and status lines.
//!
//! [`Progress`] is shared (an `Arc`) between the engine's threads, which
//! only add to it, and whoever displays it, which reads a consistent-enough
//! [`ProgressSnapshot`] whenever it likes. Counters are relaxed atomics: a
//! snapshot may mix values from slightly different moments, never torn
//! ones. The totals come from the scanner ([`scan`](super::scan)), which
//! runs ahead of the backup; until it is done they are lower bounds.
//! "Done" counts every file and byte that is finished, read or not (an
//! unchanged file is done at once); `bytes_read` counts only what was
//! actually read from files.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Counters of one backup. See the module docs.
#[derive(Debug)]
pub struct Progress {
    started: Instant,
    files_done: AtomicU64,
    dirs_done: AtomicU64,
    bytes_done: AtomicU64,
    bytes_read: AtomicU64,
    total_files: AtomicU64,
    total_bytes: AtomicU64,
    scan_finished: AtomicBool,
    errors: AtomicU64,
    changed_during_backup: AtomicU64,
    /// The file each reader works on (one slot per reader).
    current: Mutex<Vec<Option<PathBuf>>>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

/// A copy of the counters at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProgressSnapshot {
    pub elapsed: Duration,
    pub files_done: u64,
    pub dirs_done: u64,
    pub bytes_done: u64,
    pub bytes_read: u64,
    pub total_files: u64,
    pub total_bytes: u64,
    /// True once the totals are final.
    pub scan_finished: bool,
    pub errors: u64,
    pub changed_during_backup: u64,
    /// Files being read right now.
    pub current_files: Vec<PathBuf>,
}

impl ProgressSnapshot {
    /// Fraction of the bytes done (0 until the scan found some).
    pub fn fraction(&self) -> f64 {
        if self.total_bytes == 0 {
            return 0.0;
        }
        (self.bytes_done as f64 / self.total_bytes as f64).clamp(0.0, 1.0)
    }

    /// Estimated time left, from the byte rate so far; `None` while it
    /// cannot be estimated (scan unfinished, nothing done yet).
    pub fn eta(&self) -> Option<Duration> {
        if !self.scan_finished || self.bytes_done == 0 || self.elapsed.is_zero() {
            return None;
        }
        let left = self.total_bytes.saturating_sub(self.bytes_done) as f64;
        let rate = self.bytes_done as f64 / self.elapsed.as_secs_f64();
        Some(Duration::from_secs_f64((left / rate).min(1e9)))
    }

    /// Bytes per second done so far.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        self.bytes_done as f64 / secs
    }
}

impl Progress {
    pub fn new() -> Self {
        Progress {
            started: Instant::now(),
            files_done: AtomicU64::new(0),
            dirs_done: AtomicU64::new(0),
            bytes_done: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            total_files: AtomicU64::new(0),
            total_bytes: AtomicU64::new(0),
            scan_finished: AtomicBool::new(false),
            errors: AtomicU64::new(0),
            changed_during_backup: AtomicU64::new(0),
            current: Mutex::new(Vec::new()),
        }
    }

    pub fn snapshot(&self) -> ProgressSnapshot {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ProgressSnapshot {
            elapsed: self.started.elapsed(),
            files_done: r(&self.files_done),
            dirs_done: r(&self.dirs_done),
            bytes_done: r(&self.bytes_done),
            bytes_read: r(&self.bytes_read),
            total_files: r(&self.total_files),
            total_bytes: r(&self.total_bytes),
            scan_finished: self.scan_finished.load(Ordering::Relaxed),
            errors: r(&self.errors),
            changed_during_backup: r(&self.changed_during_backup),
            current_files: self.current.lock().iter().flatten().cloned().collect(),
        }
    }

    pub(crate) fn file_done(&self) {
        self.files_done.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn dir_done(&self) {
        self.dirs_done.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_bytes_done(&self, n: u64) {
        self.bytes_done.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_bytes_read(&self, n: u64) {
        self.bytes_read.fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes read from files so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read.load(Ordering::Relaxed)
    }

    pub(crate) fn add_total(&self, files: u64, bytes: u64) {
        self.total_files.fetch_add(files, Ordering::Relaxed);
        self.total_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn scan_finished(&self) {
        self.scan_finished.store(true, Ordering::Relaxed);
    }

    pub(crate) fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn changed_during_backup(&self) {
        self.changed_during_backup.fetch_add(1, Ordering::Relaxed);
    }

    /// Reader `slot` starts (`Some`) or stops (`None`) reading a file.
    pub(crate) fn set_current(&self, slot: usize, path: Option<PathBuf>) {
        let mut current = self.current.lock();
        if current.len() <= slot {
            current.resize(slot + 1, None);
        }
        current[slot] = path;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_fraction_and_eta() {
        let p = Progress::new();
        p.add_total(4, 1000);
        p.add_bytes_done(250);
        p.file_done();
        p.set_current(1, Some("/a".into()));
        let mut s = p.snapshot();
        assert_eq!((s.files_done, s.bytes_done, s.total_files), (1, 250, 4));
        assert_eq!(s.current_files, [PathBuf::from("/a")]);
        assert!((s.fraction() - 0.25).abs() < 1e-9);
        assert_eq!(s.eta(), None, "no ETA before the scan is done");
        s.scan_finished = true;
        s.elapsed = Duration::from_secs(10);
        assert_eq!(s.eta(), Some(Duration::from_secs(30)));
        p.set_current(1, None);
        assert!(p.snapshot().current_files.is_empty());
    }
}
