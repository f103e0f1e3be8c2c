//! Creating and opening repositories.
//!
//! `init` writes the config and the first key; `open` finds a key file that
//! the password opens, then loads and validates the config. Neither changes
//! an existing repository on failure.
//!
//! The index is loaded later, on demand, by [`Repository::read_index`]:
//! index files are read, verified, decrypted and parsed by several threads
//! at once and merged as they arrive, since parsing a large index is
//! CPU-bound.

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::backend::{Backend, FileType};
use crate::chunker::{ChunkerKind, Polynomial};
use crate::compression::CompressionMode;
use crate::crypto::kdf::KdfParams;
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::format::config::Config;
use crate::format::key::KeyFile;
use crate::id::{Id, IndexId, KeyId};
use crate::index::MasterIndex;
use crate::maintenance::parallel;

use super::packer::Packer;
use super::Repository;

/// Which chunker a new repository uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ChunkerChoice {
    /// restic's Rabin chunker with a fresh random polynomial (the default).
    #[default]
    Rabin,
    /// FastCDC; recorded in the config as `cairn_chunker`, which restic
    /// ignores (restic will still chunk with Rabin when it writes).
    FastCdc,
}

/// Options for [`Repository::init`].
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// Repository format version: 1 (restic ≤ 0.13) or 2 (compression).
    pub version: u32,
    pub chunker: ChunkerChoice,
    /// Use this polynomial instead of a random one (e.g. to share chunk
    /// boundaries with another repository).
    pub polynomial: Option<Polynomial>,
    /// scrypt parameters for the first key.
    pub kdf: KdfParams,
    pub username: String,
    pub hostname: String,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            version: 2,
            chunker: ChunkerChoice::Rabin,
            polynomial: None,
            kdf: KdfParams::default(),
            username: String::new(),
            hostname: String::new(),
        }
    }
}

/// Options for [`Repository::open`].
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// Try this key first (restic's `--key-hint`).
    pub key_hint: Option<String>,
    /// Compression for new data (default `auto`).
    pub compression: CompressionMode,
}

impl Repository {
    /// Create a new repository in an empty backend and open it.
    pub fn init(backend: Arc<dyn Backend>, password: &[u8], opts: &InitOptions) -> Result<Self> {
        if !(1..=2).contains(&opts.version) {
            return Err(Error::Unsupported {
                what: "repository version".into(),
                value: opts.version.to_string(),
            });
        }
        if backend.exists(FileType::Config, "config")? {
            return Err(Error::AlreadyExists(format!(
                "repository at {}",
                backend.location()
            )));
        }
        backend.create()?;
        let key = MasterKey::generate();
        let polynomial = opts.polynomial.unwrap_or_else(Polynomial::random);
        let config = Config {
            version: opts.version,
            id: Id::random().to_hex(),
            chunker_polynomial: polynomial.to_string(),
            chunker: match opts.chunker {
                ChunkerChoice::Rabin => None,
                ChunkerChoice::FastCdc => Some("fastcdc".to_string()),
            },
        };
        let key_file = KeyFile::create(
            &key,
            password,
            opts.kdf.clone(),
            &opts.username,
            &opts.hostname,
        )?;
        let key_json = key_file.to_json();
        let key_id = Id::hash(&key_json);
        // The key goes first: a repository with a config but no key would be
        // unusable, one with a key but no config can be initialised again.
        backend.write(FileType::Key, &key_id.to_hex(), &key_json)?;
        let repo =
            Repository::assemble(backend, key, KeyId(key_id), config, &OpenOptions::default())?;
        repo.save_unpacked(FileType::Config, &repo.config.to_json())?;
        Ok(repo)
    }

    /// Open an existing repository with a password. The index is not loaded
    /// yet: call [`Repository::load_index`] when blobs are needed.
    pub fn open(backend: Arc<dyn Backend>, password: &[u8], opts: &OpenOptions) -> Result<Self> {
        // Read the config first: a missing repository is "does not exist",
        // not "wrong password".
        let config_data = match backend.read(FileType::Config, "config") {
            Ok(d) => d,
            Err(Error::NotFound(_)) => {
                return Err(Error::NotFound(format!(
                    "repository at {} (no config file)",
                    backend.location()
                )))
            }
            Err(e) => return Err(e),
        };
        let (key_id, key) = find_key(backend.as_ref(), password, opts.key_hint.as_deref())?;
        let plain = key
            .decrypt(&config_data)
            .map_err(|_| Error::MacMismatch("config".into()))?;
        let config: Config =
            serde_json::from_slice(&plain).map_err(|e| Error::corrupt("config", e))?;
        Repository::assemble(backend, key, key_id, config, opts)
    }

    /// Read every index file, `threads` at a time (at least one), into a
    /// new index; returns the ids of the files (sorted) and the index. The
    /// in-memory index is not touched. Any unreadable index file is an
    /// error: callers must not act on a partial index.
    pub fn read_index(&self, threads: usize) -> Result<(Vec<IndexId>, MasterIndex)> {
        let ids: Vec<IndexId> = self
            .list_ids(FileType::Index)?
            .into_iter()
            .map(IndexId)
            .collect();
        let mut index = MasterIndex::new();
        let mut first_error = None;
        parallel::map(
            threads,
            ids.clone(),
            |id| self.load_index_file(&id),
            |loaded| match loaded {
                Ok(file) if first_error.is_none() => index.add_index_file(&file),
                Ok(_) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            },
        );
        if let Some(e) = first_error {
            return Err(e);
        }
        index.compact();
        Ok((ids, index))
    }

    /// Threads for loading index files when the caller has no better
    /// number: about one per core, as decrypting and parsing dominate (at
    /// least two, so that reading overlaps parsing).
    pub fn index_threads(&self) -> usize {
        std::thread::available_parallelism()
            .map_or(4, |n| n.get())
            .clamp(2, 16)
    }

    fn assemble(
        backend: Arc<dyn Backend>,
        key: MasterKey,
        key_id: KeyId,
        config: Config,
        opts: &OpenOptions,
    ) -> Result<Self> {
        config.validate()?;
        let polynomial: Polynomial = config
            .chunker_polynomial
            .parse()
            .map_err(|e| Error::corrupt("config", format!("chunker_polynomial: {e}")))?;
        let chunker = match config.chunker.as_deref() {
            None | Some("rabin") => ChunkerKind::Rabin(polynomial),
            Some("fastcdc") => ChunkerKind::FastCdc,
            Some(other) => {
                return Err(Error::Unsupported {
                    what: "chunker in config".into(),
                    value: other.to_string(),
                })
            }
        };
        let compression = if config.version >= 2 {
            opts.compression
        } else {
            CompressionMode::Off
        };
        Ok(Repository {
            backend,
            key,
            key_id,
            config,
            chunker,
            compression,
            index: RwLock::new(MasterIndex::new()),
            packer: Mutex::new(Packer::default()),
        })
    }
}

/// Try the key files in turn (the hinted one first) until the password opens
/// one. restic does the same; keys are few.
fn find_key(
    backend: &dyn Backend,
    password: &[u8],
    hint: Option<&str>,
) -> Result<(KeyId, MasterKey)> {
    let mut names: Vec<String> = backend
        .list(FileType::Key)?
        .into_iter()
        .map(|f| f.name)
        .collect();
    names.sort();
    if let Some(hint) = hint {
        if let Some(pos) = names.iter().position(|n| n.starts_with(hint)) {
            let n = names.remove(pos);
            names.insert(0, n);
        }
    }
    if names.is_empty() {
        return Err(Error::corrupt(
            format!("repository at {}", backend.location()),
            "it has no key files",
        ));
    }
    for name in names {
        let data = backend.read(FileType::Key, &name)?;
        let key_file = match KeyFile::from_json(&data) {
            Ok(k) => k,
            Err(e) => {
                log::warn!("skipping key {name}: {e}");
                continue;
            }
        };
        match key_file.open(password) {
            Ok(key) => {
                let id = Id::from_hex(&name)?;
                return Ok((KeyId(id), key));
            }
            Err(Error::WrongPassword) => continue,
            Err(e) => log::warn!("skipping key {name}: {e}"),
        }
    }
    Err(Error::WrongPassword)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemBackend;
    use crate::blob::BlobType;

    fn repo_with_index_files(files: u8) -> (Arc<dyn Backend>, Repository) {
        let be: Arc<dyn Backend> = Arc::new(MemBackend::new());
        let opts = InitOptions {
            kdf: KdfParams::insecure_fast(),
            ..InitOptions::default()
        };
        let repo = Repository::init(be.clone(), b"pw", &opts).unwrap();
        for n in 0..files {
            repo.save_blob(BlobType::Data, &[n; 64]).unwrap();
            repo.save_blob(BlobType::Tree, &[n; 32]).unwrap();
            repo.flush().unwrap();
        }
        (be, repo)
    }

    #[test]
    fn read_index_merges_every_file_with_any_thread_count() {
        let (be, _) = repo_with_index_files(12);
        let repo = Repository::open(be, b"pw", &OpenOptions::default()).unwrap();
        repo.load_index().unwrap();
        let mut want: Vec<_> = repo.index().iter().collect();
        want.sort_unstable_by_key(|(h, _)| *h);
        assert_eq!(want.len(), 24);
        for threads in [0, 1, 3, 32] {
            let (ids, index) = repo.read_index(threads).unwrap();
            assert_eq!(ids.len(), 12);
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "sorted");
            let mut got: Vec<_> = index.iter().collect();
            got.sort_unstable_by_key(|(h, _)| *h);
            assert_eq!(got, want, "{threads} threads");
        }
        assert!(repo.index_threads() >= 2);
    }

    #[test]
    fn read_index_fails_on_any_damaged_file() {
        let (be, repo) = repo_with_index_files(5);
        let ids = repo.list_ids(FileType::Index).unwrap();
        let name = ids[3].to_hex();
        let mut data = be.read(FileType::Index, &name).unwrap();
        data[20] ^= 1;
        be.remove(FileType::Index, &name).unwrap();
        be.write(FileType::Index, &name, &data).unwrap();
        for threads in [1, 4] {
            let err = repo.read_index(threads).unwrap_err();
            assert!(matches!(err, Error::HashMismatch { .. }), "{err}");
        }
    }
}
