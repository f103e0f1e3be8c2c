//! The one error type of `cairn-core`.
//!
//! Variants name *what* failed (a MAC mismatch, a blob missing from the index),
//! not where; the `Display` text is a single line fit to show a user as is.

use std::path::PathBuf;

/// Result alias used throughout the core library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the core library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error on a named file or object.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A file or object that should exist does not.
    #[error("{0} does not exist")]
    NotFound(String),
    /// A file or object that must not exist already does.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// No key file in the repository opens with the given password.
    #[error("wrong password or no key found")]
    WrongPassword,
    /// Authentication (Poly1305-AES MAC) of encrypted data failed.
    #[error("{0}: ciphertext verification failed (MAC mismatch): the data is corrupted or was tampered with")]
    MacMismatch(String),
    /// Data is structurally invalid: bad JSON, truncated, wrong length, …
    #[error("{what} is corrupted: {reason}")]
    Corrupt { what: String, reason: String },
    /// The plaintext of a blob or file does not hash to its id.
    #[error("{what}: content hash does not match its id (expected {expected}, got {actual})")]
    HashMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// A repository version, key kdf or encoding this build does not support.
    #[error("unsupported {what}: {value}")]
    Unsupported { what: String, value: String },
    /// A blob was requested that no index lists.
    #[error("blob {0} is not in the index")]
    BlobNotInIndex(String),
    /// A snapshot id or prefix matched nothing, or several.
    #[error("{0}")]
    SnapshotSelect(String),
    /// The repository is locked by another process.
    #[error("repository is already locked {0}")]
    Locked(String),
    /// A path given by the user is invalid.
    #[error("{path}: {reason}")]
    InvalidPath { path: PathBuf, reason: String },
    /// Invalid argument or option.
    #[error("{0}")]
    InvalidArgument(String),
    /// The operation was interrupted (Ctrl+C, SIGTERM).
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    /// Build an [`Error::Io`] naming what was being accessed.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    /// Build an [`Error::Corrupt`].
    pub fn corrupt(what: impl Into<String>, reason: impl ToString) -> Self {
        Error::Corrupt {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}
