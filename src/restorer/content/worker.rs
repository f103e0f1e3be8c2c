//! The content stage's threads: fetchers ([`fetch`]) read the schedule's
//! ranged reads in order and queue them; workers ([`run`]) take the next
//! queued read, decrypt, verify and decompress each blob in it once, and
//! write it with positioned writes at every place it goes.
//!
//! A blob is written only after [`BlobDecoder`] checked its MAC, length
//! and hash. A blob that fails is tried from the index's other copies; if all
//! fail, every file needing it is marked failed (reported once per file)
//! and its range is left unwritten. Per file, a countdown of targets left
//! tells which worker writes the last one: that worker finishes the file
//! through the descriptor it holds — the size of a sparse file, then
//! owner, extended attributes, mode and times (see `metadata`), which the
//! metadata stage then skips — and counts it.
//!
//! Blobs are verified and decrypted in place in the ranged read's buffer
//! (a blob's range is decrypted only if its MAC is right; blobs of one run
//! never share bytes in a sound pack, and one that does in a hostile pack
//! just fails its MAC).
//!
//! Memory per worker: one ranged read (at most `MAX_RUN`, or one blob if
//! larger), one decompressed blob, and a few open files ([`OPEN_FILES`]);
//! per fetcher and queue place, one ranged read.

use std::fs::File;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crossbeam_channel::{Receiver, Sender};

use crate::backend::FileType;
use crate::decode::{BlobDecoder, Plain};
use crate::repository::Repository;

use super::super::fsops::{open_dir_beneath, Access, DirHandle};
use super::super::metadata::{apply_to_file, Owners};
use super::super::options::{Progress, RestoreOptions};
use super::super::plan::Plan;
use super::schedule::{BlobJob, PackJob, Schedule};
use super::write::{all_zero, write_at, Fill};

/// Files a worker keeps open between writes.
const OPEN_FILES: usize = 16;

/// What every worker shares.
pub(super) struct Shared<'a> {
    pub repo: &'a Repository,
    pub plan: &'a Plan,
    pub root: &'a DirHandle,
    pub schedule: &'a Schedule,
    pub next: AtomicUsize,
    /// Per file plan: targets still to write.
    pub remaining: Vec<AtomicUsize>,
    /// Per file plan: something failed.
    pub failed: Vec<AtomicBool>,
    /// Per file plan: how blobs are written into it.
    pub fill: Vec<Fill>,
    /// Per file plan: the file is created on first open.
    pub lazy: &'a [bool],
    /// Per file plan: finished with its metadata.
    pub finished: Vec<AtomicBool>,
    /// Bytes written.
    pub written: AtomicU64,
    pub progress: &'a Progress,
    pub opts: &'a RestoreOptions,
    pub as_root: bool,
}

/// A file that could not be completed, for the reporting thread.
pub(super) struct Failure {
    pub file: usize,
    pub message: String,
}

impl Shared<'_> {
    /// Mark a file failed; the first failure of a file is reported.
    fn fail(&self, file: usize, message: String, events: &Sender<Failure>) {
        if !self.failed[file].swap(true, Ordering::AcqRel) {
            let _ = events.send(Failure { file, message });
        }
    }

    /// Count one target of `file` as done; the last one finishes the file.
    fn target_done(&self, file: usize, open: &mut OpenFiles, events: &Sender<Failure>) {
        if self.remaining[file].fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        if !self.failed[file].load(Ordering::Acquire) {
            if let Err(message) = self.finish(file, open) {
                self.fail(file, message, events);
            }
        }
        open.close(file);
    }

    /// Finish a completely written file: its size if sparse, then its
    /// metadata.
    fn finish(&self, file: usize, open: &mut OpenFiles) -> std::result::Result<(), String> {
        let size = self.plan.files[file].size();
        let meta = &self.plan.items[self.plan.files[file].item].meta;
        let ids = open.owners.ids(self.plan, meta);
        let handle = open.get(self, file)?;
        if self.fill[file] == Fill::Sparse {
            handle
                .set_len(size)
                .map_err(|e| format!("setting its size: {e}"))?;
        }
        let failures = apply_to_file(handle.as_fd(), meta, ids, self.opts, self.as_root);
        if !failures.is_empty() {
            return Err(format!("restoring metadata: {}", failures.join("; ")));
        }
        self.finished[file].store(true, Ordering::Release);
        self.progress.add_restored_file();
        Ok(())
    }
}

/// A ranged read's bytes, passed from a fetcher to a worker.
pub(super) struct Fetched {
    /// The read in [`Schedule::reads`].
    pub read: usize,
    pub data: crate::error::Result<Vec<u8>>,
}

/// Fetch ranged reads in schedule order until there are none left (or no
/// worker takes them any more).
pub(super) fn fetch(shared: &Shared<'_>, out: &Sender<Fetched>) {
    let schedule = shared.schedule;
    loop {
        let k = shared.next.fetch_add(1, Ordering::Relaxed);
        let Some(range) = schedule.reads.get(k) else {
            break;
        };
        let Some(job) = schedule.jobs.get(range.job) else {
            continue;
        };
        let data = shared.repo.backend().read_range(
            FileType::Pack,
            &job.pack.to_hex(),
            range.start,
            range.end - range.start,
        );
        if out.send(Fetched { read: k, data }).is_err() {
            break;
        }
    }
}

/// Decode and write fetched reads until the fetchers are done.
pub(super) fn run(shared: &Shared<'_>, reads: &Receiver<Fetched>, events: &Sender<Failure>) {
    let mut open = OpenFiles {
        files: Vec::new(),
        dir: None,
        owners: Owners::new(shared.opts.ownership_by_name),
    };
    let mut decoder = BlobDecoder::new();
    let schedule = shared.schedule;
    for fetched in reads {
        let Some(range) = schedule.reads.get(fetched.read) else {
            continue;
        };
        let Some(job) = schedule.jobs.get(range.job) else {
            continue;
        };
        let mut read = fetched.data;
        for blob in schedule.read_blobs(range) {
            let decoded = match &mut read {
                Ok(buf) => decode(&mut decoder, shared.repo, job, blob, buf, range.start),
                Err(e) => Err(e.to_string()),
            };
            match decoded {
                Ok(plain) => write_targets(shared, blob, plain, &mut open, events),
                Err(e) => match other_copy(shared.repo, job, blob) {
                    Some(plain) => {
                        write_targets(shared, blob, Plain::Whole(&plain), &mut open, events)
                    }
                    None => {
                        for t in schedule.targets(blob) {
                            shared.fail(t.file, format!("content incomplete: {e}"), events);
                            shared.target_done(t.file, &mut open, events);
                        }
                    }
                },
            }
        }
    }
}

/// Verify and decrypt one blob in place in a run read from `start`.
fn decode<'a>(
    decoder: &'a mut BlobDecoder,
    repo: &Repository,
    job: &PackJob,
    blob: &BlobJob,
    run: &'a mut [u8],
    start: u64,
) -> std::result::Result<Plain<'a>, String> {
    let at = usize::try_from(u64::from(blob.stored.offset) - start).map_err(|e| e.to_string())?;
    let encrypted = run
        .get_mut(at..at + blob.stored.length as usize)
        .ok_or_else(|| format!("blob {} lies outside its read", blob.id.short()))?;
    decoder
        .decode(
            repo.key(),
            &job.pack,
            &blob.entry(job.pack).to_pack_blob(&blob.handle()),
            encrypted,
        )
        .map_err(|e| e.to_string())
}

/// The blob from another copy the index knows of, if one is good.
fn other_copy(repo: &Repository, job: &PackJob, blob: &BlobJob) -> Option<Vec<u8>> {
    let handle = blob.handle();
    let tried = blob.entry(job.pack);
    let copies = repo.index().get_all(&handle);
    copies
        .iter()
        .filter(|c| **c != tried)
        .find_map(|c| repo.load_blob_from(&handle, c).ok())
}

/// Write a verified blob to all its targets.
fn write_targets(
    shared: &Shared<'_>,
    blob: &BlobJob,
    plain: Plain<'_>,
    open: &mut OpenFiles,
    events: &Sender<Failure>,
) {
    let n = plain.len() as u64;
    let mut zero = None;
    for t in shared.schedule.targets(blob) {
        if !shared.failed[t.file].load(Ordering::Acquire) {
            let written = open.get(shared, t.file).and_then(|file| {
                let fill = shared.fill[t.file];
                let zero = fill == Fill::New && *zero.get_or_insert_with(|| all_zero(plain));
                write_at(file, plain, t.offset, fill, zero)
                    .map_err(|e| format!("writing at offset {}: {e}", t.offset))
            });
            match written {
                Ok(()) => {
                    shared.written.fetch_add(n, Ordering::Relaxed);
                    shared.progress.add_bytes(n);
                }
                Err(message) => shared.fail(t.file, message, events),
            }
        }
        shared.target_done(t.file, open, events);
    }
}

/// A few open files, most recently used last, the directory of the last
/// file opened (files of one directory usually come together: one
/// single-name `openat` each instead of a path walk), and the owner
/// lookups of this worker.
struct OpenFiles {
    files: Vec<(usize, File)>,
    /// The last directory files were opened in, by its item (`None`: the
    /// target).
    dir: Option<(Option<usize>, DirHandle)>,
    owners: Owners,
}

impl OpenFiles {
    /// Close `file` if it is open.
    fn close(&mut self, file: usize) {
        self.files.retain(|(k, _)| *k != file);
    }

    fn get(&mut self, shared: &Shared<'_>, file: usize) -> std::result::Result<&File, String> {
        if let Some(at) = self.files.iter().position(|(k, _)| *k == file) {
            let entry = self.files.remove(at);
            self.files.push(entry);
        } else {
            let item = &shared.plan.items[shared.plan.files[file].item];
            let access = if shared.lazy[file] {
                Access::Create
            } else {
                Access::Write
            };
            let opened = self
                .dir(shared, item.parent)
                .and_then(|dir| dir.open_in(item.name(), access))
                .map_err(|e| format!("cannot open file to write its content: {e}"))?;
            if self.files.len() >= OPEN_FILES {
                self.files.remove(0);
            }
            self.files.push((file, opened));
        }
        self.files
            .last()
            .map(|(_, f)| f)
            .ok_or_else(|| "no open file".to_string())
    }

    /// The directory item `parent` (`None`: the target), opened below the
    /// target without following symlinks.
    fn dir(&mut self, shared: &Shared<'_>, parent: Option<usize>) -> std::io::Result<&DirHandle> {
        if !matches!(&self.dir, Some((cached, _)) if *cached == parent) {
            let names = parent.map_or_else(Vec::new, |p| shared.plan.path(p));
            self.dir = Some((parent, open_dir_beneath(shared.root, &names)?));
        }
        match &self.dir {
            Some((_, dir)) => Ok(dir),
            None => Err(std::io::Error::other("no open directory")),
        }
    }
}
