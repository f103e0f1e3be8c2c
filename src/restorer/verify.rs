//! Checking restored files against the plan (`restore --verify`): every
//! planned file must be a regular file (not a symlink) of the planned size
//! whose bytes at each blob slot hash to that blob's id.
//!
//! Files are read in bounded chunks through a streaming hash, so a hostile
//! index claiming huge blob lengths cannot cause a large allocation.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

use super::fsops::{DirCache, DirHandle};
use super::plan::{BlobSlot, Plan};
use super::{Problem, Reporter};

/// Bytes read per call while verifying.
const CHUNK: usize = 1 << 20;

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

/// Verify every planned file below `target`; mismatches go to `report`.
pub fn verify(plan: &Plan, target: &Path, report: &mut dyn FnMut(Problem)) -> Result<VerifyStats> {
    let root = DirHandle::open_target(target, false)
        .map_err(|e| Error::io(format!("target {}", target.display()), e))?;
    let mut cache = DirCache::new(root);
    let mut reporter = Reporter::new(report);
    let mut stats = VerifyStats::default();
    let mut buf = Vec::new();
    for file_plan in &plan.files {
        let item = &plan.items[file_plan.item];
        stats.files += 1;
        let result = cache
            .dir(plan, item.parent)
            .and_then(|dir| dir.open_file(item.name(), false))
            .map_err(|e| format!("cannot open: {e}"))
            .and_then(|file| {
                let size = file.metadata().map_err(|e| e.to_string())?.len();
                if size != file_plan.size() {
                    return Err(format!("size is {size}, expected {}", file_plan.size()));
                }
                for slot in &file_plan.blobs {
                    stats.bytes += check_slot(&file, slot, &mut buf)?;
                }
                Ok(())
            });
        match result {
            Ok(()) => stats.files_ok += 1,
            Err(message) => reporter.report(
                plan.location(file_plan.item),
                format!("verify failed: {message}"),
            ),
        }
    }
    Ok(stats)
}

/// Hash the slot's range of the file and compare with the blob id.
fn check_slot(file: &File, slot: &BlobSlot, buf: &mut Vec<u8>) -> std::result::Result<u64, String> {
    let mut hasher = Sha256::new();
    let mut done = 0u64;
    let length = u64::from(slot.length);
    while done < length {
        let n = usize::try_from(length - done).map_or(CHUNK, |left| left.min(CHUNK));
        buf.resize(n, 0);
        file.read_exact_at(&mut buf[..n], slot.offset + done)
            .map_err(|e| format!("reading at offset {}: {e}", slot.offset + done))?;
        hasher.update(&buf[..n]);
        done += n as u64;
    }
    let actual: [u8; 32] = hasher.finalize().into();
    if actual != slot.id.0 .0 {
        return Err(format!(
            "content at offset {} does not match blob {}",
            slot.offset,
            slot.id.short()
        ));
    }
    Ok(length)
}
