//! `--delete`: remove entries of restored directories that the snapshot
//! does not have, as restic does.
//!
//! Only directories the restore created or kept are looked at (the target
//! itself included), and in them only entries that the selection would
//! select; so with `--include /foo` nothing outside `/foo` is removed.
//! Names the snapshot has but the plan skipped (sockets, entries with
//! problems) are kept, and a directory whose listing could not be loaded
//! from the repository is left alone entirely. Removal never follows a
//! symlink (see `fsops`). With `--dry-run` the entries are only reported.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io;

use super::create::State;
use super::dircache::DirCache;
use super::options::{Action, Progress, RestoreOptions};
use super::plan::{ItemKind, Plan};
use super::Reporter;

/// Remove what the snapshot does not have; returns how many entries
/// (counting everything inside removed directories) were removed.
pub(crate) fn delete_unexpected(
    plan: &Plan,
    cache: &mut DirCache,
    states: &[State],
    opts: &RestoreOptions,
    progress: &Progress,
    reporter: &mut Reporter,
) -> u64 {
    let mut expected: HashMap<Option<usize>, HashSet<&OsStr>> = HashMap::new();
    for item in &plan.items {
        expected.entry(item.parent).or_default().insert(item.name());
    }
    for (dir, name) in &plan.kept {
        expected.entry(*dir).or_default().insert(name.as_os_str());
    }
    let partial: HashSet<usize> = plan.partial_dirs.iter().copied().collect();
    let dirs = std::iter::once(None).chain(
        (0..plan.items.len())
            .filter(|&i| plan.items[i].kind == ItemKind::Dir && states[i] == State::Created)
            .filter(|i| !partial.contains(i))
            .map(Some),
    );
    let empty = HashSet::new();
    let mut deleted = 0;
    for dir in dirs {
        let keep = expected.get(&dir).unwrap_or(&empty);
        match delete_in(plan, cache, dir, keep, opts, progress, reporter) {
            Ok(n) => deleted += n,
            // A dry run into a directory that does not exist yet.
            Err(e) if opts.dry_run && e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                let location = dir.map_or_else(|| "/".to_string(), |d| plan.location(d));
                reporter.report(location, format!("cannot delete unexpected entries: {e}"));
            }
        }
    }
    deleted
}

fn delete_in(
    plan: &Plan,
    cache: &mut DirCache,
    dir: Option<usize>,
    keep: &HashSet<&OsStr>,
    opts: &RestoreOptions,
    progress: &Progress,
    reporter: &mut Reporter,
) -> io::Result<u64> {
    let handle = cache.dir(plan, dir)?;
    let mut names = handle.names()?;
    names.sort();
    let prefix = dir.map_or_else(String::new, |d| plan.location(d));
    let mut deleted = 0;
    for name in names.iter().filter(|n| !keep.contains(n.as_os_str())) {
        let location = format!("{prefix}/{}", name.to_string_lossy());
        let is_dir = handle
            .lstat(name)?
            .is_some_and(|st| super::fsops::file_type(&st) == rustix::fs::FileType::Directory);
        if !plan.selection.select(&location, is_dir).0 {
            continue;
        }
        let removed = if opts.dry_run {
            1
        } else {
            match handle.remove_all(name) {
                Ok(n) => n,
                Err(e) => {
                    reporter.report(location, format!("cannot delete: {e}"));
                    continue;
                }
            }
        };
        deleted += removed;
        progress.add_deleted(removed);
        reporter.action(Action::Deleted, location, 0);
    }
    Ok(deleted)
}
