//! Reading packs completely (`check --read-data`).
//!
//! For every selected pack the whole file is read, in order, exactly once:
//! - its SHA-256 must equal its name;
//! - every blob the index places in it must decrypt, decompress and hash to
//!   its id;
//! - the index must list its blobs back to back from offset 0;
//! - its header must authenticate and parse, and list exactly the blobs,
//!   offsets and lengths the index has for it.
//!
//! Memory stays bounded: a pack is streamed in windows of about
//! [`READ_WINDOW`] bytes (a single blob larger than that is read whole),
//! each worker holds one window, and the index entries of the selected
//! packs are gathered in rounds of about [`BLOBS_PER_ROUND`] entries rather
//! than all at once. Nothing is written.

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};

use crate::backend::FileType;
use crate::error::{Error, Result};
use crate::id::{Id, PackId};
use crate::index::MasterIndex;
use crate::pack::{self, PackBlob};
use crate::repository::Repository;

use super::finding::{Finding, PackProblem};
use super::{parallel, Recorder};

/// Bytes read from a pack per request (more only for a larger blob).
pub const READ_WINDOW: u64 = 8 << 20;

/// Index entries gathered per round of packs.
pub const BLOBS_PER_ROUND: usize = 1 << 20;

/// Read and verify `packs` (id and file size), recording every problem.
pub(super) fn read_packs(
    repo: &Repository,
    index: &MasterIndex,
    packs: Vec<(PackId, u64)>,
    threads: usize,
    rec: &mut Recorder<'_>,
) {
    // Split the packs into rounds by the first byte of their id, so that
    // each round needs one pass over the index and a bounded amount of
    // memory for its entries.
    let rounds = index.len().div_ceil(BLOBS_PER_ROUND).clamp(1, 256);
    let round_of = |pack: &PackId| usize::from(pack.0 .0[0]) * rounds / 256;
    for round in 0..rounds {
        let mut jobs: Vec<(PackId, u64, Vec<PackBlob>)> = packs
            .iter()
            .filter(|(id, _)| round_of(id) == round)
            .map(|&(id, size)| (id, size, Vec::new()))
            .collect();
        if jobs.is_empty() {
            continue;
        }
        let position: HashMap<PackId, usize> =
            jobs.iter().enumerate().map(|(i, j)| (j.0, i)).collect();
        for (handle, entry) in index.iter() {
            if let Some(&i) = position.get(&entry.pack) {
                jobs[i].2.push(entry.to_pack_blob(&handle));
            }
        }
        parallel::map(
            threads,
            jobs,
            |(pack, size, blobs)| (pack, check_pack(repo, &pack, size, blobs)),
            |(pack, problems)| {
                for problem in problems {
                    rec.add(Finding::Pack { pack, problem });
                }
            },
        );
    }
}

/// Read pack `pack` of `size` bytes and check it against `blobs`, its
/// entries in the index.
fn check_pack(
    repo: &Repository,
    pack: &PackId,
    size: u64,
    mut blobs: Vec<PackBlob>,
) -> Vec<PackProblem> {
    let mut problems = Vec::new();
    blobs.sort_by_key(|b| (b.offset, b.length));
    let mut expected_offset = 0;
    for b in &blobs {
        if u64::from(b.offset) != expected_offset {
            problems.push(PackProblem::IndexNotContiguous);
            break;
        }
        expected_offset = b.end();
    }

    let name = pack.to_hex();
    let read = |offset: u64, length: u64| -> Result<Vec<u8>> {
        let data = repo
            .backend()
            .read_range(FileType::Pack, &name, offset, length)?;
        if data.len() as u64 != length {
            return Err(Error::corrupt(
                format!("pack {pack}"),
                format!(
                    "short read at offset {offset}: got {} of {length} bytes",
                    data.len()
                ),
            ));
        }
        Ok(data)
    };

    let mut hasher = Sha256::new();
    // Bytes [0, pos) have been hashed.
    let mut pos: u64 = 0;
    let mut i = 0;
    while i < blobs.len() {
        let first = blobs[i];
        if first.end() > size {
            problems.push(PackProblem::BlobBeyondEnd {
                blob: first.handle(),
                end: first.end(),
                size,
            });
            i += 1;
            continue;
        }
        if u64::from(first.offset) < pos {
            // Overlaps what was hashed already (a damaged index): verify it
            // on its own, outside the stream.
            match read(u64::from(first.offset), u64::from(first.length)) {
                Ok(data) => verify_blob(repo, pack, &first, &data, &mut problems),
                Err(e) => problems.push(PackProblem::Unreadable(e)),
            }
            i += 1;
            continue;
        }
        // A window: this blob and the following ones that start after it,
        // lie within the file and keep the window small.
        let mut end = first.end();
        let mut j = i + 1;
        while let Some(b) = blobs.get(j) {
            if u64::from(b.offset) < end || b.end() > size || b.end() - pos > READ_WINDOW {
                break;
            }
            end = b.end();
            j += 1;
        }
        let window = match read(pos, end - pos) {
            Ok(w) => w,
            Err(e) => {
                problems.push(PackProblem::Unreadable(e));
                return problems;
            }
        };
        hasher.update(&window);
        for b in &blobs[i..j] {
            let range = usize::try_from(u64::from(b.offset) - pos)
                .ok()
                .zip(usize::try_from(b.end() - pos).ok())
                .and_then(|(start, stop)| window.get(start..stop));
            match range {
                Some(data) => verify_blob(repo, pack, b, data, &mut problems),
                // Unreachable by construction; reported rather than trusted.
                None => problems.push(PackProblem::BlobBeyondEnd {
                    blob: b.handle(),
                    end: b.end(),
                    size,
                }),
            }
        }
        pos = end;
        i = j;
    }
    // The rest: the header, and whatever the index does not account for.
    while pos < size {
        let length = (size - pos).min(READ_WINDOW);
        match read(pos, length) {
            Ok(data) => hasher.update(&data),
            Err(e) => {
                problems.push(PackProblem::Unreadable(e));
                return problems;
            }
        }
        pos += length;
    }
    let actual = Id(hasher.finalize().into());
    if actual != pack.0 {
        problems.push(PackProblem::HashMismatch { actual });
    }

    match repo.load_pack_header(pack, size) {
        Err(e) => problems.push(PackProblem::HeaderUnreadable(e)),
        Ok(header) => {
            let indexed: HashSet<&PackBlob> = blobs.iter().collect();
            let listed: HashSet<&PackBlob> = header.iter().collect();
            for b in header.iter().filter(|b| !indexed.contains(b)) {
                problems.push(PackProblem::HeaderBlobNotInIndex {
                    blob: b.handle(),
                    offset: b.offset,
                });
            }
            for b in blobs.iter().filter(|b| !listed.contains(b)) {
                problems.push(PackProblem::IndexBlobNotInHeader {
                    blob: b.handle(),
                    offset: b.offset,
                });
            }
        }
    }
    problems
}

fn verify_blob(
    repo: &Repository,
    pack: &PackId,
    blob: &PackBlob,
    encrypted: &[u8],
    problems: &mut Vec<PackProblem>,
) {
    if let Err(error) = pack::decode_blob(repo.key(), pack, blob, encrypted) {
        problems.push(PackProblem::Blob {
            blob: blob.handle(),
            error,
        });
    }
}
