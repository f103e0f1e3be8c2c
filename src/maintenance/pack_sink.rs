//! [`PackSink`]: writes blobs into new packs of a target size, tree and data
//! blobs apart, for `prune` (repacking) and `repair packs` (salvaging).
//!
//! Unlike [`Repository::save_blob`], it never skips a blob the index already
//! knows: the caller copies blobs out of packs that are about to go away.
//! Each pack is stored as soon as it is full; no index file lists it until
//! the caller writes one (see [`Repository::replace_index`]).
//!
//! Storing a full pack (encrypting its header, hashing the whole file for
//! its id, writing it) costs about as much as reading and verifying the
//! blobs that went into it. [`PackSink::new`] does it on the calling
//! thread; [`with_background_writers`] hands full packs to writer threads
//! of their own, so that the thread filling the sink only copies bytes and
//! the reading, the hashing and the writing overlap.
//!
//! A pack's buffer is reused for a later pack once the pack is stored:
//! filling a fresh multi-MiB buffer costs a page fault (and the kernel
//! zeroing the page) every 4 KiB, which took a sixth of a prune's CPU time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use crate::blob::{BlobHandle, BlobType};
use crate::error::{Error, Result};
use crate::id::PackId;
use crate::pack::{PackBlob, PackWriter};
use crate::repository::{Repository, SaveBuffers};

/// Room for the blob that takes a pack past its target (a data blob is at
/// most 8 MiB) and the header, so that a pack's buffer never grows.
const SLACK: usize = 9 << 20;

/// A stored pack: its id and blobs.
type Written = (PackId, Vec<PackBlob>);

/// Where full packs go.
enum Store<'s> {
    /// Stored by the thread that filled them; the buffer of the last one
    /// is kept for the next.
    Inline {
        written: Vec<Written>,
        spare: Option<Vec<u8>>,
    },
    /// Sent to writer threads, which send the buffers back and set
    /// `failed` when they stop on an error.
    Background {
        full: Sender<PackWriter>,
        spare: Receiver<Vec<u8>>,
        failed: &'s AtomicBool,
    },
}

/// See the module docs.
pub(crate) struct PackSink<'a> {
    repo: &'a Repository,
    /// Data, tree.
    writers: [PackWriter; 2],
    target: usize,
    store: Store<'a>,
}

impl<'a> PackSink<'a> {
    /// A sink writing packs of about `target` bytes on the calling thread.
    pub fn new(repo: &'a Repository, target: u64) -> Self {
        let store = Store::Inline {
            written: Vec::new(),
            spare: None,
        };
        Self::with_store(repo, target, store)
    }

    fn with_store(repo: &'a Repository, target: u64, store: Store<'a>) -> Self {
        PackSink {
            repo,
            writers: [PackWriter::new(), PackWriter::new()],
            target: usize::try_from(target).unwrap_or(usize::MAX).max(1),
            store,
        }
    }

    /// Add an already encrypted blob (as stored in a pack).
    pub fn add_encrypted(
        &mut self,
        handle: BlobHandle,
        encrypted: &[u8],
        uncompressed_length: Option<u32>,
    ) -> Result<()> {
        let slot = usize::from(handle.tpe == BlobType::Tree);
        if self.writers[slot].is_empty() {
            self.writers[slot] = self.empty();
        }
        let w = &mut self.writers[slot];
        w.add(handle.tpe, handle.id, encrypted, uncompressed_length)?;
        if w.size() >= self.target {
            let full = std::mem::take(w);
            self.store(full)?;
        }
        Ok(())
    }

    /// Add a blob's plaintext: compressed as the repository's mode says (v2),
    /// then encrypted.
    pub fn add_plain(&mut self, handle: BlobHandle, plain: &[u8]) -> Result<()> {
        let (encrypted, uncompressed_length) = encode(self.repo, plain)?;
        self.add_encrypted(handle, &encrypted, uncompressed_length)
    }

    /// Store the partly filled packs; returns every pack stored by this
    /// sink (none for a sink with background writers: they return theirs).
    pub fn finish(mut self) -> Result<Vec<Written>> {
        for w in std::mem::take(&mut self.writers) {
            if !w.is_empty() {
                self.store(w)?;
            }
        }
        Ok(match self.store {
            Store::Inline { written, .. } => written,
            Store::Background { .. } => Vec::new(),
        })
    }

    /// An empty pack, in a spare buffer if there is one.
    fn empty(&mut self) -> PackWriter {
        let spare = match &mut self.store {
            Store::Inline { spare, .. } => spare.take(),
            Store::Background { spare, .. } => spare.try_recv().ok(),
        };
        match spare {
            Some(mut buf) => {
                buf.clear();
                PackWriter::with_sink(buf)
            }
            None => PackWriter::with_capacity(self.target.saturating_add(SLACK)),
        }
    }

    fn store(&mut self, full: PackWriter) -> Result<()> {
        match &mut self.store {
            Store::Inline { written, spare } => {
                let (w, buf) = write(self.repo, full)?;
                written.push(w);
                *spare = Some(buf);
                Ok(())
            }
            Store::Background {
                full: tx, failed, ..
            } => {
                // After a writer failed, stop early; its error is the one
                // reported.
                let stopped =
                    || Error::io("new packs", std::io::Error::other("a pack writer failed"));
                if failed.load(Ordering::Relaxed) {
                    return Err(stopped());
                }
                tx.send(full).map_err(|_| stopped())
            }
        }
    }
}

/// Finish and store one pack; returns it and its buffer, for reuse.
fn write(repo: &Repository, pack: PackWriter) -> Result<(Written, Vec<u8>)> {
    let pack = pack.finish(repo.key());
    repo.write_pack_file(&pack)?;
    Ok(((pack.id, pack.blobs), pack.data))
}

/// Run `fill` with a sink whose full packs are finished and stored by
/// `writers` threads of their own (at least one); at most that many full
/// packs wait for them. Returns what `fill` returned and every pack
/// written, in no particular order. The first error of a writer, else of
/// `fill`, is returned; packs written until then stay in the backend,
/// unreferenced, for the next prune to remove.
pub(crate) fn with_background_writers<T>(
    repo: &Repository,
    target: u64,
    writers: usize,
    fill: impl FnOnce(&mut PackSink<'_>) -> Result<T>,
) -> Result<(T, Vec<Written>)> {
    let writers = writers.max(1);
    let (full_tx, full_rx) = bounded::<PackWriter>(writers);
    // Never more buffers than packs in flight: those being filled, queued
    // and written.
    let (spare_tx, spare_rx) = unbounded::<Vec<u8>>();
    let written: Mutex<Vec<Written>> = Mutex::new(Vec::new());
    let error: Mutex<Option<Error>> = Mutex::new(None);
    let failed = AtomicBool::new(false);
    let filled = std::thread::scope(|scope| {
        for _ in 0..writers {
            let (full_rx, spare_tx) = (full_rx.clone(), spare_tx.clone());
            let (written, error, failed) = (&written, &error, &failed);
            scope.spawn(move || {
                for pack in full_rx {
                    match write(repo, pack) {
                        Ok((w, buf)) => {
                            lock(written).push(w);
                            // Unused if the sink is gone already.
                            let _ = spare_tx.send(buf);
                        }
                        Err(e) => {
                            lock(error).get_or_insert(e);
                            failed.store(true, Ordering::Relaxed);
                            return;
                        }
                    }
                }
            });
        }
        drop((full_rx, spare_tx));
        let store = Store::Background {
            full: full_tx,
            spare: spare_rx,
            failed: &failed,
        };
        let mut sink = PackSink::with_store(repo, target, store);
        fill(&mut sink).and_then(|t| sink.finish().map(|_| t))
        // The sink, and with it the sender, is dropped here: the writers
        // drain the channel and end.
    });
    if let Some(e) = lock(&error).take() {
        return Err(e);
    }
    let written = std::mem::take(&mut *lock(&written));
    Ok((filled?, written))
}

/// Lock `m`, ignoring poisoning (the writers never panic while holding it).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A blob's stored form ([`Repository::encode_blob`]) and its plaintext
/// length if compressed.
pub(crate) fn encode(repo: &Repository, plain: &[u8]) -> Result<(Vec<u8>, Option<u32>)> {
    let mut buffers = SaveBuffers::default();
    let uncompressed_length = repo.encode_blob(plain, &mut buffers)?;
    Ok((buffers.sealed, uncompressed_length))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::FileType;
    use crate::id::{BlobId, Id};
    use crate::testutil::{mem_repo, noise};

    /// 40 blobs of 1000 bytes, trees and data mixed, through a sink of
    /// 5000-byte packs: with and without background writers, every blob
    /// ends up in exactly one stored pack of its type, and every pack
    /// stored is returned.
    #[test]
    fn background_writers_store_what_inline_stores() {
        for background in [false, true] {
            let (_, repo) = mem_repo(2);
            let blobs: Vec<(BlobHandle, Vec<u8>)> = (0..40u32)
                .map(|n| {
                    let plain = noise(n, 1000);
                    let tpe = if n % 3 == 0 {
                        BlobType::Tree
                    } else {
                        BlobType::Data
                    };
                    (BlobHandle::new(tpe, BlobId(Id::hash(&plain))), plain)
                })
                .collect();
            let fill = |sink: &mut PackSink<'_>| -> Result<()> {
                for (handle, plain) in &blobs {
                    sink.add_plain(*handle, plain)?;
                }
                Ok(())
            };
            let written = if background {
                with_background_writers(&repo, 5000, 2, fill).unwrap().1
            } else {
                let mut sink = PackSink::new(&repo, 5000);
                fill(&mut sink).unwrap();
                sink.finish().unwrap()
            };
            let mut stored: Vec<PackId> = repo
                .list_packs()
                .unwrap()
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            let mut returned: Vec<PackId> = written.iter().map(|(id, _)| *id).collect();
            stored.sort_unstable();
            returned.sort_unstable();
            assert_eq!(stored, returned, "background {background}");
            assert!(returned.len() >= 6, "background {background}");
            let mut seen: Vec<BlobHandle> = Vec::new();
            for (pack, entries) in &written {
                assert!(entries.iter().all(|b| b.tpe == entries[0].tpe));
                for b in entries {
                    let data = repo
                        .backend()
                        .read_range(
                            FileType::Pack,
                            &pack.to_hex(),
                            u64::from(b.offset),
                            u64::from(b.length),
                        )
                        .unwrap();
                    crate::pack::decode_blob(repo.key(), pack, b, &data).unwrap();
                    seen.push(b.handle());
                }
            }
            seen.sort_unstable();
            let mut expected: Vec<BlobHandle> = blobs.iter().map(|(h, _)| *h).collect();
            expected.sort_unstable();
            assert_eq!(seen, expected, "background {background}");
        }
    }

    /// A writer's error is returned, and stops the filling early.
    #[test]
    fn a_failing_writer_is_reported() {
        let backend = std::sync::Arc::new(crate::testutil::PackHook {
            mem: std::sync::Arc::new(crate::backend::MemBackend::new()),
            hook: |name: &str| Err(Error::io(name, std::io::Error::other("disk full"))),
        });
        let repo = crate::testutil::repo_on(backend, 2);
        let mut added = 0;
        let got = with_background_writers(&repo, 5000, 2, |sink| -> Result<()> {
            for n in 0..1000 {
                let plain = noise(n, 3000);
                sink.add_plain(
                    BlobHandle::new(BlobType::Data, BlobId(Id::hash(&plain))),
                    &plain,
                )?;
                added += 1;
            }
            Ok(())
        });
        assert!(
            matches!(&got, Err(Error::Io { source, .. }) if source.to_string() == "disk full"),
            "{got:?}"
        );
        assert!(added < 1000);
    }

    /// An error of `fill` is returned, and the writers still end.
    #[test]
    fn a_failing_fill_is_reported() {
        let (_, repo) = mem_repo(2);
        let got = with_background_writers(&repo, 5000, 2, |sink| -> Result<()> {
            let plain = noise(1, 3000);
            let handle = BlobHandle::new(BlobType::Data, BlobId(Id::hash(&plain)));
            sink.add_plain(handle, &plain)?;
            sink.add_plain(handle, &plain)?;
            Err(Error::InvalidArgument("stop".into()))
        });
        assert!(matches!(got, Err(Error::InvalidArgument(m)) if m == "stop"));
    }
}
