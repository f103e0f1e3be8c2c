//! File-system operations confined to the restore target.
//!
//! Every operation names one entry *in an open directory*: a [`DirHandle`]
//! and a single checked name, never a path. Directories below the target
//! are opened with `O_DIRECTORY | O_NOFOLLOW`, so a symlink (whether the
//! snapshot made it or it was there before) is never followed on the way
//! down, and every operation on the final name either creates it
//! exclusively (`mkdirat`, `O_CREAT | O_EXCL`, `symlinkat`, `mknodat`,
//! `linkat`) or does not follow it (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`).
//! Hence nothing outside the target is ever created, written, chmod'ed or
//! chown'ed. [`open_beneath`] opens a file several levels down in one
//! `openat2` call with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, the kernel
//! enforcing the same rule, and falls back to a walk of `O_NOFOLLOW` opens
//! where `openat2` is missing.
//!
//! Existing entries are replaced the way restic does: a non-directory is
//! unlinked (a symlink itself, never what it points to) before the new
//! entry is created; an existing directory is kept when a directory is
//! wanted, and otherwise removed recursively only when the caller allows it
//! (`--delete`), descending with the same no-follow opens.
//!
//! All system calls go through `rustix`, whose `*at` functions take and
//! return owned descriptors: no `unsafe`, no `/proc`. Every method checks
//! its name with [`check_name`] again (no `/`, not `.` or `..`), so no
//! caller can smuggle a path into an `*at` call.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::{
    self as rfs, AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags, Stat, Timespec, Timestamps,
};
use rustix::io::Errno;

use crate::tree::{check_name, MAX_DEPTH};

/// Flags of every directory opened below the target.
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// `name` if it is a single usable path component.
fn checked(name: &OsStr) -> io::Result<&OsStr> {
    check_name(name)
        .map(|()| name)
        .map_err(|why| io::Error::new(io::ErrorKind::InvalidInput, format!("{name:?}: {why}")))
}

/// The type of an entry from its `lstat`.
pub(crate) fn file_type(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// A uid or gid usable in `chown` (`u32::MAX` means "unchanged" there).
fn owner_id(id: u32) -> io::Result<u32> {
    if id == u32::MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "id 4294967295 is not a valid owner",
        ));
    }
    Ok(id)
}

/// Seconds and nanoseconds as a kernel timestamp.
// `c_long` is 32 bits wide on some targets, so the conversions are
// fallible there even if not here.
#[allow(clippy::unnecessary_fallible_conversions, clippy::useless_conversion)]
pub(crate) fn timespec((secs, nanos): (i64, u32)) -> io::Result<Timespec> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "time out of range");
    Ok(Timespec {
        tv_sec: secs.try_into().map_err(|_| bad())?,
        tv_nsec: nanos.try_into().map_err(|_| bad())?,
    })
}

/// Access and modification times for `utimensat`/`futimens`.
pub(crate) fn timestamps(atime: (i64, u32), mtime: (i64, u32)) -> io::Result<Timestamps> {
    Ok(Timestamps {
        last_access: timespec(atime)?,
        last_modification: timespec(mtime)?,
    })
}

/// What may be in the way of a new entry, and may be removed for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InTheWay {
    /// Nothing can be (the directory is new): no need to look.
    Nothing,
    /// A non-directory is removed; a directory is an error.
    Replace,
    /// Anything is removed, a directory with everything below it.
    ReplaceDirs,
}

impl InTheWay {
    pub fn new(remove_dirs: bool) -> InTheWay {
        if remove_dirs {
            InTheWay::ReplaceDirs
        } else {
            InTheWay::Replace
        }
    }
}

/// An open directory inside (or being) the restore target.
pub(crate) struct DirHandle {
    fd: OwnedFd,
    /// Its path, for messages and for the few calls that only take paths.
    path: PathBuf,
}

impl DirHandle {
    /// Open the target directory, with `create` creating it and its
    /// parents if needed. The target path itself is the user's choice and
    /// may go through symlinks; nothing below it will.
    pub fn open_target(path: &Path, create: bool) -> io::Result<DirHandle> {
        if create {
            use std::os::unix::fs::DirBuilderExt;
            // New directories are private, as restic makes them.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)?;
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rfs::open(path, flags, Mode::empty())?;
        Ok(DirHandle {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// A second handle on the same directory.
    pub fn try_clone(&self) -> io::Result<DirHandle> {
        Ok(DirHandle {
            fd: self.fd.try_clone()?,
            path: self.path.clone(),
        })
    }

    /// Open the subdirectory `name`; fails if it is not a directory or is
    /// a symlink.
    pub fn open_dir(&self, name: &OsStr) -> io::Result<DirHandle> {
        let name = checked(name)?;
        let fd = rfs::openat(&self.fd, name, DIR_FLAGS, Mode::empty())?;
        Ok(DirHandle {
            fd,
            path: self.path.join(name),
        })
    }

    /// `lstat` of an entry; `None` if it does not exist.
    pub fn lstat(&self, name: &OsStr) -> io::Result<Option<Stat>> {
        let name = checked(name)?;
        match rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The names in this directory (without `.` and `..`), unsorted.
    pub fn names(&self) -> io::Result<Vec<OsString>> {
        let mut names = Vec::new();
        for entry in Dir::read_from(&self.fd)? {
            let name = entry?.file_name().to_bytes().to_vec();
            if name != b"." && name != b".." {
                names.push(OsString::from_vec(name));
            }
        }
        Ok(names)
    }

    /// Remove the entry `name` whatever it is, a directory with everything
    /// below it (never following a symlink). Returns how many entries were
    /// removed (0 if there was none).
    pub fn remove_all(&self, name: &OsStr) -> io::Result<u64> {
        self.remove_all_at(checked(name)?, 0)
    }

    fn remove_all_at(&self, name: &OsStr, depth: usize) -> io::Result<u64> {
        match rfs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) => return Ok(1),
            Err(Errno::NOENT) => return Ok(0),
            Err(Errno::ISDIR) | Err(Errno::PERM) if self.is_dir(name) => {}
            Err(e) => return Err(e.into()),
        }
        if depth > MAX_DEPTH {
            return Err(io::Error::other(format!(
                "more than {MAX_DEPTH} levels of directories below {}",
                self.path.display()
            )));
        }
        let sub = self.open_dir(name)?;
        let mut removed = 0;
        for child in sub.names()? {
            removed += sub.remove_all_at(&child, depth + 1)?;
        }
        drop(sub);
        rfs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR)?;
        Ok(removed + 1)
    }

    /// Make way for a new entry `name`: remove a non-directory (a symlink
    /// itself); a directory only with [`InTheWay::ReplaceDirs`], else it is
    /// an error.
    pub fn clear(&self, name: &OsStr, way: InTheWay) -> io::Result<()> {
        let name = checked(name)?;
        let remove_dirs = match way {
            InTheWay::Nothing => return Ok(()),
            InTheWay::Replace => false,
            InTheWay::ReplaceDirs => true,
        };
        match rfs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(Errno::ISDIR) | Err(Errno::PERM) if self.is_dir(name) => {
                if remove_dirs {
                    self.remove_all(name).map(drop)
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "a directory of that name is in the way (use --delete to replace it)",
                    ))
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    fn is_dir(&self, name: &OsStr) -> bool {
        matches!(self.lstat(name), Ok(Some(st)) if file_type(&st) == FileType::Directory)
    }

    /// Make sure a real directory `name` exists (mode 0700 if new; the
    /// final mode is set with the metadata). A non-directory in the way is
    /// replaced. Returns true if the directory is new (so empty).
    pub fn make_dir(&self, name: &OsStr) -> io::Result<bool> {
        let name = checked(name)?;
        match rfs::mkdirat(&self.fd, name, Mode::RWXU) {
            Ok(()) => Ok(true),
            Err(Errno::EXIST) if self.is_dir(name) => Ok(false),
            Err(Errno::EXIST) => {
                self.clear(name, InTheWay::Replace)?;
                rfs::mkdirat(&self.fd, name, Mode::RWXU)?;
                Ok(true)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Create a new, empty regular file `name` (mode 0600), replacing what
    /// is in the way as `way` allows.
    pub fn create_file(&self, name: &OsStr, way: InTheWay) -> io::Result<File> {
        self.clear(name, way)?;
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rfs::openat(&self.fd, name, flags, Mode::RUSR | Mode::WUSR)?;
        Ok(File::from(fd))
    }

    /// Open the existing regular file `name` for writing or reading. Never
    /// follows a symlink and never blocks on a fifo; anything but a regular
    /// file is refused.
    pub fn open_file(&self, name: &OsStr, write: bool) -> io::Result<File> {
        let name = checked(name)?;
        let access = if write {
            OFlags::WRONLY
        } else {
            OFlags::RDONLY
        };
        let flags = access | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        regular(rfs::openat(&self.fd, name, flags, Mode::empty())?)
    }

    /// Open the regular file `name` as `access` says, never following a
    /// symlink. [`Access::Create`] first tries to create it exclusively
    /// (a new file is regular: no `fstat` needed), else opens the existing
    /// file like [`Access::Write`]; anything but a regular file is refused.
    pub fn open_in(&self, name: &OsStr, access: Access) -> io::Result<File> {
        let name = checked(name)?;
        let flags = OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let access = match access {
            Access::Read => OFlags::RDONLY,
            Access::Write => OFlags::WRONLY,
            Access::Create => {
                let create = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | flags;
                match rfs::openat(&self.fd, name, create, Mode::RUSR | Mode::WUSR) {
                    Ok(fd) => return Ok(File::from(fd)),
                    Err(Errno::EXIST) => OFlags::WRONLY,
                    Err(e) => return Err(e.into()),
                }
            }
        };
        regular(rfs::openat(&self.fd, name, access | flags, Mode::empty())?)
    }

    /// Open the entry `name` read-only to change its metadata through the
    /// descriptor; `dir` asks for a directory. Never follows a symlink,
    /// never blocks (fifos), never becomes a controlling terminal.
    pub fn open_entry(&self, name: &OsStr, dir: bool) -> io::Result<OwnedFd> {
        let name = checked(name)?;
        let mut flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        if dir {
            flags |= OFlags::DIRECTORY;
        }
        Ok(rfs::openat(&self.fd, name, flags, Mode::empty())?)
    }

    /// Create the symlink `name -> target`.
    pub fn symlink(&self, target: &OsStr, name: &OsStr, way: InTheWay) -> io::Result<()> {
        self.clear(name, way)?;
        Ok(rfs::symlinkat(target, &self.fd, name)?)
    }

    /// Create a fifo or device node `name` (mode 0600); devices need
    /// privileges.
    pub fn mknod(
        &self,
        name: &OsStr,
        kind: FileType,
        device: u64,
        way: InTheWay,
    ) -> io::Result<()> {
        self.clear(name, way)?;
        Ok(rfs::mknodat(
            &self.fd,
            name,
            kind,
            Mode::RUSR | Mode::WUSR,
            device,
        )?)
    }

    /// Make `name` a hard link to `src_name` in `src`. Neither name is
    /// followed if it is a symlink (`linkat` without `AT_SYMLINK_FOLLOW`).
    pub fn hard_link(
        &self,
        src: &DirHandle,
        src_name: &OsStr,
        name: &OsStr,
        way: InTheWay,
    ) -> io::Result<()> {
        let src_name = checked(src_name)?;
        self.clear(name, way)?;
        Ok(rfs::linkat(
            &src.fd,
            src_name,
            &self.fd,
            name,
            AtFlags::empty(),
        )?)
    }

    /// `lchown` an entry.
    pub fn chown(&self, name: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
        let name = checked(name)?;
        Ok(rfs::chownat(
            &self.fd,
            name,
            Some(rfs::Uid::from_raw(owner_id(uid)?)),
            Some(rfs::Gid::from_raw(owner_id(gid)?)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?)
    }

    /// Set the permission bits (with setuid/setgid/sticky) of an entry that
    /// is not a symlink. Linux cannot chmod without following, so the entry
    /// is checked to be no symlink first (nothing to follow then).
    pub fn chmod(&self, name: &OsStr, mode: u32) -> io::Result<()> {
        let name = checked(name)?;
        match self.lstat(name)? {
            Some(st) if file_type(&st) != FileType::Symlink => Ok(rfs::chmodat(
                &self.fd,
                name,
                Mode::from_raw_mode(mode & 0o7777),
                AtFlags::empty(),
            )?),
            Some(_) => Err(io::Error::other("refusing to chmod a symlink")),
            None => Err(Errno::NOENT.into()),
        }
    }

    /// Set access and modification times of an entry (not following it).
    pub fn set_times(&self, name: &OsStr, atime: (i64, u32), mtime: (i64, u32)) -> io::Result<()> {
        let name = checked(name)?;
        Ok(rfs::utimensat(
            &self.fd,
            name,
            &timestamps(atime, mtime)?,
            AtFlags::SYMLINK_NOFOLLOW,
        )?)
    }

    /// Set an extended attribute of an entry that cannot be opened (a
    /// symlink or device), by path without following the final name. The
    /// directories on the path were opened without following symlinks.
    pub fn set_xattr_by_path(&self, name: &OsStr, attr: &str, value: &[u8]) -> io::Result<()> {
        let path = self.path.join(checked(name)?);
        Ok(rfs::lsetxattr(path, attr, value, rfs::XattrFlags::empty())?)
    }
}

/// Refuse a descriptor that is not a regular file.
fn regular(fd: OwnedFd) -> io::Result<File> {
    if file_type(&rfs::fstat(&fd)?) != FileType::RegularFile {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    Ok(File::from(fd))
}

/// How [`open_beneath`] opens a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
    /// Write, creating the file (mode 0600) if it does not exist.
    Create,
}

/// Open the directory at `names` (one component per level; none: `root`
/// itself) below `root`, following no symlink on the way, in one
/// `openat2` call where the kernel has it.
pub(crate) fn open_dir_beneath(root: &DirHandle, names: &[&OsStr]) -> io::Result<DirHandle> {
    let mut path = Vec::new();
    let mut full = root.path.clone();
    for name in names {
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(checked(name)?.as_bytes());
        full.push(name);
    }
    if names.is_empty() {
        return root.try_clone();
    }
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    match rfs::openat2(
        &root.fd,
        OsStr::from_bytes(&path),
        DIR_FLAGS,
        Mode::empty(),
        resolve,
    ) {
        Ok(fd) => return Ok(DirHandle { fd, path: full }),
        // As in `open_beneath`: walk instead.
        Err(Errno::NOSYS | Errno::PERM | Errno::NAMETOOLONG | Errno::AGAIN | Errno::INVAL) => {}
        Err(e) => return Err(e.into()),
    }
    let mut dir = root.open_dir(names[0])?;
    for name in &names[1..] {
        dir = dir.open_dir(name)?;
    }
    Ok(dir)
}

/// Open the regular file at `names` (one component per level) below
/// `root`, following no symlink on the way (nor as the final name).
pub(crate) fn open_beneath(root: &DirHandle, names: &[&OsStr], access: Access) -> io::Result<File> {
    let Some((last, dirs)) = names.split_last() else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty path"));
    };
    let mut path = Vec::new();
    for name in names {
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(checked(name)?.as_bytes());
    }
    let (access, mode) = match access {
        Access::Read => (OFlags::RDONLY, Mode::empty()),
        Access::Write => (OFlags::WRONLY, Mode::empty()),
        Access::Create => (OFlags::WRONLY | OFlags::CREATE, Mode::RUSR | Mode::WUSR),
    };
    let flags = access | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    match rfs::openat2(&root.fd, OsStr::from_bytes(&path), flags, mode, resolve) {
        Ok(fd) => return regular(fd),
        // No openat2 (old kernel, seccomp), a path too long for one call,
        // or a concurrent rename: walk instead.
        Err(Errno::NOSYS | Errno::PERM | Errno::NAMETOOLONG | Errno::AGAIN | Errno::INVAL) => {}
        Err(e) => return Err(e.into()),
    }
    let mut dir: Option<OwnedFd> = None;
    for name in dirs {
        let base = dir.as_ref().map_or(root.fd.as_fd(), |d| d.as_fd());
        dir = Some(rfs::openat(base, *name, DIR_FLAGS, Mode::empty())?);
    }
    let base = dir.as_ref().map_or(root.fd.as_fd(), |d| d.as_fd());
    regular(rfs::openat(base, *last, flags, mode)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_single_components_and_symlinks_are_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("t");
        let dir = DirHandle::open_target(&target, true).unwrap();
        for bad in ["../escape", "/abs", "a/b", "..", ".", ""] {
            let bad = OsStr::new(bad);
            assert!(dir.make_dir(bad).is_err(), "{bad:?}");
            assert!(dir.create_file(bad, InTheWay::Nothing).is_err(), "{bad:?}");
            assert!(
                dir.symlink(OsStr::new("x"), bad, InTheWay::ReplaceDirs)
                    .is_err(),
                "{bad:?}"
            );
            assert!(dir.remove_all(bad).is_err(), "{bad:?}");
        }
        std::os::unix::fs::symlink(tmp.path(), target.join("up")).unwrap();
        assert!(dir.open_dir(OsStr::new("up")).is_err());
        assert!(dir.open_file(OsStr::new("up"), true).is_err());
        assert!(dir.open_entry(OsStr::new("up"), false).is_err());
        assert!(dir.chmod(OsStr::new("up"), 0o777).is_err());
        dir.set_times(OsStr::new("up"), (1, 2), (3, 4)).unwrap();
        let link = std::fs::symlink_metadata(target.join("up")).unwrap();
        assert_eq!(std::os::unix::fs::MetadataExt::mtime(&link), 3);
        assert_ne!(
            std::os::unix::fs::MetadataExt::mtime(&std::fs::metadata(tmp.path()).unwrap()),
            3
        );
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            1,
            "nothing was created next to the target"
        );
    }

    #[test]
    fn open_beneath_refuses_symlinks_anywhere_on_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("t");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(target.join("a/b")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(target.join("a/b/f"), b"in").unwrap();
        std::fs::write(outside.join("f"), b"out").unwrap();
        std::os::unix::fs::symlink(&outside, target.join("a/link")).unwrap();
        std::os::unix::fs::symlink(outside.join("f"), target.join("a/flink")).unwrap();
        let root = DirHandle::open_target(&target, false).unwrap();
        let os = |s: &'static str| OsStr::new(s);
        let f = open_beneath(&root, &[os("a"), os("b"), os("f")], Access::Read).unwrap();
        assert_eq!(f.metadata().unwrap().len(), 2);
        let (write, create) = (Access::Write, Access::Create);
        assert!(open_beneath(&root, &[os("a"), os("link"), os("f")], write).is_err());
        assert!(open_beneath(&root, &[os("a"), os("link"), os("new")], create).is_err());
        assert!(open_beneath(&root, &[os("a"), os("flink")], create).is_err());
        assert!(open_beneath(&root, &[os("a"), os(".."), os("a")], write).is_err());
        assert!(open_beneath(&root, &[os("a"), os("b")], Access::Read).is_err());
        open_beneath(&root, &[os("a"), os("b"), os("new")], create).unwrap();
        assert!(target.join("a/b/new").is_file());
        assert_eq!(std::fs::read(outside.join("f")).unwrap(), b"out");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
    }

    #[test]
    fn open_dir_beneath_and_open_in_follow_no_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("t");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(target.join("a/b")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("f"), b"out").unwrap();
        std::os::unix::fs::symlink(&outside, target.join("a/link")).unwrap();
        std::os::unix::fs::symlink(outside.join("f"), target.join("a/b/flink")).unwrap();
        let root = DirHandle::open_target(&target, false).unwrap();
        let os = |s: &'static str| OsStr::new(s);
        assert!(open_dir_beneath(&root, &[os("a"), os("link")]).is_err());
        assert!(open_dir_beneath(&root, &[os("a"), os("..")]).is_err());
        let b = open_dir_beneath(&root, &[os("a"), os("b")]).unwrap();
        assert_eq!(b.path, target.join("a/b"));
        // A symlink as the final name is neither created through nor
        // written through.
        assert!(b.open_in(os("flink"), Access::Create).is_err());
        assert!(b.open_in(os("flink"), Access::Write).is_err());
        assert!(b.open_in(os("x/y"), Access::Create).is_err());
        let mut f = b.open_in(os("new"), Access::Create).unwrap();
        std::io::Write::write_all(&mut f, b"in").unwrap();
        // Created already: opened again (not truncated).
        b.open_in(os("new"), Access::Create).unwrap();
        assert_eq!(std::fs::read(target.join("a/b/new")).unwrap(), b"in");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(target.join("a/b/new"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        assert!(open_dir_beneath(&root, &[]).unwrap().names().unwrap().len() == 1);
        assert_eq!(std::fs::read(outside.join("f")).unwrap(), b"out");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
    }

    #[test]
    fn remove_all_removes_trees_but_not_what_symlinks_point_to() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("t");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(target.join("d/e/f")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), b"x").unwrap();
        std::fs::write(target.join("d/e/file"), b"x").unwrap();
        std::os::unix::fs::symlink(&outside, target.join("d/e/f/link")).unwrap();
        let root = DirHandle::open_target(&target, false).unwrap();
        assert_eq!(root.remove_all(OsStr::new("d")).unwrap(), 5);
        assert_eq!(root.remove_all(OsStr::new("d")).unwrap(), 0);
        assert!(outside.join("keep").exists());
        assert!(root.names().unwrap().is_empty());
    }

    #[test]
    fn clear_keeps_directories_unless_told() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("d/sub")).unwrap();
        let root = DirHandle::open_target(tmp.path(), false).unwrap();
        assert!(root
            .create_file(OsStr::new("d"), InTheWay::Replace)
            .is_err());
        assert!(root
            .create_file(OsStr::new("d"), InTheWay::Nothing)
            .is_err());
        assert!(tmp.path().join("d/sub").is_dir());
        root.create_file(OsStr::new("d"), InTheWay::ReplaceDirs)
            .unwrap();
        assert!(tmp.path().join("d").is_file());
    }

    #[test]
    fn invalid_owner_is_an_error_not_a_panic() {
        let tmp = tempfile::tempdir().unwrap();
        let root = DirHandle::open_target(tmp.path(), false).unwrap();
        root.create_file(OsStr::new("f"), InTheWay::Nothing)
            .unwrap();
        assert!(root.chown(OsStr::new("f"), u32::MAX, 0).is_err());
    }
}
