//! Storage backends: where repository files live.
//!
//! A [`Backend`] stores opaque, already-encrypted files by [`FileType`] and
//! name (64 hex digits, or `"config"`). It knows nothing of crypto or formats.
//!
//! Contract every implementation keeps:
//! - `write` is atomic: after a crash a file exists whole under its final name
//!   or not at all; a reader never sees a partial file. Writing an existing
//!   name fails with [`Error::AlreadyExists`] (files are immutable), except
//!   for `FileType::Lock`, which may be replaced (lock refresh writes a new
//!   name anyway).
//! - `read_range` returns exactly `length` bytes or an error.
//! - `list` never returns temporary files.
//! - An [`Upload`] (a file written piece by piece, e.g. a pack as it is
//!   assembled) is invisible until [`Upload::finish`], which stores it under
//!   its name with the same atomicity as `write`; an upload dropped
//!   unfinished leaves nothing behind.

pub mod layout;
pub mod local;
pub mod mem;
pub mod observed;

pub use local::LocalBackend;
pub use mem::MemBackend;
pub use observed::{Observed, Op};

use std::sync::Arc;

use crate::error::{Error, Result};

/// The kinds of file in a restic repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileType {
    /// The single `config` file.
    Config,
    /// `keys/<id>`.
    Key,
    /// `snapshots/<id>`.
    Snapshot,
    /// `index/<id>`.
    Index,
    /// `data/<xx>/<id>`: pack files.
    Pack,
    /// `locks/<id>`.
    Lock,
}

impl FileType {
    /// All file types, config first.
    pub const ALL: [FileType; 6] = [
        FileType::Config,
        FileType::Key,
        FileType::Snapshot,
        FileType::Index,
        FileType::Pack,
        FileType::Lock,
    ];

    /// The name restic uses for this type in messages and `cat`/`list`.
    pub fn name(self) -> &'static str {
        match self {
            FileType::Config => "config",
            FileType::Key => "key",
            FileType::Snapshot => "snapshot",
            FileType::Index => "index",
            FileType::Pack => "pack",
            FileType::Lock => "lock",
        }
    }
}

/// A file listed by a backend: its name and size in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    pub name: String,
    pub size: u64,
}

/// Storage of repository files. Implementations are shared between threads.
pub trait Backend: Send + Sync {
    /// A human-readable location (path or URL) for messages.
    fn location(&self) -> String;

    /// Create the empty repository structure (directories). Fails with
    /// [`Error::AlreadyExists`] if a `config` file exists already.
    fn create(&self) -> Result<()>;

    /// List the files of one type. Order is unspecified.
    fn list(&self, tpe: FileType) -> Result<Vec<FileInfo>>;

    /// Read a whole file. A missing file is [`Error::NotFound`].
    fn read(&self, tpe: FileType, name: &str) -> Result<Vec<u8>>;

    /// Read `length` bytes at `offset`. Fewer bytes available is an error.
    fn read_range(&self, tpe: FileType, name: &str, offset: u64, length: u64) -> Result<Vec<u8>>;

    /// Write a whole file atomically (see the module contract).
    fn write(&self, tpe: FileType, name: &str, data: &[u8]) -> Result<()>;

    /// Remove a file. Removing a missing file is [`Error::NotFound`].
    fn remove(&self, tpe: FileType, name: &str) -> Result<()>;

    /// The size of a file, or [`Error::NotFound`].
    fn stat(&self, tpe: FileType, name: &str) -> Result<u64>;

    /// Start a file of type `tpe` written piece by piece, whose name is
    /// known only once it is complete (a pack is named by the hash of its
    /// bytes). The default keeps the bytes in memory and [`write`]s them at
    /// [`Upload::finish`]; a backend that can store bytes as they come
    /// (the local one: into its temporary file) overrides it.
    ///
    /// [`write`]: Backend::write
    fn upload(self: Arc<Self>, tpe: FileType) -> Result<Box<dyn Upload>>
    where
        Self: 'static,
    {
        Ok(Box::new(BufferedUpload {
            backend: self,
            tpe,
            data: Vec::new(),
        }))
    }

    /// True if the file exists.
    fn exists(&self, tpe: FileType, name: &str) -> Result<bool> {
        match self.stat(tpe, name) {
            Ok(_) => Ok(true),
            Err(Error::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// A file being written piece by piece; see [`Backend::upload`].
pub trait Upload: Send {
    /// Append `data` to the file.
    fn write(&mut self, data: &[u8]) -> Result<()>;

    /// Bytes written so far.
    fn len(&self) -> u64;

    /// True if nothing was written yet.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Store the file under `name`, atomically as [`Backend::write`] does
    /// (and failing as it does, e.g. [`Error::AlreadyExists`]). On error
    /// nothing is left behind.
    fn finish(self: Box<Self>, name: &str) -> Result<()>;
}

/// [`Backend::upload`]'s default: the bytes in memory, one `write` at the
/// end.
struct BufferedUpload<B: ?Sized> {
    backend: Arc<B>,
    tpe: FileType,
    data: Vec<u8>,
}

impl<B: Backend + ?Sized> Upload for BufferedUpload<B> {
    fn write(&mut self, data: &[u8]) -> Result<()> {
        self.data.extend_from_slice(data);
        Ok(())
    }

    fn len(&self) -> u64 {
        self.data.len() as u64
    }

    fn finish(self: Box<Self>, name: &str) -> Result<()> {
        self.backend.write(self.tpe, name, &self.data)
    }
}

/// Describe a file for error messages, e.g. `pack 1a2b3c4d` or `config`.
pub fn describe(tpe: FileType, name: &str) -> String {
    match tpe {
        FileType::Config => "config".to_string(),
        _ => format!("{} {}", tpe.name(), name),
    }
}
