//! Turning "which blobs go where in which file" into per-pack work.
//!
//! Every blob slot to write is filed under the pack that holds the blob
//! (as the plan found it in the index). Within a pack, each blob appears
//! once with every place it must be written (a blob shared by many files,
//! or repeated within one, is fetched and decrypted once), and blobs are
//! sorted by their offset so that neighbours can be read with one ranged
//! read ([`runs`]). Packs are ordered by their first use in the plan, so
//! files complete roughly in plan order. The unit of work is one such
//! ranged read ([`Schedule::reads`], at most [`MAX_RUN`] bytes as a rule):
//! small enough that the workers finish together, not one of them alone
//! with the last big pack.
//!
//! The schedule is four flat lists (packs, reads, blobs, targets) of small
//! records, one target per slot to write: no allocation per blob, and
//! blob data is never part of it.

use std::ops::Range;

use crate::blob::{BlobHandle, BlobType};
use crate::crypto::CIPHERTEXT_OVERHEAD;
use crate::id::{BlobId, PackId};
use crate::index::IndexEntry;
use crate::pack::MAX_BLOB_SIZE;

use super::super::create::Todo;
use super::super::plan::{Plan, Stored};

/// Largest ranged read: neighbouring blobs are read together up to this.
pub(super) const MAX_RUN: u64 = 4 << 20;
/// Largest gap of unneeded bytes read over to join two blobs in one read.
pub(super) const MAX_GAP: u64 = 256 << 10;
/// A read that writes more than this many bytes is done first.
const HEAVY: u64 = 4 * MAX_RUN;

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
    /// Where it is in its pack (`pack` is the plan's index of the pack).
    pub stored: Stored,
    /// Its targets in [`Schedule::targets`].
    pub targets: Range<usize>,
}

impl BlobJob {
    pub fn handle(&self) -> BlobHandle {
        BlobHandle::new(BlobType::Data, self.id)
    }

    /// The index entry of this blob in `pack`.
    pub fn entry(&self, pack: PackId) -> IndexEntry {
        IndexEntry {
            pack,
            offset: self.stored.offset,
            length: self.stored.length,
            uncompressed_length: self.stored.uncompressed_length,
        }
    }

    fn start(&self) -> u64 {
        u64::from(self.stored.offset)
    }

    fn end(&self) -> u64 {
        self.start() + u64::from(self.stored.length)
    }
}

/// Everything to fetch from one pack.
#[derive(Clone, Debug)]
pub(super) struct PackJob {
    pub pack: PackId,
    /// Its blobs in [`Schedule::blobs`], sorted by offset.
    pub blobs: Range<usize>,
}

/// One ranged read of a pack: the unit of work of the content stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct RangeRead {
    /// Its pack in [`Schedule::jobs`].
    pub job: usize,
    /// The byte range read from the pack.
    pub start: u64,
    pub end: u64,
    /// The blobs in it, in [`Schedule::blobs`].
    pub blobs: Range<usize>,
}

/// The content stage's work.
#[derive(Default)]
pub(super) struct Schedule {
    pub jobs: Vec<PackJob>,
    /// Every pack's ranged reads, pack after pack.
    pub reads: Vec<RangeRead>,
    pub blobs: Vec<BlobJob>,
    pub targets: Vec<Target>,
    /// Per file plan: how many targets must still be written.
    pub remaining: Vec<usize>,
    /// Per file plan: bytes that need no writing (slots already right).
    pub matched: Vec<u64>,
    /// Files that cannot be completed, with the reason.
    pub failures: Vec<(usize, String)>,
}

impl Schedule {
    /// The blobs of a ranged read.
    pub fn read_blobs(&self, read: &RangeRead) -> &[BlobJob] {
        self.blobs.get(read.blobs.clone()).unwrap_or(&[])
    }

    /// The targets of a blob.
    pub fn targets(&self, blob: &BlobJob) -> &[Target] {
        self.targets.get(blob.targets.clone()).unwrap_or(&[])
    }
}

/// Whether an index entry's lengths are possible for a data blob.
fn plausible(stored: &Stored) -> bool {
    let length = u64::from(stored.length);
    let overhead = CIPHERTEXT_OVERHEAD as u64;
    let plain = crate::pack::header::plaintext_len(stored.length, stored.uncompressed_length);
    length >= overhead && length <= u64::from(MAX_BLOB_SIZE) + overhead && plain <= MAX_BLOB_SIZE
}

/// One slot to write, while sorting them into jobs.
struct Wanted {
    /// The pack's position in first-use order.
    rank: u32,
    /// The slot in `plan.slots`.
    slot: usize,
    /// The file plan.
    file: usize,
}

/// Build the schedule for the files' `todo`s.
pub(super) fn build(plan: &Plan, todo: &[Todo]) -> Schedule {
    let mut schedule = Schedule {
        remaining: vec![0; plan.files.len()],
        matched: vec![0; plan.files.len()],
        ..Schedule::default()
    };
    // Pack ranks in order of first use, and the packs by rank.
    let mut rank = vec![u32::MAX; plan.packs.len()];
    let mut packs: Vec<PackId> = Vec::new();
    let mut wanted: Vec<Wanted> = Vec::new();
    for (k, (file_plan, todo)) in plan.files.iter().zip(todo).enumerate() {
        let slots: Box<dyn Iterator<Item = usize>> = match todo {
            Todo::Nothing => continue,
            Todo::All => Box::new(0..file_plan.slots.len()),
            Todo::Slots(list) => Box::new(list.iter().map(|&i| i as usize)),
        };
        let all = plan.blobs(file_plan);
        let mut bytes = 0u64;
        for i in slots {
            let Some(slot) = all.get(i) else {
                continue;
            };
            bytes += u64::from(slot.length);
            let stored = slot.stored;
            let pack = usize::try_from(stored.pack).ok();
            let (Some(pack), true) = (pack.filter(|&p| p < rank.len()), plausible(&stored)) else {
                let why = format!(
                    "data blob {} has an impossible length {} in the index",
                    slot.id.short(),
                    stored.length
                );
                schedule.failures.push((k, why));
                continue;
            };
            if rank[pack] == u32::MAX {
                // At most `plan.packs.len()` ranks, which fit a u32.
                rank[pack] = u32::try_from(packs.len()).unwrap_or(u32::MAX - 1);
                packs.push(plan.packs[pack]);
            }
            wanted.push(Wanted {
                rank: rank[pack],
                slot: file_plan.slots.start + i,
                file: k,
            });
            schedule.remaining[k] += 1;
        }
        schedule.matched[k] = file_plan.size().saturating_sub(bytes);
    }
    // By pack, then by place in the pack; one blob's slots (same place and
    // id) together, in plan order.
    wanted.sort_unstable_by(|a, b| {
        let (sa, sb) = (&plan.slots[a.slot], &plan.slots[b.slot]);
        (a.rank, sa.stored.offset, &sa.id, a.file, sa.offset).cmp(&(
            b.rank,
            sb.stored.offset,
            &sb.id,
            b.file,
            sb.offset,
        ))
    });
    schedule.targets.reserve_exact(wanted.len());
    for w in &wanted {
        let slot = &plan.slots[w.slot];
        let same_job = schedule
            .jobs
            .last()
            .is_some_and(|job| job.pack == packs[w.rank as usize]);
        if !same_job {
            let at = schedule.blobs.len();
            schedule.jobs.push(PackJob {
                pack: packs[w.rank as usize],
                blobs: at..at,
            });
        }
        let same_blob = same_job
            && schedule
                .blobs
                .last()
                .is_some_and(|b| b.id == slot.id && b.stored == slot.stored);
        let at = schedule.targets.len();
        if !same_blob {
            schedule.blobs.push(BlobJob {
                id: slot.id,
                stored: slot.stored,
                targets: at..at,
            });
        }
        schedule.targets.push(Target {
            file: w.file,
            offset: slot.offset,
        });
        if let Some(blob) = schedule.blobs.last_mut() {
            blob.targets.end = at + 1;
        }
        let blobs = schedule.blobs.len();
        if let Some(job) = schedule.jobs.last_mut() {
            job.blobs.end = blobs;
        }
    }
    schedule.reads = reads(&schedule.jobs, &schedule.blobs);
    heavy_first(&mut schedule);
    schedule
}

/// Move the reads with far more to write than a read holds (a blob written
/// to many places: a file of zeros, a file copied many times) to the front,
/// in their order. Taken last, such a read keeps one worker writing while
/// the others have run out of work; taken first, it overlaps with the rest.
fn heavy_first(schedule: &mut Schedule) {
    let reads = std::mem::take(&mut schedule.reads);
    let (heavy, light): (Vec<RangeRead>, Vec<RangeRead>) = reads
        .into_iter()
        .partition(|read| write_cost(schedule, read) > HEAVY);
    schedule.reads = heavy;
    schedule.reads.extend(light);
}

/// Plaintext bytes a read's blobs are written as, over all their targets.
fn write_cost(schedule: &Schedule, read: &RangeRead) -> u64 {
    schedule
        .read_blobs(read)
        .iter()
        .map(|b| {
            let plain =
                crate::pack::header::plaintext_len(b.stored.length, b.stored.uncompressed_length);
            u64::from(plain).saturating_mul(b.targets.len() as u64)
        })
        .sum()
}

/// Every job's [`runs`], as ranged reads in job order.
fn reads(jobs: &[PackJob], blobs: &[BlobJob]) -> Vec<RangeRead> {
    let mut reads = Vec::new();
    for (k, job) in jobs.iter().enumerate() {
        let first = job.blobs.start;
        let job_blobs = blobs.get(job.blobs.clone()).unwrap_or(&[]);
        reads.extend(runs(job_blobs).into_iter().map(|run| RangeRead {
            job: k,
            start: run.start,
            end: run.end,
            blobs: first + run.blobs.start..first + run.blobs.end,
        }));
    }
    reads
}

/// Neighbouring blobs of one pack read at once: bytes `start..end`, and
/// the blobs in them as positions in the slice given to [`runs`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Run {
    pub start: u64,
    pub end: u64,
    pub blobs: Range<usize>,
}

/// Split a pack's blobs (sorted by offset) into ranges read at once. A run
/// spans at most [`MAX_RUN`] bytes unless one blob alone is larger, and
/// skips gaps of at most [`MAX_GAP`].
pub(super) fn runs(blobs: &[BlobJob]) -> Vec<Run> {
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
        runs.push(Run {
            start,
            end,
            blobs: first..last,
        });
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
            stored: Stored {
                pack: 0,
                offset,
                length,
                uncompressed_length: None,
            },
            targets: 0..0,
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
            .map(|run| (run.start, run.end, run.blobs.len()))
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
    fn reads_cover_every_blob_of_every_pack_in_order() {
        let pack = |n: u8| PackId(Id::hash(&[n]));
        // Pack 0: two runs (a large gap); pack 1: one run.
        let blobs = vec![
            blob(0, 100),
            blob(100 + MAX_GAP as u32 + 1, 10),
            blob(0, 50),
            blob(60, 40),
        ];
        let jobs = vec![
            PackJob {
                pack: pack(0),
                blobs: 0..2,
            },
            PackJob {
                pack: pack(1),
                blobs: 2..4,
            },
        ];
        let far = 100 + MAX_GAP + 1;
        let read = |job, start, end, blobs| RangeRead {
            job,
            start,
            end,
            blobs,
        };
        assert_eq!(
            reads(&jobs, &blobs),
            vec![
                read(0, 0, 100, 0..1),
                read(0, far, far + 10, 1..2),
                read(1, 0, 100, 2..4),
            ]
        );
        assert!(reads(&[], &blobs).is_empty());
    }

    #[test]
    fn reads_with_far_more_to_write_come_first() {
        let pack = |n: u8| PackId(Id::hash(&[n]));
        let target = |file| Target { file, offset: 0 };
        // Three packs of one blob each; the last pack's 8 MiB blob goes to
        // three files (24 MiB to write), the middle one's to two (16 MiB:
        // not more than `HEAVY`).
        let mut shared = blob(0, 8 << 20);
        shared.targets = 0..3;
        let mut twice = blob(0, 8 << 20);
        twice.targets = 3..5;
        let mut once = blob(0, 100);
        once.targets = 5..6;
        let mut schedule = Schedule {
            jobs: (0..3)
                .map(|n| PackJob {
                    pack: pack(n),
                    blobs: usize::from(n)..usize::from(n) + 1,
                })
                .collect(),
            blobs: vec![once, twice, shared],
            targets: (0..6).map(target).collect(),
            ..Schedule::default()
        };
        schedule.reads = reads(&schedule.jobs, &schedule.blobs);
        let plain = (8 << 20) - CIPHERTEXT_OVERHEAD as u64;
        assert_eq!(write_cost(&schedule, &schedule.reads[2]), 3 * plain);
        heavy_first(&mut schedule);
        let order: Vec<usize> = schedule.reads.iter().map(|r| r.job).collect();
        assert_eq!(order, vec![2, 0, 1]);
    }

    #[test]
    fn implausible_lengths_are_refused() {
        assert!(plausible(&blob(0, 100).stored));
        assert!(!plausible(&blob(0, 3).stored));
        let mut huge = blob(0, u32::MAX).stored;
        assert!(!plausible(&huge));
        huge.length = 100;
        huge.uncompressed_length = Some(u32::MAX);
        assert!(!plausible(&huge));
    }
}
