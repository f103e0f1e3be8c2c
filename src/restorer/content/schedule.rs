//! Turning "which blobs go where in which file" into per-pack work.
//!
//! Every blob slot to write is looked up in the index and filed under the
//! pack that holds the blob. Within a pack, each blob appears once with
//! every place it must be written (a blob shared by many files, or
//! repeated within one, is fetched and decrypted once), and blobs are
//! sorted by their offset so that neighbours can be read with one ranged
//! read ([`runs`]). Packs are ordered by their first use in the plan, so
//! files complete roughly in plan order.
//!
//! The schedule holds one small record per slot (like the plan itself);
//! blob data is never part of it.

use std::collections::HashMap;

use crate::blob::{BlobHandle, BlobType};
use crate::crypto::CIPHERTEXT_OVERHEAD;
use crate::id::{BlobId, PackId};
use crate::index::IndexEntry;
use crate::pack::MAX_BLOB_SIZE;
use crate::repository::Repository;

use super::super::create::Todo;
use super::super::plan::Plan;

/// Largest ranged read: neighbouring blobs are read together up to this.
pub(super) const MAX_RUN: u64 = 4 << 20;
/// Largest gap of unneeded bytes read over to join two blobs in one read.
pub(super) const MAX_GAP: u64 = 256 << 10;

/// One place a blob's plaintext goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Target {
    /// Index into `plan.files`.
    pub file: usize,
    /// Offset in that file.
    pub offset: u64,
}

/// One blob to fetch from a pack, and where it goes.
#[derive(Clone, Debug)]
pub(super) struct BlobJob {
    pub id: BlobId,
    pub entry: IndexEntry,
    pub targets: Vec<Target>,
}

impl BlobJob {
    pub fn handle(&self) -> BlobHandle {
        BlobHandle::new(BlobType::Data, self.id)
    }

    fn start(&self) -> u64 {
        u64::from(self.entry.offset)
    }

    fn end(&self) -> u64 {
        self.start() + u64::from(self.entry.length)
    }
}

/// Everything to fetch from one pack, blobs sorted by offset.
#[derive(Clone, Debug)]
pub(super) struct PackJob {
    pub pack: PackId,
    pub blobs: Vec<BlobJob>,
}

/// The content stage's work.
#[derive(Default)]
pub(super) struct Schedule {
    pub jobs: Vec<PackJob>,
    /// Per file plan: how many targets must still be written.
    pub remaining: Vec<usize>,
    /// Per file plan: bytes that need no writing (slots already right).
    pub matched: Vec<u64>,
    /// Files that cannot be completed, with the reason.
    pub failures: Vec<(usize, String)>,
}

/// Whether an index entry's lengths are possible for a data blob.
fn plausible(entry: &IndexEntry) -> bool {
    let length = u64::from(entry.length);
    let overhead = CIPHERTEXT_OVERHEAD as u64;
    length >= overhead
        && length <= u64::from(MAX_BLOB_SIZE) + overhead
        && entry.plaintext_len() <= MAX_BLOB_SIZE
}

/// Build the schedule for the files' `todo`s.
pub(super) fn build(repo: &Repository, plan: &Plan, todo: &[Todo]) -> Schedule {
    let mut schedule = Schedule {
        remaining: vec![0; plan.files.len()],
        matched: vec![0; plan.files.len()],
        ..Schedule::default()
    };
    let mut pack_of: HashMap<PackId, usize> = HashMap::new();
    let mut blob_at: HashMap<(usize, BlobId), usize> = HashMap::new();
    let index = repo.index();
    for (k, (file_plan, todo)) in plan.files.iter().zip(todo).enumerate() {
        let slots: Box<dyn Iterator<Item = usize>> = match todo {
            Todo::Nothing => continue,
            Todo::All => Box::new(0..file_plan.blobs.len()),
            Todo::Slots(list) => Box::new(list.iter().map(|&i| i as usize)),
        };
        let mut wanted = 0u64;
        for i in slots {
            let Some(slot) = file_plan.blobs.get(i) else {
                continue;
            };
            wanted += u64::from(slot.length);
            let handle = BlobHandle::new(BlobType::Data, slot.id);
            let entry = match index.get(&handle) {
                Some(entry) if plausible(&entry) => entry,
                Some(entry) => {
                    let why = format!(
                        "data blob {} has an impossible length {} in the index",
                        slot.id.short(),
                        entry.length
                    );
                    schedule.failures.push((k, why));
                    continue;
                }
                None => {
                    let why = format!("data blob {} is not in the index", slot.id.short());
                    schedule.failures.push((k, why));
                    continue;
                }
            };
            let job = *pack_of.entry(entry.pack).or_insert_with(|| {
                schedule.jobs.push(PackJob {
                    pack: entry.pack,
                    blobs: Vec::new(),
                });
                schedule.jobs.len() - 1
            });
            let target = Target {
                file: k,
                offset: slot.offset,
            };
            let blobs = &mut schedule.jobs[job].blobs;
            let at = *blob_at.entry((job, slot.id)).or_insert_with(|| {
                blobs.push(BlobJob {
                    id: slot.id,
                    entry,
                    targets: Vec::new(),
                });
                blobs.len() - 1
            });
            blobs[at].targets.push(target);
            schedule.remaining[k] += 1;
        }
        schedule.matched[k] = file_plan.size().saturating_sub(wanted);
    }
    for job in &mut schedule.jobs {
        job.blobs.sort_by_key(|b| b.entry.offset);
    }
    schedule
}

/// Split a pack's blobs (sorted by offset) into ranges read at once:
/// `(start, end, blobs)` with `blobs` a sub-slice. A run spans at most
/// [`MAX_RUN`] bytes unless one blob alone is larger, and skips gaps of at
/// most [`MAX_GAP`].
pub(super) fn runs(blobs: &[BlobJob]) -> Vec<(u64, u64, &[BlobJob])> {
    let mut runs = Vec::new();
    let mut first = 0;
    while first < blobs.len() {
        let start = blobs[first].start();
        let mut end = blobs[first].end();
        let mut last = first + 1;
        while let Some(next) = blobs.get(last) {
            let joined_end = end.max(next.end());
            if next.start() > end + MAX_GAP || joined_end - start > MAX_RUN {
                break;
            }
            end = joined_end;
            last += 1;
        }
        runs.push((start, end, &blobs[first..last]));
        first = last;
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Id;

    fn blob(offset: u32, length: u32) -> BlobJob {
        BlobJob {
            id: BlobId(Id::hash(&offset.to_le_bytes())),
            entry: IndexEntry {
                pack: PackId(Id::hash(b"pack")),
                offset,
                length,
                uncompressed_length: None,
            },
            targets: Vec::new(),
        }
    }

    #[test]
    fn neighbours_are_read_together_within_limits() {
        let big = MAX_RUN as u32;
        let blobs = vec![
            blob(0, 100),
            blob(100, 100),
            // A small gap is read over.
            blob(1000, 100),
            // A large gap starts a new run.
            blob(1000 + 100 + MAX_GAP as u32 + 1, 50),
            // A blob larger than a run is a run of its own.
            blob(2 * big, big + 1),
            blob(3 * big + 1, 10),
        ];
        let got: Vec<(u64, u64, usize)> = runs(&blobs)
            .into_iter()
            .map(|(s, e, b)| (s, e, b.len()))
            .collect();
        let gap_start = 1100 + MAX_GAP + 1;
        assert_eq!(
            got,
            vec![
                (0, 1100, 3),
                (gap_start, gap_start + 50, 1),
                (2 * MAX_RUN, 3 * MAX_RUN + 1, 1),
                (3 * MAX_RUN + 1, 3 * MAX_RUN + 11, 1),
            ]
        );
        assert!(runs(&[]).is_empty());
    }

    #[test]
    fn implausible_lengths_are_refused() {
        assert!(plausible(&blob(0, 100).entry));
        assert!(!plausible(&blob(0, 3).entry));
        let mut huge = blob(0, u32::MAX).entry;
        assert!(!plausible(&huge));
        huge.length = 100;
        huge.uncompressed_length = Some(u32::MAX);
        assert!(!plausible(&huge));
    }
}
