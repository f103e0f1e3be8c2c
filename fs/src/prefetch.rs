//! Read-ahead workers: threads that load blobs into the [`BlobCache`]
//! before anyone asks for them, and hand whole small files to the kernel's
//! page cache.
//!
//! A job is a list of blobs, loaded with batched pack reads
//! ([`BlobCache::load_many`]), plus the small files those blobs make up.
//! Once the job is loaded, each such file's content is pushed into the
//! kernel's page cache ([`PageCache::store`], FUSE's `notify_store`): when
//! a directory's files are read one after another (`grep -r`, `cp -r`,
//! `find -exec cat`), the next ones are then read without a single FUSE
//! request. The push is only an offer: a file the kernel no longer caches
//! is refused and simply read the usual way later, and pushed pages are
//! exactly the file's verified content (inode numbers never change their
//! meaning during a mount, and snapshots never change).
//!
//! Lock order: a push may wait for a page the kernel has locked for a read
//! request of the same file; that request is served by a FUSE thread,
//! which may wait for blob loads but never for a push, and a worker pushes
//! only after its own loads are published. So there is no cycle.

use std::ops::Range;
use std::sync::{Arc, OnceLock};

use cairn_core::BlobId;
use crossbeam_channel::Sender;

use crate::cache::BlobCache;
use crate::inode::Ino;

/// The kernel's page cache, as far as read-ahead uses it.
pub trait PageCache: Send + Sync {
    /// Offer `data` as the whole content of `ino`; false if refused.
    fn store(&self, ino: Ino, data: &[u8]) -> bool;
}

/// Where the page cache is plugged in once the FUSE session exists (the
/// layer is built before it; kernel-free tests plug in their own).
pub type PageCacheSlot = Arc<OnceLock<Arc<dyn PageCache>>>;

/// A small file whose content a job loads: its blobs are
/// `job.blobs[blobs]`.
#[derive(Clone, Debug)]
pub struct FileAhead {
    pub ino: Ino,
    pub blobs: Range<usize>,
    pub size: u64,
}

/// One unit of read-ahead work.
#[derive(Debug, Default)]
pub struct Job {
    pub blobs: Vec<BlobId>,
    /// Files to push to the page cache once `blobs` are loaded.
    pub files: Vec<FileAhead>,
}

impl Job {
    /// Add a non-empty small file made of `content`, to be pushed.
    pub fn add_file(&mut self, ino: Ino, content: &[BlobId], size: u64) {
        let start = self.blobs.len();
        self.blobs.extend_from_slice(content);
        self.files.push(FileAhead {
            ino,
            blobs: start..self.blobs.len(),
            size,
        });
    }
}

impl From<Vec<BlobId>> for Job {
    fn from(blobs: Vec<BlobId>) -> Self {
        Job {
            blobs,
            files: Vec::new(),
        }
    }
}

/// Threads that run read-ahead jobs.
pub struct Prefetcher {
    tx: Option<Sender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Prefetcher {
    /// Start `threads` workers filling `cache` and, once plugged in,
    /// `page_cache` (0 threads: read-ahead disabled).
    pub fn new(cache: Arc<BlobCache>, page_cache: PageCacheSlot, threads: usize) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let threads = (0..threads)
            .filter_map(|i| {
                let (rx, cache, page_cache) = (rx.clone(), cache.clone(), page_cache.clone());
                std::thread::Builder::new()
                    .name(format!("cairn-readahead-{i}"))
                    .spawn(move || {
                        for job in rx {
                            // Skips what is cached or in flight; errors are
                            // logged, readers meet them again.
                            cache.load_many(&job.blobs);
                            if let Some(page_cache) = page_cache.get() {
                                for file in &job.files {
                                    push(&cache, page_cache.as_ref(), &job.blobs, file);
                                }
                            }
                        }
                    })
                    .ok()
            })
            .collect::<Vec<_>>();
        Prefetcher {
            tx: (!threads.is_empty()).then_some(tx),
            threads,
        }
    }

    /// Queue read-ahead jobs.
    pub fn fetch(&self, jobs: impl IntoIterator<Item = Job>) {
        let Some(tx) = &self.tx else { return };
        for job in jobs {
            if tx.send(job).is_err() {
                return;
            }
        }
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        self.tx = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Offer `file`'s content to the page cache if all its blobs are cached
/// and add up to its size (a blob that failed to load, or a node whose size
/// disagrees with its blobs, is left to the normal read path and its
/// errors).
fn push(cache: &BlobCache, page_cache: &dyn PageCache, ids: &[BlobId], file: &FileAhead) {
    let Some(ids) = ids.get(file.blobs.clone()) else {
        return;
    };
    let Some(blobs) = ids
        .iter()
        .map(|id| cache.peek(id))
        .collect::<Option<Vec<_>>>()
    else {
        return;
    };
    let stored = match blobs.as_slice() {
        [one] if one.len() as u64 == file.size => page_cache.store(file.ino, one),
        _ => {
            let mut data = Vec::with_capacity(usize::try_from(file.size).unwrap_or(0));
            for blob in &blobs {
                data.extend_from_slice(blob);
            }
            data.len() as u64 == file.size && page_cache.store(file.ino, &data)
        }
    };
    if !stored {
        log::trace!("page cache refused inode {}", file.ino.0);
    }
}
