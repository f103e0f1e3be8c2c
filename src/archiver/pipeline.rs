//! The parallel file-saving pipeline: file contents in, content lists out.
//!
//! ```text
//! tree builder ──FileJob──► readers (read, chunk)  ──BlobJob──► savers (SHA-256, dedup,
//!   (submit)    bounded    2 × `readers` threads    bounded    zstd, encrypt, pack, write)
//!      ▲                                                           │
//!      └──────────── PendingFile (shared FileState) ◄──────────────┘
//! ```
//!
//! - Both queues are bounded, so memory stays bounded whatever the tree:
//!   at most 32 files per reader thread (paths, not open files) wait to be
//!   read and `2 × savers` chunks (≤ 8 MiB each, and at most 6 MiB per saver
//!   in all, queued or being saved: [`ByteBudget`]) wait to be saved, plus
//!   the open packs. Chunks are not copies but ranges of the 10 MiB block
//!   a reader read them into ([`Chunk`]): a block returns to the readers'
//!   [`BlockPool`] when its last chunk is saved. So the blocks in use are
//!   the one each reader fills plus at most one per chunk in flight
//!   (usually one or two per reader, as chunks come in order), the pool
//!   keeps up to [`BLOCKS_KEPT_PER_READER`] per reader for reuse, and no
//!   chunk costs an allocation or a copy.
//! - `readers` (restic's `--read-concurrency`) bounds the files of
//!   [`SMALL_INPUT`] bytes or more read at once, and so the read blocks in
//!   use; there are twice as many reader threads, so that small files keep
//!   being read while large ones are: a small file is mostly system calls
//!   (open, fstat, xattrs, read, close), and two readers on two cores left
//!   a quarter of the CPU idle on 20k small files.
//! - A reader only chunks; the chunks of one file are hashed, compressed and
//!   encrypted by all savers at once, so a single large file uses every
//!   core while the chunker runs ahead. Chunks under [`INLINE_CHUNK`] (small
//!   files) are the exception: the reader saves them itself, as a hand-off
//!   would cost more than the work.
//! - Each file has a [`FileState`]: its chunks' ids in order, filled in by
//!   the savers as they finish, in any order. A file is *settled* when its
//!   reader is done with it and no chunk of it is outstanding. The finished
//!   *prefix* (all chunks up to the first unfinished one) is known at any
//!   moment: checkpoints save it, cut at a chunk boundary.
//! - Live files: after reading to the end, the reader `fstat`s the file
//!   again. If size, mtime or ctime changed since the read began, the file
//!   is read again from the start (up to `retries` times); if it keeps
//!   changing, it is stored as last read and flagged. Its node keeps the
//!   metadata from *before* the last read, so the next backup reads it
//!   again.
//! - Resuming: a file whose first part a checkpoint already stored starts
//!   with that content list and is read from the cut on. Chunk boundaries
//!   depend only on the bytes since the previous boundary, so the result is
//!   the same as reading the whole file.
//! - Stopping: when the stop flag or the user's interrupt is set, readers
//!   stop at the next chunk and hand back [`FileOutcome::Cancelled`];
//!   savers finish every chunk already read.
//!
//! Errors: failing to read a file spoils only that file
//! ([`FileOutcome::Unreadable`]); failing to store a blob is fatal to the
//! backup (an `Err` from [`PendingFile::outcome`]).

use std::fs::{File, Metadata};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::Scope;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, SendTimeoutError, Sender};
use parking_lot::{Condvar, Mutex};

use super::budget::ByteBudget;
use super::node::NodeFactory;
use super::progress::Progress;
use super::saver::BlobSaver;
use crate::blob::BlobType;
use crate::chunker::{BlockPool, Chunk, Chunker, ChunkerKind, SMALL_INPUT};
use crate::error::{Error, Result};
use crate::format::tree::Node;
use crate::id::BlobId;

/// How the pipeline runs.
#[derive(Clone, Copy, Debug)]
pub struct PipelineConfig {
    /// Files of [`SMALL_INPUT`] bytes or more read at once (restic's
    /// `--read-concurrency`); small files are read by twice as many threads.
    pub readers: usize,
    /// Threads hashing, compressing, encrypting and packing chunks.
    pub savers: usize,
    pub chunker: ChunkerKind,
    /// How often a file that changed while it was read is read again.
    pub retries: u32,
}

/// What the pipeline's threads share.
#[derive(Clone, Copy)]
pub struct Shared<'a> {
    pub blobs: &'a BlobSaver<'a>,
    pub nodes: &'a NodeFactory,
    pub progress: &'a Progress,
    /// Set to stop reading (interrupt, or a fatal error elsewhere).
    pub stop: &'a AtomicBool,
    /// The user's interrupt: readers look at it too, so that they stop at
    /// the next chunk instead of when the tree builder next looks (which
    /// then sets `stop` and saves the checkpoint).
    pub interrupt: &'a AtomicBool,
}

impl Shared<'_> {
    /// True once reading should stop.
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.interrupt.load(Ordering::Relaxed)
    }
}

/// Where a file's content comes from.
pub enum Source {
    /// A regular file (by `lstat`), possibly resumed from a checkpoint. The
    /// reader opens it, checks it is still a regular file and builds its
    /// node (`fstat`, extended attributes): per-file system calls run on
    /// the readers, in parallel, not on the walk.
    Path { resume: Option<Resume> },
    /// A stream read once (`--stdin`); never re-read.
    Stream(Box<dyn Read + Send>),
}

/// The part of a file a checkpoint already stored: its content list and
/// the byte offset where it ends (a chunk boundary).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resume {
    pub content: Vec<BlobId>,
    pub offset: u64,
}

/// One file to save: its path (for messages), content, and node without
/// content.
pub struct FileJob {
    pub path: PathBuf,
    pub source: Source,
    pub node: Node,
}

/// How saving one file ended.
pub enum FileOutcome {
    Saved(Box<SavedFile>),
    /// The file could not be read (completely); it is left out.
    Unreadable(Error),
    /// Reading stopped before the end (interrupt).
    Cancelled,
}

/// A saved file: its node with content and size filled in.
pub struct SavedFile {
    pub node: Node,
    /// Bytes read from the file, re-reads included.
    pub bytes_read: u64,
    /// The file kept changing while it was read; stored as last read.
    pub changed_during_backup: bool,
}

/// How a reader finished with a file.
enum Done {
    Saved { bytes_read: u64, changed: bool },
    Unreadable(Error),
    Cancelled,
}

struct Inner {
    node: Node,
    /// Content stored by an earlier (checkpointed) run.
    base: Vec<BlobId>,
    base_size: u64,
    /// Chunks of the current read, by position; `None` while being saved.
    chunks: Vec<Option<(BlobId, u32)>>,
    /// Number of leading `Some` entries of `chunks`.
    finished: usize,
    outstanding: usize,
    done: Option<Done>,
    fatal: Option<Error>,
}

impl Inner {
    fn settled(&self) -> bool {
        self.outstanding == 0 && (self.done.is_some() || self.fatal.is_some())
    }

    /// The node with the finished prefix as content and its size.
    fn prefix_node(&self) -> Node {
        let mut node = self.node.clone();
        let mut content = self.base.clone();
        let mut size = self.base_size;
        for (id, len) in self.chunks[..self.finished].iter().flatten() {
            content.push(*id);
            size += u64::from(*len);
        }
        node.content = Some(content);
        node.size = size;
        node
    }
}

/// The shared state of one file in the pipeline. See the module docs.
struct FileState {
    inner: Mutex<Inner>,
    cond: Condvar,
}

impl FileState {
    fn new(node: Node) -> Self {
        FileState {
            inner: Mutex::new(Inner {
                node,
                base: Vec::new(),
                base_size: 0,
                chunks: Vec::new(),
                finished: 0,
                outstanding: 0,
                done: None,
                fatal: None,
            }),
            cond: Condvar::new(),
        }
    }

    fn set_base(&self, content: Vec<BlobId>, size: u64) {
        let mut g = self.inner.lock();
        g.base = content;
        g.base_size = size;
    }

    /// Reserve the next chunk position.
    fn dispatch(&self) -> usize {
        let mut g = self.inner.lock();
        g.chunks.push(None);
        g.outstanding += 1;
        g.chunks.len() - 1
    }

    /// A saver finished chunk `index`.
    fn complete(&self, index: usize, result: Result<BlobId>, len: u32) {
        let mut g = self.inner.lock();
        g.outstanding = g.outstanding.saturating_sub(1);
        match result {
            Ok(id) => {
                if let Some(slot) = g.chunks.get_mut(index) {
                    *slot = Some((id, len));
                }
                while g.chunks.get(g.finished).is_some_and(Option::is_some) {
                    g.finished += 1;
                }
            }
            Err(e) => {
                g.fatal.get_or_insert(e);
            }
        }
        if g.outstanding == 0 {
            self.cond.notify_all();
        }
    }

    /// Forget everything read so far (after waiting for its chunks), to
    /// read the file again; `refresh` updates the node's metadata.
    fn restart(&self, refresh: impl FnOnce(&mut Node)) {
        let mut g = self.inner.lock();
        while g.outstanding > 0 {
            self.cond.wait(&mut g);
        }
        g.chunks.clear();
        g.finished = 0;
        g.base.clear();
        g.base_size = 0;
        refresh(&mut g.node);
    }

    fn finish(&self, done: Done) {
        let mut g = self.inner.lock();
        g.done = Some(done);
        self.cond.notify_all();
    }

    fn fail(&self, e: Error) {
        let mut g = self.inner.lock();
        g.fatal.get_or_insert(e);
        self.cond.notify_all();
    }
}

/// A file handed to the pipeline.
pub struct PendingFile {
    state: Arc<FileState>,
}

impl PendingFile {
    /// True once the file is completely handled.
    pub fn is_settled(&self) -> bool {
        self.state.inner.lock().settled()
    }

    /// Wait up to `timeout` for the file to settle; true if it did.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let mut g = self.state.inner.lock();
        if !g.settled() {
            self.state.cond.wait_for(&mut g, timeout);
        }
        g.settled()
    }

    /// Wait for the file to settle and return how it ended. An `Err` is
    /// fatal to the backup (a blob could not be stored).
    pub fn outcome(self) -> Result<FileOutcome> {
        let mut g = self.state.inner.lock();
        while !g.settled() {
            self.state.cond.wait(&mut g);
        }
        if let Some(e) = g.fatal.take() {
            return Err(e);
        }
        match g.done.take() {
            Some(Done::Saved {
                bytes_read,
                changed,
            }) => Ok(FileOutcome::Saved(Box::new(SavedFile {
                node: g.prefix_node(),
                bytes_read,
                changed_during_backup: changed,
            }))),
            Some(Done::Unreadable(e)) => Ok(FileOutcome::Unreadable(e)),
            Some(Done::Cancelled) | None => Ok(FileOutcome::Cancelled),
        }
    }

    /// The node of what is stored so far, for a checkpoint: the whole file
    /// if it is saved, else its finished prefix (`None` if there is none,
    /// or if the file is unreadable).
    pub fn partial_node(&self) -> Option<Node> {
        let g = self.state.inner.lock();
        if g.fatal.is_some() || matches!(g.done, Some(Done::Unreadable(_))) {
            return None;
        }
        let complete = g.settled() && matches!(g.done, Some(Done::Saved { .. }));
        let node = g.prefix_node();
        let empty = node.content.as_ref().is_none_or(Vec::is_empty);
        (complete || !empty).then_some(node)
    }
}

/// `scope.spawn` with a thread name (seen in `top -H`, `perf`, panics).
pub(super) fn spawn_named<'scope, 'env, T: Send + 'scope>(
    scope: &'scope Scope<'scope, 'env>,
    name: &str,
    f: impl FnOnce() -> T + Send + 'scope,
) {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn_scoped(scope, f)
        .unwrap_or_else(|e| panic!("cannot start thread {name}: {e}"));
}

struct ReadJob {
    path: PathBuf,
    source: Source,
    state: Arc<FileState>,
}

struct BlobJob {
    data: Chunk,
    index: usize,
    state: Arc<FileState>,
}

/// The tree builder's handle on the pipeline. Dropping it lets the
/// pipeline's threads finish.
pub struct FileSaver {
    jobs: Sender<ReadJob>,
}

impl FileSaver {
    /// Start the pipeline's threads in `scope`.
    pub fn start<'scope, 'env>(
        scope: &'scope Scope<'scope, 'env>,
        shared: Shared<'env>,
        cfg: PipelineConfig,
    ) -> FileSaver
    where
        'env: 'scope,
    {
        let readers = cfg.readers.max(1);
        let savers = cfg.savers.max(1);
        // A queued file is only a path and a node (readers open files), so
        // the queue can be long: the walk then rarely waits for a reader,
        // nor a reader for the walk.
        let threads = 2 * readers;
        let (jobs, job_rx) = bounded::<ReadJob>(FILE_QUEUE_PER_READER * threads);
        let (blob_tx, blob_rx) = bounded::<BlobJob>(2 * savers);
        let budget = Arc::new(ByteBudget::new(CHUNK_BYTES_PER_SAVER * savers));
        // Counted in files, not bytes.
        let large_reads = Arc::new(ByteBudget::new(readers));
        let blocks = BlockPool::new(BLOCKS_KEPT_PER_READER * readers);
        for _ in 0..savers {
            let rx = blob_rx.clone();
            let budget = Arc::clone(&budget);
            spawn_named(scope, "cairn-save", move || {
                save_chunks(shared, rx, &budget)
            });
        }
        for slot in 0..threads {
            let reader = Reader {
                shared,
                cfg,
                tx: blob_tx.clone(),
                budget: Arc::clone(&budget),
                large_reads: Arc::clone(&large_reads),
                blocks: Arc::clone(&blocks),
            };
            let rx = job_rx.clone();
            spawn_named(scope, "cairn-read", move || read_files(reader, slot, rx));
        }
        FileSaver { jobs }
    }

    /// Hand a file to the readers, waiting up to `timeout` for room in the
    /// queue; gives the job back (boxed) if there was none.
    pub fn submit(
        &self,
        job: FileJob,
        timeout: Duration,
    ) -> std::result::Result<PendingFile, Box<FileJob>> {
        let FileJob { path, source, node } = job;
        let state = Arc::new(FileState::new(node));
        let job = ReadJob {
            path,
            source,
            state: state.clone(),
        };
        match self.jobs.send_timeout(job, timeout) {
            Ok(()) => Ok(PendingFile { state }),
            Err(SendTimeoutError::Timeout(job)) => {
                let node = state.inner.lock().node.clone();
                Err(Box::new(FileJob {
                    path: job.path,
                    source: job.source,
                    node,
                }))
            }
            Err(SendTimeoutError::Disconnected(_)) => {
                state.fail(Error::InvalidArgument("the file readers stopped".into()));
                Ok(PendingFile { state })
            }
        }
    }
}

/// A saver thread: store chunks until every reader is gone.
fn save_chunks(shared: Shared<'_>, rx: Receiver<BlobJob>, budget: &ByteBudget) {
    for job in rx.iter() {
        let len = job.data.len();
        save_chunk(shared, job);
        budget.release(len);
    }
}

/// Store one chunk and record its id in its file's state.
fn save_chunk(shared: Shared<'_>, job: BlobJob) {
    let len = job.data.len();
    let result = shared.blobs.save(BlobType::Data, &job.data);
    drop(job.data);
    if result.is_ok() {
        shared.progress.add_bytes_done(len as u64);
    }
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    job.state.complete(job.index, result, len);
}

/// Bytes of chunks queued for or being saved by the savers, per saver
/// (see [`ByteBudget`]): room for a few average chunks each.
const CHUNK_BYTES_PER_SAVER: usize = 6 << 20;

/// Unused read blocks (10 MiB each) kept for reuse, per reader: a reader
/// fills one while the savers still hold chunks of one or two earlier ones.
const BLOCKS_KEPT_PER_READER: usize = 2;

/// Files queued for the readers, per reader.
const FILE_QUEUE_PER_READER: usize = 32;

/// Chunks shorter than this are saved by the reader itself: for small
/// files, handing each chunk to another thread costs more (queueing,
/// wake-ups, cache misses) than hashing and encrypting it.
const INLINE_CHUNK: usize = 64 * 1024;

/// A reader thread: read and chunk files until the builder is done.
fn read_files(reader: Reader<'_>, slot: usize, rx: Receiver<ReadJob>) {
    let shared = reader.shared;
    for job in rx.iter() {
        if shared.stopping() {
            job.state.finish(Done::Cancelled);
            continue;
        }
        shared.progress.set_current(slot, Some(job.path.clone()));
        let done = match job.source {
            Source::Path { resume } => reader.open_and_read(&job.path, resume, &job.state),
            Source::Stream(stream) => match reader.chunk(stream, None, &job.state) {
                Ok(Read_::Eof(n)) => Done::Saved {
                    bytes_read: n,
                    changed: false,
                },
                Ok(Read_::Stopped) => Done::Cancelled,
                Err(e) => Done::Unreadable(Error::io(format!("read {}", job.path.display()), e)),
            },
        };
        shared.progress.set_current(slot, None);
        if matches!(done, Done::Saved { .. }) {
            shared.progress.file_done();
        }
        job.state.finish(done);
    }
}

/// One unit of a [`ByteBudget`], given back when dropped.
struct Permit<'a>(&'a ByteBudget);

impl<'a> Permit<'a> {
    fn take(budget: &'a ByteBudget) -> Self {
        budget.acquire(1);
        Permit(budget)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.release(1);
    }
}

/// How one pass over a file ended.
enum Read_ {
    Eof(u64),
    Stopped,
}

struct Reader<'a> {
    shared: Shared<'a>,
    cfg: PipelineConfig,
    tx: Sender<BlobJob>,
    budget: Arc<ByteBudget>,
    /// Files of [`SMALL_INPUT`] bytes or more being read, at most
    /// `cfg.readers`.
    large_reads: Arc<ByteBudget>,
    /// Read buffers, shared by the readers and returned by the savers as
    /// they drop the chunks.
    blocks: Arc<BlockPool>,
}

impl Reader<'_> {
    /// Open the regular file at `path`, fill in its node, and read it.
    fn open_and_read(&self, path: &Path, resume: Option<Resume>, state: &Arc<FileState>) -> Done {
        let io = |what: &str, e| Error::io(format!("{what} {}", path.display()), e);
        // O_NOFOLLOW: the file may have been replaced by a symlink since
        // lstat; O_NONBLOCK: or by a fifo, which must not hang the backup.
        let file = match File::options()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
        {
            Ok(file) => file,
            Err(e) => return Done::Unreadable(io("open", e)),
        };
        let opened = match file.metadata() {
            Ok(meta) if meta.is_file() => meta,
            Ok(_) => {
                return Done::Unreadable(Error::InvalidPath {
                    path: path.to_path_buf(),
                    reason: "file changed type, refusing to archive".into(),
                })
            }
            Err(e) => return Done::Unreadable(io("fstat", e)),
        };
        let name = state.inner.lock().node.name.clone();
        match self.shared.nodes.node(path, name, &opened) {
            Ok(node) => state.inner.lock().node = node,
            Err(e) => return Done::Unreadable(e),
        }
        self.read_file(path, file, opened, resume, state)
    }

    fn read_file(
        &self,
        path: &Path,
        mut file: File,
        opened: Metadata,
        resume: Option<Resume>,
        state: &Arc<FileState>,
    ) -> Done {
        let io = |what: &str, e| Error::io(format!("{what} {}", path.display()), e);
        // The state before reading: any change since the file was opened
        // shows in the `fstat` after reading.
        let mut before = opened;
        // Where reading starts.
        let mut offset = 0;
        if let Some(resume) = resume.filter(|r| r.offset <= before.size()) {
            if let Err(e) = file.seek(SeekFrom::Start(resume.offset)) {
                return Done::Unreadable(io("seek", e));
            }
            self.shared.progress.add_bytes_done(resume.offset);
            offset = resume.offset;
            state.set_base(resume.content, resume.offset);
        }
        let large = before.size().saturating_sub(offset) >= SMALL_INPUT as u64;
        let _large_read = large.then(|| Permit::take(&self.large_reads));
        let mut bytes_read = 0;
        let mut attempt = 0;
        loop {
            let left = before.size().saturating_sub(offset);
            match self.chunk(&mut file, Some(left), state) {
                Ok(Read_::Eof(n)) => bytes_read += n,
                Ok(Read_::Stopped) => return Done::Cancelled,
                Err(e) => return Done::Unreadable(io("read", e)),
            }
            let after = match file.metadata() {
                Ok(meta) => meta,
                Err(e) => return Done::Unreadable(io("fstat", e)),
            };
            if !changed(&before, &after) {
                return Done::Saved {
                    bytes_read,
                    changed: false,
                };
            }
            if attempt >= self.cfg.retries {
                return Done::Saved {
                    bytes_read,
                    changed: true,
                };
            }
            attempt += 1;
            log::info!(
                "{} changed while it was read, reading it again",
                path.display()
            );
            state.restart(|node| self.shared.nodes.refresh_file(node, &after));
            if let Err(e) = file.seek(SeekFrom::Start(0)) {
                return Done::Unreadable(io("seek", e));
            }
            offset = 0;
            before = after;
        }
    }

    /// Chunk `reader` to its end, handing the chunks to the savers.
    /// `size` is how many bytes the reader is expected to yield, if known.
    fn chunk(
        &self,
        reader: impl Read,
        size: Option<u64>,
        state: &Arc<FileState>,
    ) -> std::io::Result<Read_> {
        let mut read = 0u64;
        let counting = Counting {
            inner: reader,
            progress: self.shared.progress,
            count: &mut read,
        };
        let mut chunker =
            Chunker::with_size_hint(self.cfg.chunker, counting, size, Arc::clone(&self.blocks));
        loop {
            if self.shared.stopping() {
                return Ok(Read_::Stopped);
            }
            let Some(data) = chunker.next_chunk()? else {
                break;
            };
            let index = state.dispatch();
            let job = BlobJob {
                data,
                index,
                state: state.clone(),
            };
            if job.data.len() < INLINE_CHUNK {
                save_chunk(self.shared, job);
                continue;
            }
            let len = job.data.len();
            self.budget.acquire(len);
            if let Err(e) = self.tx.send(job) {
                // No saver left (they only stop when every reader has):
                // give the position back and stop.
                self.budget.release(len);
                e.0.state.complete(index, Err(Error::Interrupted), 0);
                return Ok(Read_::Stopped);
            }
        }
        Ok(Read_::Eof(read))
    }
}

/// True if a file's size, mtime or ctime differ between two `fstat`s.
fn changed(a: &Metadata, b: &Metadata) -> bool {
    (
        a.size(),
        a.mtime(),
        a.mtime_nsec(),
        a.ctime(),
        a.ctime_nsec(),
    ) != (
        b.size(),
        b.mtime(),
        b.mtime_nsec(),
        b.ctime(),
        b.ctime_nsec(),
    )
}

/// Counts the bytes read, for the file and for the progress.
struct Counting<'a, R> {
    inner: R,
    progress: &'a Progress,
    count: &'a mut u64,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        *self.count += n as u64;
        self.progress.add_bytes_read(n as u64);
        Ok(n)
    }
}
