//! Batched blob reads: several blobs of one pack with one ranged read.
//!
//! [`Repository::load_blobs`] is the fast path for readers that want many
//! blobs at once (a FUSE mount reading ahead in a big file): it looks the
//! blobs up, sorts them by pack and offset, coalesces small neighbours into
//! *runs* (same pack, gaps of at most [`MAX_GAP`] bytes, spans of at most
//! [`MAX_SPAN`] bytes), reads each run with one backend call and decodes
//! every blob from its slice of the run. A blob of at least
//! [`OWN_READ_MIN`] stored bytes is a run of its own: it is read into a
//! buffer of its own, verified and decrypted where it lies, and when it is
//! stored uncompressed, or compressed as a zstd frame of raw blocks
//! (restic's incompressible data), that buffer is handed out as it is —
//! the plaintext is never copied, a raw frame's pieces are only moved
//! together in place ([`Repository::load_blobs_each`],
//! [`BlobDecoder::decode_owned`]).
//!
//! Invariants (the same as [`Repository::load_blob`]'s; blobs are decoded
//! by [`crate::decode`]):
//! - every blob's MAC is verified, its plaintext decompressed with a bound
//!   taken from the index and its SHA-256 compared with its id, so a
//!   corrupted pack or a wrong index entry is an error, never wrong data;
//! - results come back one per requested handle; a failing blob fails
//!   alone (a run whose read fails is retried blob by blob, so each blob
//!   gets its own precise error);
//! - allocations are bounded by the backend's file sizes and [`MAX_SPAN`],
//!   never by lengths an (untrusted) index claims: a claimed plaintext
//!   length above [`BULK_LIMIT`](crate::decode::BULK_LIMIT) takes the
//!   streaming decoder, which only grows its output as real output
//!   arrives.

use std::ops::Range;

use crate::backend::FileType;
use crate::blob::BlobHandle;
use crate::decode::BlobDecoder;
use crate::error::{Error, Result};
use crate::index::IndexEntry;
use crate::pack::PackBlob;

use super::Repository;

/// Largest gap between two blobs of a run: the bytes between them are read
/// and thrown away, which is cheaper than a second request.
pub const MAX_GAP: u64 = 64 << 10;

/// Largest span of one run (one backend read).
pub const MAX_SPAN: u64 = 16 << 20;

/// Blobs stored in at least this many bytes are read on their own, into a
/// buffer that then holds their plaintext: one request per blob costs
/// little at this size, and it saves copying the plaintext out of a run.
pub const OWN_READ_MIN: u32 = 256 << 10;

/// A decoded blob as [`Repository::load_blobs_each`] hands it out: the
/// plaintext is `buffer[range]`. For a blob read on its own and stored
/// uncompressed or as a raw zstd frame, `buffer` is the one it was read
/// and decrypted in (the IV, MAC and block headers around the plaintext
/// are the only waste); otherwise `range` covers all of `buffer`.
pub type BlobBuffer = (Vec<u8>, Range<usize>);

/// One blob of a run: where it is in the request and where in the pack.
#[derive(Clone, Copy, Debug)]
struct Wanted {
    slot: usize,
    handle: BlobHandle,
    entry: IndexEntry,
}

impl Wanted {
    fn start(&self) -> u64 {
        u64::from(self.entry.offset)
    }

    fn end(&self) -> u64 {
        self.start() + u64::from(self.entry.length)
    }

    /// Read on its own (see [`OWN_READ_MIN`]).
    fn alone(&self) -> bool {
        self.entry.length >= OWN_READ_MIN
    }

    /// The blob as its pack stores it.
    fn pack_blob(&self) -> PackBlob {
        self.entry.to_pack_blob(&self.handle)
    }
}

impl Repository {
    /// Load, verify and return several blobs; one result per handle, in
    /// order. Blobs stored next to each other in one pack are read with
    /// one backend request.
    pub fn load_blobs(&self, handles: &[BlobHandle]) -> Vec<Result<Vec<u8>>> {
        let mut results: Vec<Option<Result<Vec<u8>>>> = handles.iter().map(|_| None).collect();
        self.load_blobs_each(handles, |slot, result| {
            if let Some(r) = results.get_mut(slot) {
                *r = Some(result.map(|(mut buffer, range)| {
                    // Only blobs read alone and not decompressed keep
                    // their IV and MAC (and a raw frame's header) around
                    // them: a few dozen bytes to shift out.
                    buffer.truncate(range.end);
                    buffer.drain(..range.start);
                    buffer
                }));
            }
        });
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::corrupt("blob batch", "blob was not loaded"))))
            .collect()
    }

    /// Like [`load_blobs`](Self::load_blobs), but hand each result to
    /// `done(position in handles, result)` as soon as it is decoded (in
    /// pack order, not request order), so a consumer can use the first
    /// blobs while the rest are still being decoded; and hand it out as a
    /// [`BlobBuffer`], without copying a plaintext that can stay where it
    /// was decrypted.
    pub fn load_blobs_each(
        &self,
        handles: &[BlobHandle],
        mut done: impl FnMut(usize, Result<BlobBuffer>),
    ) {
        let mut wanted = Vec::with_capacity(handles.len());
        {
            let index = self.index.read();
            for (slot, handle) in handles.iter().enumerate() {
                match index.get(handle) {
                    Some(entry) => wanted.push(Wanted {
                        slot,
                        handle: *handle,
                        entry,
                    }),
                    None => done(
                        slot,
                        Err(Error::BlobNotInIndex(format!(
                            "{} {}",
                            handle.tpe, handle.id
                        ))),
                    ),
                }
            }
        }
        let mut decoder = BlobDecoder::new();
        for run in runs(wanted) {
            self.load_run(&mut decoder, &run, &mut done);
        }
    }

    /// Read one run and decode its blobs; on a failed read, fall back to
    /// one read per blob.
    fn load_run(
        &self,
        decoder: &mut BlobDecoder,
        run: &[Wanted],
        done: &mut impl FnMut(usize, Result<BlobBuffer>),
    ) {
        let (Some(first), Some(last)) = (run.first(), run.last()) else {
            return;
        };
        let base = first.start();
        let span = last.end() - base;
        let data = if run.len() == 1 {
            None
        } else {
            self.backend
                .read_range(FileType::Pack, &first.entry.pack.to_hex(), base, span)
                .ok()
                .filter(|data| data.len() as u64 == span)
        };
        let Some(mut data) = data else {
            for w in run {
                done(w.slot, self.load_alone(decoder, w));
            }
            return;
        };
        for w in run {
            // In bounds: runs are sorted and do not overlap, and the read
            // returned exactly the span.
            let range = (w.start() - base) as usize..(w.end() - base) as usize;
            let result = match data.get_mut(range) {
                Some(stored) => decoder
                    .decode_to_vec(self.key(), &w.entry.pack, &w.pack_blob(), stored)
                    .map(|plain| {
                        let len = plain.len();
                        (plain, 0..len)
                    }),
                None => self.load_alone(decoder, w),
            };
            done(w.slot, result);
        }
    }

    /// Read one blob into a buffer of its own and decode it there.
    fn load_alone(&self, decoder: &mut BlobDecoder, w: &Wanted) -> Result<BlobBuffer> {
        let stored = self.backend.read_range(
            FileType::Pack,
            &w.entry.pack.to_hex(),
            w.start(),
            u64::from(w.entry.length),
        )?;
        decoder.decode_owned(self.key(), &w.entry.pack, &w.pack_blob(), stored)
    }
}

/// Group blobs into runs: sorted by (pack, offset); a run continues while
/// the next blob is in the same pack, starts at or after the previous end
/// within [`MAX_GAP`], and the span stays within [`MAX_SPAN`]. A blob read
/// [alone](Wanted::alone) is a run of its own.
fn runs(mut wanted: Vec<Wanted>) -> Vec<Vec<Wanted>> {
    wanted.sort_by_key(|w| (w.entry.pack, w.entry.offset, w.slot));
    let mut out: Vec<Vec<Wanted>> = Vec::new();
    for w in wanted {
        if let Some(run) = out.last_mut() {
            if let (Some(first), Some(prev)) = (run.first(), run.last()) {
                let joins = !w.alone()
                    && !prev.alone()
                    && prev.entry.pack == w.entry.pack
                    && w.start() >= prev.end()
                    && w.start() - prev.end() <= MAX_GAP
                    && w.end() - first.start() <= MAX_SPAN;
                if joins {
                    run.push(w);
                    continue;
                }
            }
        }
        out.push(vec![w]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Backend, MemBackend};
    use crate::blob::BlobType;
    use crate::compression::CompressionMode;

    use crate::id::{BlobId, Id};

    use std::sync::Arc;

    fn init(backend: Arc<dyn Backend>) -> Repository {
        crate::testutil::repo_on(backend, 2)
    }

    fn repo(compression: CompressionMode) -> Repository {
        let mut r = init(Arc::new(MemBackend::new()));
        r.set_compression(compression);
        r
    }

    fn data(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Half random, half repetitive: compressible but not trivially.
                if i % 64 < 32 {
                    x as u8
                } else {
                    (i % 7) as u8
                }
            })
            .collect()
    }

    fn save(r: &Repository, blobs: &[Vec<u8>]) -> Vec<BlobHandle> {
        let hs = blobs
            .iter()
            .map(|b| BlobHandle::new(BlobType::Data, r.save_blob(BlobType::Data, b).unwrap().0))
            .collect();
        r.flush().unwrap();
        hs
    }

    #[test]
    fn batch_equals_single_loads_in_request_order() {
        for mode in [CompressionMode::Off, CompressionMode::Auto] {
            let r = repo(mode);
            let blobs: Vec<Vec<u8>> = (0..12).map(|i| data(i, 1000 + 777 * i as usize)).collect();
            let hs = save(&r, &blobs);
            // Shuffled, with a duplicate and an unknown blob.
            let unknown = BlobHandle::new(BlobType::Data, BlobId(Id::hash(b"nope")));
            let order = [5usize, 0, 11, 3, 3, 7, 1, 2, 4, 6, 8, 9, 10];
            let mut req: Vec<BlobHandle> = order.iter().map(|&i| hs[i]).collect();
            req.insert(4, unknown);
            let got = r.load_blobs(&req);
            assert_eq!(got.len(), req.len());
            for (h, g) in req.iter().zip(&got) {
                if *h == unknown {
                    assert!(matches!(g, Err(Error::BlobNotInIndex(_))), "{mode:?}");
                } else {
                    let i = hs.iter().position(|x| x == h).unwrap();
                    assert_eq!(g.as_ref().unwrap(), &blobs[i], "{mode:?}");
                    assert_eq!(
                        g.as_ref().unwrap(),
                        &r.load_blob(BlobType::Data, &h.id).unwrap()
                    );
                }
            }
        }
    }

    /// The blobs `hs`, as `load_blobs` asks for them (slot = position).
    fn wanted(r: &Repository, hs: &[BlobHandle]) -> Vec<Wanted> {
        hs.iter()
            .enumerate()
            .map(|(slot, h)| Wanted {
                slot,
                handle: *h,
                entry: r.lookup(h).unwrap(),
            })
            .collect()
    }

    #[test]
    fn runs_coalesce_neighbours_only() {
        let r = repo(CompressionMode::Off);
        let hs = save(&r, &(0..4).map(|i| data(i, 5000)).collect::<Vec<_>>());
        let wanted = wanted(&r, &hs);
        // All four are adjacent in one pack: one run.
        assert_eq!(runs(wanted.clone()).len(), 1);
        // A duplicate overlaps the previous blob: it starts a new run.
        let mut dup = wanted.clone();
        dup.push(Wanted {
            slot: 9,
            ..wanted[1]
        });
        assert_eq!(runs(dup).len(), 2);
        // Without the second blob the gap is 5 kB: still one run.
        let gap: Vec<Wanted> = [0, 2, 3].iter().map(|&i| wanted[i]).collect();
        assert_eq!(runs(gap).len(), 1);
    }

    #[test]
    fn big_uncompressed_blobs_stay_where_they_were_decrypted() {
        for mode in [CompressionMode::Off, CompressionMode::Auto] {
            let r = repo(mode);
            let sizes = [300_000, 5_000, 700_000, 6_000, 7_000, 400_000];
            let blobs: Vec<Vec<u8>> = (0..).zip(sizes).map(|(i, n)| data(i, n)).collect();
            let hs = save(&r, &blobs);
            let mut got: Vec<Option<BlobBuffer>> = blobs.iter().map(|_| None).collect();
            r.load_blobs_each(&hs, |slot, result| got[slot] = Some(result.unwrap()));
            for (i, (buffer, range)) in got.into_iter().map(Option::unwrap).enumerate() {
                assert_eq!(buffer[range.clone()], blobs[i], "{mode:?} blob {i}");
                // Blobs 3 and 4 share a run; the others are read alone
                // (blob 1 for want of small neighbours).
                if mode == CompressionMode::Off && i != 3 && i != 4 {
                    // Not copied: still between its IV and MAC.
                    assert_eq!(
                        range.len() + crate::crypto::CIPHERTEXT_OVERHEAD,
                        buffer.len()
                    );
                } else {
                    assert_eq!(range, 0..buffer.len(), "{mode:?} blob {i}");
                }
            }
            let exact: Vec<Vec<u8>> = r.load_blobs(&hs).into_iter().map(Result::unwrap).collect();
            assert_eq!(exact, blobs, "{mode:?}");
        }
    }

    #[test]
    fn raw_frames_read_alone_are_gathered_in_their_read_buffer() {
        // As restic stores incompressible data: compressed, as a zstd
        // frame of raw blocks (cairn itself would store it uncompressed).
        let r = repo(CompressionMode::Auto);
        let sizes = [300_000, 5_000, 6_000, 1_000_000, 7_000];
        let blobs: Vec<Vec<u8>> = (0..)
            .zip(sizes)
            .map(|(i, n)| crate::testutil::noise(i, n))
            .collect();
        let hs: Vec<BlobHandle> = blobs
            .iter()
            .map(|b| {
                let handle = BlobHandle::new(BlobType::Data, BlobId(Id::hash(b)));
                let frame = zstd::bulk::compress(b, 3).unwrap();
                let sealed = r.key().encrypt(&frame);
                r.add_to_pack(handle, &sealed, Some(b.len() as u32))
                    .unwrap();
                handle
            })
            .collect();
        r.flush().unwrap();
        let mut got: Vec<Option<BlobBuffer>> = blobs.iter().map(|_| None).collect();
        r.load_blobs_each(&hs, |slot, result| got[slot] = Some(result.unwrap()));
        for (i, (buffer, range)) in got.into_iter().map(Option::unwrap).enumerate() {
            assert_eq!(buffer[range.clone()], blobs[i], "blob {i}");
            let entry = r.lookup(&hs[i]).unwrap();
            assert!(entry.uncompressed_length.is_some(), "blob {i}");
            // Blobs 1 and 2 share a run; the others are read alone (blob 4
            // for want of a small neighbour after it).
            if i != 1 && i != 2 {
                // Still the read buffer: nothing went through zstd.
                assert_eq!(buffer.len(), entry.length as usize, "blob {i}");
            } else {
                assert_eq!(range, 0..buffer.len(), "blob {i}");
            }
        }
        let exact: Vec<Vec<u8>> = r.load_blobs(&hs).into_iter().map(Result::unwrap).collect();
        assert_eq!(exact, blobs);
        for (h, b) in hs.iter().zip(&blobs) {
            assert_eq!(&r.load_blob(BlobType::Data, &h.id).unwrap(), b);
        }
    }

    #[test]
    fn big_blobs_are_runs_of_their_own() {
        let r = repo(CompressionMode::Off);
        let sizes = [300_000, 5_000, 6_000, 400_000, 500_000, 7_000];
        let blobs: Vec<Vec<u8>> = (0..).zip(sizes).map(|(i, n)| data(i, n)).collect();
        let hs = save(&r, &blobs);
        let wanted = wanted(&r, &hs);
        let slots: Vec<Vec<usize>> = runs(wanted)
            .iter()
            .map(|run| run.iter().map(|w| w.slot).collect())
            .collect();
        assert_eq!(slots, [vec![0], vec![1, 2], vec![3], vec![4], vec![5]]);
    }

    /// Flip one byte inside the middle one of three blobs of `len` bytes:
    /// that blob fails with a MAC error, its neighbours still load.
    fn corrupted_blob_fails_alone_at(len: usize, compression: CompressionMode) {
        let backend = Arc::new(MemBackend::new());
        let mut r = init(backend.clone());
        r.set_compression(compression);
        let blobs: Vec<Vec<u8>> = (0..3).map(|i| data(i, len)).collect();
        let hs = save(&r, &blobs);
        let victim = r.lookup(&hs[1]).unwrap();
        let name = victim.pack.to_hex();
        let mut pack = backend.read(FileType::Pack, &name).unwrap();
        pack[victim.offset as usize + victim.length as usize / 2] ^= 1;
        backend.remove(FileType::Pack, &name).unwrap();
        backend.write(FileType::Pack, &name, &pack).unwrap();
        let got = r.load_blobs(&hs);
        assert_eq!(got[0].as_ref().unwrap(), &blobs[0]);
        assert!(matches!(got[1], Err(Error::MacMismatch(_))), "{:?}", got[1]);
        assert_eq!(got[2].as_ref().unwrap(), &blobs[2]);
    }

    #[test]
    fn corrupted_big_blob_fails_alone() {
        corrupted_blob_fails_alone_at(300_000, CompressionMode::Off);
    }

    #[test]
    fn corrupted_blob_fails_alone() {
        corrupted_blob_fails_alone_at(3000, CompressionMode::Auto);
    }
}
