//! [`MasterIndex`]: every known blob location, from the repository's index
//! files and from packs written in this session.
//!
//! Pack ids are stored once, in a list; each blob location refers to its
//! pack by position in that list, so a location costs 48 bytes (see
//! [`table`](super::table)) rather than a map entry holding a 32-byte pack id
//! and a heap allocation. Lookups take `&self`; the repository wraps the
//! index in a lock for inserts.
//!
//! Entries read from index files are not validated here: an impossible
//! offset or length surfaces as a clean error when the blob is read
//! ([`decode_blob`](crate::pack::decode_blob) checks everything).

use std::collections::{HashMap, HashSet};

use crate::blob::{BlobHandle, BlobType};
use crate::format::index::IndexFile;
use crate::id::{BlobId, PackId};
use crate::pack::PackBlob;

use super::table::{BlobTable, Location};
use super::IndexEntry;

/// The in-memory index of all blobs. See the module docs.
#[derive(Debug, Default)]
pub struct MasterIndex {
    packs: Vec<PackId>,
    pack_numbers: HashMap<PackId, u32>,
    data: BlobTable,
    tree: BlobTable,
}

impl MasterIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record the blobs of a pack (e.g. one just written, or one whose header
    /// was read). Locations already known are not added twice.
    pub fn insert_pack(&mut self, pack: PackId, blobs: &[PackBlob]) {
        let number = self.pack_number(pack);
        for b in blobs {
            self.insert(
                b.tpe,
                b.id,
                location(number, b.offset, b.length, b.uncompressed_length),
            );
        }
    }

    /// Record every blob listed by an index file. Locations already known
    /// (e.g. a pack listed by two index files) are not added twice.
    pub fn add_index_file(&mut self, file: &IndexFile) {
        let (mut data, mut tree) = (Vec::new(), Vec::new());
        for pack in &file.packs {
            let number = self.pack_number(pack.id);
            for b in &pack.blobs {
                let loc = location(number, b.offset, b.length, b.uncompressed_length);
                match b.tpe {
                    BlobType::Data => data.push((b.id, loc)),
                    BlobType::Tree => tree.push((b.id, loc)),
                }
            }
        }
        self.data.extend(data);
        self.tree.extend(tree);
    }

    /// The first known location of a blob.
    pub fn get(&self, handle: &BlobHandle) -> Option<IndexEntry> {
        self.table(handle.tpe)
            .first(&handle.id)
            .map(|l| self.entry(l))
    }

    /// True if the index knows the blob.
    pub fn has(&self, handle: &BlobHandle) -> bool {
        self.table(handle.tpe).first(&handle.id).is_some()
    }

    /// Every known location of a blob, the preferred (first learned) first.
    pub fn get_all(&self, handle: &BlobHandle) -> Vec<IndexEntry> {
        let mut all = Vec::new();
        self.table(handle.tpe)
            .for_each(&handle.id, |l| all.push(self.entry(l)));
        all
    }

    /// The ids of all packs the index knows.
    pub fn packs(&self) -> HashSet<PackId> {
        self.packs.iter().copied().collect()
    }

    /// True if the index lists the pack.
    pub fn has_pack(&self, pack: &PackId) -> bool {
        self.pack_numbers.contains_key(pack)
    }

    /// Number of packs the index knows.
    pub fn pack_count(&self) -> usize {
        self.packs.len()
    }

    /// Every (blob, location) pair, data blobs first. A blob stored in
    /// several packs appears once per location.
    pub fn iter(&self) -> impl Iterator<Item = (BlobHandle, IndexEntry)> + '_ {
        let data = self.data.iter().map(|(id, l)| (BlobType::Data, id, l));
        let tree = self.tree.iter().map(|(id, l)| (BlobType::Tree, id, l));
        data.chain(tree)
            .map(|(tpe, id, l)| (BlobHandle::new(tpe, id), self.entry(l)))
    }

    /// Number of blob locations (a blob in two packs counts twice).
    pub fn len(&self) -> usize {
        self.data.len() + self.tree.len()
    }

    /// True if the index holds no blob.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fold recent inserts into the sorted arrays and release spare memory;
    /// worth calling once after loading all index files.
    pub fn compact(&mut self) {
        self.data.compact();
        self.tree.compact();
        self.packs.shrink_to_fit();
        self.pack_numbers.shrink_to_fit();
    }

    fn insert(&mut self, tpe: BlobType, id: BlobId, loc: Location) {
        match tpe {
            BlobType::Data => self.data.insert(id, loc),
            BlobType::Tree => self.tree.insert(id, loc),
        };
    }

    fn table(&self, tpe: BlobType) -> &BlobTable {
        match tpe {
            BlobType::Data => &self.data,
            BlobType::Tree => &self.tree,
        }
    }

    /// The number of `pack` in the pack list, adding it if new.
    fn pack_number(&mut self, pack: PackId) -> u32 {
        if let Some(&n) = self.pack_numbers.get(&pack) {
            return n;
        }
        // 2^32 packs would be petabytes of index alone; not a runtime case.
        let n = u32::try_from(self.packs.len()).expect("fewer than 2^32 packs");
        self.packs.push(pack);
        self.pack_numbers.insert(pack, n);
        n
    }

    fn entry(&self, l: Location) -> IndexEntry {
        IndexEntry {
            // Every stored pack number was handed out by `pack_number`.
            pack: self.packs[l.pack as usize],
            offset: l.offset,
            length: l.length,
            uncompressed_length: (l.uncompressed_length != 0).then_some(l.uncompressed_length),
        }
    }
}

/// A location; a plaintext length of `Some(0)` means "uncompressed", as for
/// restic.
fn location(pack: u32, offset: u32, length: u32, uncompressed_length: Option<u32>) -> Location {
    Location {
        pack,
        offset,
        length,
        uncompressed_length: uncompressed_length.unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::index::{IndexBlob, IndexPack};
    use crate::id::Id;

    fn blob_id(n: u32) -> BlobId {
        BlobId(Id::hash(&n.to_le_bytes()))
    }

    fn pack_id(n: u32) -> PackId {
        PackId(Id::hash(format!("pack {n}").as_bytes()))
    }

    fn pack_blob(tpe: BlobType, n: u32, offset: u32, compressed: bool) -> PackBlob {
        PackBlob {
            tpe,
            id: blob_id(n),
            offset,
            length: 100 + n,
            uncompressed_length: compressed.then_some(1000 + n),
        }
    }

    #[test]
    fn insert_and_lookup() {
        let mut idx = MasterIndex::new();
        assert!(idx.is_empty());
        let blobs = [
            pack_blob(BlobType::Data, 1, 0, false),
            pack_blob(BlobType::Tree, 2, 101, true),
        ];
        idx.insert_pack(pack_id(1), &blobs);
        let data = BlobHandle::new(BlobType::Data, blob_id(1));
        let e = idx.get(&data).unwrap();
        assert_eq!(
            e,
            IndexEntry {
                pack: pack_id(1),
                offset: 0,
                length: 101,
                uncompressed_length: None
            }
        );
        assert_eq!(e.plaintext_len(), 101 - 32);
        assert_eq!(e.to_pack_blob(&data), blobs[0]);
        let tree = BlobHandle::new(BlobType::Tree, blob_id(2));
        assert_eq!(idx.get(&tree).unwrap().plaintext_len(), 1002);
        // The same id as the other type is a different blob.
        assert!(!idx.has(&BlobHandle::new(BlobType::Tree, blob_id(1))));
        assert!(!idx.has(&BlobHandle::new(BlobType::Data, blob_id(3))));
        assert_eq!(idx.len(), 2);
        assert_eq!(idx.packs(), HashSet::from([pack_id(1)]));
        assert!(idx.has_pack(&pack_id(1)) && !idx.has_pack(&pack_id(2)));
    }

    #[test]
    fn duplicates_keep_every_pack_and_prefer_the_first() {
        let mut idx = MasterIndex::new();
        let b = pack_blob(BlobType::Data, 7, 0, false);
        idx.insert_pack(pack_id(1), &[b]);
        idx.insert_pack(pack_id(2), &[b]);
        // The same pack again (e.g. listed by two index files) adds nothing.
        idx.insert_pack(pack_id(1), &[b]);
        let h = b.handle();
        assert_eq!(idx.get(&h).unwrap().pack, pack_id(1));
        let packs: Vec<_> = idx.get_all(&h).iter().map(|e| e.pack).collect();
        assert_eq!(packs, [pack_id(1), pack_id(2)]);
        assert_eq!(idx.len(), 2);
        assert_eq!(idx.pack_count(), 2);
        idx.compact();
        assert_eq!(idx.get(&h).unwrap().pack, pack_id(1));
        assert_eq!(idx.get_all(&h).len(), 2);
    }

    #[test]
    fn index_file_and_iteration() {
        let file = IndexFile {
            supersedes: Vec::new(),
            packs: vec![
                IndexPack {
                    id: pack_id(1),
                    blobs: vec![
                        IndexBlob {
                            id: blob_id(1),
                            tpe: BlobType::Data,
                            offset: 0,
                            length: 50,
                            uncompressed_length: Some(80),
                        },
                        IndexBlob {
                            id: blob_id(2),
                            tpe: BlobType::Tree,
                            offset: 50,
                            length: 40,
                            // restic's "not compressed".
                            uncompressed_length: Some(0),
                        },
                    ],
                },
                IndexPack {
                    id: pack_id(2),
                    blobs: Vec::new(),
                },
            ],
        };
        let mut idx = MasterIndex::new();
        idx.add_index_file(&file);
        idx.add_index_file(&file);
        assert_eq!(idx.len(), 2);
        assert_eq!(idx.packs(), HashSet::from([pack_id(1), pack_id(2)]));
        let tree = idx
            .get(&BlobHandle::new(BlobType::Tree, blob_id(2)))
            .unwrap();
        assert_eq!((tree.offset, tree.uncompressed_length), (50, None));
        let mut all: Vec<_> = idx.iter().collect();
        all.sort_by_key(|(h, _)| *h);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].0, BlobHandle::new(BlobType::Data, blob_id(1)));
        assert_eq!(all[0].1.uncompressed_length, Some(80));
        assert_eq!(all[1].1.pack, pack_id(1));
    }

    #[test]
    fn many_packs() {
        let mut idx = MasterIndex::new();
        for p in 0..3000u32 {
            let blobs: Vec<_> = (0..10)
                .map(|i| pack_blob(BlobType::Data, p * 10 + i, i * 200, i % 2 == 0))
                .collect();
            idx.insert_pack(pack_id(p), &blobs);
        }
        assert_eq!(idx.len(), 30_000);
        for n in (0..30_000u32).step_by(7) {
            let e = idx
                .get(&BlobHandle::new(BlobType::Data, blob_id(n)))
                .unwrap();
            assert_eq!(e.pack, pack_id(n / 10));
            assert_eq!(e.offset, (n % 10) * 200);
        }
        assert_eq!(idx.iter().count(), 30_000);
    }
}
