//! [`BlobTable`]: the locations of the blobs of one type, kept compact.
//!
//! Layout: every location is a 48-byte [`Slot`] (blob id, pack number,
//! offset, length, plaintext length) in a flat vector; no per-blob heap
//! object. Most slots live in `sorted`, ordered by blob id and searched by
//! bisection. New slots go to `pending`, found through a hash map from id to
//! the slot's position, until `pending` reaches an eighth of `sorted`; then
//! it is sorted and merged into `sorted` in one linear pass. Inserting n
//! blobs therefore costs O(n log n) in total, and memory stays at about
//! 48 bytes per blob plus the transient hash map of the pending part.
//!
//! Lookups in `sorted` start from a fan-out table (as in git's pack
//! indexes): for each value of an id's leading bits, where its slots begin.
//! Blob ids are SHA-256 hashes, so each bucket holds a handful of slots and
//! a lookup costs one or two comparisons instead of log2(n). (A hostile
//! index with skewed ids only makes its buckets larger: the search inside
//! a bucket is still a bisection.) The table has about one entry per two
//! slots, at most 2^16.
//!
//! Invariants:
//! - Slots of the same id appear in insertion order: in `sorted` (the sort
//!   and the merge are stable), then in `pending`. So the first location
//!   found is the first one inserted.
//! - No two slots are identical (same id and same location).

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use rayon::slice::ParallelSliceMut;

use crate::id::BlobId;

/// Below this many pending slots, never bother merging.
const MIN_PENDING: usize = 4096;

/// A batch of at least this many slots is sorted on every core.
const PARALLEL_SORT: usize = 1 << 15;

/// A blob's location, with the pack as a number into the index's pack list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Location {
    pub pack: u32,
    pub offset: u32,
    pub length: u32,
    /// 0 if the blob is not compressed (restic's convention).
    pub uncompressed_length: u32,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    id: BlobId,
    loc: Location,
}

/// Locations of the blobs of one type. See the module docs.
#[derive(Debug, Default)]
pub(super) struct BlobTable {
    sorted: Vec<Slot>,
    /// `fanout[b]..fanout[b + 1]` are the slots of `sorted` whose id's
    /// leading `fanout_bits` bits are `b`; empty while `sorted` is.
    fanout: Vec<u32>,
    fanout_bits: u32,
    pending: Vec<Slot>,
    /// Position in `pending` of the first pending slot of each id.
    pending_first: HashMap<BlobId, usize>,
    /// Number of pending slots whose id was already pending.
    pending_dups: usize,
}

impl BlobTable {
    /// Number of locations stored.
    pub fn len(&self) -> usize {
        self.sorted.len() + self.pending.len()
    }

    /// The first location of `id`.
    pub fn first(&self, id: &BlobId) -> Option<Location> {
        self.sorted_range(id)
            .first()
            .map(|s| s.loc)
            .or_else(|| self.pending_first.get(id).map(|&i| self.pending[i].loc))
    }

    /// Call `f` with every location of `id`, in insertion order.
    pub fn for_each(&self, id: &BlobId, mut f: impl FnMut(Location)) {
        for s in self.sorted_range(id) {
            f(s.loc);
        }
        if let Some(&first) = self.pending_first.get(id) {
            f(self.pending[first].loc);
            if self.pending_dups > 0 {
                for s in self.pending[first + 1..].iter().filter(|s| s.id == *id) {
                    f(s.loc);
                }
            }
        }
    }

    /// Add a location of `id` unless it is already recorded; returns whether
    /// it was added.
    pub fn insert(&mut self, id: BlobId, loc: Location) -> bool {
        let mut known = false;
        self.for_each(&id, |l| known |= l == loc);
        if known {
            return false;
        }
        let position = self.pending.len();
        match self.pending_first.entry(id) {
            std::collections::hash_map::Entry::Occupied(_) => self.pending_dups += 1,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(position);
            }
        }
        self.pending.push(Slot { id, loc });
        if self.pending.len() >= MIN_PENDING.max(self.sorted.len() / 8) {
            self.merge_pending();
        }
        true
    }

    /// Add many locations at once, skipping those already recorded (in the
    /// table or earlier in `batch`), as repeated [`insert`](Self::insert)s
    /// would. A batch at least as large as the table (a large index file,
    /// the first one loaded) is sorted and merged in one pass instead:
    /// inserting 100k blobs one by one went through some twenty merges.
    pub fn extend(&mut self, batch: Vec<(BlobId, Location)>) {
        if batch.len() < self.len().max(MIN_PENDING) {
            for (id, loc) in batch {
                self.insert(id, loc);
            }
            return;
        }
        self.merge_pending();
        let mut slots: Vec<Slot> = batch
            .into_iter()
            .map(|(id, loc)| Slot { id, loc })
            .collect();
        // Stable: equal ids keep their order in the batch.
        if slots.len() >= PARALLEL_SORT {
            slots.par_sort_by(by_id);
        } else {
            slots.sort_by(by_id);
        }
        // Drop, in place, the slots already recorded or repeated.
        let mut kept = 0;
        let mut start = 0;
        while start < slots.len() {
            let id = slots[start].id;
            let end = start + slots[start..].iter().take_while(|s| s.id == id).count();
            let recorded = self.sorted_range(&id);
            if end == start + 1 && recorded.is_empty() {
                // The usual case: a blob seen once, and new.
                slots[kept] = slots[start];
                kept += 1;
            } else {
                let mut seen: HashSet<Location> = recorded.iter().map(|s| s.loc).collect();
                for i in start..end {
                    // `insert` returns whether the location was new.
                    if seen.insert(slots[i].loc) {
                        slots[kept] = slots[i];
                        kept += 1;
                    }
                }
            }
            start = end;
        }
        slots.truncate(kept);
        if self.sorted.is_empty() {
            self.sorted = slots;
            self.rebuild_fanout();
        } else {
            self.pending = slots;
            self.merge_pending();
        }
    }

    /// Every (id, location), sorted part first; ids of the sorted part in
    /// ascending order.
    pub fn iter(&self) -> impl Iterator<Item = (BlobId, Location)> + '_ {
        self.sorted
            .iter()
            .chain(&self.pending)
            .map(|s| (s.id, s.loc))
    }

    /// Merge all pending slots and release spare capacity.
    pub fn compact(&mut self) {
        self.merge_pending();
        self.sorted.shrink_to_fit();
        self.fanout.shrink_to_fit();
        self.pending.shrink_to_fit();
        self.pending_first.shrink_to_fit();
    }

    /// The slots of `id` in the sorted part.
    fn sorted_range(&self, id: &BlobId) -> &[Slot] {
        let bucket = leading_bits(id, self.fanout_bits);
        let (Some(&lo), Some(&hi)) = (self.fanout.get(bucket), self.fanout.get(bucket + 1)) else {
            return &[];
        };
        let candidates = &self.sorted[lo as usize..hi as usize];
        let start = candidates.partition_point(|s| s.id < *id);
        let len = candidates[start..]
            .iter()
            .take_while(|s| s.id == *id)
            .count();
        &candidates[start..start + len]
    }

    /// Rebuild the fan-out table after `sorted` changed.
    fn rebuild_fanout(&mut self) {
        // About two slots per bucket, between 2^4 and 2^16 buckets.
        let bits = (usize::BITS - (self.sorted.len() / 2).leading_zeros()).clamp(4, 16);
        self.fanout_bits = bits;
        self.fanout.clear();
        self.fanout.reserve_exact((1 << bits) + 1);
        let mut at = 0usize;
        for bucket in 0..=(1usize << bits) {
            while at < self.sorted.len() && leading_bits(&self.sorted[at].id, bits) < bucket {
                at += 1;
            }
            // `sorted` never exceeds u32::MAX slots: pack offsets and the
            // pack count are u32 and every slot is a distinct location.
            self.fanout.push(u32::try_from(at).unwrap_or(u32::MAX));
        }
    }

    /// Sort the pending slots (stably) and merge them into `sorted`, in
    /// place from the back, so that equal ids keep insertion order.
    fn merge_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        self.pending.sort_by(by_id);
        let (n, p) = (self.sorted.len(), self.pending.len());
        // Grow to the final length; the placeholders are all overwritten.
        self.sorted.extend_from_slice(&self.pending);
        let (mut i, mut j, mut k) = (n, p, n + p);
        while j > 0 {
            k -= 1;
            if i > 0 && self.sorted[i - 1].id > self.pending[j - 1].id {
                self.sorted[k] = self.sorted[i - 1];
                i -= 1;
            } else {
                self.sorted[k] = self.pending[j - 1];
                j -= 1;
            }
        }
        self.pending.clear();
        self.pending_first.clear();
        self.pending_dups = 0;
        self.rebuild_fanout();
    }
}

/// Slots in blob id order. Ids are hashes, so the leading eight bytes,
/// compared as one number, almost always decide.
fn by_id(a: &Slot, b: &Slot) -> Ordering {
    let lead = |s: &Slot| u64::from_be_bytes(s.id.0 .0[..8].try_into().unwrap_or_default());
    lead(a).cmp(&lead(b)).then_with(|| a.id.cmp(&b.id))
}

/// The leading `bits` bits (at most 16) of an id.
fn leading_bits(id: &BlobId, bits: u32) -> usize {
    let prefix = u32::from(u16::from_be_bytes([id.0 .0[0], id.0 .0[1]]));
    (prefix >> (16 - bits.min(16))) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Id;

    fn id(n: u32) -> BlobId {
        BlobId(Id::hash(&n.to_le_bytes()))
    }

    fn loc(pack: u32, offset: u32) -> Location {
        Location {
            pack,
            offset,
            length: 100,
            uncompressed_length: 0,
        }
    }

    fn all(t: &BlobTable, id: &BlobId) -> Vec<Location> {
        let mut v = Vec::new();
        t.for_each(id, |l| v.push(l));
        v
    }

    #[test]
    fn slot_is_compact() {
        assert_eq!(std::mem::size_of::<Slot>(), 48);
    }

    #[test]
    fn many_inserts_across_merges_keep_order_and_duplicates() {
        let mut t = BlobTable::default();
        let n = 20_000u32;
        for i in 0..n {
            assert!(t.insert(id(i), loc(i % 7, i)));
        }
        // Second copies of every third blob, in another pack, after merges.
        for i in (0..n).step_by(3) {
            assert!(t.insert(id(i), loc(100, i)));
        }
        // Exact duplicates are ignored, whether sorted or pending.
        assert!(!t.insert(id(5), loc(5, 5)));
        assert!(!t.insert(id(n - 2), loc(100, n - 2)));
        assert_eq!(t.len(), (n + n.div_ceil(3)) as usize);
        assert!(!t.pending.is_empty() && !t.sorted.is_empty());

        let check = |t: &BlobTable| {
            for i in 0..n {
                assert_eq!(t.first(&id(i)), Some(loc(i % 7, i)), "blob {i}");
                let expect = if i % 3 == 0 {
                    vec![loc(i % 7, i), loc(100, i)]
                } else {
                    vec![loc(i % 7, i)]
                };
                assert_eq!(all(t, &id(i)), expect, "blob {i}");
            }
            assert_eq!(t.first(&id(n)), None);
            assert!(all(t, &id(n)).is_empty());
        };
        check(&t);
        t.compact();
        assert!(t.pending.is_empty());
        assert!(t.sorted.windows(2).all(|w| w[0].id <= w[1].id));
        check(&t);
        assert_eq!(t.iter().count(), t.len());
    }

    #[test]
    fn extend_records_what_inserting_one_by_one_would() {
        // Batches small and large against a growing table: some ids
        // repeated with new locations, some exact duplicates (within the
        // batch and of what is recorded), in shuffled order.
        let mut bulk = BlobTable::default();
        let mut single = BlobTable::default();
        let mut state = 7u32;
        let mut next = move |m: u32| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (state >> 8) % m
        };
        // 40,000 is past PARALLEL_SORT: that batch is sorted on every core.
        for (round, size) in [10_000u32, 300, 40_000, 5_000].into_iter().enumerate() {
            let batch: Vec<(BlobId, Location)> = (0..size)
                .map(|_| {
                    let i = next(20_000);
                    (id(i), loc(next(3) + round as u32, i))
                })
                .collect();
            for &(i, l) in &batch {
                single.insert(i, l);
            }
            bulk.extend(batch);
            assert_eq!(bulk.len(), single.len(), "round {round}");
            for i in 0..20_000 {
                assert_eq!(all(&bulk, &id(i)), all(&single, &id(i)), "blob {i}");
            }
        }
        bulk.compact();
        assert!(bulk.sorted.windows(2).all(|w| w[0].id <= w[1].id));
    }

    #[test]
    fn duplicates_within_pending() {
        let mut t = BlobTable::default();
        t.insert(id(1), loc(0, 0));
        t.insert(id(2), loc(0, 100));
        t.insert(id(1), loc(1, 0));
        t.insert(id(1), loc(2, 0));
        assert_eq!(all(&t, &id(1)), vec![loc(0, 0), loc(1, 0), loc(2, 0)]);
        t.compact();
        assert_eq!(all(&t, &id(1)), vec![loc(0, 0), loc(1, 0), loc(2, 0)]);
        t.insert(id(1), loc(3, 0));
        assert_eq!(t.first(&id(1)), Some(loc(0, 0)));
        assert_eq!(all(&t, &id(1)).len(), 4);
    }

    #[test]
    fn fanout_finds_ids_at_bucket_edges_and_in_skewed_tables() {
        // Ids chosen by a hostile index: all in a few buckets, and ids at
        // the very start and end of the id space.
        let crafted = |hi: u8, n: u32| {
            let mut bytes = id(n).0 .0;
            bytes[0] = hi;
            bytes[1] = hi;
            BlobId(Id(bytes))
        };
        let mut t = BlobTable::default();
        let mut ids = vec![BlobId(Id([0; 32])), BlobId(Id([0xff; 32]))];
        ids.extend((0..6000).map(|n| crafted(if n % 2 == 0 { 0x00 } else { 0xff }, n)));
        ids.extend((0..3000).map(id));
        for (n, &i) in ids.iter().enumerate() {
            assert!(t.insert(i, loc(1, n as u32)));
        }
        for compacted in [false, true] {
            if compacted {
                t.compact();
            }
            for (n, i) in ids.iter().enumerate() {
                assert_eq!(t.first(i), Some(loc(1, n as u32)), "id {n}");
            }
            assert_eq!(t.first(&crafted(0x00, 7001)), None);
            assert_eq!(t.first(&crafted(0x80, 7001)), None);
            assert_eq!(t.first(&id(3001)), None);
        }
    }
}
