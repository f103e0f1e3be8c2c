//! The error type of the read layer and its single mapping to errno.
//!
//! Every failure a FUSE request can meet is one [`FsError`]; the adapter
//! turns it into an errno with [`FsError::errno`] and nothing else. Repository
//! failures (missing or corrupted blobs, unreadable trees) are `Io` and map
//! to `EIO`: the request fails, the mount stays up.

use std::sync::Arc;

/// Why a read-layer operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FsError {
    /// No such inode, name or file handle.
    #[error("no such file or directory")]
    NotFound,
    /// A directory operation on something that is not a directory.
    #[error("not a directory")]
    NotDir,
    /// A file operation on a directory.
    #[error("is a directory")]
    IsDir,
    /// The operation needs a symlink.
    #[error("not a symlink")]
    NotSymlink,
    /// Anything that would modify the mount.
    #[error("read-only file system")]
    ReadOnly,
    /// The extended attribute does not exist.
    #[error("no such attribute")]
    NoAttr,
    /// The caller's buffer is too small for the reply.
    #[error("result does not fit the buffer")]
    Range,
    /// The repository could not deliver the data (missing or corrupted blob
    /// or tree, backend failure).
    #[error("{0}")]
    Io(Arc<cairn_core::Error>),
}

impl FsError {
    /// The errno the kernel gets for this error.
    pub fn errno(&self) -> i32 {
        match self {
            FsError::NotFound => libc::ENOENT,
            FsError::NotDir => libc::ENOTDIR,
            FsError::IsDir => libc::EISDIR,
            FsError::NotSymlink => libc::EINVAL,
            FsError::ReadOnly => libc::EROFS,
            FsError::NoAttr => libc::ENODATA,
            FsError::Range => libc::ERANGE,
            FsError::Io(_) => libc::EIO,
        }
    }
}

impl From<cairn_core::Error> for FsError {
    fn from(e: cairn_core::Error) -> Self {
        FsError::Io(Arc::new(e))
    }
}

impl From<Arc<cairn_core::Error>> for FsError {
    fn from(e: Arc<cairn_core::Error>) -> Self {
        FsError::Io(e)
    }
}

/// Result alias of the read layer.
pub type FsResult<T> = Result<T, FsError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_mapping() {
        assert_eq!(FsError::NotFound.errno(), libc::ENOENT);
        assert_eq!(FsError::ReadOnly.errno(), libc::EROFS);
        assert_eq!(FsError::NoAttr.errno(), libc::ENODATA);
        let io: FsError = cairn_core::Error::BlobNotInIndex("x".into()).into();
        assert_eq!(io.errno(), libc::EIO);
    }
}
