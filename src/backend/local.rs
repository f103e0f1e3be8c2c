//! [`LocalBackend`]: a repository in a local directory, laid out and written
//! exactly as restic's `local` backend does (see [`layout`]).
//!
//! Invariants:
//! - **Atomic, durable writes.** A file is written under a temporary name in
//!   its final directory (`<name>-tmp-<16 random hex digits>`, created with
//!   `O_EXCL`, so concurrent writers in any thread or process never share
//!   one), fsynced, made read-only, moved to its final name, and then the
//!   directory is fsynced. A reader or a crash never sees a partial file
//!   under a final name. A temporary file left by a crashed writer is never
//!   listed (its name is not a valid file name) and never blocks a later
//!   write of the same file; restic's own `-tmp-` files are ignored the same
//!   way. An [`Upload`] (a pack streamed as it is assembled, [`upload`])
//!   writes its temporary file in the type's directory (the final
//!   subdirectory depends on the name it gets at the end) and is committed
//!   the same way.
//! - **No replacement.** Moving a file into place never replaces an existing
//!   one, except for lock files (restic replaces them too): on Linux with
//!   `renameat2(RENAME_NOREPLACE)`, elsewhere (or where the file system lacks
//!   it) with `link` + `unlink`, and as a last resort, on file systems
//!   without hard links, with a check followed by `rename` (racy only there,
//!   and harmless for content-addressed files). An existing file gives
//!   [`Error::AlreadyExists`], also for the config, so `init` can never
//!   overwrite a repository.
//! - **restic's permissions.** Directories are created `0700` and files end
//!   up `0400` (written `0600`, then made read-only). If the repository's
//!   `config` is group-readable, as restic does, new directories get `0750`
//!   and files `0440` instead; the modes are decided once, at the first
//!   operation that needs them.
//! - **Names are validated** by [`layout`] before any path is built, so no
//!   name can reach outside the repository.
//! - A missing `data/xx` (or other type) directory is created on demand, but
//!   never the repository directory itself: if it is missing, operations fail
//!   with [`Error::NotFound`] naming it.
//!
//! Every error names the file and its path; `ENOENT` becomes
//! [`Error::NotFound`].

use std::fs::{self, DirBuilder, File, Metadata, OpenOptions, Permissions};
use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustix::buffer::spare_capacity;

use crate::backend::{describe, layout, Backend, FileInfo, FileType, Upload};
use crate::error::{Error, Result};

mod upload;

use upload::LocalUpload;

/// Infix of temporary file names, as restic's (`<name>-tmp-<random>`).
const TEMP_INFIX: &str = "-tmp-";

/// How often to draw a new temporary name after a collision.
const TEMP_ATTEMPTS: usize = 16;

/// A restic repository in a local directory.
#[derive(Debug)]
pub struct LocalBackend {
    root: PathBuf,
    modes: OnceLock<Modes>,
}

/// Permission bits for new directories and files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Modes {
    dir: u32,
    /// Mode while the file is written; it is made read-only afterwards.
    file: u32,
}

impl Modes {
    const PRIVATE: Modes = Modes {
        dir: 0o700,
        file: 0o600,
    };

    /// restic's rule: widen to the group if the config is group-readable.
    fn derive(config: Option<&Metadata>) -> Modes {
        match config {
            Some(meta) if meta.permissions().mode() & 0o040 != 0 => Modes {
                dir: Self::PRIVATE.dir | 0o070,
                file: Self::PRIVATE.file | 0o060,
            },
            _ => Self::PRIVATE,
        }
    }

    /// The final, read-only mode of a file.
    fn read_only(self) -> u32 {
        self.file & 0o444
    }
}

impl LocalBackend {
    /// A backend for the repository at `path`. Nothing is accessed yet.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        LocalBackend {
            root: path.into(),
            modes: OnceLock::new(),
        }
    }

    /// The repository directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    fn modes(&self) -> Modes {
        *self.modes.get_or_init(|| {
            let config = self.root.join(layout::CONFIG_NAME);
            Modes::derive(fs::metadata(config).ok().as_ref())
        })
    }

    /// The validated absolute path of a file, and its description for
    /// error messages.
    fn locate(&self, tpe: FileType, name: &str) -> Result<(PathBuf, String)> {
        let path = self.root.join(layout::relative_path(tpe, name)?);
        let what = format!("{} at {}", describe(tpe, name), path.display());
        Ok((path, what))
    }

    /// The error for a missing repository directory.
    fn missing_repository(&self) -> Error {
        Error::NotFound(format!("repository at {}", self.root.display()))
    }

    /// Create a missing directory below the repository root, with its
    /// missing parents, and make the new entry durable.
    fn create_dir(&self, dir: &Path) -> Result<()> {
        match fs::metadata(&self.root) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                return Err(Error::InvalidPath {
                    path: self.root.clone(),
                    reason: "the repository is not a directory".to_string(),
                })
            }
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(self.missing_repository()),
            Err(e) => return Err(Error::io(self.root.display().to_string(), e)),
        }
        DirBuilder::new()
            .recursive(true)
            .mode(self.modes().dir)
            .create(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
        Ok(())
    }

    /// Create a new, empty temporary file next to `path`.
    fn create_temp(&self, path: &Path, what: &str) -> Result<(File, TempFile)> {
        match (path.parent(), path.file_name()) {
            (Some(dir), Some(base)) => self.create_temp_in(dir, &base.to_string_lossy(), what),
            _ => Err(Error::InvalidArgument(format!("{what}: not a file path"))),
        }
    }

    /// Create a new, empty temporary file `<base>-tmp-<random>` in `dir`,
    /// creating `dir` if it is missing.
    fn create_temp_in(&self, dir: &Path, base: &str, what: &str) -> Result<(File, TempFile)> {
        let mut created_dir = false;
        for _ in 0..TEMP_ATTEMPTS {
            let tmp = dir.join(format!("{base}{TEMP_INFIX}{:016x}", rand::random::<u64>()));
            let opened = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(self.modes().file)
                .open(&tmp);
            match opened {
                Ok(file) => {
                    return Ok((
                        file,
                        TempFile {
                            path: tmp,
                            armed: true,
                        },
                    ))
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) if e.kind() == ErrorKind::NotFound && !created_dir => {
                    self.create_dir(dir)?;
                    created_dir = true;
                }
                Err(e) => return Err(io_error(what, e)),
            }
        }
        Err(Error::io(
            what,
            io::Error::new(ErrorKind::AlreadyExists, "no free temporary file name"),
        ))
    }

    /// Make a completely written temporary file durable and read-only and
    /// move it to `path` (creating its directory if missing), then make the
    /// new name durable. On error the temporary file is removed (by `tmp`).
    fn commit(
        &self,
        file: File,
        mut tmp: TempFile,
        tpe: FileType,
        path: &Path,
        what: &str,
    ) -> Result<()> {
        if let Err(e) = file.sync_all() {
            if !is_unsupported(&e) {
                return Err(io_error(what, e));
            }
        }
        // Read-only before it gets its final name, so it never appears
        // writable. Some file systems refuse chmod: not fatal, as in restic.
        match file.set_permissions(Permissions::from_mode(self.modes().read_only())) {
            Err(e) if e.kind() != ErrorKind::PermissionDenied => return Err(io_error(what, e)),
            _ => {}
        }
        drop(file);
        let replace = tpe == FileType::Lock;
        let mut published = publish(&tmp.path, path, replace);
        if let (Err(e), Some(dir)) = (&published, path.parent()) {
            // An upload's temporary file is not in the final directory,
            // which may be missing (e.g. a removed `data/xx`).
            if e.kind() == ErrorKind::NotFound && tmp.path.exists() && !dir.exists() {
                self.create_dir(dir)?;
                published = publish(&tmp.path, path, replace);
            }
        }
        published.map_err(|e| match e.kind() {
            ErrorKind::AlreadyExists => Error::AlreadyExists(what.to_string()),
            _ => io_error(what, e),
        })?;
        tmp.armed = false;
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
        Ok(())
    }

    /// List the valid files directly in `dir`; `prefix` restricts names (the
    /// pack directory a pack belongs in).
    fn list_dir(&self, dir: &Path, prefix: &str, out: &mut Vec<FileInfo>) -> Result<()> {
        let entries = fs::read_dir(dir).map_err(|e| io_error(dir.display().to_string(), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(dir.display().to_string(), e))?;
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else {
                continue;
            };
            if !layout::is_valid_name(name) {
                // Temporary files and strangers.
                continue;
            }
            if !name.starts_with(prefix) {
                log::warn!(
                    "ignoring {}: not in its pack directory",
                    entry.path().display()
                );
                continue;
            }
            let meta = match fs::metadata(entry.path()) {
                Ok(meta) => meta,
                // Removed since the directory was read.
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(entry.path().display().to_string(), e)),
            };
            if meta.is_file() {
                out.push(FileInfo {
                    name: name.to_string(),
                    size: meta.len(),
                });
            }
        }
        Ok(())
    }
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn create(&self) -> Result<()> {
        let (config, what) = self.locate(FileType::Config, layout::CONFIG_NAME)?;
        match fs::symlink_metadata(&config) {
            Ok(_) => return Err(Error::AlreadyExists(what)),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(what, e)),
        }
        let mut builder = DirBuilder::new();
        builder.recursive(true).mode(self.modes().dir);
        let dirs = std::iter::once(PathBuf::new()).chain(layout::repository_dirs());
        for dir in dirs {
            let dir = self.root.join(dir);
            builder
                .create(&dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        Ok(())
    }

    fn list(&self, tpe: FileType) -> Result<Vec<FileInfo>> {
        let mut out = Vec::new();
        let Some(type_dir) = layout::type_dir(tpe) else {
            // The config: a list of zero or one.
            match self.stat(tpe, layout::CONFIG_NAME) {
                Ok(size) => out.push(FileInfo {
                    name: layout::CONFIG_NAME.to_string(),
                    size,
                }),
                Err(Error::NotFound(_)) if !self.root.is_dir() => {
                    return Err(self.missing_repository())
                }
                Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
            return Ok(out);
        };
        let base = self.root.join(type_dir);
        if !base.is_dir() {
            // restic tolerates a missing type directory; not a missing repository.
            return match fs::metadata(&self.root) {
                Ok(meta) if meta.is_dir() => Ok(out),
                _ => Err(self.missing_repository()),
            };
        }
        if tpe != FileType::Pack {
            self.list_dir(&base, "", &mut out)?;
            return Ok(out);
        }
        let subdirs = fs::read_dir(&base).map_err(|e| io_error(base.display().to_string(), e))?;
        for entry in subdirs {
            let entry = entry.map_err(|e| Error::io(base.display().to_string(), e))?;
            let file_name = entry.file_name();
            match file_name.to_str() {
                Some(sub) if layout::is_valid_pack_subdir(sub) && entry.path().is_dir() => {
                    self.list_dir(&entry.path(), sub, &mut out)?;
                }
                _ => continue,
            }
        }
        Ok(out)
    }

    fn read(&self, tpe: FileType, name: &str) -> Result<Vec<u8>> {
        let (path, what) = self.locate(tpe, name)?;
        let mut file = File::open(&path).map_err(|e| io_error(&what, e))?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)
            .map_err(|e| io_error(&what, e))?;
        Ok(data)
    }

    fn read_range(&self, tpe: FileType, name: &str, offset: u64, length: u64) -> Result<Vec<u8>> {
        let (path, what) = self.locate(tpe, name)?;
        let file = File::open(&path).map_err(|e| io_error(&what, e))?;
        let size = file.metadata().map_err(|e| io_error(&what, e))?.len();
        let short = |size: u64| {
            Error::corrupt(
                &what,
                format!("cannot read {length} bytes at offset {offset}: file has {size} bytes"),
            )
        };
        // Checking against the size first bounds the allocation below by the
        // file's real size, whatever length an (untrusted) index asks for.
        if !matches!(offset.checked_add(length), Some(end) if end <= size) {
            return Err(short(size));
        }
        let len = usize::try_from(length).map_err(|_| short(size))?;
        // Read straight into the vector's spare capacity (one `pread` for
        // the whole range as a rule): no zero-filling of a buffer the read
        // overwrites anyway — a restore reads every pack byte through here.
        let mut data = Vec::new();
        data.try_reserve_exact(len)
            .map_err(|e| io_error(&what, io::Error::new(ErrorKind::OutOfMemory, e)))?;
        while data.len() < len {
            let at = offset + data.len() as u64;
            match rustix::io::pread(&file, spare_capacity(&mut data), at) {
                // Truncated since the size check.
                Ok(0) => return Err(short(file.metadata().map_or(0, |m| m.len()))),
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(io_error(&what, e.into())),
            }
        }
        // The capacity (so the read) may exceed `len` only if the
        // allocator rounded it up.
        data.truncate(len);
        Ok(data)
    }

    fn write(&self, tpe: FileType, name: &str, data: &[u8]) -> Result<()> {
        let (path, what) = self.locate(tpe, name)?;
        let (mut file, tmp) = self.create_temp(&path, &what)?;
        file.write_all(data).map_err(|e| io_error(&what, e))?;
        self.commit(file, tmp, tpe, &path, &what)
    }

    /// Streams into a temporary file in the type's directory (`data/` for
    /// packs, whose final subdirectory depends on the name), which
    /// [`Upload::finish`] commits as [`write`](Backend::write) does: no
    /// copy of the bytes is kept in memory.
    fn upload(self: Arc<Self>, tpe: FileType) -> Result<Box<dyn Upload>> {
        Ok(Box::new(LocalUpload::start(self, tpe)?))
    }

    fn remove(&self, tpe: FileType, name: &str) -> Result<()> {
        let (path, what) = self.locate(tpe, name)?;
        // Unix needs no write permission on the (read-only) file itself.
        fs::remove_file(&path).map_err(|e| io_error(&what, e))
    }

    fn stat(&self, tpe: FileType, name: &str) -> Result<u64> {
        let (path, what) = self.locate(tpe, name)?;
        let meta = fs::metadata(&path).map_err(|e| io_error(&what, e))?;
        if !meta.is_file() {
            return Err(Error::corrupt(what, "not a regular file"));
        }
        Ok(meta.len())
    }
}

/// A temporary file, removed on drop while armed: every early return of a
/// failed write cleans up after itself.
struct TempFile {
    path: PathBuf,
    /// False once the file was moved to its final name.
    armed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            if let Err(e) = fs::remove_file(&self.path) {
                log::warn!("cannot remove temporary file {}: {e}", self.path.display());
            }
        }
    }
}

/// `ENOENT` → [`Error::NotFound`], anything else → [`Error::Io`].
fn io_error(what: impl Into<String>, e: io::Error) -> Error {
    match e.kind() {
        ErrorKind::NotFound => Error::NotFound(what.into()),
        _ => Error::io(what, e),
    }
}

/// True for the errors of a file system that cannot do what was asked
/// (fsync on some network file systems, `renameat2` flags, hard links).
fn is_unsupported(e: &io::Error) -> bool {
    e.raw_os_error().is_some_and(|code| {
        // ENOTSUP and EOPNOTSUPP are the same number on Linux, not everywhere.
        [libc::ENOTSUP, libc::EOPNOTSUPP, libc::EINVAL, libc::ENOSYS].contains(&code)
    })
}

/// fsync a directory, to make the creation, rename or removal of an entry
/// durable. File systems that cannot are tolerated.
fn sync_dir(dir: &Path) -> Result<()> {
    let what = || format!("syncing directory {}", dir.display());
    let d = File::open(dir).map_err(|e| Error::io(what(), e))?;
    match d.sync_all() {
        Err(e) if !is_unsupported(&e) => Err(Error::io(what(), e)),
        _ => Ok(()),
    }
}

/// Move a finished temporary file to its final name: replacing an existing
/// file only if `replace`, otherwise failing with `AlreadyExists`.
fn publish(tmp: &Path, dst: &Path, replace: bool) -> io::Result<()> {
    if replace {
        return fs::rename(tmp, dst);
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::fcntl::{renameat2, RenameFlags};
        match renameat2(None, tmp, None, dst, RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(errno) => {
                let e = io::Error::from(errno);
                if !is_unsupported(&e) {
                    return Err(e);
                }
            }
        }
    }
    publish_by_link(tmp, dst)
}

/// `link` fails atomically if `dst` exists; then drop the temporary name.
fn publish_by_link(tmp: &Path, dst: &Path) -> io::Result<()> {
    match fs::hard_link(tmp, dst) {
        Ok(()) => {
            if let Err(e) = fs::remove_file(tmp) {
                // Harmless: temporary names are never listed.
                log::warn!("cannot remove temporary file {}: {e}", tmp.display());
            }
            Ok(())
        }
        Err(e) if is_unsupported(&e) || e.raw_os_error() == Some(libc::EPERM) => {
            publish_checked(tmp, dst)
        }
        Err(e) => Err(e),
    }
}

/// Last resort for file systems without hard links: check, then rename.
fn publish_checked(tmp: &Path, dst: &Path) -> io::Result<()> {
    match fs::symlink_metadata(dst) {
        Ok(_) => Err(io::Error::from(ErrorKind::AlreadyExists)),
        Err(e) if e.kind() == ErrorKind::NotFound => fs::rename(tmp, dst),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests;
