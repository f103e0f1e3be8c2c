//! Key management: several key files may unlock the same master key, each
//! with its own password (`cairn key list|add|remove|passwd`).

use chrono::{DateTime, FixedOffset};

use crate::backend::FileType;
use crate::crypto::kdf::KdfParams;
use crate::error::{Error, Result};
use crate::format::key::KeyFile;
use crate::id::{Id, KeyId};

use super::Repository;

/// What `key list` shows about a key file.
#[derive(Clone, Debug)]
pub struct KeyInfo {
    pub id: KeyId,
    pub username: String,
    pub hostname: String,
    pub created: Option<DateTime<FixedOffset>>,
    /// True for the key that opened this repository.
    pub current: bool,
}

impl Repository {
    /// All key files, parsed (not opened).
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let mut keys = Vec::new();
        for id in self.list_ids(FileType::Key)? {
            let file = self.load_key_file(&KeyId(id))?;
            keys.push(KeyInfo {
                id: KeyId(id),
                username: file.username.clone(),
                hostname: file.hostname.clone(),
                created: DateTime::parse_from_rfc3339(&file.created).ok(),
                current: KeyId(id) == self.key_id,
            });
        }
        keys.sort_by_key(|k| k.created);
        Ok(keys)
    }

    /// Read and parse a key file (its JSON is not encrypted).
    pub fn load_key_file(&self, id: &KeyId) -> Result<KeyFile> {
        let data = self.backend.read(FileType::Key, &id.to_hex())?;
        if Id::hash(&data) != id.0 {
            return Err(Error::HashMismatch {
                what: format!("key {id}"),
                expected: id.to_hex(),
                actual: Id::hash(&data).to_hex(),
            });
        }
        KeyFile::from_json(&data)
    }

    /// Add a key file that unlocks this repository's master key with
    /// `password`.
    pub fn add_key(
        &self,
        password: &[u8],
        params: KdfParams,
        username: &str,
        hostname: &str,
    ) -> Result<KeyId> {
        let file = KeyFile::create(&self.key, password, params, username, hostname)?;
        let json = file.to_json();
        let id = Id::hash(&json);
        self.backend.write(FileType::Key, &id.to_hex(), &json)?;
        Ok(KeyId(id))
    }

    /// Remove a key file. The key that opened the repository cannot be
    /// removed (restic refuses too), so at least one key always remains.
    pub fn remove_key(&self, id: &KeyId) -> Result<()> {
        if *id == self.key_id {
            return Err(Error::InvalidArgument(
                "refusing to remove the key currently used to access the repository".into(),
            ));
        }
        self.backend.remove(FileType::Key, &id.to_hex())
    }

    /// Replace the current key with one for a new password: add the new key
    /// first, then remove the old one, so a crash leaves at least one key.
    pub fn change_password(
        &mut self,
        password: &[u8],
        params: KdfParams,
        username: &str,
        hostname: &str,
    ) -> Result<KeyId> {
        let new = self.add_key(password, params, username, hostname)?;
        let old = std::mem::replace(&mut self.key_id, new);
        self.backend.remove(FileType::Key, &old.to_hex())?;
        Ok(new)
    }
}
