//! Repository operations that only maintenance (prune, repair, migrate)
//! needs: loading the index with the ids of its files, writing packs built
//! from already-encrypted blobs, replacing every index file at once, removing
//! files, and replacing the config.
//!
//! Ordering rules the callers rely on for crash safety:
//! - [`Repository::write_pack_file`] stores a pack before anything refers to
//!   it; a crash leaves at worst an unreferenced pack.
//! - [`Repository::replace_index`] writes all new index files (each listing
//!   the old files in `supersedes`) before it removes any old one, so at
//!   every moment the index files present together list every pack that is
//!   still needed.
//! - Packs are removed by the caller only after `replace_index` returned.

use crate::backend::FileType;
use crate::error::{Error, Result};
use crate::format::config::Config;
use crate::id::{Id, IndexId, PackId};
use crate::index::{IndexBuilder, INDEX_MAX_AGE, INDEX_MAX_BLOBS, INDEX_MAX_BLOBS_COMPRESSED};
use crate::maintenance::parallel;
use crate::pack::{FinishedPack, PackBlob};

use super::Repository;

impl Repository {
    /// Load every index file, `threads` at a time, into the in-memory index
    /// (replacing it); returns the ids of the files loaded. Any unreadable
    /// index file is an error: maintenance must not act on a partial index.
    pub fn load_index_ids(&self, threads: usize) -> Result<Vec<IndexId>> {
        let (ids, index) = self.read_index(threads)?;
        *self.index.write() = index;
        Ok(ids)
    }

    /// Store a finished pack (built with [`PackWriter`](crate::pack::PackWriter)
    /// from encrypted blobs) and add its blobs to the in-memory index. No
    /// index file lists it until the caller writes one. The pack is
    /// borrowed so that the caller can reuse its buffer.
    pub fn write_pack_file(&self, pack: &FinishedPack) -> Result<()> {
        self.backend
            .write(FileType::Pack, &pack.id.to_hex(), &pack.data)?;
        self.index.write().insert_pack(pack.id, &pack.blobs);
        Ok(())
    }

    /// Write index files listing exactly `packs` (restic's size limits per
    /// file), each superseding `obsolete`, then remove the `obsolete` files.
    /// Returns the ids of the new files.
    pub fn replace_index(
        &self,
        packs: impl IntoIterator<Item = (PackId, Vec<PackBlob>)>,
        obsolete: &[IndexId],
        threads: usize,
    ) -> Result<Vec<IndexId>> {
        let max_blobs = if self.version() >= 2 {
            INDEX_MAX_BLOBS_COMPRESSED
        } else {
            INDEX_MAX_BLOBS
        };
        let mut builder = IndexBuilder::with_limits(max_blobs, INDEX_MAX_AGE);
        for (id, blobs) in packs {
            if !blobs.is_empty() {
                builder.add_pack(id, &blobs);
            }
        }
        let mut written = Vec::new();
        for mut file in builder.finish() {
            file.supersedes = obsolete.to_vec();
            written.push(IndexId(self.save_file(&file)?));
        }
        let keep: std::collections::HashSet<IndexId> = written.iter().copied().collect();
        let remove: Vec<Id> = obsolete
            .iter()
            .filter(|id| !keep.contains(id))
            .map(|id| id.0)
            .collect();
        self.remove_files(FileType::Index, remove, threads)?;
        Ok(written)
    }

    /// Remove files of one type, `threads` at a time. Files already gone
    /// are fine; returns how many were removed by this call.
    pub fn remove_files(&self, tpe: FileType, ids: Vec<Id>, threads: usize) -> Result<usize> {
        let mut removed = 0;
        let mut first_error = None;
        parallel::map(
            threads,
            ids,
            |id| self.backend.remove(tpe, &id.to_hex()),
            |res| match res {
                Ok(()) => removed += 1,
                Err(Error::NotFound(_)) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            },
        );
        match first_error {
            Some(e) => Err(e),
            None => Ok(removed),
        }
    }

    /// Replace the `config` file (e.g. to upgrade the format version). The
    /// new config is validated first; the old file is removed and the new
    /// one written right after, so the window without a config is one
    /// rename long. The in-memory config is not changed: reopen afterwards.
    pub fn replace_config(&self, config: &Config) -> Result<()> {
        config.validate()?;
        if config.id != self.config.id {
            return Err(Error::InvalidArgument(
                "a replacement config must keep the repository id".into(),
            ));
        }
        let data = self.key.encrypt(&config.to_json());
        self.backend.remove(FileType::Config, "config")?;
        self.backend.write(FileType::Config, "config", &data)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::backend::Backend;
    use crate::blob::BlobType;

    use crate::format::index::IndexFile;
    use crate::pack::PackWriter;
    use crate::repository::OpenOptions;

    fn repo() -> (Arc<dyn Backend>, Repository) {
        let (be, repo) = crate::testutil::mem_repo(2);
        (be, repo)
    }

    #[test]
    fn replace_index_supersedes_and_removes_old_files() {
        let (be, repo) = repo();
        for n in 0..3u8 {
            repo.save_blob(BlobType::Data, &[n; 100]).unwrap();
            repo.flush().unwrap();
        }
        let old = repo.load_index_ids(2).unwrap();
        assert_eq!(old.len(), 3);
        assert_eq!(repo.index().len(), 3);

        // A pack of raw encrypted blobs, then an index of it alone.
        let mut w = PackWriter::new();
        let plain = b"raw blob".to_vec();
        let id = crate::id::BlobId(Id::hash(&plain));
        w.add(BlobType::Data, id, &repo.key().encrypt(&plain), None)
            .unwrap();
        let pack = w.finish(repo.key());
        repo.write_pack_file(&pack).unwrap();
        let new = repo
            .replace_index([(pack.id, pack.blobs)], &old, 2)
            .unwrap();
        assert_eq!(new.len(), 1);
        let ids: Vec<IndexId> = repo
            .list_ids(FileType::Index)
            .unwrap()
            .into_iter()
            .map(IndexId)
            .collect();
        assert_eq!(ids, new);
        let file: IndexFile = repo.load_json(FileType::Index, &new[0].to_hex()).unwrap();
        let mut sup = file.supersedes.clone();
        sup.sort();
        let mut want = old.clone();
        want.sort();
        assert_eq!(sup, want);
        let reopened = Repository::open(be, b"pw", &OpenOptions::default()).unwrap();
        reopened.load_index().unwrap();
        assert_eq!(reopened.load_blob(BlobType::Data, &id).unwrap(), plain);
        assert_eq!(
            repo.remove_files(FileType::Index, old.iter().map(|i| i.0).collect(), 2)
                .unwrap(),
            0,
            "already gone"
        );
    }

    #[test]
    fn replace_config_keeps_the_id() {
        let (be, repo) = repo();
        let mut config = repo.config().clone();
        config.version = 1;
        repo.replace_config(&config).unwrap();
        let reopened = Repository::open(be, b"pw", &OpenOptions::default()).unwrap();
        assert_eq!(reopened.version(), 1);
        config.id = "other".into();
        assert!(repo.replace_config(&config).is_err());
    }
}
