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

pub mod layout;
pub mod local;
pub mod mem;
pub mod observed;

pub use local::LocalBackend;
pub use mem::MemBackend;
pub use observed::{Observed, Op};

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

    /// True if the file exists.
    fn exists(&self, tpe: FileType, name: &str) -> Result<bool> {
        match self.stat(tpe, name) {
            Ok(_) => Ok(true),
            Err(Error::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Describe a file for error messages, e.g. `pack 1a2b3c4d` or `config`.
pub fn describe(tpe: FileType, name: &str) -> String {
    match tpe {
        FileType::Config => "config".to_string(),
        _ => format!("{} {}", tpe.name(), name),
    }
}
