//! [`LocalUpload`]: a file of a [`LocalBackend`] written piece by piece,
//! straight into its temporary file.
//!
//! The final name (a pack's id, the hash of its bytes) is known only at the
//! end, and with it the final directory (`data/<first two digits>/`), so the
//! temporary file lives in the type's directory (`data/` for packs):
//! `pack-tmp-<16 random hex digits>`. No listing — cairn's or restic's —
//! reports it (a plain file where `data/` holds only subdirectories, and a
//! name that is not an id). [`Upload::finish`] then makes it durable and
//! read-only and moves it into place exactly as [`Backend::write`] does
//! (rename within one file system, no copy), and fsyncs the directory. An
//! upload dropped unfinished removes its temporary file.
//!
//! Small writes (the blobs of small files) are gathered in a buffer of
//! [`BUFFER`] bytes; larger ones go straight to the file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::Arc;

use super::{io_error, LocalBackend, TempFile};
use crate::backend::{layout, FileType, Upload};
use crate::error::Result;

/// Bytes gathered before a `write` system call.
const BUFFER: usize = 256 << 10;

/// See the module docs.
pub(super) struct LocalUpload {
    backend: Arc<LocalBackend>,
    tpe: FileType,
    file: BufWriter<File>,
    /// Removes the temporary file unless the upload finished.
    tmp: TempFile,
    len: u64,
    /// The temporary file, for error messages.
    what: String,
}

impl LocalUpload {
    /// Create the temporary file of a new upload of type `tpe`.
    pub(super) fn start(backend: Arc<LocalBackend>, tpe: FileType) -> Result<Self> {
        let dir = match layout::type_dir(tpe) {
            Some(dir) => backend.path().join(dir),
            None => backend.path().to_path_buf(),
        };
        let what = format!("new {} in {}", tpe.name(), dir.display());
        let (file, tmp) = backend.create_temp_in(&dir, tpe.name(), &what)?;
        let what = format!("new {} at {}", tpe.name(), tmp.path.display());
        Ok(LocalUpload {
            backend,
            tpe,
            file: BufWriter::with_capacity(BUFFER, file),
            tmp,
            len: 0,
            what,
        })
    }

    /// The temporary file.
    #[cfg(test)]
    pub(super) fn temp_path(&self) -> &std::path::Path {
        &self.tmp.path
    }
}

impl Upload for LocalUpload {
    fn write(&mut self, data: &[u8]) -> Result<()> {
        self.file
            .write_all(data)
            .map_err(|e| io_error(&self.what, e))?;
        self.len += data.len() as u64;
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn finish(self: Box<Self>, name: &str) -> Result<()> {
        let LocalUpload {
            backend,
            tpe,
            file,
            tmp,
            what,
            ..
        } = *self;
        let (path, final_what) = backend.locate(tpe, name)?;
        let file = file
            .into_inner()
            .map_err(|e| io_error(&what, e.into_error()))?;
        backend.commit(file, tmp, tpe, &path, &final_what)
    }
}
