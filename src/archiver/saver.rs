//! The saving stages of a backup: blobs into the repository, and file
//! contents into data blobs.
//!
//! [`BlobSaver`] deduplicates against the index and the packs being
//! written, counts what is new, and in a dry run only decides what *would*
//! be new. [`FileSaver`] turns an open file into a node with its content
//! list. The tree builder only talks to `FileSaver` through
//! [`FileSaver::submit`] and [`PendingFile::wait`]: today `submit` does the
//! work at once, but a pipelined saver (read → chunk → hash → compress →
//! encrypt → pack on several threads) can hand back a `PendingFile` that
//! waits on a channel instead, without any change to how trees are built.
//! Both types are `Sync` for that reason.

use std::collections::HashSet;
use std::io::Read;
use std::path::PathBuf;

use parking_lot::Mutex;

use crate::blob::{BlobHandle, BlobType};
use crate::chunker::{Chunker, ChunkerKind};
use crate::crypto::CIPHERTEXT_OVERHEAD;
use crate::error::{Error, Result};
use crate::format::tree::{Node, Tree};
use crate::id::{BlobId, Id, TreeId};
use crate::repository::Repository;

/// Counts of blobs a backup added (restic's `ItemStats`, summed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlobStats {
    pub data_blobs: u64,
    /// Plaintext bytes of the new data blobs.
    pub data_size: u64,
    pub tree_blobs: u64,
    /// Plaintext bytes of the new tree blobs.
    pub tree_size: u64,
}

/// Saves blobs, once each, and records which ones were new.
pub struct BlobSaver<'a> {
    repo: &'a Repository,
    dry_run: bool,
    state: Mutex<SaverState>,
}

#[derive(Default)]
struct SaverState {
    stats: BlobStats,
    /// Every blob this backup added, to measure their stored size.
    added: Vec<BlobHandle>,
    /// Dry run: blobs that would have been added so far.
    would_add: HashSet<BlobHandle>,
}

impl<'a> BlobSaver<'a> {
    /// A saver into `repo`; with `dry_run` nothing is written.
    pub fn new(repo: &'a Repository, dry_run: bool) -> Self {
        BlobSaver {
            repo,
            dry_run,
            state: Mutex::new(SaverState::default()),
        }
    }

    /// Save a blob unless the repository has it; returns its id.
    pub fn save(&self, tpe: BlobType, data: &[u8]) -> Result<BlobId> {
        let (id, new) = if self.dry_run {
            let handle = BlobHandle::new(tpe, BlobId(Id::hash(data)));
            let new = !self.repo.has_blob(&handle) && self.state.lock().would_add.insert(handle);
            (handle.id, new)
        } else {
            self.repo.save_blob(tpe, data)?
        };
        if new {
            let len = data.len() as u64;
            let mut state = self.state.lock();
            state.added.push(BlobHandle::new(tpe, id));
            match tpe {
                BlobType::Data => {
                    state.stats.data_blobs += 1;
                    state.stats.data_size += len;
                }
                BlobType::Tree => {
                    state.stats.tree_blobs += 1;
                    state.stats.tree_size += len;
                }
            }
        }
        Ok(id)
    }

    /// Serialize and save a tree.
    pub fn save_tree(&self, tree: &Tree) -> Result<TreeId> {
        self.save(BlobType::Tree, &tree.to_json()).map(TreeId::from)
    }

    /// What was added so far.
    pub fn stats(&self) -> BlobStats {
        self.state.lock().stats
    }

    /// The bytes the added blobs occupy in packs (compressed and
    /// encrypted). Exact once the repository is flushed; in a dry run an
    /// estimate without compression.
    pub fn stored_size(&self) -> u64 {
        let state = self.state.lock();
        if self.dry_run {
            let s = state.stats;
            let overhead = (s.data_blobs + s.tree_blobs) * CIPHERTEXT_OVERHEAD as u64;
            return s.data_size + s.tree_size + overhead;
        }
        state
            .added
            .iter()
            .filter_map(|h| self.repo.lookup(h))
            .map(|e| u64::from(e.length))
            .sum()
    }
}

/// One file to save: where it is (for messages), its content, and its node
/// without content.
pub struct FileJob {
    pub path: PathBuf,
    pub reader: Box<dyn Read + Send>,
    pub node: Node,
}

/// A file saved, or being saved.
pub struct PendingFile(Result<FileOutcome>);

/// How saving one file ended. Failing to *read* the file spoils only that
/// file; failing to *store* its blobs is an error of the whole backup.
pub enum FileOutcome {
    Saved(Box<SavedFile>),
    /// The file could not be read (completely); it is left out.
    Unreadable(Error),
}

/// A saved file: its node with content and size filled in.
pub struct SavedFile {
    pub node: Node,
    /// Bytes read from the file.
    pub bytes_read: u64,
}

impl PendingFile {
    /// Wait for the file to be saved. An `Err` is fatal to the backup
    /// (the repository could not store a blob).
    pub fn wait(self) -> Result<FileOutcome> {
        self.0
    }
}

/// Chunks files and saves their chunks as data blobs.
pub struct FileSaver<'a> {
    blobs: &'a BlobSaver<'a>,
    chunker: ChunkerKind,
}

impl<'a> FileSaver<'a> {
    pub fn new(blobs: &'a BlobSaver<'a>, chunker: ChunkerKind) -> Self {
        FileSaver { blobs, chunker }
    }

    /// Start saving a file.
    pub fn submit(&self, job: FileJob) -> PendingFile {
        PendingFile(self.save(job))
    }

    fn save(&self, job: FileJob) -> Result<FileOutcome> {
        let FileJob {
            path,
            reader,
            mut node,
        } = job;
        let mut content = Vec::new();
        let mut size = 0u64;
        for chunk in Chunker::new(self.chunker, reader) {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    let what = format!("read {}", path.display());
                    return Ok(FileOutcome::Unreadable(Error::io(what, e)));
                }
            };
            size += chunk.len() as u64;
            content.push(self.blobs.save(BlobType::Data, &chunk)?);
        }
        node.content = Some(content);
        // restic records the bytes read, not the size `stat` reported.
        node.size = size;
        Ok(FileOutcome::Saved(Box::new(SavedFile {
            node,
            bytes_read: size,
        })))
    }
}
