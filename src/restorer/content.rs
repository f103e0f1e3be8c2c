//! Stage 3 of a restore: fill the files created empty by stage 2.
//!
//! This straightforward version handles one file at a time, fetching its
//! blobs one by one with [`Repository::load_blob`] (which checks MAC,
//! length and hash) and writing each at its planned offset. Its contract,
//! which a pack-centric, parallel replacement must keep:
//! - input: the [`Plan`] and which items stage 2 created;
//! - a blob is written only after its plaintext was verified against its id
//!   and its planned length; a failed blob leaves its range unwritten;
//! - files are opened by name in their directory without following
//!   symlinks, and must be regular files;
//! - output: per [`FilePlan`], whether every blob was written; the bytes
//!   written; one reported problem per incomplete file.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::blob::BlobType;
use crate::error::{Error, Result};
use crate::repository::Repository;

use super::fsops::DirCache;
use super::plan::{BlobSlot, FilePlan, Plan};
use super::Reporter;

/// What stage 3 achieved.
pub(crate) struct Written {
    /// Per file plan: all of its blobs were written.
    pub complete: Vec<bool>,
    /// Bytes written in total.
    pub bytes: u64,
}

/// Write every created file's content.
pub(crate) fn write_contents(
    repo: &Repository,
    plan: &Plan,
    cache: &mut DirCache,
    created: &[bool],
    reporter: &mut Reporter,
) -> Written {
    let mut written = Written {
        complete: vec![false; plan.files.len()],
        bytes: 0,
    };
    for (k, file_plan) in plan.files.iter().enumerate() {
        if !created[file_plan.item] {
            continue;
        }
        let item = &plan.items[file_plan.item];
        let file = match cache
            .dir(plan, item.parent)
            .and_then(|dir| dir.open_file(item.name(), true))
        {
            Ok(file) => file,
            Err(e) => {
                reporter.report(
                    plan.location(file_plan.item),
                    format!("cannot open file to write its content: {e}"),
                );
                continue;
            }
        };
        match write_file(repo, &file, file_plan, &mut written.bytes) {
            Ok(()) => written.complete[k] = true,
            Err(message) => reporter.report(plan.location(file_plan.item), message),
        }
    }
    written
}

/// Write all blobs of one file; on failure, a message describing what is
/// missing. A broken blob does not stop the others; a write error does.
fn write_file(
    repo: &Repository,
    file: &File,
    file_plan: &FilePlan,
    bytes: &mut u64,
) -> std::result::Result<(), String> {
    let mut failed = 0usize;
    let mut first_error = None;
    for slot in &file_plan.blobs {
        match fetch(repo, slot) {
            Ok(data) => {
                file.write_all_at(&data, slot.offset)
                    .map_err(|e| format!("writing at offset {}: {e}", slot.offset))?;
                *bytes += data.len() as u64;
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        None => Ok(()),
        Some(e) => Err(format!(
            "content incomplete: {failed} of {} blobs not restored (first: {e}); \
             their ranges are left empty and the file's metadata is not restored",
            file_plan.blobs.len()
        )),
    }
}

/// Load and check one blob.
fn fetch(repo: &Repository, slot: &BlobSlot) -> Result<Vec<u8>> {
    let data = repo.load_blob(BlobType::Data, &slot.id)?;
    if data.len() != slot.length as usize {
        return Err(Error::corrupt(
            format!("data blob {}", slot.id),
            format!("{} bytes, the index says {}", data.len(), slot.length),
        ));
    }
    Ok(data)
}
