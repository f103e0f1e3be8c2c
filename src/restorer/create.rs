//! Stage 2 of a restore: decide, for every planned item, what to do with
//! whatever is already at its place in the target, and create the items,
//! parents first, as shells (directories 0700, files 0600 and empty);
//! content and metadata follow in later stages.
//!
//! The decision follows restic's `--overwrite` ([`Overwrite`]):
//! - nothing there: create it;
//! - a directory where a directory is planned: keep it;
//! - anything else: `never` leaves it, `if-newer` leaves it unless the
//!   snapshot's mtime is newer; otherwise it is replaced — except a regular
//!   file where a file is planned, which is compared with the plan blob by
//!   blob ([`compare`]): equal files are `Unchanged`, others are `Updated`
//!   in place and only the differing slots are rewritten. `if-changed`
//!   trusts an equal size and mtime without reading (not with `--verify`).
//!   A file with several links is never written in place (the other names
//!   could be outside the target): it is replaced unless already equal.
//!
//! A directory in the way of a non-directory is removed only with
//! `--delete`. With `--dry-run` the same decisions are made and reported,
//! and nothing is changed. An item whose directory failed is skipped
//! silently: the directory's problem covers everything below it.

use std::io;
use std::os::unix::fs::MetadataExt;

use rustix::fs::{FileType, Stat};

use super::dircache::DirCache;
use super::fsops::{file_type, InTheWay};
use super::fsops::{open_beneath, Access, DirHandle};
use super::options::{Action, Overwrite, Progress, RestoreOptions};
use super::plan::{ItemKind, Plan};
use super::verify::{compare, Comparison};
use super::Reporter;

/// What became of an item in this stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Could not be created (reported), or its directory could not.
    Failed,
    /// Left as it was because of the overwrite policy.
    Skipped,
    /// Created or replaced (for a directory: created or kept).
    Created,
    /// An existing file whose content is already right.
    Unchanged,
    /// An existing file whose differing parts must be rewritten.
    Updated,
}

/// Which blobs of a file the content stage must write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Todo {
    Nothing,
    /// Every slot (a new, empty file).
    All,
    /// These slot indices (a file updated in place).
    Slots(Vec<u32>),
}

/// The outcome of stage 2.
pub(crate) struct Prepared {
    /// Per item.
    pub states: Vec<State>,
    /// Per file plan.
    pub todo: Vec<Todo>,
    /// Per file plan: not created yet; the content stage creates it when
    /// it writes the first blob (in parallel, one open saved per file).
    pub lazy: Vec<bool>,
}

/// Decide about and create the plan's items.
pub(crate) fn create_items(
    plan: &Plan,
    cache: &mut DirCache,
    opts: &RestoreOptions,
    progress: &Progress,
    reporter: &mut Reporter,
) -> Prepared {
    // An empty target, like a directory made now, needs no look at what
    // might be in the way.
    let root_empty = !opts.dry_run
        && cache
            .dir(plan, None)
            .and_then(|root| root.names())
            .is_ok_and(|names| names.is_empty());
    let mut stage = Stage {
        plan,
        opts,
        progress,
        states: vec![State::Failed; plan.items.len()],
        todo: vec![Todo::Nothing; plan.files.len()],
        on_disk: vec![false; plan.items.len()],
        empty: vec![false; plan.items.len()],
        root_empty,
        lazy: vec![false; plan.files.len()],
        compared: match cache.root_handle() {
            Some(root) if !root_empty => compare_existing(plan, root, opts),
            _ => vec![None; plan.files.len()],
        },
        linked: plan
            .items
            .iter()
            .filter_map(|item| match item.kind {
                ItemKind::HardLink { first } => Some(first),
                _ => None,
            })
            .collect(),
        buf: Vec::new(),
    };
    for i in 0..plan.items.len() {
        let state = stage.item(cache, reporter, i);
        stage.states[i] = state;
    }
    Prepared {
        states: stage.states,
        todo: stage.todo,
        lazy: stage.lazy,
    }
}

struct Stage<'a> {
    plan: &'a Plan,
    opts: &'a RestoreOptions,
    progress: &'a Progress,
    states: Vec<State>,
    todo: Vec<Todo>,
    /// Per directory item: it exists on disk (false only in dry runs).
    on_disk: Vec<bool>,
    /// Per directory item: made by this restore, so nothing else is in it.
    empty: Vec<bool>,
    root_empty: bool,
    /// Per file plan: created by the content stage.
    lazy: Vec<bool>,
    /// Items other items are hard links to (created here, before them).
    linked: std::collections::HashSet<usize>,
    /// Per file plan: the existing file's (device, inode) and comparison,
    /// computed in parallel before the sequential pass.
    compared: Vec<Option<(u64, u64, Comparison)>>,
    buf: Vec<u8>,
}

/// The size of an item's content: a file's planned size, else 0.
fn content_size(plan: &Plan, kind: ItemKind) -> u64 {
    match kind {
        ItemKind::File { content } => plan.files[content].size(),
        _ => 0,
    }
}

fn mtime(st: &Stat) -> (i64, u32) {
    (st.st_mtime, u32::try_from(st.st_mtime_nsec).unwrap_or(0))
}

impl Stage<'_> {
    fn item(&mut self, cache: &mut DirCache, reporter: &mut Reporter, i: usize) -> State {
        let plan = self.plan;
        let item = &plan.items[i];
        let size = content_size(plan, item.kind);
        let parent_on_disk = match item.parent {
            None => true,
            Some(p) => match self.states[p] {
                State::Created => self.on_disk[p],
                State::Skipped => {
                    // Its directory was left alone: so is everything in it.
                    self.skipped(reporter, i, size);
                    return State::Skipped;
                }
                _ => return State::Failed,
            },
        };
        let parent_empty = match item.parent {
            None => self.root_empty,
            Some(p) => self.empty[p],
        };
        let existing = if parent_on_disk && !parent_empty {
            match cache
                .dir(plan, item.parent)
                .and_then(|dir| dir.lstat(item.name()))
            {
                Ok(st) => st,
                // A dry run into a target that does not exist yet.
                Err(e) if self.opts.dry_run && e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => {
                    reporter.report(plan.location(i), format!("cannot look at it: {e}"));
                    return State::Failed;
                }
            }
        } else {
            None
        };
        let decision = match &existing {
            None => Ok(Decision::Create),
            Some(st) => self.decide(cache, i, st),
        };
        let decision = match decision {
            Ok(d) => d,
            Err(e) => {
                reporter.report(plan.location(i), format!("cannot compare with it: {e}"));
                return State::Failed;
            }
        };
        match decision {
            Decision::Skip => {
                self.skipped(reporter, i, size);
                State::Skipped
            }
            Decision::Unchanged => {
                self.progress.add_skipped(size);
                if self.opts.dry_run {
                    reporter.action(Action::Unchanged, plan.location(i), size);
                }
                State::Unchanged
            }
            Decision::Keep => {
                self.progress.add_total(1, 0);
                self.on_disk[i] = true;
                if self.opts.dry_run {
                    reporter.action(Action::Restored, plan.location(i), 0);
                }
                State::Created
            }
            Decision::Update(slots) => {
                self.progress.add_total(1, size);
                if self.opts.dry_run {
                    reporter.action(Action::Updated, plan.location(i), size);
                    return State::Updated;
                }
                let truncated = cache
                    .dir(plan, item.parent)
                    .and_then(|dir| dir.open_file(item.name(), true))
                    .and_then(|file| file.set_len(size));
                if let Err(e) = truncated {
                    reporter.report(plan.location(i), format!("cannot update file: {e}"));
                    return State::Failed;
                }
                if let ItemKind::File { content } = item.kind {
                    self.todo[content] = Todo::Slots(slots);
                }
                State::Updated
            }
            Decision::Create => {
                self.progress.add_total(1, size);
                if self.opts.dry_run {
                    reporter.action(Action::Restored, plan.location(i), size);
                    return State::Created;
                }
                let way = if parent_empty {
                    InTheWay::Nothing
                } else {
                    InTheWay::new(self.opts.delete)
                };
                let lazy = match item.kind {
                    ItemKind::File { content } => {
                        !plan.files[content].slots.is_empty() && !self.linked.contains(&i)
                    }
                    _ => false,
                };
                let created = if lazy {
                    cache
                        .dir(plan, item.parent)
                        .and_then(|dir| dir.clear(item.name(), way))
                        .map(|()| false)
                } else {
                    self.create(cache, i, way)
                };
                match created {
                    Ok(new_dir) => {
                        self.on_disk[i] = true;
                        self.empty[i] = new_dir;
                        if let ItemKind::File { content } = item.kind {
                            self.todo[content] = Todo::All;
                            self.lazy[content] = lazy;
                        }
                        State::Created
                    }
                    Err(e) => {
                        reporter.report(
                            plan.location(i),
                            format!("cannot create {}: {e}", describe(item.kind)),
                        );
                        State::Failed
                    }
                }
            }
        }
    }

    fn skipped(&self, reporter: &mut Reporter, i: usize, size: u64) {
        self.progress.add_skipped(size);
        reporter.action(Action::Skipped, self.plan.location(i), size);
    }

    /// What to do with item `i` given the entry `st` already in its place.
    fn decide(&mut self, cache: &mut DirCache, i: usize, st: &Stat) -> io::Result<Decision> {
        let plan = self.plan;
        let item = &plan.items[i];
        let found = file_type(st);
        if item.kind == ItemKind::Dir && found == FileType::Directory {
            return Ok(Decision::Keep);
        }
        let allowed = match self.opts.overwrite {
            Overwrite::Never => false,
            Overwrite::IfNewer => item.meta.mtime > mtime(st),
            Overwrite::Always | Overwrite::IfChanged => true,
        };
        if !allowed {
            return Ok(Decision::Skip);
        }
        match item.kind {
            ItemKind::File { content } if found == FileType::RegularFile => {
                let file_plan = &plan.files[content];
                let trust = self.opts.overwrite == Overwrite::IfChanged
                    && !self.opts.verify
                    && u64::try_from(st.st_size).ok() == Some(file_plan.size())
                    && mtime(st) == item.meta.mtime;
                if trust {
                    return Ok(Decision::Unchanged);
                }
                let found = match self.compared[content].take() {
                    // Compared in parallel beforehand (the same inode).
                    Some((dev, ino, found)) if (dev, ino) == (st.st_dev, st.st_ino) => found,
                    _ => {
                        let file = cache
                            .dir(plan, item.parent)?
                            .open_file(item.name(), false)?;
                        compare(&file, plan, file_plan, &mut self.buf)?
                    }
                };
                if found.matches() {
                    Ok(Decision::Unchanged)
                } else if st.st_nlink == 1 {
                    Ok(Decision::Update(found.mismatched))
                } else {
                    Ok(Decision::Create)
                }
            }
            ItemKind::HardLink { first } if found == FileType::RegularFile => {
                let source = &plan.items[first];
                let same = cache
                    .open_separately(plan, source.parent)?
                    .lstat(source.name())?
                    .is_some_and(|s| (s.st_dev, s.st_ino) == (st.st_dev, st.st_ino));
                Ok(if same {
                    Decision::Unchanged
                } else {
                    Decision::Create
                })
            }
            _ => Ok(Decision::Create),
        }
    }

    /// Create item `i` (replacing what is in the way as `way` allows).
    /// Returns true for a directory made now.
    fn create(&self, cache: &mut DirCache, i: usize, way: InTheWay) -> io::Result<bool> {
        let plan = self.plan;
        let item = &plan.items[i];
        let name = item.name();
        let meta = &item.meta;
        if item.kind == ItemKind::Dir {
            return cache.dir(plan, item.parent)?.make_dir(name);
        }
        match item.kind {
            ItemKind::Dir => Ok(()),
            ItemKind::File { .. } => cache
                .dir(plan, item.parent)?
                .create_file(name, way)
                .map(drop),
            ItemKind::Symlink => {
                cache
                    .dir(plan, item.parent)?
                    .symlink(meta.link_target(), name, way)
            }
            ItemKind::Fifo => cache
                .dir(plan, item.parent)?
                .mknod(name, FileType::Fifo, 0, way),
            ItemKind::BlockDevice => {
                cache
                    .dir(plan, item.parent)?
                    .mknod(name, FileType::BlockDevice, meta.device(), way)
            }
            ItemKind::CharDevice => cache.dir(plan, item.parent)?.mknod(
                name,
                FileType::CharacterDevice,
                meta.device(),
                way,
            ),
            ItemKind::HardLink { first } => {
                if self.states[first] == State::Failed {
                    return Err(io::Error::other(format!(
                        "the file it links to ({}) was not restored",
                        plan.location(first)
                    )));
                }
                let source = &plan.items[first];
                let src_dir = cache.open_separately(plan, source.parent)?;
                cache
                    .dir(plan, item.parent)?
                    .hard_link(&src_dir, source.name(), name, way)
            }
        }
        .map(|()| false)
    }
}

/// Compare the files already in the target with their plans, on several
/// threads (reading many existing files one by one is slow): per file plan,
/// the file's (device, inode) and how it compares, if there is a regular
/// file at its path. Only for the policies that read existing files.
fn compare_existing(
    plan: &Plan,
    root: &DirHandle,
    opts: &RestoreOptions,
) -> Vec<Option<(u64, u64, Comparison)>> {
    let mut out = vec![None; plan.files.len()];
    if !matches!(opts.overwrite, Overwrite::Always | Overwrite::IfChanged) {
        return out;
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(4, |n| (n.get() * 2).clamp(2, 8));
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut buf = Vec::new();
                let mut compared = Vec::new();
                loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(file_plan) = plan.files.get(k) else {
                        break;
                    };
                    let meta = &plan.items[file_plan.item].meta;
                    let Ok(file) = open_beneath(root, &plan.path(file_plan.item), Access::Read)
                    else {
                        continue;
                    };
                    let Ok(found) = file.metadata() else {
                        continue;
                    };
                    let trusted = opts.overwrite == Overwrite::IfChanged
                        && !opts.verify
                        && found.len() == file_plan.size()
                        && (found.mtime(), found.mtime_nsec()) == {
                            let (secs, nanos) = meta.mtime;
                            (secs, i64::from(nanos))
                        };
                    if trusted {
                        continue;
                    }
                    if let Ok(comparison) = compare(&file, plan, file_plan, &mut buf) {
                        compared.push((k, (found.dev(), found.ino(), comparison)));
                    }
                }
                if let Ok(mut results) = results.lock() {
                    results.extend(compared);
                }
            });
        }
    });
    for (k, result) in results.into_inner().unwrap_or_default() {
        out[k] = Some(result);
    }
    out
}

/// What to do with one item.
enum Decision {
    /// Create it (replacing what is there).
    Create,
    /// A directory that exists already.
    Keep,
    /// Leave what is there (overwrite policy).
    Skip,
    /// The existing file is right.
    Unchanged,
    /// Rewrite these slots of the existing file.
    Update(Vec<u32>),
}

/// The kind of an item, for messages.
pub(crate) fn describe(kind: ItemKind) -> &'static str {
    match kind {
        ItemKind::Dir => "directory",
        ItemKind::File { .. } => "file",
        ItemKind::HardLink { .. } => "hard link",
        ItemKind::Symlink => "symlink",
        ItemKind::Fifo => "fifo",
        ItemKind::BlockDevice => "block device",
        ItemKind::CharDevice => "character device",
    }
}
