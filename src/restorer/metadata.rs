//! Stage 4 of a restore: ownership, extended attributes, mode and times.
//!
//! Items are handled in reverse plan order, so every directory comes after
//! everything inside it: its mode (which may forbid writing) and its times
//! (which creating entries would change) are set last. Per item: owner
//! first (`chown` clears setuid/setgid), then extended attributes (before a
//! read-only mode could forbid them), then mode (not for symlinks), then
//! access and modification times (after everything that could change them).
//!
//! Directories, files and fifos are opened (never following a symlink,
//! never blocking) and changed through the descriptor; symlinks and device
//! nodes, which cannot be opened safely, by name with the no-follow `*at`
//! calls. As `cp -a` and restic do, a refused `chown` is only a problem
//! when running as root. Hard links share their file's inode and are
//! skipped; items that are not done (a file with missing content) keep the
//! mode and times they were created with, which marks them as not restored.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use rustix::fs::{self as rfs, Gid, Mode, Uid};

use super::create::State;
use super::dircache::DirCache;
use super::fsops::{timestamps, DirHandle};
use super::options::{Action, Progress, RestoreOptions};
use super::plan::{ItemKind, Meta, Plan};
use super::Reporter;

/// Restore the metadata of every done item not in `finished` (files whose
/// metadata the content stage set already); an item whose metadata fails
/// is no longer done. Reports each finished item's action.
#[allow(clippy::too_many_arguments)]
pub(crate) fn restore_metadata(
    plan: &Plan,
    cache: &mut DirCache,
    states: &[State],
    done: &mut [bool],
    finished: &[bool],
    opts: &RestoreOptions,
    progress: &Progress,
    reporter: &mut Reporter,
) {
    let mut owners = Owners::new(opts.ownership_by_name);
    let as_root = rustix::process::geteuid().is_root();
    for i in (0..plan.items.len()).rev() {
        let item = &plan.items[i];
        if !done[i] {
            continue;
        }
        if !matches!(item.kind, ItemKind::HardLink { .. }) && !finished[i] {
            let ids = owners.ids(plan, &item.meta);
            let failures = match cache.dir(plan, item.parent) {
                Ok(dir) => {
                    apply_by_name(dir, item.name(), &item.meta, item.kind, ids, opts, as_root)
                }
                Err(e) => vec![format!("cannot open its directory: {e}")],
            };
            if !failures.is_empty() {
                done[i] = false;
                reporter.report(
                    plan.location(i),
                    format!("restoring metadata: {}", failures.join("; ")),
                );
                continue;
            }
        }
        if !matches!(item.kind, ItemKind::File { .. }) && states[i] == State::Created {
            progress.add_restored_file();
        }
        if reporter.wants_actions() {
            let (action, size) = match (item.kind, states[i]) {
                (ItemKind::File { content }, State::Updated) => {
                    (Action::Updated, plan.files[content].size())
                }
                (ItemKind::File { content }, State::Unchanged) => {
                    (Action::Unchanged, plan.files[content].size())
                }
                (ItemKind::File { content }, _) => (Action::Restored, plan.files[content].size()),
                _ => (Action::Restored, 0),
            };
            reporter.action(action, plan.location(i), size);
        }
    }
}

/// Owner ids for nodes: numeric, or by name with `--ownership-by-name`.
pub(crate) struct Owners {
    by_name: bool,
    users: HashMap<String, Option<u32>>,
    groups: HashMap<String, Option<u32>>,
}

impl Owners {
    pub fn new(by_name: bool) -> Owners {
        Owners {
            by_name,
            users: HashMap::new(),
            groups: HashMap::new(),
        }
    }

    pub fn ids(&mut self, plan: &Plan, meta: &Meta) -> (u32, u32) {
        if !self.by_name {
            return (meta.uid, meta.gid);
        }
        let (user, group) = plan.owner_names(meta);
        let uid = match user {
            "" => None,
            name => *self.users.entry(name.to_string()).or_insert_with(|| {
                nix::unistd::User::from_name(name)
                    .ok()
                    .flatten()
                    .map(|u| u.uid.as_raw())
            }),
        };
        let gid = match group {
            "" => None,
            name => *self.groups.entry(name.to_string()).or_insert_with(|| {
                nix::unistd::Group::from_name(name)
                    .ok()
                    .flatten()
                    .map(|g| g.gid.as_raw())
            }),
        };
        (uid.unwrap_or(meta.uid), gid.unwrap_or(meta.gid))
    }
}

/// A uid/gid pair usable in `chown` (`u32::MAX` means "leave unchanged").
fn owner(uid: u32, gid: u32) -> io::Result<(Uid, Gid)> {
    if uid == u32::MAX || gid == u32::MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "id 4294967295 is not a valid owner",
        ));
    }
    Ok((Uid::from_raw(uid), Gid::from_raw(gid)))
}

/// Apply a node's metadata to the entry `name` of `dir`: through a
/// descriptor for directories, files and fifos, by name otherwise.
fn apply_by_name(
    dir: &DirHandle,
    name: &OsStr,
    meta: &Meta,
    kind: ItemKind,
    ids: (u32, u32),
    opts: &RestoreOptions,
    as_root: bool,
) -> Vec<String> {
    let openable = matches!(kind, ItemKind::Dir | ItemKind::File { .. } | ItemKind::Fifo);
    if openable {
        match dir.open_entry(name, kind == ItemKind::Dir) {
            Ok(fd) => return apply(Target::Fd(fd.as_fd()), meta, kind, ids, opts, as_root),
            // Not readable by us: fall back to changing it by name.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => {}
            Err(e) => return vec![format!("cannot open it: {e}")],
        }
    }
    apply(Target::Name(dir, name), meta, kind, ids, opts, as_root)
}

/// Apply a regular file's metadata through an open descriptor (the content
/// stage, when it wrote the file's last blob).
pub(crate) fn apply_to_file(
    fd: BorrowedFd<'_>,
    meta: &Meta,
    ids: (u32, u32),
    opts: &RestoreOptions,
    as_root: bool,
) -> Vec<String> {
    apply(
        Target::Fd(fd),
        meta,
        ItemKind::File { content: 0 },
        ids,
        opts,
        as_root,
    )
}

/// Apply a node's metadata; returns what failed.
fn apply(
    on: Target<'_>,
    meta: &Meta,
    kind: ItemKind,
    (uid, gid): (u32, u32),
    opts: &RestoreOptions,
    as_root: bool,
) -> Vec<String> {
    let mut failures = Vec::new();
    if let Err(e) = on.chown(uid, gid) {
        let refused = matches!(e.raw_os_error(), Some(libc::EPERM | libc::EACCES));
        if as_root || !refused {
            failures.push(format!("lchown to {uid}:{gid}: {e}"));
        }
    }
    for attr in meta.extended_attributes() {
        if !opts.xattrs.selects(&attr.name) {
            continue;
        }
        if let Err(e) = on.set_xattr(&attr.name, &attr.value) {
            failures.push(format!("setting extended attribute {:?}: {e}", attr.name));
        }
    }
    if kind != ItemKind::Symlink {
        if let Err(e) = on.chmod(meta.mode) {
            failures.push(format!("chmod {:o}: {e}", meta.mode & 0o7777));
        }
    }
    if let Err(e) = on.set_times(meta.atime, meta.mtime) {
        failures.push(format!("setting times: {e}"));
    }
    failures
}

/// An entry changed through a descriptor, or by name in its directory.
enum Target<'a> {
    Fd(BorrowedFd<'a>),
    Name(&'a DirHandle, &'a OsStr),
}

impl Target<'_> {
    fn chown(&self, uid: u32, gid: u32) -> io::Result<()> {
        match self {
            Target::Fd(fd) => {
                let (uid, gid) = owner(uid, gid)?;
                Ok(rfs::fchown(fd, Some(uid), Some(gid))?)
            }
            Target::Name(dir, name) => dir.chown(name, uid, gid),
        }
    }

    fn set_xattr(&self, attr: &str, value: &[u8]) -> io::Result<()> {
        match self {
            Target::Fd(fd) => Ok(rfs::fsetxattr(fd, attr, value, rfs::XattrFlags::empty())?),
            Target::Name(dir, name) => dir.set_xattr_by_path(name, attr, value),
        }
    }

    fn chmod(&self, mode: u32) -> io::Result<()> {
        match self {
            Target::Fd(fd) => Ok(rfs::fchmod(fd, Mode::from_raw_mode(mode & 0o7777))?),
            Target::Name(dir, name) => dir.chmod(name, mode),
        }
    }

    fn set_times(&self, atime: (i64, u32), mtime: (i64, u32)) -> io::Result<()> {
        match self {
            Target::Fd(fd) => Ok(rfs::futimens(fd, &timestamps(atime, mtime)?)?),
            Target::Name(dir, name) => dir.set_times(name, atime, mtime),
        }
    }
}
