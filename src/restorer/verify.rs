//! Checking files on disk against the plan: for `restore --verify` after a
//! restore ([`verify`]), and for deciding which parts of an existing file
//! a restore must rewrite ([`compare`]).
//!
//! A file matches when it is a regular file (never a symlink) of the
//! planned size whose bytes at each blob slot hash to that blob's id.
//! Files are read in bounded chunks through a streaming hash, so a hostile
//! index claiming huge blob lengths cannot cause a large allocation.
//! [`verify`] checks files on several threads; each file is opened below
//! the target with [`open_beneath`].

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

use super::fsops::{open_beneath, Access, DirHandle};
use super::plan::{BlobSlot, FilePlan, Plan};
use super::Problem;

/// Bytes read per call while hashing.
const CHUNK: usize = 1 << 20;

/// How an existing file compares with its plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Comparison {
    /// The file has exactly the planned size.
    pub size_matches: bool,
    /// Indices of the slots whose bytes differ (or lie beyond the end).
    pub mismatched: Vec<u32>,
}

impl Comparison {
    /// True if the file is already exactly right.
    pub fn matches(&self) -> bool {
        self.size_matches && self.mismatched.is_empty()
    }
}

/// Compare an open file with its plan, slot by slot.
pub(crate) fn compare(
    file: &File,
    plan: &Plan,
    file_plan: &FilePlan,
    buf: &mut Vec<u8>,
) -> io::Result<Comparison> {
    let size = file.metadata()?.len();
    let mut result = Comparison {
        size_matches: size == file_plan.size(),
        mismatched: Vec::new(),
    };
    for (i, slot) in plan.blobs(file_plan).iter().enumerate() {
        let index = u32::try_from(i).map_err(io::Error::other)?;
        let end = slot.offset + u64::from(slot.length);
        if end > size || !slot_matches(file, slot, buf)? {
            result.mismatched.push(index);
        }
    }
    Ok(result)
}

/// Whether the slot's range of the file hashes to the blob id.
fn slot_matches(file: &File, slot: &BlobSlot, buf: &mut Vec<u8>) -> io::Result<bool> {
    let mut hasher = Sha256::new();
    let mut done = 0u64;
    let length = u64::from(slot.length);
    while done < length {
        let n = usize::try_from(length - done).map_or(CHUNK, |left| left.min(CHUNK));
        buf.resize(n, 0);
        match file.read_exact_at(&mut buf[..n], slot.offset + done) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(e) => return Err(e),
        }
        hasher.update(&buf[..n]);
        done += n as u64;
    }
    let actual: [u8; 32] = hasher.finalize().into();
    Ok(actual == slot.id.0 .0)
}

/// What a verification checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifyStats {
    /// Files checked.
    pub files: u64,
    /// Files that matched the plan exactly.
    pub files_ok: u64,
    /// Bytes read.
    pub bytes: u64,
}

/// Verify the planned files below `target` (with `only`, just the files
/// whose entry is true, indexed like `plan.files`); mismatches go to
/// `report`.
pub fn verify(
    plan: &Plan,
    target: &Path,
    only: Option<&[bool]>,
    report: &mut dyn FnMut(Problem),
) -> Result<VerifyStats> {
    let root = DirHandle::open_target(target, false)
        .map_err(|e| Error::io(format!("target {}", target.display()), e))?;
    let next = AtomicUsize::new(0);
    let (files, files_ok, bytes) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
    let (tx, rx) = crossbeam_channel::unbounded::<Problem>();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let tx = tx.clone();
            let (root, next, files, files_ok, bytes) = (&root, &next, &files, &files_ok, &bytes);
            scope.spawn(move || {
                let mut buf = Vec::new();
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(file_plan) = plan.files.get(k) else {
                        break;
                    };
                    if only.is_some_and(|only| !only.get(k).copied().unwrap_or(false)) {
                        continue;
                    }
                    files.fetch_add(1, Ordering::Relaxed);
                    match check(root, plan, file_plan, &mut buf) {
                        Ok(()) => {
                            files_ok.fetch_add(1, Ordering::Relaxed);
                            bytes.fetch_add(file_plan.size(), Ordering::Relaxed);
                        }
                        Err(message) => {
                            let _ = tx.send(Problem {
                                location: plan.location(file_plan.item),
                                message: format!("verify failed: {message}"),
                            });
                        }
                    }
                }
            });
        }
        drop(tx);
        for problem in rx {
            report(problem);
        }
    });
    Ok(VerifyStats {
        files: files.into_inner(),
        files_ok: files_ok.into_inner(),
        bytes: bytes.into_inner(),
    })
}

/// Check one file; a one-line reason if it does not match.
fn check(
    root: &DirHandle,
    plan: &Plan,
    file_plan: &FilePlan,
    buf: &mut Vec<u8>,
) -> std::result::Result<(), String> {
    let file = open_beneath(root, &plan.path(file_plan.item), Access::Read)
        .map_err(|e| format!("cannot open: {e}"))?;
    let found = compare(&file, plan, file_plan, buf).map_err(|e| format!("reading: {e}"))?;
    if !found.size_matches {
        let size = file.metadata().map_or(0, |m| m.len());
        return Err(format!("size is {size}, expected {}", file_plan.size()));
    }
    match found.mismatched.first() {
        None => Ok(()),
        Some(&i) => {
            let slot = plan
                .blobs(file_plan)
                .get(i as usize)
                .ok_or("no such slot")?;
            Err(format!(
                "content at offset {} does not match blob {}",
                slot.offset,
                slot.id.short()
            ))
        }
    }
}
