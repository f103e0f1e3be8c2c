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
//!   way.
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
use std::sync::OnceLock;

use rustix::buffer::spare_capacity;

use crate::backend::{describe, layout, Backend, FileInfo, FileType};
use crate::error::{Error, Result};

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
        let (dir, base) = match (path.parent(), path.file_name()) {
            (Some(dir), Some(base)) => (dir, base.to_string_lossy()),
            _ => return Err(Error::InvalidArgument(format!("{what}: not a file path"))),
        };
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
        let (mut file, mut tmp) = self.create_temp(&path, &what)?;
        file.write_all(data).map_err(|e| io_error(&what, e))?;
        if let Err(e) = file.sync_all() {
            if !is_unsupported(&e) {
                return Err(io_error(&what, e));
            }
        }
        // Read-only before it gets its final name, so it never appears
        // writable. Some file systems refuse chmod: not fatal, as in restic.
        match file.set_permissions(Permissions::from_mode(self.modes().read_only())) {
            Err(e) if e.kind() != ErrorKind::PermissionDenied => return Err(io_error(&what, e)),
            _ => {}
        }
        drop(file);
        publish(&tmp.path, &path, tpe == FileType::Lock).map_err(|e| match e.kind() {
            ErrorKind::AlreadyExists => Error::AlreadyExists(what.clone()),
            _ => io_error(&what, e),
        })?;
        tmp.armed = false;
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
        Ok(())
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
mod tests {
    use std::collections::BTreeSet;
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::backend::mem::conformance;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().mode() & 0o7777
    }

    /// Every path below `dir`, relative, with its mode.
    fn tree(dir: &Path) -> BTreeSet<(String, u32)> {
        fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<(String, u32)>) {
            for entry in fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                out.insert((rel, mode(&path)));
                if path.is_dir() {
                    walk(root, &path, out);
                }
            }
        }
        let mut out = BTreeSet::new();
        walk(dir, dir, &mut out);
        out
    }

    fn new_repo() -> (tempfile::TempDir, LocalBackend) {
        let dir = tempfile::tempdir().unwrap();
        let be = LocalBackend::new(dir.path().join("repo"));
        be.create().unwrap();
        (dir, be)
    }

    #[test]
    fn conformance_and_nothing_outside_the_repository() {
        let outer = tempfile::tempdir().unwrap();
        let repo = outer.path().join("repo");
        let be = LocalBackend::new(&repo);
        conformance::run(&be);
        let names: Vec<_> = fs::read_dir(outer.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["repo"]);
        // No temporary file survived a write, failed or not.
        let leftovers: Vec<_> = tree(&repo)
            .into_iter()
            .filter(|(p, _)| p.contains(TEMP_INFIX))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn create_makes_the_tree_restic_init_makes() {
        let (dir, be) = new_repo();
        let mut expected: BTreeSet<(String, u32)> = ["keys", "snapshots", "index", "locks", "data"]
            .iter()
            .map(|d| (d.to_string(), 0o700))
            .collect();
        expected.extend((0..=255).map(|b| (format!("data/{b:02x}"), 0o700)));
        assert_eq!(tree(be.path()), expected);
        assert_eq!(mode(&dir.path().join("repo")), 0o700);

        // Files are written 0600 and left read-only, as restic leaves them.
        be.write(FileType::Config, "config", b"c").unwrap();
        let key = conformance::name("key");
        be.write(FileType::Key, &key, b"k").unwrap();
        assert_eq!(mode(&be.path().join("config")), 0o400);
        assert_eq!(mode(&be.path().join("keys").join(&key)), 0o400);
        assert!(matches!(be.create(), Err(Error::AlreadyExists(_))));
    }

    #[test]
    fn group_readable_config_widens_modes_as_restic() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        LocalBackend::new(&root).create().unwrap();
        fs::write(root.join("config"), b"c").unwrap();
        fs::set_permissions(root.join("config"), Permissions::from_mode(0o640)).unwrap();
        fs::remove_dir(root.join("data/ab")).unwrap();

        let be = LocalBackend::new(&root);
        let pack = format!("ab{}", &conformance::name("p")[2..]);
        be.write(FileType::Pack, &pack, b"p").unwrap();
        assert_eq!(mode(&root.join("data/ab").join(&pack)), 0o440);
        assert_eq!(mode(&root.join("data/ab")), 0o750);
    }

    #[test]
    fn leftover_temp_files_are_ignored_and_do_not_block_writes() {
        let (_dir, be) = new_repo();
        let pack = conformance::name("crashed");
        let key = conformance::name("crashed key");
        // What a writer (ours or restic's) killed mid-write leaves behind.
        let pack_dir = be.path().join("data").join(&pack[..2]);
        let stale_pack = pack_dir.join(format!("{pack}-tmp-0123456789abcdef"));
        let stale_key = be.path().join("keys").join(format!("{key}-tmp-4242"));
        fs::write(&stale_pack, b"partial").unwrap();
        fs::write(&stale_key, b"partial").unwrap();
        assert!(be.list(FileType::Pack).unwrap().is_empty());
        assert!(be.list(FileType::Key).unwrap().is_empty());
        assert!(!be.exists(FileType::Pack, &pack).unwrap());

        be.write(FileType::Pack, &pack, b"whole").unwrap();
        be.write(FileType::Key, &key, b"whole key").unwrap();
        assert_eq!(
            be.list(FileType::Pack).unwrap(),
            vec![FileInfo {
                name: pack.clone(),
                size: 5
            }]
        );
        assert_eq!(be.read(FileType::Pack, &pack).unwrap(), b"whole");
        assert_eq!(be.list(FileType::Key).unwrap().len(), 1);
        // Another writer's temporary file is not ours to remove.
        assert!(stale_pack.exists() && stale_key.exists());
    }

    #[test]
    fn list_skips_strangers() {
        let (_dir, be) = new_repo();
        let good = conformance::name("good");
        be.write(FileType::Pack, &good, b"x").unwrap();
        be.write(FileType::Snapshot, &good, b"s").unwrap();
        let other = conformance::name("misplaced");
        let wrong_dir = if other.starts_with("00") { "01" } else { "00" };
        let root = be.path();
        fs::write(root.join("data").join(wrong_dir).join(&other), b"m").unwrap();
        fs::write(root.join("data").join(&other), b"not in a subdir").unwrap();
        fs::create_dir(root.join("data/zz")).unwrap();
        fs::write(root.join("data/zz").join(&other), b"bad subdir").unwrap();
        fs::write(root.join("snapshots/README"), b"hello").unwrap();
        fs::write(root.join("snapshots").join(good.to_ascii_uppercase()), b"u").unwrap();
        fs::create_dir(root.join("snapshots").join(&other)).unwrap();

        let names =
            |t| -> Vec<String> { be.list(t).unwrap().into_iter().map(|f| f.name).collect() };
        assert_eq!(names(FileType::Pack), vec![good.clone()]);
        assert_eq!(names(FileType::Snapshot), vec![good]);
    }

    #[test]
    fn missing_type_and_pack_dirs_are_tolerated_and_recreated() {
        let (_dir, be) = new_repo();
        fs::remove_dir(be.path().join("locks")).unwrap();
        assert!(be.list(FileType::Lock).unwrap().is_empty());
        let lock = conformance::name("lock");
        be.write(FileType::Lock, &lock, b"l").unwrap();
        assert_eq!(be.read(FileType::Lock, &lock).unwrap(), b"l");

        fs::remove_dir_all(be.path().join("data")).unwrap();
        assert!(be.list(FileType::Pack).unwrap().is_empty());
        let pack = conformance::name("pack");
        be.write(FileType::Pack, &pack, b"p").unwrap();
        assert_eq!(be.list(FileType::Pack).unwrap().len(), 1);
        assert_eq!(mode(&be.path().join("data")), 0o700);
    }

    #[test]
    fn missing_repository_is_a_clean_not_found_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("nope");
        let be = LocalBackend::new(&root);
        let shown = root.display().to_string();
        for result in [
            be.read(FileType::Config, "config").map(drop),
            be.list(FileType::Config).map(drop),
            be.list(FileType::Pack).map(drop),
            be.list(FileType::Snapshot).map(drop),
            be.write(FileType::Key, &conformance::name("k"), b"k"),
            be.write(FileType::Config, "config", b"c"),
        ] {
            match result {
                Err(e @ Error::NotFound(_)) => assert!(e.to_string().contains(&shown), "{e}"),
                other => panic!("expected NotFound, got {other:?}"),
            }
        }
        assert!(!be.exists(FileType::Config, "config").unwrap());
        assert!(!root.exists(), "a write must not create the repository");
    }

    #[test]
    fn failed_write_leaves_no_temporary_file() {
        let (_dir, be) = new_repo();
        let name = conformance::name("twice");
        be.write(FileType::Index, &name, b"one").unwrap();
        assert!(matches!(
            be.write(FileType::Index, &name, b"two"),
            Err(Error::AlreadyExists(_))
        ));
        let entries: Vec<_> = fs::read_dir(be.path().join("index"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(entries, vec![name.clone()]);
        assert_eq!(be.read(FileType::Index, &name).unwrap(), b"one");
    }

    #[test]
    fn publish_fallbacks_never_replace() {
        let dir = tempfile::tempdir().unwrap();
        let dst = dir.path().join("dst");
        for publish_fn in [publish_by_link, publish_checked] {
            let _ = fs::remove_file(&dst);
            let tmp = dir.path().join("tmp");
            fs::write(&tmp, b"first").unwrap();
            publish_fn(&tmp, &dst).unwrap();
            assert!(!tmp.exists(), "the temporary name is gone");
            fs::write(&tmp, b"second").unwrap();
            let err = publish_fn(&tmp, &dst).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::AlreadyExists);
            assert_eq!(fs::read(&dst).unwrap(), b"first");
            fs::remove_file(&tmp).unwrap();
        }
        // Replacing, for locks.
        let tmp = dir.path().join("tmp");
        fs::write(&tmp, b"third").unwrap();
        publish(&tmp, &dst, true).unwrap();
        assert_eq!(fs::read(&dst).unwrap(), b"third");
    }

    #[test]
    fn large_ranges_are_read_exactly() {
        let (_dir, be) = new_repo();
        let name = conformance::name("large");
        let data: Vec<u8> = (0..9u32 << 20).map(|i| (i % 251) as u8).collect();
        be.write(FileType::Pack, &name, &data).unwrap();
        for (offset, len) in [(0, data.len()), (1, data.len() - 2), (3 << 20, 4 << 20)] {
            let got = be
                .read_range(FileType::Pack, &name, offset as u64, len as u64)
                .unwrap();
            assert_eq!(got.len(), len);
            assert!(got == data[offset..offset + len], "({offset}, {len})");
        }
    }

    #[test]
    fn read_range_of_a_truncated_file_names_it() {
        let (_dir, be) = new_repo();
        let name = conformance::name("short");
        be.write(FileType::Pack, &name, &[1; 10]).unwrap();
        let err = be
            .read_range(FileType::Pack, &name, 4, 1 << 40)
            .unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(&name) && msg.contains("10 bytes"), "{msg}");
    }
}
