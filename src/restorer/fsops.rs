//! File-system operations confined to the restore target.
//!
//! Every operation names one entry *in an open directory*: a [`DirHandle`]
//! and a single checked name, never a path. Directories below the target
//! are opened with `O_DIRECTORY | O_NOFOLLOW`, so a symlink (whether the
//! snapshot made it or it was there before) is never followed on the way
//! down, and every operation on the final name either creates it
//! exclusively (`mkdirat`, `O_CREAT | O_EXCL`, `symlinkat`, `mknodat`,
//! `linkat`) or does not follow it (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`,
//! `lsetxattr`). Hence nothing outside the target is ever created, written,
//! chmod'ed or chown'ed.
//!
//! Existing entries are replaced the way restic does: a non-directory is
//! unlinked (a symlink itself, never what it points to) before the new entry
//! is created; an existing directory is kept when a directory is wanted and
//! is an error otherwise (nothing is ever removed recursively).
//!
//! Opening a file or directory relative to a directory descriptor needs
//! `openat`, whose safe wrappers return a raw descriptor in nix 0.29; to
//! stay free of `unsafe`, entries are opened through the directory's
//! descriptor link `/proc/self/fd/N/name` with the standard library. The
//! kernel resolves `/proc/self/fd/N` to exactly the directory the
//! descriptor refers to, so this is `openat(N, name)` with the same flags;
//! it needs Linux with `/proc` mounted, which [`DirHandle::open_target`]
//! checks.
//!
//! Every method checks its name with [`check_name`] again (no `/`, not `.`
//! or `..`), so no caller can smuggle a path into an `*at` call.

use std::ffi::OsStr;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{
    fchmodat, fstatat, mkdirat, mknodat, utimensat, FchmodatFlags, FileStat, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, mkfifoat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

use super::plan::Plan;
use crate::tree::check_name;

/// Open a directory (read-only) at `path` with extra `flags`.
fn open_dir_at_path(path: &Path, flags: libc::c_int) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC | flags)
        .open(path)
}

/// `name` if it is a single usable path component.
fn checked(name: &OsStr) -> io::Result<&OsStr> {
    check_name(name)
        .map(|()| name)
        .map_err(|why| io::Error::new(io::ErrorKind::InvalidInput, format!("{name:?}: {why}")))
}

fn is_dir(st: &FileStat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// An open directory inside (or being) the restore target.
pub(crate) struct DirHandle {
    /// A descriptor of the directory itself (opened `O_DIRECTORY`).
    dir: File,
}

impl DirHandle {
    /// Open the target directory, with `create` creating it and its
    /// parents if needed. The target path itself is the user's choice and
    /// may go through symlinks; nothing below it will.
    pub fn open_target(path: &Path, create: bool) -> io::Result<DirHandle> {
        if create {
            // New directories are private, as restic makes them.
            DirBuilder::new().recursive(true).mode(0o700).create(path)?;
        }
        let dir = open_dir_at_path(path, 0)?;
        let handle = DirHandle { dir };
        if std::fs::metadata(handle.proc_path(None)?).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "restoring needs /proc/self/fd (Linux with /proc mounted)",
            ));
        }
        Ok(handle)
    }

    fn fd(&self) -> RawFd {
        self.dir.as_raw_fd()
    }

    /// `/proc/self/fd/N[/name]`: the descriptor's directory, then `name`
    /// resolved by the kernel relative to it (see the module docs).
    fn proc_path(&self, name: Option<&OsStr>) -> io::Result<PathBuf> {
        let mut path = PathBuf::from(format!("/proc/self/fd/{}", self.fd()));
        if let Some(name) = name {
            path.push(checked(name)?);
        }
        Ok(path)
    }

    /// Open the subdirectory `name`; fails if it is not a directory or is
    /// a symlink.
    pub fn open_dir(&self, name: &OsStr) -> io::Result<DirHandle> {
        let dir = open_dir_at_path(&self.proc_path(Some(name))?, libc::O_NOFOLLOW)?;
        Ok(DirHandle { dir })
    }

    /// `lstat` of an entry; `None` if it does not exist.
    pub fn lstat(&self, name: &OsStr) -> io::Result<Option<FileStat>> {
        let name = checked(name)?;
        match fstatat(Some(self.fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Remove a non-directory entry if there is one (a symlink is removed
    /// itself); an existing directory is an error.
    fn clear(&self, name: &OsStr) -> io::Result<()> {
        let name = checked(name)?;
        match unlinkat(Some(self.fd()), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(Errno::EISDIR) | Err(Errno::EPERM) if self.is_dir(name) => Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a directory of that name exists already and is not replaced",
            )),
            Err(e) => Err(e.into()),
        }
    }

    fn is_dir(&self, name: &OsStr) -> bool {
        matches!(self.lstat(name), Ok(Some(st)) if is_dir(&st))
    }

    /// Make sure a real directory `name` exists (mode 0700 if new; the
    /// final mode is set with the metadata). A non-directory in the way is
    /// replaced.
    pub fn make_dir(&self, name: &OsStr) -> io::Result<()> {
        let name = checked(name)?;
        match mkdirat(Some(self.fd()), name, Mode::S_IRWXU) {
            Ok(()) => Ok(()),
            Err(Errno::EEXIST) if self.is_dir(name) => Ok(()),
            Err(Errno::EEXIST) => {
                self.clear(name)?;
                Ok(mkdirat(Some(self.fd()), name, Mode::S_IRWXU)?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Create a new, empty regular file `name` (mode 0600), replacing a
    /// non-directory in the way.
    pub fn create_file(&self, name: &OsStr) -> io::Result<File> {
        self.clear(name)?;
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(self.proc_path(Some(name))?)
    }

    /// Open the existing regular file `name` for writing or reading. Never
    /// follows a symlink and never blocks on a fifo; anything but a regular
    /// file is refused.
    pub fn open_file(&self, name: &OsStr, write: bool) -> io::Result<File> {
        let file = OpenOptions::new()
            .read(!write)
            .write(write)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(self.proc_path(Some(name))?)?;
        if !file.metadata()?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a regular file",
            ));
        }
        Ok(file)
    }

    /// Create the symlink `name -> target`.
    pub fn symlink(&self, target: &OsStr, name: &OsStr) -> io::Result<()> {
        let name = checked(name)?;
        self.clear(name)?;
        Ok(symlinkat(target, Some(self.fd()), name)?)
    }

    /// Create the fifo `name` (mode 0600).
    pub fn mkfifo(&self, name: &OsStr) -> io::Result<()> {
        let name = checked(name)?;
        self.clear(name)?;
        Ok(mkfifoat(
            Some(self.fd()),
            name,
            Mode::S_IRUSR | Mode::S_IWUSR,
        )?)
    }

    /// Create the device node `name` (mode 0600); needs privileges.
    pub fn mknod(&self, name: &OsStr, kind: SFlag, device: u64) -> io::Result<()> {
        let name = checked(name)?;
        self.clear(name)?;
        let device = libc::dev_t::try_from(device)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "device number too large"))?;
        Ok(mknodat(
            Some(self.fd()),
            name,
            kind,
            Mode::S_IRUSR | Mode::S_IWUSR,
            device,
        )?)
    }

    /// Make `name` a hard link to `src_name` in `src`. Neither name is
    /// followed if it is a symlink (`linkat` without `AT_SYMLINK_FOLLOW`).
    pub fn hard_link(&self, src: &DirHandle, src_name: &OsStr, name: &OsStr) -> io::Result<()> {
        let (src_name, name) = (checked(src_name)?, checked(name)?);
        self.clear(name)?;
        Ok(linkat(
            Some(src.fd()),
            src_name,
            Some(self.fd()),
            name,
            AtFlags::empty(),
        )?)
    }

    /// `lchown` an entry.
    pub fn chown(&self, name: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
        let name = checked(name)?;
        Ok(fchownat(
            Some(self.fd()),
            name,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )?)
    }

    /// Set the permission bits (with setuid/setgid/sticky) of an entry that
    /// is not a symlink.
    pub fn chmod(&self, name: &OsStr, mode: u32) -> io::Result<()> {
        let name = checked(name)?;
        let mode = Mode::from_bits_truncate(mode & 0o7777);
        match fchmodat(Some(self.fd()), name, mode, FchmodatFlags::NoFollowSymlink) {
            // Old C libraries cannot chmod without following; then make
            // sure the entry is no symlink and let it follow (nothing to).
            Err(Errno::ENOTSUP) => match self.lstat(name)? {
                Some(st) if st.st_mode & libc::S_IFMT != libc::S_IFLNK => Ok(fchmodat(
                    Some(self.fd()),
                    name,
                    mode,
                    FchmodatFlags::FollowSymlink,
                )?),
                _ => Err(Errno::ENOTSUP.into()),
            },
            result => Ok(result?),
        }
    }

    /// Set access and modification times of an entry (not following it).
    pub fn set_times(&self, name: &OsStr, atime: (i64, u32), mtime: (i64, u32)) -> io::Result<()> {
        let name = checked(name)?;
        Ok(utimensat(
            Some(self.fd()),
            name,
            &timespec(atime)?,
            &timespec(mtime)?,
            UtimensatFlags::NoFollowSymlink,
        )?)
    }

    /// Set an extended attribute of an entry (not following it).
    pub fn set_xattr(&self, name: &OsStr, attr: &str, value: &[u8]) -> io::Result<()> {
        xattr::set(self.proc_path(Some(name))?, attr, value)
    }
}

// `c_long` is 32 bits wide on some targets, so the conversion is fallible
// there even if not here.
#[allow(clippy::unnecessary_fallible_conversions)]
fn timespec((secs, nanos): (i64, u32)) -> io::Result<TimeSpec> {
    let secs = libc::time_t::try_from(secs)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "time out of range"))?;
    let nanos = libc::c_long::try_from(nanos)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "time out of range"))?;
    Ok(TimeSpec::new(secs, nanos))
}

/// Open directories along the plan's paths, keeping the most recent chain
/// open so that consecutive items in one directory cost no extra `openat`.
/// Holds at most one descriptor per level of the deepest path.
pub(crate) struct DirCache {
    root: DirHandle,
    /// The open chain below the root: (item index, handle).
    chain: Vec<(usize, DirHandle)>,
}

impl DirCache {
    pub fn new(root: DirHandle) -> DirCache {
        DirCache {
            root,
            chain: Vec::new(),
        }
    }

    /// The directory holding items whose parent is `parent` (`None`: the
    /// target itself).
    pub fn dir(&mut self, plan: &Plan, parent: Option<usize>) -> io::Result<&DirHandle> {
        let mut wanted = Vec::new();
        let mut next = parent;
        while let Some(i) = next {
            wanted.push(i);
            next = plan.items[i].parent;
        }
        wanted.reverse();
        let common = self
            .chain
            .iter()
            .zip(&wanted)
            .take_while(|((have, _), want)| have == *want)
            .count();
        self.chain.truncate(common);
        for &i in &wanted[common..] {
            let handle = self.last().open_dir(plan.items[i].name())?;
            self.chain.push((i, handle));
        }
        Ok(self.last())
    }

    /// Open the directory chain to `parent` afresh, without disturbing the
    /// cached one (for the source of a hard link).
    pub fn open_separately(&self, plan: &Plan, parent: Option<usize>) -> io::Result<DirHandle> {
        let mut names = Vec::new();
        let mut next = parent;
        while let Some(i) = next {
            names.push(plan.items[i].name());
            next = plan.items[i].parent;
        }
        let mut handle = DirHandle {
            dir: self.root.dir.try_clone()?,
        };
        for name in names.into_iter().rev() {
            handle = handle.open_dir(name)?;
        }
        Ok(handle)
    }

    fn last(&self) -> &DirHandle {
        self.chain.last().map_or(&self.root, |(_, h)| h)
    }
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
            assert!(dir.create_file(bad).is_err(), "{bad:?}");
            assert!(dir.symlink(OsStr::new("x"), bad).is_err(), "{bad:?}");
        }
        std::os::unix::fs::symlink(tmp.path(), target.join("up")).unwrap();
        assert!(dir.open_dir(OsStr::new("up")).is_err());
        assert!(dir.open_file(OsStr::new("up"), true).is_err());
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
}
