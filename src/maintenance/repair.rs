//! `repair`: rebuild the index from the packs, salvage damaged packs, and
//! repair snapshots whose trees or data are missing (restic's `repair
//! index`/`rebuild-index`, `repair packs` and `repair snapshots`).
//!
//! All three write new files before removing old ones: the new index
//! supersedes the old files and is written before they are removed; salvaged
//! blobs are in new, indexed packs before a damaged pack is removed; a
//! repaired snapshot is saved before the original is (optionally) forgotten.

use std::collections::{HashMap, HashSet};

use crate::backend::FileType;
use crate::blob::{BlobHandle, BlobType};
use crate::error::{Error, Result};
use crate::format::tree::{NodeType, Tree};
use crate::id::{Id, IndexId, PackId, SnapshotId, TreeId};
use crate::pack::PackBlob;
use crate::repository::Repository;

use super::pack_sink::PackSink;
use super::parallel;
use super::rewrite::{save_rewritten, TreeRewriter};

/// What `repair index` did.
#[derive(Debug, Default)]
pub struct IndexRepair {
    /// Packs in the repository.
    pub packs: usize,
    /// Packs whose header was read (not taken from the old index).
    pub headers_read: usize,
    /// Packs left out of the new index because their header is unreadable.
    pub unreadable: Vec<(PackId, Error)>,
    /// Old index files that could not be read (replaced all the same).
    pub bad_index_files: Vec<(IndexId, Error)>,
    /// Packs the old index listed that do not exist.
    pub missing: Vec<PackId>,
    /// The index files written.
    pub written: Vec<IndexId>,
}

/// Rebuild the index: every pack in the repository is listed with the
/// blobs its header names. Unless `read_all_packs`, a pack the old index
/// describes consistently (the size its entries imply is the file's size)
/// is taken from the old index instead of reading its header.
pub fn repair_index(
    repo: &Repository,
    read_all_packs: bool,
    threads: usize,
) -> Result<IndexRepair> {
    let mut report = IndexRepair::default();
    let old_ids: Vec<IndexId> = repo
        .list_ids(FileType::Index)?
        .into_iter()
        .map(IndexId)
        .collect();
    let mut known: HashMap<PackId, Vec<PackBlob>> = HashMap::new();
    if !read_all_packs {
        let mut files = Vec::new();
        parallel::map(
            threads,
            old_ids.clone(),
            |id| (id, repo.load_index_file(&id)),
            |(id, res)| match res {
                Ok(file) => files.push(file),
                Err(e) => report.bad_index_files.push((id, e)),
            },
        );
        for file in files {
            for pack in file.packs {
                let blobs = known.entry(pack.id).or_default();
                for b in pack.blobs {
                    let pb = PackBlob {
                        tpe: b.tpe,
                        id: b.id,
                        offset: b.offset,
                        length: b.length,
                        uncompressed_length: b.uncompressed_length,
                    };
                    if !blobs.contains(&pb) {
                        blobs.push(pb);
                    }
                }
            }
        }
    }
    let listed = repo.list_packs()?;
    report.packs = listed.len();
    let present: HashSet<PackId> = listed.iter().map(|(id, _)| *id).collect();
    report.missing = known
        .keys()
        .filter(|id| !present.contains(id))
        .copied()
        .collect();
    report.missing.sort_unstable();

    let mut packs: Vec<(PackId, Vec<PackBlob>)> = Vec::new();
    let mut to_read: Vec<(PackId, u64)> = Vec::new();
    for (id, size) in listed {
        match known.remove(&id) {
            Some(blobs) if !blobs.is_empty() && crate::pack::header::pack_size(&blobs) == size => {
                packs.push((id, blobs))
            }
            _ => to_read.push((id, size)),
        }
    }
    report.headers_read = to_read.len();
    parallel::map(
        threads,
        to_read,
        |(id, size)| (id, repo.load_pack_header(&id, size)),
        |(id, res)| match res {
            Ok(blobs) => packs.push((id, blobs)),
            Err(e) => report.unreadable.push((id, e)),
        },
    );
    report.unreadable.sort_unstable_by_key(|(id, _)| *id);
    packs.sort_unstable_by_key(|(id, _)| *id);
    report.written = repo.replace_index(packs, &old_ids, threads)?;
    Ok(report)
}

/// What `repair packs` did.
#[derive(Debug, Default)]
pub struct PackRepair {
    /// Blobs copied into new packs.
    pub salvaged: usize,
    /// Blobs that could not be read (lost unless stored elsewhere).
    pub lost: Vec<(BlobHandle, Error)>,
    /// The damaged packs, removed from the index and the repository.
    pub removed: Vec<PackId>,
}

/// Salvage the readable blobs of `damaged` packs into new packs, then
/// rewrite the index without the damaged packs and remove them. Blobs that
/// fail to decrypt or verify are reported; run `repair snapshots` next.
pub fn repair_packs(
    repo: &Repository,
    damaged: &[PackId],
    pack_size: u64,
    threads: usize,
) -> Result<PackRepair> {
    let old_ids = repo.load_index_ids(threads)?;
    let damaged: HashSet<PackId> = damaged.iter().copied().collect();
    let mut by_pack: HashMap<PackId, Vec<PackBlob>> = HashMap::new();
    for (handle, entry) in repo.index().iter() {
        by_pack
            .entry(entry.pack)
            .or_default()
            .push(entry.to_pack_blob(&handle));
    }
    let mut report = PackRepair::default();
    let mut sink = PackSink::new(repo, pack_size);
    let mut saved: HashSet<BlobHandle> = HashSet::new();
    let mut order: Vec<PackId> = damaged.iter().copied().collect();
    order.sort_unstable();
    for pack in &order {
        let Some(blobs) = by_pack.get(pack) else {
            return Err(Error::InvalidArgument(format!(
                "pack {pack} is not in the index"
            )));
        };
        for b in blobs {
            let entry = crate::index::IndexEntry {
                pack: *pack,
                offset: b.offset,
                length: b.length,
                uncompressed_length: b.uncompressed_length,
            };
            match repo.load_blob_from(&b.handle(), &entry) {
                Ok(plain) => {
                    // Saved again unless another copy exists elsewhere.
                    let other = repo
                        .index()
                        .get_all(&b.handle())
                        .iter()
                        .any(|e| !damaged.contains(&e.pack));
                    if !other && saved.insert(b.handle()) {
                        sink.add_plain(b.handle(), &plain)?;
                    }
                    report.salvaged += 1;
                }
                Err(e) => report.lost.push((b.handle(), e)),
            }
        }
    }
    sink.finish()?;
    // Everything indexed now (old packs and the new ones), minus the damaged.
    let mut all: HashMap<PackId, Vec<PackBlob>> = HashMap::new();
    for (handle, entry) in repo.index().iter() {
        if !damaged.contains(&entry.pack) {
            all.entry(entry.pack)
                .or_default()
                .push(entry.to_pack_blob(&handle));
        }
    }
    let mut packs: Vec<(PackId, Vec<PackBlob>)> = all.into_iter().collect();
    packs.sort_unstable_by_key(|(id, _)| *id);
    repo.replace_index(packs, &old_ids, threads)?;
    report.removed = damaged.into_iter().collect();
    report.removed.sort_unstable();
    let ids: Vec<Id> = report.removed.iter().map(|p| p.0).collect();
    repo.remove_files(FileType::Pack, ids, threads)?;
    Ok(report)
}

/// One change `repair snapshots` made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotFix {
    /// A file lost content blobs that are not in the index.
    RemovedMissingContent { path: String },
    /// A file's size did not match its content.
    FixedSize { path: String },
    /// A directory whose tree cannot be loaded became empty.
    EmptiedDir { path: String },
}

/// The outcome of repairing one snapshot.
#[derive(Debug)]
pub enum SnapshotRepair {
    /// Nothing was wrong.
    Unchanged,
    /// A repaired copy was saved (the new id), with what was changed.
    Repaired(SnapshotId, Vec<SnapshotFix>),
    /// The root tree cannot be loaded: nothing can be saved.
    RootUnreadable(Error),
}

/// Repair one snapshot as restic's `repair snapshots`: file contents that
/// are not in the index are dropped (sizes adjusted), unloadable
/// directories become empty. The repaired snapshot is saved (unless
/// `dry_run`) with `original` set, and the old one removed if `forget`.
/// The index must be loaded.
pub fn repair_snapshot(
    repo: &Repository,
    id: &SnapshotId,
    forget: bool,
    dry_run: bool,
) -> Result<SnapshotRepair> {
    let sn = repo.load_snapshot(id)?;
    if let Err(e) = repo.load_tree(&sn.tree) {
        return Ok(SnapshotRepair::RootUnreadable(e));
    }
    let mut fixes = Vec::new();
    let empty: std::cell::OnceCell<TreeId> = std::cell::OnceCell::new();
    let new_root = {
        let fixes_n = std::cell::RefCell::new(&mut fixes);
        let mut rw = TreeRewriter::new(
            repo,
            Box::new(|mut node, path| {
                if node.node_type != NodeType::File {
                    return Some(node);
                }
                let index = repo.index();
                let mut size = 0u64;
                let before = node.content().len();
                let content: Vec<_> = node
                    .content()
                    .iter()
                    .filter(|b| match index.get(&BlobHandle::new(BlobType::Data, **b)) {
                        Some(e) => {
                            size += u64::from(e.plaintext_len());
                            true
                        }
                        None => false,
                    })
                    .copied()
                    .collect();
                if content.len() != before {
                    fixes_n
                        .borrow_mut()
                        .push(SnapshotFix::RemovedMissingContent { path: path.into() });
                } else if size != node.size {
                    fixes_n
                        .borrow_mut()
                        .push(SnapshotFix::FixedSize { path: path.into() });
                }
                node.content = Some(content);
                node.size = size;
                Some(node)
            }),
            Box::new(|_, path, _| {
                fixes_n
                    .borrow_mut()
                    .push(SnapshotFix::EmptiedDir { path: path.into() });
                if dry_run {
                    return Ok(None);
                }
                if let Some(id) = empty.get() {
                    return Ok(Some(*id));
                }
                let id = repo.save_tree(&Tree::new())?;
                Ok(Some(*empty.get_or_init(|| id)))
            }),
        );
        rw.rewrite(&sn.tree, "/")?
    };
    if fixes.is_empty() && new_root == sn.tree {
        return Ok(SnapshotRepair::Unchanged);
    }
    if dry_run {
        return Ok(SnapshotRepair::Repaired(*id, fixes));
    }
    let new = save_rewritten(repo, id, sn, new_root, forget)?;
    Ok(SnapshotRepair::Repaired(new, fixes))
}
