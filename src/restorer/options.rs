//! What a restore may do and how it tells what it did: [`RestoreOptions`]
//! (restic's `--overwrite`, `--delete`, `--dry-run`, `--verify`,
//! `--sparse`, `--include-xattr`/`--exclude-xattr` and cairn's
//! `--ownership-by-name`), live [`Progress`] counters another thread may
//! read at any time, and the [`Sink`] that receives problems and completed
//! items as they happen.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::filter::PatternSet;

use super::Problem;

/// What to do with an entry that exists already in the target (restic's
/// `--overwrite`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Overwrite {
    /// Replace it; an existing regular file is checked blob by blob against
    /// the snapshot and only the parts that differ are written.
    #[default]
    Always,
    /// As `Always`, but a regular file whose size and modification time
    /// match the snapshot is taken as up to date without reading it
    /// (unless [`RestoreOptions::verify`] asks for content hashes).
    IfChanged,
    /// Replace it only if the snapshot's modification time is newer.
    IfNewer,
    /// Never touch it.
    Never,
}

impl FromStr for Overwrite {
    type Err = Error;

    fn from_str(s: &str) -> Result<Overwrite> {
        match s {
            "always" => Ok(Overwrite::Always),
            "if-changed" => Ok(Overwrite::IfChanged),
            "if-newer" => Ok(Overwrite::IfNewer),
            "never" => Ok(Overwrite::Never),
            _ => Err(Error::InvalidArgument(format!(
                "invalid overwrite behavior {s:?}: use always, if-changed, if-newer or never"
            ))),
        }
    }
}

impl fmt::Display for Overwrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Overwrite::Always => "always",
            Overwrite::IfChanged => "if-changed",
            Overwrite::IfNewer => "if-newer",
            Overwrite::Never => "never",
        })
    }
}

/// Which extended attributes are restored (names matched with restic's
/// patterns, e.g. `user.*`).
#[derive(Clone, Debug, Default)]
pub enum XattrSelection {
    /// All of them (restic's default).
    #[default]
    All,
    /// Only those a pattern matches.
    Include(PatternSet),
    /// All but those a pattern matches.
    Exclude(PatternSet),
}

impl XattrSelection {
    /// Build from `--include-xattr` and `--exclude-xattr` patterns; giving
    /// both is an error, as in restic.
    pub fn new(include: &[String], exclude: &[String]) -> Result<XattrSelection> {
        match (include.is_empty(), exclude.is_empty()) {
            (true, true) => Ok(XattrSelection::All),
            (false, true) => Ok(XattrSelection::Include(PatternSet::new(include, false)?)),
            (true, false) => Ok(XattrSelection::Exclude(PatternSet::new(exclude, false)?)),
            (false, false) => Err(Error::InvalidArgument(
                "--exclude-xattr and --include-xattr are mutually exclusive".into(),
            )),
        }
    }

    /// Whether the attribute `name` is restored.
    pub fn selects(&self, name: &str) -> bool {
        match self {
            XattrSelection::All => true,
            XattrSelection::Include(set) => set.matches(name),
            XattrSelection::Exclude(set) => !set.matches(name),
        }
    }
}

/// How a restore runs. The default restores everything, overwriting what
/// is in the way, as `restic restore` does.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    pub overwrite: Overwrite,
    /// Remove entries of restored directories that the snapshot does not
    /// have (only those the selection would select).
    pub delete: bool,
    /// Decide and report everything, change nothing.
    pub dry_run: bool,
    /// Check existing files by content hashes even where
    /// [`Overwrite::IfChanged`] would trust size and modification time.
    pub verify: bool,
    /// Leave runs of zero bytes in new files as holes.
    pub sparse: bool,
    pub xattrs: XattrSelection,
    /// Map the snapshot's user and group names to local ids (falling back
    /// to the numeric ids) instead of using the numeric ids.
    pub ownership_by_name: bool,
    /// Threads fetching and writing content; 0 picks one from the CPU count.
    pub workers: usize,
}

/// What happened to one item, reported through [`Sink::action`] (restic's
/// `--verbose=2` lines and JSON `verbose_status` actions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Created (or replaced) with its content and metadata.
    Restored,
    /// An existing file whose differing parts were rewritten.
    Updated,
    /// An existing file that was already right; metadata restored.
    Unchanged,
    /// Left alone because of the overwrite policy.
    Skipped,
    /// Removed by `--delete`.
    Deleted,
}

impl Action {
    /// restic's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Restored => "restored",
            Action::Updated => "updated",
            Action::Unchanged => "unchanged",
            Action::Skipped => "skipped",
            Action::Deleted => "deleted",
        }
    }
}

/// Where a restore sends what happens, as it happens. A closure taking a
/// [`Problem`] is a sink that ignores actions.
pub trait Sink {
    /// Something went wrong with one item; the restore goes on.
    fn problem(&mut self, problem: Problem);
    /// An item is done (`size`: its content in bytes, 0 for non-files).
    fn action(&mut self, _action: Action, _location: &str, _size: u64) {}
    /// Whether [`Sink::action`] wants every restored item (reporting them
    /// costs time; skipped and deleted items are always reported).
    fn wants_actions(&self) -> bool {
        false
    }
}

impl<F: FnMut(Problem)> Sink for F {
    fn problem(&mut self, problem: Problem) {
        self(problem)
    }
}

/// Live counters of a running restore (restic's progress state). Updated
/// by the restore's threads, readable from any thread at any time.
#[derive(Debug, Default)]
pub struct Progress {
    files_total: AtomicU64,
    files_restored: AtomicU64,
    files_skipped: AtomicU64,
    files_deleted: AtomicU64,
    bytes_total: AtomicU64,
    bytes_restored: AtomicU64,
    bytes_skipped: AtomicU64,
}

/// A copy of [`Progress`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProgressState {
    pub files_total: u64,
    pub files_restored: u64,
    pub files_skipped: u64,
    pub files_deleted: u64,
    pub bytes_total: u64,
    pub bytes_restored: u64,
    pub bytes_skipped: u64,
}

impl ProgressState {
    /// Fraction of the content written, 0.0 to 1.0.
    pub fn fraction_done(&self) -> f64 {
        if self.bytes_total == 0 {
            0.0
        } else {
            (self.bytes_restored as f64 / self.bytes_total as f64).min(1.0)
        }
    }
}

impl Progress {
    pub fn new() -> Progress {
        Progress::default()
    }

    /// The counters now.
    pub fn state(&self) -> ProgressState {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ProgressState {
            files_total: get(&self.files_total),
            files_restored: get(&self.files_restored),
            files_skipped: get(&self.files_skipped),
            files_deleted: get(&self.files_deleted),
            bytes_total: get(&self.bytes_total),
            bytes_restored: get(&self.bytes_restored),
            bytes_skipped: get(&self.bytes_skipped),
        }
    }

    pub(crate) fn add_total(&self, files: u64, bytes: u64) {
        self.files_total.fetch_add(files, Ordering::Relaxed);
        self.bytes_total.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn add_restored_file(&self) {
        self.files_restored.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_bytes(&self, bytes: u64) {
        self.bytes_restored.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn add_skipped(&self, bytes: u64) {
        self.files_skipped.fetch_add(1, Ordering::Relaxed);
        self.bytes_skipped.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn add_deleted(&self, entries: u64) {
        self.files_deleted.fetch_add(entries, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overwrite_parses_restic_words() {
        for word in ["always", "if-changed", "if-newer", "never"] {
            assert_eq!(word.parse::<Overwrite>().unwrap().to_string(), word);
        }
        assert!("sometimes".parse::<Overwrite>().is_err());
    }

    #[test]
    fn xattr_selection_matches_names() {
        let include = XattrSelection::new(&["user.*".into()], &[]).unwrap();
        assert!(include.selects("user.comment"));
        assert!(!include.selects("security.selinux"));
        let exclude = XattrSelection::new(&[], &["security.*".into()]).unwrap();
        assert!(exclude.selects("user.comment"));
        assert!(!exclude.selects("security.selinux"));
        assert!(XattrSelection::new(&["a".into()], &["b".into()]).is_err());
        assert!(XattrSelection::default().selects("anything"));
    }

    #[test]
    fn progress_counts() {
        let p = Progress::new();
        p.add_total(3, 100);
        p.add_bytes(40);
        p.add_restored_file();
        p.add_skipped(7);
        p.add_deleted(2);
        let s = p.state();
        assert_eq!(
            (
                s.files_total,
                s.files_restored,
                s.files_skipped,
                s.files_deleted
            ),
            (3, 1, 1, 2)
        );
        assert_eq!(
            (s.bytes_total, s.bytes_restored, s.bytes_skipped),
            (100, 40, 7)
        );
        assert!((s.fraction_done() - 0.4).abs() < 1e-9);
    }
}
