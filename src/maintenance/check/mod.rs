//! `check`: verify a repository's integrity, as restic 0.14's `check` does,
//! without ever writing to it.
//!
//! The check runs in phases, each reported through [`Event`]s as it goes:
//! 1. [`Phase::LoadIndex`]: every index file is loaded, decrypted and
//!    parsed on its own; unreadable ones are errors, and old-format files,
//!    packs listed by several index files and packs mixing tree and data
//!    blobs are hints. Superseded index files are loaded like any other
//!    (restic 0.14 ignores `supersedes` too). If an index file is
//!    unreadable the check stops here, as restic's does: everything after
//!    would drown in follow-on errors.
//! 2. [`Phase::CheckPacks`]: the pack files in the backend are compared
//!    with the index: an indexed pack that is missing, or whose size is not
//!    the size its index entries imply, is an error; a pack no index lists
//!    is a hint.
//! 3. [`Phase::CheckStructure`]: every snapshot, every tree reachable from
//!    one and every blob they reference (see `structure.rs`); optionally,
//!    indexed blobs that nothing references are listed as hints.
//! 4. [`Phase::ReadData`], if asked for: selected packs are read completely
//!    and every byte is verified (see `read.rs`).
//!
//! Every problem is reported, not just the first, as one [`Finding`]. The
//! checker works on its own index built from the files it verified; the
//! repository's in-memory index is neither used nor changed. The caller
//! should hold a lock (restic takes an exclusive one) so that no prune runs
//! meanwhile.

mod finding;
mod read;
mod structure;
mod subset;

#[cfg(test)]
mod tests;

pub use finding::{Finding, PackProblem, TreeProblem};
pub(crate) use subset::parse_size;
pub use subset::{ReadDataSubset, MAX_BUCKETS};

use std::collections::{HashMap, HashSet};

use crate::backend::FileType;
use crate::blob::{BlobHandle, BlobType};
use crate::crypto::CIPHERTEXT_OVERHEAD;
use crate::error::{Error, Result};
use crate::format::index::IndexFile;
use crate::id::{IndexId, PackId, TreeId};
use crate::index::MasterIndex;
use crate::maintenance::parallel;
use crate::pack::HEADER_LENGTH_SIZE;
use crate::repository::Repository;

/// Worker threads used unless told otherwise.
pub const DEFAULT_THREADS: usize = 4;

/// What to check beyond the structure.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// Which packs to read completely; `None` reads none.
    pub read_data: Option<ReadDataSubset>,
    /// List indexed blobs no snapshot references (as hints). Costs memory
    /// for a set of every referenced data blob id.
    pub check_unused: bool,
    /// Worker threads for loading files and reading packs (at least 1).
    pub threads: usize,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            read_data: None,
            check_unused: false,
            threads: DEFAULT_THREADS,
        }
    }
}

/// The phases of a check, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    LoadIndex,
    CheckPacks,
    CheckStructure,
    /// Reading `packs` packs, selected out of the `total` indexed ones.
    ReadData {
        packs: usize,
        total: usize,
    },
}

/// Progress of a check, delivered on the calling thread as it happens.
#[derive(Debug)]
pub enum Event<'a> {
    /// A phase begins.
    Start(Phase),
    /// A problem was found (also kept in the [`CheckReport`]).
    Finding(&'a Finding),
    /// A phase is over.
    Done(Phase),
}

/// The outcome of a check.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Every problem found, errors and hints, in the order found.
    pub findings: Vec<Finding>,
    /// Index files listed.
    pub index_files: usize,
    /// Packs the index lists.
    pub packs: usize,
    /// Snapshot files listed.
    pub snapshots: usize,
    /// Distinct trees reached from the snapshots.
    pub trees: usize,
    /// Packs read completely.
    pub packs_read: usize,
    /// False if the check stopped after the index phase because index files
    /// were unreadable.
    pub complete: bool,
}

impl CheckReport {
    /// The findings that mean damage.
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.is_error())
    }

    /// The informational findings.
    pub fn hints(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| !f.is_error())
    }

    /// True if every phase ran and found no error.
    pub fn is_ok(&self) -> bool {
        self.complete && self.errors().next().is_none()
    }
}

/// Check `repo` (see the module docs). `on_event` sees each phase and each
/// finding as it happens. Problems in the repository are findings in the
/// report; `Err` is returned only when the check cannot proceed at all
/// (e.g. the backend cannot list files) or for an invalid subset.
pub fn check(
    repo: &Repository,
    opts: &CheckOptions,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<CheckReport> {
    let threads = opts.threads.max(1);
    let mut rec = Recorder {
        findings: Vec::new(),
        on_event,
    };
    let mut report = CheckReport::default();

    rec.event(Event::Start(Phase::LoadIndex));
    let loaded = load_index(repo, threads, &mut rec)?;
    report.index_files = loaded.files;
    report.packs = loaded.pack_sizes.len();
    rec.event(Event::Done(Phase::LoadIndex));
    if rec.findings.iter().any(Finding::is_error) {
        report.findings = rec.findings;
        return Ok(report);
    }
    let index = loaded.index;

    rec.event(Event::Start(Phase::CheckPacks));
    let listed = check_packs(repo, &loaded.pack_sizes, &mut rec)?;
    rec.event(Event::Done(Phase::CheckPacks));

    rec.event(Event::Start(Phase::CheckStructure));
    let structure = structure::check(repo, &index, threads, opts.check_unused, &mut rec)?;
    report.snapshots = structure.snapshots;
    report.trees = structure.trees.len();
    if let Some(data) = &structure.data {
        report_unused(&index, data, &structure.trees, &mut rec);
    }
    rec.event(Event::Done(Phase::CheckStructure));

    if let Some(subset) = &opts.read_data {
        let mut candidates: Vec<(PackId, u64)> = loaded.pack_sizes.into_iter().collect();
        candidates.sort_unstable();
        let mut selected = subset.select(&candidates)?;
        selected.sort_unstable();
        // Missing packs were reported by the pack phase already.
        let jobs: Vec<(PackId, u64)> = selected
            .iter()
            .filter_map(|id| listed.get(id).map(|&size| (*id, size)))
            .collect();
        let phase = Phase::ReadData {
            packs: selected.len(),
            total: candidates.len(),
        };
        rec.event(Event::Start(phase));
        report.packs_read = jobs.len();
        read::read_packs(repo, &index, jobs, threads, &mut rec);
        rec.event(Event::Done(phase));
    }

    report.findings = rec.findings;
    report.complete = true;
    Ok(report)
}

/// Collects findings and forwards every event to the caller.
pub(super) struct Recorder<'a> {
    findings: Vec<Finding>,
    on_event: &'a mut dyn FnMut(Event<'_>),
}

impl Recorder<'_> {
    fn event(&mut self, event: Event<'_>) {
        (self.on_event)(event);
    }

    /// Record a finding.
    pub(super) fn add(&mut self, finding: Finding) {
        (self.on_event)(Event::Finding(&finding));
        self.findings.push(finding);
    }
}

/// The index as the checker sees it.
struct LoadedIndex {
    index: MasterIndex,
    /// Index files listed.
    files: usize,
    /// Every pack with at least one indexed blob, and the file size its
    /// entries imply.
    pack_sizes: HashMap<PackId, u64>,
}

/// Load every index file on its own; see phase 1 in the module docs.
fn load_index(repo: &Repository, threads: usize, rec: &mut Recorder<'_>) -> Result<LoadedIndex> {
    let ids: Vec<IndexId> = repo
        .list_ids(FileType::Index)?
        .into_iter()
        .map(IndexId)
        .collect();
    let files = ids.len();
    let mut index = MasterIndex::new();
    let mut pack_to_index: HashMap<PackId, Vec<IndexId>> = HashMap::new();
    parallel::map(
        threads,
        ids,
        |id| (id, load_index_file(repo, &id)),
        |(id, loaded)| match loaded {
            Err(error) => rec.add(Finding::IndexUnreadable { index: id, error }),
            Ok((file, old_format)) => {
                if old_format {
                    rec.add(Finding::OldIndexFormat { index: id });
                }
                for pack in file.packs.iter().filter(|p| !p.blobs.is_empty()) {
                    let indexes = pack_to_index.entry(pack.id).or_default();
                    if indexes.last() != Some(&id) {
                        indexes.push(id);
                    }
                }
                index.add_index_file(&file);
            }
        },
    );
    index.compact();

    // Sizes as restic computes them: every distinct entry's length and
    // header entry, plus the header's encryption overhead and length field.
    let overhead = (CIPHERTEXT_OVERHEAD + HEADER_LENGTH_SIZE) as u64;
    let mut packs: HashMap<PackId, (u64, bool, bool)> = HashMap::new();
    for (handle, entry) in index.iter() {
        let (size, data, tree) = packs.entry(entry.pack).or_insert((overhead, false, false));
        let header_entry = entry.to_pack_blob(&handle).entry_size() as u64;
        *size += u64::from(entry.length) + header_entry;
        match handle.tpe {
            BlobType::Data => *data = true,
            BlobType::Tree => *tree = true,
        }
    }
    let mut ids: Vec<PackId> = packs.keys().copied().collect();
    ids.sort_unstable();
    for pack in ids {
        if let Some(indexes) = pack_to_index.get_mut(&pack).filter(|i| i.len() > 1) {
            indexes.sort_unstable();
            let indexes = std::mem::take(indexes);
            rec.add(Finding::DuplicatePack { pack, indexes });
        }
        if matches!(packs.get(&pack), Some((_, true, true))) {
            rec.add(Finding::MixedPack { pack });
        }
    }
    Ok(LoadedIndex {
        index,
        files,
        pack_sizes: packs
            .into_iter()
            .map(|(id, (size, ..))| (id, size))
            .collect(),
    })
}

/// Load, decrypt and parse one index file; also whether it is in the
/// pre-0.8 format (a bare JSON array).
fn load_index_file(repo: &Repository, id: &IndexId) -> Result<(IndexFile, bool)> {
    let plain = repo.load_unpacked(FileType::Index, &id.to_hex())?;
    let old_format = plain.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let file = IndexFile::from_json_parallel(&plain).map_err(|e| match e {
        Error::Corrupt { reason, .. } => Error::corrupt(format!("index {id}"), reason),
        other => other,
    })?;
    Ok((file, old_format))
}

/// Compare the pack files in the backend with the index; see phase 2.
/// Returns the listed packs and their sizes.
fn check_packs(
    repo: &Repository,
    expected: &HashMap<PackId, u64>,
    rec: &mut Recorder<'_>,
) -> Result<HashMap<PackId, u64>> {
    let listed: HashMap<PackId, u64> = repo.list_packs()?.into_iter().collect();
    let mut indexed: Vec<(&PackId, &u64)> = expected.iter().collect();
    indexed.sort_unstable();
    for (&pack, &expected) in indexed {
        match listed.get(&pack) {
            None => rec.add(Finding::PackMissing { pack }),
            Some(&actual) if actual != expected => rec.add(Finding::PackSizeMismatch {
                pack,
                expected,
                actual,
            }),
            Some(_) => {}
        }
    }
    let mut orphans: Vec<PackId> = listed
        .keys()
        .filter(|id| !expected.contains_key(id))
        .copied()
        .collect();
    orphans.sort_unstable();
    for pack in orphans {
        rec.add(Finding::UnreferencedPack { pack });
    }
    Ok(listed)
}

/// Report indexed blobs that no snapshot references.
fn report_unused(
    index: &MasterIndex,
    data: &HashSet<crate::id::BlobId>,
    trees: &HashSet<TreeId>,
    rec: &mut Recorder<'_>,
) {
    let mut unused: Vec<BlobHandle> = index
        .iter()
        .map(|(handle, _)| handle)
        .filter(|h| match h.tpe {
            BlobType::Data => !data.contains(&h.id),
            BlobType::Tree => !trees.contains(&TreeId::from(h.id)),
        })
        .collect();
    unused.sort_unstable();
    unused.dedup();
    for blob in unused {
        rec.add(Finding::UnusedBlob { blob });
    }
}
