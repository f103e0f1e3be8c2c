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
//! each worker holds one window and one [`BlobDecoder`] (blobs are
//! decrypted in place in the window, after it was hashed into the pack's
//! SHA-256), and the index entries of the selected
//! packs are gathered in rounds of about [`BLOBS_PER_ROUND`] entries rather
//! than all at once. Nothing is written.

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};

use crate::backend::FileType;
use crate::decode::BlobDecoder;
use crate::error::{Error, Result};
use crate::id::{Id, PackId};
use crate::index::MasterIndex;
use crate::pack::{self, PackBlob};
use crate::repository::Repository;

use super::finding::{Finding, PackProblem};
use super::Recorder;
use crate::maintenance::parallel;

/// Bytes read from a pack per request (more only for a larger blob).
/// Large enough that a request's cost is its bytes, small enough that the
/// workers' windows stay a small part of the memory used: a check holds
/// one window per thread, and 8 MiB windows cost 50 MiB more peak memory
/// with 8 threads than 2 MiB ones, for the same CPU and wall time.
const READ_WINDOW: u64 = 2 << 20;

/// Index entries gathered per round of packs.
const BLOBS_PER_ROUND: usize = 1 << 20;

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
        parallel::map_with(
            threads,
            jobs,
            BlobDecoder::new,
            |decoder, (pack, size, blobs)| {
                let problems = check_pack(repo, decoder, &pack, size, blobs, READ_WINDOW);
                (pack, problems)
            },
            |(pack, problems)| {
                for problem in problems {
                    rec.add(Finding::Pack { pack, problem });
                }
            },
        );
    }
}

/// Read pack `pack` of `size` bytes, in requests of about `window` bytes,
/// and check it against `blobs`, its entries in the index.
fn check_pack(
    repo: &Repository,
    decoder: &mut BlobDecoder,
    pack: &PackId,
    size: u64,
    mut blobs: Vec<PackBlob>,
    window: u64,
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
    let mut tail = Tail::default();
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
                Ok(mut data) => verify_blob(repo, decoder, pack, &first, &mut data, &mut problems),
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
            if u64::from(b.offset) < end || b.end() > size || b.end() - pos > window {
                break;
            }
            end = b.end();
            j += 1;
        }
        let mut window = match read(pos, end - pos) {
            Ok(w) => w,
            Err(e) => {
                problems.push(PackProblem::Unreadable(e));
                return problems;
            }
        };
        hasher.update(&window);
        tail.keep_end_of(pos, &window);
        // Hashed and kept above, so the blobs may be decrypted in place.
        for b in &blobs[i..j] {
            let range = usize::try_from(u64::from(b.offset) - pos)
                .ok()
                .zip(usize::try_from(b.end() - pos).ok())
                .and_then(|(start, stop)| window.get_mut(start..stop));
            match range {
                Some(data) => verify_blob(repo, decoder, pack, b, data, &mut problems),
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
        let length = (size - pos).min(window);
        match read(pos, length) {
            Ok(data) => {
                hasher.update(&data);
                tail.append(pos, data);
            }
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

    // Parsed from the bytes read above; read again only if the index was
    // so wrong that they do not cover the header.
    let header = pack::read_header(repo.key(), pack, size, |offset, length| {
        match tail.get(offset, length) {
            Some(bytes) => Ok(bytes.to_vec()),
            None => read(offset, length),
        }
    });
    match header {
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

/// The first request of [`pack::read_header`]: this many bytes at the end
/// of the file.
const HEADER_PROBE: usize = pack::reader::EAGER_ENTRIES * pack::header::COMPRESSED_ENTRY_SIZE
    + crate::crypto::CIPHERTEXT_OVERHEAD
    + pack::HEADER_LENGTH_SIZE;

/// The last bytes of a pack streamed so far, kept so that its header can be
/// parsed without reading it again: the end of the last blob window (as
/// much as [`HEADER_PROBE`] needs) and what follows it.
#[derive(Default)]
struct Tail {
    /// Pack offset of `bytes[0]`.
    start: u64,
    bytes: Vec<u8>,
}

impl Tail {
    /// Keep the end of `data`, read at `start`.
    fn keep_end_of(&mut self, start: u64, data: &[u8]) {
        let skip = data.len().saturating_sub(HEADER_PROBE);
        self.start = start + skip as u64;
        self.bytes.clear();
        self.bytes.extend_from_slice(&data[skip..]);
    }

    /// Add `data`, read at `start`: appended to a short run of kept bytes
    /// it continues, else it replaces them.
    fn append(&mut self, start: u64, data: Vec<u8>) {
        if self.bytes.len() <= HEADER_PROBE && self.start + self.bytes.len() as u64 == start {
            self.bytes.extend_from_slice(&data);
        } else {
            self.start = start;
            self.bytes = data;
        }
    }

    /// The `length` bytes at pack offset `offset`, if kept.
    fn get(&self, offset: u64, length: u64) -> Option<&[u8]> {
        let from = usize::try_from(offset.checked_sub(self.start)?).ok()?;
        let to = from.checked_add(usize::try_from(length).ok()?)?;
        self.bytes.get(from..to)
    }
}

/// Verify `blob` from its `stored` bytes, which are decrypted in place.
fn verify_blob(
    repo: &Repository,
    decoder: &mut BlobDecoder,
    pack: &PackId,
    blob: &PackBlob,
    stored: &mut [u8],
    problems: &mut Vec<PackProblem>,
) {
    if let Err(error) = decoder.decode(repo.key(), pack, blob, stored) {
        problems.push(PackProblem::Blob {
            blob: blob.handle(),
            error,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::backend::{Backend, MemBackend};
    use crate::blob::BlobType;
    use crate::crypto::kdf::KdfParams;
    use crate::repository::InitOptions;

    /// A repository with one pack of eight 2000-byte data blobs; returns
    /// the pack, its size and its index entries.
    fn one_pack() -> (Arc<dyn Backend>, Repository, PackId, u64, Vec<PackBlob>) {
        one_pack_on(Arc::new(MemBackend::new()))
    }

    fn one_pack_on(
        be: Arc<dyn Backend>,
    ) -> (Arc<dyn Backend>, Repository, PackId, u64, Vec<PackBlob>) {
        let opts = InitOptions {
            kdf: KdfParams::insecure_fast(),
            ..InitOptions::default()
        };
        let repo = Repository::init(be.clone(), b"pw", &opts).unwrap();
        for n in 0..8u32 {
            let mut data = Vec::new();
            let mut block = Id::hash(&n.to_le_bytes());
            while data.len() < 2000 {
                data.extend_from_slice(&block.0);
                block = Id::hash(&block.0);
            }
            repo.save_blob(BlobType::Data, &data).unwrap();
        }
        repo.flush().unwrap();
        let (pack, size) = repo.list_packs().unwrap()[0];
        let blobs: Vec<PackBlob> = repo
            .index()
            .iter()
            .map(|(h, e)| e.to_pack_blob(&h))
            .collect();
        assert_eq!(blobs.len(), 8);
        (be, repo, pack, size, blobs)
    }

    /// [`check_pack`] with a fresh decoder.
    fn check(
        repo: &Repository,
        pack: &PackId,
        size: u64,
        blobs: Vec<PackBlob>,
        window: u64,
    ) -> Vec<PackProblem> {
        check_pack(repo, &mut BlobDecoder::new(), pack, size, blobs, window)
    }

    #[test]
    fn windows_of_any_size_verify_a_good_pack() {
        let (_, repo, pack, size, blobs) = one_pack();
        // Smaller than a blob, a few blobs, and the whole pack.
        for window in [1, 5000, 1 << 30] {
            let problems = check(&repo, &pack, size, blobs.clone(), window);
            assert!(problems.is_empty(), "window {window}: {problems:?}");
        }
    }

    #[test]
    fn every_byte_is_read_once_header_included() {
        use crate::backend::{Observed, Op};
        use std::sync::atomic::{AtomicU64, Ordering};
        let pack_bytes = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&pack_bytes);
        let counting = Observed::new(MemBackend::new(), move |op: Op<'_>| {
            if let Op::Read {
                tpe: FileType::Pack,
                length,
                ..
            }
            | Op::ReadRange {
                tpe: FileType::Pack,
                length,
                ..
            } = op
            {
                counter.fetch_add(length, Ordering::Relaxed);
            }
        });
        let (_, repo, pack, size, blobs) = one_pack_on(Arc::new(counting));
        for window in [5000, 1 << 30] {
            pack_bytes.store(0, Ordering::Relaxed);
            let problems = check(&repo, &pack, size, blobs.clone(), window);
            assert!(problems.is_empty(), "window {window}: {problems:?}");
            assert_eq!(pack_bytes.load(Ordering::Relaxed), size, "window {window}");
        }
    }

    #[test]
    fn a_damaged_header_is_found_in_the_bytes_already_read() {
        let (be, repo, pack, size, blobs) = one_pack();
        let mut bytes = be.read(FileType::Pack, &pack.to_hex()).unwrap();
        let header_byte = bytes.len() - 10;
        bytes[header_byte] ^= 1;
        be.remove(FileType::Pack, &pack.to_hex()).unwrap();
        be.write(FileType::Pack, &pack.to_hex(), &bytes).unwrap();
        for window in [1, 5000, 1 << 30] {
            let problems = check(&repo, &pack, size, blobs.clone(), window);
            assert_eq!(problems.len(), 2, "window {window}: {problems:?}");
            assert!(matches!(problems[0], PackProblem::HashMismatch { .. }));
            assert!(matches!(problems[1], PackProblem::HeaderUnreadable(_)));
        }
    }

    #[test]
    fn damage_in_a_later_window_is_found() {
        let (be, repo, pack, size, blobs) = one_pack();
        let mut victim = blobs[0];
        for b in &blobs {
            if b.offset > victim.offset {
                victim = *b;
            }
        }
        let mut bytes = be.read(FileType::Pack, &pack.to_hex()).unwrap();
        bytes[victim.offset as usize + 50] ^= 1;
        be.remove(FileType::Pack, &pack.to_hex()).unwrap();
        be.write(FileType::Pack, &pack.to_hex(), &bytes).unwrap();
        let problems = check(&repo, &pack, size, blobs, 5000);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(matches!(&problems[0],
            PackProblem::Blob { blob, error: Error::MacMismatch(_) } if *blob == victim.handle()));
        assert!(matches!(problems[1], PackProblem::HashMismatch { .. }));
    }

    #[test]
    fn a_wrong_index_entry_is_found_without_reading_out_of_bounds() {
        let (_, repo, pack, size, blobs) = one_pack();
        let mut wrong = blobs.clone();
        // Shift one entry onto its neighbour and move another past the end.
        wrong.sort_by_key(|b| b.offset);
        wrong[3].offset -= 10;
        wrong[7].offset += 100_000;
        let problems = check(&repo, &pack, size, wrong.clone(), 5000);
        let has = |f: &dyn Fn(&PackProblem) -> bool| problems.iter().any(f);
        assert!(has(&|p| matches!(p, PackProblem::IndexNotContiguous)));
        assert!(has(&|p| matches!(p,
            PackProblem::BlobBeyondEnd { blob, .. } if *blob == wrong[7].handle())));
        assert!(has(&|p| matches!(p,
            PackProblem::Blob { blob, .. } if *blob == wrong[3].handle())));
        assert!(has(&|p| matches!(p,
            PackProblem::HeaderBlobNotInIndex { blob, .. } if *blob == wrong[3].handle())));
        assert!(has(&|p| matches!(p,
            PackProblem::IndexBlobNotInHeader { blob, offset } if *blob == wrong[7].handle() && *offset == wrong[7].offset)));
        // The file itself is intact.
        assert!(!has(&|p| matches!(p, PackProblem::HashMismatch { .. })));
    }
}
