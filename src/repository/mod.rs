//! The repository: a backend, the master key, the config and the index
//! behind one handle.
//!
//! Everything that involves crypto goes through here: `load_*`/`save_*` of
//! unpacked files (config, keys, snapshots, index files, locks) and of blobs.
//! Invariants:
//! - every file read from the backend is checked before use: its name must be
//!   the SHA-256 of its stored bytes (except `config`), its MAC must verify,
//!   and a blob's plaintext must hash to its id;
//! - blobs are saved into packs streamed to the backend and stored whole
//!   under their id once complete; a pack's blobs enter the in-memory index
//!   only after the pack is stored, and the index files
//!   that list them are written by [`Repository::flush`] after the packs, so
//!   a crash never leaves an index entry pointing at a missing pack.

mod keys;
mod lock;
mod maintenance;
mod open;
mod packer;
mod read;

pub use keys::KeyInfo;
pub use lock::{hostname, LockGuard, LockKind};
pub use open::{ChunkerChoice, InitOptions, OpenOptions};

use std::cell::Cell;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard, RwLock};
use serde::de::DeserializeOwned;

use crate::backend::{describe, Backend, FileType};
use crate::blob::{BlobHandle, BlobType};
use crate::chunker::{ChunkerKind, Polynomial};
use crate::compression::{self, CompressionMode};
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::format::config::Config;
use crate::format::index::IndexFile;
use crate::format::snapshot::Snapshot;
use crate::format::tree::Tree;
use crate::format::RepoFile;
use crate::id::{BlobId, Id, IndexId, KeyId, PackId, SnapshotId, TreeId};
use crate::index::{IndexEntry, MasterIndex};
use crate::pack::{self, PackUpload};

use packer::{OpenPack, Packer, Reserved, SealedPack};

/// The largest unpacked file (index, snapshot, key, lock) we accept after
/// decompression. restic's index files stay far below this.
const MAX_UNPACKED_SIZE: usize = 1 << 30;

thread_local! {
    /// Each saving thread's buffers for the compressed and the encrypted
    /// form of the blob it stores: reused, instead of fresh (megabyte)
    /// allocations per chunk that the allocator keeps around for a while
    /// after they are freed.
    static BUFFERS: Cell<SaveBuffers> = const { Cell::new(SaveBuffers::new()) };
}

/// A blob's compressed and encrypted forms, in buffers reused from blob to
/// blob ([`Repository::encode_blob`]; one per saving thread: [`BUFFERS`]).
#[derive(Default)]
pub(crate) struct SaveBuffers {
    pub(crate) compressed: Vec<u8>,
    pub(crate) sealed: Vec<u8>,
}

impl SaveBuffers {
    const fn new() -> Self {
        SaveBuffers {
            compressed: Vec::new(),
            sealed: Vec::new(),
        }
    }
}

/// Encrypted blobs shorter than this are appended to their pack under the
/// packer's lock; longer ones outside it (see [`Repository::save_blob`]).
const LOCKED_APPEND: usize = 2 << 10;

/// Largest [`BUFFERS`] buffer kept for the next blob: room for the largest
/// chunk (8 MiB) after encryption; a bigger one (a huge tree) is freed.
const BUFFER_KEEP: usize = (8 << 20) + 4096;

/// An open repository.
pub struct Repository {
    backend: Arc<dyn Backend>,
    key: MasterKey,
    key_id: KeyId,
    config: Config,
    chunker: ChunkerKind,
    compression: CompressionMode,
    index: RwLock<MasterIndex>,
    packer: Mutex<Packer>,
}

impl Repository {
    /// The backend this repository lives in.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The master key.
    pub fn key(&self) -> &MasterKey {
        &self.key
    }

    /// The id of the key file that opened this repository.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The repository config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The repository format version (1 or 2).
    pub fn version(&self) -> u32 {
        self.config.version
    }

    /// The chunker new files are split with.
    pub fn chunker(&self) -> ChunkerKind {
        self.chunker
    }

    /// The compression mode for new blobs and files (always `Off` in v1).
    pub fn compression(&self) -> CompressionMode {
        self.compression
    }

    /// Change the compression mode (ignored for v1 repositories).
    pub fn set_compression(&mut self, mode: CompressionMode) {
        if self.config.version >= 2 {
            self.compression = mode;
        }
    }

    /// Change the target pack size in bytes.
    pub fn set_pack_size(&mut self, bytes: usize) {
        self.packer.get_mut().set_pack_size(bytes);
    }

    /// The in-memory index.
    pub fn index(&self) -> parking_lot::RwLockReadGuard<'_, MasterIndex> {
        self.index.read()
    }

    // ---- unpacked files -------------------------------------------------

    /// Read, verify and decrypt an unpacked file (key, snapshot, index, lock,
    /// config). Keys and the config are never compressed; the others are
    /// decoded according to restic's leading-byte rule.
    pub fn load_unpacked(&self, tpe: FileType, name: &str) -> Result<Vec<u8>> {
        let what = describe(tpe, name);
        let mut data = self.backend.read(tpe, name)?;
        if tpe != FileType::Config {
            let actual = Id::hash(&data);
            if actual.to_hex() != name {
                return Err(Error::HashMismatch {
                    what,
                    expected: name.to_string(),
                    actual: actual.to_hex(),
                });
            }
        }
        let plain = self
            .key
            .decrypt_in_slice(&mut data)
            .map_err(|_| Error::MacMismatch(what.clone()))?;
        match tpe {
            FileType::Config | FileType::Key => Ok(plain.to_vec()),
            _ => compression::decode_unpacked(plain, MAX_UNPACKED_SIZE)
                .map_err(|e| Error::corrupt(what, e)),
        }
    }

    /// Encode (compress in v2), encrypt and store an unpacked file; returns
    /// its id, the SHA-256 of the stored bytes.
    pub fn save_unpacked(&self, tpe: FileType, plain: &[u8]) -> Result<Id> {
        let encoded;
        let plain = match tpe {
            FileType::Config | FileType::Key => plain,
            _ => {
                encoded = compression::encode_unpacked(plain, self.version(), self.compression);
                &encoded
            }
        };
        let data = self.key.encrypt(plain);
        let id = Id::hash(&data);
        let name = match tpe {
            FileType::Config => "config".to_string(),
            _ => id.to_hex(),
        };
        self.backend.write(tpe, &name, &data)?;
        Ok(id)
    }

    /// Load and parse a JSON unpacked file.
    pub fn load_json<T: DeserializeOwned>(&self, tpe: FileType, name: &str) -> Result<T> {
        let plain = self.load_unpacked(tpe, name)?;
        serde_json::from_slice(&plain).map_err(|e| Error::corrupt(describe(tpe, name), e))
    }

    /// Save an unpacked file (snapshot, index, lock) exactly as restic
    /// serializes it. The `tpe` must be the value's own [`RepoFile::TYPE`].
    pub fn save_json<T: RepoFile>(&self, tpe: FileType, value: &T) -> Result<Id> {
        debug_assert_eq!(tpe, T::TYPE);
        self.save_unpacked(T::TYPE, &value.to_json())
    }

    /// Save an unpacked file under its type's directory.
    pub fn save_file<T: RepoFile>(&self, value: &T) -> Result<Id> {
        self.save_unpacked(T::TYPE, &value.to_json())
    }

    /// The ids of all files of one type. Names that are not ids are skipped.
    pub fn list_ids(&self, tpe: FileType) -> Result<Vec<Id>> {
        let mut ids: Vec<Id> = self
            .backend
            .list(tpe)?
            .into_iter()
            .filter_map(|f| Id::from_hex(&f.name).ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Resolve a unique id prefix among the files of one type.
    pub fn find_id(&self, tpe: FileType, prefix: &str) -> Result<Id> {
        if let Ok(id) = Id::from_hex(prefix) {
            return Ok(id);
        }
        let matches: Vec<Id> = self
            .list_ids(tpe)?
            .into_iter()
            .filter(|id| id.has_prefix(prefix))
            .collect();
        match matches.as_slice() {
            [id] => Ok(*id),
            [] => Err(Error::NotFound(format!("{} {prefix}", tpe.name()))),
            _ => Err(Error::InvalidArgument(format!(
                "{} prefix {prefix} is ambiguous ({} matches)",
                tpe.name(),
                matches.len()
            ))),
        }
    }

    // ---- index -----------------------------------------------------------

    /// Load every index file into the in-memory index.
    pub fn load_index(&self) -> Result<()> {
        let (_, index) = self.read_index(self.index_threads())?;
        *self.index.write() = index;
        Ok(())
    }

    /// The index files currently in the repository (id and contents).
    pub fn load_index_files(&self) -> Result<Vec<(IndexId, IndexFile)>> {
        self.list_ids(FileType::Index)?
            .into_iter()
            .map(|id| Ok((IndexId(id), self.load_index_file(&IndexId(id))?)))
            .collect()
    }

    /// Load, verify and parse one index file; a large one is parsed on
    /// every core.
    pub fn load_index_file(&self, id: &IndexId) -> Result<IndexFile> {
        let name = id.to_hex();
        let plain = self.load_unpacked(FileType::Index, &name)?;
        IndexFile::from_json_parallel(&plain).map_err(|e| match e {
            Error::Corrupt { reason, .. } => {
                Error::corrupt(describe(FileType::Index, &name), reason)
            }
            other => other,
        })
    }

    /// Where a blob is stored, if the index knows it.
    pub fn lookup(&self, handle: &BlobHandle) -> Option<IndexEntry> {
        self.index.read().get(handle)
    }

    /// True if the repository (index or packs being written) has the blob.
    pub fn has_blob(&self, handle: &BlobHandle) -> bool {
        let indexed = self.index.read().has(handle);
        indexed || self.packer.lock().has_pending(handle)
    }

    // ---- blobs -----------------------------------------------------------

    /// Load, verify and return a blob's plaintext.
    pub fn load_blob(&self, tpe: BlobType, id: &BlobId) -> Result<Vec<u8>> {
        let handle = BlobHandle::new(tpe, *id);
        let entry = self
            .lookup(&handle)
            .ok_or_else(|| Error::BlobNotInIndex(format!("{tpe} {id}")))?;
        self.load_blob_from(&handle, &entry)
    }

    /// Load a blob from a given index entry (e.g. one of several copies).
    pub fn load_blob_from(&self, handle: &BlobHandle, entry: &IndexEntry) -> Result<Vec<u8>> {
        let encrypted = self.backend.read_range(
            FileType::Pack,
            &entry.pack.to_hex(),
            u64::from(entry.offset),
            u64::from(entry.length),
        )?;
        pack::decode_blob(
            &self.key,
            &entry.pack,
            &entry.to_pack_blob(handle),
            &encrypted,
        )
    }

    /// Save a blob unless the repository has it already. Returns the blob id
    /// and whether it was newly added. Packs are written as they fill up, by
    /// the thread whose blob filled them. Safe to call from many threads at
    /// once: hashing, compression and encryption run outside every lock.
    pub fn save_blob(&self, tpe: BlobType, data: &[u8]) -> Result<(BlobId, bool)> {
        let (id, stored) = self.save_blob_stored(tpe, data)?;
        Ok((id, stored.is_some()))
    }

    /// [`save_blob`](Self::save_blob), returning for a newly added blob the
    /// bytes it takes in its pack (compressed and encrypted), `None` if the
    /// repository had it already.
    pub fn save_blob_stored(&self, tpe: BlobType, data: &[u8]) -> Result<(BlobId, Option<u32>)> {
        let id = BlobId(Id::hash(data));
        let handle = BlobHandle::new(tpe, id);
        if self.has_blob(&handle) {
            return Ok((id, None));
        }
        let added = BUFFERS.with(|cell| {
            let mut buffers = cell.take();
            let added = self
                .encode_blob(data, &mut buffers)
                .and_then(|uncompressed_length| {
                    let stored = blob_len(buffers.sealed.len())?;
                    let added = self.add_to_pack(handle, &buffers.sealed, uncompressed_length)?;
                    Ok(added.then_some(stored))
                });
            if buffers.sealed.capacity() <= BUFFER_KEEP
                && buffers.compressed.capacity() <= BUFFER_KEEP
            {
                cell.set(buffers);
            }
            added
        })?;
        Ok((id, added))
    }

    /// A blob's stored form, left in `buffers.sealed`: compressed first
    /// (into `buffers.compressed`) if the mode compresses and that makes it
    /// smaller, then encrypted. Returns its plaintext length if compressed.
    pub(crate) fn encode_blob(
        &self,
        data: &[u8],
        buffers: &mut SaveBuffers,
    ) -> Result<Option<u32>> {
        let try_compress = match self.compression {
            CompressionMode::Auto => !looks_incompressible(data),
            _ => true,
        };
        let compressed = try_compress
            && compression::compress_smaller(data, self.compression, &mut buffers.compressed);
        let (plain, uncompressed_length) = if compressed {
            (&buffers.compressed[..], Some(blob_len(data.len())?))
        } else {
            (data, None)
        };
        buffers.sealed.clear();
        self.key.encrypt_into(plain, &mut buffers.sealed);
        Ok(uncompressed_length)
    }

    /// Append an encrypted blob to an open pack (writing the pack if that
    /// fills it), unless it is pending already; true if it was added.
    fn add_to_pack(
        &self,
        handle: BlobHandle,
        sealed: &[u8],
        uncompressed_length: Option<u32>,
    ) -> Result<bool> {
        // Never take the index lock while holding the packer's (the other
        // order happens in `write_pack`). A pack written since the caller
        // checked the index may rarely make this a second copy: harmless.
        let mut packer = self.packer.lock();
        let mut pack = match packer.reserve(handle) {
            Reserved::Pending => return Ok(false),
            Reserved::Open(pack) => pack,
            Reserved::New(generation) => {
                match MutexGuard::unlocked(&mut packer, || self.open_pack(handle.tpe, generation)) {
                    Ok(pack) => pack,
                    Err(e) => {
                        packer.open_failed(generation, &handle);
                        return Err(e);
                    }
                }
            }
        };
        // Appending a small blob (usually a copy into the upload's buffer)
        // costs less than taking the lock again; a larger one (a write to
        // the upload, and its share of the pack hash) runs outside the lock,
        // on a pack only this thread holds, so appends run in parallel.
        let appended = if sealed.len() < LOCKED_APPEND {
            pack.add(handle, sealed, uncompressed_length)
        } else {
            MutexGuard::unlocked(&mut packer, || {
                pack.add(handle, sealed, uncompressed_length)
            })
        };
        if let Err(e) = appended {
            packer.abandon(pack, handle);
            return Err(e);
        }
        let full = packer.give_back(pack);
        drop(packer);
        if let Some(pack) = full {
            self.write_pack(pack)?;
        }
        Ok(true)
    }

    /// Start a new pack for blobs of type `tpe`, streamed to the backend.
    fn open_pack(&self, tpe: BlobType, generation: u64) -> Result<OpenPack> {
        let upload = Arc::clone(&self.backend).upload(FileType::Pack)?;
        Ok(OpenPack::new(PackUpload::new(upload), tpe, generation))
    }

    /// Load and parse a tree blob.
    pub fn load_tree(&self, id: &TreeId) -> Result<Tree> {
        let data = self.load_blob(BlobType::Tree, &BlobId::from(*id))?;
        Tree::from_json(&data).map_err(|e| Error::corrupt(format!("tree {id}"), e))
    }

    /// Serialize and save a tree blob.
    pub fn save_tree(&self, tree: &Tree) -> Result<TreeId> {
        let json = tree.to_json();
        let (id, _) = self.save_blob(BlobType::Tree, &json)?;
        Ok(TreeId::from(id))
    }

    /// Write all partially filled packs, wait for packs other threads are
    /// filling or writing, then write the index files listing every pack
    /// written since the last flush. Every blob whose
    /// [`save_blob`](Self::save_blob) returned before this call is then in a
    /// pack listed by an index file. Other threads may keep saving blobs
    /// meanwhile.
    pub fn flush(&self) -> Result<()> {
        let (packs, generation) = self.packer.lock().start_flush();
        let mut first_error = None;
        for pack in packs {
            if let Err(e) = self.write_pack(pack) {
                first_error.get_or_insert(e);
            }
        }
        {
            let mut packer = self.packer.lock();
            let signal = packer.written_signal();
            while packer.unwritten_through(generation) {
                signal.wait(&mut packer);
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        let files = self.packer.lock().take_index_files();
        for file in files {
            self.save_file(&file)?;
        }
        Ok(())
    }

    /// Finish and store a sealed pack, then index its blobs; on failure its
    /// blobs are forgotten (not pending any more), so nothing refers to a
    /// pack that does not exist.
    fn write_pack(&self, pack: SealedPack) -> Result<()> {
        let (generation, blobs, stored) = pack.write(&self.key);
        match stored {
            Ok(id) => {
                self.index.write().insert_pack(id, &blobs);
                self.packer.lock().pack_written(generation, id, &blobs);
                Ok(())
            }
            Err(e) => {
                self.packer.lock().pack_failed(generation, &blobs);
                Err(e)
            }
        }
    }

    // ---- snapshots -------------------------------------------------------

    /// Load one snapshot.
    pub fn load_snapshot(&self, id: &SnapshotId) -> Result<Snapshot> {
        self.load_json(FileType::Snapshot, &id.to_hex())
    }

    /// Save a snapshot; returns its id.
    pub fn save_snapshot(&self, snapshot: &Snapshot) -> Result<SnapshotId> {
        self.save_file(snapshot).map(SnapshotId)
    }

    /// Load every snapshot, sorted by time (oldest first).
    pub fn list_snapshots(&self) -> Result<Vec<(SnapshotId, Snapshot)>> {
        let mut all = Vec::new();
        for id in self.list_ids(FileType::Snapshot)? {
            let id = SnapshotId(id);
            all.push((id, self.load_snapshot(&id)?));
        }
        all.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
        Ok(all)
    }

    /// The ids of all packs in the backend with their sizes.
    pub fn list_packs(&self) -> Result<Vec<(PackId, u64)>> {
        Ok(self
            .backend
            .list(FileType::Pack)?
            .into_iter()
            .filter_map(|f| Id::from_hex(&f.name).ok().map(|id| (PackId(id), f.size)))
            .collect())
    }

    /// Read and verify a pack's header.
    pub fn load_pack_header(&self, id: &PackId, size: u64) -> Result<Vec<pack::PackBlob>> {
        let name = id.to_hex();
        pack::read_header(&self.key, id, size, |offset, length| {
            self.backend
                .read_range(FileType::Pack, &name, offset, length)
        })
    }

    /// The polynomial of a Rabin repository, if that is its chunker.
    pub fn polynomial(&self) -> Option<Polynomial> {
        match self.chunker {
            ChunkerKind::Rabin(p) => Some(p),
            ChunkerKind::FastCdc => None,
        }
    }
}

/// A cheap test for data zstd cannot shrink (random or already
/// compressed): the byte entropy of 4 KiB sampled from four places is
/// close to 8 bits. `Auto` mode then stores the blob without trying; small
/// blobs are always tried. Four samples of data that repeats a short block
/// are alike, which lowers the measured entropy, so such data is still
/// compressed.
fn looks_incompressible(data: &[u8]) -> bool {
    const SAMPLE: usize = 1024;
    if data.len() < 16 * SAMPLE {
        return false;
    }
    let mut counts = [0u32; 256];
    for k in 0..4 {
        let start = (data.len() - SAMPLE) * k / 3;
        for &b in &data[start..start + SAMPLE] {
            counts[usize::from(b)] += 1;
        }
    }
    let n = (4 * SAMPLE) as f64;
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    // Uniform random bytes measure about 7.955 bits on 4 KiB.
    entropy > 7.9
}

fn blob_len(len: usize) -> Result<u32> {
    u32::try_from(len)
        .map_err(|_| Error::InvalidArgument(format!("blob of {len} bytes is too large")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemBackend;
    use crate::crypto::kdf::KdfParams;

    fn opts(version: u32) -> InitOptions {
        InitOptions {
            version,
            kdf: KdfParams::insecure_fast(),
            ..InitOptions::default()
        }
    }

    #[test]
    fn init_save_flush_reopen_load() {
        for version in [1, 2] {
            let be: Arc<dyn Backend> = Arc::new(MemBackend::new());
            let repo = Repository::init(be.clone(), b"secret", &opts(version)).unwrap();
            let text = b"hello hello hello hello hello hello hello hello".repeat(100);
            let (id, new) = repo.save_blob(BlobType::Data, &text).unwrap();
            assert!(new);
            let (_, again) = repo.save_blob(BlobType::Data, &text).unwrap();
            assert!(!again, "pending blobs are deduplicated");
            repo.flush().unwrap();
            assert_eq!(repo.list_ids(FileType::Index).unwrap().len(), 1);
            assert_eq!(repo.list_ids(FileType::Pack).unwrap().len(), 1);

            let reopened =
                Repository::open(be.clone(), b"secret", &OpenOptions::default()).unwrap();
            assert_eq!(reopened.version(), version);
            reopened.load_index().unwrap();
            let entry = reopened
                .lookup(&BlobHandle::new(BlobType::Data, id))
                .unwrap();
            // v2 compresses this repetitive blob, v1 never does.
            assert_eq!(entry.uncompressed_length.is_some(), version == 2);
            assert_eq!(reopened.load_blob(BlobType::Data, &id).unwrap(), text);
            assert!(matches!(
                Repository::open(be, b"wrong", &OpenOptions::default()),
                Err(Error::WrongPassword)
            ));
        }
    }

    #[test]
    fn incompressible_data_is_recognised_cheaply() {
        let mut random = vec![0u8; 1 << 20];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for b in random.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = (x >> 24) as u8;
        }
        assert!(looks_incompressible(&random));
        let text = b"the quick brown fox jumps over the lazy dog\n".repeat(20_000);
        assert!(!looks_incompressible(&text));
        assert!(
            !looks_incompressible(&random[..8192]),
            "small blobs are tried"
        );
        // A short random block repeated compresses well and is tried.
        let repeated = random[..1024].repeat(64);
        assert!(!looks_incompressible(&repeated));
        let zeros = vec![0u8; 1 << 20];
        assert!(!looks_incompressible(&zeros));
    }

    #[test]
    fn corrupted_blob_is_detected() {
        let mem = Arc::new(MemBackend::new());
        let be: Arc<dyn Backend> = mem.clone();
        let repo = Repository::init(be.clone(), b"pw", &opts(2)).unwrap();
        let (id, _) = repo.save_blob(BlobType::Data, b"some data").unwrap();
        repo.flush().unwrap();
        let pack = repo.list_ids(FileType::Pack).unwrap()[0].to_hex();
        let mut data = be.read(FileType::Pack, &pack).unwrap();
        data[20] ^= 1;
        be.remove(FileType::Pack, &pack).unwrap();
        be.write(FileType::Pack, &pack, &data).unwrap();
        let err = repo.load_blob(BlobType::Data, &id).unwrap_err();
        assert!(matches!(err, Error::MacMismatch(_)), "{err}");
    }

    #[test]
    fn locks_conflict_and_release() {
        let be: Arc<dyn Backend> = Arc::new(MemBackend::new());
        let repo = Repository::init(be.clone(), b"pw", &opts(2)).unwrap();
        let shared = repo.lock(LockKind::Shared).unwrap();
        let shared2 = repo.lock(LockKind::Shared).unwrap();
        assert!(matches!(
            repo.lock(LockKind::Exclusive),
            Err(Error::Locked(_))
        ));
        drop(shared);
        drop(shared2);
        assert!(repo.list_ids(FileType::Lock).unwrap().is_empty());
        let excl = repo.lock(LockKind::Exclusive).unwrap();
        assert!(matches!(repo.lock(LockKind::Shared), Err(Error::Locked(_))));
        drop(excl);
        assert!(repo.list_ids(FileType::Lock).unwrap().is_empty());
    }

    #[test]
    fn keys_can_be_added_and_removed() {
        let be: Arc<dyn Backend> = Arc::new(MemBackend::new());
        let repo = Repository::init(be.clone(), b"one", &opts(2)).unwrap();
        let second = repo
            .add_key(b"two", KdfParams::insecure_fast(), "u", "h")
            .unwrap();
        let via_two = Repository::open(be.clone(), b"two", &OpenOptions::default()).unwrap();
        assert_eq!(via_two.key_id(), second);
        assert_eq!(via_two.config().id, repo.config().id);
        assert!(via_two.remove_key(&second).is_err(), "current key stays");
        repo.remove_key(&second).unwrap();
        assert!(Repository::open(be, b"two", &OpenOptions::default()).is_err());
    }
}
