//! Serde types of the on-disk JSON files and blobs, nothing else: they
//! (de)serialize exactly as restic writes them, and tolerate unknown fields.

pub mod config;
mod gojson;
pub mod index;
mod index_split;
pub mod key;
pub mod lock;
pub mod snapshot;
pub mod time;
pub mod tree;

pub use config::Config;
pub use index::{IndexBlob, IndexFile, IndexPack};
pub use lock::LockFile;
pub use snapshot::{Snapshot, SnapshotSummary};
pub use time::GoTime;
pub use tree::{ExtendedAttribute, Node, NodeType, Tree};

/// An unpacked repository file (snapshot, index, lock): which directory it
/// lives in, and its exact restic serialization.
pub trait RepoFile: serde::de::DeserializeOwned {
    /// The backend file type these values are stored as.
    const TYPE: crate::backend::FileType;
    /// The bytes restic would write for this value.
    fn to_json(&self) -> Vec<u8>;
}

impl RepoFile for Snapshot {
    const TYPE: crate::backend::FileType = crate::backend::FileType::Snapshot;
    fn to_json(&self) -> Vec<u8> {
        Snapshot::to_json(self)
    }
}

impl RepoFile for IndexFile {
    const TYPE: crate::backend::FileType = crate::backend::FileType::Index;
    fn to_json(&self) -> Vec<u8> {
        IndexFile::to_json(self)
    }
}

impl RepoFile for LockFile {
    const TYPE: crate::backend::FileType = crate::backend::FileType::Lock;
    fn to_json(&self) -> Vec<u8> {
        LockFile::to_json(self)
    }
}
