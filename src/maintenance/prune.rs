//! `prune`: remove data no snapshot needs, with restic 0.14's planning
//! (`cmd/restic/cmd_prune.go`) and a crash-safe order of changes.
//!
//! Planning ([`plan`]) is read-only:
//! 1. the used blobs are collected from every snapshot's trees;
//! 2. every indexed blob is classified as used, duplicate or unused, and a
//!    duplicate is counted as used in exactly one pack (preferring packs that
//!    hold other used blobs);
//! 3. each pack is kept, removed (nothing used), or becomes a candidate for
//!    repacking (partly used, mixed, an uncompressed tree pack in a v2
//!    repository, or too small); candidates are taken, tree packs and small
//!    packs first and then by falling share of unused bytes, until the
//!    unused data left is within `--max-unused`, never beyond
//!    `--max-repack-size`.
//!
//! Executing ([`execute`]) changes the repository in an order that keeps
//! every kept snapshot readable if the process dies at any moment:
//! 1. packs no index lists are removed (they hold nothing indexed; the
//!    exclusive lock rules out a backup writing them right now);
//! 2. the used blobs of the packs to repack are read, verified, and written
//!    into new packs;
//! 3. new index files listing every remaining and new pack are written, each
//!    superseding all old ones, and only then are the old index files removed;
//! 4. the repacked and unused packs are removed.
//!
//! A crash leaves at worst unreferenced packs or superseded index files,
//! which the next prune cleans up. The caller must hold an exclusive lock.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::str::FromStr;
use std::sync::Arc;

use crate::backend::FileType;
use crate::blob::{BlobHandle, BlobType};
use crate::decode::BlobDecoder;
use crate::error::{Error, Result};
use crate::id::{Id, IndexId, PackId, SnapshotId, TreeId};
use crate::pack::{self, PackBlob};
use crate::repository::Repository;

use super::pack_sink::{self, encode};
use super::parallel;
use super::used::used_blobs;

/// Bytes read from a pack per request while repacking (more only for a
/// larger blob).
const READ_WINDOW: u64 = 8 << 20;

/// Unused bytes between two needed blobs above which they are read with
/// separate requests rather than reading the unused blobs in between
/// (restic reads whole packs; skipping unused chunks saves I/O).
const MAX_READ_GAP: u64 = 128 << 10;

/// `--max-unused`: how much unused data may remain after pruning.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaxUnused {
    /// Repack only what must be repacked.
    Unlimited,
    /// At most this percentage (0 <= p < 100) of the remaining data.
    Percent(f64),
    /// At most this many bytes.
    Bytes(u64),
}

impl Default for MaxUnused {
    /// restic's default, 5%.
    fn default() -> Self {
        MaxUnused::Percent(5.0)
    }
}

impl MaxUnused {
    /// The unused bytes tolerated when `used` bytes are in use.
    pub fn limit(&self, used: u64) -> u64 {
        match *self {
            MaxUnused::Unlimited => u64::MAX,
            // Casts: restic computes this in float64 too.
            MaxUnused::Percent(p) => (p / (100.0 - p) * used as f64) as u64,
            MaxUnused::Bytes(b) => b,
        }
    }
}

impl FromStr for MaxUnused {
    type Err = Error;

    /// `unlimited`, `x%`, or a size with an optional `b k m g t` suffix.
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        let invalid = |why: &str| {
            Error::InvalidArgument(format!("invalid value for --max-unused {s:?}: {why}"))
        };
        if t == "unlimited" {
            return Ok(MaxUnused::Unlimited);
        }
        if let Some(p) = t.strip_suffix('%') {
            let p: f64 = p.parse().map_err(|_| invalid("not a percentage"))?;
            if p.is_nan() || p < 0.0 {
                return Err(invalid("percentage must be positive"));
            }
            if p >= 100.0 {
                return Err(invalid("percentage must be below 100%"));
            }
            return Ok(MaxUnused::Percent(p));
        }
        super::check::parse_size(t)
            .map(MaxUnused::Bytes)
            .ok_or_else(|| invalid("want a size, a percentage or 'unlimited'"))
    }
}

/// Parse a size as restic's `--max-repack-size` takes it (`b k m g t`).
pub fn parse_size(s: &str) -> Result<u64> {
    super::check::parse_size(s.trim()).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "invalid size {s:?}: want a number with an optional suffix b, k, m, g or t"
        ))
    })
}

/// What `prune` may do.
#[derive(Clone, Debug)]
pub struct PruneOptions {
    pub max_unused: MaxUnused,
    /// Stop repacking before this many bytes (`None`: no limit).
    pub max_repack_bytes: Option<u64>,
    /// Repack only tree (cacheable) packs.
    pub repack_cacheable_only: bool,
    /// Repack packs below 80% of the target pack size (restic: 4%).
    pub repack_small: bool,
    /// In v2 repositories, compress every uncompressed blob.
    pub repack_uncompressed: bool,
    /// Target size of new packs in bytes.
    pub pack_size: u64,
    /// Worker threads for loading trees and reading packs.
    pub threads: usize,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            max_unused: MaxUnused::default(),
            max_repack_bytes: None,
            repack_cacheable_only: false,
            repack_small: false,
            repack_uncompressed: false,
            pack_size: 16 << 20,
            threads: 4,
        }
    }
}

/// Blob counts and byte sums, as restic prints them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Count {
    pub blobs: u64,
    pub bytes: u64,
}

impl Count {
    fn add(&mut self, blobs: u64, bytes: u64) {
        self.blobs += blobs;
        self.bytes += bytes;
    }
}

/// restic's prune statistics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneStats {
    pub used: Count,
    pub duplicate: Count,
    pub unused: Count,
    /// Bytes in packs no index lists.
    pub unreferenced_bytes: u64,
    /// Blobs and bytes in packs that are removed whole.
    pub remove: Count,
    /// Everything in the packs to repack.
    pub repack: Count,
    /// The unused part of the packs to repack.
    pub repack_removed: Count,
    pub packs_used: u64,
    pub packs_unused: u64,
    pub packs_partly_used: u64,
    pub packs_unreferenced: u64,
    pub packs_keep: u64,
    pub packs_repack: u64,
    pub packs_remove: u64,
}

/// What a prune will do; made by [`plan`], carried out by [`execute`].
#[derive(Debug, Default)]
pub struct PrunePlan {
    /// Packs no index lists: removed first.
    pub remove_first: Vec<PackId>,
    /// Packs whose used blobs are copied into new packs, then removed.
    pub repack: Vec<PackId>,
    /// Packs with nothing used: removed.
    pub remove: Vec<PackId>,
    /// Packs the index lists but that are missing and not needed: dropped
    /// from the index.
    pub missing_unneeded: Vec<PackId>,
    /// Blobs to copy out of the repacked packs.
    keep_blobs: HashSet<BlobHandle>,
    /// Every indexed pack and its blobs.
    packs: HashMap<PackId, Vec<PackBlob>>,
    /// The index files the plan was made from.
    index_files: Vec<IndexId>,
    pub stats: PruneStats,
}

impl PrunePlan {
    /// True if executing the plan changes nothing.
    pub fn is_empty(&self) -> bool {
        self.remove_first.is_empty()
            && self.repack.is_empty()
            && self.remove.is_empty()
            && self.missing_unneeded.is_empty()
    }
}

/// What kind of blobs a pack holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PackKind {
    Data,
    Tree,
    Mixed,
}

#[derive(Clone, Copy, Debug)]
struct PackInfo {
    used_blobs: u64,
    unused_blobs: u64,
    used_size: u64,
    unused_size: u64,
    kind: PackKind,
    /// Holds an uncompressed blob; after classification: must be compressed.
    uncompressed: bool,
}

impl PackInfo {
    fn size(&self) -> u64 {
        self.used_size + self.unused_size
    }
}

/// Make a plan (see the module docs). Loads the index into `repo`.
/// Snapshots in `ignore` count as gone (for `forget --prune --dry-run`).
/// `progress` receives restic's status lines.
pub fn plan(
    repo: &Repository,
    opts: &PruneOptions,
    ignore: &HashSet<SnapshotId>,
    progress: &mut dyn FnMut(&str),
) -> Result<PrunePlan> {
    let threads = opts.threads.max(1);
    progress("loading indexes...");
    let index_files = repo.load_index_ids(threads)?;

    progress("loading all snapshots...");
    let ids: Vec<SnapshotId> = repo
        .list_ids(FileType::Snapshot)?
        .into_iter()
        .map(SnapshotId)
        .filter(|id| !ignore.contains(id))
        .collect();
    let mut roots: Vec<TreeId> = Vec::with_capacity(ids.len());
    let mut first_error = None;
    parallel::map(
        threads,
        ids,
        |id| repo.load_snapshot(&id),
        |res| match res {
            Ok(sn) => roots.push(sn.tree),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        },
    );
    if let Some(e) = first_error {
        return Err(Error::corrupt(
            "snapshots",
            format!("failed loading snapshot: {e}"),
        ));
    }
    progress(&format!(
        "finding data that is still in use for {} snapshots",
        roots.len()
    ));
    let used = used_blobs(repo, roots, threads)?;

    progress("searching used packs...");
    let index = repo.index();
    let mut plan = PrunePlan {
        index_files,
        ..PrunePlan::default()
    };
    let stats = &mut plan.stats;

    // Classify every indexed blob: used (first copy), duplicate, unused.
    let mut keep_blobs: HashSet<BlobHandle> = HashSet::new();
    let mut duplicates: HashMap<BlobHandle, u8> = HashMap::new();
    for (handle, entry) in index.iter() {
        let size = u64::from(entry.length);
        plan.packs
            .entry(entry.pack)
            .or_default()
            .push(entry.to_pack_blob(&handle));
        if keep_blobs.contains(&handle) {
            let count = duplicates.entry(handle).or_insert(1);
            *count = count.saturating_add(1);
            stats.duplicate.add(1, size);
        } else if used.contains(&handle) {
            keep_blobs.insert(handle);
            stats.used.add(1, size);
        } else {
            stats.unused.add(1, size);
        }
    }
    let missing: Vec<&BlobHandle> = used.iter().filter(|h| !keep_blobs.contains(h)).collect();
    if !missing.is_empty() {
        let mut names: Vec<String> = missing.iter().take(10).map(|h| h.to_string()).collect();
        names.sort();
        return Err(Error::corrupt(
            "index",
            format!(
                "{} used blobs are not in the index (e.g. {}); integrity check failed: data seems to be missing, will not prune to prevent (additional) data loss; run `cairn repair index` and `cairn check`",
                missing.len(),
                names.join(", ")
            ),
        ));
    }
    drop(used);

    let mut infos: HashMap<PackId, PackInfo> = HashMap::new();
    for (pack, blobs) in &plan.packs {
        let header =
            pack::header::pack_size(blobs) - blobs.iter().map(|b| u64::from(b.length)).sum::<u64>();
        let kind = match (
            blobs.iter().any(|b| b.tpe == BlobType::Data),
            blobs.iter().any(|b| b.tpe == BlobType::Tree),
        ) {
            (true, true) => PackKind::Mixed,
            (false, true) => PackKind::Tree,
            _ => PackKind::Data,
        };
        let mut info = PackInfo {
            used_blobs: 0,
            unused_blobs: 0,
            used_size: header,
            unused_size: 0,
            kind,
            uncompressed: blobs.iter().any(|b| !b.is_compressed()),
        };
        for b in blobs {
            let h = b.handle();
            if duplicates.contains_key(&h) {
                continue;
            }
            if keep_blobs.contains(&h) {
                info.used_blobs += 1;
                info.used_size += u64::from(b.length);
            } else {
                info.unused_blobs += 1;
                info.unused_size += u64::from(b.length);
            }
        }
        infos.insert(*pack, info);
    }
    // Each duplicate counts as used exactly once: in a pack that has other
    // used blobs, else in its last copy. Walk in index order, as restic.
    if !duplicates.is_empty() {
        for (handle, entry) in index.iter() {
            let Some(count) = duplicates.get_mut(&handle) else {
                continue;
            };
            let Some(info) = infos.get_mut(&entry.pack) else {
                continue;
            };
            let size = u64::from(entry.length);
            if *count == 0 {
                info.unused_blobs += 1;
                info.unused_size += size;
            } else if info.used_blobs > 0 || *count == 1 {
                info.used_blobs += 1;
                info.used_size += size;
                *count = 0;
            } else {
                info.unused_blobs += 1;
                info.unused_size += size;
                *count -= 1;
            }
        }
    }
    drop(index);

    decide(repo, opts, &mut plan, infos, &mut keep_blobs)?;
    plan.keep_blobs = keep_blobs;
    Ok(plan)
}

/// Decide each pack's fate (restic's `decidePackAction`).
fn decide(
    repo: &Repository,
    opts: &PruneOptions,
    plan: &mut PrunePlan,
    mut infos: HashMap<PackId, PackInfo>,
    keep_blobs: &mut HashSet<BlobHandle>,
) -> Result<()> {
    let stats = &mut plan.stats;
    let target = if opts.repack_small {
        opts.pack_size / 5 * 4
    } else {
        opts.pack_size / 25
    };
    let v2 = repo.version() >= 2;
    let mut listed = repo.list_packs()?;
    listed.sort_unstable();
    let mut candidates: Vec<(PackId, PackInfo)> = Vec::new();
    let mut small: Vec<(PackId, PackInfo)> = Vec::new();
    let mut removed: HashSet<PackId> = HashSet::new();
    for (id, size) in listed {
        let Some(mut p) = infos.remove(&id) else {
            plan.remove_first.push(id);
            stats.unreferenced_bytes += size;
            continue;
        };
        if p.size() != size && p.used_blobs != 0 {
            return Err(Error::corrupt(
                format!("pack {id}"),
                format!(
                    "calculated size {} does not match real size {size}; run `cairn repair index`",
                    p.size()
                ),
            ));
        }
        match (p.used_blobs, p.unused_blobs) {
            (0, _) => stats.packs_unused += 1,
            (_, 0) => stats.packs_used += 1,
            _ => stats.packs_partly_used += 1,
        }
        let must_compress =
            v2 && (p.kind == PackKind::Tree || opts.repack_uncompressed) && p.uncompressed;
        p.uncompressed = must_compress;
        if p.used_blobs == 0 {
            plan.remove.push(id);
            removed.insert(id);
            stats.remove.add(p.unused_blobs, p.unused_size);
        } else if opts.repack_cacheable_only && p.kind == PackKind::Data {
            stats.packs_keep += 1;
        } else if p.unused_blobs == 0 && p.kind != PackKind::Mixed && !must_compress {
            if size >= target {
                stats.packs_keep += 1;
            } else {
                small.push((id, p));
            }
        } else {
            candidates.push((id, p));
        }
    }

    // What is left is indexed but missing.
    let mut missing: Vec<(PackId, PackInfo)> = infos.into_iter().collect();
    missing.sort_unstable_by_key(|(id, _)| *id);
    let needed: Vec<PackId> = missing
        .iter()
        .filter(|(_, p)| p.used_blobs > 0)
        .map(|(id, _)| *id)
        .collect();
    if !needed.is_empty() {
        let names: Vec<String> = needed.iter().map(|id| id.to_hex()).collect();
        return Err(Error::corrupt(
            "repository",
            format!(
                "the index references {} needed pack files which are missing: {}",
                needed.len(),
                names.join(", ")
            ),
        ));
    }
    for (id, p) in missing {
        stats.remove.add(p.unused_blobs, p.unused_size);
        plan.missing_unneeded.push(id);
    }

    if small.len() < 10 {
        // Too few to be worth it; also stops endless repacking of one pack.
        stats.packs_keep += small.len() as u64;
    } else {
        candidates.extend(small);
    }
    // Tree and mixed packs first, then small ones, then by falling share of
    // unused bytes (a cross-multiplied comparison, as restic), then by id.
    let is_small = |p: &PackInfo| p.size() < target;
    candidates.sort_by(|(ia, a), (ib, b)| {
        let non_data = |p: &PackInfo| p.kind != PackKind::Data;
        non_data(b)
            .cmp(&non_data(a))
            .then(is_small(b).cmp(&is_small(a)))
            .then(
                (u128::from(b.unused_size) * u128::from(a.used_size))
                    .cmp(&(u128::from(a.unused_size) * u128::from(b.used_size))),
            )
            .then(ia.cmp(ib))
    });

    let max_unused_after = opts.max_unused.limit(stats.used.bytes);
    let max_repack = opts.max_repack_bytes.unwrap_or(u64::MAX);
    let mut repack: HashSet<PackId> = HashSet::new();
    for (id, p) in candidates {
        let unused_after = stats
            .unused
            .bytes
            .saturating_sub(stats.remove.bytes)
            .saturating_sub(stats.repack_removed.bytes);
        let reached_unused = unused_after < max_unused_after;
        let reached_repack = stats.repack.bytes + p.size() >= max_repack;
        if reached_repack {
            stats.packs_keep += 1;
        } else if p.kind != PackKind::Data || p.uncompressed {
            repack.insert(id);
            stats.repack.add(p.used_blobs + p.unused_blobs, p.size());
            stats.repack_removed.add(p.unused_blobs, p.unused_size);
        } else if reached_unused && !is_small(&p) {
            stats.packs_keep += 1;
        } else {
            repack.insert(id);
            stats.repack.add(p.used_blobs + p.unused_blobs, p.size());
            stats.repack_removed.add(p.unused_blobs, p.unused_size);
        }
    }
    stats.packs_unreferenced = plan.remove_first.len() as u64;
    stats.packs_repack = repack.len() as u64;
    stats.packs_remove = plan.remove.len() as u64;

    if repack.is_empty() {
        keep_blobs.clear();
    } else {
        // Blobs with a copy in a pack that stays need not be copied.
        let missing: HashSet<&PackId> = plan.missing_unneeded.iter().collect();
        for (pack, blobs) in &plan.packs {
            if !removed.contains(pack) && !repack.contains(pack) && !missing.contains(pack) {
                for b in blobs {
                    keep_blobs.remove(&b.handle());
                }
            }
        }
    }
    plan.repack = repack.into_iter().collect();
    plan.repack.sort_unstable();
    Ok(())
}

/// A step of [`execute`], reported before it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Removing packs no index lists.
    RemoveUnreferenced(usize),
    /// Repacking this many packs.
    Repack(usize),
    /// Writing the new index.
    RebuildIndex,
    /// Removing this many packs that are no longer needed.
    RemovePacks(usize),
}

/// Carry out `plan` (see the module docs for the order). `step` is told
/// about each step before it starts.
pub fn execute(
    repo: &Repository,
    opts: &PruneOptions,
    mut plan: PrunePlan,
    step: &mut dyn FnMut(Step),
) -> Result<()> {
    let threads = opts.threads.max(1);
    if !plan.remove_first.is_empty() {
        step(Step::RemoveUnreferenced(plan.remove_first.len()));
        let ids = plan.remove_first.iter().map(|p| p.0).collect();
        repo.remove_files(FileType::Pack, ids, threads)?;
    }

    let mut new_packs = Vec::new();
    if !plan.repack.is_empty() {
        step(Step::Repack(plan.repack.len()));
        new_packs = repack(repo, opts, &plan.repack, &plan.packs, &mut plan.keep_blobs)?;
        if !plan.keep_blobs.is_empty() {
            return Err(Error::corrupt(
                "prune",
                format!(
                    "internal error: {} blobs were not repacked",
                    plan.keep_blobs.len()
                ),
            ));
        }
    }

    let gone: HashSet<PackId> = plan
        .repack
        .iter()
        .chain(&plan.remove)
        .chain(&plan.missing_unneeded)
        .copied()
        .collect();
    if !gone.is_empty() {
        step(Step::RebuildIndex);
        let mut packs: Vec<(PackId, Vec<PackBlob>)> = std::mem::take(&mut plan.packs)
            .into_iter()
            .filter(|(id, _)| !gone.contains(id))
            .collect();
        packs.sort_unstable_by_key(|(id, _)| *id);
        packs.extend(new_packs);
        repo.replace_index(packs, &plan.index_files, threads)?;
    }

    let remove: Vec<Id> = plan
        .repack
        .iter()
        .chain(&plan.remove)
        .map(|p| p.0)
        .collect();
    if !remove.is_empty() {
        step(Step::RemovePacks(remove.len()));
        repo.remove_files(FileType::Pack, remove, threads)?;
    }
    Ok(())
}

/// One blob read out of a pack for repacking: re-encoded if it had to be
/// compressed.
struct Copied {
    handle: BlobHandle,
    encrypted: Stored,
    uncompressed_length: Option<u32>,
}

/// The bytes of a [`Copied`] blob: a range of the window it was read in
/// (shared by the blobs of that window, so not copied again), or the blob
/// re-encoded.
enum Stored {
    InWindow(Arc<Vec<u8>>, Range<usize>),
    Encoded(Vec<u8>),
}

impl Stored {
    fn bytes(&self) -> &[u8] {
        match self {
            // The range was checked against the window when it was made.
            Stored::InWindow(window, range) => window.get(range.clone()).unwrap_or_default(),
            Stored::Encoded(bytes) => bytes,
        }
    }
}

/// Copy the blobs in `keep` out of `packs` into new packs; each copied blob
/// is taken out of `keep`. Returns the new packs.
fn repack(
    repo: &Repository,
    opts: &PruneOptions,
    packs: &[PackId],
    index: &HashMap<PackId, Vec<PackBlob>>,
    keep: &mut HashSet<BlobHandle>,
) -> Result<Vec<(PackId, Vec<PackBlob>)>> {
    // One job per read request rather than per pack, so that memory in
    // flight is bounded by the window size, not the pack size.
    let mut jobs: Vec<(PackId, Vec<PackBlob>)> = Vec::new();
    for id in packs {
        let mut blobs: Vec<PackBlob> = index
            .get(id)
            .map(|b| {
                b.iter()
                    .filter(|b| keep.contains(&b.handle()))
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        blobs.sort_unstable_by_key(|b| b.offset);
        jobs.extend(read_windows(&blobs).map(|w| (*id, w.to_vec())));
    }
    let v2 = repo.version() >= 2;
    let compress = |b: &PackBlob| {
        v2 && !b.is_compressed() && (b.tpe == BlobType::Tree || opts.repack_uncompressed)
    };
    let threads = opts.threads.max(1);
    // Storing a pack (hashing and writing it) costs less than reading and
    // verifying the blobs that fill it, which come from several packs and
    // wait on reads: one writer per four readers keeps up.
    let writers = threads.div_ceil(4);
    let ((), written) =
        pack_sink::with_background_writers(repo, opts.pack_size, writers, |sink| {
            let mut first_error: Option<Error> = None;
            parallel::map_with(
                threads,
                jobs,
                BlobDecoder::new,
                |decoder, (pack, blobs)| read_window(repo, decoder, &pack, &blobs, &compress),
                |res| {
                    if first_error.is_some() {
                        return;
                    }
                    let res = res.and_then(|copied| {
                        for c in copied {
                            // Skip a blob whose copy was already taken from
                            // another pack.
                            if keep.remove(&c.handle) {
                                let bytes = c.encrypted.bytes();
                                sink.add_encrypted(c.handle, bytes, c.uncompressed_length)?;
                            }
                        }
                        Ok(())
                    });
                    if let Err(e) = res {
                        first_error = Some(e);
                    }
                },
            );
            first_error.map_or(Ok(()), Err)
        })?;
    Ok(written)
}

/// Split `blobs` (of one pack, sorted by offset) into runs to be read with
/// one request each: about [`READ_WINDOW`] bytes at most (more only for a
/// larger blob), and never across a gap above [`MAX_READ_GAP`] or an
/// overlap.
fn read_windows(blobs: &[PackBlob]) -> impl Iterator<Item = &[PackBlob]> {
    let mut rest = blobs;
    std::iter::from_fn(move || {
        let first = rest.first()?;
        let start = u64::from(first.offset);
        let mut end = first.end();
        let mut n = 1;
        while let Some(b) = rest.get(n) {
            let offset = u64::from(b.offset);
            if offset < end || offset - end > MAX_READ_GAP || b.end() - start > READ_WINDOW {
                break;
            }
            end = b.end();
            n += 1;
        }
        let (window, tail) = rest.split_at(n);
        rest = tail;
        Some(window)
    })
}

/// Read `blobs` of `pack`, a run made by [`read_windows`], with one request
/// and verify each of them.
fn read_window(
    repo: &Repository,
    decoder: &mut BlobDecoder,
    pack: &PackId,
    blobs: &[PackBlob],
    compress: &dyn Fn(&PackBlob) -> bool,
) -> Result<Vec<Copied>> {
    let (Some(first), Some(last)) = (blobs.first(), blobs.last()) else {
        return Ok(Vec::new());
    };
    let start = u64::from(first.offset);
    let length = last.end().saturating_sub(start);
    let window = repo
        .backend()
        .read_range(FileType::Pack, &pack.to_hex(), start, length)?;
    let window = Arc::new(window);
    let mut out = Vec::with_capacity(blobs.len());
    for b in blobs {
        let (range, encrypted) = u64::from(b.offset)
            .checked_sub(start)
            .and_then(|s| usize::try_from(s).ok())
            .zip(usize::try_from(b.end().saturating_sub(start)).ok())
            .and_then(|(s, e)| Some((s..e, window.get(s..e)?)))
            .ok_or_else(|| Error::corrupt(format!("pack {pack}"), "short read"))?;
        let plain = decoder.decode_copy(repo.key(), pack, b, encrypted)?;
        if compress(b) {
            let (encrypted, uncompressed_length) = encode(repo, &plain.contiguous())?;
            out.push(Copied {
                handle: b.handle(),
                encrypted: Stored::Encoded(encrypted),
                uncompressed_length,
            });
        } else {
            out.push(Copied {
                handle: b.handle(),
                encrypted: Stored::InWindow(window.clone(), range),
                uncompressed_length: b.uncompressed_length,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "prune_tests.rs"]
mod tests;
